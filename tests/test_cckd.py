"""CCKD and CCKD64 images (FORMATS.md 2): reading, writing, crash safety, bad input.

Hercules 3.13 is the oracle: whatever its tools make we read track for track as
`dasdcopy` sees them; whatever we write passes `cckdcdsk -3` and `dasdcopy` turns into
exactly our tracks.  CCKD64, which 3.13 cannot read, is checked against hyperion's
sample image and the independent `ckdoffline` reader.
"""

from __future__ import annotations

import hashlib
import os
import random
import struct
import time
import zlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emulator.errors import ConflictError, EmulatorError, FormatError
from emulator.geometry import device
from emulator.image import convert_image, create_image, journal, open_image
from emulator.image.cckd import CckdImage
from emulator.layouts import parse_at
from emulator.layouts.ckd import (
    FREE_MAGIC,
    L1_POS,
    DeviceHeader,
    cdh_layout,
    freeblk_layout,
    l2_layout,
)
from emulator.track import build_track, null_track, parse_track

CCKD64_SAMPLE = "SDL-Hercules-390__hyperion__3390.cckd64"


# -- helpers ----------------------------------------------------------------------------


def tracks_of(path) -> list[bytes]:
    with open_image(path) as im:
        return [im.read_track(t) for t in range(im.total_tracks)]


def sha(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def random_track(rnd: random.Random, cyl: int, head: int, budget: int = 45000) -> bytes:
    """A valid track image: a null track now and then, else 1..12 records of mixed
    compressible and random data that fit ``budget`` bytes."""
    if rnd.random() < 0.15:
        # Format 2 (12 x 4K records) only fits a 3390 track.
        return null_track(cyl, head, rnd.choice([0, 1, 2] if budget > 49277 else [0, 1]))
    recs = []
    left = budget
    for _ in range(rnd.randrange(1, 13)):
        kl = rnd.choice([0, 0, 8, 44])
        dl = min(rnd.randrange(0, 6000), max(0, left - kl - 8))
        left -= 8 + kl + dl
        if rnd.random() < 0.5:
            data = bytes([rnd.randrange(256)]) * dl
        else:
            data = rnd.randbytes(dl)
        recs.append((rnd.randbytes(kl), data))
        if left < 100:
            break
    return build_track(cyl, head, recs)


def assert_hercules_agrees(hercules, path, tmp_path, expect: list[bytes] | None = None):
    """cckdcdsk -3 finds nothing, and dasdcopy to plain gives exactly our tracks."""
    ok, out = hercules.cckdcdsk(path, 3)
    assert ok, out
    plain = tmp_path / f"{Path(path).stem}-check.plain"
    if plain.exists():
        plain.unlink()
    hercules.dasdcopy(path, plain)
    ours = tracks_of(path) if expect is None else expect
    theirs = tracks_of(plain)
    bad = [t for t in range(len(theirs)) if theirs[t] != ours[t]]
    assert not bad, f"tracks differ from dasdcopy's: {bad[:10]}"
    plain.unlink()


def write_tracks(im, rnd, count) -> dict[int, bytes]:
    budget = im.trksize - 100
    done = {}
    with im.transaction():
        for _ in range(count):
            trk = rnd.randrange(im.total_tracks)
            img = random_track(rnd, *divmod(trk, im.heads), budget=budget)
            im.write_track(trk, img)
            done[trk] = img
    return done


def patch(path, offset: int, data: bytes) -> None:
    with open(path, "r+b") as fh:
        fh.seek(offset)
        fh.write(data)


def to_big_endian(src, dst) -> None:
    """Rewrite a little-endian CCKD file (FREE_BLK form) with big-endian tables, as a
    big-endian Hercules host writes it (cdh_opts X'02')."""
    data = bytearray(Path(src).read_bytes())
    cckd64 = data[:8] == b"CKD_C064"
    le, be = cdh_layout(cckd64, False), cdh_layout(cckd64, True)
    cdh = le.parse(bytes(data[512:1024]))
    cdh.cdh_opts |= 0x02
    data[512:1024] = be.build(cdh)
    w = 8 if cckd64 else 4
    fmt = "Q" if cckd64 else "I"
    l2le, l2be = l2_layout(cckd64, False), l2_layout(cckd64, True)
    for i in range(cdh.num_L1tab):
        pos = L1_POS + i * w
        (off,) = struct.unpack_from("<" + fmt, data, pos)
        struct.pack_into(">" + fmt, data, pos, off)
        if off:
            n = l2le.sizeof()
            for j in range(256):
                ent = l2le.parse(bytes(data[off + j * n : off + (j + 1) * n]))
                data[off + j * n : off + (j + 1) * n] = l2be.build(ent)
    if cdh.free_off:
        fle, fbe = freeblk_layout(cckd64, False), freeblk_layout(cckd64, True)
        n = fle.sizeof()
        assert data[cdh.free_off : cdh.free_off + 8] == FREE_MAGIC
        for i in range(1, cdh.free_num + 1):
            pos = cdh.free_off + i * n
            data[pos : pos + n] = fbe.build(fle.parse(bytes(data[pos : pos + n])))
    Path(dst).write_bytes(bytes(data))


def to_chained_free_space(path) -> list[tuple[int, int]]:
    """Rewrite a CCKD file's FREE_BLK free space in the old chained form."""
    with open_image(path) as im:
        gaps = im.read_free_space()
        fb = freeblk_layout(im.cckd64, im.bigend)
        layout = cdh_layout(im.cckd64, im.bigend)
        cdh = dict(im.cdh)
    assert len(gaps) >= 2
    for i, (off, length) in enumerate(gaps):
        nxt = gaps[i + 1][0] if i + 1 < len(gaps) else 0
        patch(path, off, fb.build(dict(fb_offnxt=nxt, fb_len=length)))
    cdh.pop("_io", None)
    cdh["free_off"] = gaps[0][0]
    patch(path, 512, layout.build(cdh))
    return gaps


DATA_CTL = """\
TST001 {dev} 10
MY.DATA SEQ seq.bin TRK 5 1 0 PS FB 80 3120
MY.TEXT TEXT text.txt TRK 5 1 0 PS FB 80 3120
MY.EMPTY EMPTY TRK 1 0 0 PS FB 80 3120
"""


def make_data_files(tmp_path: Path) -> None:
    rnd = random.Random(7)
    (tmp_path / "seq.bin").write_bytes(rnd.randbytes(80 * 400))
    lines = "".join(f"LINE {i:05d} THE QUICK BROWN FOX {rnd.random():.6f}\n" for i in range(900))
    (tmp_path / "text.txt").write_text(lines)


@pytest.fixture
def loaded_volume(hercules, tmp_path) -> Path:
    """A dasdload-made 3390 volume (10 cylinders) with data sets, plain."""
    make_data_files(tmp_path)
    return hercules.dasdload(DATA_CTL.format(dev="3390"), tmp_path / "vol.3390", tmp_path)


# -- reading what Hercules writes -------------------------------------------------------


@pytest.mark.parametrize("dev", ["3390", "3380", "3350"])
@pytest.mark.parametrize("flag", ["-z", "-bz2", "-0"])
def test_dasdinit_compressed_reads_as_dasdcopy_sees_it(hercules, tmp_path, dev, flag):
    cckd = hercules.dasdinit(tmp_path / "v.cckd", dev, "VOL001", 10, flag)
    plain = hercules.dasdcopy(cckd, tmp_path / "v.plain")
    ours, theirs = tracks_of(cckd), tracks_of(plain)
    assert len(ours) == 10 * device(dev).heads
    assert ours == theirs
    # Track 0 holds the VOL1 label like the plain dasdinit volume.
    direct = hercules.dasdinit(tmp_path / "p.plain", dev, "VOL001", 10)
    assert tracks_of(direct)[0] == ours[0]


@pytest.mark.parametrize("dev", ["3390", "3380", "3350"])
@pytest.mark.parametrize("flag", ["-z", "-bz2"])
def test_dasdload_volume_every_track_matches(hercules, tmp_path, dev, flag):
    make_data_files(tmp_path)
    plain = hercules.dasdload(DATA_CTL.format(dev=dev), tmp_path / f"v.{dev}", tmp_path)
    cckd = hercules.dasdcopy(plain, tmp_path / "v.cckd", flag)
    expect = tracks_of(plain)
    assert tracks_of(cckd) == expect
    # Some tracks really carry data (records beyond R0 and the null formats).
    assert sum(len(parse_track(t)) > 1 for t in expect) >= 5
    with open_image(cckd) as im:
        assert im.check() == []
    # dasdload -z writes its own compressed file: read it as dasdcopy reads it back.
    direct = hercules.dasdload(DATA_CTL.format(dev=dev), tmp_path / "d.cckd", tmp_path, flag)
    back = hercules.dasdcopy(direct, tmp_path / "d.plain")
    assert tracks_of(direct) == tracks_of(back)


def test_linux_null_format_2(hercules, tmp_path):
    """dasdinit -linux sets cdh_nullfmt 2: L2 len 0 then means format 2 (12 x 4K)."""
    cckd = hercules.dasdinit(tmp_path / "l.cckd", "3390", "LNX001", 3, "-z", "-linux")
    plain = hercules.dasdcopy(cckd, tmp_path / "l.plain")
    ours = tracks_of(cckd)
    assert ours == tracks_of(plain)
    assert ours[20] == null_track(1, 5, 2)


def test_big_endian_file(hercules, tmp_path, loaded_volume):
    cckd = hercules.dasdcopy(loaded_volume, tmp_path / "le.cckd", "-z")
    be = tmp_path / "be.cckd"
    to_big_endian(cckd, be)
    with open_image(be) as im:
        assert im.bigend
    assert tracks_of(be) == tracks_of(loaded_volume)
    # Write into the big-endian file: it stays big-endian and consistent.
    rnd = random.Random(3)
    with open_image(be, writable=True) as im:
        done = write_tracks(im, rnd, 30)
    with open_image(be) as im:
        assert im.bigend and im.check() == []
        for trk, img in done.items():
            assert im.read_track(trk) == img
    ok, out = hercules.cckdcdsk(be, 3)
    assert ok, out
    expect = tracks_of(be)
    # cckdcdsk (read-write) converts a foreign-endian file; the tracks must not change.
    hercules.run("cckdcdsk", "-3", be)
    with open_image(be) as im:
        assert not im.bigend
    assert tracks_of(be) == expect


def test_hercules_free_space_is_read(hercules, tmp_path, loaded_volume):
    cckd = hercules.dasdcopy(loaded_volume, tmp_path / "v.cckd", "-z")
    with open_image(cckd, writable=True) as im:
        done = {}
        for _ in range(3):
            done.update(write_tracks(im, random.Random(11), 20))
        with im.transaction():  # free some space in the middle of the file
            for trk in sorted(done)[::3]:
                im.write_track(trk, null_track(*divmod(trk, 15)))
    gaps = to_chained_free_space(cckd)
    ok, out = hercules.cckdcdsk(cckd, 3)
    assert ok, out
    with open_image(cckd) as im:
        assert im.read_free_space() == gaps
        assert im.check() == []
    # A commit on a file in the old form writes the new form; Hercules still agrees.
    with open_image(cckd, writable=True) as im:
        write_tracks(im, random.Random(12), 10)
    with open_image(cckd) as im:
        assert im.check() == []
    assert_hercules_agrees(hercules, cckd, tmp_path)


# -- writing ----------------------------------------------------------------------------


@pytest.mark.parametrize("compress", ["zlib", "bzip2", "none"])
def test_written_tracks_pass_cckdcdsk_and_dasdcopy(hercules, tmp_path, compress):
    path = tmp_path / f"w-{compress}.cckd"
    rnd = random.Random(compress)
    expect = {}
    im = create_image(path, device("3390"), 20, compress=compress)
    for _ in range(5):
        expect.update(write_tracks(im, rnd, 40))
    # One track rewritten many times, growing and shrinking, ending as a null track.
    for size in (100, 50000, 700, 30000, 29, 45000, 5):
        img = build_track(3, 4, [(b"", rnd.randbytes(size))])
        im.write_track(49, img)
    im.write_track(49, null_track(3, 4))
    expect[49] = null_track(3, 4)
    im.close()
    with open_image(path) as im:
        assert isinstance(im, CckdImage)
        assert im.compression == compress
        assert im.check() == []
        assert not im.opened
        for trk, img in expect.items():
            assert im.read_track(trk) == img
        stored = [im.read_stored(t) for t in expect]
    codes = {s[0] for s in stored if s}
    assert codes <= ({0} if compress == "none" else {0, ["zlib", "bzip2"].index(compress) + 1})
    assert_hercules_agrees(hercules, path, tmp_path)


def test_null_tracks_are_stored_as_null_entries(tmp_path):
    path = tmp_path / "n.cckd"
    with create_image(path, device("3390"), 2, compress="zlib") as im:
        with im.transaction():
            im.write_track(1, build_track(0, 1, [(b"", b"x" * 3000)]))
            im.write_track(2, null_track(0, 2, 0))
            im.write_track(3, null_track(0, 3, 2))
        im.write_track(1, null_track(0, 1))
    with open_image(path) as im:
        assert im.read_stored(1) == b"" and im.read_stored(2) == b""
        assert im.read_stored(3) == b""
        assert im.read_track(2) == null_track(0, 2, 0)
        assert im.read_track(3) == null_track(0, 3, 2)
    # Back to all format-1 nulls: the L2 table goes away and L1 is 0 again.
    with open_image(path, writable=True) as im:
        with im.transaction():
            im.write_track(2, null_track(0, 2))
            im.write_track(3, null_track(0, 3))
    with open_image(path) as im:
        assert int(im.l1[0]) == 0 and im.check() == []


def test_write_into_hercules_file(hercules, tmp_path, loaded_volume):
    cckd = hercules.dasdcopy(loaded_volume, tmp_path / "v.cckd", "-bz2")
    rnd = random.Random(5)
    with open_image(cckd, writable=True) as im:
        assert im.compression == "bzip2"
        for _ in range(3):
            write_tracks(im, rnd, 25)
    assert_hercules_agrees(hercules, cckd, tmp_path)


def test_create_matches_dasdinit(hercules, tmp_path):
    for flag, compress in (("-z", "zlib"), ("-bz2", "bzip2"), ("-0", "none")):
        ref = hercules.dasdinit(tmp_path / f"ref{flag}.cckd", "3390", "VOL001", 30, flag)
        ours = tmp_path / f"ours{flag}.cckd"
        create_image(ours, device("3390"), 30, compress=compress).close()
        a, b = ref.read_bytes(), ours.read_bytes()
        assert a[:512] == b[:512]  # device header byte for byte
        ca = cdh_layout(False, False).parse(a[512:1024])
        cb = cdh_layout(False, False).parse(b[512:1024])
        for name in ("cdh_vrm", "cdh_opts", "num_L1tab", "num_L2tab", "cdh_cyls"):
            assert ca[name] == cb[name], name
        for name in ("cdh_nullfmt", "cmp_algo", "cmp_parm", "reserved"):
            assert ca[name] == cb[name], name
        assert cb.cdh_size == len(b) == L1_POS + 4 * cb.num_L1tab
        assert_hercules_agrees(hercules, ours, tmp_path)
        assert tracks_of(ours)[100] == null_track(6, 10)


def test_created_image_holds_a_volume_dasdls_lists(hercules, tmp_path, loaded_volume):
    ours = tmp_path / "ours.cckd"
    with create_image(ours, device("3390"), 10, compress="zlib") as im:
        with im.transaction():
            for trk, img in enumerate(tracks_of(loaded_volume)):
                im.write_track(trk, img)
    assert hercules.dasdls(ours) == ["MY.DATA", "MY.TEXT", "MY.EMPTY"]
    assert_hercules_agrees(hercules, ours, tmp_path)


# -- CCKD64 -----------------------------------------------------------------------------


def test_hyperion_cckd64_sample(real_fixtures):
    path = real_fixtures / CCKD64_SAMPLE
    if not path.exists():
        pytest.skip(f"{CCKD64_SAMPLE} is absent from the fixtures folder")
    with open_image(path) as im:
        assert im.kind == "cckd64" and im.cyls == 1114 and im.device.name == "3390"
        vol1 = [r for r in parse_track(im.read_track(0)) if r.rec == 3][0]
        assert vol1.key == "VOL1".encode("cp037")
        assert vol1.data[4:10].decode("cp037") == "XXXXXX"
        assert im.check() == []
        assert len(im.read_free_space()) == 2
        images = [im.read_track(t) for t in range(im.total_tracks)]
    assert sum(len(parse_track(t)) > 0 for t in images) > 10
    ckdoffline = pytest.importorskip("ckdoffline.image.base")
    other = ckdoffline.open_image(path, False)
    try:
        for trk in range(0, len(images), 7):
            assert other.read_track(*divmod(trk, 15)) == images[trk]
    finally:
        other.close()


def test_cckd64_written_is_read_by_ckdoffline(tmp_path):
    ckdoffline = pytest.importorskip("ckdoffline.image.base")
    path = tmp_path / "w.cckd64"
    rnd = random.Random(64)
    expect = {}
    im = create_image(path, device("3390"), 40, compress="zlib", cckd64=True)
    for _ in range(4):
        expect.update(write_tracks(im, rnd, 40))
    im.close()
    with open_image(path) as im:
        assert im.kind == "cckd64" and im.check() == []
        for trk, img in expect.items():
            assert im.read_track(trk) == img
    other = ckdoffline.open_image(path, False)
    try:
        other.check_space()  # its own cckdcdsk-style space accounting
        for trk, img in expect.items():
            assert other.read_track(*divmod(trk, 15)) == img
        assert other.read_track(39, 14) == null_track(39, 14)
    finally:
        other.close()


def test_cckd64_converts_to_cckd_for_hercules(hercules, tmp_path):
    path = tmp_path / "w.cckd64"
    with create_image(path, device("3390"), 12, compress="bzip2", cckd64=True) as im:
        write_tracks(im, random.Random(2), 50)
    expect = tracks_of(path)
    out = tmp_path / "w.cckd"
    convert_image(path, out, compress="zlib")
    assert tracks_of(out) == expect
    assert_hercules_agrees(hercules, out, tmp_path, expect)


# -- crash safety -----------------------------------------------------------------------


class _Crash(Exception):
    """Stands for the process dying: not an OSError, so nothing on the way catches it."""


def _crashing_open(real_open, image_name: str, after: int):
    """An ``open`` for the journal module whose image handles fail after ``after``
    writes, leaving part of the commit on disk as a crash would."""
    state = {"writes": 0}

    class Handle:
        def __init__(self, fh):
            self._fh = fh

        def write(self, data):
            if state["writes"] >= after:
                self._fh.flush()
                raise _Crash("simulated crash")
            state["writes"] += 1
            return self._fh.write(data)

        def __getattr__(self, name):
            return getattr(self._fh, name)

    def fake_open(name, mode="r", *args, **kwargs):
        fh = real_open(name, mode, *args, **kwargs)
        if os.path.basename(os.fspath(name)) == image_name and "+" in mode:
            return Handle(fh)
        return fh

    return fake_open


@pytest.mark.parametrize("after", [0, 1, 3])
def test_crash_mid_commit_rolls_back_on_next_open(hercules, tmp_path, monkeypatch, after):
    path = tmp_path / "c.cckd"
    rnd = random.Random(9)
    with create_image(path, device("3390"), 10, compress="zlib") as im:
        write_tracks(im, rnd, 40)
    before = sha(path)
    before_tracks = tracks_of(path)
    im = open_image(path, writable=True)
    monkeypatch.setattr(journal, "open", _crashing_open(open, path.name, after), raising=False)
    with pytest.raises(_Crash):
        write_tracks(im, rnd, 40)
    monkeypatch.undo()
    assert os.path.exists(str(path) + ".journal")
    if after:
        assert sha(path) != before  # part of the commit reached the file
    with pytest.raises(ConflictError):
        im.read_track(5)
    im.close()
    with open_image(path) as again:
        assert again.check() == []
    assert not os.path.exists(str(path) + ".journal")
    assert sha(path) == before
    assert tracks_of(path) == before_tracks
    ok, out = hercules.cckdcdsk(path, 3)
    assert ok, out


def test_crash_at_fsync_rolls_back(tmp_path, monkeypatch):
    path = tmp_path / "f.cckd"
    with create_image(path, device("3380"), 5, compress="bzip2") as im:
        write_tracks(im, random.Random(1), 20)
    before = sha(path)
    real_fsync = os.fsync

    def fsync(fd):
        # The journal reached the disk; the image's own flush is where power goes.
        if os.readlink(f"/proc/self/fd/{fd}") == str(path):
            raise _Crash("power lost")
        real_fsync(fd)

    im = open_image(path, writable=True)
    monkeypatch.setattr(journal.os, "fsync", fsync)
    with pytest.raises(_Crash):
        write_tracks(im, random.Random(2), 20)
    monkeypatch.undo()
    im.close()
    assert sha(path) != before
    open_image(path).close()
    assert sha(path) == before


# -- bad input --------------------------------------------------------------------------


@pytest.fixture
def small_cckd(tmp_path) -> Path:
    path = tmp_path / "s.cckd"
    with create_image(path, device("3390"), 2, compress="zlib") as im:
        with im.transaction():
            for trk in range(6):
                recs = [(b"", (b"DATA%03d" % trk) * 200), (b"KEY", bytes(range(256)) * 3)]
                im.write_track(trk, build_track(*divmod(trk, 15), recs))
    return path


def read_everything(path) -> None:
    with open_image(path) as im:
        for trk in range(im.total_tracks):
            im.read_track(trk)


def entry_of(path, trk: int) -> tuple[int, int, int, int]:
    """(L2 table offset, trkoff, len, size) of a track of a 32-bit little-endian file."""
    data = Path(path).read_bytes()
    (l2,) = struct.unpack_from("<I", data, L1_POS + 4 * (trk >> 8))
    trkoff, length, size = struct.unpack_from("<IHH", data, l2 + 8 * (trk & 255))
    return l2, trkoff, length, size


def test_truncated_files(small_cckd, tmp_path):
    data = small_cckd.read_bytes()
    l2, trkoff, length, _ = entry_of(small_cckd, 2)
    for cut in (0, 10, 511, 512, 700, 1023, 1025, l2 + 100, trkoff + 3, trkoff + length - 1):
        bad = tmp_path / f"cut{cut}.cckd"
        bad.write_bytes(data[:cut])
        with pytest.raises(FormatError) as info:
            read_everything(bad)
        assert bad.name in str(info.value)


def test_corrupt_header_id_and_geometry(small_cckd):
    patch(small_cckd, 0, b"CKD_X370")
    with pytest.raises(FormatError, match="header id"):
        open_image(small_cckd)
    patch(small_cckd, 0, b"CKD_C370")
    patch(small_cckd, 8, struct.pack("<I", 16))  # heads: a 3390 has 15
    with pytest.raises(FormatError, match="heads"):
        open_image(small_cckd)
    patch(small_cckd, 8, struct.pack("<I", 15))
    patch(small_cckd, 512 + 40, struct.pack("<I", 100))  # cyls no longer fit num_L1tab
    with pytest.raises(FormatError, match="num_L1tab"):
        open_image(small_cckd)


def test_l1_past_eof(small_cckd):
    size = small_cckd.stat().st_size
    patch(small_cckd, L1_POS, struct.pack("<I", size + 100))
    with open_image(small_cckd) as im, pytest.raises(FormatError, match="L1 entry 0") as info:
        im.read_track(3)
    assert "track 0/3" in str(info.value)


def test_l2_entries_out_of_file(small_cckd):
    size = small_cckd.stat().st_size
    l2, trkoff, length, _ = entry_of(small_cckd, 4)
    patch(small_cckd, l2 + 8 * 4, struct.pack("<IHH", size - 10, 500, 500))
    with open_image(small_cckd) as im, pytest.raises(FormatError, match="outside") as info:
        im.read_track(4)
    assert "track 0/4" in str(info.value)
    patch(small_cckd, l2 + 8 * 4, struct.pack("<IHH", trkoff, length, length - 1))
    with open_image(small_cckd) as im, pytest.raises(FormatError, match="exceeds"):
        im.read_track(4)
    # A writer refuses to plan space in such a file.
    with open_image(small_cckd, writable=True) as im, pytest.raises(FormatError):
        im.write_track(9, null_track(0, 9, 0))


def test_garbage_and_mismatched_images(small_cckd):
    l2, trkoff, length, _ = entry_of(small_cckd, 1)
    assert Path(small_cckd).read_bytes()[trkoff] == 1  # zlib
    patch(small_cckd, trkoff + 5, b"\x00garbage!" * 4)
    with open_image(small_cckd) as im, pytest.raises(FormatError, match="zlib"):
        im.read_track(1)
    _, trkoff, length, _ = entry_of(small_cckd, 2)
    patch(small_cckd, trkoff + 1, struct.pack(">HH", 0, 9))  # HA says track 0/9
    with open_image(small_cckd) as im, pytest.raises(FormatError, match="0/9"):
        im.read_track(2)
    _, trkoff, length, _ = entry_of(small_cckd, 3)
    patch(small_cckd, trkoff, b"\x07")  # unknown compression
    with open_image(small_cckd) as im, pytest.raises(FormatError, match="compression"):
        im.read_track(3)


def test_decompression_bomb_is_bounded(small_cckd):
    bomb = b"\x01" + struct.pack(">HH", 0, 5) + zlib.compress(bytes(2_000_000), 9)
    size = small_cckd.stat().st_size
    patch(small_cckd, size, bomb)
    l2, _, _, _ = entry_of(small_cckd, 5)
    patch(small_cckd, l2 + 8 * 5, struct.pack("<IHH", size, len(bomb), len(bomb)))
    with open_image(small_cckd) as im, pytest.raises(FormatError, match="expands"):
        im.read_track(5)


def test_opened_bit(small_cckd, hercules):
    patch(small_cckd, 512 + 3, bytes([0xC1]))
    with open_image(small_cckd) as im:  # reading is fine
        assert im.opened
        im.read_track(2)
    with pytest.raises(ConflictError, match="OPENED"):
        open_image(small_cckd, writable=True)
    hercules.run("cckdcdsk", "-f", "-1", small_cckd)  # Hercules' way to clear it
    with open_image(small_cckd, writable=True) as im:
        im.write_track(7, null_track(0, 7, 0))
    with open_image(small_cckd) as im:
        assert not im.opened and im.check() == []


def test_read_only_and_foreign_change(small_cckd):
    with open_image(small_cckd) as im, pytest.raises(ConflictError):
        im.write_track(1, null_track(0, 1))
    im = open_image(small_cckd, writable=True)
    # A second writer in this process is refused (tests/test_lock.py); a program that
    # takes no writer lock (an emulator) can still change the file under us.
    with pytest.raises(ConflictError, match="already open for writing"):
        open_image(small_cckd, writable=True)
    with open(small_cckd, "ab") as fh:
        fh.write(bytes(512))
    with pytest.raises(ConflictError, match="changed"):
        im.write_track(2, null_track(0, 2))
    im.close()


@pytest.fixture(scope="module")
def fuzz_base(tmp_path_factory) -> bytes:
    path = tmp_path_factory.mktemp("fuzz") / "base.cckd"
    with create_image(path, device("3390"), 1, compress="zlib") as im:
        with im.transaction():
            im.write_track(0, build_track(0, 0, [(b"VOL1", b"V" * 80)]))
            im.write_track(1, build_track(0, 1, [(b"", b"abc" * 900)]))
            im.write_track(2, build_track(0, 2, [(b"K" * 8, bytes(range(200)))]))
        im.write_track(1, build_track(0, 1, [(b"", b"xyz" * 700)]))  # leaves free space
    return path.read_bytes()


@settings(
    max_examples=250,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    flips=st.lists(
        st.tuples(st.integers(min_value=0, max_value=10**6), st.integers(1, 255)),
        min_size=1,
        max_size=4,
    ),
    write=st.booleans(),
)
def test_random_corruption_gives_only_emulator_errors(fuzz_base, tmp_path, flips, write):
    data = bytearray(fuzz_base)
    for pos, xor in flips:
        # Most flips land in the headers and tables, where a flip changes meaning.
        pos = pos % 1200 if pos % 3 else pos % len(data)
        data[pos] ^= xor
    path = tmp_path / "fuzz.cckd"
    path.write_bytes(bytes(data))
    try:
        read_everything(path)
        if write:
            with open_image(path, writable=True) as im:
                im.write_track(3, build_track(0, 3, [(b"", b"new" * 300)]))
            with open_image(path) as im:
                assert im.check() == []
                assert im.read_track(3) == build_track(0, 3, [(b"", b"new" * 300)])
    except EmulatorError:
        pass
    finally:
        for junk in (path, Path(str(path) + ".journal")):
            if junk.exists():
                junk.unlink()


# -- timing -----------------------------------------------------------------------------


def test_read_speed_100_cylinders(tmp_path, capsys):
    path = tmp_path / "t.cckd"
    rnd = random.Random(100)
    words = [rnd.randbytes(6).hex().encode() for _ in range(300)]
    with create_image(path, device("3390"), 100, compress="zlib") as im:
        with im.transaction():
            for trk in range(im.total_tracks):
                recs = [(b"", b" ".join(rnd.choices(words, k=3500))[:27998]) for _ in range(2)]
                im.write_track(trk, build_track(*divmod(trk, 15), recs))
    with open_image(path) as im:
        start = time.perf_counter()
        total = sum(len(im.read_track(t)) for t in range(im.total_tracks))
        took = time.perf_counter() - start
    with capsys.disabled():
        print(
            f"\nread {im.total_tracks} tracks ({total / 1e6:.1f} MB uncompressed, "
            f"{path.stat().st_size / 1e6:.1f} MB zlib file) in {took:.2f} s"
        )


def test_header_parse_helper_is_used(small_cckd):
    """The CDH and device header round-trip through the declarations in layouts/."""
    raw = small_cckd.read_bytes()
    hdr = parse_at(DeviceHeader, raw, 0)
    assert hdr.dh_devid == b"CKD_C370" and hdr.dh_heads == 15
    with open_image(small_cckd) as im:
        assert cdh_layout(False, False).build(im.cdh) == raw[512:1024]
