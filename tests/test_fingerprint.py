"""Fingerprints (docs/formats/fingerprint.md): content digests against the oracle,
placement independence, record groups, --since, torn reads, CCKD, damaged input."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import struct
import subprocess
import sys
import time
from pathlib import Path

import blake3
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emulator import api
from emulator.errors import EmulatorError
from emulator.pds.ispf import IspfStats
from emulator.pds.pds import Pds
from ssm import fingerprint as fpm
from ssm import fpfile
from ssm import model as m
from ssm.fingerprint import fingerprint, group_table_digest

REPO = Path(__file__).resolve().parent.parent
GENVOL = "GENERATED__hercules-3.13-dasdload__genvol.3390"
WHEN = dt.datetime(2026, 11, 2, 12, 0, tzinfo=dt.UTC)
STAMP = dt.datetime(2026, 10, 1, 9, 30)


def b3(data: bytes) -> bytes:
    return blake3.blake3(data).digest()


def lenpre(records) -> bytes:
    """The V/U stream rule: each record as len(4, BE) || data."""
    return b"".join(struct.pack(">I", len(r)) + bytes(r) for r in records)


def stream_of(vol, dsn: str, recfm: str) -> bytes:
    records = api.read_records(vol, dsn)
    return b"".join(records) if recfm.startswith("F") else lenpre(records)


@pytest.fixture(scope="module")
def system(tmp_path_factory) -> list[Path]:
    """A tiny generated system (two volumes), built once; copy before changing it."""
    from fixtures.generate import build_system

    folder = tmp_path_factory.mktemp("system")
    return build_system(folder, seed=3, size="tiny", volumes=2)


def copy_system(paths: list[Path], dst: Path) -> list[Path]:
    dst.mkdir(parents=True, exist_ok=True)
    out = []
    for p in paths:
        shutil.copy(p, dst / p.name)
        out.append(dst / p.name)
    return out


# -- content digests against the oracle ---------------------------------------------
def test_real_volume_members_match_dasdcat(real_fixtures, hercules):
    path = real_fixtures / GENVOL
    if not path.exists():
        pytest.skip(f"{GENVOL} is absent from the real fixtures folder")
    fp = fingerprint([path])
    checked = 0
    with api.open_volume(path) as vol:
        for ds in fp.datasets:
            if not ds.is_pds:
                if ds.recfm.startswith("F") and ds.records:
                    assert ds.content == b3(hercules.dasdcat_dataset(path, ds.dsname))
                continue
            assert ds.mcount == len(hercules.dasdcat_members(path, ds.dsname))
            for mem in ds.members:
                assert not mem.error
                if ds.recfm.startswith("F"):
                    raw = hercules.dasdcat_member(path, ds.dsname, mem.name)
                    assert mem.content == b3(raw), (ds.dsname, mem.name)
                else:  # U: record lengths enter the digest too
                    records = api.read_records(vol, f"{ds.dsname}({mem.name})")
                    assert mem.content == b3(lenpre(records)), (ds.dsname, mem.name)
                    assert mem.records == len(records)
                checked += 1
    assert checked > 30
    load = fp.find("REVIEW.LOAD")
    aliases = [mm for mm in load.members if mm.is_alias]
    assert aliases and all(a.alias_of for a in aliases)
    assert all(a.userdata[:3] == b"\0\0\0" for a in load.members)  # TTRs normalised


def test_generated_system_matches_reader_and_dasdcat(system, hercules):
    fp = fingerprint(system)
    assert {v.volser for v in fp.volumes} == {"SYSRES", "USER01"}
    seen_fb = seen_v = seen_u = 0
    for path in system:
        with api.open_volume(path) as vol:
            for ds in (d for d in fp.datasets if d.volser == vol.volser):
                assert not ds.flags & (m.DS_ERROR | m.DS_TORN), ds.dsname
                if ds.is_pds:
                    for mem in ds.members:
                        data = stream_of(vol, f"{ds.dsname}({mem.name})", ds.recfm)
                        assert mem.content == b3(data), (ds.dsname, mem.name)
                        assert mem.size == len(data)
                        seen_u += ds.recfm == "U"
                else:
                    data = stream_of(vol, ds.dsname, ds.recfm)
                    assert ds.size == len(data)
                    if not ds.flags & m.DS_GROUPED:
                        assert ds.content == b3(data), ds.dsname
                    seen_v += ds.recfm.startswith("V")
    # Hercules as the independent oracle for a sample of FB members.
    path_of = {v.volser: v.path for v in fp.volumes}
    for ds in (d for d in fp.datasets if d.is_pds and d.recfm.startswith("FB")):
        for mem in ds.members[:3]:
            raw = hercules.dasdcat_member(path_of[ds.volser], ds.dsname, mem.name)
            assert mem.content == b3(raw), (ds.dsname, mem.name)
            seen_fb += 1
    assert seen_fb and seen_v and seen_u


def test_variable_and_spanned_records(tmp_path):
    vol = api.create_volume(tmp_path / "v.3390", "3390", "VREC01", cyls=5)
    rng = np.random.default_rng(1)
    short = [bytes(rng.integers(0, 256, int(n), dtype=np.uint8)) for n in rng.integers(1, 200, 400)]
    api.write(
        vol, "T.VB", short, dcb=api.Dcb(recfm="VB", lrecl=255, blksize=6144), space=("TRK", 5, 1)
    )
    long = [
        bytes(rng.integers(0, 256, int(n), dtype=np.uint8)) for n in (10, 9000, 25000, 3, 17000)
    ]
    api.write(
        vol, "T.VBS", long, dcb=api.Dcb(recfm="VBS", lrecl=32756, blksize=6144), space=("TRK", 5, 1)
    )
    api.write(
        vol, "T.U", short[:50], dcb=api.Dcb(recfm="U", lrecl=0, blksize=6144), space=("TRK", 2, 1)
    )
    vol.close()
    fp = fingerprint([tmp_path / "v.3390"])
    assert fp.find("T.VB").content == b3(lenpre(short))
    assert fp.find("T.VB").records == len(short)
    assert fp.find("T.VBS").content == b3(lenpre(long))
    assert fp.find("T.VBS").records == len(long)
    assert fp.find("T.U").content == b3(lenpre(short[:50]))


# -- placement independence ---------------------------------------------------------
def _library(path: Path, devtype: str, blksize: int, order: list[int], members: dict) -> None:
    with api.create_volume(path, devtype, "PLACE1", cyls=20) as vol:
        vol.allocate("PAD.DATA", dsorg="PS", space=("TRK", 7 if devtype == "3390" else 3, 0))
        vol.allocate("LIB.SRC", dsorg="PO", recfm="FB", lrecl=80, blksize=blksize,
                     space=("TRK", 30, 5), dirblks=5)  # fmt: skip
        pds = Pds(vol, "LIB.SRC")
        names = sorted(members)
        for i in order:
            name = names[i]
            stats = IspfStats.new(len(members[name]), "HERC01", STAMP)
            pds.write(name, members[name], stats=stats)
        pds.alias("ALIAS1", names[0])
        api.write(vol, "SEQ.DATA", [r for rs in members.values() for r in rs],
                  dcb=api.Dcb(recfm="FB", lrecl=80, blksize=blksize), space=("TRK", 10, 5))  # fmt: skip


def test_placement_device_and_reblocking_keep_content(tmp_path):
    members = {
        f"MEM{i:02d}": [
            f"{i:02d} LINE {n:05d}".ljust(80).encode("cp037") for n in range(37 * i + 5)
        ]
        for i in range(8)
    }
    a, b = tmp_path / "a.3390", tmp_path / "b.3380"
    _library(a, "3390", 3120, list(range(8)), members)
    _library(b, "3380", 6160, [5, 2, 7, 0, 1, 6, 3, 4], members)
    fa = fingerprint([a])
    fb = fingerprint([b])
    da, db = fa.find("LIB.SRC"), fb.find("LIB.SRC")
    assert [x.name for x in da.members] == [x.name for x in db.members]
    for ma, mb in zip(da.members, db.members, strict=True):
        assert ma.content == mb.content
        assert ma.attrs == mb.attrs  # same ISPF statistics; TTRs are not attributes
    assert da.content == db.content
    assert da.attrs != db.attrs  # BLKSIZE differs: an attribute change
    assert fa.find("SEQ.DATA").content == fb.find("SEQ.DATA").content
    assert fa.find("SEQ.DATA").attrs != fb.find("SEQ.DATA").attrs
    alias = fa.member(da, "ALIAS1")
    assert alias.is_alias and alias.alias_of == "MEM00" and alias.content == da.members[1].content
    # Compressing the PDS moves every member: nothing the fingerprint sees changes.
    with api.open_volume(a, writable=True) as vol:
        Pds(vol, "LIB.SRC").compress()
    again = fingerprint([a]).find("LIB.SRC")
    assert again.content == da.content and again.attrs == da.attrs
    assert [x.attrs for x in again.members] == [x.attrs for x in da.members]


# -- record groups --------------------------------------------------------------------
def test_record_groups_cover_the_stream_and_survive_insertion(tmp_path):
    path = tmp_path / "g.3390"
    rng = np.random.default_rng(7)
    words = [f"{w:06X}".encode("cp037") for w in rng.integers(0, 1 << 24, 2000)]
    recs = [
        b" ".join(words[j] for j in rng.integers(0, 2000, 11)).ljust(80)[:80] for _ in range(30000)
    ]
    dcb = api.Dcb(recfm="FB", lrecl=80, blksize=27920)
    with api.create_volume(path, "3390", "GROUP1", cyls=20) as vol:
        api.write(vol, "BIG.LOG", recs, dcb=dcb, space=("CYL", 5, 1))
    fp = fingerprint([path])
    ds = fp.find("BIG.LOG")
    data = b"".join(recs)
    assert ds.size == len(data) >= fpm.GROUP_MIN_STREAM
    assert ds.flags & m.DS_GROUPED
    groups = ds.groups
    assert len(groups) > 5
    assert ds.content == group_table_digest(
        [(g.first, g.count, g.offset, g.size, g.digest) for g in groups]
    )
    off = first = 0
    for g in groups:
        assert (g.offset, g.first) == (off, first)
        assert g.size == g.count * 80  # boundaries fall between records
        assert g.digest == b3(data[g.offset : g.offset + g.size])
        assert g.size <= fpm.GROUP_MAX + 80
        off += g.size
        first += g.count
    assert (off, first) == (len(data), len(recs))
    # Insert three records near the start: later groups keep their digests.
    with api.open_volume(path, writable=True) as vol:
        api.write(vol, "BIG.LOG", recs[:100] + recs[5:8] + recs[100:])
    after = {g.digest for g in fingerprint([path]).find("BIG.LOG").groups}
    kept = sum(g.digest in after for g in groups)
    assert kept >= len(groups) - 2


# -- --since ------------------------------------------------------------------------------
def test_since_equals_full_run_after_a_day(system, tmp_path):
    from fixtures.daysim import simulate_day

    paths = copy_system(system, tmp_path / "sys")
    old = fingerprint(paths, created=WHEN)
    log = simulate_day(paths, seed=11, rate=0.2)
    assert log.entries
    full = fingerprint(paths, created=WHEN)
    inc = fingerprint(paths, since=old, created=WHEN)
    assert fpfile.dumps(inc) == fpfile.dumps(full)
    assert 0 < inc.stats["reused"] < inc.stats["datasets"]
    # An unchanged system is reused whole, from the file form too.
    fpfile.write(full, tmp_path / "full.ssmfp")
    again = fingerprint(paths, since=tmp_path / "full.ssmfp", created=WHEN)
    assert again.stats["reused"] == again.stats["datasets"]
    assert fpfile.dumps(again) == fpfile.dumps(full)


def test_cckd_image_same_content_and_since(system, tmp_path):
    plain = system[1]
    cckd = tmp_path / "user01.cckd"
    api.convert(plain, cckd, compress="zlib")
    fp_plain = fingerprint([plain])
    fp_cckd = fingerprint([cckd])
    assert fp_cckd.volumes[0].sig_kind == "stored" and fp_cckd.volumes[0].kind == "cckd"
    for a, b in zip(fp_plain.datasets, fp_cckd.datasets, strict=True):
        assert (a.dsname, a.content, a.attrs) == (b.dsname, b.content, b.attrs)
    assert np.array_equal(fp_plain.members, fp_cckd.members)
    # Change one member; --since re-reads only that data set and equals a full run.
    with api.open_volume(cckd, writable=True) as vol:
        pds = next(d for d in vol.datasets() if d.is_pds and d.recfm.startswith("F"))
        name = Pds(vol, pds.dsname).members()[0].name
        api.write(vol, f"{pds.dsname}({name})", [b"\x40" * 80] * 3)
    full = fingerprint([cckd], created=WHEN)
    inc = fingerprint([cckd], since=fp_cckd, created=WHEN)
    assert fpfile.dumps(inc) == fpfile.dumps(full)
    assert inc.stats["reused"] == inc.stats["datasets"] - 1


def test_plain_track_signatures_are_xxh3_of_the_track_images(system):
    import xxhash

    fp = fingerprint(system[1:])
    vf = fp.volumes[0]
    assert vf.sig_kind == m.SIG_SLOT == "slot-xxh3"
    read = np.flatnonzero(vf.track_sigs)
    assert len(read) > 10
    with api.open_volume(system[1]) as vol:
        for trk in read.tolist():
            image = vol.image.read_track(trk)  # home address .. end marker
            assert int(vf.track_sigs[trk]) == (xxhash.xxh3_64_intdigest(image) or 1)


def test_since_never_trusts_signatures_of_another_kind(system):
    full = fingerprint(system, created=WHEN)
    for vf in full.volumes:
        vf.sig_kind = "slot"  # as files written with the older hash say
    again = fingerprint(system, since=full, created=WHEN)
    assert again.stats["reused"] == 0
    for vf in full.volumes:
        vf.sig_kind = m.SIG_SLOT
    assert fpfile.dumps(again) == fpfile.dumps(full)


# -- torn reads -------------------------------------------------------------------------
def test_changing_marker_flags_every_data_set_torn(system, monkeypatch):
    ticks = iter(range(10**9))
    monkeypatch.setattr(fpm._Source, "marker", lambda self: (next(ticks),))
    fp = fingerprint(system[:1])
    assert fp.datasets and all(ds.torn for ds in fp.datasets)
    assert fp.stats["torn"] == len(fp.datasets)


WRITER = """
import sys, time
import numpy as np
path, a, b, seconds, stamps = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4]), sys.argv[6]
states = [open(a, "rb").read(), open(b, "rb").read()]
offset, step = int(sys.argv[5]), 56832
rng = np.random.default_rng(1)
end = time.time() + seconds
n = 0
times = []
with open(path, "r+b", buffering=0) as fh:
    while time.time() < end:
        data = states[n % 2]
        # Track by track, as Hercules writes, in a new order each pass: a half-written
        # state never comes back (a periodic writer could show a reader the same mixed
        # state at two sample times by chance).
        for pos in rng.permutation(range(0, len(data), step)).tolist():
            fh.seek(offset + pos)
            fh.write(data[pos : pos + step])
            times.append(time.monotonic())
        n += 1
np.save(stamps, np.array(times))
print(n)
"""


def test_fingerprint_beside_a_writer_never_reports_a_torn_state(tmp_path):
    """Another process rewrites a data set's tracks in place (as Hercules does, no
    journal) between two contents; every fingerprint taken meanwhile reports one of
    the two contents or flags the data set torn, unless the writer stopped in the
    middle of a pass for longer than the settle delay (what the format document says
    cannot be told from a finished update: on a busy machine the writer process can
    be off the CPU that long)."""
    path = tmp_path / "hot.3390"
    dcb = api.Dcb(recfm="FB", lrecl=80, blksize=3120)
    images = []
    with api.create_volume(path, "3390", "HOT001", cyls=10) as vol:
        for n, fill in enumerate((b"A", b"B")):
            api.write(vol, "HOT.DATA", [fill * 80] * 20000, dcb=dcb, space=("CYL", 3, 1))
            info = vol.dataset("HOT.DATA")
            first, last = info.extents[0].begin, info.extents[0].begin + info.used_tracks
            slots = np.array(vol.image.slot_view(first, last))
            images.append(tmp_path / f"state{n}.bin")
            images[-1].write_bytes(slots.tobytes())
    states = [fingerprint_content(path)]  # state B, written last
    with open(path, "r+b") as fh:  # back to state A
        fh.seek(512 + first * 56832)
        fh.write(images[0].read_bytes())
    states.append(fingerprint_content(path))
    assert states[1] != states[0]
    stamps = tmp_path / "stamps.npy"
    argv = [str(path), str(images[0]), str(images[1]), "3", str(512 + first * 56832), str(stamps)]
    proc = subprocess.Popen([sys.executable, "-c", WRITER, *argv], stdout=subprocess.PIPE)
    try:
        results = []
        while proc.poll() is None:
            began = time.monotonic()
            ds = fingerprint([path], workers=1).find("HOT.DATA")
            results.append((began, time.monotonic(), ds))
    finally:
        proc.wait(timeout=30)
    assert int(proc.stdout.read()) > 2
    assert results
    writes = np.load(stamps)
    for began, ended, ds in results:
        if not ds.torn and ds.content not in states:
            # A mixed state was reported: the writer must have paused meanwhile.
            assert _longest_pause(writes, began, ended) >= fpm.VERIFY_DELAY


def _longest_pause(writes: np.ndarray, began: float, ended: float) -> float:
    """The longest time without a write between ``began`` and ``ended`` (writes: the
    sorted times of every track write)."""
    lo = max(int(np.searchsorted(writes, began)) - 1, 0)
    hi = int(np.searchsorted(writes, ended)) + 1
    if hi > len(writes):
        return float("inf")  # the writer finished (after a whole pass) meanwhile
    window = writes[lo:hi]
    return float(np.diff(window).max()) if len(window) > 1 else float("inf")


def fingerprint_content(path) -> bytes:
    return fingerprint([path]).find("HOT.DATA").content


# -- damaged input -------------------------------------------------------------------------
def test_bad_block_descriptor_is_flagged_not_raised(tmp_path):
    path = tmp_path / "bad.3390"
    recs = [b"x" * n for n in range(1, 300)]
    with api.create_volume(path, "3390", "BAD001", cyls=5) as vol:
        api.write(vol, "V.DATA", recs, dcb=api.Dcb(recfm="VB", lrecl=304, blksize=6144),
                  space=("TRK", 5, 1))  # fmt: skip
        info = vol.dataset("V.DATA")
    good = fingerprint([path]).find("V.DATA")
    assert not good.error and good.content == b3(lenpre(recs))
    # Break the BDW of the first block: its length no longer matches the record.
    trk = info.extents[0].begin
    with open(path, "r+b") as fh:
        base = 512 + trk * 56832 + 5 + 16  # HA, R0 count and data -> R1 count
        fh.seek(base + 8)
        fh.write(b"\x00\x05")
    bad = fingerprint([path]).find("V.DATA")
    assert bad.error and bad.content != good.content


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    flips=st.lists(st.tuples(st.integers(0, 10**9), st.integers(1, 255)), min_size=1, max_size=40)
)
def test_random_damage_gives_digests_or_emulator_errors(system, tmp_path, flips):
    path = tmp_path / "fuzz.3390"
    shutil.copy(system[1], path)
    size = os.path.getsize(path)
    with open(path, "r+b") as fh:
        for pos, xor in flips:
            # Mostly inside the tracks that hold data (after the first cylinder).
            off = 512 + 56832 * 15 + pos % (size - 512 - 56832 * 15)
            fh.seek(off)
            byte = fh.read(1)[0]
            fh.seek(off)
            fh.write(bytes([byte ^ xor]))
    try:
        fp = fingerprint([path], workers=1)
    except EmulatorError:
        return
    for ds in fp.datasets:
        assert len(ds.content) == 32


# -- progress ------------------------------------------------------------------------------
def test_progress_reports_and_finishes(system):
    seen = []
    fingerprint(system, progress=seen.append)
    assert seen and seen[-1].finished
    assert seen[-1].bytes_done == seen[-1].bytes_total > 0
    assert seen[-1].datasets_done == seen[-1].datasets_total
    assert all(p.rate >= 0 for p in seen)


def test_show_json_has_algorithm_prefixed_digests(system):
    doc = fingerprint(system[:1]).to_json()
    ds = doc["datasets"][0]
    assert ds["content"].startswith("blake3:") and len(ds["content"]) == 7 + 64
    pds = next(d for d in doc["datasets"] if "members" in d)
    assert pds["members"][0]["content"].startswith("blake3:")


@pytest.mark.parametrize("recfm", ["FB", "VB", "U"])
def test_since_resumes_a_grown_sequential_data_set(tmp_path, recfm):
    """Appending to a large data set: --since takes the unchanged groups over, reads
    only the tail, and still equals a full run byte for byte."""
    path = tmp_path / "log.3390"
    rng = np.random.default_rng(3)
    words = [f"{w:06X}".encode("cp037") for w in rng.integers(0, 1 << 24, 3000)]

    def record(n: int) -> bytes:
        text = b" ".join(words[j] for j in rng.integers(0, 3000, 1 + n % 13))
        return text.ljust(80)[:80] if recfm == "FB" else text

    recs = [record(n) for n in range(30000)]
    lrecl, blksize = {"FB": (80, 27920), "VB": (255, 27998), "U": (0, 6000)}[recfm]
    dcb = api.Dcb(recfm=recfm, lrecl=lrecl, blksize=blksize)
    with api.create_volume(path, "3390", "GROW01", cyls=60) as vol:
        api.write(vol, "APP.LOG", recs, dcb=dcb, space=("CYL", 25, 10))
    old = fingerprint([path], created=WHEN)
    assert old.find("APP.LOG").flags & m.DS_GROUPED
    with api.open_volume(path, writable=True) as vol:
        api.write(vol, "APP.LOG", recs + [record(n) for n in range(2000)])
    full = fingerprint([path], created=WHEN)
    inc = fingerprint([path], since=old, created=WHEN)
    assert fpfile.dumps(inc) == fpfile.dumps(full)
    size = full.find("APP.LOG").size
    assert inc.stats["read_bytes"] < size // 4  # only the tail was read


def test_split_volume_reads_across_its_files(tmp_path, monkeypatch):
    """A volume split into several files (as dasdinit splits volumes over 2 GiB; here
    made small by lowering the per-file limit): data sets and members that cross a
    file boundary give the same digests as on a single-file copy."""
    from emulator.image import ckd

    monkeypatch.setattr(ckd, "MAX_FILE", 512 + 5 * 15 * 56832 - 1)  # 4 cylinders per file
    split = tmp_path / "split.3390"
    recs = [f"RECORD {n:06d}".ljust(80).encode("cp037") for n in range(9000)]
    with api.create_volume(split, "3390", "SPLIT1", cyls=12) as vol:
        assert len(vol.image.files) == 3
        api.write(vol, "BIG.SEQ", recs, dcb=api.Dcb(recfm="FB", lrecl=80, blksize=3120),
                  space=("CYL", 6, 1))  # fmt: skip
        lib = api.Dcb(recfm="FB", lrecl=80, blksize=6160)
        for i in range(40):
            api.write(vol, f"BIG.LIB(M{i:03d})", recs[i * 100 : i * 100 + 150], dcb=lib,
                      space=("CYL", 4, 1), dirblks=10)  # fmt: skip
    monkeypatch.undo()
    split = tmp_path / "split_1.3390"  # a split volume is opened by its first file
    single = tmp_path / "single.3390"
    api.convert(split, single)
    a, b = fingerprint([split]), fingerprint([single])
    assert a.volumes[0].kind == "ckd" and not a.datasets[0].error
    for da, db in zip(a.datasets, b.datasets, strict=True):
        assert (da.dsname, da.content, da.attrs, da.flags) == (
            db.dsname,
            db.content,
            db.attrs,
            db.flags,
        )
    assert np.array_equal(a.members, b.members)
    assert a.find("BIG.SEQ").content == b3(b"".join(recs))
