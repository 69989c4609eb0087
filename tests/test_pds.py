"""Members of partitioned data sets (FORMATS.md 6), with Hercules as the oracle.

(a) the real dasdload-built genvol fixture is read and compared with dasdcat/dasdpdsu;
(b) a PDS that dasdload builds here from a real XMIT file is read the same way;
(c) members we write (add, replace, delete, rename, alias, compress) are read back by
Hercules with identical names and bytes; failures leave the image unchanged.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emulator.errors import ConflictError, FormatError, NotFoundError, SpaceError
from emulator.pds.directory import name_to_bytes, parse_blocks
from emulator.pds.ispf import IspfStats
from emulator.pds.pds import Pds
from emulator.volume.volume import Volume

GENVOL = "GENERATED__hercules-3.13-dasdload__genvol.3390"
REVHELP = "yetacp__mvs_sysgen__revhelp.xmi"
NOW = dt.datetime(2026, 11, 24, 10, 30, 15)


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def text_records(tag: str, n: int) -> list[bytes]:
    return [f"{tag} LINE {i:05d}".ljust(80).encode("cp037") for i in range(n)]


@pytest.fixture(scope="module")
def genvol(real_fixtures):
    vol = Volume.open(real_fixtures / GENVOL)
    yield real_fixtures / GENVOL, vol
    vol.close()


# -- (a) the real fixture -------------------------------------------------------------
HELP_ALIASES = {
    "FSH": "FSHELP",
    "HEL": "FSHELP",
    "REV": "REVIEW",
    "REVED": "REVEDIT",
    "REVVSAM": "REVIEW",
}
LOAD_ALIASES = {
    name: "REVIEW"
    for name in ("FSH", "FSHELP", "HEL", "REV", "REVED", "REVLEV", "REVOUT", "REVVSAM", "RFE")
}


def test_review_help_members_and_aliases(genvol):
    _, vol = genvol
    members = Pds(vol, "REVIEW.HELP").members()
    assert len(members) == 15
    assert {m.name: m.alias_of for m in members if m.alias} == HELP_ALIASES
    assert [m.name for m in members] == sorted(
        (m.name for m in members), key=lambda n: name_to_bytes(n)
    )


def test_review_load_members_and_aliases(genvol):
    _, vol = genvol
    members = Pds(vol, "REVIEW.LOAD").members()
    assert len(members) == 14
    assert {m.name: m.alias_of for m in members if m.alias} == LOAD_ALIASES
    assert all(m.ispf is None and m.ttr_count == 1 for m in members)


@pytest.mark.parametrize("dsname", ["REVIEW.HELP", "REVIEW.LOAD", "RTI.LOADLIB", "PYTHON.XMI.PDS"])
def test_every_member_equals_what_hercules_prints(genvol, hercules, tmp_path, dsname):
    path, vol = genvol
    pds = Pds(vol, dsname)
    names = [m.name for m in pds.members()]
    assert names == hercules.dasdcat_members(path, dsname)
    seen = hercules_view(hercules, path, dsname, tmp_path)
    for name in names:
        ours = b"".join(data for _, data in pds.read_blocks(name))
        assert ours == seen[name], name
        assert b"".join(pds.read(name)) == ours


def test_review_help_ispf_statistics(genvol):
    _, vol = genvol
    stats = {m.name: m.ispf for m in Pds(vol, "REVIEW.HELP").members()}
    fshelp = stats["FSHELP"]
    # SOURCES.md #6: v50.02, created 1986-218, changed 2021-352, user GREG.
    assert fshelp.vv_mm == "50.02" and fshelp.userid == "GREG"
    assert fshelp.created.timetuple().tm_yday == 218 and fshelp.created.year == 1986
    assert fshelp.changed.date().timetuple().tm_yday == 352
    assert fshelp.changed == dt.datetime(2021, 12, 18, 21, 2, 43)
    assert (fshelp.current, fshelp.initial, fshelp.modified) == (939, 335, 0)
    # An alias carries a copy of its member's statistics.
    assert stats["FSH"] == fshelp
    # 939 FB-80 records is what the member holds.
    assert len(Pds(vol, "REVIEW.HELP").read("FSHELP")) == 939


def test_python_pds_statistics_and_binary_member(genvol):
    _, vol = genvol
    pds = Pds(vol, "PYTHON.XMI.PDS")
    testing, z15img = pds.members()
    assert testing.ispf.vv_mm == "01.00" and testing.ispf.userid == "PHIL"
    assert z15img.ispf is None and z15img.userdata == b""
    assert pds.check() == []


def test_not_found_and_not_partitioned(genvol):
    _, vol = genvol
    pds = Pds(vol, "REVIEW.HELP")
    with pytest.raises(NotFoundError, match=r"REVIEW.HELP.*NOSUCH"):
        pds.read("NOSUCH")
    assert "REVIEW" in pds and "NOSUCH" not in pds
    with pytest.raises(FormatError, match="not partitioned"):
        Pds(vol, "PYTHON.XMI.SEQ")


# -- (b) a PDS built by dasdload from a real XMIT file --------------------------------------
def test_dasdload_xmit_pds_reads_like_hercules(real_fixtures, hercules, tmp_path):
    shutil.copy(real_fixtures / REVHELP, tmp_path / "revhelp.xmi")
    image = hercules.dasdload(
        "XMITV 3390 5\nHELP.PO xmit revhelp.xmi trk 30 5 20\n", tmp_path / "x.3390", tmp_path
    )
    unloaded = hercules.dasdpdsu(image, "HELP.PO", tmp_path)
    with Volume.open(image) as vol:
        pds = Pds(vol, "HELP.PO")
        members = pds.members()
        assert [m.name for m in members] == hercules.dasdcat_members(image, "HELP.PO")
        assert {m.name: m.alias_of for m in members if m.alias} == HELP_ALIASES
        for m in members:
            assert b"".join(pds.read(m.name)) == unloaded[m.name]
        assert pds.check() == []


# -- (c) what we write, Hercules reads ------------------------------------------------
def new_volume(tmp_path: Path, name: str = "w.3390", cyls: int = 3) -> Path:
    path = tmp_path / name
    Volume.create(path, "3390", "WORK01", cyls=cyls).close()
    return path


def allocate(path: Path, dsname: str = "TEST.PDS", space=("TRK", 2, 1), dirblks=5, **dcb):
    dcb = {"recfm": "FB", "lrecl": 80, "blksize": 3120} | dcb
    with Volume.open(path, writable=True) as vol:
        vol.allocate(dsname, dsorg="PO", space=space, dirblks=dirblks, **dcb)


def hercules_view(hercules, path: Path, dsname: str, tmp_path: Path) -> dict[str, bytes]:
    """{member: bytes} as Hercules reads them: dasdpdsu for FB 80 card images (it refuses
    other block lengths), dasdcat member by member otherwise; both for FB 80."""
    names = hercules.dasdcat_members(path, dsname)
    with Volume.open(path) as vol:
        info = vol.dataset(dsname)
        cards = info.recfm.startswith("F") and info.lrecl == 80
    if not cards:
        return {n: hercules.dasdcat_member(path, dsname, n) for n in names}
    unloaded = hercules.dasdpdsu(path, dsname, tmp_path)
    assert sorted(names) == sorted(unloaded)
    for name in names[:3]:
        assert hercules.dasdcat_member(path, dsname, name) == unloaded[name]
    return unloaded


def our_view(path: Path, dsname: str) -> dict[str, bytes]:
    with Volume.open(path) as vol:
        pds = Pds(vol, dsname)
        return {m.name: b"".join(pds.read(m.name)) for m in pds.members()}


def test_write_members_then_hercules_reads_them(hercules, tmp_path):
    path = new_volume(tmp_path)
    allocate(path)
    contents = {
        "ALPHA": text_records("ALPHA", 3),
        "BETA": text_records("BETA", 200),  # several blocks, crosses a track
        "#NAT$@": text_records("NAT", 1),
        "EMPTY": [],
    }
    with Volume.open(path, writable=True) as vol:
        pds = Pds(vol, "TEST.PDS")
        for name, recs in contents.items():
            entry = pds.write(name, recs, now=NOW, userid="herc01")
            assert entry.ispf == IspfStats.new(len(recs), "HERC01", NOW)
        assert pds.check() == []
        info = vol.dataset("TEST.PDS")
        assert info.nobdb == 2 + 4 * 42 + 12
    seen = hercules_view(hercules, path, "TEST.PDS", tmp_path)
    assert seen == {name: b"".join(recs) for name, recs in contents.items()}
    assert hercules.dasdcat_members(path, "TEST.PDS") == ["#NAT$@", "ALPHA", "BETA", "EMPTY"]
    assert our_view(path, "TEST.PDS") == seen


def test_replace_delete_rename_alias_compress(hercules, tmp_path):
    path = new_volume(tmp_path)
    allocate(path)
    with Volume.open(path, writable=True) as vol:
        pds = Pds(vol, "TEST.PDS")
        for name in ("AAA", "BBB", "CCC"):
            pds.write(name, text_records(name, 60), now=NOW)
        # Replace: the new copy goes after the data, statistics move to 01.01.
        old = text_records("BBB", 60)
        new = old[:10] + [b"CHANGED".ljust(80)] + old[11:] + text_records("MORE", 5)
        later = NOW + dt.timedelta(days=1)
        entry = pds.write("BBB", new, now=later, userid="OTHER")
        stats = entry.ispf
        assert (stats.vv_mm, stats.created, stats.changed) == ("01.01", NOW.date(), later)
        assert (stats.current, stats.initial, stats.modified, stats.userid) == (
            65,
            60,
            6,
            "OTHER",
        )
        pds.alias("BEE", "BBB")
        pds.alias("CEE", "CCC")
        with pytest.raises(ConflictError):
            pds.alias("CEE", "AAA")
        with pytest.raises(NotFoundError):
            pds.alias("ZZZ", "NOSUCH")
        pds.rename("AAA", "AAA2")
        with pytest.raises(ConflictError):
            pds.rename("AAA2", "CCC")
        assert pds.delete("CEE") == ["CEE"]
        assert pds.delete("CCC") == ["CCC"]
        pds.alias("CEE", "BBB")
        assert pds.delete("BBB") == ["BBB", "BEE", "CEE"]
        pds.write("BBB", new, now=later)
        pds.alias("BEE", "BBB")
    expected = {
        "AAA2": b"".join(text_records("AAA", 60)),
        "BBB": b"".join(new),
        "BEE": b"".join(new),
    }
    assert hercules_view(hercules, path, "TEST.PDS", tmp_path) == expected
    with Volume.open(path, writable=True) as vol:
        pds = Pds(vol, "TEST.PDS")
        before = vol.dataset("TEST.PDS").lstar
        moved = pds.compress()
        after = vol.dataset("TEST.PDS")
        assert after.lstar < before
        assert moved["BBB"] == moved["BEE"]
        assert {m.name: m.alias_of for m in pds.members() if m.alias} == {"BEE": "BBB"}
        assert pds.check() == []
        # Compressing a compressed PDS moves nothing.
        assert pds.compress() == moved
    assert hercules_view(hercules, path, "TEST.PDS", tmp_path) == expected
    assert our_view(path, "TEST.PDS") == expected


def test_member_too_big_raises_space_error_and_leaves_the_image(tmp_path):
    path = new_volume(tmp_path)
    allocate(path, space=("TRK", 1, 0), dirblks=2)
    with Volume.open(path, writable=True) as vol:
        Pds(vol, "TEST.PDS").write("SMALL", text_records("S", 10), now=NOW)
    digest = sha256(path)
    with Volume.open(path, writable=True) as vol:
        with pytest.raises(SpaceError):
            Pds(vol, "TEST.PDS").write("HUGE", text_records("H", 5000), now=NOW)
    assert sha256(path) == digest
    assert list(our_view(path, "TEST.PDS")) == ["SMALL"]


def test_secondary_space_is_taken_when_full(hercules, tmp_path):
    path = new_volume(tmp_path)
    allocate(path, space=("TRK", 1, 2), dirblks=2)
    recs = text_records("BIG", 2000)  # 160000 bytes: about 3.5 tracks of 3120-byte blocks
    with Volume.open(path, writable=True) as vol:
        Pds(vol, "TEST.PDS").write("BIG", recs, now=NOW)
        assert vol.dataset("TEST.PDS").tracks > 1
    assert hercules_view(hercules, path, "TEST.PDS", tmp_path) == {"BIG": b"".join(recs)}


def test_directory_full_before_anything_is_written(tmp_path):
    path = new_volume(tmp_path)
    allocate(path, dirblks=1)
    with Volume.open(path, writable=True) as vol:
        pds = Pds(vol, "TEST.PDS")
        for i in range(5):  # 2 + 5*42 + 12 = 224 bytes: the 6th entry does not fit
            pds.write(f"M{i}", text_records("M", 2), now=NOW)
    digest = sha256(path)
    with Volume.open(path, writable=True) as vol:
        with pytest.raises(SpaceError, match="directory full: 1 blocks, need 2"):
            Pds(vol, "TEST.PDS").write("M5", text_records("M", 2), now=NOW)
        # Without statistics the 12-byte entry still fits.
        Pds(vol, "TEST.PDS").write("M5", text_records("M", 2), stats=None)
    assert sha256(path) != digest
    assert len(our_view(path, "TEST.PDS")) == 6


def test_garbage_directory_block_is_a_format_error(tmp_path):
    path = new_volume(tmp_path)
    allocate(path)
    with Volume.open(path, writable=True) as vol:
        pds = Pds(vol, "TEST.PDS")
        pds.write("A", text_records("A", 3), now=NOW)
        info = vol.dataset("TEST.PDS")
        trk = vol.trk_of(info, 0)
        image = bytearray(vol.image.read_track(trk))
        # R1 of the directory: count field at 5+16 (after HA and R0), key 8, then data.
        data_at = 5 + 8 + 8 + 8 + 8
        image[data_at : data_at + 2] = b"\x7f\xff"
        vol.image.write_track(trk, bytes(image))
    with Volume.open(path) as vol:
        with pytest.raises(FormatError, match=r"TEST\.PDS.*directory block 1") as info:
            Pds(vol, "TEST.PDS").members()
        assert "used-byte count 32767" in str(info.value)
        assert "directory block 1" in Pds(vol, "TEST.PDS").check()[0]


def test_load_modules_copied_with_aliases_keep_their_bytes(genvol, hercules, tmp_path):
    src_path, src_vol = genvol
    src = Pds(src_vol, "REVIEW.LOAD")
    path = new_volume(tmp_path, cyls=5)
    allocate(path, "MY.LOAD", space=("TRK", 15, 5), dirblks=4, recfm="U", lrecl=0, blksize=18432)
    members = src.members()
    with Volume.open(path, writable=True) as vol:
        pds = Pds(vol, "MY.LOAD")
        # An orphan first, so compress has something to drop.
        pds.write("JUNK", blocks=[b"\x00" * 100])
        for m in members:
            if m.alias:
                continue
            blocks = src.blocks_with_ttr(m.name)
            pds.write(
                m.name,
                blocks=[(b.key, b.data) for b in blocks],
                userdata=m.userdata,
                ttr_count=m.ttr_count,
                old_ttrs=[(b.tt, b.r) for b in blocks],
            )
        for m in members:
            if m.alias:
                made = pds.alias(m.name, m.alias_of)
                # The alias section built here equals the one IBM's binder wrote; only
                # the text TTR (bytes 0-2) moved with the copy.
                assert made.userdata[3:] == m.userdata[3:], m.name
                assert made.user_ttrs == pds.member(m.alias_of).user_ttrs
        pds.delete("JUNK")
        pds.compress()
        copied = {m.name: m for m in pds.members()}
        assert pds.check() == []
        for m in copied.values():
            # The text TTR in the user data points at a block of the member.
            assert m.user_ttrs[0] in {(b.tt, b.r) for b in pds.blocks_with_ttr(m.name)}
            assert m.userdata[3:] == next(x for x in members if x.name == m.name).userdata[3:]
        assert pds.members()[0].ttr > (0, 0)
    seen = hercules_view(hercules, path, "MY.LOAD", tmp_path)
    assert sorted(seen) == sorted(m.name for m in members)
    for m in members:
        assert seen[m.name] == b"".join(d for _, d in src.read_blocks(m.name)), m.name


def test_load_library_writes_no_statistics(tmp_path):
    path = new_volume(tmp_path)
    allocate(path, "U.LOAD", recfm="U", lrecl=0, blksize=6144)
    with Volume.open(path, writable=True) as vol:
        entry = Pds(vol, "U.LOAD").write("PROG", blocks=[b"\x01" * 500, b"\x02" * 30])
        assert entry.userdata == b"" and entry.ispf is None
        assert Pds(vol, "U.LOAD").read("PROG") == [b"\x01" * 500, b"\x02" * 30]


def test_invalid_member_names_are_refused(tmp_path):
    path = new_volume(tmp_path)
    allocate(path)
    with Volume.open(path, writable=True) as vol:
        pds = Pds(vol, "TEST.PDS")
        for bad in ("1ABC", "TOOLONGNAME", "A.B", ""):
            with pytest.raises(FormatError, match="invalid member name"):
                pds.write(bad, [])
        assert pds.write("lower", [b"x".ljust(80)]).name == "LOWER"


@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    st.dictionaries(
        st.from_regex(r"[A-Z@#$][A-Z0-9@#$]{0,7}", fullmatch=True),
        st.lists(st.binary(min_size=80, max_size=80), max_size=120),
        max_size=12,
    )
)
def test_random_member_sets_read_back_equal(tmp_path_factory, members):
    tmp = tmp_path_factory.mktemp("rand")
    path = new_volume(tmp, cyls=2)
    allocate(path, space=("TRK", 5, 5), dirblks=3)
    with Volume.open(path, writable=True) as vol:
        pds = Pds(vol, "TEST.PDS")
        for name, recs in members.items():
            pds.write(name, recs, now=NOW)
    assert our_view(path, "TEST.PDS") == {n: b"".join(r) for n, r in members.items()}
    with Volume.open(path) as vol:
        names = [e.name for e in Pds(vol, "TEST.PDS").members()]
        blocks = Pds(vol, "TEST.PDS")._directory_blocks(vol.dataset("TEST.PDS"))
        assert [e.name for e in parse_blocks(blocks)] == names


def test_replaced_member_leaves_its_alias_on_the_old_copy(hercules, tmp_path):
    path = new_volume(tmp_path)
    allocate(path)
    first, second = text_records("OLD", 40), text_records("NEW", 7)
    with Volume.open(path, writable=True) as vol:
        pds = Pds(vol, "TEST.PDS")
        pds.write("EMPTY", [], now=NOW)
        pds.write("MAIN", first, now=NOW)
        pds.alias("ALT", "MAIN")
        pds.write("MAIN", second, now=NOW)
        alt = pds.member("ALT")
        assert alt.alias and alt.alias_of is None  # no member holds that TTR any more
        assert pds.read("ALT") == first
        moved = pds.compress()
        assert moved["ALT"] != moved["MAIN"]
        assert pds.read("ALT") == first and pds.read("MAIN") == second
        assert pds.read("EMPTY") == []
        assert pds.check() == [] and vol.check() == []
    assert hercules_view(hercules, path, "TEST.PDS", tmp_path) == {
        "ALT": b"".join(first),
        "EMPTY": b"",
        "MAIN": b"".join(second),
    }


def test_note_list_ttrs_are_relocated_on_write_and_compress(tmp_path):
    path = new_volume(tmp_path)
    allocate(path, "OV.LOAD", recfm="U", lrecl=0, blksize=6144)
    # An overlay-style module: the note list (block 2) holds the TTRs of blocks 3 and 4,
    # the user data the TTR of the first text block (block 3) and of the note list.
    old_ttrs = [(7, 1), (7, 2), (7, 3), (8, 1)]
    note_list = b"\x00\x07\x03\x00" + b"\x00\x08\x01\x00"
    blocks = [b"\x20" * 40, note_list, b"\x01" * 3000, b"\x02" * 5000]
    userdata = b"\x00\x07\x03\x00" + b"\x00\x07\x02\x02" + b"\x00" * 16
    with Volume.open(path, writable=True) as vol:
        pds = Pds(vol, "OV.LOAD")
        pds.write("PAD", blocks=[b"\x00" * 4000])
        pds.write("OVLY", blocks=blocks, userdata=userdata, ttr_count=2, old_ttrs=old_ttrs)

        def check_relocated() -> None:
            got = pds.blocks_with_ttr("OVLY")
            ttrs = [(b.tt, b.r) for b in got]
            assert pds.member("OVLY").user_ttrs == [ttrs[2], ttrs[1]]
            expect = b"".join(bytes([t >> 8, t & 0xFF, r, 0]) for t, r in (ttrs[2], ttrs[3]))
            assert got[1].data == expect
            assert [b.data for b in got[2:]] == blocks[2:]
            assert pds.check() == []

        check_relocated()
        before = pds.member("OVLY").ttr
        pds.delete("PAD")
        pds.compress()
        assert pds.member("OVLY").ttr < before
        check_relocated()


def test_broken_member_ttr_is_a_format_error_naming_the_member(tmp_path):
    path = new_volume(tmp_path)
    allocate(path)
    with Volume.open(path, writable=True) as vol:
        pds = Pds(vol, "TEST.PDS")
        good = pds.write("GOOD", text_records("G", 3), now=NOW)
        info = vol.dataset("TEST.PDS")
        entries, dir_ttrs, _ = pds._directory(info)
        with vol.transaction():
            pds._write_directory(
                info, [*entries, replace(good, name="BAD", ttr=(0, 200))], dir_ttrs
            )
        with pytest.raises(FormatError, match=r"TEST\.PDS\(BAD\): no record R200"):
            pds.read("BAD")
        assert pds.read("GOOD") == text_records("G", 3)
        findings = pds.check()
        assert len(findings) == 1 and "member BAD" in findings[0]


def test_write_many_equals_one_by_one_and_is_all_or_nothing(hercules, tmp_path):
    members = {f"M{i:03d}": text_records(f"M{i}", 1 + i * 7) for i in range(40)}
    one, many = new_volume(tmp_path, "one.3390"), new_volume(tmp_path, "many.3390")
    for path in (one, many):
        allocate(path, space=("TRK", 10, 5), dirblks=10)
    with Volume.open(one, writable=True) as vol:
        pds = Pds(vol, "TEST.PDS")
        for name, recs in members.items():
            pds.write(name, recs, now=NOW)
    with Volume.open(many, writable=True) as vol:
        pds = Pds(vol, "TEST.PDS")
        entries = pds.write_many([(n, {"records": r, "now": NOW}) for n, r in members.items()])
        assert [e.name for e in entries] == list(members)
        assert pds.check() == [] and vol.check() == []
    assert our_view(many, "TEST.PDS") == our_view(one, "TEST.PDS")
    assert hercules_view(hercules, many, "TEST.PDS", tmp_path) == our_view(one, "TEST.PDS")
    # A batch whose directory does not fit writes nothing at all.
    digest = sha256(many)
    with Volume.open(many, writable=True) as vol:
        batch = [(f"N{i:03d}", {"records": text_records("N", 1)}) for i in range(200)]
        with pytest.raises(SpaceError, match="directory full"):
            Pds(vol, "TEST.PDS").write_many(batch)
    assert sha256(many) == digest


def test_directory_read_once_written_once(hercules, tmp_path):
    """The batch API an import uses: read the directory, change entries in memory,
    write them back in one go; Hercules sees the result."""
    path = new_volume(tmp_path)
    allocate(path, dirblks=2)
    with Volume.open(path, writable=True) as vol:
        pds = Pds(vol, "TEST.PDS")
        for name in ("ALPHA", "BETA", "GAMMA"):
            pds.write(name, text_records(name, 30), now=NOW)
        directory = pds.directory()
        assert [e.name for e in directory.entries] == ["ALPHA", "BETA", "GAMMA"]
        assert directory.blocks == 2
        assert pds.end_of_data(directory) > max(e.ttr for e in directory.entries)
        for entry in directory.entries:
            assert pds.blocks_of(entry) == pds.blocks_with_ttr(entry.name)
        beta = next(e for e in directory.entries if e.name == "BETA")
        kept = [e for e in directory.entries if e.name != "BETA"]
        pds.write_directory([*kept, replace(beta, name="DELTA")], directory)
        assert pds.check() == []
    assert hercules.dasdcat_members(path, "TEST.PDS") == ["ALPHA", "DELTA", "GAMMA"]
    assert hercules.dasdcat_member(path, "TEST.PDS", "DELTA") == b"".join(text_records("BETA", 30))


def test_write_directory_too_many_entries_leaves_the_image(tmp_path):
    path = new_volume(tmp_path)
    allocate(path, dirblks=1)
    with Volume.open(path, writable=True) as vol:
        pds = Pds(vol, "TEST.PDS")
        pds.write("ONLY", text_records("ONLY", 2), now=NOW)
        directory = pds.directory()
    before = sha256(path)
    (only,) = directory.entries
    many = [replace(only, name=f"M{i}") for i in range(20)]
    with Volume.open(path, writable=True) as vol:
        with pytest.raises(SpaceError, match="directory full"):
            Pds(vol, "TEST.PDS").write_directory(many)
    assert sha256(path) == before
