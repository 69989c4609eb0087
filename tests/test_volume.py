"""The volume layer against Hercules 3.13 as the oracle (FORMATS.md 4, 5, 6.1).

What we create, ``dasdls``/``dasdcat``/``dasdpdsu`` must read; what ``dasdinit`` and
``dasdload`` write, we must read with the same names, attributes and extents.  Every
test volume is small (10 cylinders or less) and lives in tmp_path.
"""

from __future__ import annotations

import datetime
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emulator.dataset import io
from emulator.dataset.records import block
from emulator.errors import (
    ConflictError,
    EmulatorError,
    FormatError,
    NotFoundError,
    SpaceError,
    UnsupportedError,
)
from emulator.geometry import device
from emulator.image import open_image
from emulator.layouts.ckd import DEVHDR_SIZE
from emulator.layouts.vtoc import Format1, Format4, Format5, Format7
from emulator.track import build_track, parse_track
from emulator.volume import Volume
from emulator.volume.dscb import Extent
from emulator.volume.volume import vtoc_tracks
from emulator.volume.vtoc import f5_free, merge

DAY = datetime.date(2026, 11, 23)

# -- helpers --------------------------------------------------------------------------------


def _dasdls_rows(hercules, image) -> list[dict]:
    """`dasdls -hdr -info` rows (tests/oracle.py) without the %used column, which
    depends on how full the last track is."""
    return [{k: v for k, v in r.items() if k != "used_pct"} for r in hercules.dasdls_info(image)]


def _ours_as_rows(vol: Volume) -> list[dict]:
    return [
        dict(
            dsname=d.dsname,
            dsorg=d.dsorg,
            recfm=d.recfm,
            lrecl=d.lrecl,
            blksize=d.blksize,
            keylen=d.keylen,
            tracks=d.tracks,
            extents=len(d.extents),
            sec_unit=d.space[0],
            sec_qty=d.space[2],
        )
        for d in vol.datasets()
    ]


def _without_created(rows):
    return [{k: v for k, v in r.items() if k != "created"} for r in rows]


def _records(path, trk: int) -> list[tuple[int, bytes, bytes]]:
    img = open_image(path)
    try:
        return [(r.rec, r.key, r.data) for r in parse_track(img.read_track(trk))]
    finally:
        img.close()


def _patch_record(path, trk: int, rec: int, fn) -> None:
    """Rewrite record ``rec`` of track ``trk``: fn(key, data) -> (key, data)."""
    img = open_image(path, writable=True)
    try:
        recs = parse_track(img.read_track(trk))
        new = [fn(r.key, r.data) if r.rec == rec else (r.key, r.data) for r in recs]
        cyl, head = divmod(trk, img.heads)
        img.write_track(trk, build_track(cyl, head, new))
    finally:
        img.close()


def _patch_dscb(path, addr, fn) -> None:
    """Rewrite the 140-byte DSCB at CCHHR ``addr``: fn(bytearray) mutates it."""
    img = open_image(path)
    heads = img.heads
    img.close()

    def change(key, data):
        raw = bytearray(key + data)
        fn(raw)
        return bytes(raw[:44]), bytes(raw[44:])

    _patch_record(path, addr[0] * heads + addr[1], addr[2], change)


def _f1_bytes(path, dsname: str) -> bytes:
    with Volume.open(path) as vol:
        return vol.dataset(dsname).f1


def _slot(path, trk: int) -> bytes:
    """The raw slot bytes of track ``trk`` in a single-file plain image (up to EOT)."""
    img = open_image(path)
    try:
        return img.read_track(trk)
    finally:
        img.close()


@pytest.fixture
def vol3390(tmp_path):
    vol = Volume.create(tmp_path / "vol.3390", "3390", "VOL001", cyls=10)
    yield vol
    vol.close()


# -- creating volumes ---------------------------------------------------------------------


@pytest.mark.parametrize("devtype", ["3390", "3380"])
def test_create_matches_dasdinit(tmp_path, hercules, devtype):
    ours = tmp_path / f"ours.{devtype}"
    theirs = hercules.dasdinit(tmp_path / f"theirs.{devtype}", devtype, "VOL001", 10)
    with Volume.create(ours, devtype, "VOL001", cyls=10) as vol:
        assert (vol.volser, vol.cyls, vol.heads, vol.device.name) == ("VOL001", 10, 15, devtype)
        assert vol.owner == "HERCULES"
        assert vol.vtoc_extent == (1, 14)
        assert vol.datasets() == []
        assert vol.free_extents() == [(15, 149)]
        assert vol.check() == []
    a, b = ours.read_bytes(), theirs.read_bytes()
    assert len(a) == len(b)
    trksize = device(devtype).trksize
    assert a[:DEVHDR_SIZE] == b[:DEVHDR_SIZE]
    # track 0 (IPL1, IPL2, VOL1 with the VTOC at 0/1/1) is byte for byte what dasdinit writes
    assert a[DEVHDR_SIZE : DEVHDR_SIZE + trksize] == b[DEVHDR_SIZE : DEVHDR_SIZE + trksize]
    # the tracks after the VTOC are the same null tracks
    start = DEVHDR_SIZE + 15 * trksize
    assert a[start:] == b[start:]
    assert hercules.dasdls(ours) == []


@pytest.mark.parametrize("devtype", ["3390", "3380"])
def test_new_vtoc_like_dasdload(tmp_path, hercules, devtype):
    theirs = hercules.dasdload(
        f"HERC01 {devtype} 10\nX.PS EMPTY TRK 1 0 0 PS FB 80 3120\n",
        tmp_path / f"theirs.{devtype}",
        tmp_path,
    )
    with Volume.open(theirs) as herc:
        hf4 = herc.vtoc.f4()
    with Volume.create(tmp_path / f"ours.{devtype}", devtype, "OURS01", cyls=10) as vol:
        f4 = vol.vtoc.f4()
        for field in (
            "ds4idfmt", "ds4noext", "ds4smsfg", "ds4devac", "ds4dscyl", "ds4dstrk",
            "ds4devtk", "ds4devi", "ds4devl", "ds4devk", "ds4devfg", "ds4devtl",
            "ds4devdt", "ds4devdb", "ds4eflvl", "ds4dcyl", "ds4devf2",
        ):  # fmt: skip
            assert f4[field] == hf4[field], field
        assert f4.ds4keyid == b"\x04" * 44
        per_track = device(devtype).records_per_track(44, 96)
        assert f4.ds4devdt == per_track
        # F5 is exact (DS4VTOCI 0, unlike dasdload's X'80'); DS4DSREC counts F0 DSCBs
        assert f4.ds4vtoci == 0 and hf4.ds4vtoci == 0x80
        assert f4.ds4dsrec == 14 * per_track - 2
        assert (f4.ds4vtoce.xtbcyl, f4.ds4vtoce.xtbtrk) == (0, 1)
        assert (f4.ds4vtoce.xtecyl, f4.ds4vtoce.xtetrk) == (0, 14)
        recs = _records(vol.path, 1)
        assert len(recs) == per_track
        f5 = Format5.parse(recs[1][1] + recs[1][2])
        assert f5.ds5fmtid == 0xF5 and f5.ds5keyid == b"\x05\x05\x05\x05"
        assert (f5.ds5avext[0].rtrk, f5.ds5avext[0].cyls, f5.ds5avext[0].trks) == (15, 9, 0)
        assert all(r[1] == bytes(44) and r[2] == bytes(96) for r in recs[2:])


def test_vtoc_size_rule():
    dev = device("3390")
    assert vtoc_tracks(dev, 10) == 14
    assert vtoc_tracks(dev, 3339) == 14  # 3390-3: 336 DSCBs fit 7 tracks
    assert vtoc_tracks(dev, 10017) == 29  # 3390-9: 1004 DSCBs -> 21 tracks -> end of cyl 1
    assert vtoc_tracks(dev, 1) == 1
    assert vtoc_tracks(dev, 2) == 14


@pytest.mark.parametrize("ntracks", [1, 5, 14, 45])
def test_create_with_vtoc_size(tmp_path, hercules, ntracks):
    path = tmp_path / "v.3390"
    with Volume.create(path, "3390", "VTOC01", cyls=10, vtoc_tracks=ntracks) as vol:
        assert vol.vtoc_extent == (1, ntracks)
        f4 = vol.vtoc.f4()
        assert (f4.ds4vtoce.xtecyl, f4.ds4vtoce.xtetrk) == divmod(ntracks, 15)
        assert f4.ds4dsrec == ntracks * 50 - 2 and len(vol.vtoc.slots) == ntracks * 50
        assert vol.free_extents() == [(ntracks + 1, 149)] and vol.check() == []
        vol.allocate("AFTER.VTOC", space=("TRK", 2, 0))
        assert vol.dataset("AFTER.VTOC").extents[0].begin == ntracks + 1
        assert vol.check() == []
    assert hercules.dasdls(path) == ["AFTER.VTOC"]


@pytest.mark.parametrize("ntracks,match", [(0, "1..149"), (150, "1..149"), ("5", "1..149")])
def test_create_with_bad_vtoc_size(tmp_path, ntracks, match):
    with pytest.raises(FormatError, match=match):
        Volume.create(tmp_path / "v.3390", "3390", "VTOC01", cyls=10, vtoc_tracks=ntracks)
    assert not (tmp_path / "v.3390").exists()
    with pytest.raises(FormatError, match="DS4DSREC"):  # 1400 tracks of 50 DSCBs
        Volume.create(tmp_path / "w.3390", "3390", "VTOC01", cyls=100, vtoc_tracks=1400)


def test_create_compressed(tmp_path, hercules):
    path = tmp_path / "z.cckd"
    with Volume.create(path, "3390", "ZVOL01", cyls=5, compress="zlib") as vol:
        vol.allocate("Z.PS", space=("TRK", 2, 1), created=DAY)
    with Volume.open(path) as vol:
        assert [d.dsname for d in vol.datasets()] == ["Z.PS"] and vol.check() == []
    assert hercules.dasdls(path) == ["Z.PS"]
    ok, out = hercules.cckdcdsk(path)
    assert ok, out


def test_create_refusals(tmp_path):
    with pytest.raises(UnsupportedError, match="3350"):
        Volume.create(tmp_path / "x.3350", "3350", "VOL001", cyls=5)
    with pytest.raises(FormatError, match="volume serial"):
        Volume.create(tmp_path / "x.3390", "3390", "TOOLONG", cyls=5)
    with pytest.raises(NotFoundError):
        Volume.create(tmp_path / "x.3390", "3390-77", "VOL001")
    assert not (tmp_path / "x.3390").exists()
    Volume.create(tmp_path / "y.3390", "3390", "VOL001", cyls=1).close()
    with pytest.raises(ConflictError):
        Volume.create(tmp_path / "y.3390", "3390", "VOL001", cyls=1)


# -- allocation, compared with dasdload -------------------------------------------------------

# (control line, our allocate() arguments): the same data sets made both ways
SAME = [
    ("X.PDS EMPTY TRK 2 0 5 PO FB 80 3120", dict(dsorg="PO", space=("TRK", 2, 0), dirblks=5, blksize=3120)),
    ("X.PS EMPTY TRK 1 0 0 PS FB 80 3120", dict(space=("TRK", 1, 0), blksize=3120)),
    ("X.CYL EMPTY CYL 1 1 0 PS VB 255 27998", dict(recfm="VB", lrecl=255, blksize=27998, space=("CYL", 1, 1))),
    ("X.U EMPTY TRK 3 2 3 PO U 0 6144", dict(dsorg="PO", recfm="U", space=("TRK", 3, 2), dirblks=3)),
    ("X.BIG EMPTY TRK 3 0 50 PO FB 80 3120", dict(dsorg="PO", space=("TRK", 3, 0), dirblks=50, blksize=3120)),
]  # fmt: skip


@pytest.mark.parametrize("devtype", ["3390", "3380"])
def test_allocate_like_dasdload(tmp_path, hercules, devtype):
    ctl = f"HERC01 {devtype} 10\n" + "".join(line + "\n" for line, _ in SAME)
    theirs = hercules.dasdload(ctl, tmp_path / f"theirs.{devtype}", tmp_path)
    with Volume.open(theirs) as herc:
        created = herc.dataset("X.PS").created
        their_sets = {d.dsname: d for d in herc.datasets()}
    ours = tmp_path / f"ours.{devtype}"
    with Volume.create(ours, devtype, "HERC01", cyls=10) as vol:
        for line, kwargs in SAME:
            info = vol.allocate(line.split()[0], created=created, **kwargs)
            assert vol.check() == []
            assert info.dsname == line.split()[0]
        our_sets = {d.dsname: d for d in vol.datasets()}
    # dasdls -info sees the same data sets, attributes, sizes and extent counts
    assert _dasdls_rows(hercules, ours) == _dasdls_rows(hercules, theirs)
    for name, theirs_info in their_sets.items():
        mine = our_sets[name]
        # F1 bytes agree except the system code (13 bytes) and the extents + pointer
        a, b = bytearray(mine.f1), bytearray(theirs_info.f1)
        a[62:75] = b[62:75] = bytes(13)
        a[105:] = b[105:] = bytes(35)
        assert a == b, name
        assert mine.extents[0].xttype == theirs_info.extents[0].xttype
        assert mine.tracks == theirs_info.tracks
        # the directory blocks / EOF on every used track are the same records
        for tt in range(mine.used_tracks):
            with Volume.open(ours) as v1, Volume.open(theirs) as v2:
                t1 = v1.trk_of(mine, tt)
                t2 = v2.trk_of(theirs_info, tt)
            assert _records(ours, t1) == _records(theirs, t2), (name, tt)


def test_empty_pds_readable_by_hercules(tmp_path, hercules, vol3390):
    vol3390.allocate("USER.PDS", dsorg="PO", dirblks=10, space=("TRK", 2, 1))
    vol3390.close()
    assert hercules.dasdcat_members(vol3390.path, "USER.PDS") == []
    assert hercules.dasdcat_member(vol3390.path, "USER.PDS", "*") == b""
    assert hercules.dasdpdsu(vol3390.path, "USER.PDS", tmp_path) == {}
    proc = hercules.run("dasdpdsu", vol3390.path, "USER.PDS", cwd=tmp_path)
    assert b"End of directory" in proc.stdout + proc.stderr


def test_allocate_results(vol3390):
    pds = vol3390.allocate("user.pds", dsorg="PO", dirblks=50, space=("TRK", 5, 2), created=DAY)
    assert pds.dsname == "USER.PDS" and pds.dsorg == "PO" and pds.is_pds
    assert pds.extents == [Extent(0, 15, 19, 0x01)]
    # 45 directory blocks fit a 3390 track: 5 more and the EOF go on track 1
    assert pds.lstar == (1, 6) and pds.nobdb == 14 and pds.used_tracks == 2
    assert pds.created == DAY and pds.referenced is None and pds.expires is None
    assert pds.space == ("TRK", 5, 2)
    ps = vol3390.allocate("USER.SEQ", space=("CYL", 2, 1), expires=datetime.date(2099, 1, 1))
    assert ps.extents == [Extent(0, 30, 59, 0x81)]  # whole cylinders: 1/0 is not free
    assert (
        ps.lstar == (0, 1) and ps.trbal == 58786 - 680 and ps.expires == datetime.date(2099, 1, 1)
    )
    assert ps.created == datetime.date.today()
    assert vol3390.free_extents() == [(20, 29), (60, 149)]
    assert _records(vol3390.path, 30) == [(1, b"", b"")]
    assert vol3390.trk_of(ps, 29) == 59 and vol3390.tt_of(ps, 45) == 15
    with pytest.raises(FormatError):
        vol3390.trk_of(ps, 30)
    with pytest.raises(FormatError):
        vol3390.tt_of(ps, 10)
    assert vol3390.dataset("user.seq") == ps
    assert vol3390.check() == []


@pytest.mark.parametrize(
    "devtype,recfm,lrecl,expect",
    [
        ("3390", "FB", 80, (80, 27920)),
        ("3380", "FB", 80, (80, 23440)),
        ("3390", "FB", 30000, (30000, 30000)),
        ("3390", "VB", 255, (255, 27998)),
        ("3380", "VB", None, (80, 23476)),
        ("3390", "V", 100, (100, 104)),
        ("3390", "U", None, (0, 6144)),
        ("3390", "F", 133, (133, 133)),
        ("3390", "FBA", 133, (133, 27930)),
    ],
)
def test_blksize_defaults(tmp_path, devtype, recfm, lrecl, expect):
    with Volume.create(tmp_path / "v.img", devtype, "V1", cyls=2) as vol:
        info = vol.allocate("A.B", recfm=recfm, lrecl=lrecl)
        assert (info.lrecl, info.blksize) == expect
        assert Format1.parse(info.f1).ds1dsind == 0x80 | (0x20 if expect[1] % 8 == 0 else 0)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(dsname="1BAD"), "qualifier"),
        (dict(dsname="A" * 45), "44"),
        (dict(recfm="FB", lrecl=80, blksize=3121), "multiple"),
        (dict(recfm="F", lrecl=80, blksize=160), "unblocked"),
        (dict(recfm="VB", lrecl=300, blksize=200), "LRECL 300"),
        (dict(recfm="FB", lrecl=80, blksize=32800), "BLKSIZE"),
        (dict(recfm="U", blksize=0), "BLKSIZE"),
        (dict(recfm="XY"), "RECFM"),
        (dict(recfm="B"), "F, V or U"),
        (dict(recfm="UB"), "blocked or spanned"),
        (dict(recfm="VB", lrecl="X"), "spanned"),
        (dict(recfm="V", lrecl=0x8000), "spanned"),
        (dict(recfm="VBS", lrecl="Y"), "number or X"),
        (dict(recfm="VBS", lrecl=32761), "LRECL 32761"),
        (dict(recfm="FB", lrecl=0x8000), "LRECL 32768"),
        (dict(recfm="U", lrecl=0x8000, blksize=6144), "LRECL 32768"),
        (dict(dsorg="PO"), "directory block"),
        (dict(dirblks=2), "only for PO"),
        (dict(space=("BLK", 1, 0)), "TRK or CYL"),
        (dict(space=("TRK", 0, 0)), "primary"),
        (dict(keylen=300), "KEYLEN"),
        (dict(created=datetime.date(1900, 1, 1)), "1970"),
    ],
)
def test_allocate_bad_input(vol3390, kwargs, match):
    before = Path(vol3390.path).read_bytes()
    args = dict(dsname="A.B")
    args.update(kwargs)
    with pytest.raises(FormatError, match=match):
        vol3390.allocate(**args)
    assert Path(vol3390.path).read_bytes() == before


@pytest.mark.parametrize("recfm", ["VS", "VBS"])
def test_lrecl_x(tmp_path, hercules, vol3390, recfm):
    # LRECL=X: DS1LRECL X'8000', spanned records of any length (FORMATS.md 7.2)
    info = vol3390.allocate("BIG.RECS", recfm=recfm, lrecl="X", space=("TRK", 15, 5))
    assert (info.lrecl, info.blksize, info.recfm) == (0x8000, 27998, recfm)
    assert Format1.parse(info.f1).ds1lrecl == 0x8000
    again = vol3390.allocate("BIG.SAME", recfm=recfm, lrecl=0x8000, blksize=6144)
    assert (again.lrecl, again.blksize) == (0x8000, 6144)
    recs = [bytes([i]) * n for i, n in enumerate((100_000, 0, 32_761, 70_000, 5))]
    result = io.write_records(vol3390, info, recs)
    info = vol3390.dataset("BIG.RECS")
    assert io.read_records(vol3390, info) == recs and vol3390.check() == []
    vol3390.close()
    rows = {r["dsname"]: r for r in hercules.dasdls_info(vol3390.path)}
    assert (rows["BIG.RECS"]["recfm"], rows["BIG.RECS"]["lrecl"]) == (recfm, 32768)
    raw = hercules.dasdseq_abs(vol3390.path, "BIG.RECS", tmp_path, result.tracks_used)
    assert raw == b"".join(block(info.recfm_raw, info.lrecl, info.blksize, recs))


def test_allocate_conflicts_and_space(vol3390):
    vol3390.allocate("A.B", space=("TRK", 100, 0))
    before = Path(vol3390.path).read_bytes()
    with pytest.raises(ConflictError, match="already exists"):
        vol3390.allocate("a.b")
    with pytest.raises(UnsupportedError):
        vol3390.allocate("A.DA", dsorg="DA")
    with pytest.raises(SpaceError, match=r"asked for 60 tracks; the largest free extent is 35"):
        vol3390.allocate("A.C", space=("TRK", 60, 0))
    with pytest.raises(SpaceError, match=r"asked for 45 tracks.*whole-cylinder extent is 30"):
        vol3390.allocate("A.C", space=("CYL", 3, 0))
    with pytest.raises(SpaceError, match="directory blocks need 2 tracks"):
        vol3390.allocate("A.P", dsorg="PO", dirblks=60, space=("TRK", 1, 0))
    assert Path(vol3390.path).read_bytes() == before
    assert vol3390.check() == []


def test_primary_in_up_to_five_extents(vol3390):
    for i in range(12):  # 1-track holes between 1-track data sets
        vol3390.allocate(f"HOLE.H{i}", space=("TRK", 1, 0))
        vol3390.allocate(f"KEEP.K{i}", space=("TRK", 1, 0))
    vol3390.allocate("REST.R", space=("TRK", 135 - 24 - 2, 0))  # leave 2 tracks at the end
    for i in range(12):
        vol3390.scratch(f"HOLE.H{i}")
    assert sum(e - b + 1 for b, e in vol3390.free_extents()) == 14
    info = vol3390.allocate("MULTI.X", space=("TRK", 6, 0))
    assert len(info.extents) == 5 and info.tracks == 6  # the 2-track hole and four 1-track ones
    assert [e.seq for e in info.extents] == [0, 1, 2, 3, 4]
    assert len(info.chain) == 1  # extents 4 and 5 live in an F3
    with pytest.raises(SpaceError, match="largest free extent is 1"):
        vol3390.allocate("MULTI.Y", space=("TRK", 6, 0))
    assert vol3390.check() == []


# -- extend, scratch, rename, update --------------------------------------------------------


def test_extend_to_16_extents(tmp_path, hercules, vol3390):
    vol3390.allocate("GROW.PS", space=("TRK", 1, 2), created=DAY)
    for i in range(15):
        vol3390.allocate(f"PAD.P{i}", space=("TRK", 1, 0))  # keeps extents apart
        info = vol3390.extend("GROW.PS", 1)
        assert len(info.extents) == i + 2 and info.extents[-1].tracks == 2
        assert vol3390.check() == []
    assert info.tracks == 31 and info.noepv == 16 and len(info.chain) == 1
    assert [e.seq for e in info.extents] == list(range(16))
    with pytest.raises(SpaceError, match="16 extents"):
        vol3390.extend("GROW.PS", 1)
    vol3390.close()
    rows = {r["dsname"]: r for r in hercules.dasdls_info(vol3390.path)}
    assert rows["GROW.PS"]["extents"] == 16 and rows["GROW.PS"]["tracks"] == 31
    assert len(rows) == 16
    with Volume.open(vol3390.path) as vol:
        assert vol.dataset("GROW.PS") == info and vol.check() == []


def test_extend_cyl_and_rounding(vol3390):
    vol3390.allocate("C.C", space=("CYL", 1, 2))
    info = vol3390.extend("C.C", 1)  # one secondary quantity: 2 cylinders
    assert info.extents[-1] == Extent(1, 30, 59, 0x81)
    info = vol3390.extend("C.C", 31)  # 31 tracks: two secondary quantities
    assert info.extents[-1].tracks == 60 and info.extents[-1].begin % 15 == 0
    vol3390.allocate("T.T", space=("TRK", 1, 0))
    info = vol3390.extend("T.T", 3)  # no secondary: exactly what was asked
    assert info.extents[-1].tracks == 3
    with pytest.raises(FormatError):
        vol3390.extend("T.T", 0)
    with pytest.raises(NotFoundError):
        vol3390.extend("NO.SUCH", 1)
    assert vol3390.check() == []


def test_scratch_and_rename(tmp_path, hercules, vol3390):
    free0 = vol3390.free_extents()
    dsrec0 = vol3390.vtoc.f4().ds4dsrec
    vol3390.allocate("A.ONE", space=("TRK", 3, 0))
    vol3390.allocate("A.TWO", dsorg="PO", dirblks=3, space=("CYL", 1, 0))
    vol3390.allocate("A.THREE", space=("TRK", 2, 1))
    for _ in range(4):
        vol3390.extend("A.THREE", 1)  # 5 extents: needs an F3
    vol3390.image.commit()
    assert hercules.dasdls(vol3390.path) == ["A.ONE", "A.TWO", "A.THREE"]
    assert vol3390.vtoc.f4().ds4dsrec == dsrec0 - 4

    vol3390.rename("A.TWO", "B.TWO")
    assert hercules.dasdls(vol3390.path) == ["A.ONE", "B.TWO", "A.THREE"]
    assert vol3390.dataset("B.TWO").dsorg == "PO"
    with pytest.raises(NotFoundError):
        vol3390.dataset("A.TWO")
    with pytest.raises(ConflictError):
        vol3390.rename("A.ONE", "A.THREE")
    with pytest.raises(FormatError):
        vol3390.rename("A.ONE", "BAD..NAME")

    vol3390.scratch("A.THREE")
    assert hercules.dasdls(vol3390.path) == ["A.ONE", "B.TWO"]
    assert vol3390.vtoc.f4().ds4dsrec == dsrec0 - 2  # its F1 and F3 are F0 again
    vol3390.scratch("A.ONE")
    vol3390.scratch("b.two")
    assert hercules.dasdls(vol3390.path) == []
    assert vol3390.free_extents() == free0
    assert vol3390.vtoc.f4().ds4dsrec == dsrec0
    with pytest.raises(NotFoundError):
        vol3390.scratch("A.ONE")
    assert vol3390.check() == []
    # the F5 lists exactly the free space
    chain = vol3390.vtoc.f5_chain()
    assert merge(f5_free([r for _, r in chain], 15)) == free0


def test_many_free_extents_chain_f5(vol3390):
    # 40 one-track holes need two F5 DSCBs (26 extents each)
    with vol3390.transaction():  # one commit (and one journal fsync) for all of them
        for i in range(40):
            vol3390.allocate(f"H.H{i}", space=("TRK", 1, 0))
            vol3390.allocate(f"K.K{i}", space=("TRK", 1, 0))
        for i in range(40):
            vol3390.scratch(f"H.H{i}")
    chain = vol3390.vtoc.f5_chain()
    assert len(chain) == 2 and vol3390.check() == []
    assert merge(f5_free([r for _, r in chain], 15)) == vol3390.free_extents()
    with vol3390.transaction():
        for i in range(40):
            vol3390.scratch(f"K.K{i}")
    assert len(vol3390.vtoc.f5_chain()) == 1 and vol3390.check() == []


def test_update_fields(vol3390):
    vol3390.allocate("U.PS", space=("TRK", 5, 0))
    info = vol3390.update(
        "u.ps",
        lstar=(3, 7),
        trbal=1000,
        recfm="VB",
        lrecl=255,
        blksize=6233,
        refd=DAY,
        expires=None,
        secondary=4,
    )
    assert info.lstar == (3, 7) and info.used_tracks == 4 and info.trbal == 1000
    assert (info.recfm, info.lrecl, info.blksize) == ("VB", 255, 6233)
    assert info.referenced == DAY and info.space == ("TRK", 5, 4)
    with pytest.raises(FormatError, match="past"):
        vol3390.update("U.PS", lstar=(5, 1))
    with pytest.raises(UnsupportedError, match="nosuch"):
        vol3390.update("U.PS", nosuch=1)
    with pytest.raises(FormatError):
        vol3390.update("U.PS", lrecl=99999)
    assert vol3390.dataset("U.PS") == info and vol3390.check() == []


def test_transaction_rolls_back(vol3390):
    before = Path(vol3390.path).read_bytes()
    with pytest.raises(RuntimeError), vol3390.transaction():
        vol3390.allocate("T.ONE")
        vol3390.allocate("T.TWO", dsorg="PO", dirblks=2)
        assert len(vol3390.datasets()) == 2
        raise RuntimeError("caller changed its mind")
    assert Path(vol3390.path).read_bytes() == before
    assert vol3390.datasets() == [] and vol3390.check() == []
    with vol3390.transaction():
        vol3390.allocate("T.ONE")
        vol3390.allocate("T.TWO")
    with Volume.open(vol3390.path) as again:
        assert [d.dsname for d in again.datasets()] == ["T.ONE", "T.TWO"]


def test_read_only_and_protected_tracks(tmp_path, vol3390):
    vol3390.allocate("A.B")
    vol3390.close()
    with Volume.open(vol3390.path) as vol:
        with pytest.raises(ConflictError, match="read-only"):
            vol.allocate("C.D")
        with pytest.raises(ConflictError):
            vol.write_track(20, build_track(1, 5, []))
    with Volume.open(vol3390.path, writable=True) as vol:
        with pytest.raises(ConflictError, match="VTOC"):
            vol.write_track(3, build_track(0, 3, []))
        with pytest.raises(ConflictError, match="label"):
            vol.write_track(0, build_track(0, 0, []))
        vol.write_track(20, build_track(1, 5, [(b"", b"\x01" * 80)]))
        assert parse_track(vol.read_track(20))[0].data == b"\x01" * 80


# -- reading volumes Hercules built ----------------------------------------------------------


@pytest.mark.parametrize("devtype", ["3390", "3380", "3350"])
def test_read_dasdload_volume(tmp_path, hercules, devtype):
    (tmp_path / "text.txt").write_text("".join(f"LINE {i:04d}\n" for i in range(300)))
    (tmp_path / "seq.bin").write_bytes(bytes(range(256)) * 40)
    ctl = (
        f"HERC01 {devtype} 5\n"
        "H.TEXT TEXT text.txt TRK 2 1 0 PS FB 80 800\n"
        "H.SEQ SEQ seq.bin TRK 2 0 0 PS F 1024 1024\n"
        "H.PDS EMPTY TRK 3 1 20 PO FB 80 3120\n"
        "H.EMPTY EMPTY CYL 1 0 0 PS VB 255 6233\n"
        "H.LOAD EMPTY TRK 2 0 2 PO U 0 6144\n"
    )
    image = hercules.dasdload(ctl, tmp_path / f"h.{devtype}", tmp_path)
    with Volume.open(image) as vol:
        assert vol.volser == "HERC01" and vol.device.name == devtype
        assert vol.check() == []
        sets = vol.datasets()
        assert _ours_as_rows(vol) == _without_created(_dasdls_rows(hercules, image))
        # DS4VTOCI X'80': free space comes from the extents, not the (empty) F5
        assert vol.vtoc.f4().ds4vtoci == 0x80
        used = [(0, 0), vol.vtoc_extent] + [(e.begin, e.end) for d in sets for e in d.extents]
        free = vol.free_extents()
        total = vol.cyls * vol.heads
        assert merge(used + free) == [(0, total - 1)]
        assert sum(e - b + 1 for b, e in merge(used) + free) == total  # no overlap
        by_name = {d.dsname: d for d in sets}
        # every attribute agrees with the raw DSCB bytes
        for d in sets:
            raw = vol.vtoc.get(d.dscb)
            f1 = Format1.parse(raw)
            assert (f1.ds1lrecl, f1.ds1blkl, f1.ds1recfm, f1.ds1dsorg) == (
                d.lrecl, d.blksize, d.recfm_raw, d.dsorg_raw
            )  # fmt: skip
            assert d.created == vol.dataset(d.dsname).created
        assert by_name["H.EMPTY"].extents[0].xttype == 0x81
        assert by_name["H.EMPTY"].extents[0].tracks == vol.heads
        assert by_name["H.TEXT"].used_tracks >= 1 and by_name["H.SEQ"].used_tracks >= 1
        assert by_name["H.PDS"].nobdb == 14 and by_name["H.PDS"].space == ("TRK", 3, 1)
        if devtype == "3350":
            with pytest.raises(UnsupportedError, match="3350"):
                vol.allocate("NEW.ONE")


def test_write_to_dasdload_volume_rebuilds_f5(tmp_path, hercules):
    ctl = (
        "HERC01 3390 5\nH.ONE EMPTY TRK 2 0 0 PS FB 80 3120\nH.PDS EMPTY TRK 3 0 5 PO FB 80 3120\n"
    )
    image = hercules.dasdload(ctl, tmp_path / "h.3390", tmp_path)
    with Volume.open(image, writable=True) as vol:
        assert vol.vtoc.f4().ds4vtoci == 0x80
        free = vol.free_extents()
        vol.allocate("NEW.SEQ", space=("TRK", 4, 0))
        f4 = vol.vtoc.f4()
        assert f4.ds4vtoci == 0 and vol.check() == []
        assert merge(f5_free([r for _, r in vol.vtoc.f5_chain()], 15)) == vol.free_extents()
        assert sum(e - b + 1 for b, e in free) - 4 == sum(e - b + 1 for b, e in vol.free_extents())
        vol.scratch("H.ONE")
        assert vol.check() == []
    assert hercules.dasdls(image) == ["H.PDS", "NEW.SEQ"]
    assert hercules.dasdcat_members(image, "H.PDS") == []


def test_genvol_fixture(real_fixtures):
    path = real_fixtures / "GENERATED__hercules-3.13-dasdload__genvol.3390"
    if not path.exists():
        pytest.skip("genvol.3390 fixture absent")
    with Volume.open(path) as vol:
        assert (vol.volser, vol.cyls, vol.device.name) == ("GENVOL", 4, "3390")
        assert vol.vtoc_pointer == (2, 1, 1) and vol.vtoc_extent == (31, 31)
        sets = {d.dsname: d for d in vol.datasets()}
        assert list(sets) == [
            "REVIEW.HELP", "REVIEW.LOAD", "RTI.LOADLIB", "PYTHON.XMI.PDS", "PYTHON.XMI.SEQ",
            "EMPTY.PS",
        ]  # fmt: skip
        got = {n: (d.dsorg, d.recfm, d.lrecl, d.blksize, d.tracks) for n, d in sets.items()}
        assert got == {
            "REVIEW.HELP": ("PO", "FB", 80, 6480, 15),
            "REVIEW.LOAD": ("PO", "U", 256, 18432, 8),
            "RTI.LOADLIB": ("PO", "U", 0, 13682, 2),
            "PYTHON.XMI.PDS": ("PO", "FB", 80, 27920, 3),
            "PYTHON.XMI.SEQ": ("PS", "FB", 80, 3200, 1),
            "EMPTY.PS": ("PS", "FB", 80, 3120, 1),
        }
        assert sets["REVIEW.HELP"].extents == [Extent(0, 1, 15, 0x01)]
        assert sets["REVIEW.HELP"].lstar == (14, 9) and sets["REVIEW.HELP"].nobdb == 140
        assert all(d.created == DAY for d in sets.values())
        assert vol.free_extents() == [(32, 59)]
        assert vol.check() == []
        with pytest.raises(ConflictError):
            vol.allocate("X.Y")


def test_cckd64_indexed_vtoc(tmp_path, real_fixtures):
    src = real_fixtures / "SDL-Hercules-390__hyperion__3390.cckd64"
    if not src.exists():
        pytest.skip("3390.cckd64 fixture absent")
    try:
        vol = Volume.open(src)
    except (UnsupportedError, ImportError) as exc:
        pytest.skip(f"CCKD64 images cannot be opened yet: {exc}")
    with vol:
        assert vol.volser == "XXXXXX" and vol.indexed and vol.vtoc_extent == (1, 29)
        sets = {d.dsname: d for d in vol.datasets()}
        assert list(sets) == ["SYS1.VTOCIX.XXXXXX", "FISHTEST.FOUR-K"]
        four = sets["FISHTEST.FOUR-K"]
        assert (four.dsorg, four.recfm, four.lrecl, four.blksize) == ("PS", "F", 4096, 4096)
        assert four.extents == [Extent(0, 45, 46, 0x01)] and four.lstar == (1, 3)
        assert four.created == datetime.date(2024, 2, 21) == four.referenced
        # the image has one cylinder more than DS4DSCYL (an alternate); it is never free
        assert vol.cyls == 1114 and vol.space_tracks == 1113 * 15
        assert vol.free_extents() == [(47, 1113 * 15 - 1)]
        assert vol.check() == []
    copy = tmp_path / "copy.cckd64"
    shutil.copyfile(src, copy)
    with Volume.open(copy, writable=True) as vol:
        before = copy.read_bytes()
        with pytest.raises(ConflictError, match="indexed VTOC"):
            vol.allocate("NEW.DATA")
        with pytest.raises(ConflictError, match="indexed VTOC"):
            vol.scratch("FISHTEST.FOUR-K")
    assert copy.read_bytes() == before


# -- damaged volumes: FormatError naming file and place, findings from check() --------------


def test_missing_vol1(tmp_path, hercules):
    raw = tmp_path / "raw.3390"
    hercules.dasdinit(raw, "3390", None, 2, "-r")  # raw: no VOL1
    with pytest.raises(FormatError, match="no VOL1") as err:
        Volume.open(raw)
    assert err.value.path == str(raw) and "0/0" in err.value.where


def test_vtoc_pointer_past_end(tmp_path, vol3390):
    vol3390.close()

    def bad(key, data):
        return key, data[:11] + (5000).to_bytes(2, "big") + data[13:]

    _patch_record(vol3390.path, 0, 3, bad)
    with pytest.raises(FormatError, match="past the end of the volume") as err:
        Volume.open(vol3390.path)
    assert "VOL1" in err.value.where and "vol.3390" in str(err.value)


def test_vtoc_pointer_not_f4(tmp_path, vol3390):
    vol3390.close()
    _patch_record(vol3390.path, 0, 3, lambda k, d: (k, d[:15] + b"\x02" + d[16:]))  # -> the F5
    with pytest.raises(FormatError, match="Format-4"):
        Volume.open(vol3390.path)


def test_f3_chain_loop(tmp_path, vol3390):
    vol3390.allocate("LOOP.PS", space=("TRK", 1, 1))
    for i in range(3):
        vol3390.allocate(f"PAD.P{i}")
        vol3390.extend("LOOP.PS", 1)
    f3 = vol3390.dataset("LOOP.PS").chain[0]
    vol3390.close()

    def loop(raw):
        raw[135:140] = bytes([0, f3[0], 0, f3[1], f3[2]])  # F3 points at itself

    _patch_dscb(vol3390.path, f3, loop)
    with Volume.open(vol3390.path) as vol:
        with pytest.raises(FormatError, match="loops") as err:
            vol.datasets()
        assert "LOOP.PS" in err.value.where and err.value.path == vol3390.path
        with pytest.raises(FormatError, match="loops"):
            vol.dataset("LOOP.PS")
        findings = vol.check()
        assert any("loops" in f and "LOOP.PS" in f for f in findings)
    with Volume.open(vol3390.path, writable=True) as vol, pytest.raises(FormatError):
        vol.allocate("NEW.X")


def test_extent_past_end(tmp_path, vol3390):
    addr = vol3390.allocate("FAR.PS").dscb
    vol3390.close()

    def far(raw):
        raw[111:113] = (400).to_bytes(2, "big")  # DS1EXT1 upper CC

    _patch_dscb(vol3390.path, addr, far)
    with Volume.open(vol3390.path) as vol:
        with pytest.raises(FormatError, match="extent 1 ends past cylinder 9") as err:
            vol.datasets()
        assert "FAR.PS" in err.value.where and "0/1/3" in err.value.where
        assert any("past cylinder 9" in f for f in vol.check())


def test_check_findings(tmp_path, vol3390):
    a = vol3390.allocate("A.A", space=("TRK", 5, 0))
    b = vol3390.allocate("B.B", space=("TRK", 5, 0))
    vol3390.close()
    path = vol3390.path

    def overlap(raw):  # B.B's extent now starts inside A.A
        raw[107:111] = bytes([0, 1, 0, 3])

    _patch_dscb(path, b.dscb, overlap)

    def counts(raw):
        f4 = Format4.parse(bytes(raw))
        f4.ds4dsrec += 1
        f4.ds4hpchr.rec = 3
        raw[:] = Format4.build(f4)

    _patch_dscb(path, (0, 1, 1), counts)

    def f5(raw):
        raw[4:6] = (21).to_bytes(2, "big")  # first free extent moved

    _patch_dscb(path, (0, 1, 2), f5)
    with Volume.open(path) as vol:
        findings = vol.check()
        text = "\n".join(findings)
        assert "B.B extent 1" in text and "overlaps A.A extent 1" in text
        assert "DS4DSREC" in text and "DS4HPCHR" in text and "free space disagrees" in text
        assert a.dsname in text
    assert len(findings) == 4, findings


def _one_cylinder(tmp_path_factory, f7: bool = False) -> Path:
    base = tmp_path_factory.mktemp("fuzz") / "base.3390"
    with Volume.create(base, "3390", "FUZZ01", cyls=2) as vol:
        vol.allocate("F.PS", space=("TRK", 1, 1))
    if f7:  # DS4EFVLD set by "someone else": from the next write on, free space is in F7s
        _patch_dscb(base, (0, 1, 1), lambda raw: raw.__setitem__(58, raw[58] | 0x20))
    with Volume.open(base, writable=True) as vol:
        vol.allocate("F.PDS", dsorg="PO", dirblks=3, space=("TRK", 2, 0))
        for _ in range(3):
            vol.extend("F.PS", 1)
        assert vol.check() == [] and bool(vol.vtoc.f7_chain()) == f7
    return base


@pytest.fixture(scope="module")
def fuzz_base(tmp_path_factory):
    return _one_cylinder(tmp_path_factory)


@pytest.fixture(scope="module")
def fuzz_base_f7(tmp_path_factory):
    return _one_cylinder(tmp_path_factory, f7=True)


EDITS = st.lists(
    st.tuples(st.integers(1, 7), st.integers(0, 139), st.integers(0, 255)), min_size=1, max_size=6
)


def _fuzz(tmp_path_factory, base, edits) -> None:
    """Random bytes in the first VTOC records (F4, F5, F7, F1, F3): opening, listing and
    checking either work or raise an EmulatorError, never another exception, never hang."""
    path = tmp_path_factory.mktemp("case") / "v.3390"
    shutil.copyfile(base, path)
    pokes: dict[int, list[tuple[int, int]]] = {}
    for rec, offset, value in edits:
        pokes.setdefault(rec, []).append((offset, value))

    def poke(key, data):
        raw = bytearray(key + data)
        for offset, value in pokes.get(len(seen) + 1, []):
            raw[offset] = value
        seen.append(1)
        return bytes(raw[:44]), bytes(raw[44:])

    seen: list[int] = []
    img = open_image(path, writable=True)
    recs = parse_track(img.read_track(1))
    img.write_track(1, build_track(0, 1, [poke(r.key, r.data) for r in recs]))
    img.close()
    try:
        with Volume.open(path) as vol:
            vol.check()
            vol.free_extents()
            for d in vol.datasets():
                vol.trk_of(d, 0)
    except EmulatorError:
        pass
    try:  # a write either works (leaving exact free space) or is refused
        with Volume.open(path, writable=True) as vol:
            vol.allocate("NEW.ONE", space=("TRK", 1, 0))
            assert not any("free space" in f for f in vol.check())
    except EmulatorError:
        pass


FUZZ = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@FUZZ
@given(EDITS)
def test_corrupt_dscbs_give_only_emulator_errors(tmp_path_factory, fuzz_base, edits):
    _fuzz(tmp_path_factory, fuzz_base, edits)


@FUZZ
@given(EDITS)
def test_corrupt_f7_vtoc_gives_only_emulator_errors(tmp_path_factory, fuzz_base_f7, edits):
    _fuzz(tmp_path_factory, fuzz_base_f7, edits)


# -- volumes of more than 65535 tracks: Format-7 free space (FORMATS.md 5.7) ------------------


def _f7_listed(path) -> list[tuple[int, int]]:
    """The free extents the F7 chain lists, decoded from the raw DSCBs here: each entry
    is (first free track, last free track + 1)."""
    out = []
    with Volume.open(path) as vol:
        ptr = vol.vtoc.f4().ds4efptr
        addr = (int.from_bytes(ptr[:2], "big"), int.from_bytes(ptr[2:4], "big"), ptr[4])
        seen = 0
        while addr != (0, 0, 0) and seen < 100:
            f7 = Format7.parse(vol.vtoc.get(addr))
            assert f7.ds7keyid == b"\x07" * 4 and f7.ds7fmtid == 0xF7
            out += [(x.start, x.end - 1) for x in list(f7.ds7extnt) + list(f7.ds7adext) if x.end]
            addr, seen = (f7.ds7ptrds.cyl, f7.ds7ptrds.head, f7.ds7ptrds.rec), seen + 1
    return out


def _complement_of_extents(vol: Volume) -> list[tuple[int, int]]:
    """Every track that no extent (track 0, the VTOC, the data sets) uses, computed here."""
    used = sorted([(0, 0), vol.vtoc_extent] + [
        (e.begin, e.end) for d in vol.datasets() for e in d.extents
    ])  # fmt: skip
    free, pos = [], 0
    for b, e in used:
        if b > pos:
            free.append((pos, b - 1))
        pos = max(pos, e + 1)
    total = vol.cyls * vol.heads
    return free + ([(pos, total - 1)] if pos < total else [])


def _in_one_commit(path, change) -> None:
    """Open the volume, apply ``change(vol)`` as one transaction, check it, close.  Each
    step below is one commit on a freshly opened image, and is checked again after the
    reopen, so what reaches the file (not only the in-memory VTOC) is what is tested."""
    with Volume.open(path, writable=True) as vol:
        with vol.transaction():
            change(vol)
            assert vol.check() == []
    with Volume.open(path) as vol:
        assert vol.check() == []
        assert _f7_listed(path) == _complement_of_extents(vol) == vol.free_extents()


def test_3390_9_keeps_exact_f7_free_space(tmp_path, hercules):
    path = tmp_path / "big.cckd"
    with Volume.create(path, "3390-9", "BIG009", compress="zlib") as vol:
        total = vol.cyls * vol.heads
        assert (vol.cyls, total) == (10017, 150255)
        f4 = vol.vtoc.f4()
        # as s390-tools and Hercules write it: DS4DOSBT + DS4EFVLD, level 7, F7 at R3
        assert (f4.ds4vtoci, f4.ds4eflvl, f4.ds4efptr) == (0xA0, 7, bytes.fromhex("0000000103"))
        assert (f4.ds4hpchr.rec, f4.ds4dsrec) == (3, 29 * 50 - 3)
        assert f5_free([r for _, r in vol.vtoc.f5_chain()], 15) == []  # the F5 is empty
        assert _f7_listed(path) == [(30, total - 1)] and vol.check() == []

    def fill(vol):  # data sets all over the volume: TRK and CYL, one of > 99999 tracks
        vol.allocate("BIG.HUGE", space=("CYL", 7000, 0), created=DAY)
        for i in range(40):
            unit = "CYL" if i % 3 == 0 else "TRK"
            vol.allocate(f"BIG.D{i:02d}", space=(unit, 40 + i, 5), created=DAY)
            assert vol.check() == []
        vol.allocate("BIG.TAIL", space=("CYL", 2000, 0), created=DAY)
        assert vol.dataset("BIG.TAIL").extents[0].end >= (vol.cyls - 100) * 15

    def holes(vol):  # more free extents than one F7 holds (16)
        for i in range(0, 40, 2):
            vol.scratch(f"BIG.D{i:02d}")
            assert vol.check() == []
        for i in (1, 5, 9):
            vol.extend(f"BIG.D{i:02d}", 3)

    def more(vol):
        vol.allocate("BIG.PDS", dsorg="PO", dirblks=20, space=("TRK", 10, 5), created=DAY)
        vol.allocate("BIG.LRECLX", recfm="VBS", lrecl="X", space=("TRK", 5, 5), created=DAY)

    for change in (fill, holes, more):
        _in_one_commit(path, change)
    with Volume.open(path) as vol:
        assert len(vol.free_extents()) > 16 and len(vol.vtoc.f7_chain()) == 2
        names = [d.dsname for d in vol.datasets()]
        rows = _ours_as_rows(vol)
    # Hercules lists the same data sets with the same sizes (the F7s do not bother it)
    assert hercules.dasdls(path) == names
    assert _without_created(_dasdls_rows(hercules, path)) == rows
    ok, out = hercules.cckdcdsk(path)
    assert ok, out


def test_dasdload_3390_9_gets_f7_at_first_write(tmp_path, hercules):
    # dasdload leaves a big volume's F5 empty with DS4DOSBT set and writes no F7
    ctl = "HERC09 3390-9\nH.ONE EMPTY CYL 1 0 0 PS FB 80 3120\n"
    image = hercules.dasdload(ctl, tmp_path / "h.cckd", tmp_path, "-z")
    with Volume.open(image) as vol:
        f4 = vol.vtoc.f4()
        assert (f4.ds4vtoci, f4.ds4eflvl) == (0x80, 0) and vol.check() == []
    _in_one_commit(image, lambda vol: vol.allocate("NEW.ONE", space=("CYL", 3, 1)))
    with Volume.open(image) as vol:
        f4 = vol.vtoc.f4()
        assert (f4.ds4vtoci, f4.ds4eflvl) == (0xA0, 7)
    _in_one_commit(image, lambda vol: vol.scratch("H.ONE"))
    assert hercules.dasdls(image) == ["NEW.ONE"]


def test_read_f7_volume_written_by_hercules(tmp_path, hercules):
    # dasdinit -linux writes an F7 (Hercules' Linux-format VTOC) with the end word
    # total-1 for a whole-volume extent from track 2.  Read with IBM's "last + 1" rule
    # (s390-tools), that leaves the last track out: check() says so; it is not a reason
    # to refuse the volume, and the first write makes the F7 exact.
    path = hercules.dasdinit(tmp_path / "l.cckd", "3390", "LNX001", 4400, "-z", "-linux")
    total = 4400 * 15
    with Volume.open(path) as vol:
        assert vol.datasets() == [] and vol.free_extents() == [(2, total - 1)]
        assert _f7_listed(path) == [(2, total - 2)]
        findings = vol.check()
        assert any("free but not in F7: 0/2-4399/14" in f for f in findings), findings
        assert not any("F7 lists" in f and "overlap" in f for f in findings)
    with Volume.open(path, writable=True) as vol:
        vol.allocate("LNX.DATA", space=("CYL", 10, 0))
        assert _f7_listed(path) == _complement_of_extents(vol) == [(2, 14), (165, total - 1)]
        assert not any("F7" in f for f in vol.check())
    assert hercules.dasdls(path) == ["LNX.DATA"]


def test_eav_sizes_are_refused(tmp_path):
    with pytest.raises(UnsupportedError, match="65520"):
        Volume.create(tmp_path / "eav.cckd", "3390", "EAV001", cyls=65521, compress="zlib")
    assert not (tmp_path / "eav.cckd").exists()
    # a 3390-54 (65520 cylinders) is the largest: its last cylinder is a plain CCHH
    path = tmp_path / "m54.cckd"
    with Volume.create(path, "3390-54", "M54001", compress="zlib") as vol:
        assert vol.cyls == 65520 and vol.vtoc.f4().ds4dscyl == 65520
        first_free_cyl = (vol.vtoc_extent[1] + 1) // 15
        with vol.transaction():  # one commit on this open image
            vol.allocate("FILL.ALL", space=("CYL", 65519 - first_free_cyl, 0), created=DAY)
            info = vol.allocate("LAST.CYL", space=("CYL", 1, 0), created=DAY)
        assert info.extents == [Extent(0, 65519 * 15, 65520 * 15 - 1, 0x81)]
        f1 = Format1.parse(info.f1)
        assert (f1.ds1ext1.xtbcyl, f1.ds1ext1.xtbtrk) == (65519, 0)
        assert (f1.ds1ext1.xtecyl, f1.ds1ext1.xtetrk) == (65519, 14)
        assert vol.check() == [] and vol.free_extents() == []
        assert _f7_listed(path) == []
    # an F4 that says EAV (DS4DSCYL X'FFFE') makes the volume read only
    _patch_dscb(path, (0, 1, 1), lambda raw: raw.__setitem__(slice(62, 64), b"\xff\xfe"))
    with Volume.open(path, writable=True) as vol:
        with pytest.raises(UnsupportedError, match="extended address volume"):
            vol.scratch("LAST.CYL")


def test_create_by_model(tmp_path):
    with Volume.create(tmp_path / "k.cckd", "3380-K", "MODELK", compress="zlib") as vol:
        assert (vol.cyls, vol.device.name) == (2655, "3380")
        assert vol.vtoc.f4().ds4dscyl == 2655 and vol.check() == []


def test_vol1_pointer_not_first_vtoc_record(vol3390):
    # swap the F4 and F5 (R1 <-> R2) and point VOL1 at the F4 in R2: still readable,
    # but check() says the pointer is not the first record of the VTOC
    vol3390.close()
    path = vol3390.path
    recs = _records(path, 1)
    img = open_image(path, writable=True)
    swapped = [(recs[1][1], recs[1][2]), (recs[0][1], recs[0][2])] + [
        (k, d) for _, k, d in recs[2:]
    ]
    img.write_track(1, build_track(0, 1, swapped))
    img.close()
    _patch_record(path, 0, 3, lambda k, d: (k, d[:15] + b"\x02" + d[16:]))
    with Volume.open(path) as vol:
        assert vol.datasets() == []
        findings = vol.check()
        assert len(findings) == 1 and "VTOC pointer 0/1/2 is not the first record" in findings[0]


def test_refusal_inside_transaction_does_not_poison_it(vol3390):
    # checks that can fail run before any write, so a caller may catch them and go on
    with vol3390.transaction():
        vol3390.allocate("T.ONE", space=("TRK", 10, 0))
        with pytest.raises(ConflictError):
            vol3390.allocate("T.ONE")
        with pytest.raises(SpaceError):
            vol3390.allocate("T.BIG", space=("TRK", 500, 0))
        with pytest.raises(NotFoundError):
            vol3390.scratch("T.NONE")
        with pytest.raises(SpaceError):
            vol3390.extend("T.ONE", 500)
        vol3390.allocate("T.TWO")
    with Volume.open(vol3390.path) as again:
        assert [d.dsname for d in again.datasets()] == ["T.ONE", "T.TWO"]
        assert again.check() == []
