"""TSO XMIT / NETDATA (FORMATS.md 9): read, receive, transmit, with Hercules as the oracle.

* Every real XMIT file in ../shared/fixtures/real is parsed, and received into a volume
  of ours: member names, user data and bytes equal what Hercules ``dasdload`` XMIT /
  XMSEQ loads from the same file (read back with ``dasdcat``/``dasdseq``).
* Our transmit output round-trips through our receive (members, user data, ISPF
  statistics) and Hercules ``dasdload`` loads it with the same members and bytes.
* Damaged input (segment headers, truncation, lying lengths, text that is not XMIT) is
  one FormatError naming the file and the offset, and leaves the image unchanged.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from oracle import hercules_required

from emulator import api
from emulator.cli import xmit as xmit_cli
from emulator.errors import (
    ConflictError,
    EmulatorError,
    FormatError,
    UnsupportedError,
)
from emulator.interchange import xmit
from emulator.interchange.xmit import read_pds, read_xmit, receive, transmit
from emulator.pds.directory import user_ttr_offsets
from emulator.pds.pds import Pds
from emulator.volume.volume import Volume

CBT746 = "CBTTape__CBT746__LOADLIB.xmi"
CHECKP = "mainframed__Enumeration__CHECKP.XMIT"
PDS_MSG = "mainframed__xmi__test_pds_msg.xmi"
SEQ = "mainframed__xmi__test_seq.xmi"
MOSHIX = "moshix__mvs__MOSHIX.WORK.SMF.XMIT"
REV370LD = "yetacp__mvs_sysgen__rev370ld.xmi"
REVHELP = "yetacp__mvs_sysgen__revhelp.xmi"
#: The PDS files Hercules 3.13 dasdload XMIT loads (MOSHIX and CHECKP make it fail).
HERCULES_PDS = [CBT746, PDS_MSG, REV370LD, REVHELP]
NOW = dt.datetime(2026, 11, 24, 10, 30, 15)


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def new_volume(path: Path, cyls: int = 30) -> Volume:
    return Volume.create(path, "3390", "XMITV", cyls=cyls)


def masked(entry) -> bytes:
    """User data with the TTRs the C byte counts zeroed: they depend on placement."""
    data = bytearray(entry.userdata)
    for off in user_ttr_offsets(entry):
        data[off : off + 3] = bytes(3)
    return bytes(data)


def directory(image: Path, dsn: str) -> dict:
    """{name: (alias, TTR count, masked user data)} as our PDS reader sees it."""
    with Volume.open(image) as vol:
        return {e.name: (e.alias, e.ttr_count, masked(e)) for e in Pds(vol, dsn).members()}


def same_as_hercules(oracle, ours: Path, herc: Path, our_dsn: str, herc_dsn: str) -> list[str]:
    """Member names in order and every member's bytes, as dasdcat reads both images."""
    names = oracle.dasdcat_members(herc, herc_dsn)
    assert oracle.dasdcat_members(ours, our_dsn) == names
    for name in names:
        assert oracle.dasdcat_member(ours, our_dsn, name) == oracle.dasdcat_member(
            herc, herc_dsn, name
        ), name
    return names


@pytest.fixture(scope="module")
def tiny_pds(tmp_path_factory) -> tuple[Path, bytes]:
    """A small volume with a 3-member PDS (one alias) and its XMIT bytes."""
    tmp = tmp_path_factory.mktemp("tiny")
    image = tmp / "tiny.3390"
    with new_volume(image, cyls=3) as vol:
        dcb = api.Dcb(dsorg="PO", recfm="FB", lrecl=80, blksize=800)
        for n, name in enumerate(("ALPHA", "BETA", "GAMMA")):
            lines = [f"{name} {i}" for i in range(5 + 7 * n)]
            api.write(vol, f"T.PDS({name})", lines, text=True, dcb=dcb, space=("TRK", 2, 1))
        Pds(vol, "T.PDS").alias("ALIAS1", "BETA")
        transmit(vol, "T.PDS", tmp / "tiny.xmi", now=NOW)
    return image, (tmp / "tiny.xmi").read_bytes()


# -- reading the real files ------------------------------------------------------------
def test_read_real_headers_and_files(real_fixtures):
    seq = read_xmit(real_fixtures / SEQ)
    assert (seq.from_node, seq.from_user, seq.to_node, seq.to_user) == (
        "ORIGNODE",
        "ORIGUID",
        "DESTNODE",
        "DESTUID",
    )
    assert seq.timestamp == dt.datetime(2021, 3, 9, 4, 53, 18) and seq.lrecl == 80
    (f,) = seq.files
    assert (f.kind, f.dsname, f.dsorg, f.recfm, f.lrecl, f.blksize) == (
        "sequential",
        None,
        "PS",
        "FB",
        80,
        3200,
    )
    # one 2640-byte data record (a whole block) cut into 33 records of LRECL 80
    assert len(f.records) == 33 and {len(r) for r in f.records} == {80}
    assert f.records[0].decode("cp037").startswith("//XMITAPE JOB")

    msg = read_xmit(real_fixtures / PDS_MSG)
    assert [(f.number, f.kind, f.dsname) for f in msg.files] == [
        (1, "message", None),
        (2, "pds", "PYTHON.XMI.PDS"),
    ]
    note, pds = msg.files
    assert (note.recfm, note.lrecl, len(note.records)) == ("VB", 251, 29)
    assert note.lines()[0].startswith("This is a test message")
    assert (pds.recfm, pds.lrecl, pds.blksize, pds.dirblks, pds.inmtype) == ("FB", 80, 27920, 6, 0)
    assert [s.text("INMUTILN") for s in pds.steps] == ["IEBCOPY", "INMCOPY"]
    assert len(pds.records[0]) == 56 and pds.records[0][1:4] == b"\xca\x6d\x0f"  # COPYR1

    expect = {
        CBT746: ("RTI.LOADLIB", "U", 0, 13682, 7, 0),
        REV370LD: ("GREG.REVIEW.LOAD", "U", 256, 18432, 12, 0),
        REVHELP: ("GREG.REVIEW.HELP", "FB", 80, 6480, 20, 0),
        MOSHIX: ("MOSHIX.WORK.SMF", "FB", 80, 24000, 1, 0x80),
        CHECKP: ("IBMUSER.PDSE", "U", 0, 6144, 1, 0x40),
    }
    for name, want in expect.items():
        (f,) = read_xmit(real_fixtures / name).files
        assert f.kind == "pds" and f.dsorg == "PO"
        assert (f.dsname, f.recfm, f.lrecl, f.blksize, f.dirblks, f.inmtype) == want, name


def test_read_bytes_and_where(real_fixtures):
    data = (real_fixtures / SEQ).read_bytes()
    assert read_xmit(data).files[0].records == read_xmit(real_fixtures / SEQ).files[0].records
    with pytest.raises(FormatError, match=r"^tape file 3 offset 96: "):
        read_xmit(data[:96] + b"\x01" + data[97:], where="tape file 3")


# -- receiving: Hercules dasdload as the oracle -----------------------------------------
@hercules_required
@pytest.mark.oracle
@pytest.mark.parametrize("name", HERCULES_PDS)
def test_receive_pds_equals_hercules_xmit(real_fixtures, tmp_path, name):
    import oracle

    herc = oracle.dasdload(
        f"HV 3390 20\nLIB.H xmit {real_fixtures / name}\n", tmp_path / "h.3390", tmp_path
    )
    ours = tmp_path / "o.3390"
    with new_volume(ours) as vol:
        (info,) = receive(real_fixtures / name, vol, "LIB.O")
        assert vol.check() == [] and api.check(vol) == []
    names = same_as_hercules(oracle, ours, herc, "LIB.O", "LIB.H")
    assert names  # every library has members
    assert directory(ours, "LIB.O") == directory(herc, "LIB.H")  # aliases and user data
    keys = ("dsorg", "recfm", "lrecl", "blksize", "keylen")
    (h_row,) = oracle.dasdls_info(herc)
    (o_row,) = oracle.dasdls_info(ours)
    assert {k: o_row[k] for k in keys} == {k: h_row[k] for k in keys}
    assert (info.dsname, info.dsorg) == ("LIB.O", "PO")


@hercules_required
@pytest.mark.oracle
def test_receive_sequential_equals_hercules_xmseq(real_fixtures, tmp_path):
    import oracle

    herc = oracle.dasdload(
        f"HV 3390 3\nSEQ.H xmseq {real_fixtures / SEQ}\n", tmp_path / "h.3390", tmp_path
    )
    ours = tmp_path / "o.3390"
    with new_volume(ours, cyls=3) as vol:
        (info,) = receive(real_fixtures / SEQ, vol, "SEQ.O")
        assert (info.recfm, info.lrecl, info.blksize) == ("FB", 80, 3200)
    assert oracle.dasdseq(ours, "SEQ.O", tmp_path) == oracle.dasdseq(herc, "SEQ.H", tmp_path)


def test_receive_uses_the_transmitted_names_and_shows_the_message(real_fixtures, tmp_path):
    shown: list[list[str]] = []
    image = tmp_path / "o.3390"
    with new_volume(image) as vol:
        infos = receive(real_fixtures / PDS_MSG, vol, on_message=shown.append)
        assert [i.dsname for i in infos] == ["PYTHON.XMI.PDS"]
        assert [i.dsname for i in vol.datasets()] == ["PYTHON.XMI.PDS"]  # message not stored
        assert [e.name for e in Pds(vol, "PYTHON.XMI.PDS").members()] == ["TESTING", "Z15IMG"]
        testing = Pds(vol, "PYTHON.XMI.PDS").member("TESTING").ispf
        assert (testing.vv_mm, testing.userid) == ("01.00", "PHIL")
    assert len(shown) == 1 and len(shown[0]) == 29
    assert shown[0][0].startswith("This is a test message")


def test_sequential_without_a_name_needs_one(real_fixtures, tmp_path):
    image = tmp_path / "o.3390"
    with new_volume(image, cyls=2):
        pass
    before = sha256(image)
    with Volume.open(image, writable=True) as vol:
        with pytest.raises(FormatError, match="no INMDSNAM") as info:
            receive(real_fixtures / SEQ, vol)
    assert SEQ in str(info.value)
    assert sha256(image) == before


def test_pdse_data_library_is_read(real_fixtures, tmp_path):
    """Hercules 3.13 fails on this z/OS PDSE unload (HHCDL091E); we read its 13 members."""
    image = tmp_path / "o.3390"
    with new_volume(image) as vol:
        (info,) = receive(real_fixtures / MOSHIX, vol)
        pds = Pds(vol, info.dsname)
        members = pds.members()
        assert len(members) == 13 and all(e.ispf is not None for e in members)
        for e in members:
            records = pds.read(e.name)
            assert records and {len(r) for r in records} == {80}
            text = b"".join(records).decode("cp037")
            assert text.isprintable(), e.name
        assert api.check(vol) == []


@hercules_required
@pytest.mark.oracle
def test_pdse_data_library_hercules_fails(real_fixtures, tmp_path):
    import oracle

    with pytest.raises(oracle.OracleError, match="HHCDL091E"):
        oracle.dasdload(
            f"HV 3390 5\nLIB.H xmit {real_fixtures / MOSHIX}\n", tmp_path / "h.3390", tmp_path
        )


def test_pdse_program_library_is_refused(real_fixtures, tmp_path):
    image = tmp_path / "o.3390"
    with new_volume(image, cyls=2):
        pass
    before = sha256(image)
    with Volume.open(image, writable=True) as vol:
        with pytest.raises(UnsupportedError) as info:
            receive(real_fixtures / CHECKP, vol)
    message = str(info.value)
    assert CHECKP in message and "PDSE" in message and "program objects" in message
    assert "\n" not in message
    assert sha256(image) == before


def test_existing_targets(real_fixtures, tmp_path):
    image = tmp_path / "o.3390"
    with new_volume(image) as vol:
        receive(real_fixtures / PDS_MSG, vol)
        with pytest.raises(ConflictError, match="already exists"):
            receive(real_fixtures / PDS_MSG, vol)
        # with replace, the members go into the existing PDS (same names replaced)
        api.write(vol, "PYTHON.XMI.PDS(EXTRA)", ["kept"], text=True)
        receive(real_fixtures / PDS_MSG, vol, replace=True)
        names = [e.name for e in Pds(vol, "PYTHON.XMI.PDS").members()]
        assert names == ["EXTRA", "TESTING", "Z15IMG"]
        with pytest.raises(ConflictError, match="partitioned"):
            receive(real_fixtures / SEQ, vol, "PYTHON.XMI.PDS", replace=True)


# -- multi-file transmissions -----------------------------------------------------------
def _two_datasets(tmp: Path) -> Path:
    """A transmission of two data sets (a PDS and a sequential file) built from our own
    transmit output, renumbered as one INMR01 with INMNUMF 2."""
    image = tmp / "src.3390"
    with new_volume(image, cyls=3) as vol:
        api.write(
            vol,
            "A.PDS(ONE)",
            ["one"],
            text=True,
            dcb=api.Dcb(dsorg="PO", recfm="FB", lrecl=80, blksize=800),
            space=("TRK", 2, 1),
        )
        api.write(
            vol,
            "B.SEQ",
            ["first", "second line"],
            text=True,
            dcb=api.Dcb(recfm="VB", lrecl=84, blksize=800),
            space=("TRK", 1, 1),
        )
        transmit(vol, "A.PDS", tmp / "a.xmi", now=NOW)
        transmit(vol, "B.SEQ", tmp / "b.xmi", now=NOW)
    a, b = read_xmit(tmp / "a.xmi"), read_xmit(tmp / "b.xmi")
    out = bytearray(
        xmit._control_record(
            "INMR01",
            xmit._num("INMLRECL", 80, 1),
            xmit._name("INMFNODE", "N"),
            xmit._name("INMFUID", "U"),
            xmit._name("INMTNODE", "N"),
            xmit._name("INMTUID", "U"),
            xmit._name("INMFTIME", "20261124103015"),
            xmit._num("INMNUMF", 2, 1),
        )
    )
    data = (tmp / "a.xmi").read_bytes(), (tmp / "b.xmi").read_bytes()
    for number, tx, raw in ((1, a, data[0]), (2, b, data[1])):
        for step in tx.files[0].steps:
            out += _reframe(raw, step.offset, number)
    for tx, raw in ((a, data[0]), (b, data[1])):
        inmr06 = next(c for c in tx.controls if c.name == "INMR06")
        out += raw[tx.files[0].offset : inmr06.offset]  # INMR03 and the data records
    out += xmit._control_record("INMR06")
    path = tmp / "two.xmi"
    path.write_bytes(bytes(out) + b"\x40" * (-len(out) % 80))
    return path


def _reframe(raw: bytes, offset: int, number: int) -> bytes:
    """The INMR02 control record at ``offset`` of ``raw`` with a new file number."""
    pos, body = offset, bytearray()
    while True:
        seglen, flags = raw[pos], raw[pos + 1]
        body += raw[pos + 2 : pos + seglen]
        pos += seglen
        if flags & 0x40:
            break
    body[6:10] = number.to_bytes(4, "big")
    return xmit._segments(bytes(body), control=True)


def test_multi_file_receive_is_one_transaction(tmp_path):
    two = _two_datasets(tmp_path)
    tx = read_xmit(two)
    assert [(f.number, f.kind, f.dsname) for f in tx.files] == [
        (1, "pds", "A.PDS"),
        (2, "sequential", "B.SEQ"),
    ]
    image = tmp_path / "o.3390"
    with new_volume(image, cyls=3) as vol:
        with pytest.raises(ConflictError, match="2 data sets"):
            receive(two, vol, "ONE.NAME")
        api.allocate(vol, "B.SEQ")  # the second file will clash
    before = sha256(image)
    with Volume.open(image, writable=True) as vol:
        with pytest.raises(ConflictError, match="B.SEQ already exists"):
            receive(two, vol)
    assert sha256(image) == before  # A.PDS was not left behind
    with Volume.open(image, writable=True) as vol:
        vol.scratch("B.SEQ")
        infos = receive(two, vol)
        assert [(i.dsname, i.dsorg, i.recfm) for i in infos] == [
            ("A.PDS", "PO", "FB"),
            ("B.SEQ", "PS", "VB"),
        ]
        assert api.read_text(vol, "B.SEQ") == ["first", "second line"]
        assert api.read_text(vol, "A.PDS(ONE)") == ["one"]


# -- transmitting -----------------------------------------------------------------------
def test_transmit_layout_and_determinism(tiny_pds, tmp_path):
    image, data = tiny_pds
    assert len(data) % 80 == 0 and data.endswith(b"\x40")
    with Volume.open(image) as vol:
        transmit(vol, "T.PDS", tmp_path / "again.xmi", now=NOW)
        transmit(vol, "T.PDS", tmp_path / "later.xmi", now=NOW + dt.timedelta(seconds=1))
    assert (tmp_path / "again.xmi").read_bytes() == data
    later = (tmp_path / "later.xmi").read_bytes()
    assert len(later) == len(data) and later != data
    assert sorted(p.name for p in tmp_path.iterdir()) == ["again.xmi", "later.xmi"]  # no temp
    tx = read_xmit(data)
    assert tx.header.number("INMNUMF") == 1 and tx.time == "20261124103015"
    (f,) = tx.files
    assert [s.text("INMUTILN") for s in f.steps] == ["IEBCOPY", "INMCOPY"]
    assert f.steps[1].number("INMRECFM") == 0x4802 and f.header.number("INMRECFM") == 0x0001
    assert (f.dsname, f.recfm, f.lrecl, f.blksize) == ("T.PDS", "FB", 80, 800)
    assert f.steps[0].number("INMTYPE") == 0 and f.steps[0].number("INMDIR") >= 1


@pytest.mark.parametrize("name", [REVHELP, REV370LD, PDS_MSG])
def test_transmit_receive_round_trip(real_fixtures, tmp_path, name):
    first, second = tmp_path / "1.3390", tmp_path / "2.3390"
    with new_volume(first) as vol:
        (info,) = receive(real_fixtures / name, vol, "RT.LIB")
        transmit(vol, "RT.LIB", tmp_path / "rt.xmi", now=NOW, message=["hello", "world"])
    with new_volume(second) as vol:
        shown = []
        (back,) = receive(tmp_path / "rt.xmi", vol, on_message=shown.append)
        assert shown == [["hello", "world"]] and back.dsname == "RT.LIB"
        assert (back.recfm, back.lrecl, back.blksize) == (info.recfm, info.lrecl, info.blksize)
    assert directory(second, "RT.LIB") == directory(first, "RT.LIB")
    with Volume.open(first) as v1, Volume.open(second) as v2:
        p1, p2 = Pds(v1, "RT.LIB"), Pds(v2, "RT.LIB")
        for e1, e2 in zip(p1.members(), p2.members(), strict=True):
            assert e1.ispf == e2.ispf and e1.alias_of == e2.alias_of
            assert p1.read_blocks(e1.name) == p2.read_blocks(e2.name), e1.name


@pytest.mark.parametrize(
    "recfm, lrecl, blksize, records",
    [
        ("FB", 80, 3120, [bytes([i]) * 80 for i in range(100)]),
        ("VB", 255, 3000, [bytes([i]) * (i * 7 % 250) for i in range(120)]),
        ("U", 0, 6000, [bytes([i]) * (1 + i * 97 % 5999) for i in range(40)]),
        ("F", 300, 300, [bytes([i]) * 300 for i in range(5)]),
    ],
)
def test_sequential_round_trip(tmp_path, recfm, lrecl, blksize, records):
    first, second = tmp_path / "1.3390", tmp_path / "2.3390"
    with new_volume(first, cyls=3) as vol:
        dcb = api.Dcb(recfm=recfm, lrecl=lrecl, blksize=blksize)
        api.write(vol, "S.DATA", records, dcb=dcb, space=("TRK", 1, 1))
        transmit(vol, "S.DATA", tmp_path / "s.xmi", now=NOW, from_node="N1", from_user="ME")
    tx = read_xmit(tmp_path / "s.xmi")
    assert (tx.from_node, tx.from_user, tx.to_node, tx.to_user) == ("N1", "ME", "N1", "ME")
    with new_volume(second, cyls=3) as vol:
        (info,) = receive(tmp_path / "s.xmi", vol)
        assert (info.recfm, info.lrecl, info.blksize) == (recfm, lrecl, blksize)
        assert api.read_records(vol, "S.DATA") == records


@hercules_required
@pytest.mark.oracle
@pytest.mark.parametrize("name", HERCULES_PDS + [MOSHIX])
def test_hercules_loads_our_transmit(real_fixtures, tmp_path, name):
    import oracle

    source = tmp_path / "src.3390"
    with new_volume(source) as vol:
        receive(real_fixtures / name, vol, "SRC.LIB")
        transmit(vol, "SRC.LIB", tmp_path / "our.xmi", now=NOW, message=["note"])
    herc = oracle.dasdload(
        f"HV 3390 20\nLIB.H xmit {tmp_path / 'our.xmi'}\n", tmp_path / "h.3390", tmp_path
    )
    same_as_hercules(oracle, source, herc, "SRC.LIB", "LIB.H")
    assert directory(herc, "LIB.H") == directory(source, "SRC.LIB")


@hercules_required
@pytest.mark.oracle
def test_hercules_loads_our_sequential_transmit(real_fixtures, tmp_path):
    import oracle

    source = tmp_path / "src.3390"
    with new_volume(source, cyls=3) as vol:
        receive(real_fixtures / SEQ, vol, "SEQ.SRC")
        records = [bytes([0xC1 + i % 9]) * 80 for i in range(500)]
        api.write(vol, "SEQ.BIG", records, dcb=api.Dcb(recfm="FB", lrecl=80), space=("TRK", 1, 1))
        transmit(vol, "SEQ.SRC", tmp_path / "a.xmi", now=NOW)
        transmit(vol, "SEQ.BIG", tmp_path / "b.xmi", now=NOW)
    herc = oracle.dasdload(
        f"HV 3390 3\nA.H xmseq {tmp_path / 'a.xmi'}\nB.H xmseq {tmp_path / 'b.xmi'}\n",
        tmp_path / "h.3390",
        tmp_path,
    )
    for ours, theirs in (("SEQ.SRC", "A.H"), ("SEQ.BIG", "B.H")):
        assert oracle.dasdseq(herc, theirs, tmp_path) == oracle.dasdseq(source, ours, tmp_path)


def test_transmit_selected_members_and_errors(tiny_pds, tmp_path):
    image = tmp_path / "copy.3390"
    image.write_bytes(tiny_pds[0].read_bytes())  # the shared volume stays as it is
    with Volume.open(image, writable=True) as vol:
        transmit(vol, "T.PDS", tmp_path / "one.xmi", members=["GAMMA"], now=NOW)
        with pytest.raises(FormatError, match="node"):
            transmit(vol, "T.PDS", tmp_path / "bad.xmi", from_node="TOO.LONG.NODE")
        with pytest.raises(EmulatorError):
            transmit(vol, "NO.SUCH", tmp_path / "bad.xmi")
        api.write(vol, "T.SEQ", [b"x" * 80], dcb=api.Dcb(), space=("TRK", 1, 0))
        with pytest.raises(FormatError, match="only be selected from a PDS"):
            transmit(vol, "T.SEQ", tmp_path / "bad.xmi", members=["A"])
    assert not (tmp_path / "bad.xmi").exists()
    unload = read_pds(read_xmit(tmp_path / "one.xmi").files[0])
    assert [e.name for e in unload.entries] == ["GAMMA"]


# -- bad input --------------------------------------------------------------------------
def _damaged(data: bytes) -> dict[str, tuple[bytes, str]]:
    """name -> (bytes, fragment of the message).  test_seq.xmi: INMR01 at 0 (96 bytes),
    INMR02 at 96, INMR03 at 167, the data record from 209 (its second segment at 464),
    INMR06 at 2871."""
    lying_tu = bytearray(data)
    lying_tu[96 + 2 + 10 + 4 : 96 + 2 + 10 + 6] = b"\x00\xf0"  # INMUTILN value length 240
    return {
        "length byte 0": (b"\x00" + data[1:], "segment length byte 0"),
        "length byte 1": (data[:96] + b"\x01" + data[97:], "segment length byte 1"),
        "reserved flags": (data[:97] + b"\xe1" + data[98:], "reserved bits"),
        "first flag missing": (data[:97] + b"\x60" + data[98:], "first segment"),
        "first flag repeated": (data[:465] + b"\x80" + data[466:], "a new record begins"),
        "truncated in a segment": (data[:1000], "runs past the end"),
        "truncated at a record": (data[:209], "without an INMR06"),
        "segment length lies": (data[:96] + b"\xff" + data[97:], "offset"),
        "text unit length lies": (bytes(lying_tu), "only"),
        "text": (b"//JOB CARD\n" * 50, "not a TSO XMIT"),
        "empty": (b"", "empty"),
    }


@pytest.mark.parametrize(
    "case",
    [
        "length byte 0",
        "length byte 1",
        "reserved flags",
        "first flag missing",
        "first flag repeated",
        "truncated in a segment",
        "truncated at a record",
        "segment length lies",
        "text unit length lies",
        "text",
        "empty",
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(real_fixtures, tmp_path, case):
    data, fragment = _damaged((real_fixtures / SEQ).read_bytes())[case]
    bad = tmp_path / "bad.xmi"
    bad.write_bytes(data)
    image = tmp_path / "o.3390"
    with new_volume(image, cyls=2):
        pass
    before = sha256(image)
    with Volume.open(image, writable=True) as vol:
        with pytest.raises(FormatError) as info:
            receive(bad, vol, "SEQ.BAD")
    message = str(info.value)
    assert message.startswith("bad.xmi: offset "), message
    assert fragment in message and "\n" not in message
    assert sha256(image) == before


def test_bad_pds_content_writes_nothing(tiny_pds, tmp_path):
    _, data = tiny_pds
    tx = read_xmit(data)
    inmr03 = tx.files[0].header.offset
    copyr1 = inmr03 + data[inmr03] + 2  # the data of the segment after the INMR03 one
    broken = bytearray(data)
    assert broken[copyr1 + 1 : copyr1 + 4] == b"\xca\x6d\x0f"
    broken[copyr1 + 1] = 0x00
    (tmp_path / "b.xmi").write_bytes(bytes(broken))
    image = tmp_path / "o.3390"
    with new_volume(image, cyls=2):
        pass
    before = sha256(image)
    with Volume.open(image, writable=True) as vol:
        with pytest.raises(FormatError) as info:
            receive(tmp_path / "b.xmi", vol)
    assert "b.xmi" in str(info.value)
    assert sha256(image) == before


def _read_all(data: bytes) -> None:
    tx = read_xmit(data)
    for f in tx.files:
        if f.kind == "pds":
            read_pds(f)


@settings(max_examples=150, deadline=2000, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_byte_flips_raise_only_our_errors(tiny_pds, data):
    _, raw = tiny_pds
    flips = data.draw(
        st.lists(
            st.tuples(st.integers(0, len(raw) - 1), st.integers(0, 255)), min_size=1, max_size=6
        )
    )
    damaged = bytearray(raw)
    for pos, value in flips:
        damaged[pos] = value
    cut = data.draw(st.one_of(st.none(), st.integers(0, len(raw))))
    if cut is not None:
        damaged = damaged[:cut]
    try:
        _read_all(bytes(damaged))
    except EmulatorError as exc:
        assert "\n" not in str(exc)


@settings(max_examples=25, deadline=5000, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, 2000), st.integers(0, 255)), min_size=1, max_size=4))
def test_byte_flips_receive_all_or_nothing(tiny_pds, tmp_path_factory, flips):
    _, raw = tiny_pds
    damaged = bytearray(raw)
    for pos, value in flips:
        damaged[pos % len(raw)] = value
    tmp = tmp_path_factory.mktemp("flip")
    (tmp / "f.xmi").write_bytes(bytes(damaged))
    image = tmp / "o.3390"
    with new_volume(image, cyls=2):
        pass
    before = sha256(image)
    with Volume.open(image, writable=True) as vol:
        try:
            receive(tmp / "f.xmi", vol, "F.LIB")
        except EmulatorError:
            ok = False
        else:
            ok = True
            assert api.check(vol) == []
    if not ok:
        assert sha256(image) == before


# -- the CLI ------------------------------------------------------------------------------
def _parser() -> argparse.ArgumentParser:
    """A parser with our subcommands registered the way dasd's build_parser does it."""
    parser = argparse.ArgumentParser(prog="dasd")
    sub = parser.add_subparsers(dest="command", required=True)

    def add(name, func, help_):
        sp = sub.add_parser(name, help=help_, description=help_)
        sp.set_defaults(func=func)
        return sp

    xmit_cli.add_subcommands(add)
    return parser


def test_cli_receive_and_transmit(real_fixtures, tmp_path, capsys):
    image = tmp_path / "o.3390"
    with new_volume(image):
        pass
    args = _parser().parse_args(["receive", str(real_fixtures / PDS_MSG), str(image)])
    assert args.func(args) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 30 and out[0].startswith("This is a test message")
    assert out[-1].startswith(f"{image}: received PYTHON.XMI.PDS (DSORG PO RECFM FB")
    argv = ["transmit", str(image), "python.xmi.pds", "-o", str(tmp_path / "t.xmi")]
    args = _parser().parse_args(argv + ["--from", "n1.me", "--to", "n2.you", "--member", "TESTING"])
    assert args.func(args) == 0
    tx = read_xmit(tmp_path / "t.xmi")
    assert (tx.from_node, tx.from_user, tx.to_node, tx.to_user) == ("N1", "ME", "N2", "YOU")
    assert [e.name for e in read_pds(tx.files[0]).entries] == ["TESTING"]
    with pytest.raises(SystemExit):
        _parser().parse_args(argv + ["--from", "nodot"])
    args = _parser().parse_args(["receive", str(real_fixtures / SEQ), str(image), "--dsn", "a.b"])
    assert args.func(args) == 0
    assert "received A.B (DSORG PS RECFM FB LRECL 80 BLKSIZE 3200" in capsys.readouterr().out


def test_dasd_main_exit_code_2(real_fixtures, tmp_path, capsys):
    from emulator.cli.dasd import main

    image = tmp_path / "o.3390"
    with new_volume(image, cyls=2):
        pass
    code = main(["receive", str(real_fixtures / CHECKP), str(image)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "PDSE" in err
