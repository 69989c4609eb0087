"""The image layer: plain and split CKD images, conversion, crash safety, and the
count-field kernels (FORMATS.md 1.1-1.5, 2).

Hercules 3.13 is the oracle: `dasdinit`/`dasdload` images are read as they are, and
what we write is read back by `dasdcopy`, `dasdls` and `cckdcdsk`.
"""

from __future__ import annotations

import hashlib
import os
import random
import struct
from pathlib import Path

import numpy as np
import pytest
from conftest import Crash, crash_commit
from hypothesis import given, settings
from hypothesis import strategies as st

import emulator.image.ckd as ckd_mod
from emulator.errors import ConflictError, EmulatorError, FormatError
from emulator.geometry import device
from emulator.image import convert_image, create_image, open_image
from emulator.image.cckd import CckdImage
from emulator.image.ckd import CkdImage, piece_name
from emulator.kernels.tracks import (
    ERR_NO_EOT,
    ERR_OK,
    ERR_OVERRUN,
    ERR_SHORT,
    track_records,
    walk_slots,
)
from emulator.layouts import parse_at
from emulator.layouts.ckd import DeviceHeader
from emulator.track import build_track, null_track, parse_track

DATA_CTL = """\
TST001 {dev} {cyls}
MY.DATA SEQ seq.bin TRK 5 1 0 PS FB 80 3120
MY.TEXT TEXT text.txt TRK 5 1 0 PS FB 80 3120
MY.EMPTY EMPTY TRK 1 0 0 PS FB 80 3120
"""


def make_data_files(tmp_path: Path) -> None:
    rnd = random.Random(17)
    (tmp_path / "seq.bin").write_bytes(rnd.randbytes(80 * 300))
    text = "".join(f"RECORD {i:05d} {rnd.random():.8f} SOME TEXT\n" for i in range(700))
    (tmp_path / "text.txt").write_text(text)


@pytest.fixture
def loaded_volume(hercules, tmp_path) -> Path:
    make_data_files(tmp_path)
    return hercules.dasdload(DATA_CTL.format(dev="3390", cyls=10), tmp_path / "vol.3390", tmp_path)


def tracks_of(path) -> list[bytes]:
    with open_image(path) as im:
        return [im.read_track(t) for t in range(im.total_tracks)]


def sha(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def random_track(rnd: random.Random, cyl: int, head: int, budget: int) -> bytes:
    recs = []
    left = budget
    for _ in range(rnd.randrange(0, 10)):
        kl = rnd.choice([0, 4, 8])
        dl = min(rnd.randrange(0, 5000), max(0, left - kl - 8))
        left -= 8 + kl + dl
        recs.append((rnd.randbytes(kl), rnd.randbytes(dl)))
        if left < 100:
            break
    return build_track(cyl, head, recs)


# -- plain images -----------------------------------------------------------------------


@pytest.mark.parametrize("dev", ["3390", "3380", "3350"])
def test_dasdinit_plain_volume(hercules, tmp_path, dev):
    path = hercules.dasdinit(tmp_path / f"v.{dev}", dev, "VOL001", 5)
    with open_image(path) as im:
        assert isinstance(im, CkdImage)
        assert (im.device.name, im.cyls, im.heads) == (dev, 5, device(dev).heads)
        assert im.trksize == device(dev).trksize
        vol1 = [r for r in parse_track(im.read_track(0)) if r.rec == 3][0]
        assert vol1.key == "VOL1".encode("cp037")
        assert vol1.data[4:10].decode("cp037") == "VOL001"
        assert im.read_track(im.total_tracks - 1) == null_track(4, im.heads - 1)


def test_plain_writes_read_by_hercules(hercules, tmp_path, loaded_volume):
    rnd = random.Random(1)
    expect = tracks_of(loaded_volume)
    with open_image(loaded_volume, writable=True) as im:
        with im.transaction():
            for _ in range(30):
                trk = rnd.randrange(20, im.total_tracks)  # keep the VTOC and data sets
                expect[trk] = random_track(rnd, *divmod(trk, 15), 50000)
                im.write_track(trk, expect[trk])
    assert tracks_of(loaded_volume) == expect
    cckd = hercules.dasdcopy(loaded_volume, tmp_path / "v.cckd", "-z")
    assert tracks_of(cckd) == expect
    assert hercules.dasdls(loaded_volume) == ["MY.DATA", "MY.TEXT", "MY.EMPTY"]


def test_piece_names():
    assert piece_name("big.3390", 1) == "big_1.3390"
    assert piece_name("big.3390", 2) == "big_2.3390"
    assert piece_name("big.3390", 10) == "big_A.3390"
    assert piece_name("big_1.3390", 3) == "big_3.3390"
    assert piece_name("vol", 2) == "vol_2"
    assert piece_name("a.b.c", 1) == "a_1.b.c"
    assert piece_name(os.path.join("d", "x.ckd"), 2) == os.path.join("d", "x_2.ckd")


@pytest.fixture
def small_pieces(monkeypatch):
    """Split volumes of 4 cylinders per file instead of 2519 (3390)."""
    monkeypatch.setattr(ckd_mod, "max_cyls_per_file", lambda trksize, heads: 4)


def test_split_volume(hercules, tmp_path, small_pieces):
    path = tmp_path / "big.3390"
    with create_image(path, device("3390"), 10) as im:
        assert im.files == [str(tmp_path / f"big_{n}.3390") for n in (1, 2, 3)]
        rnd = random.Random(4)
        expect = {}
        with im.transaction():  # one commit touching all three pieces
            for trk in (0, 59, 60, 61, 119, 120, 149):
                expect[trk] = random_track(rnd, *divmod(trk, 15), 50000)
                im.write_track(trk, expect[trk])
    assert not path.exists()
    headers = []
    for n in (1, 2, 3):
        raw = (tmp_path / f"big_{n}.3390").read_bytes()
        hdr = parse_at(DeviceHeader, raw, 0)
        headers.append((hdr.dh_fileseq, hdr.dh_highcyl, (len(raw) - 512) // (56832 * 15)))
    assert headers == [(1, 3, 4), (2, 7, 4), (3, 0, 2)]
    first = tmp_path / "big_1.3390"
    with open_image(first) as im:
        assert im.cyls == 10
        for trk, img in expect.items():
            assert im.read_track(trk) == img
        assert im.read_track(75) == null_track(5, 0)
    # Hercules follows the pieces the same way.
    cckd = hercules.dasdcopy(first, tmp_path / "whole.cckd", "-z")
    assert tracks_of(cckd) == tracks_of(first)
    with pytest.raises(FormatError, match="piece 2"):
        open_image(tmp_path / "big_2.3390")


def test_split_volume_errors(tmp_path, small_pieces):
    with create_image(tmp_path / "s.3390", device("3390"), 10):
        pass
    first, second, third = (tmp_path / f"s_{n}.3390" for n in (1, 2, 3))
    keep = second.read_bytes()
    with open(second, "r+b") as fh:
        fh.seek(18)
        fh.write(struct.pack("<H", 6))  # highcyl says 6, the piece holds 4..7
    with pytest.raises(FormatError, match="cylinder 6"):
        open_image(first)
    second.write_bytes(keep)
    third.unlink()
    with pytest.raises(FormatError, match="missing"):
        open_image(first)


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("DASD_SLOW") != "1", reason="set DASD_SLOW=1 (writes 2 GB)")
def test_dasdinit_split_2521_cylinders(hercules, tmp_path):
    hercules.dasdinit(tmp_path / "big.3390", "3390", "BIG001", 2521)
    first = tmp_path / "big_1.3390"
    with open_image(first) as im:
        assert im.cyls == 2521 and len(im.files) == 2
        assert im.read_track(2519 * 15) == null_track(2519, 0)
        assert im.read_track(2521 * 15 - 1) == null_track(2520, 14)
        assert parse_track(im.read_track(0))[2].key == "VOL1".encode("cp037")


# -- crash safety (plain) ---------------------------------------------------------------


def test_crash_in_split_commit_rolls_back(tmp_path, monkeypatch, small_pieces):
    with create_image(tmp_path / "j.3390", device("3390"), 10):
        pass
    names = [tmp_path / f"j_{n}.3390" for n in (1, 2, 3)]
    before = [sha(n) for n in names]
    im = open_image(names[0], writable=True)
    with monkeypatch.context() as crash:
        crash_commit(crash, 2)
        with pytest.raises(Crash), im.transaction():
            for trk in (1, 70, 130):
                im.write_track(trk, build_track(*divmod(trk, 15), [(b"", b"x" * 999)]))
    im.close()
    assert [sha(n) for n in names] != before
    open_image(names[0]).close()
    assert [sha(n) for n in names] == before
    assert not os.path.exists(str(names[0]) + ".journal")


# -- conversion -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("compress", "cckd64"), [("zlib", False), ("bzip2", False), ("none", False), ("zlib", True)]
)
def test_convert_plain_to_compressed(hercules, tmp_path, loaded_volume, compress, cckd64):
    out = tmp_path / "out.cckd"
    convert_image(loaded_volume, out, compress=compress, cckd64=cckd64)
    expect = tracks_of(loaded_volume)
    with open_image(out) as im:
        assert isinstance(im, CckdImage) and im.cckd64 == cckd64
        assert im.compression == compress and im.check() == []
    assert tracks_of(out) == expect
    leftovers = [n for n in os.listdir(tmp_path) if "tmp" in n or n.endswith(".journal")]
    assert leftovers == []
    if not cckd64:
        ok, output = hercules.cckdcdsk(out, 3)
        assert ok, output
        assert hercules.dasdls(out) == ["MY.DATA", "MY.TEXT", "MY.EMPTY"]
        back = hercules.dasdcopy(out, tmp_path / "back.3390")
        assert tracks_of(back) == expect


def test_convert_compressed_to_plain_matches_dasdcopy(hercules, tmp_path, loaded_volume):
    cckd = hercules.dasdcopy(loaded_volume, tmp_path / "v.cckd", "-bz2")
    ours = tmp_path / "ours.3390"
    convert_image(cckd, ours)
    theirs = hercules.dasdcopy(cckd, tmp_path / "theirs.3390")
    assert ours.read_bytes() == theirs.read_bytes()  # byte for byte, padding included


def test_convert_to_split_plain(tmp_path, loaded_volume, small_pieces):
    convert_image(loaded_volume, tmp_path / "sp.3390")
    assert not (tmp_path / "sp.3390").exists()
    assert tracks_of(tmp_path / "sp_1.3390") == tracks_of(loaded_volume)
    assert (tmp_path / "sp_3.3390").exists() and not (tmp_path / "sp_4.3390").exists()
    leftovers = [n for n in os.listdir(tmp_path) if "tmp" in n or n.endswith(".journal")]
    assert leftovers == []


def test_convert_is_all_or_nothing(tmp_path, loaded_volume, monkeypatch):
    before = set(os.listdir(tmp_path))
    real = CckdImage._commit_tracks
    calls = {"n": 0}

    def failing(self, tracks, slots):
        calls["n"] += 1
        raise OSError("disk full")

    monkeypatch.setattr(CckdImage, "_commit_tracks", failing)
    with pytest.raises(OSError, match="disk full"):
        convert_image(loaded_volume, tmp_path / "x.cckd", compress="zlib")
    assert calls["n"] == 1
    assert set(os.listdir(tmp_path)) == before
    monkeypatch.setattr(CckdImage, "_commit_tracks", real)

    # A bad source track stops the conversion the same way.
    with open(loaded_volume, "r+b") as fh:
        fh.seek(512 + 7 * 56832 + 5)
        fh.write(b"\x00\x00\x00\x07\x00\x00\xff\xf0" * 10)  # records run past the slot
    with pytest.raises(FormatError, match="0/7"):
        convert_image(loaded_volume, tmp_path / "y.3390")
    assert set(os.listdir(tmp_path)) == before


def test_convert_refuses_existing_output(tmp_path, loaded_volume):
    out = tmp_path / "exists.cckd"
    out.write_bytes(b"keep me")
    with pytest.raises(ConflictError):
        convert_image(loaded_volume, out, compress="zlib")
    assert out.read_bytes() == b"keep me"


# -- kernels ----------------------------------------------------------------------------

records_strategy = st.lists(
    st.tuples(st.binary(max_size=12), st.integers(min_value=0, max_value=3000)), max_size=12
)


@settings(max_examples=150, deadline=None)
@given(records=records_strategy, cyl=st.integers(0, 65535), head=st.integers(0, 14))
def test_track_records_agree_with_parse_track(records, cyl, head):
    image = build_track(cyl, head, [(k, bytes([n & 255]) * n) for k, n in records])
    offs, keylens, datalens = track_records(image)
    parsed = parse_track(image)
    assert list(keylens) == [len(r.key) for r in parsed]
    assert list(datalens) == [len(r.data) for r in parsed]
    for off, rec in zip(offs, parsed, strict=True):
        assert struct.unpack_from(">HHB", image, off) == (rec.cyl, rec.head, rec.rec)
    all_offs, all_kl, _ = track_records(image, include_r0=True)
    assert all_offs[0] == 5 and all_kl[0] == 0 and len(all_offs) == len(offs) + 1


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=600), slot=st.integers(min_value=1, max_value=200))
def test_walk_never_fails_on_garbage(data, slot):
    buf = np.frombuffer(data, dtype=np.uint8)
    starts, offs, recnos, keylens, datalens, used, err = walk_slots(buf, slot)
    ntrk = len(data) // slot
    assert len(starts) == ntrk + 1 and len(err) == ntrk
    for t in range(ntrk):
        base, lo, hi = t * slot, starts[t], starts[t + 1]
        assert all(base + 5 <= o < base + slot for o in offs[lo:hi])
        assert (used[t] > 0) == (err[t] == ERR_OK)
        assert used[t] <= slot


def test_walk_error_codes():
    good = build_track(0, 1, [(b"K", b"D" * 50)])
    buf = np.frombuffer(good, dtype=np.uint8)
    assert walk_slots(buf, len(good))[6][0] == ERR_OK
    assert walk_slots(buf[:10], 10)[6][0] == ERR_SHORT
    assert walk_slots(buf[:-3], len(good) - 3)[6][0] == ERR_NO_EOT
    overrun = bytearray(good)
    overrun[21 + 6 : 21 + 8] = b"\xff\x00"  # R1 data length 65280
    assert walk_slots(np.frombuffer(bytes(overrun), np.uint8), len(good))[6][0] == ERR_OVERRUN
    with pytest.raises(FormatError, match="end-of-track"):
        track_records(good[:-3])
    with pytest.raises(EmulatorError):
        track_records(b"")


def test_bulk_walk_of_a_plain_image(loaded_volume):
    with open_image(loaded_volume) as im:
        tracks = [im.read_track(t) for t in range(im.total_tracks)]
        trksize = im.trksize
    mm = np.memmap(loaded_volume, dtype=np.uint8, mode="r")
    starts, offs, recnos, keylens, datalens, used, err = walk_slots(mm, trksize, start=512)
    assert (err == ERR_OK).all()
    assert list(used) == [len(t) for t in tracks]
    for t, image in enumerate(tracks):
        recs = parse_track(image, include_r0=True)
        lo, hi = starts[t], starts[t + 1]
        assert list(recnos[lo:hi]) == [r.rec for r in recs]
        assert list(keylens[lo:hi]) == [len(r.key) for r in recs]
        assert list(datalens[lo:hi]) == [len(r.data) for r in recs]
        assert all(512 + t * trksize <= o < 512 + (t + 1) * trksize for o in offs[lo:hi])
    assert int(starts[-1]) > im.total_tracks  # data tracks hold more than R0
