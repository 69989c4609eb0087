"""The iebcopy utility: control statements, copies with SELECT / EXCLUDE / rename /
replace, COPYGROUP, unload, load, compress, the listing and return codes, and the
command line.  Source libraries are real (loaded from the XMIT fixtures); Hercules
dasdcat / dasdload are the oracle for what the copies and unloads hold."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from test_unload import fixture, unload_records

from emulator.cli import iebcopy as cli
from emulator.interchange import iebcopy as ieb
from emulator.interchange import unload as ul
from emulator.pds.pds import Pds
from emulator.volume.volume import Volume

HELP = "yetacp__mvs_sysgen__revhelp.xmi"
LOAD = "yetacp__mvs_sysgen__rev370ld.xmi"
RTI = "CBTTape__CBT746__LOADLIB.xmi"
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def libs(real_fixtures, tmp_path):
    """src.3390 with REVIEW.HELP (FB, 5 aliases), REVIEW.LOAD (U, 9 aliases) and
    RTI.LOADLIB (U); an empty dst.3390.  Returns (tmp_path, src, dst)."""
    src, dst = tmp_path / "src.3390", tmp_path / "dst.3390"
    with Volume.create(src, "3390", "SRC001", cyls=5) as vol:
        for dsn, name in (("REVIEW.HELP", HELP), ("REVIEW.LOAD", LOAD), ("RTI.LOADLIB", RTI)):
            ul.load_unload(vol, dsn, ul.read_unload(unload_records(fixture(real_fixtures, name))))
    Volume.create(dst, "3390", "DST001", cyls=5).close()
    return tmp_path, src, dst


def dd(spec: str) -> ieb.DD:
    return ieb.parse_dd(spec)


def run(sysin: str, *specs: str, **kw) -> ieb.Result:
    return ieb.run(sysin, [dd(s) for s in specs], **kw)


def messages(result: ieb.Result) -> list[str]:
    """Listing lines that are messages, with runs of blanks squeezed."""
    return [" ".join(line.split()) for line in result.lines if line.startswith("IEB")]


def blocks(image: Path, dsn: str, name: str) -> list[bytes]:
    with Volume.open(image) as vol:
        return [d for _, d in Pds(vol, dsn).read_blocks(name)]


def entries(image: Path, dsn: str) -> dict:
    with Volume.open(image) as vol:
        return {e.name: e for e in Pds(vol, dsn).members()}


# ---------------------------------------------------------------------------------
# Statements
# ---------------------------------------------------------------------------------
def test_continuations_labels_comments():
    cards = [
        "* a comment",
        "STEP1    COPY OUTDD=OUT,                                               ",
        "               INDD=((IN,R))   copy with replace",
        "         SELECT MEMBER=(A,(B,NEWB),                                    X",
        "               (C,,R))",
        "  S M=((D,NEWD,R))" + " " * 53 + " " + "SEQ00001",
        "         EXCLUDE MEMBER=(Q,R)                                            ",
    ]
    statements, errors = ieb.join_statements(cards)
    assert errors == []
    assert [(s.label, s.operation) for s in statements] == [
        ("STEP1", "COPY"),
        ("", "SELECT"),
        ("", "SELECT"),
        ("", "EXCLUDE"),
    ]
    assert statements[0].operands == "OUTDD=OUT,INDD=((IN,R))"
    assert statements[1].operands == "MEMBER=(A,(B,NEWB),(C,,R))"
    steps = ieb.build_steps(statements)
    assert len(steps) == 1
    step = steps[0]
    assert (step.outdd, step.indds) == ("OUT", [ieb.Indd("IN", True)])
    assert step.selects == [
        ieb.Selection("A"),
        ieb.Selection("B", "NEWB"),
        ieb.Selection("C", None, True),
        ieb.Selection("D", "NEWD", True),
    ]
    assert str(step.error) == "SELECT and EXCLUDE in the same COPY step"


def test_operand_forms():
    assert ieb.parse_indd("A") == [ieb.Indd("A")]
    assert ieb.parse_indd("(A,(B,R),C)") == [ieb.Indd("A"), ieb.Indd("B", True), ieb.Indd("C")]
    assert ieb.parse_indd("(SYSUT1,R)") == [ieb.Indd("SYSUT1", True)]  # IBM's generated form
    assert ieb.parse_members("X", True) == [ieb.Selection("X")]
    with pytest.raises(ieb.StatementError):
        ieb.parse_members("((A,B))", allow_rename=False)
    with pytest.raises(ieb.StatementError):
        ieb.parse_indd("(A,(B,X))")
    with pytest.raises(ieb.StatementError):
        ieb.parse_members("(A,(B,C,D,E))", True)
    with pytest.raises(ieb.StatementError):
        ieb.parse_members("(1BAD)", True)


@pytest.mark.parametrize(
    "sysin, msgid, text",
    [
        (" SELECT MEMBER=A", "IEB118I", "before any COPY"),
        (" COPY OUTDD=OUT", "IEB118I", "needs INDD"),
        (" COPY OUTDD=OUT,INDD=(IN", "IEB118I", "unbalanced"),
        (" COPY OUTDD=OUT,INDD=IN,FOO=1", "IEB118I", "FOO is not an operand"),
        (" COPY OUTDD=OUT,INDD=IN\n S M=(A,A)", "IEB120I", "selected twice"),
        (" COPY OUTDD=OUT,INDD=IN\n S M=((A,X),(B,X))", "IEB120I", "copied as X"),
        (" COPY OUTDD=OUT,INDD=IN\n E M=A\n S M=B", "IEB116I", "SELECT and EXCLUDE"),
        (" COPYGRP OUTDD=OUT,INDD=IN\n S M=((A,B))", "IEB118I", "does not rename"),
        (" ALTERMOD OUTDD=OUT", "IEB118I", "not supported"),
        (" FROB OUTDD=OUT", "IEB118I", "not an IEBCOPY operation"),
        ("COPY OUTDD=OUT,INDD=IN", "IEB118I", "OUTDD=OUT,INDD=IN is not an IEBCOPY operation"),
        (" COPY OUTDD=OUT,\nINDD=IN", "IEB118I", "starts in column 1"),
        (" COPY OUTDD=OUT," + " " * 55 + "X\nXX", "IEB118I", "not blank in columns 1-15"),
    ],
)
def test_statement_errors_give_rc_8(sysin, msgid, text):
    result = ieb.run(sysin, [])
    assert result.rc == 8
    bad = [m for m in messages(result) if m.startswith(msgid)]
    assert bad and text in bad[0] and "CONTROL STATEMENT ERROR" in bad[0]
    assert messages(result)[-1] == "IEB147I END OF JOB -08 WAS HIGHEST SEVERITY CODE"


def test_dd_bindings(tmp_path):
    img = tmp_path / "a.3390"
    img.write_bytes(b"")
    assert ieb.parse_dd(f"IN={img}:sys1.maclib") == ieb.DD("IN", image=str(img), dsn="SYS1.MACLIB")
    assert ieb.parse_dd("OUT=lib.unl") == ieb.DD("OUT", file="lib.unl")
    with pytest.raises(ieb.NotFoundError):
        ieb.parse_dd(f"IN={tmp_path / 'none.3390'}:A.B")
    for bad in ("IN", "1IN=x", "IN="):
        with pytest.raises(ieb.FormatError):
            ieb.parse_dd(bad)


# ---------------------------------------------------------------------------------
# Copies
# ---------------------------------------------------------------------------------
def test_full_copy_keeps_aliases_and_data(libs, hercules):
    tmp, src, dst = libs
    result = run(" COPY OUTDD=OUT,INDD=IN", f"IN={src}:REVIEW.HELP", f"OUT={dst}:NEW.HELP")
    assert result.rc == 0
    msgs = messages(result)
    assert msgs[0] == "IEB167I FOLLOWING MEMBER(S) COPIED FROM INPUT DATA SET REFERENCED BY IN -"
    copied = entries(src, "REVIEW.HELP")
    assert sorted(m.split()[1] for m in msgs if m.startswith("IEB154I")) == sorted(copied)
    assert all(m.endswith("HAS BEEN SUCCESSFULLY COPIED") for m in msgs if m.startswith("IEB154I"))
    assert msgs[-3].startswith("IEB144I THERE ARE") and msgs[-2].startswith("IEB149I THERE ARE")
    out = entries(dst, "NEW.HELP")
    assert [(e.name, e.alias, e.alias_of, e.userdata) for e in out.values()] == [
        (e.name, e.alias, e.alias_of, e.userdata) for e in copied.values()
    ]
    for e in out.values():
        if e.alias:
            assert e.ttr == out[e.alias_of].ttr
        assert hercules.dasdcat_member(dst, "NEW.HELP", e.name) == b"".join(
            blocks(src, "REVIEW.HELP", e.name)
        )
    assert hercules.dasdcat_members(dst, "NEW.HELP") == list(out)


def test_select_rename_replace_and_listing(libs):
    tmp, src, dst = libs
    specs = (f"IN={src}:REVIEW.HELP", f"OUT={dst}:HELP")
    assert run(" COPY OUTDD=OUT,INDD=IN\n SELECT MEMBER=(REVLEV,RFE)", *specs).rc == 0
    result = run(
        " COPY OUTDD=OUT,INDD=IN\n"
        " SELECT MEMBER=(REVLEV,(RFE,,R),(REVOUT,NEWOUT),(REVTSO,RFE2,R),NOSUCH)",
        *specs,
    )
    assert result.rc == 4
    assert messages(result)[:6] == [
        "IEB167I FOLLOWING MEMBER(S) COPIED FROM INPUT DATA SET REFERENCED BY IN -",
        "IEB175I REVLEV NOT COPIED - MEMBER EXISTS AND REPLACE NOT SPECIFIED",
        "IEB154I NEWOUT HAS BEEN SUCCESSFULLY COPIED AND RENAMED FROM REVOUT",
        "IEB154I RFE2 HAS BEEN SUCCESSFULLY COPIED AND RENAMED FROM REVTSO",
        "IEB155I RFE HAS BEEN SUCCESSFULLY COPIED AND IS A REPLACED MEMBER",
        "IEB177I NOSUCH WAS SELECTED BUT NOT FOUND IN ANY INPUT DATA SET",
    ]
    out = entries(dst, "HELP")
    assert sorted(out) == ["NEWOUT", "REVLEV", "RFE", "RFE2"]
    assert blocks(dst, "HELP", "NEWOUT") == blocks(src, "REVIEW.HELP", "REVOUT")
    assert blocks(dst, "HELP", "RFE2") == blocks(src, "REVIEW.HELP", "REVTSO")
    assert out["NEWOUT"].userdata == entries(src, "REVIEW.HELP")["REVOUT"].userdata


def test_exclude_and_selected_alias(libs):
    tmp, src, dst = libs
    specs = (f"IN={src}:REVIEW.HELP", f"OUT={dst}:HELP")
    result = run(" COPY OUTDD=OUT,INDD=IN\n EXCLUDE MEMBER=(REVIEW,REV,REVVSAM,RFE)", *specs)
    assert result.rc == 0
    names = set(entries(dst, "HELP"))
    assert names == set(entries(src, "REVIEW.HELP")) - {"REVIEW", "REV", "REVVSAM", "RFE"}
    # COPY with only an alias selected: the alias gets its own copy of the data
    result = run(" COPY OUTDD=OUT,INDD=IN\n SELECT MEMBER=REV", *specs)
    assert result.rc == 0
    out = entries(dst, "HELP")
    assert out["REV"].alias and "REVIEW" not in out
    assert blocks(dst, "HELP", "REV") == blocks(src, "REVIEW.HELP", "REVIEW")


def test_copygroup_brings_the_aliases(libs):
    tmp, src, dst = libs
    result = run(
        " COPYGRP OUTDD=OUT,INDD=IN\n SELECT MEMBER=REV",
        f"IN={src}:REVIEW.HELP",
        f"OUT={dst}:HELP",
    )
    assert result.rc == 0
    out = entries(dst, "HELP")
    assert sorted(out) == ["REV", "REVIEW", "REVVSAM"]
    assert out["REV"].ttr == out["REVVSAM"].ttr == out["REVIEW"].ttr
    assert not out["REVIEW"].alias and out["REV"].alias_of == "REVIEW"
    # EXCLUDE of one name of a group drops the whole group
    result = run(
        " COPYGROUP OUTDD=OUT,INDD=IN\n EXCLUDE MEMBER=FSH",
        f"IN={src}:REVIEW.HELP",
        f"OUT={dst}:HELP2",
    )
    assert result.rc == 0
    assert not {"FSH", "FSHELP", "HEL"} & set(entries(dst, "HELP2"))


def test_several_inputs_first_wins_unless_replace(libs):
    tmp, src, dst = libs
    specs = (f"A={src}:REVIEW.HELP", f"B={dst}:OTHER", f"OUT={dst}:MERGED")
    run(" COPY OUTDD=OUT,INDD=A\n S M=((REVLEV,RFE))", f"A={src}:REVIEW.HELP", f"OUT={dst}:OTHER")
    result = run(" COPY OUTDD=OUT,INDD=(A,B)\n S M=(RFE,REVOUT)", *specs)
    assert result.rc == 0  # RFE found in A, not looked for in B
    assert blocks(dst, "MERGED", "RFE") == blocks(src, "REVIEW.HELP", "RFE")
    result = run(" COPY OUTDD=OUT,INDD=(A,(B,R))\n", *specs)
    assert result.rc == 4  # A's RFE and REVOUT are there already, A has no R
    msgs = messages(result)
    assert "IEB175I RFE NOT COPIED - MEMBER EXISTS AND REPLACE NOT SPECIFIED" in msgs
    assert "IEB175I REVOUT NOT COPIED - MEMBER EXISTS AND REPLACE NOT SPECIFIED" in msgs
    # ... but B's RFE (REVLEV's text) replaced it
    assert "IEB155I RFE HAS BEEN SUCCESSFULLY COPIED AND IS A REPLACED MEMBER" in msgs
    assert blocks(dst, "MERGED", "RFE") == blocks(src, "REVIEW.HELP", "REVLEV")
    result = run(" COPY OUTDD=OUT,INDD=(A,B)", *specs)
    assert result.rc == 4
    assert "IEB175I RFE NOT COPIED - MEMBER EXISTS AND REPLACE NOT SPECIFIED" in messages(result)


def test_load_modules_point_at_their_blocks(libs):
    """Copied load modules: the directory TTR and the user-data TTRs name blocks of
    the member, at the same positions and with the same content as in the source."""
    tmp, src, dst = libs
    for dsn in ("REVIEW.LOAD", "RTI.LOADLIB"):
        result = run(" COPY OUTDD=OUT,INDD=IN", f"IN={src}:{dsn}", f"OUT={dst}:{dsn}")
        assert result.rc == 0
        with Volume.open(src) as sv, Volume.open(dst) as dv:
            sp, dp = Pds(sv, dsn), Pds(dv, dsn)
            src_entries = {e.name: e for e in sp.members()}
            for e in dp.members():
                s = src_entries[e.name]
                assert e.ttr_count == s.ttr_count and e.alias == s.alias
                sb, db = sp.blocks_with_ttr(e.name), dp.blocks_with_ttr(e.name)
                assert [b.data for b in db] == [b.data for b in sb]
                assert (db[0].tt, db[0].r) == e.ttr
                s_index = {(b.tt, b.r): i for i, b in enumerate(sb)}
                d_index = {(b.tt, b.r): i for i, b in enumerate(db)}
                for sttr, dttr in zip(s.user_ttrs, e.user_ttrs, strict=True):
                    if sttr == (0, 0):
                        assert dttr == (0, 0)
                    else:
                        assert d_index[dttr] == s_index[sttr]
            assert dp.check() == []


# ---------------------------------------------------------------------------------
# Unload, load, compress
# ---------------------------------------------------------------------------------
def test_unload_then_hercules_and_load(libs, hercules):
    tmp, src, dst = libs
    result = run(
        " COPY OUTDD=UNL,INDD=IN\n EXCLUDE MEMBER=REVSMF",
        f"IN={src}:REVIEW.LOAD",
        f"UNL={tmp / 'load.vs'}",
        unload_descriptors=False,
    )
    assert result.rc == 0
    msgs = messages(result)
    assert msgs[0] == "IEB167I FOLLOWING MEMBER(S) UNLOADED FROM INPUT DATA SET REFERENCED BY IN -"
    assert "IEB154I REVIEW HAS BEEN SUCCESSFULLY UNLOADED" in msgs
    herc = hercules.dasdload("HERC01 3390 5\nREVIEW.LOAD vs load.vs\n", tmp / "h.3390", tmp)
    expected = [n for n in entries(src, "REVIEW.LOAD") if n != "REVSMF"]
    assert hercules.dasdcat_members(herc, "REVIEW.LOAD") == expected
    for n in expected:
        assert hercules.dasdcat_member(herc, "REVIEW.LOAD", n) == b"".join(
            blocks(src, "REVIEW.LOAD", n)
        )
    # standalone unload (VS blocks) and load it back with IEBCOPY
    result = run(" COPY OUTDD=UNL,INDD=IN", f"IN={src}:REVIEW.LOAD", f"UNL={tmp / 'load.unl'}")
    assert result.rc == 0 and ul.detect_form((tmp / "load.unl").read_bytes()) == "blocks"
    result = run(" COPY OUTDD=OUT,INDD=UNL", f"UNL={tmp / 'load.unl'}", f"OUT={dst}:LOADED")
    assert result.rc == 0
    msgs = messages(result)
    assert msgs[0] == "IEB167I FOLLOWING MEMBER(S) LOADED FROM INPUT DATA SET REFERENCED BY UNL -"
    assert "IEB154I REVIEW HAS BEEN SUCCESSFULLY LOADED" in msgs
    assert entries(dst, "LOADED") == entries(src, "REVIEW.LOAD")


def test_compress_in_place(libs, hercules):
    tmp, src, dst = libs
    shutil.copy(src, tmp / "c.3390")
    image = tmp / "c.3390"
    with Volume.open(image, writable=True) as vol:
        pds = Pds(vol, "REVIEW.HELP")
        pds.delete("REVLEV")
        pds.write("RFE", pds.read("REVOUT"), stats=None)  # the old RFE becomes garbage
        before = {e.name: b"".join(d for _, d in pds.read_blocks(e.name)) for e in pds.members()}
        lstar = vol.dataset("REVIEW.HELP").lstar
    result = run(" COPY OUTDD=LIB,INDD=LIB", f"LIB={image}:REVIEW.HELP")
    assert result.rc == 0
    msgs = messages(result)
    assert msgs[0] == "IEB1018I COMPRESSING PDS OUTDD=LIB DSN=REVIEW.HELP"
    assert any(m.endswith("WAS ALREADY IN PLACE AND NOT MOVED") for m in msgs)
    assert any(m.endswith("WAS MOVED") for m in msgs)
    with Volume.open(image) as vol:
        pds = Pds(vol, "REVIEW.HELP")
        assert vol.dataset("REVIEW.HELP").lstar < lstar
        assert pds.check() == []
        for e in pds.members():
            assert hercules.dasdcat_member(image, "REVIEW.HELP", e.name) == before[e.name]
    # compress with SELECT is an error
    result = run(" COPY OUTDD=LIB,INDD=LIB\n S M=RFE", f"LIB={image}:REVIEW.HELP")
    assert result.rc == 8


def test_failed_step_is_rolled_back(libs):
    """A directory too small: RC 12, the output unchanged, later steps still run."""
    tmp, src, dst = libs
    with Volume.open(dst, writable=True) as vol:
        vol.allocate("TINY", "PO", "FB", 80, 6480, space=("TRK", 40, 5), dirblks=1)
    before = dst.read_bytes()
    result = run(
        " COPY OUTDD=OUT,INDD=IN\n COPY OUTDD=OUT,INDD=IN\n S M=RFE",
        f"IN={src}:REVIEW.HELP",
        f"OUT={dst}:TINY",
    )
    assert result.rc == 12
    msgs = messages(result)
    assert any(m.startswith("IEB1017E STEP ENDED, OUTPUT UNCHANGED:") for m in msgs)
    assert "IEB154I RFE HAS BEEN SUCCESSFULLY COPIED" in msgs
    assert sorted(entries(dst, "TINY")) == ["RFE"]
    assert len(dst.read_bytes()) == len(before)


def test_unbound_and_bad_inputs(libs, real_fixtures):
    tmp, src, dst = libs
    result = run(" COPY OUTDD=OUT,INDD=IN", f"OUT={dst}:X")
    assert result.rc == 8 and messages(result)[0].startswith("IEB127I DDNAME IN IS NOT BOUND")
    bad = tmp / "bad.unl"
    bad.write_bytes(b"\x00\xca\x6d\x0f" + bytes(100))
    result = run(" COPY OUTDD=OUT,INDD=IN", f"IN={bad}", f"OUT={dst}:X")
    assert result.rc == 12 and messages(result)[0].startswith("IEB1017E INDD=IN CANNOT BE READ")
    result = run(" COPY OUTDD=OUT,INDD=IN", f"IN={src}:NO.SUCH", f"OUT={dst}:X")
    assert result.rc == 8
    xmit = fixture(real_fixtures, "mainframed__Enumeration__CHECKP.XMIT")
    result = run(" COPY OUTDD=OUT,INDD=IN", f"IN={xmit}", f"OUT={dst}:X")
    assert result.rc == 12 and "TSO XMIT" in messages(result)[0]
    pdse = tmp / "checkp.unl"  # the program-object unload inside it
    pdse.write_bytes(b"".join(unload_records(xmit)))
    result = run(" COPY OUTDD=OUT,INDD=IN", f"IN={pdse}", f"OUT={dst}:X")
    assert result.rc == 8 and "PDSE unload" in messages(result)[0]
    with Volume.open(dst) as vol:
        assert [d.dsname for d in vol.datasets()] == []


def test_empty_sysin_is_sysut1_to_sysut2(libs):
    tmp, src, dst = libs
    result = run("", f"SYSUT1={src}:RTI.LOADLIB", f"SYSUT2={dst}:RTI.LOADLIB")
    assert result.rc == 0
    assert len(entries(dst, "RTI.LOADLIB")) == 11


# ---------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------
def test_cli_exit_status_and_listing(libs, capsys, monkeypatch):
    tmp, src, dst = libs
    sysin = tmp / "sysin.txt"
    sysin.write_text(" COPY OUTDD=OUT,INDD=IN\n SELECT MEMBER=(RFE,MISSING)\n")
    rc = cli.main(["--sysin", str(sysin), "--dd", f"IN={src}:REVIEW.HELP", "--dd", f"OUT={dst}:H"])
    out = capsys.readouterr()
    assert rc == 4 and out.err == ""
    assert "IEB154I  RFE      HAS BEEN SUCCESSFULLY  COPIED" in out.out
    assert out.out.rstrip().endswith("IEB147I  END OF JOB -04 WAS HIGHEST SEVERITY CODE")
    monkeypatch.setattr("sys.stdin", __import__("io").StringIO(" COPY OUTDD=OUT,INDD=IN\n"))
    assert cli.main(["--dd", f"IN={src}:RTI.LOADLIB", "--dd", f"OUT={dst}:R"]) == 0
    capsys.readouterr()
    for argv in (["--dd", "IN"], ["--dd", "A=x", "--dd", "A=y"], ["--bogus"]):
        rc = cli.main(argv)
        err = capsys.readouterr().err
        assert rc == 2 and err.strip()
        if argv[0] == "--dd":
            assert err.startswith("iebcopy: ") and len(err.strip().splitlines()) == 1
    assert cli.main(["--sysin", str(tmp / "nope.txt")]) == 16


def test_python_dash_m(libs):
    tmp, src, dst = libs
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "emulator.cli.iebcopy",
            "--dd",
            f"IN={src}:RTI.LOADLIB",
            "--dd",
            f"OUT={tmp / 'rti.unl'}",
        ],
        input=" COPY OUTDD=OUT,INDD=IN\n",
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "UNLOADED" in proc.stdout
    assert len(ul.read_unload_file(tmp / "rti.unl").entries) == 11


def test_reblocking_to_a_smaller_block_size(libs):
    tmp, src, dst = libs
    with Volume.open(dst, writable=True) as vol:
        vol.allocate("SMALL", "PO", "FB", 80, 800, space=("TRK", 30, 5), dirblks=5)
    result = run(" COPY OUTDD=OUT,INDD=IN", f"IN={src}:REVIEW.HELP", f"OUT={dst}:SMALL")
    assert result.rc == 0
    with Volume.open(src) as sv, Volume.open(dst) as dv:
        sp, dp = Pds(sv, "REVIEW.HELP"), Pds(dv, "SMALL")
        for e in dp.members():
            assert dp.read(e.name) == sp.read(e.name)
            assert max(len(d) for _, d in dp.read_blocks(e.name)) <= 800
            assert e.userdata == sp.member(e.name).userdata
    with Volume.open(dst, writable=True) as vol:
        vol.allocate("UTINY", "PO", "U", 0, 1024, space=("TRK", 30, 5), dirblks=5)
    result = run(" COPY OUTDD=OUT,INDD=IN", f"IN={src}:REVIEW.LOAD", f"OUT={dst}:UTINY")
    assert result.rc == 8
    assert "input block size is larger" in messages(result)[0]
