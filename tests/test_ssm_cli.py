"""The `ssm` command line: every subcommand, JSON shapes, exit codes, bad input.

Fingerprint files for compare/show/log are hand-built (tests/test_compare.build_fp)
and written with ssm.fpfile; `ssm fingerprint` runs on a tiny generated system.  Most
tests call ``main(argv)`` in-process; a few run ``python -m ssm`` in a subprocess for
the real entry point, exit codes and the quiet stderr of a pipe.
"""

from __future__ import annotations

import datetime as _dt
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from test_compare import M, base_system, build_fp, mutate, text

from ssm import fpfile
from ssm.cli import Meter, main

REPO = Path(__file__).resolve().parent.parent
T0 = _dt.datetime(2024, 5, 1, 2, 0, tzinfo=_dt.UTC)


class Result:
    def __init__(self, code: int, out: str, err: str):
        self.code, self.out, self.err = code, out, err

    def json(self):
        return json.loads(self.out)


@pytest.fixture
def ssm(capsys):
    """Run `ssm ARGS...` in-process: Result(code, stdout, stderr)."""

    def run(*args) -> Result:
        code = main([os.fspath(a) for a in args])
        cap = capsys.readouterr()
        return Result(code, cap.out, cap.err)

    return run


def ssm_process(*args, timeout=120) -> Result:
    proc = subprocess.run(
        [sys.executable, "-m", "ssm", *(os.fspath(a) for a in args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
        stdin=subprocess.DEVNULL,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


def assert_one_line_error(r: Result, *fragments: str) -> None:
    """Exit 2, exactly one line `ssm: ...` on stderr, no traceback, nothing on stdout."""
    assert r.code == 2, (r.code, r.err)
    lines = r.err.splitlines()
    assert len(lines) == 1, r.err
    assert lines[0].startswith("ssm: "), r.err
    assert "Traceback" not in r.err and "internal error" not in r.err, r.err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, r.err)
    assert r.out == ""


def day(n: int) -> _dt.datetime:
    return T0 + _dt.timedelta(days=n)


@pytest.fixture
def fps(tmp_path) -> dict[str, Path]:
    """day0 (base), day1 (one member changed, one added), day2 (= day1 + a data set
    deleted), and same0 (= day0's content, another creation time)."""
    files = {}
    d0 = base_system()
    d1 = base_system()
    mutate(d1, "SYS1.PARMLIB").members[0].content = text(7, "edited")
    mutate(d1, "USER.CNTL").members.append(M("JOB3", text(2, "job3")))
    d2 = [d for d in d1 if d.dsname != "USER.DATA"]
    for name, systems, when in (
        ("day0", d0, day(0)),
        ("day1", d1, day(1)),
        ("day2", d2, day(2)),
        ("same0", base_system(), day(5)),
    ):
        files[name] = tmp_path / f"{name}.ssmfp"
        fpfile.write(build_fp(systems, created=when), files[name])
    return files


# -- help and usage -------------------------------------------------------------------
@pytest.mark.parametrize("command", [[], ["fingerprint"], ["show"], ["compare"], ["log"]])
def test_help(ssm, command):
    r = ssm(*command, "--help")
    assert r.code == 0 and "usage: ssm" in r.out


def test_usage_error_is_exit_2(ssm):
    r = ssm("compare", "only-one")
    assert r.code == 2 and "usage" in r.err
    assert ssm().code == 2
    assert ssm("frobnicate").code == 2


# -- compare --------------------------------------------------------------------------
def test_compare_equal_exit_0(ssm, fps):
    r = ssm("compare", fps["day0"], fps["same0"])
    assert r.code == 0, r.err
    assert "No differences" in r.out and r.err == ""
    r = ssm("compare", fps["day0"], fps["same0"], "--json")
    assert r.code == 0 and r.json()["equal"] is True
    assert r.json()["datasets"] == [] and r.json()["members"] == []


def test_compare_different_exit_1_report(ssm, fps):
    r = ssm("compare", fps["day0"], fps["day2"])
    assert r.code == 1, r.err
    lines = r.out.splitlines()
    assert lines[0].startswith(f"OLD: {fps['day0']}") and lines[1].startswith("NEW: ")
    ds_line = next(line for line in lines if line.startswith("Data sets:"))
    mem_line = next(line for line in lines if line.startswith("Members:"))
    assert "1 deleted" in ds_line
    assert "1 added" in mem_line and "1 changed" in mem_line
    # Counts first, then the details.
    body = "\n".join(lines[lines.index(mem_line) :])
    assert "USER.DATA" in body
    assert "SYS1.PARMLIB(IEASYS00)" in body and "USER.CNTL(JOB3)" in body


def test_compare_json(ssm, fps):
    r = ssm("compare", fps["day0"], fps["day2"], "--json")
    assert r.code == 1
    doc = r.json()
    assert r.out.strip() == json.dumps(doc, sort_keys=True, indent=2)
    assert [(d["dsname"], d["change"]) for d in doc["datasets"]] == [("USER.DATA", "deleted")]
    got = [(m["dsname"], m["member"], m["change"]) for m in doc["members"]]
    assert got == [("SYS1.PARMLIB", "IEASYS00", "changed"), ("USER.CNTL", "JOB3", "added")]
    assert doc["counts"]["members"]["changed"] == 1
    for entry in doc["datasets"] + doc["members"]:
        assert entry["change"] in ("added", "deleted", "changed", "attributes", "renamed")


def test_compare_filters_and_map(ssm, fps, tmp_path):
    r = ssm("compare", fps["day0"], fps["day2"], "--include", "USER.**", "--exclude", "**.DATA")
    assert r.code == 1
    doc = ssm("compare", fps["day0"], fps["day2"], "--json", "--include", "USER.**").json()
    assert {m["dsname"] for m in doc["members"]} == {"USER.CNTL"}
    r = ssm("compare", fps["day0"], fps["day2"], "--include", "SYS1.*", "--exclude", "SYS1.PARM*")
    assert r.code == 0
    # --map: the same system under another high-level qualifier.
    renamed = base_system()
    for d in renamed:
        d.dsname = d.dsname.replace("USER.", "PROD.", 1)
    other = tmp_path / "prod.ssmfp"
    fpfile.write(build_fp(renamed, created=day(3)), other)
    assert ssm("compare", fps["day0"], other).code == 1
    r = ssm("compare", fps["day0"], other, "--map", "USER.**=PROD.**")
    assert r.code == 0, r.out


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--include", "SYS1**"], "'**' must be a qualifier"),
        (["--map", "SYS1.**"], "FROM=TO"),
        (["--map", "A.*=B.**"], "same wildcards"),
    ],
)
def test_compare_bad_patterns(ssm, fps, args, fragment):
    assert_one_line_error(ssm("compare", fps["day0"], fps["day1"], *args), fragment)


def test_compare_missing_and_damaged_files(ssm, fps, tmp_path):
    assert_one_line_error(ssm("compare", tmp_path / "nope.ssmfp", fps["day0"]), "nope.ssmfp")
    assert_one_line_error(ssm("compare", tmp_path, fps["day0"]), "directory")
    bad = tmp_path / "bad.ssmfp"
    data = bytearray(fps["day0"].read_bytes())
    data[len(data) // 2] ^= 0xFF
    bad.write_bytes(bytes(data))
    assert_one_line_error(ssm("compare", fps["day0"], bad), "bad.ssmfp")
    junk = tmp_path / "junk.ssmfp"
    junk.write_bytes(b"not a fingerprint at all")
    assert_one_line_error(ssm("compare", junk, fps["day0"]), "junk.ssmfp")


def test_python_m_ssm_exit_codes_and_quiet_pipe(fps):
    r = ssm_process("compare", fps["day0"], fps["day1"])
    assert r.code == 1 and r.err == ""
    assert "IEASYS00" in r.out
    r = ssm_process("compare", fps["day0"], fps["same0"], "--json")
    assert r.code == 0 and json.loads(r.out)["equal"] is True
    r = ssm_process("compare", fps["day0"], "/nonexistent/x.ssmfp")
    assert r.code == 2 and r.err.startswith("ssm: ") and len(r.err.splitlines()) == 1


# -- show -----------------------------------------------------------------------------
def test_show_json_and_text(ssm, fps):
    r = ssm("show", fps["day0"], "--json")
    assert r.code == 0
    doc = r.json()
    assert r.out.strip() == json.dumps(doc, sort_keys=True, indent=2)
    assert {"volumes", "datasets", "created"} <= set(doc)
    parm = next(d for d in doc["datasets"] if d["dsname"] == "SYS1.PARMLIB")
    assert parm["content"].startswith("blake3:") and len(parm["content"]) == 7 + 64
    names = [m["name"] for m in parm["members"]]
    assert names == sorted(names) and "IEASYS00" in names
    assert all(m["content"].startswith("blake3:") for m in parm["members"])
    r = ssm("show", fps["day0"], "--members")
    assert r.code == 0 and "SYS1.PARMLIB" in r.out and "IEASYS00" in r.out
    assert "alias of PROGA0" in r.out
    assert_one_line_error(ssm("show", fps["day0"].with_name("missing.ssmfp")), "missing")


# -- log ------------------------------------------------------------------------------
def test_log_three_days(ssm, fps):
    # Given out of order: the log orders by creation time.
    r = ssm("log", fps["day2"], fps["day0"], fps["day1"], "--json")
    assert r.code == 0, r.err
    doc = r.json()
    assert [f["label"] for f in doc["fingerprints"]] == [
        str(fps["day0"]),
        str(fps["day1"]),
        str(fps["day2"]),
    ]
    days = doc["days"]
    assert [d["date"] for d in days] == ["2024-05-02", "2024-05-03"]
    assert [(m["member"], m["change"]) for m in days[0]["members"]] == [
        ("IEASYS00", "changed"),
        ("JOB3", "added"),
    ]
    assert days[0]["datasets"] == []
    assert [(d["dsname"], d["change"]) for d in days[1]["datasets"]] == [("USER.DATA", "deleted")]
    assert days[1]["members"] == []

    r = ssm("log", fps["day0"], fps["day1"], fps["day2"])
    assert r.code == 0
    rows = [line for line in r.out.splitlines() if line[:4] == "2024" and "  " in line[10:13]]
    assert any("changed" in row and "SYS1.PARMLIB(IEASYS00)" in row for row in rows)
    assert any(row.startswith("2024-05-03") and "USER.DATA" in row for row in rows)


def test_log_no_changes_and_filters(ssm, fps):
    r = ssm("log", fps["day0"], fps["same0"])
    assert r.code == 0 and "no changes" in r.out
    doc = ssm("log", fps["day0"], fps["day1"], fps["day2"], "--json", "--include", "SYS1.**")
    assert [len(d["members"]) + len(d["datasets"]) for d in doc.json()["days"]] == [1, 0]


def test_log_needs_two(ssm, fps):
    assert_one_line_error(ssm("log", fps["day0"]), "two fingerprints")


# -- progress -------------------------------------------------------------------------
class FakeTty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_meter_only_on_a_terminal():
    from ssm.fingerprint import Progress

    p = Progress("SYSRES", "sysres.3390", 3 << 20, 6 << 20, 4, 9, 2.0)
    quiet = io.StringIO()
    meter = Meter(quiet)
    assert meter.fingerprint_callback() is None
    meter.show("nothing")
    assert quiet.getvalue() == ""

    tty = FakeTty()
    meter = Meter(tty, min_interval=0)
    meter.fingerprint_callback()(p)
    shown = tty.getvalue()
    assert "SYSRES" in shown and "3.0 MiB of 6.0 MiB (50%)" in shown and "1.5 MiB/s" in shown
    meter.done()
    assert tty.getvalue().endswith("\r")


# -- fingerprint, end to end ----------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_system(tmp_path_factory) -> list[Path]:
    generate = pytest.importorskip("fixtures.generate")
    folder = tmp_path_factory.mktemp("tiny")
    return generate.build_system(folder, seed=11, size="tiny")


def test_fingerprint_show_compare(ssm, tiny_system, tmp_path):
    out = tmp_path / "day1.ssmfp"
    r = ssm("fingerprint", *tiny_system, "-o", out)
    assert r.code == 0, r.err
    assert r.err == ""  # no progress when stderr is not a terminal
    assert out.exists() and str(out) in r.out
    fp = fpfile.read(out)
    assert [v.volser for v in fp.volumes] == ["SYSRES", "USER01"]
    again = tmp_path / "day1b.ssmfp"
    r = ssm("fingerprint", *tiny_system, "-o", again, "--since", out)
    assert r.code == 0, r.err
    assert ssm("compare", out, again).code == 0
    doc = ssm("show", out, "--json").json()
    assert len(doc["datasets"]) == len(fp.dataset_table)
    assert_one_line_error(ssm("fingerprint", tmp_path / "none.3390", "-o", out), "none.3390")
    r = ssm("fingerprint", *tiny_system)
    assert r.code == 2 and "-o" in r.err


def test_log_over_three_simulated_days(ssm, tiny_system, tmp_path):
    """Fingerprint, then three days of change each followed by a fingerprint: `ssm log`
    dates each day's changes, and each day equals that day's ChangeLog."""
    import shutil

    daysim = pytest.importorskip("fixtures.daysim")
    from test_compare import project

    from fixtures.generate import DEFAULT_NOW
    from ssm.fingerprint import fingerprint

    paths = [Path(shutil.copy(p, tmp_path / p.name)) for p in tiny_system]
    files, logs = [], []
    for n in range(4):
        if n:
            start = DEFAULT_NOW + _dt.timedelta(days=n)
            logs.append(daysim.simulate_day(paths, seed=20 + n, rate=0.05, now=start))
        created = (DEFAULT_NOW + _dt.timedelta(days=n, hours=23)).replace(tzinfo=_dt.UTC)
        files.append(tmp_path / f"day{n}.ssmfp")
        fpfile.write(fingerprint(paths, created=created), files[-1])
    r = ssm("log", *files, "--json")
    assert r.code == 0, r.err
    days = r.json()["days"]
    assert len(days) == 3
    for n, (d, log) in enumerate(zip(days, logs, strict=True), 1):
        assert d["date"] == (DEFAULT_NOW + _dt.timedelta(days=n)).date().isoformat()
        assert d["from"] == str(files[n - 1]) and d["to"] == str(files[n])
        assert project(d) == log.keys(), n
    r = ssm("log", *files)
    assert r.code == 0
    for n, log in enumerate(logs, 1):
        date = (DEFAULT_NOW + _dt.timedelta(days=n)).date().isoformat()
        rows = [line for line in r.out.splitlines() if line.startswith(date + "  ")]
        assert len(rows) == len(log)
        for entry in log.entries:
            name = f"{entry.dsname}({entry.member})" if entry.member else entry.dsname
            assert any(row.split()[1:3] == [entry.change, name] for row in rows), name


def test_audit_log_loads_each_once_when_in_order():
    from ssm.log import audit_log

    calls: list[str] = []
    built = {
        "a": build_fp(base_system(), created=day(0)),
        "b": build_fp(base_system(), created=day(1)),
        "c": build_fp(base_system(), created=day(2)),
    }

    def loader(label):
        def load():
            calls.append(label)
            return built[label]

        return load

    log = audit_log([(k, loader(k)) for k in "abc"])
    assert calls == ["a", "b", "c"] and not log.changed and len(log.days) == 3 - 1
    calls.clear()
    log = audit_log([(k, loader(k)) for k in "cab"])
    assert [label for label, _ in log.fingerprints] == ["a", "b", "c"]
    assert sorted(calls) == sorted("cab" + "abc")  # out of order: a second, sorted pass


# -- baskets: export, show, verify, import --------------------------------------------
@pytest.fixture
def month(tiny_system, tmp_path):
    """A month-start copy of the tiny system (``base``), its fingerprint, and
    ``prod``: a copy that lived one simulated day.  Returns a dict of paths."""
    import shutil

    from fixtures.daysim import simulate_day
    from fixtures.generate import DEFAULT_NOW
    from ssm.fingerprint import fingerprint

    base = tmp_path / "base"
    prod = tmp_path / "prod"
    base.mkdir()
    prod.mkdir()
    base_images = [Path(shutil.copy(p, base / p.name)) for p in tiny_system]
    prod_images = [Path(shutil.copy(p, prod / p.name)) for p in tiny_system]
    fp = tmp_path / "base.ssmfp"
    fpfile.write(fingerprint(base_images), fp)
    simulate_day(prod_images, seed=31, rate=0.02, now=DEFAULT_NOW + _dt.timedelta(days=1))
    return {"base": base_images, "prod": prod_images, "fp": fp, "dir": tmp_path}


def hot_copy(images: list[Path], folder: Path) -> list[Path]:
    import shutil

    folder.mkdir()
    return [Path(shutil.copy(p, folder / p.name)) for p in images]


def digests(paths: list[Path]) -> list[str]:
    import hashlib

    return [hashlib.sha256(p.read_bytes()).hexdigest() for p in paths]


def same_content(a: list[Path], b: list[Path]) -> bool:
    from ssm.compare import compare
    from ssm.fingerprint import fingerprint

    return compare(fingerprint(a), fingerprint(b)).equal


def test_export_show_verify_import(ssm, month):
    d = month["dir"]
    basket = d / "day1.basket"
    r = ssm("export", "--base", month["fp"], *month["prod"], "-o", basket)
    assert r.code == 0, r.err
    assert basket.exists() and str(basket) in r.out and r.err == ""
    # show: text and the manifest as JSON (told from a fingerprint by the magic)
    r = ssm("show", basket)
    assert r.code == 0, r.err
    assert "member.put" in r.out and "operations" in r.out
    doc = ssm("show", basket, "--json").json()
    ops = doc["operations"]
    assert ops and [op["seq"] for op in ops] == list(range(len(ops)))
    kinds = {op["kind"] for op in ops}
    assert {"member.put", "dataset.create"} <= kinds, kinds
    assert "header" in doc
    # verify: whole
    r = ssm("verify", basket)
    assert r.code == 0 and "verified" in r.out, r.out + r.err
    # import: dry run writes nothing, then the real thing
    hot = hot_copy(month["base"], d / "hot")
    before = digests(hot)
    r = ssm("import", basket, *hot, "--dry-run")
    assert r.code == 0, r.out + r.err
    assert "dry run" in r.out and digests(hot) == before
    r = ssm("import", basket, *hot)
    assert r.code == 0, r.out + r.err
    assert "applied" in r.out and "verified" in r.out and "NOT" not in r.out
    assert same_content(hot, month["prod"])
    # again: a no-op that says so
    after = digests(hot)
    r = ssm("import", basket, *hot)
    assert r.code == 0 and "already applied" in r.out, r.out + r.err
    assert digests(hot) == after
    r = ssm("import", basket, *hot, "--json")
    assert r.code == 0 and r.json()["already_applied"] is True


def test_import_backout_restores_before(ssm, month):
    d = month["dir"]
    basket, undo = d / "day1.basket", d / "undo.basket"
    assert ssm("export", "--base", month["fp"], *month["prod"], "-o", basket).code == 0
    hot = hot_copy(month["base"], d / "hot")
    r = ssm("import", basket, *hot, "--backout", undo)
    assert r.code == 0, r.out + r.err
    assert undo.exists() and str(undo) in r.out
    assert ssm("verify", undo).code == 0
    r = ssm("import", undo, *hot)
    assert r.code == 0, r.out + r.err
    assert same_content(hot, month["base"])


def test_damaged_basket_refused_nothing_written(ssm, month):
    d = month["dir"]
    basket = d / "day1.basket"
    assert ssm("export", "--base", month["fp"], *month["prod"], "-o", basket).code == 0
    data = bytearray(basket.read_bytes())
    hot = hot_copy(month["base"], d / "hot")
    before = digests(hot)
    for offset in (3, len(data) // 3, len(data) // 2, len(data) - 5):
        bad = d / f"bad{offset}.basket"
        flipped = bytearray(data)
        flipped[offset] ^= 0x01
        bad.write_bytes(bytes(flipped))
        r = ssm("verify", bad)
        assert r.code == 1 and "NOT VERIFIED" in r.out, (offset, r.out, r.err)
        r = ssm("import", bad, *hot)
        assert r.code == 1 and "nothing written" in r.out, (offset, r.out, r.err)
        assert digests(hot) == before
    # `show` on a damaged basket is an error (exit 2), one line
    bad = d / f"bad{len(data) // 2}.basket"
    assert_one_line_error(ssm("show", bad), bad.name)


def test_drifted_target_refused_then_forced(ssm, month):
    from emulator import api

    d = month["dir"]
    basket = d / "day1.basket"
    assert ssm("export", "--base", month["fp"], *month["prod"], "-o", basket).code == 0
    ops = ssm("show", basket, "--json").json()["operations"]
    target = next(op for op in ops if op["kind"] == "member.put" and op["before"] is not None)
    hot = hot_copy(month["base"], d / "hot")
    # someone edits that member at the hot site: drift
    for image in hot:
        with api.open_volume(image, writable=True) as vol:
            if target["dsname"] in [i.dsname for i in api.list_datasets(vol)]:
                api.write(vol, f"{target['dsname']}({target['member']})", ["DRIFT"], text=True)
    before = digests(hot)
    r = ssm("import", basket, *hot)
    assert r.code == 1, r.out + r.err
    assert "REFUSED" in r.out and target["member"] in r.out
    assert digests(hot) == before
    r = ssm("import", basket, *hot, "--force")
    assert r.code == 0, r.out + r.err
    assert "--force" in r.out and target["member"] in r.out
    assert same_content(hot, month["prod"])


def test_signed_baskets(ssm, month):
    d = month["dir"]
    key, other = d / "site.key", d / "other.key"
    key.write_bytes(b"hot-site secret 1")
    other.write_bytes(b"someone else")
    signed, unsigned = d / "signed.basket", d / "unsigned.basket"
    r = ssm("export", "--base", month["fp"], *month["prod"], "-o", signed, "--key", key)
    assert r.code == 0 and "signed" in r.out, r.err
    assert ssm("export", "--base", month["fp"], *month["prod"], "-o", unsigned).code == 0
    assert ssm("verify", signed, "--key", key).code == 0
    assert ssm("verify", signed).code == 0  # digests still checked without the key
    assert ssm("verify", signed, "--key", other).code == 1
    assert ssm("verify", unsigned, "--key", key).code == 1
    hot = hot_copy(month["base"], d / "hot")
    before = digests(hot)
    r = ssm("import", unsigned, *hot, "--key", key)
    assert r.code == 1 and "nothing written" in r.out and digests(hot) == before
    r = ssm("import", signed, *hot, "--key", key)
    assert r.code == 0, r.out + r.err
    assert_one_line_error(ssm("verify", signed, "--key", d / "nokey"), "nokey")


def test_export_from_to_and_full(ssm, month):
    d = month["dir"]
    ranged = d / "range.basket"
    r = ssm("export", "--from", *month["base"], "--to", *month["prod"], "-o", ranged)
    assert r.code == 0, r.err
    hot = hot_copy(month["base"], d / "hot")
    assert ssm("import", ranged, *hot).code == 0
    assert same_content(hot, month["prod"])
    full = d / "full.basket"
    r = ssm("export", "--full", *month["prod"], "-o", full, "--include", "SYS1.**")
    assert r.code == 0, r.err
    doc = ssm("show", full, "--json").json()
    assert doc["operations"]
    assert all(op["dsname"].startswith("SYS1.") for op in doc["operations"])
    assert {op["kind"] for op in doc["operations"]} == {"dataset.create"}


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["-o", "x.basket"], "exactly one of"),
        (["--base", "FP", "--full", "a.3390", "-o", "x.basket"], "exactly one of"),
        (["--base", "FP", "-o", "x.basket"], "IMAGE"),
        (["--full", "-o", "x.basket"], "IMAGE"),
        (["--from", "a.3390", "-o", "x.basket"], "--to"),
        (["--from", "a.3390", "--to", "b.3390", "c.3390", "-o", "x.basket"], None),
    ],
)
def test_export_usage_errors(ssm, tmp_path, args, fragment):
    r = ssm("export", *args)
    assert r.code == 2 and "Traceback" not in r.err, r.err
    if fragment:
        assert fragment in r.err, r.err


def test_basket_commands_missing_files(ssm, month, tmp_path):
    assert_one_line_error(ssm("verify", tmp_path / "none.basket"), "none.basket")
    assert_one_line_error(ssm("import", tmp_path / "none.basket", *month["base"]), "none.basket")
    assert_one_line_error(ssm("show", tmp_path / "none.basket"), "none.basket")
    basket = tmp_path / "b.basket"
    assert ssm("export", "--base", month["fp"], *month["prod"], "-o", basket).code == 0
    assert_one_line_error(ssm("import", basket, tmp_path / "none.3390"), "none.3390")
    assert_one_line_error(
        ssm("export", "--base", tmp_path / "no.ssmfp", *month["prod"], "-o", basket), "no.ssmfp"
    )
    assert_one_line_error(
        ssm("export", "--base", month["fp"], tmp_path / "gone.3390", "-o", basket), "gone.3390"
    )
    junk = tmp_path / "junk.basket"
    junk.write_bytes(b"neither a fingerprint nor a basket")
    assert ssm("verify", junk).code == 1


@pytest.mark.parametrize("command", [["export"], ["import"], ["verify"], ["drill"]])
def test_basket_help(ssm, command):
    r = ssm(*command, "--help")
    assert r.code == 0 and "usage: ssm" in r.out
