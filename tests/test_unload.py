"""IEBCOPY unload files (FORMATS.md 8): reading every real unload, loading into a PDS
(Hercules dasdload + dasdcat as the oracle), writing the z/OS form (Hercules dasdload
method VS must load it), round trips, PDSE unloads and damaged input."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emulator.dataset import records as rf
from emulator.errors import EmulatorError, FormatError, NotFoundError, UnsupportedError
from emulator.interchange import unload as ul
from emulator.pds.pds import Pds
from emulator.volume.volume import Volume

DDTLMOD = "DERIVED__jake-mainframe__MVSDDT__mvsddt.het.file2.DDTLMOD.iebcopy"
XMIT_PDS = {
    # fixture -> (members incl. aliases, aliases, COPYR1 length)
    "CBTTape__CBT746__LOADLIB.xmi": (11, 0, 56),
    "mainframed__xmi__test_pds_msg.xmi": (2, 0, 56),
    "yetacp__mvs_sysgen__revhelp.xmi": (15, 5, 52),
    "yetacp__mvs_sysgen__rev370ld.xmi": (14, 9, 52),
}
MOSHIX = "moshix__mvs__MOSHIX.WORK.SMF.XMIT"
CHECKP = "mainframed__Enumeration__CHECKP.XMIT"
INMR01 = "INMR01".encode("cp037")
INMR03 = "INMR03".encode("cp037")
INMR06 = "INMR06".encode("cp037")


# -- a small NETDATA segment reader, only to get the unload records out of the XMIT
# -- fixtures (FORMATS.md 9.1): the real reader lives in emulator.interchange.xmit.
def netdata_files(data: bytes) -> list[list[bytes]]:
    """Data records of each file (after its INMR03), up to INMR06."""
    files: list[list[bytes]] = []
    pos, cur = 0, b""
    while pos + 2 <= len(data):
        length, flags = data[pos], data[pos + 1]
        if length < 2:
            raise AssertionError(f"bad segment at {pos}")
        cur += data[pos + 2 : pos + length]
        pos += length
        if flags & 0x40:
            if flags & 0x20:
                if cur[:6] == INMR03:
                    files.append([])
                elif cur[:6] == INMR06:
                    break
            else:
                files[-1].append(cur)
            cur = b""
    return files


def unload_records(path: Path) -> list[bytes]:
    for records in netdata_files(path.read_bytes()):
        if records and records[0][1:4] == b"\xca\x6d\x0f":
            return records
    raise AssertionError(f"{path.name} carries no unload")


def fixture(real_fixtures: Path, name: str) -> Path:
    path = real_fixtures / name
    if not path.is_file():
        pytest.skip(f"fixture {name} is absent from {real_fixtures}")
    return path


def ddt_records(real_fixtures: Path) -> list[bytes]:
    data = fixture(real_fixtures, DDTLMOD).read_bytes()
    return rf.deblock(0x58, 0, ul._split_blocks(data, None))


def member_bytes(vol: Volume, dsn: str, name: str) -> bytes:
    return b"".join(d for _, d in Pds(vol, dsn).read_blocks(name))


def new_volume(path: Path, volser: str = "WORK01", cyls: int = 5) -> Volume:
    return Volume.create(path, "3390", volser, cyls=cyls)


def assert_same_as_hercules(hercules, vol: Volume, dsn: str, herc_image: Path) -> None:
    """Same directory (names, TTRs, alias bits, user data) and the same bytes."""
    ours = Pds(vol, dsn).members()
    with Volume.open(herc_image) as hv:
        theirs = Pds(hv, dsn).members()
    assert [e.name for e in ours] == hercules.dasdcat_members(herc_image, dsn)
    assert ours == theirs
    for e in ours:
        assert member_bytes(vol, dsn, e.name) == hercules.dasdcat_member(herc_image, dsn, e.name)
    assert Pds(vol, dsn).check() == []


# ---------------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------------
def test_standalone_unload_with_bdw_and_sdw(real_fixtures):
    u = ul.read_unload_file(fixture(real_fixtures, DDTLMOD))
    assert u.copyr1_size == 52
    assert (u.recfm_text, u.blksize, u.keylen) == ("U", 19069, 0)
    assert u.heads == 30 and u.ucbtype == bytes.fromhex("3070200B")
    assert u.extents == [ul.DebExtent(48, 0, 51, 29, 120)]
    assert [e.name for e in u.entries] == ["DDT", "DDTSYM", "IGC0023C", "MVSDDT"]
    for e in u.entries:
        assert len(e.userdata) == 24 and e.ttr_count == 1
        blocks = u.blocks(e)
        assert blocks[0].ttr == e.ttr
        # the text TTR in the user data names a block of the member
        assert e.user_ttrs[0] in {b.ttr for b in blocks}


@pytest.mark.parametrize("name", sorted(XMIT_PDS))
def test_xmit_unloads_read(real_fixtures, name):
    count, aliases, c1 = XMIT_PDS[name]
    u = ul.read_unload(unload_records(fixture(real_fixtures, name)))
    assert u.copyr1_size == c1
    assert len(u.entries) == count
    assert sum(e.alias for e in u.entries) == aliases
    for e in u.entries:
        if e.alias:
            assert e.alias_of in {m.name for m in u.members}
        assert u.blocks(e) or u.eof_ttr(e) == e.ttr


def test_record_forms_are_detected(real_fixtures, tmp_path):
    """The same unload as BDW+SDW blocks, as SDW records without BDWs and as bare
    records (52-byte COPYR1, so the stream reader must find the COPYR2 itself)."""
    recs = ddt_records(real_fixtures)
    ref = ul.read_unload(recs)
    segs = b"".join((len(r) + 4).to_bytes(2, "big") + b"\0\0" + r for r in recs)
    for data, form in ((segs, "segments"), (b"".join(recs), "stream")):
        assert ul.detect_form(data) == form
        u = ul.parse_unload_bytes(data)
        assert u.entries == ref.entries and u.copyr1_size == 52
        assert [r.blocks for r in u.runs] == [r.blocks for r in ref.runs]


def test_pdse_data_library_is_read(real_fixtures):
    """MOSHIX.WORK.SMF (z/OS 1.13, COPYR1 X'01'): 13 members whose ISPF line counts
    match the records read; the PDSE attribute records are skipped."""
    u = ul.read_unload(unload_records(fixture(real_fixtures, MOSHIX)))
    assert u.pdse and u.copyr1_size == 56
    assert len(u.entries) == 13
    for e in u.entries:
        stats = e.ispf
        assert stats is not None
        data = b"".join(b.data for b in u.blocks(e))
        assert len(data) % 80 == 0
        assert len(data) // 80 == stats.current


def test_pdse_unload_loads_into_a_pds(real_fixtures, tmp_path):
    u = ul.read_unload(unload_records(fixture(real_fixtures, MOSHIX)))
    with new_volume(tmp_path / "w.3390") as vol:
        done = ul.load_unload(vol, "MOSHIX.WORK.SMF", u)
        assert [c.status for c in done] == ["copied"] * 13
        pds = Pds(vol, "MOSHIX.WORK.SMF")
        for e in u.entries:
            assert pds.member(e.name).userdata == e.userdata
            assert pds.read(e.name) == rf.deblock(0x90, 80, [b.data for b in u.blocks(e)])
        assert pds.check() == []


def test_program_object_unload_is_refused(real_fixtures):
    recs = unload_records(fixture(real_fixtures, CHECKP))
    with pytest.raises(UnsupportedError) as info:
        ul.read_unload(recs)
    assert "PDSE unload" in str(info.value) and "program objects" in str(info.value)


# ---------------------------------------------------------------------------------
# Loading, against Hercules
# ---------------------------------------------------------------------------------
def test_standalone_unload_loads_like_hercules(real_fixtures, hercules, tmp_path):
    """Hercules dasdload VS wants bare records and a 56-byte COPYR1 (SOURCES.md #17)."""
    recs = ddt_records(real_fixtures)
    (tmp_path / "ddt.vs").write_bytes(b"".join([recs[0] + bytes(4), *recs[1:]]))
    herc = hercules.dasdload("HERC01 3390 5\nDDT.LOAD vs ddt.vs\n", tmp_path / "h.3390", tmp_path)
    u = ul.read_unload_file(fixture(real_fixtures, DDTLMOD))
    with new_volume(tmp_path / "o.3390") as vol:
        done = ul.load_unload(vol, "DDT.LOAD", u)
        assert {c.name for c in done} == {"DDT", "DDTSYM", "IGC0023C", "MVSDDT"}
        assert_same_as_hercules(hercules, vol, "DDT.LOAD", herc)


@pytest.mark.parametrize("name", sorted(XMIT_PDS))
def test_xmit_unloads_load_like_hercules(real_fixtures, hercules, tmp_path, name):
    src = fixture(real_fixtures, name)
    shutil.copy(src, tmp_path / "in.xmi")
    herc = hercules.dasdload("HERC01 3390 5\nLIB.PDS xmit in.xmi\n", tmp_path / "h.3390", tmp_path)
    u = ul.read_unload(unload_records(src))
    with new_volume(tmp_path / "o.3390") as vol:
        ul.load_unload(vol, "LIB.PDS", u)
        assert_same_as_hercules(hercules, vol, "LIB.PDS", herc)
        info = vol.dataset("LIB.PDS")
        assert (info.recfm_raw, info.lrecl, info.blksize) == (u.recfm, u.lrecl, u.blksize)


def test_aliases_keep_their_member(real_fixtures, tmp_path):
    u = ul.read_unload(unload_records(fixture(real_fixtures, "yetacp__mvs_sysgen__rev370ld.xmi")))
    with new_volume(tmp_path / "o.3390") as vol:
        ul.load_unload(vol, "REVIEW.LOAD", u)
        entries = {e.name: e for e in Pds(vol, "REVIEW.LOAD").members()}
        review = entries["REVIEW"]
        for e in entries.values():
            if e.alias:
                assert e.alias_of == "REVIEW" and e.ttr == review.ttr
                assert len(e.userdata) == 34  # the alias section is kept
                assert e.user_ttrs[0] == review.user_ttrs[0]


def test_load_into_existing_pds_select_rename_no_replace(real_fixtures, tmp_path):
    u = ul.read_unload(unload_records(fixture(real_fixtures, "yetacp__mvs_sysgen__revhelp.xmi")))
    with new_volume(tmp_path / "o.3390") as vol:
        first = ul.load_unload(vol, "HELP", u, select=["REVLEV", "REVOUT"])
        assert [(c.name, c.status) for c in first] == [("REVLEV", "copied"), ("REVOUT", "copied")]
        again = ul.load_unload(
            vol, "HELP", u, replace=False, select={"REVLEV": None, "RFE": "NEWRFE"}
        )
        assert [(c.name, c.source, c.status) for c in again] == [
            ("REVLEV", "REVLEV", "not replaced"),
            ("NEWRFE", "RFE", "copied"),
        ]
        assert member_bytes(vol, "HELP", "NEWRFE") == b"".join(b.data for b in u.blocks("RFE"))
        with pytest.raises(NotFoundError):
            ul.load_unload(vol, "HELP", u, select=["NOSUCH"])


def test_load_is_one_transaction(real_fixtures, tmp_path):
    """A directory too small for the unload: SpaceError, and the image is unchanged."""
    u = ul.read_unload(unload_records(fixture(real_fixtures, "yetacp__mvs_sysgen__revhelp.xmi")))
    with new_volume(tmp_path / "o.3390") as vol:
        vol.allocate("SMALL.PDS", "PO", "FB", 80, 6480, space=("TRK", 30, 5), dirblks=1)
        before = [vol.read_track(t) for t in range(vol.heads * 2)]
        with pytest.raises(EmulatorError):
            ul.load_unload(vol, "SMALL.PDS", u)
        assert [vol.read_track(t) for t in range(vol.heads * 2)] == before
        assert Pds(vol, "SMALL.PDS").members() == []


def test_incompatible_dcb_is_refused(real_fixtures, tmp_path):
    u = ul.read_unload(unload_records(fixture(real_fixtures, "yetacp__mvs_sysgen__rev370ld.xmi")))
    with new_volume(tmp_path / "o.3390") as vol:
        vol.allocate("TEXT.PDS", "PO", "FB", 80, 3200, space=("TRK", 5, 1), dirblks=2)
        with pytest.raises(EmulatorError, match="record formats differ"):
            ul.load_unload(vol, "TEXT.PDS", u)


# ---------------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name", ["yetacp__mvs_sysgen__rev370ld.xmi", "yetacp__mvs_sysgen__revhelp.xmi"]
)
def test_written_unload_loads_in_hercules(real_fixtures, hercules, tmp_path, name):
    u = ul.read_unload(unload_records(fixture(real_fixtures, name)))
    with new_volume(tmp_path / "o.3390") as vol:
        ul.load_unload(vol, "LIB.PDS", u)
        size = ul.write_unload_file(tmp_path / "lib.vs", vol, "LIB.PDS", descriptors=False)
        assert size == (tmp_path / "lib.vs").stat().st_size
        herc = hercules.dasdload(
            "HERC01 3390 5\nLIB.PDS vs lib.vs\n", tmp_path / "h.3390", tmp_path
        )
        ours = Pds(vol, "LIB.PDS").members()
        assert hercules.dasdcat_members(herc, "LIB.PDS") == [e.name for e in ours]
        with Volume.open(herc) as hv:
            theirs = Pds(hv, "LIB.PDS").members()
            assert [(e.name, e.alias, e.alias_of) for e in theirs] == [
                (e.name, e.alias, e.alias_of) for e in ours
            ]
            assert Pds(hv, "LIB.PDS").check() == []
        for e in ours:
            assert member_bytes(vol, "LIB.PDS", e.name) == hercules.dasdcat_member(
                herc, "LIB.PDS", e.name
            )


def test_written_records_are_the_zos_form(real_fixtures, tmp_path):
    u = ul.read_unload(unload_records(fixture(real_fixtures, "mainframed__xmi__test_pds_msg.xmi")))
    with new_volume(tmp_path / "o.3390") as vol:
        ul.load_unload(vol, "PYTHON.XMI.PDS", u)
        recs = ul.write_unload(vol, "PYTHON.XMI.PDS")
        info = vol.dataset("PYTHON.XMI.PDS")
        entries = Pds(vol, "PYTHON.XMI.PDS").members()
    assert len(recs[0]) == 56 and recs[0][1:4] == b"\xca\x6d\x0f"
    assert recs[0][16:20] == bytes.fromhex("3050200F") and recs[0][26:28] == (15).to_bytes(2, "big")
    assert len(recs[1]) == 276 and recs[1][0] == 1
    assert recs[2] == recs[2][:276] + bytes(12)  # one directory block + end unit
    lrecl, blksize = ul.unload_dcb(info.blksize, 0)
    assert (lrecl, blksize) == (27936, 27940)
    assert max(len(r) for r in recs) <= lrecl - 4
    back = ul.read_unload(recs)
    # the original TTRs survive: COPYR2's one extent from 0/0 maps CCHHR back to them
    assert back.entries == entries
    for e in entries:
        assert [b.data for b in back.blocks(e)] == [b.data for b in u.blocks(e.name)]


@pytest.mark.parametrize("descriptors", [True, False])
def test_round_trip_through_a_file(real_fixtures, tmp_path, descriptors):
    src = unload_records(fixture(real_fixtures, "CBTTape__CBT746__LOADLIB.xmi"))
    u = ul.read_unload(src)
    with (
        new_volume(tmp_path / "a.3390", "AAA001") as a,
        new_volume(tmp_path / "b.3390", "BBB001") as b,
    ):
        ul.load_unload(a, "RTI.LOADLIB", u)
        ul.write_unload_file(tmp_path / "x.unl", a, "RTI.LOADLIB", descriptors=descriptors)
        data = (tmp_path / "x.unl").read_bytes()
        assert ul.detect_form(data) == ("blocks" if descriptors else "stream")
        if descriptors:  # RECFM=VS: one segment per block, BLKSIZE = LRECL + 4
            blocks = ul._split_blocks(data, None)
            assert all(b[6] == 0 for b in blocks)  # complete segments only
            assert max(len(b) for b in blocks) <= ul.unload_dcb(13682, 0)[1]
        back = ul.read_unload_file(tmp_path / "x.unl")
        ul.load_unload(b, "RTI.LOADLIB", back)
        assert Pds(b, "RTI.LOADLIB").members() == Pds(a, "RTI.LOADLIB").members()
        for e in u.entries:
            assert member_bytes(b, "RTI.LOADLIB", e.name) == member_bytes(a, "RTI.LOADLIB", e.name)


def test_unload_of_selected_members(real_fixtures, tmp_path):
    u = ul.read_unload(unload_records(fixture(real_fixtures, "yetacp__mvs_sysgen__revhelp.xmi")))
    with new_volume(tmp_path / "a.3390") as vol:
        ul.load_unload(vol, "HELP", u)
        back = ul.read_unload(ul.write_unload(vol, "HELP", ["FSHELP", "FSH", "RFE"]))
        assert [(e.name, e.alias) for e in back.entries] == [
            ("FSH", True),
            ("FSHELP", False),
            ("RFE", False),
        ]
        with pytest.raises(NotFoundError):
            ul.write_unload(vol, "HELP", ["NOSUCH"])


def test_failed_write_leaves_no_file(tmp_path):
    target = tmp_path / "out.unl"
    with pytest.raises(FormatError):
        ul.write_records_file(target, [b"not an unload"])
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------------
def test_not_an_unload(real_fixtures, tmp_path):
    with pytest.raises(FormatError, match="not an IEBCOPY unload"):
        ul.parse_unload_bytes(b"hello world, this is text" * 20)
    xmi = fixture(real_fixtures, "mainframed__xmi__test_seq.xmi")
    with pytest.raises(FormatError, match="XMIT"):
        ul.read_unload_file(xmi)
    with pytest.raises(NotFoundError):
        ul.read_unload_file(tmp_path / "missing.unl")
    with pytest.raises(FormatError, match="COPYR1"):
        ul.read_unload([b"\x00\xca\x6d\x0f" + bytes(20), bytes(276)])


def test_truncated_unloads(real_fixtures):
    data = fixture(real_fixtures, DDTLMOD).read_bytes()
    for cut in (5, 60, 300, 640, 641, 14000, len(data) - 1):
        with pytest.raises(FormatError):
            ul.parse_unload_bytes(data[:cut])
    recs = ddt_records(real_fixtures)
    with pytest.raises(FormatError, match="before its two header records"):
        ul.read_unload(recs[:1])
    with pytest.raises(FormatError, match="truncated"):
        ul.read_unload(recs[:2])  # no directory end
    with pytest.raises(FormatError, match="truncated"):
        ul.read_unload(recs[:-1] + [recs[-1][:-12]])  # last member without its EOF
    stream = b"".join([recs[0] + bytes(4), *recs[1:]])
    with pytest.raises(FormatError):
        ul.parse_unload_bytes(stream[:-5])


def test_lying_lengths(real_fixtures):
    data = bytearray(fixture(real_fixtures, DDTLMOD).read_bytes())
    bad_bdw = bytearray(data)
    bad_bdw[640:642] = (60000).to_bytes(2, "big")
    with pytest.raises(FormatError, match="BDW length"):
        ul.parse_unload_bytes(bytes(bad_bdw))
    bad_sdw = bytearray(data)
    bad_sdw[644:646] = (20000).to_bytes(2, "big")  # SDW longer than its block
    with pytest.raises(FormatError, match="SDW length"):
        ul.parse_unload_bytes(bytes(bad_sdw))
    recs = ddt_records(real_fixtures)
    member = bytearray(recs[3])
    member[10:12] = (len(member)).to_bytes(2, "big")  # DL past the record's end
    with pytest.raises(FormatError, match="block prefix says"):
        ul.read_unload(recs[:3] + [bytes(member)] + recs[4:])
    directory = bytearray(recs[2])
    directory[10:12] = (200).to_bytes(2, "big")  # a directory unit that is not DL 256
    with pytest.raises(FormatError, match="directory unit"):
        ul.read_unload(recs[:2] + [bytes(directory)] + recs[3:])
    copyr2 = bytearray(recs[1])
    copyr2[0] = 0
    with pytest.raises(FormatError, match="extents"):
        ul.read_unload([recs[0], bytes(copyr2), *recs[2:]])
    outside = bytearray(recs[3])
    outside[4:6] = (900).to_bytes(2, "big")  # a cylinder outside the COPYR2 extent
    with pytest.raises(FormatError, match="outside"):
        ul.read_unload(recs[:3] + [bytes(outside)] + recs[4:])


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(cut=st.integers(0, 4000), pos=st.integers(0, 4000), value=st.integers(0, 255))
def test_damaged_unloads_fail_cleanly(real_fixtures, cut, pos, value):
    """Any truncation or changed byte gives an unload or an EmulatorError, never
    another exception."""
    base = fixture(real_fixtures, DDTLMOD).read_bytes()[:4000]
    data = bytearray(base[: max(cut, 1)])
    if pos < len(data):
        data[pos] = value
    try:
        ul.parse_unload_bytes(bytes(data))
    except EmulatorError:
        pass


@pytest.mark.parametrize(
    "tape, number, dsn",
    [
        ("jake-mainframe__MVSDDT__mvsddt.het", 2, "DDT.MACLIB"),
        ("mainframed__xmi__test_tape.aws", 2, "PYTHON.XMI.PDS"),
    ],
)
def test_tape_unloads_load_like_hercules(real_fixtures, hercules, tmp_path, tape, number, dsn):
    """The IEBCOPY unloads on the real tapes (MVS 3.8j, 52-byte COPYR1): extracted
    with the tape reader, loaded by us and by Hercules dasdload VS (bare records,
    COPYR1 padded to 56 bytes as it requires)."""
    T = pytest.importorskip("emulator.interchange.tape")
    out = tmp_path / "file.unl"
    T.tape_get(fixture(real_fixtures, tape), number, out)
    u = ul.read_unload_file(out)
    assert u.copyr1_size == 52 and u.entries
    recs = rf.deblock(0x58, 0, ul._split_blocks(out.read_bytes(), None))
    (tmp_path / "f.vs").write_bytes(b"".join([recs[0] + bytes(4), *recs[1:]]))
    herc = hercules.dasdload(f"HERC01 3390 5\n{dsn} vs f.vs\n", tmp_path / "h.3390", tmp_path)
    with new_volume(tmp_path / "o.3390") as vol:
        ul.load_unload(vol, dsn, u)
        assert_same_as_hercules(hercules, vol, dsn, herc)
