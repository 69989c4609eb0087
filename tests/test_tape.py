"""Tapes (docs/tape.md): AWS/HET chunks, standard labels, `dasd tape ls/get`.

Real tapes from ../shared/fixtures/real (SOURCES.md #3, #11, #12, #17) are checked
against what SOURCES.md records, and against the Hercules tape utilities (hetmap, hetget,
hetupd) when they are installed.  Tapes made here (write_tape) are read back by us and
by Hercules.  Damaged input must give one FormatError line and write nothing.
"""

from __future__ import annotations

import argparse
import bz2
import datetime
import json
import re
import shutil
import subprocess
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emulator import codepage
from emulator.cli import tape as cli
from emulator.dataset import records as rf
from emulator.errors import EmulatorError, FormatError, NotFoundError, UnsupportedError
from emulator.interchange import tape as T
from emulator.layouts import dtype_of, offsets, parse_at
from emulator.layouts import tape as L

AWS = "mainframed__xmi__test_tape.aws"
HET = "jake-mainframe__MVSDDT__mvsddt.het"
BZ2 = "SDL-Hercules-390__hyperion__hetbsf-bzip2.het"
DERIVED = "DERIVED__jake-mainframe__MVSDDT__mvsddt.het.file2.DDTLMOD.iebcopy"
SEQ_XMI = "mainframed__xmi__test_seq.xmi"

HET_TOOLS = ("hetmap", "hetget", "hetupd")
TIMEOUT = 60

# ---------------------------------------------------------------------------------------
# Tolerated differences with the Hercules tape utilities (the only place they live)
# ---------------------------------------------------------------------------------------

# hetmap -d reads a blank century character as 19xx, so a tape MVS 3.8j wrote in 2021
# (" 21068") shows as 1921.068; we read blank + yy < 70 as 20yy (emulator.dates does the
# same for DSCB dates).  Only the year's last two digits and the day are compared.
HETMAP_BLANK_CENTURY_IS_19XX = True

# hetget -u strips RDWs as well as BDWs from RECFM V data; `tape get` keeps each
# record's RDW, so V output is compared record by record.
HETGET_U_DROPS_RDWS = True


# hetmap -d shows RECFM as the HDR2 letter followed by the block attribute as it is, so
# 'R' (blocked and spanned) prints as "VR" where we say "VBS".
def hetmap_recfm(text: str) -> str:
    return text[0] + text[1:].replace("R", "BS")


# Every tool prints its two-line banner on stderr and exits 0 even after errors
# ("het_read() returned -5"), so only stdout and the output file are compared.


def _need_tools() -> None:
    missing = [t for t in HET_TOOLS if shutil.which(t) is None]
    if missing:
        pytest.skip(f"Hercules tape utilities not installed: {', '.join(missing)}")


def _run(*argv: str | Path) -> str:
    proc = subprocess.run([str(a) for a in argv], capture_output=True, timeout=TIMEOUT, check=False)
    return proc.stdout.decode("latin-1")


def _hetmap_datasets(path: Path) -> list[dict]:
    """`hetmap -d`: one dict per data set (seq, file#, dsn, crtdt, blocks, job, DCB)."""
    out = []
    for chunk in _run("hetmap", "-d", path).split("\n\n"):
        m = re.search(
            r"seq=(\d+)\s+file#=(\d+)\s*\ndsn=(.*?)\s+crtdt=(\d{4})\.(\d{3})\s+expdt=\S+\s+"
            r"blocks=(\d+)\s*\njob=(.*?)\s+recfm=(\S+)\s+lrecl=(\d+)\s+blksize=(\d+)",
            chunk,
        )
        if m:
            out.append(
                dict(
                    seq=int(m[1]),
                    file=int(m[2]),
                    dsn=m[3].strip(),
                    year=int(m[4]),
                    day=int(m[5]),
                    blocks=int(m[6]),
                    job=m[7].replace(" ", ""),
                    recfm=hetmap_recfm(m[8]),
                    lrecl=int(m[9]),
                    blksize=int(m[10]),
                )
            )
    return out


def _hetmap_files(path: Path) -> dict[int, tuple[int, int]]:
    """`hetmap -f`: physical file number -> (blocks, uncompressed bytes)."""
    text = _run("hetmap", "-f", path)
    found = re.findall(
        r"File #\s+: (\d+)\s+Blocks\s+: (\d+)(?:.|\n)*?Uncompressed bytes\s+: (\d+)", text
    )
    return {int(f): (int(b), int(n)) for f, b, n in found}


def _fixture(real_fixtures: Path, name: str) -> Path:
    path = real_fixtures / name
    if not path.is_file():
        pytest.skip(f"{name} is not in ../shared/fixtures/real")
    return path


# ---------------------------------------------------------------------------------------
# Building tapes: standard labels from the layouts, VB data through records.block
# ---------------------------------------------------------------------------------------
def _label(layout, **values: str) -> bytes:
    fields = {
        sub.name: codepage.blank_pad(values.get(sub.name, ""), sub.sizeof())
        for sub in layout.subcons
    }
    data = layout.build(fields)
    assert len(data) == L.LABEL_SIZE
    return data


def _ds1(kind: str, dsname: str, seq: int, blocks: int = 0, volser: str = "TST001") -> bytes:
    return _label(
        L.Ds1,
        labid=f"{kind}1",
        dsid=dsname[-17:],
        volser=volser,
        volseq="0001",
        dsseq=f"{seq:04d}",
        crtdt="024032",
        expdt=" 99365",
        dssec="0",
        blklo=f"{blocks:06d}",
        syscd="IBM OS/VS 370",
    )


def _ds2(kind: str, recfm: str, blksize: int, lrecl: int, attr: str, step: str = "STEP1") -> bytes:
    return _label(
        L.Ds2,
        labid=f"{kind}2",
        recfm=recfm,
        blksize=f"{blksize:05d}",
        lrecl=f"{lrecl:05d}",
        den="4",
        dspos="0",
        jobid=f"JOBNAME /{step}",
        blkattr=attr,
    )


def _sl_items(datasets: list[tuple], volser: str = "TST001") -> list[bytes | None]:
    """datasets: (dsname, recfm letter, blksize, lrecl, block attribute, blocks)."""
    items: list[bytes | None] = [_label(L.Vol1, labid="VOL1", volser=volser, owner="TESTER")]
    for seq, (dsname, recfm, blksize, lrecl, attr, blocks) in enumerate(datasets, 1):
        items += [_ds1("HDR", dsname, seq), _ds2("HDR", recfm, blksize, lrecl, attr), None]
        items += list(blocks) + [None]
        items += [
            _ds1("EOF", dsname, seq, len(blocks)),
            _ds2("EOF", recfm, blksize, lrecl, attr),
            None,
        ]
    return items + [None]


def _vb_records(n: int) -> list[bytes]:
    return [codepage.encode(f"RECORD {i:05d} ") + bytes(range(i % 200)) for i in range(n)]


def _small_tape(compress: str | None = "zlib", chunksize: int = 64) -> bytes:
    """A labelled tape with FB, VB, VBS data and an unload's first block; multi-chunk blocks."""
    fb = [codepage.encode(f"LINE {i:03d}".ljust(80)) * 4 for i in range(3)]
    vb = rf.block(rf.recfm_value("VB"), 255, 600, _vb_records(12))
    vbs = rf.block(rf.recfm_value("VBS"), 1000, 300, [b"\xc1" * 700, b"\xc2" * 20])
    # Not a real unload: only its first record looks like COPYR1 (FORMATS.md 8.2).
    copyr1 = b"\x00\xca\x6d\x0f\x02\x00" + (3120).to_bytes(2, "big") + b"\x00\x50\x90" + bytes(45)
    unl = [
        (len(copyr1) + 8).to_bytes(2, "big")
        + b"\0\0"
        + (len(copyr1) + 4).to_bytes(2, "big")
        + b"\0\0"
        + copyr1
    ]
    items = _sl_items(
        [
            ("TEST.FB", "F", 320, 80, "B", fb),
            ("TEST.VB", "V", 600, 255, "B", vb),
            ("TEST.VBS", "V", 300, 1000, "R", vbs),
            ("TEST.UNLOAD", "V", 3220, 3216, "S", unl),
        ]
    )
    return T.build_tape(items, compress, chunksize)


def _one_line(exc: BaseException) -> str:
    text = str(exc)
    assert "\n" not in text and text
    return text


# ---------------------------------------------------------------------------------------
# Layouts
# ---------------------------------------------------------------------------------------
def test_layout_sizes_and_offsets():
    assert L.ChunkHeader.sizeof() == L.CHUNK_HEADER_SIZE == 6
    for layout in (L.Vol1, L.Ds1, L.Ds2):
        assert layout.sizeof() == L.LABEL_SIZE
    # Offsets as sllib.h lays them out (0-based).
    assert offsets(L.Vol1)["owner"] == 41
    assert offsets(L.Ds1)["crtdt"] == 41 and offsets(L.Ds1)["blklo"] == 54
    assert offsets(L.Ds1)["blkhi"] == 76
    assert offsets(L.Ds2)["jobid"] == 17 and offsets(L.Ds2)["blkattr"] == 38
    assert offsets(L.Ds2)["devser"] == 41 and offsets(L.Ds2)["lblkln"] == 70


@given(st.integers(0, 65535), st.integers(0, 65535), st.integers(0, 255), st.integers(0, 255))
@settings(max_examples=50, deadline=None)
def test_chunk_header_round_trip(clen, plen, f1, f2):
    raw = L.ChunkHeader.build(dict(clen=clen, plen=plen, flags1=f1, flags2=f2))
    assert raw == clen.to_bytes(2, "little") + plen.to_bytes(2, "little") + bytes([f1, f2])
    plain = parse_at(L.ChunkHeader, raw)
    compiled = L.ChunkHeader.compile().parse(raw)
    assert (plain.clen, plain.plen, plain.flags1, plain.flags2) == (clen, plen, f1, f2)
    assert (compiled.clen, compiled.plen, compiled.flags1) == (clen, plen, f1)
    arr = np.frombuffer(raw, dtype=dtype_of(L.ChunkHeader))
    assert dtype_of(L.ChunkHeader).itemsize == 6
    assert (int(arr["clen"][0]), int(arr["plen"][0]), int(arr["flags1"][0])) == (clen, plen, f1)


def test_tape_dates():
    enc = codepage.encode
    assert T.tape_date(enc(" 21068")) == datetime.date(2021, 3, 9)  # MVS 3.8j, no century
    assert T.tape_date(enc(" 85001")) == datetime.date(1985, 1, 1)
    assert T.tape_date(enc("024060")) == datetime.date(2024, 2, 29)
    assert T.tape_date(enc("100001")) == datetime.date(2100, 1, 1)
    assert T.tape_date(enc(" 00000")) is None and T.tape_date(enc("000000")) is None
    assert T.tape_date(enc(" 99366")) == datetime.date(1999, 12, 31)  # "never expires"
    assert T.tape_date(enc("023366")) is None and T.tape_date(enc("      ")) is None
    # X'EA' is '²' in code page 1047: a digit to str.isdigit(), not to int().
    assert T.tape_date(bytes.fromhex("40F2EAF0F6F8")) is None


# ---------------------------------------------------------------------------------------
# Real tapes: what SOURCES.md records
# ---------------------------------------------------------------------------------------
def test_aws_fixture(real_fixtures):
    path = _fixture(real_fixtures, AWS)
    tape = T.read_tape(path)
    # SOURCES.md #3: 52 data blocks and 13 tape marks, none compressed.
    assert (tape.format, tape.compression, tape.blocks, tape.tapemarks) == ("AWS", [], 52, 13)
    assert (tape.label_type, tape.volser, tape.owner) == ("SL", "XMILIB", "TESTTAPE")
    expect = [
        ("PYTHON.XMI.SEQ", "FB", 80, 3200, 1, "sequential", "COPYPS"),
        ("PYTHON.XMI.PDS", "VS", 3216, 3220, 19, "iebcopy-unload", "COPYPO"),
        ("PYTHON.SEQ.XMIT", "FB", 80, 3200, 1, "xmit", "COPYXS"),
        ("PYTHON.PDS.XMIT", "FB", 80, 3200, 14, "xmit", "COPYXO"),
    ]
    got = [
        (f.dsname, f.recfm, f.lrecl, f.blksize, len(f.blocks), f.kind, f.step) for f in tape.files
    ]
    assert got == expect
    for n, tf in enumerate(tape.files, 1):
        assert tf.number == n and tf.problems == [] and not tf.continued
        assert tf.job == "XMITAPE"
        assert tf.created == datetime.date(2021, 3, 9)  # day 068 of 2021
        assert tf.expires is None
        hdr1, eof1 = tf.labels["HDR1"], tf.labels["EOF1"]
        assert (hdr1["volser"], hdr1["file_seq"], hdr1["volume_seq"]) == ("XMILIB", n, 1)
        assert hdr1["block_count"] == 0 and eof1["block_count"] == len(tf.blocks)
        assert tf.labels["HDR2"]["recfm"] == tf.labels["EOF2"]["recfm"] == tf.recfm
    # The IEBCOPY unload: each block is BDW + SDW + data; X'CA6D0F' at block offset 9.
    unload = tape.files[1]
    assert unload.blocks[0][9:12] == b"\xca\x6d\x0f"
    assert all(int.from_bytes(b[:2], "big") == len(b) for b in unload.blocks)


def test_het_fixture(real_fixtures):
    path = _fixture(real_fixtures, HET)
    tape = T.read_tape(path)
    # SOURCES.md #11: 23 data chunks, all zlib, and 7 tape marks.
    assert (tape.format, tape.compression, tape.blocks, tape.tapemarks) == ("HET", ["zlib"], 23, 7)
    # "VOL1MVSDDT0": volser MVSDDT, then the accessibility byte '0'.
    assert tape.volser == "MVSDDT" and tape.vol_labels["VOL1"]["access"] == "0"
    ddtlmod, ddtmac = tape.files
    assert [f.dsname for f in tape.files] == ["MVSDDT", "MVSDDT"]
    assert (ddtlmod.recfm, ddtlmod.blksize, ddtlmod.lrecl) == ("VS", 19089, 19085)
    assert (ddtlmod.job, ddtlmod.step, len(ddtlmod.blocks)) == ("MAKETAPE", "DDTLMOD", 9)
    assert (ddtmac.step, len(ddtmac.blocks)) == ("DDTMAC", 5)
    assert ddtlmod.kind == ddtmac.kind == "iebcopy-unload"
    listing = T.tape_ls(path)
    # The unloaded libraries' DCBs, from COPYR1: a load library and FB 80/3120 macros.
    assert listing[0]["unloaded"]["recfm"] == "U"
    assert listing[1]["unloaded"] == {
        "recfm": "FB",
        "lrecl": 80,
        "blksize": 3120,
        "dsorg_raw": 0x0200,
    }
    assert ddtlmod.created == datetime.date(2016, 8, 26)  # " 16239"
    # SOURCES.md #17 counts label files: the DDTLMOD data is physical file 2.
    assert ddtlmod.physical == 2 and ddtmac.physical == 5


def test_derived_unload_is_what_tape_get_writes(real_fixtures, tmp_path):
    path = _fixture(real_fixtures, HET)
    derived = _fixture(real_fixtures, DERIVED).read_bytes()
    out = tmp_path / "ddtlmod.unl"
    result = T.tape_get(path, 1, out)
    assert out.read_bytes() == derived
    assert (result["kind"], result["blocks"], result["bytes"]) == ("iebcopy-unload", 9, 60948)
    assert derived[9:12] == b"\xca\x6d\x0f"
    assert [p.name for p in tmp_path.iterdir()] == ["ddtlmod.unl"]  # no temp file left


def test_bzip2_fixture(real_fixtures):
    path = _fixture(real_fixtures, BZ2)
    tape = T.read_tape(path)
    # SOURCES.md #12: two bzip2 chunks (VOL1, HDR1), one tape mark, no data set.
    assert (tape.compression, tape.blocks, tape.tapemarks) == (["bzip2"], 2, 1)
    assert (tape.label_type, tape.volser, tape.files) == ("SL", "000000", [])
    assert T.tape_ls(path) == []


def test_xmit_on_tape_is_the_xmi_file(real_fixtures, tmp_path):
    path = _fixture(real_fixtures, AWS)
    seq_xmi = _fixture(real_fixtures, SEQ_XMI).read_bytes()
    out = tmp_path / "seq.xmi"
    result = T.tape_get(path, 3, out)
    assert result["kind"] == "xmit"
    # Same repository: the tape's PYTHON.SEQ.XMIT holds test_seq.xmi byte for byte.
    assert out.read_bytes() == seq_xmi
    out4 = tmp_path / "pds.xmi"
    T.tape_get(path, 4, out4)
    data = out4.read_bytes()
    assert len(data) == 44560 and len(data) % 80 == 0
    assert data[1] == 0xE0 and data[2:8] == codepage.encode("INMR01")


def test_extracted_files_read_by_their_readers(real_fixtures, tmp_path):
    unload = pytest.importorskip("emulator.interchange.unload")
    xmit = pytest.importorskip("emulator.interchange.xmit")
    het, aws = _fixture(real_fixtures, HET), _fixture(real_fixtures, AWS)
    out = tmp_path / "x"
    T.tape_get(het, 1, out)
    assert [e.name for e in unload.read_unload_file(out).entries] == [
        "DDT",
        "DDTSYM",
        "IGC0023C",
        "MVSDDT",
    ]
    T.tape_get(het, 2, out)
    ddtmac = unload.read_unload_file(out)
    assert (ddtmac.lrecl, ddtmac.blksize) == (80, 3120)
    T.tape_get(aws, 2, out)
    assert len(unload.read_unload_file(out).entries) >= 1
    T.tape_get(aws, 4, out)
    assert xmit.read_xmit(out).files[0].dsname == "PYTHON.XMI.PDS"


# ---------------------------------------------------------------------------------------
# Oracle: the Hercules tape utilities
# ---------------------------------------------------------------------------------------
@pytest.mark.oracle
@pytest.mark.parametrize("name", [AWS, HET])
def test_ls_matches_hetmap(real_fixtures, name):
    _need_tools()
    path = _fixture(real_fixtures, name)
    theirs = _hetmap_datasets(path)
    ours = T.tape_ls(path)
    assert len(theirs) == len(ours) > 0
    for h, f in zip(theirs, ours, strict=True):
        assert (h["seq"], h["file"], h["dsn"], h["blocks"]) == (
            f["number"],
            f["physical"],
            f["dsname"],
            f["blocks"],
        )
        assert (h["recfm"], h["lrecl"], h["blksize"]) == (f["recfm"], f["lrecl"], f["blksize"])
        assert h["job"] == f"{f['job']}/{f['step']}"
        created = datetime.date.fromisoformat(f["created"])
        assert HETMAP_BLANK_CENTURY_IS_19XX and h["year"] % 100 == created.year % 100
        assert h["day"] == created.timetuple().tm_yday
    # Per physical file: block count and uncompressed bytes.
    files = _hetmap_files(path)
    for f in ours:
        assert files[f["physical"]] == (f["blocks"], f["bytes"])


@pytest.mark.oracle
@pytest.mark.parametrize("name", [AWS, HET])
def test_get_matches_hetget(real_fixtures, tmp_path, name):
    _need_tools()
    path = _fixture(real_fixtures, name)
    for f in T.tape_ls(path):
        theirs = tmp_path / f"hetget{f['number']}"
        _run("hetget", path, theirs, str(f["number"]))
        raw, auto = tmp_path / "raw", tmp_path / "auto"
        T.tape_get(path, f["number"], raw, form="raw")
        T.tape_get(path, f["number"], auto)
        assert raw.read_bytes() == theirs.read_bytes(), f["dsname"]
        # Unloads, XMIT files and F data are written as their blocks.
        assert auto.read_bytes() == theirs.read_bytes(), f["dsname"]


@pytest.mark.oracle
@pytest.mark.parametrize(
    "name,options,method,spanning",
    [
        (AWS, ("-z",), ["zlib"], False),
        (AWS, ("-b",), ["bzip2"], False),
        (HET, ("-d",), [], False),
        (HET, ("-d", "-c", "4096"), [], True),  # uncompressed blocks over several chunks
        (HET, ("-z", "-c", "4096"), ["zlib"], True),  # one zlib stream over two chunks
        (HET, ("-b",), ["bzip2"], False),
        (HET, ("-s",), [], True),  # strict AWSTAPE: 4096-byte chunks
    ],
)
def test_hetupd_copies_read_the_same(real_fixtures, tmp_path, name, options, method, spanning):
    _need_tools()
    path = _fixture(real_fixtures, name)
    copy = tmp_path / "copy.het"
    _run("hetupd", *options, path, copy)
    if not copy.is_file():
        pytest.fail(f"hetupd {' '.join(options)} wrote nothing")
    data = copy.read_bytes()
    continued = 0  # chunks that do not end their block
    pos = 0
    while pos < len(data):
        hdr = parse_at(L.ChunkHeader, data, pos)
        continued += not hdr.flags1 & (L.FLAGS1_EOR | L.FLAGS1_TAPEMARK)
        pos += 6 + hdr.clen
    assert (continued > 0) == spanning
    a, b = T.read_tape(path), T.read_tape(copy)
    assert b.compression == method or (method and set(b.compression) <= set(method))
    assert (a.blocks, a.tapemarks, a.volser) == (b.blocks, b.tapemarks, b.volser)
    for fa, fb in zip(a.files, b.files, strict=True):
        assert fa.blocks == fb.blocks
        assert fa.labels == fb.labels


@pytest.mark.oracle
@pytest.mark.parametrize("compress,chunksize", [(None, 65535), ("zlib", 64), ("bzip2", 100)])
def test_written_tape_read_by_hercules(tmp_path, compress, chunksize):
    _need_tools()
    path = tmp_path / "ours.het"
    path.write_bytes(_small_tape(compress, chunksize))
    ours = T.tape_ls(path)
    theirs = _hetmap_datasets(path)
    assert [(h["dsn"], h["blocks"], h["recfm"], h["lrecl"], h["blksize"]) for h in theirs] == [
        (f["dsname"], f["blocks"], f["recfm"], f["lrecl"], f["blksize"]) for f in ours
    ]
    assert [f["recfm"] for f in ours] == ["FB", "VB", "VBS", "VS"]
    assert ours[3]["kind"] == "iebcopy-unload" and ours[3]["unloaded"]["blksize"] == 3120
    # hetget -u gives the records without RDWs; ours carry an RDW each.
    for f in ours:
        theirs_u = tmp_path / f"u{f['number']}"
        _run("hetget", "-u", path, theirs_u, str(f["number"]))
        mine = tmp_path / f"m{f['number']}"
        result = T.tape_get(path, f["number"], mine)
        data = mine.read_bytes()
        if result["kind"] == "iebcopy-unload":  # kept as blocks: hetget without -u
            theirs = tmp_path / f"b{f['number']}"
            _run("hetget", path, theirs, str(f["number"]))
            assert data == theirs.read_bytes()
        elif f["recfm"].startswith("V"):
            assert HETGET_U_DROPS_RDWS
            records, pos = [], 0
            while pos < len(data):
                length = int.from_bytes(data[pos : pos + 2], "big")
                assert data[pos + 2 : pos + 4] == b"\0\0" and length >= 4
                records.append(data[pos + 4 : pos + length])
                pos += length
            assert len(records) == result["records"]
            assert b"".join(records) == theirs_u.read_bytes()
        else:
            assert data == theirs_u.read_bytes()


# ---------------------------------------------------------------------------------------
# Tapes made here
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "compress,chunksize", [(None, 65535), (None, 7), ("zlib", 64), ("bzip2", 50)]
)
def test_round_trip_and_records(tmp_path, compress, chunksize):
    path = tmp_path / "t.het"
    path.write_bytes(_small_tape(compress, chunksize))
    tape = T.read_tape(path)
    assert (tape.volser, tape.owner, tape.label_type) == ("TST001", "TESTER", "SL")
    fb, vb, vbs, unl = tape.files
    assert [f.dsname for f in tape.files] == ["TEST.FB", "TEST.VB", "TEST.VBS", "TEST.UNLOAD"]
    assert [f.kind for f in tape.files] == ["sequential"] * 3 + ["iebcopy-unload"]
    assert fb.created == datetime.date(2024, 2, 1) and fb.expires == datetime.date(1999, 12, 31)
    assert (fb.recfm, fb.lrecl, fb.blksize, len(fb.blocks)) == ("FB", 80, 320, 3)
    out = tmp_path / "out"
    assert T.tape_get(path, 1, out)["kind"] == "sequential"
    assert out.read_bytes() == b"".join(fb.blocks)
    result = T.tape_get(path, 2, out)
    expect = _vb_records(12)
    assert result["records"] == 12
    data = out.read_bytes()
    assert data == b"".join((len(r) + 4).to_bytes(2, "big") + b"\0\0" + r for r in expect)
    pos, got = 0, []
    while pos < len(data):
        n = int.from_bytes(data[pos : pos + 2], "big")
        got.append(data[pos + 4 : pos + n])
        pos += n
    assert got == expect
    # Spanned: the 700-byte record crosses blocks and comes back whole.
    result = T.tape_get(path, 3, out)
    assert result["records"] == 2 and vbs.recfm == "VBS"
    data = out.read_bytes()
    assert data[:4] == (704).to_bytes(2, "big") + b"\0\0" and data[4:704] == b"\xc1" * 700
    assert data[704:708] == (24).to_bytes(2, "big") + b"\0\0"
    # raw: the blocks as they are, BDWs and all.
    T.tape_get(path, 2, out, form="raw")
    assert out.read_bytes() == b"".join(vb.blocks)


def test_unlabelled_tape(tmp_path):
    path = tmp_path / "nl.aws"
    runs = [[b"\x01" * 100, b"\x02" * 50], [b"\x03" * 10]]
    T.write_tape(path, runs[0] + [None] + runs[1] + [None, None, b"after the end"])
    tape = T.read_tape(path)
    assert (tape.label_type, tape.volser) == ("NL", "")
    assert [f.blocks for f in tape.files] == runs
    assert [(f.number, f.physical, f.dsname, f.recfm) for f in tape.files] == [
        (1, 1, "", ""),
        (2, 2, "", ""),
    ]
    out = tmp_path / "o"
    T.tape_get(path, 2, out)
    assert out.read_bytes() == b"\x03" * 10
    with pytest.raises(NotFoundError, match="no data set 3"):
        T.tape_get(path, 3, out)
    # An empty NL tape (what `hetinit -n` writes): two tape marks, no data sets.
    T.write_tape(path, [None, None])
    assert T.read_tape(path).files == []


def test_empty_data_set_and_user_labels(tmp_path):
    # HDR1 HDR2 UHL1 TM TM EOF1 EOF2 TM: two tape marks in a row are an empty data set
    # here, not the end of the tape; a second data set follows it.
    items = _sl_items([("EMPTY.ONE", "F", 80, 80, " ", []), ("FULL.TWO", "U", 100, 0, " ", [b"x"])])
    items.insert(3, codepage.blank_pad("UHL1USER HEADER LABEL", 80))
    path = tmp_path / "e.aws"
    T.write_tape(path, items)
    empty, full = T.read_tape(path).files
    assert (empty.kind, empty.blocks, empty.problems) == ("empty", [], [])
    assert empty.labels["UHL1"]["text"] == "UHL1USER HEADER LABEL"
    assert (full.dsname, full.recfm, full.blocks) == ("FULL.TWO", "U", [b"x"])
    out = tmp_path / "o"
    assert T.tape_get(path, 1, out)["bytes"] == 0 and out.read_bytes() == b""
    assert T.tape_get(path, 2, out)["kind"] == "sequential" and out.read_bytes() == b"x"


def test_iebcopy_detection_on_nl_tape(real_fixtures, tmp_path):
    # The same unload without labels is still recognised by its content.
    tape = T.read_tape(_fixture(real_fixtures, HET))
    path = tmp_path / "nl.het"
    T.write_tape(path, tape.files[1].blocks + [None, None], "zlib")
    (f,) = T.tape_ls(path)
    assert f["kind"] == "iebcopy-unload" and f["unloaded"]["recfm"] == "FB"


# ---------------------------------------------------------------------------------------
# Damaged input: one line, FormatError, nothing written
# ---------------------------------------------------------------------------------------
def _chunks(data: bytes) -> list[int]:
    pos, out = 0, []
    while pos < len(data):
        out.append(pos)
        pos += 6 + int.from_bytes(data[pos : pos + 2], "little")
    return out


def _damage(kind: str) -> bytes:
    good = _small_tape("zlib", 65535)
    starts = _chunks(good)
    data = bytearray(good)
    if kind == "truncated header":
        return good + b"\x00\x00\x00"
    if kind == "length lies":
        last = [p for p in starts if data[p : p + 2] != b"\0\0"][-1]  # the last data chunk
        data[last : last + 2] = (60000).to_bytes(2, "little")
        return bytes(data)
    if kind == "prev length mismatch":
        p = starts[5]
        data[p + 2 : p + 4] = (int.from_bytes(data[p + 2 : p + 4], "little") + 1).to_bytes(
            2, "little"
        )
        return bytes(data)
    if kind == "corrupt zlib":
        p = next(
            s
            for s in starts
            if data[s + 4] & 0x03 == 1 and int.from_bytes(data[s : s + 2], "little") > 20
        )
        data[p + 10 : p + 16] = b"\xff" * 6
        return bytes(data)
    if kind == "not a tape":
        return b"//JOBCARD JOB (ACCT),'NOT A TAPE'\n" * 10
    if kind == "empty":
        return b""
    if kind == "truncated data":
        return good[: starts[10] + 20]
    if kind == "tape mark in block":
        return T.build_tape([b"A" * 100], None, 40)[:46] + L.ChunkHeader.build(
            dict(clen=0, plen=40, flags1=0x40, flags2=0)
        )
    if kind == "no begin of record":
        return L.ChunkHeader.build(dict(clen=3, plen=0, flags1=0x20, flags2=0)) + b"abc"
    if kind == "undefined flags":
        return L.ChunkHeader.build(dict(clen=3, plen=0, flags1=0xA4, flags2=0)) + b"abc"
    if kind == "bomb":
        packed = zlib.compress(b"\0" * 1_000_000, 9)
        return L.ChunkHeader.build(dict(clen=len(packed), plen=0, flags1=0xA1, flags2=0)) + packed
    if kind == "bzip2 bomb":
        packed = bz2.compress(b"\0" * 1_000_000, 9)
        return L.ChunkHeader.build(dict(clen=len(packed), plen=0, flags1=0xA2, flags2=0)) + packed
    if kind == "method 3":
        return L.ChunkHeader.build(dict(clen=3, plen=0, flags1=0xA3, flags2=0)) + b"abc"
    raise AssertionError(kind)


DAMAGE = {
    "truncated header": "truncated chunk header",
    "length lies": "only",
    "prev length mismatch": "previous chunk",
    "corrupt zlib": "zlib",
    "not a tape": "not an AWS or HET tape",
    "empty": "empty file",
    "truncated data": "only",
    "tape mark in block": "tape mark inside block 1",
    "no begin of record": "begin-of-record",
    "undefined flags": "undefined flag bits",
    "bomb": "more than 65535",
    "bzip2 bomb": "more than 65535",
    "method 3": "unknown compression method",
}


@pytest.mark.parametrize("kind", sorted(DAMAGE))
def test_damaged_tapes(tmp_path, kind):
    path = tmp_path / "bad.het"
    path.write_bytes(_damage(kind))
    out = tmp_path / "out.bin"
    with pytest.raises(FormatError) as info:
        T.tape_get(path, 1, out)
    text = _one_line(info.value)
    assert DAMAGE[kind] in text and text.startswith("bad.het")
    if kind not in ("empty", "not a tape"):
        assert "offset" in text
    assert [p.name for p in tmp_path.iterdir()] == ["bad.het"]  # nothing written
    with pytest.raises(FormatError):
        T.tape_ls(path)


def test_label_trouble_is_reported_and_refused(tmp_path):
    items = _sl_items([("TEST.ONE", "F", 80, 80, " ", [b"A" * 80, b"B" * 80])])
    # EOF1 claims 3 blocks where the tape holds 2.
    eof1 = items.index(_ds1("EOF", "TEST.ONE", 1, 2))
    items[eof1] = _ds1("EOF", "TEST.ONE", 1, 3)
    path = tmp_path / "count.aws"
    T.write_tape(path, items)
    (f,) = T.tape_ls(path)
    assert f["problems"] == ["EOF1 gives 3 blocks, the tape holds 2"]
    with pytest.raises(FormatError, match="EOF1 gives 3 blocks") as info:
        T.tape_get(path, 1, tmp_path / "o")
    assert "data set 1 TEST.ONE" in _one_line(info.value)
    assert not (tmp_path / "o").exists()
    # The tape ends inside the data set: listed, refused.
    T.write_tape(path, items[:6])
    (f,) = T.tape_ls(path)
    assert "ends inside the data set" in f["problems"][0]
    with pytest.raises(FormatError, match="ends inside"):
        T.tape_get(path, 1, tmp_path / "o")
    # EOV: the data set goes on on another volume.
    items[eof1] = _ds1("EOV", "TEST.ONE", 1, 2)
    T.write_tape(path, items)
    with pytest.raises(UnsupportedError, match="another volume"):
        T.tape_get(path, 1, tmp_path / "o")
    # A label block that is not 80 bytes.
    items[eof1] = b"\xc5\xd6\xc6\xf1" + b"\x40" * 50
    T.write_tape(path, items)
    with pytest.raises(FormatError, match="not 80"):
        T.read_tape(path)
    # Data where EOF1 should be.
    items[eof1] = b"\x00" * 80
    T.write_tape(path, items)
    with pytest.raises(FormatError, match="expected EOF1"):
        T.read_tape(path)
    # ASCII labels.
    T.write_tape(path, [b"VOL1" + b" " * 76, None, None])
    with pytest.raises(UnsupportedError, match="ASCII"):
        T.read_tape(path)


def test_unload_with_bad_bdw_is_refused(real_fixtures, tmp_path):
    tape = T.read_tape(_fixture(real_fixtures, HET))
    blocks = list(tape.files[1].blocks)
    blocks[2] = (len(blocks[2]) + 1).to_bytes(2, "big") + blocks[2][2:]
    path = tmp_path / "bdw.het"
    T.write_tape(path, blocks + [None, None])
    with pytest.raises(FormatError, match="block 3 .* BDW length") as info:
        T.tape_get(path, 1, tmp_path / "o")
    _one_line(info.value)
    assert not (tmp_path / "o").exists()


# A zlib tape (flips mostly hit compressed data) and a plain one (flips reach the labels).
BASES = (_small_tape("zlib", 40), _small_tape(None, 40))


@st.composite
def _damaged(draw) -> bytes:
    data = bytearray(draw(st.sampled_from(BASES)))
    for _ in range(draw(st.integers(1, 4))):
        data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    if draw(st.booleans()):
        del data[draw(st.integers(0, len(data))) :]
    return bytes(data)


@given(_damaged())
@settings(max_examples=400, deadline=2000, suppress_health_check=[HealthCheck.too_slow])
def test_byte_flips_raise_only_our_errors(data):
    # Deadline per example: a loop that did not end would fail here, not hang.
    try:
        tape = T.parse_tape(data, "fuzz.het")
    except EmulatorError as exc:
        _one_line(exc)
        return
    T.tape_summary(tape)  # the listing: kinds, COPYR1 DCB, labels
    for tf in tape.files:
        for form in T.FORMS:
            try:
                T.file_bytes(tf, form, "fuzz.het")
            except EmulatorError as exc:
                _one_line(exc)


# ---------------------------------------------------------------------------------------
# CLI (`dasd tape ...`), through a parser built the way dasd.build_parser builds it
# ---------------------------------------------------------------------------------------
def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="dasd")
    sub = p.add_subparsers(dest="command", required=True)

    def add(name, func, help_):
        sp = sub.add_parser(name, help=help_, description=help_)
        sp.set_defaults(func=func)
        return sp

    cli.add_subcommands(add)
    return p


@pytest.fixture
def dasd_main():
    from emulator.cli import dasd

    return dasd.main


def test_cli_ls_and_get(real_fixtures, tmp_path, capsys, dasd_main):
    path = _fixture(real_fixtures, AWS)
    assert dasd_main(["tape", "ls", str(path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].endswith("AWS SL VOLSER=XMILIB OWNER=TESTTAPE")
    assert lines[1].split() == [
        "FILE",
        "DSNAME",
        "RECFM",
        "LRECL",
        "BLKSIZE",
        "BLOCKS",
        "BYTES",
        "CREATED",
        "STEP",
        "KIND",
    ]
    assert lines[3].split() == [
        "2",
        "PYTHON.XMI.PDS",
        "VS",
        "3216",
        "3220",
        "19",
        "43968",
        "2021-03-09",
        "COPYPO",
        "iebcopy-unload",
        "(FB",
        "80/3200)",
    ]
    assert len(lines) == 6
    assert dasd_main(["tape", "ls", str(path), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["volser"] == "XMILIB" and [f["number"] for f in doc["files"]] == [1, 2, 3, 4]
    assert doc["files"][0]["labels"]["HDR2"]["text"].startswith("HDR2F0320000080")
    out = tmp_path / "seq.bin"
    assert dasd_main(["tape", "get", str(path), "1", "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert "data set 1 PYTHON.XMI.SEQ (sequential FB 80/3200), 1 blocks, 2640 bytes" in text
    assert out.stat().st_size == 2640


def test_cli_errors(tmp_path, capsys, dasd_main):
    bad = tmp_path / "bad.aws"
    bad.write_bytes(b"not a tape at all")
    assert dasd_main(["tape", "get", str(bad), "1", "-o", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "bad.aws: offset 0: not an AWS or HET tape" in err
    assert not (tmp_path / "o").exists()
    assert dasd_main(["tape", "get", str(bad), "0", "-o", "x"]) == 2  # argparse: N > 0
    assert dasd_main(["tape", "ls", str(tmp_path / "missing.aws")]) == 2
    assert "missing.aws: cannot read the tape file: No such file" in capsys.readouterr().err
    aws = tmp_path / "ok.aws"
    T.write_tape(aws, [b"data", None, None])
    assert dasd_main(["tape", "get", str(aws), "1", "-o", str(tmp_path / "no" / "x")]) == 2
    assert capsys.readouterr().err == "dasd: x: No such file or directory\n"
    with pytest.raises(SystemExit):
        _parser().parse_args(["tape", "get", str(bad), "0", "-o", "x"])
    with pytest.raises(SystemExit):
        _parser().parse_args(["tape"])
