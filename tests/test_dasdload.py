"""emulator.dasdload: Hercules control files, checked against Hercules 3.13 dasdload.

The same control file goes through Hercules ``dasdload`` and through ours; Hercules'
``dasdls`` must list the same names on both volumes and ``dasdseq``/``dasdcat`` must
return the same bytes for each data set (placement may differ; see tests/oracle.py for
every tolerated difference).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from oracle import hercules_required, hercules_text

from emulator import dasdload
from emulator.errors import (
    ConflictError,
    EmulatorError,
    FormatError,
    NotFoundError,
    UnsupportedError,
)

TEXT = (
    "//HELLO    JOB (ACCT),'TEST',CLASS=A\n"
    "//STEP1    EXEC PGM=IEFBR14   [brackets] {braces} ~tilde \\ back\n"
    "\n"
    "   indented line with trailing blanks   \r\n"
    "last line\n"
)
BINARY = bytes(range(256)) * 20 + b"tail"  # 5124 bytes: not a multiple of LRECL


def _inputs(tmp: Path) -> None:
    (tmp / "jcl.txt").write_text(TEXT, newline="")
    (tmp / "data.bin").write_bytes(BINARY)
    (tmp / "one.bin").write_bytes(b"\x01" * 80)


CTL = """\
# Test volume: every method dasdload and we both support
* star comment
TESTV1 3390 5
TEST.TEXT.FB     TEXT  jcl.txt  trk 1 0 0 ps fb 80 800
TEST.TEXT.F      TEXT  jcl.txt  trk 1 0 0 ps f 80 80
TEST.TEXT.BIG    TEXT  jcl.txt  trk 2 1 0 ps fb 80 27920
TEST.SEQ.FB      SEQ   data.bin trk 2 1 0 ps fb 80 3120
TEST.SEQ.F       SEQ   one.bin  trk 1 0 0 ps f 80 80
TEST.SEQ.CYL     SEQ   data.bin cyl 1 0 0 ps fb 100 1000
TEST.EMPTY.PS    EMPTY trk 1 0 0 ps fb 80 3120
TEST.EMPTY.PO    EMPTY trk 5 1 5 po fb 80 3120
dummy            VTOC  TRK 3
"""
SEQUENTIAL = [
    "TEST.TEXT.FB",
    "TEST.TEXT.F",
    "TEST.TEXT.BIG",
    "TEST.SEQ.FB",
    "TEST.SEQ.F",
    "TEST.SEQ.CYL",
    "TEST.EMPTY.PS",
]


def _ours(tmp: Path, ctl_text: str, name: str = "ours.3390", **kw) -> Path:
    ctl = tmp / f"{name}.ctl"
    ctl.write_text(ctl_text)
    image = tmp / name
    vol = dasdload.load(ctl, image, **kw)
    vol.close()
    return image


# -- parsing (no image) ----------------------------------------------------------------
def test_parse_volume_datasets_defaults_and_comments():
    ctl = dasdload.parse(CTL, "t.ctl")
    assert (ctl.volume.volser, ctl.volume.devtype, ctl.volume.cyls) == ("TESTV1", "3390", 5)
    assert [d.dsname for d in ctl.datasets] == SEQUENTIAL + ["TEST.EMPTY.PO"]
    assert ctl.vtoc_tracks == 3
    po = ctl.datasets[-1]
    assert (po.unit, po.primary, po.secondary, po.dirblks) == ("TRK", 5, 1, 5)
    assert (po.dsorg, po.recfm, po.lrecl, po.blksize, po.keylen) == ("PO", "FB", 80, 3120, 0)
    bare = dasdload.parse("v 3390-3 *\nlower.case empty\n").datasets[0]
    assert (bare.dsname, bare.unit, bare.primary, bare.secondary) == ("LOWER.CASE", "TRK", 1, 0)
    assert dasdload.parse("V 3390-3 *\n").volume.cyls is None
    assert dasdload.parse("V 3390 0\n").volume.cyls is None
    unit_only = dasdload.parse("V 3390\nA.B SEQ f cyl\n").datasets[0]
    assert (unit_only.unit, unit_only.primary) == ("CYL", None)


@pytest.mark.parametrize(
    "text, line, fragment, exc",
    [
        ("", "line 1", "no volume statement", FormatError),
        ("VOLSERTOOLONG 3390 3\n", "line 1", "volume serial", FormatError),
        ("V 9999 3\n", "line 1", "9999", EmulatorError),
        ("V 3390 three\n", "line 1", "cylinders", FormatError),
        ("V 3390 3 ipl.obj\n", "line 1", "IPL text", UnsupportedError),
        ("V 3390 3\nA.B bogus\n", "line 2", "unknown method", FormatError),
        ("V 3390 3\n\n# c\nA.B empty abc 1\n", "line 4", "TRK or CYL", FormatError),
        ("V 3390 3\nA.B empty trk x\n", "line 2", "primary", FormatError),
        ("V 3390 3\nA.B empty trk 0\n", "line 2", "at least 1", FormatError),
        ("V 3390 3\nA.B empty trk 1 0 0 ps xx 80\n", "line 2", "RECFM", FormatError),
        ("V 3390 3\nA.B empty trk 1 0 0 ps fb eighty\n", "line 2", "LRECL", FormatError),
        ("V 3390 3\nA.B empty trk 1 0 0 ps fb 80 800 0 # c\n", "line 2", "unexpected", FormatError),
        ("V 3390 3\nA.B empty trk 1 0 0 qq\n", "line 2", "DSORG", FormatError),
        ("V 3390 3\nA.B empty trk 1 0 0 da f 80 80\n", "line 2", "DA", UnsupportedError),
        ("V 3390 3\nA.B empty trk 1 0 0 po fb 80 800\n", "line 2", "directory", FormatError),
        ("V 3390 3\nA..B empty\n", "line 2", "data set name", FormatError),
        ("V 3390 3\nA.B(M) empty\n", "line 2", "not a member", FormatError),
        ("V 3390 3\nA.B empty\nA.B empty\n", "line 3", "line 2", ConflictError),
        ("V 3390 3\nA.B seq\n", "line 2", "input file", FormatError),
        ("V 3390 3\nA.B dip\n", "line 2", "DIP", UnsupportedError),
    ],
)
def test_parse_errors_name_file_and_line(text, line, fragment, exc):
    with pytest.raises(exc) as info:
        dasdload.parse(text, "/some/where/bad.ctl")
    message = str(info.value)
    assert message.startswith("bad.ctl: "), message
    assert line in message and fragment in message, message
    assert "\n" not in message


# -- loading with our writer -----------------------------------------------------------
def test_load_reads_back_through_our_api(tmp_path):
    from emulator import api

    _inputs(tmp_path)
    image = _ours(tmp_path, CTL)
    with api.open_volume(image) as vol:
        assert vol.volser == "TESTV1"
        infos = {i.dsname: i for i in api.list_datasets(vol)}
        assert sorted(infos) == sorted(SEQUENTIAL + ["TEST.EMPTY.PO"])
        fb = infos["TEST.TEXT.FB"]
        assert (fb.dsorg, fb.recfm, fb.lrecl, fb.blksize) == ("PS", "FB", 80, 800)
        assert api.read_text(vol, "TEST.TEXT.FB") == [ln.rstrip(" \r") for ln in TEXT.splitlines()]
        padded = BINARY + bytes(-len(BINARY) % 80)
        assert api.read_bytes(vol, "TEST.SEQ.FB") == padded
        assert api.read_bytes(vol, "TEST.EMPTY.PS") == b""
        assert api.list_members(vol, "TEST.EMPTY.PO") == []
        assert infos["TEST.SEQ.CYL"].tracks == 15
        assert api.check(vol) == []


def test_text_keeps_last_line_without_newline(tmp_path):
    from emulator import api

    (tmp_path / "t.txt").write_text("first\nno newline")
    image = _ours(tmp_path, "V1 3390 2\nA.T TEXT t.txt trk 1 0 0 ps fb 80 800\n")
    with api.open_volume(image) as vol:
        assert api.read_text(vol, "A.T") == ["first", "no newline"]


def test_text_variable_and_undefined(tmp_path):
    from emulator import api

    (tmp_path / "t.txt").write_text("ab\n\nlonger line   \n")
    ctl = "V1 3390 2\nA.VB TEXT t.txt trk 1 0 0 ps vb 84 800\nA.U TEXT t.txt trk 1 0 0 ps u 0 800\n"
    image = _ours(tmp_path, ctl)
    with api.open_volume(image) as vol:
        expect = [b"\x81\x82", b"", "longer line   ".encode("cp1047")]
        assert api.read_records(vol, "A.VB") == expect
        assert api.read_records(vol, "A.U")[0] == b"\x81\x82"


@pytest.mark.parametrize(
    "ctl, fragment, exc",
    [
        ("V1 3390 2\nA.B SEQ missing.bin trk 1 0 0 ps fb 80 800\n", "not found", NotFoundError),
        ("V1 3390 2\nA.B TEXT long.txt trk 1 0 0 ps fb 10 800\n", "longer", FormatError),
        ("V1 3390 2\nA.B SEQ long.txt trk 1 0 0 ps vb 80 800\n", "RECFM F", FormatError),
        ("V1 3390 2\nA.B SEQ long.txt trk 1 0 0 po fb 80 800 \n", "directory", FormatError),
        ("V1 3390 2\nA.B XMIT long.txt\n", "long.txt: offset 0: not a TSO XMIT", FormatError),
        ("V1 3390 2\nA.B XMSEQ long.txt\n", "long.txt: offset 0: not a TSO XMIT", FormatError),
        ("V1 3390 2\nA.B VS long.txt\n", "long.txt: not an IEBCOPY unload", FormatError),
        ("V1 3390 2\nA.B XMIT missing.xmi\n", "not found", NotFoundError),
        # valid syntax, fails while writing: the primary is too small, no secondary
        ("V1 3390 2\nA.OK EMPTY\nA.B SEQ big.bin trk 1 0 0 ps fb 80 800\n", "", EmulatorError),
        ("V1 3390 2\nA.B EMPTY trk 9999 0 0 ps fb 80 800\n", "", EmulatorError),
    ],
)
def test_failed_load_leaves_no_image(tmp_path, ctl, fragment, exc):
    (tmp_path / "long.txt").write_text("x" * 20 + "\n")
    (tmp_path / "big.bin").write_bytes(bytes(200_000))
    (tmp_path / "x.ctl").write_text(ctl)
    image = tmp_path / "out.3390"
    with pytest.raises(exc) as info:
        dasdload.load(tmp_path / "x.ctl", image)
    message = str(info.value)
    assert message.startswith("x.ctl: line "), message
    assert fragment in message
    assert not image.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.bin", "long.txt", "x.ctl"]


@pytest.mark.parametrize(
    "line, tracks", [("dummy VTOC TRK 3", 3), ("dummy VTOC CYL 2", 30), ("dummy VTOC", 14)]
)
def test_vtoc_line_sets_the_vtoc_size(tmp_path, line, tracks):
    from emulator.volume import Volume

    image = _ours(tmp_path, f"V1 3390 5\nA.B EMPTY\n{line}\n")
    with Volume.open(image) as vol:
        assert vol.vtoc_extent == (1, tracks)  # from track 0/1, as our volumes start it
        assert vol.dataset("A.B").extents[0].begin == tracks + 1 and vol.check() == []


def test_vtoc_line_too_big_names_its_line(tmp_path):
    (tmp_path / "x.ctl").write_text("V1 3390 2\nA.B EMPTY\nBIG VTOC TRK 40\n")
    with pytest.raises(FormatError) as info:
        dasdload.load(tmp_path / "x.ctl", tmp_path / "out.3390")
    assert str(info.value).startswith("x.ctl: line 3: "), str(info.value)
    assert not (tmp_path / "out.3390").exists()


def test_existing_image_is_not_touched(tmp_path):
    image = tmp_path / "there.3390"
    image.write_bytes(b"precious")
    (tmp_path / "x.ctl").write_text("V1 3390 2\nA.B EMPTY\n")
    with pytest.raises(ConflictError):
        dasdload.load(tmp_path / "x.ctl", image)
    assert image.read_bytes() == b"precious"


def test_missing_control_file(tmp_path):
    with pytest.raises(NotFoundError, match="nope.ctl: no such control file"):
        dasdload.load(tmp_path / "nope.ctl", tmp_path / "x.3390")
    assert not (tmp_path / "x.3390").exists()


# -- Hercules as the oracle ------------------------------------------------------------
@hercules_required
@pytest.mark.oracle
def test_same_names_and_contents_as_hercules_dasdload(tmp_path):
    import oracle

    _inputs(tmp_path)
    herc = oracle.dasdload(CTL, tmp_path / "herc.3390", tmp_path)
    ours = _ours(tmp_path, CTL)
    assert oracle.dasdls(ours) == oracle.dasdls(herc)
    for dsn in SEQUENTIAL:
        expect = oracle.dasdseq(herc, dsn, tmp_path)
        got = oracle.dasdseq(ours, dsn, tmp_path)
        if dsn.startswith("TEST.TEXT"):
            got = hercules_text(got)
        assert got == expect, dsn
    assert oracle.dasdcat_members(ours, "TEST.EMPTY.PO") == []
    assert oracle.dasdcat_members(herc, "TEST.EMPTY.PO") == []
    # DCB attributes as Hercules lists them (dates and placement may differ)
    keys = ("dsname", "dsorg", "recfm", "lrecl", "blksize", "keylen", "extents")
    strip = lambda rows: [{k: r.get(k) for k in keys} for r in rows]  # noqa: E731
    assert strip(oracle.dasdls_info(ours)) == strip(oracle.dasdls_info(herc))


@hercules_required
@pytest.mark.oracle
@pytest.mark.parametrize("compress", ["zlib", "bzip2"])
def test_compressed_load_is_clean_for_cckdcdsk(tmp_path, compress):
    import oracle

    _inputs(tmp_path)
    ours = _ours(tmp_path, CTL, name=f"ours-{compress}.cckd", compress=compress)
    ok, output = oracle.cckdcdsk(ours)
    assert ok, output
    assert len(oracle.dasdls(ours)) == len(SEQUENTIAL) + 1
    padded = BINARY + bytes(-len(BINARY) % 80)
    assert oracle.dasdseq(ours, "TEST.SEQ.FB", tmp_path) == padded


_line = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E, exclude_characters="|"),
    max_size=80,
)


@hercules_required
@pytest.mark.oracle
@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(lines=st.lists(_line, max_size=30), crlf=st.booleans())
def test_text_method_matches_hercules_for_any_ascii(tmp_path, lines, crlf):
    """Any printable ASCII (bar "|", a tolerated table difference) loads byte-identically."""
    import oracle

    work = tmp_path / f"case{abs(hash((tuple(lines), crlf)))}"
    work.mkdir()
    (work / "t.txt").write_bytes("".join(ln + ("\r\n" if crlf else "\n") for ln in lines).encode())
    ctl = "PROP01 3390 1\nP.TEXT TEXT t.txt trk 5 1 0 ps fb 80 3120\n"
    herc = oracle.dasdload(ctl, work / "herc.3390", work)
    ours = _ours(work, ctl)
    assert oracle.dasdseq(ours, "P.TEXT", work) == oracle.dasdseq(herc, "P.TEXT", work)


@hercules_required
@pytest.mark.oracle
def test_cached_fixture_volumes_agree(fixture_volumes, tmp_path):
    """tools/make_fixtures.py: every volume, ours and Hercules', plain and compressed,
    lists the same data sets with the same contents."""
    import oracle

    herc = fixture_volumes["herc.3390"]
    names = oracle.dasdls(herc)
    sequential = [n for n in names if not n.endswith(".PO")]
    expected = {n: oracle.dasdseq(herc, n, tmp_path) for n in sequential}
    for name in ("ours.3390", "ours.cckd", "ours-bz2.cckd", "herc.cckd"):
        image = fixture_volumes[name]
        assert oracle.dasdls(image) == names, name
        ok, output = oracle.cckdcdsk(image)
        assert ok, (name, output)
        for dsn in sequential:
            got = oracle.dasdseq(image, dsn, tmp_path)
            if name.startswith("ours") and "TEXT" in dsn:
                got = hercules_text(got)
            assert got == expected[dsn], (name, dsn)


# -- api.write_bytes cuts a byte stream the way dasdload SEQ does ------------------------
SEQ_DCBS = [("FB", 80, 3120), ("F", 80, 80), ("FB", 100, 1000), ("FB", 1, 800), ("F", 4096, 4096)]


@hercules_required
@pytest.mark.oracle
def test_write_bytes_matches_dasdload_seq(tmp_path):
    import oracle

    from emulator import api

    data = BINARY + bytes(range(7))
    (tmp_path / "data.bin").write_bytes(data)
    lines = ["SEQV01 3390 5"]
    for n, (recfm, lrecl, blksize) in enumerate(SEQ_DCBS):
        lines.append(f"T.S{n} SEQ data.bin TRK 3 0 0 PS {recfm} {lrecl} {blksize}")
    herc = oracle.dasdload("\n".join(lines) + "\n", tmp_path / "herc.3390", tmp_path)
    ours = tmp_path / "ours.3390"
    with api.create_volume(ours, "3390", "SEQV01", cyls=5) as vol:
        for n, (recfm, lrecl, blksize) in enumerate(SEQ_DCBS):
            dcb = api.Dcb(recfm=recfm, lrecl=lrecl, blksize=blksize)
            info = api.write_bytes(vol, f"T.S{n}", data, dcb=dcb, space=("TRK", 3, 0))
            assert (info.recfm, info.lrecl, info.blksize) == (recfm, lrecl, blksize)
            padded = data + bytes(-len(data) % lrecl)  # the last record padded with X'00'
            assert api.read_bytes(vol, f"T.S{n}") == padded
    for n in range(len(SEQ_DCBS)):
        assert oracle.dasdseq(ours, f"T.S{n}", tmp_path) == oracle.dasdseq(
            herc, f"T.S{n}", tmp_path
        )


@pytest.mark.parametrize(
    "dsn, dcb, cut",
    [
        ("T.VB", ("VB", 255, 3120), 251),
        ("T.V", ("V", 100, 104), 96),
        ("T.VBSX", ("VBS", "X", None), 32752),
        ("T.U", ("U", 0, 6144), 6144),
        ("T.PDS(MEMBER)", ("FB", 80, 3120), 80),
    ],
)
def test_write_bytes_variable_undefined_and_members(tmp_path, dsn, dcb, cut):
    from emulator import api

    data = bytes(range(256)) * 400 + b"end"
    recfm, lrecl, blksize = dcb
    with api.create_volume(tmp_path / "v.3390", "3390", "WB0001", cyls=5) as vol:
        dcb = api.Dcb(recfm=recfm, lrecl=lrecl, blksize=blksize)
        dirblks = 2 if "(" in dsn else 0
        api.write_bytes(vol, dsn, data, dcb=dcb, space=("TRK", 30, 5), dirblks=dirblks)
        recs = api.read_records(vol, dsn)
        padded = data + (bytes(-len(data) % cut) if recfm.startswith("F") else b"")
        assert b"".join(recs) == padded and {len(r) for r in recs[:-1]} == {cut}
        # a second write replaces the content; empty data leaves an empty data set
        api.write_bytes(vol, dsn, b"")
        assert api.read_records(vol, dsn) == []
        assert api.check(vol) == []


# -- XMIT, XMSEQ and VS (TSO XMIT files and IEBCOPY unloads, FORMATS.md 8-9) ------------
XMIT_FILES = {
    "REVIEW.HELP": ("xmit", "yetacp__mvs_sysgen__revhelp.xmi", "trk 30 5 20"),
    "REVIEW.LOAD": ("xmit", "yetacp__mvs_sysgen__rev370ld.xmi", ""),
    "RTI.LOADLIB": ("xmit", "CBTTape__CBT746__LOADLIB.xmi", "cyl"),
    "PYTHON.XMI.PDS": ("xmit", "mainframed__xmi__test_pds_msg.xmi", "trk 1 2"),
    "PYTHON.XMI.SEQ": ("xmseq", "mainframed__xmi__test_seq.xmi", ""),
    "RTI.VS": ("vs", "rti.unl", ""),  # written by _unload_inputs
}


def _unload_inputs(real: Path, tmp: Path) -> str:
    """The control file for XMIT_FILES, and rti.unl: the unload records the CBT746 XMIT
    carries, back to back (56-byte COPYR1), which is the binary form dasdload VS reads."""
    from emulator.interchange.xmit import read_xmit

    (pds,) = read_xmit(real / "CBTTape__CBT746__LOADLIB.xmi").files
    (tmp / "rti.unl").write_bytes(b"".join(pds.records))
    lines = ["XMITV 3390 20"]
    for dsn, (method, name, rest) in XMIT_FILES.items():
        path = tmp / name if name == "rti.unl" else real / name
        lines.append(f"{dsn} {method} {path} {rest}".rstrip())
    lines.append("EMPTY.PS empty trk 1 0 0 ps fb 80 3120")
    return "\n".join(lines) + "\n"


def test_xmit_xmseq_and_vs_load(real_fixtures, tmp_path):
    from emulator import api
    from emulator.pds.pds import Pds
    from emulator.volume import Volume

    image = _ours(tmp_path, _unload_inputs(real_fixtures, tmp_path))
    with Volume.open(image) as vol:
        assert api.check(vol) == []
        infos = {i.dsname: i for i in vol.datasets()}
        assert list(infos) == [*XMIT_FILES, "EMPTY.PS"]
        help_ = infos["REVIEW.HELP"]
        assert (help_.recfm, help_.lrecl, help_.blksize, help_.space) == (
            "FB",
            80,
            6480,
            ("TRK", 30, 5),
        )
        assert len(Pds(vol, "REVIEW.HELP")._directory(help_)[1]) == 20  # INMDIR 20
        assert infos["RTI.LOADLIB"].space[0] == "CYL"
        assert infos["PYTHON.XMI.PDS"].tracks >= 3  # primary raised to what the data needs
        assert (infos["RTI.VS"].recfm, infos["RTI.VS"].blksize) == ("U", 13682)
        load = [e.name for e in Pds(vol, "RTI.LOADLIB").members()]
        assert [e.name for e in Pds(vol, "RTI.VS").members()] == load and len(load) == 11
        seq = api.read_records(vol, "PYTHON.XMI.SEQ")
        assert len(seq) == 33 and seq[0].decode("cp037").startswith("//XMITAPE")


@hercules_required
@pytest.mark.oracle
def test_xmit_methods_same_as_hercules_dasdload(real_fixtures, tmp_path):
    import oracle

    from emulator.pds.directory import user_ttr_offsets
    from emulator.pds.pds import Pds
    from emulator.volume import Volume

    ctl = _unload_inputs(real_fixtures, tmp_path)
    herc = oracle.dasdload(ctl, tmp_path / "herc.3390", tmp_path)
    ours = _ours(tmp_path, ctl)
    assert oracle.dasdls(ours) == oracle.dasdls(herc)
    keys = ("dsname", "dsorg", "recfm", "lrecl", "blksize", "keylen", "extents")
    strip = lambda rows: [{k: r.get(k) for k in keys} for r in rows]  # noqa: E731
    assert strip(oracle.dasdls_info(ours)) == strip(oracle.dasdls_info(herc))
    assert oracle.dasdseq(ours, "PYTHON.XMI.SEQ", tmp_path) == oracle.dasdseq(
        herc, "PYTHON.XMI.SEQ", tmp_path
    )

    def entries(image: Path, dsn: str) -> list:
        # user-data TTRs depend on where the members land; the rest must be equal
        with Volume.open(image) as vol:
            out = []
            for e in Pds(vol, dsn).members():
                data = bytearray(e.userdata)
                for off in user_ttr_offsets(e):
                    data[off : off + 3] = bytes(3)
                out.append((e.name, e.alias, e.ttr_count, bytes(data)))
            return out

    for dsn, (method, _, _) in XMIT_FILES.items():
        if method == "xmseq":
            continue
        names = oracle.dasdcat_members(herc, dsn)
        assert names and oracle.dasdcat_members(ours, dsn) == names, dsn
        for name in names:
            got = oracle.dasdcat_member(ours, dsn, name)
            assert got == oracle.dasdcat_member(herc, dsn, name), f"{dsn}({name})"
        assert entries(ours, dsn) == entries(herc, dsn), dsn


def test_xmit_method_errors(real_fixtures, tmp_path):
    seq = real_fixtures / "mainframed__xmi__test_seq.xmi"
    pds = real_fixtures / "mainframed__xmi__test_pds_msg.xmi"
    checkp = real_fixtures / "mainframed__Enumeration__CHECKP.XMIT"
    cases = [
        (f"A.B xmit {seq}", FormatError, "no IEBCOPY unload"),
        (f"A.B xmseq {pds}", FormatError, "holds a PDS (load it with XMIT)"),
        (f"A.B xmit {checkp}", UnsupportedError, "program objects"),
        (f"A.B vs {seq}", FormatError, "this is a TSO XMIT (NETDATA) file"),
    ]
    for line, exc, fragment in cases:
        (tmp_path / "x.ctl").write_text(f"V1 3390 2\nA.OK EMPTY\n{line}\n")
        with pytest.raises(exc) as info:
            dasdload.load(tmp_path / "x.ctl", tmp_path / "out.3390")
        message = str(info.value)
        assert message.startswith("x.ctl: line 3: A.B: "), message
        assert fragment in message, message
        assert not (tmp_path / "out.3390").exists()


def test_vs_reads_a_52_byte_copyr1_unload_with_descriptors(real_fixtures, tmp_path):
    """MVS 3.8j IEBCOPY output as it sits on tape (BDW, RDW, 52-byte COPYR1), which
    Hercules VS cannot read without first removing the descriptors (SOURCES.md #17)."""
    from emulator import api
    from emulator.pds.pds import Pds
    from emulator.volume import Volume

    unl = real_fixtures / "DERIVED__jake-mainframe__MVSDDT__mvsddt.het.file2.DDTLMOD.iebcopy"
    image = _ours(tmp_path, f"DDTV 3390 2\nDDT.LOAD vs {unl}\n")
    with Volume.open(image) as vol:
        names = [e.name for e in Pds(vol, "DDT.LOAD").members()]
        assert names == ["DDT", "DDTSYM", "IGC0023C", "MVSDDT"]
        assert vol.dataset("DDT.LOAD").recfm == "U" and api.check(vol) == []
