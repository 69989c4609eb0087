"""The `dasd` command line: every subcommand, JSON shapes, exit codes, bad input.

Most tests call ``main(argv)`` in-process (fast); a few run ``python -m emulator`` in a
subprocess to check the real entry point, exit codes and a closed pipe.  Hercules 3.13
is the oracle for what the commands write and print.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from oracle import hercules_required

from emulator.cli.dasd import main

REPO = Path(__file__).resolve().parent.parent
GENVOL = "GENERATED__hercules-3.13-dasdload__genvol.3390"
JCL = ["//HELLO    JOB (ACCT),'CLI TEST'", "//STEP1    EXEC PGM=IEFBR14", "//* done"]


class Result:
    def __init__(self, code: int, out: bytes, err: bytes):
        self.code, self.out, self.err = code, out, err

    @property
    def text(self) -> str:
        return self.out.decode("utf-8")

    @property
    def error(self) -> str:
        return self.err.decode("utf-8")

    def json(self):
        return json.loads(self.text)


@pytest.fixture
def dasd(capsysbinary):
    """Run `dasd ARGS...` in-process: Result(code, stdout bytes, stderr bytes)."""

    def run(*args) -> Result:
        code = main([os.fspath(a) for a in args])
        cap = capsysbinary.readouterr()
        return Result(code, cap.out, cap.err)

    return run


def dasd_process(*args, cwd=None, timeout=60) -> Result:
    proc = subprocess.run(
        [sys.executable, "-m", "emulator", *(os.fspath(a) for a in args)],
        capture_output=True,
        timeout=timeout,
        cwd=cwd or REPO,
        stdin=subprocess.DEVNULL,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


def assert_one_line_error(r: Result, *fragments: str) -> None:
    """Exit 2, exactly one line `dasd: ...` on stderr, no traceback, nothing on stdout."""
    assert r.code == 2, (r.code, r.error)
    lines = r.error.splitlines()
    assert len(lines) == 1, r.error
    assert lines[0].startswith("dasd: "), r.error
    assert "Traceback" not in r.error and "internal error" not in r.error, r.error
    for fragment in fragments:
        assert fragment in lines[0], (fragment, r.error)
    assert r.out == b""


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def volume(tmp_path, dasd) -> Path:
    """A 3390 with a PDS (members HELLO and BIN) and a PS data set, built with `dasd`."""
    image = tmp_path / "work.3390"
    (tmp_path / "hello.jcl").write_text("\n".join(JCL) + "\n")
    (tmp_path / "data.bin").write_bytes(bytes(range(256)) * 5)  # 1280 = 16 x 80
    steps = [
        ("init", image, "3390", "WORK01", "--cyls", "10"),
        ("alloc", image, "USER.JCL", "--dsorg", "PO", "--recfm", "FB", "--lrecl", "80")
        + ("--blksize", "3120", "--space", "TRK,5,5,5"),
        ("alloc", image, "USER.DATA", "--dsorg", "PS", "--recfm", "FB", "--lrecl", "80")
        + ("--blksize", "800", "--space", "TRK,2,1"),
        ("put", image, "USER.JCL(HELLO)", tmp_path / "hello.jcl", "--text"),
        ("put", image, "USER.JCL(BIN)", tmp_path / "data.bin"),
        ("put", image, "USER.DATA", tmp_path / "data.bin"),
    ]
    for step in steps:
        r = dasd(*step)
        assert r.code == 0, (step, r.error)
    return image


# -- help and the entry points ---------------------------------------------------------
SUBCOMMANDS = "init load ls members cat put alloc rm rename check convert demo".split()


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_every_subcommand_has_help(dasd, command):
    r = dasd(command, "--help")
    assert r.code == 0
    assert r.text.startswith(f"usage: dasd {command}")


def test_python_dash_m_is_dasd():
    r = dasd_process("--help")
    assert r.code == 0 and "usage: dasd" in r.text
    for command in SUBCOMMANDS:
        assert command in r.text
    r = dasd_process("frobnicate")
    assert r.code == 2 and "invalid choice" in r.error and "Traceback" not in r.error


# -- init, alloc, ls -------------------------------------------------------------------
def test_init_then_ls_empty(tmp_path, dasd):
    image = tmp_path / "new.3390"
    r = dasd("init", image, "3390", "vol001", "--cyls", "5")
    assert r.code == 0, r.error
    assert "VOL001" in r.text
    r = dasd("ls", image, "--json")
    assert r.code == 0 and r.json() == []
    r = dasd("ls", image)
    assert r.text.splitlines()[0] == f"{image}: VOLSER=VOL001"
    assert r.text.splitlines()[1].startswith("Dsname")


def test_init_compressed_and_model(tmp_path, dasd):
    r = dasd("init", tmp_path / "c.cckd", "3390-1", "CVOL01", "--compress", "zlib")
    assert r.code == 0, r.error
    assert "1113 cylinders" in r.text
    r = dasd("init", tmp_path / "c.cckd", "3390", "CVOL01", "--cyls", "5")
    assert_one_line_error(r, "c.cckd")  # exists already


def test_ls_json_shape(volume, dasd):
    r = dasd("ls", volume, "--json")
    assert r.code == 0, r.error
    rows = r.json()
    assert [row["dsname"] for row in rows] == ["USER.JCL", "USER.DATA"]
    for row in rows:
        for key in ("dsname", "dsorg", "recfm", "lrecl", "blksize", "keylen", "tracks", "extents"):
            assert key in row
    jcl, data = rows
    assert (jcl["dsorg"], jcl["recfm"], jcl["lrecl"], jcl["blksize"]) == ("PO", "FB", 80, 3120)
    assert (data["dsorg"], data["tracks"], len(data["extents"])) == ("PS", 2, 1)
    assert json.dumps(rows, sort_keys=True, indent=2) + "\n" == r.text


@hercules_required
@pytest.mark.oracle
def test_ls_matches_dasdls(volume, dasd):
    import oracle

    r = dasd("ls", volume)
    ours = [line.split()[0] for line in r.text.splitlines()[2:]]
    assert ours == oracle.dasdls(volume)
    herc = {row["dsname"]: row for row in oracle.dasdls_info(volume)}
    for row in dasd("ls", volume, "--json").json():
        h = herc[row["dsname"]]
        assert (h["dsorg"], h["recfm"], h["lrecl"], h["blksize"]) == (
            row["dsorg"],
            row["recfm"],
            row["lrecl"],
            row["blksize"],
        )
        assert (h["tracks"], h["extents"]) == (row["tracks"], len(row["extents"]))


# -- members, cat, put -----------------------------------------------------------------
def test_members_json_shape(volume, dasd):
    r = dasd("members", volume, "USER.JCL", "--json")
    assert r.code == 0, r.error
    rows = r.json()
    assert [m["name"] for m in rows] == ["BIN", "HELLO"]
    for m in rows:
        assert set(m) >= {"name", "alias_of", "ttr", "userdata", "ispf"}
        assert m["alias_of"] is None
        assert len(m["ttr"]) == 6 and int(m["ttr"], 16) >= 0
    hello = rows[1]
    assert hello["ispf"] is not None
    r = dasd("members", volume, "USER.JCL")
    assert r.text.splitlines()[0].startswith("Name")
    assert [line.split()[0] for line in r.text.splitlines()[1:]] == ["BIN", "HELLO"]


def test_cat_text_and_bytes(volume, dasd):
    r = dasd("cat", volume, "USER.JCL(HELLO)", "--text")
    assert r.code == 0, r.error
    assert r.text.splitlines() == JCL
    r = dasd("cat", volume, "'user.jcl(hello)'")
    assert r.out == b"".join(line.encode("cp1047").ljust(80, b"\x40") for line in JCL)
    r = dasd("cat", volume, "USER.DATA")
    assert r.out == bytes(range(256)) * 5
    r = dasd("cat", volume, "USER.JCL(HELLO)", "--text", "--codepage", "037")
    assert r.text.splitlines()[0] == JCL[0]


@hercules_required
@pytest.mark.oracle
def test_what_put_writes_hercules_reads(volume, dasd, tmp_path):
    import oracle

    assert oracle.dasdcat_members(volume, "USER.JCL") == ["BIN", "HELLO"]
    for member in ("HELLO", "BIN"):
        ours = dasd("cat", volume, f"USER.JCL({member})").out
        assert oracle.dasdcat_member(volume, "USER.JCL", member) == ours
    assert oracle.dasdseq(volume, "USER.DATA", tmp_path) == bytes(range(256)) * 5


@hercules_required
@pytest.mark.oracle
def test_cat_matches_dasdcat_on_real_volume(dasd, real_fixtures):
    import oracle

    image = real_fixtures / GENVOL
    assert [row["dsname"] for row in dasd("ls", image, "--json").json()] == oracle.dasdls(image)
    for dsn in ("PYTHON.XMI.PDS", "REVIEW.HELP"):
        members = dasd("members", image, dsn, "--json").json()
        assert [m["name"] for m in members] == oracle.dasdcat_members(image, dsn)
        for m in members:
            assert dasd("cat", image, f"{dsn}({m['name']})").out == oracle.dasdcat_member(
                image, dsn, m["name"]
            ), m["name"]
    assert dasd("cat", image, "PYTHON.XMI.SEQ").out == oracle.dasdcat_dataset(
        image, "PYTHON.XMI.SEQ"
    )


def test_members_aliases_and_ispf_on_real_volume(dasd, real_fixtures):
    rows = dasd("members", real_fixtures / GENVOL, "REVIEW.HELP", "--json").json()
    assert len(rows) == 15
    aliases = [m for m in rows if m["alias_of"] is not None]
    assert len(aliases) == 5
    names = {m["name"] for m in rows}
    assert all(m["alias_of"] in names for m in aliases)
    assert all(m["ispf"] is not None for m in rows)


def test_put_replaces_and_adds(volume, dasd, tmp_path):
    (tmp_path / "new.txt").write_text("ONE\nTWO\n")
    assert dasd("put", volume, "USER.JCL(HELLO)", tmp_path / "new.txt", "--text").code == 0
    assert dasd("put", volume, "USER.JCL(NEWMEM)", tmp_path / "new.txt", "--text").code == 0
    assert dasd("cat", volume, "USER.JCL(HELLO)", "--text").text == "ONE\nTWO\n"
    names = [m["name"] for m in dasd("members", volume, "USER.JCL", "--json").json()]
    assert names == ["BIN", "HELLO", "NEWMEM"]
    assert dasd("put", volume, "USER.DATA", tmp_path / "new.txt", "--text").code == 0
    assert dasd("cat", volume, "USER.DATA", "--text").text == "ONE\nTWO\n"
    # only LF and CRLF end a line (a form feed is data), as in dasdload TEXT
    (tmp_path / "crlf.txt").write_bytes(b"A\r\nB\x0cC\r\nlast")
    assert dasd("put", volume, "USER.DATA", tmp_path / "crlf.txt", "--text").code == 0
    assert dasd("cat", volume, "USER.DATA").out[:3] == b"\xc1" + b"\x40" * 2
    assert dasd("cat", volume, "USER.DATA", "--text").text == "A\nB\x0cC\nlast\n"


def test_put_allocates_only_with_dcb_and_space(volume, dasd, tmp_path):
    (tmp_path / "x.txt").write_text("X\n")
    before = digest(volume)
    r = dasd("put", volume, "USER.NEW", tmp_path / "x.txt", "--text")
    assert_one_line_error(r, "USER.NEW")
    r = dasd("put", volume, "USER.NEW", tmp_path / "x.txt", "--text", "--recfm", "FB")
    assert_one_line_error(r, "--lrecl", "--space")
    assert digest(volume) == before
    r = dasd(
        "put", volume, "USER.NEW", tmp_path / "x.txt", "--text", "--dsorg", "PS", "--recfm", "FB",
        "--lrecl", "80", "--blksize", "800", "--space", "TRK,1,1",
    )  # fmt: skip
    assert r.code == 0, r.error
    assert dasd("cat", volume, "USER.NEW", "--text").text == "X\n"
    r = dasd(
        "put", volume, "USER.NEWPDS(M1)", tmp_path / "x.txt", "--text", "--recfm", "FB",
        "--lrecl", "80", "--space", "TRK,2,1,3",
    )  # fmt: skip
    assert r.code == 0, r.error
    listed = {row["dsname"]: row for row in dasd("ls", volume, "--json").json()}
    assert listed["USER.NEWPDS"]["dsorg"] == "PO"


# -- rm, rename, check, convert --------------------------------------------------------
def test_rm_member_and_dataset(volume, dasd):
    assert dasd("rm", volume, "USER.JCL(BIN)").code == 0
    assert [m["name"] for m in dasd("members", volume, "USER.JCL", "--json").json()] == ["HELLO"]
    assert dasd("rm", volume, "USER.DATA").code == 0
    assert [r["dsname"] for r in dasd("ls", volume, "--json").json()] == ["USER.JCL"]
    assert_one_line_error(dasd("rm", volume, "USER.DATA"), "USER.DATA")
    assert_one_line_error(dasd("rm", volume, "USER.JCL(NOSUCH)"), "NOSUCH")


def test_rename_dataset_and_member(volume, dasd):
    assert dasd("rename", volume, "USER.DATA", "USER.DATA2").code == 0
    assert dasd("rename", volume, "USER.JCL(HELLO)", "GREET").code == 0
    assert dasd("rename", volume, "USER.JCL(GREET)", "USER.JCL(HI)").code == 0
    names = [r["dsname"] for r in dasd("ls", volume, "--json").json()]
    assert names == ["USER.JCL", "USER.DATA2"]
    assert [m["name"] for m in dasd("members", volume, "USER.JCL", "--json").json()] == [
        "BIN",
        "HI",
    ]
    assert_one_line_error(dasd("rename", volume, "USER.JCL", "USER.DATA2"), "USER.DATA2")


@hercules_required
@pytest.mark.oracle
def test_after_rm_and_rename_hercules_agrees(volume, dasd):
    import oracle

    assert dasd("rename", volume, "USER.JCL(HELLO)", "GREET").code == 0
    assert dasd("rm", volume, "USER.JCL(BIN)").code == 0
    assert dasd("rename", volume, "USER.DATA", "USER.OTHER").code == 0
    assert oracle.dasdls(volume) == ["USER.JCL", "USER.OTHER"]
    assert oracle.dasdcat_members(volume, "USER.JCL") == ["GREET"]
    assert (
        oracle.dasdcat_member(volume, "USER.JCL", "GREET")
        == dasd("cat", volume, "USER.JCL(GREET)").out
    )


def test_check_clean_and_findings(volume, dasd):
    r = dasd("check", volume)
    assert r.code == 0, r.text + r.error
    assert "clean" in r.text
    assert dasd("check", volume, "--json").json() == []
    # Damage the directory: point member HELLO's TTR past the end of the data set.
    raw = bytearray(volume.read_bytes())
    name = "HELLO".encode("cp1047").ljust(8, b"\x40")
    at = raw.find(name)
    assert at > 0
    raw[at + 8 : at + 11] = b"\x7f\xff\x01"
    volume.write_bytes(bytes(raw))
    r = dasd("check", volume)
    assert r.code == 1, r.text + r.error
    assert r.text.strip() and "clean" not in r.text
    assert dasd("check", volume, "--json").json()


@hercules_required
@pytest.mark.oracle
def test_convert_round_trip(volume, dasd, tmp_path):
    import oracle

    cckd = tmp_path / "work.cckd"
    back = tmp_path / "back.3390"
    assert dasd("convert", volume, cckd, "--compress", "zlib").code == 0
    ok, output = oracle.cckdcdsk(cckd)
    assert ok, output
    assert oracle.dasdls(cckd) == oracle.dasdls(volume)
    assert dasd("convert", cckd, back).code == 0
    assert dasd("cat", back, "USER.JCL(HELLO)").out == dasd("cat", volume, "USER.JCL(HELLO)").out
    assert oracle.dasdcat_member(back, "USER.JCL", "BIN") == bytes(range(256)) * 5
    assert_one_line_error(dasd("convert", tmp_path / "missing.3390", tmp_path / "o.cckd"))
    assert not (tmp_path / "o.cckd").exists()


# -- load and demo ---------------------------------------------------------------------
@hercules_required
@pytest.mark.oracle
def test_load_control_file(tmp_path, dasd):
    import oracle

    (tmp_path / "a.txt").write_text("HELLO\nWORLD\n")
    ctl = tmp_path / "v.ctl"
    ctl.write_text(
        "LOADV1 3390 3\nA.TEXT TEXT a.txt trk 1 0 0 ps fb 80 800\nA.PDS EMPTY trk 2 0 2 po fb 80 3120\n"
    )
    r = dasd("load", ctl, tmp_path / "v.3390")
    assert r.code == 0, r.error
    assert oracle.dasdls(tmp_path / "v.3390") == ["A.TEXT", "A.PDS"]
    assert dasd("cat", tmp_path / "v.3390", "A.TEXT", "--text").text == "HELLO\nWORLD\n"
    ctl.write_text("LOADV1 3390 3\nA.TEXT TEXT missing.txt trk 1 0 0 ps fb 80 800\n")
    assert_one_line_error(dasd("load", ctl, tmp_path / "w.3390"), "v.ctl", "line 2")
    assert not (tmp_path / "w.3390").exists()


@hercules_required
@pytest.mark.oracle
def test_demo_runs_end_to_end(tmp_path, dasd):
    import oracle

    r = dasd("demo", "--dir", tmp_path)
    assert r.code == 0, r.error
    for expected in ("DEMO.JCL", "DEMO.DATA", "HELLO", "//HELLO    JOB", "RECORD 005", "clean"):
        assert expected in r.text
    image = tmp_path / "demo.3390"
    assert oracle.dasdls(image) == ["DEMO.JCL", "DEMO.DATA"]
    assert oracle.dasdcat_members(image, "DEMO.JCL") == ["EMPTY", "HELLO"]
    assert_one_line_error(dasd("demo", "--dir", tmp_path), "demo.3390")


# -- bad input: one line, exit 2, nothing written --------------------------------------
def test_missing_image(dasd, tmp_path):
    for args in (
        ("ls", tmp_path / "nope.3390"),
        ("members", tmp_path / "nope.3390", "A.B"),
        ("cat", tmp_path / "nope.3390", "A.B"),
        ("check", tmp_path / "nope.3390"),
        ("rm", tmp_path / "nope.3390", "A.B"),
    ):
        assert_one_line_error(dasd(*args), "nope.3390")
    assert list(tmp_path.iterdir()) == []


def test_truncated_and_garbage_images(dasd, volume, tmp_path):
    cut = tmp_path / "cut.3390"
    cut.write_bytes(volume.read_bytes()[:700])
    assert_one_line_error(dasd("ls", cut), "cut.3390")
    half = tmp_path / "half.3390"
    half.write_bytes(volume.read_bytes()[: 512 + 56832 // 2])
    r = dasd("ls", half)
    assert_one_line_error(r, "half.3390")
    junk = tmp_path / "junk.3390"
    junk.write_bytes(b"\x00" * 4096)
    assert_one_line_error(dasd("ls", junk), "junk.3390")
    assert_one_line_error(dasd("ls", tmp_path), tmp_path.name)


def test_bad_dsn_and_unknown_member(volume, dasd, tmp_path):
    before = digest(volume)
    assert_one_line_error(dasd("cat", volume, "1BAD.NAME"), "1BAD.NAME")
    assert_one_line_error(dasd("cat", volume, "USER.JCL(TOOLONGNAME)"), "TOOLONGNAME")
    assert_one_line_error(dasd("cat", volume, "USER.JCL(NOSUCH)"), "NOSUCH")
    assert_one_line_error(dasd("cat", volume, "USER.NOSUCH"), "USER.NOSUCH")
    assert_one_line_error(dasd("cat", volume, "USER.JCL"), "USER.JCL")  # PDS without member
    assert_one_line_error(dasd("members", volume, "USER.DATA"), "USER.DATA")  # not a PDS
    (tmp_path / "x.txt").write_text("X\n")
    assert_one_line_error(dasd("put", volume, "BAD..NAME", tmp_path / "x.txt"))
    assert_one_line_error(dasd("put", volume, "USER.JCL(M)", tmp_path / "missing.txt"), "missing")
    (tmp_path / "long.txt").write_text("X" * 81 + "\n")
    assert_one_line_error(dasd("put", volume, "USER.JCL(M)", tmp_path / "long.txt", "--text"))
    assert digest(volume) == before


def test_bad_options_are_usage_errors(dasd, tmp_path):
    r = dasd("alloc", tmp_path / "x.3390", "A.B", "--dsorg", "PS", "--recfm", "FB")
    assert r.code == 2 and "required" in r.error and "Traceback" not in r.error
    r = dasd("init", tmp_path / "x.3390", "3390", "V1", "--cyls", "-3")
    assert r.code == 2 and "--cyls" in r.error
    r = dasd("init", tmp_path / "x.3390", "9999", "V1")
    assert_one_line_error(r, "9999")
    assert not (tmp_path / "x.3390").exists()


def test_keyboard_interrupt_exits_130(volume, dasd, monkeypatch):
    from emulator import api

    def interrupted(*_args, **_kw):
        raise KeyboardInterrupt

    monkeypatch.setattr(api, "list_datasets", interrupted)
    r = dasd("ls", volume)
    assert r.code == 130 and "Traceback" not in r.error


def test_traceback_flag_reraises(dasd, tmp_path):
    from emulator.errors import EmulatorError

    with pytest.raises(EmulatorError):
        dasd("--traceback", "ls", tmp_path / "nope.3390")


def test_subprocess_errors_and_closed_pipe(volume, tmp_path):
    r = dasd_process("ls", tmp_path / "nope.3390")
    assert_one_line_error(r, "nope.3390")
    big = tmp_path / "big.bin"
    big.write_bytes(b"\x00" * 800_000)
    r = dasd_process("put", volume, "USER.BIG", big, "--recfm", "FB", "--lrecl", "80")
    r2 = dasd_process(
        "put", volume, "USER.BIG", big, *("--recfm", "FB", "--lrecl", "80", "--space", "CYL,2,1")
    )
    assert r2.code == 0 and r.code == 2, r2.error
    proc = subprocess.Popen(
        [sys.executable, "-m", "emulator", "cat", os.fspath(volume), "USER.BIG"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=REPO,
    )
    assert proc.stdout.read(100) == b"\x00" * 100
    proc.stdout.close()
    err = proc.stderr.read()
    assert proc.wait(timeout=60) == 0
    assert err == b""
