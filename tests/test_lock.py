"""The writer lock (emulator.image.lock) and the OPENED-bit override, across processes.

Every test runs real processes against one image: a second writer waits for the first
or is refused with one clear line; readers are never blocked; a reader rolls back a
dead writer's half-done commit but never a live one's; writers of several volumes take
their locks in one order; an ``ssm import`` and a ``dasd put`` never interleave.
Hercules ``dasdls``/``cckdcdsk`` check the images afterwards.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from emulator import api
from emulator.errors import ConflictError, FormatError
from emulator.image import open_image
from emulator.image.journal import journal_path
from emulator.image.lock import LOCK_WAIT_ENV, lock_wait

REPO = Path(__file__).resolve().parent.parent

CHILD = """
import os, sys, time
sys.path.insert(0, {repo!r})
from emulator import api
from emulator.image import journal

def wait_for(path):
    deadline = time.monotonic() + 60
    while not os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.005)

def touch(path):
    open(path, "w").close()

mode, ready, stop, *images = sys.argv[1:]
if mode in ("die", "pause"):
    # Stop inside a commit: the journal is whole and the new bytes are written; only
    # removing the journal is left.
    real_unlink = os.unlink
    def unlink(path, *a, **k):
        if str(path).endswith(".journal"):
            if mode == "die":
                os._exit(9)
            touch(ready)
            wait_for(stop)
        return real_unlink(path, *a, **k)
    journal.os.unlink = unlink
    with api.open_volume(images[0], writable=True) as vol:
        api.write(vol, "CHILD.DATA", ["FROM THE CHILD"], text=True,
                  dcb=api.Dcb(), space=("TRK", 1, 1))
elif mode == "system":
    # A pause after each lock taken: without one lock order, two such writers of
    # the same volumes in opposite orders would each hold what the other waits for.
    real_open = api.open_volume
    def slow_open(*a, **k):
        vol = real_open(*a, **k)
        time.sleep(0.3)
        return vol
    api.open_volume = slow_open
    with api.open_system(images, writable=True, lock_wait=30) as system:
        for vol in system.volumes:
            api.write(vol, stop, ["X"], text=True, dcb=api.Dcb(), space=("TRK", 1, 1))
else:
    with api.open_volume(images[0], writable=True) as vol:
        touch(ready)
        if mode == "hold":
            wait_for(stop)
        else:
            time.sleep(float(mode))
        api.write(vol, "CHILD.DATA", ["FROM THE CHILD"], text=True,
                  dcb=api.Dcb(), space=("TRK", 1, 1))
"""

SLOW_IMPORT = """
import sys, time
sys.path.insert(0, {repo!r})
import ssm.apply as A
from ssm.apply import import_basket
real = A._apply_all
def slow(*a, **k):
    time.sleep(1.5)  # the import holds its volumes' locks while it waits here
    return real(*a, **k)
A._apply_all = slow
result = import_basket(sys.argv[1], sys.argv[2:])
sys.exit(0 if result.verified else 1)
"""


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.fspath(REPO)
    env.update(extra)
    return env


class Child:
    """A writer in another process (modes: see CHILD)."""

    def __init__(self, tmp_path: Path, mode: str, *images: Path, stop_name: str = "stop"):
        script = tmp_path / "child.py"
        script.write_text(CHILD.format(repo=os.fspath(REPO)))
        self.ready = tmp_path / f"ready-{time.monotonic_ns()}"
        self.stop = tmp_path / stop_name if mode != "system" else Path(stop_name)
        self.proc = subprocess.Popen(
            [sys.executable, script, mode, self.ready, self.stop, *images],
            env=_env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait_ready(self) -> None:
        deadline = time.monotonic() + 60
        while not self.ready.exists():
            assert self.proc.poll() is None, self.proc.stderr.read().decode()
            assert time.monotonic() < deadline, "the child never got ready"
            time.sleep(0.005)

    def finish(self) -> int:
        self.stop.touch()
        try:
            code = self.proc.wait(timeout=60)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
        self.error = self.proc.stderr.read().decode()
        self.proc.stderr.close()
        return code


def _volume(
    tmp_path: Path, name: str = "lock.3390", compress: str | None = None, volser: str = "LOCK01"
) -> Path:
    path = tmp_path / name
    api.create_volume(path, "3390", volser, cyls=5, compress=compress).close()
    return path


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _dasd(*args: str | os.PathLike, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "emulator.cli.dasd", *map(os.fspath, args)],
        env=_env(**env),
        capture_output=True,
        text=True,
        timeout=120,
    )


def _datasets(path: Path) -> list[str]:
    with api.open_volume(path) as vol:
        return [info.dsname for info in vol.datasets()]


def _clean(path: Path, hercules) -> None:
    with api.open_volume(path) as vol:
        assert api.check(vol) == []
    hercules.dasdls(path)
    ok, out = hercules.cckdcdsk(path, 3)
    assert ok, out


# -- two writers --------------------------------------------------------------------------
def test_second_writer_waits_for_the_first(tmp_path, hercules):
    img = _volume(tmp_path)
    child = Child(tmp_path, "0.5", img)
    child.wait_ready()
    with api.open_volume(img, writable=True, lock_wait=60) as vol:
        # The lock came only after the child's write and close: its data set is here.
        assert "CHILD.DATA" in [info.dsname for info in vol.datasets()]
        api.write(vol, "MAIN.DATA", ["FROM MAIN"], text=True, dcb=api.Dcb(), space=("TRK", 1, 1))
    assert child.finish() == 0, child.error
    assert sorted(_datasets(img)) == ["CHILD.DATA", "MAIN.DATA"]
    _clean(img, hercules)


def test_writer_refused_after_the_wait_with_one_clear_line(tmp_path):
    img = _volume(tmp_path)
    child = Child(tmp_path, "hold", img)
    child.wait_ready()
    try:
        t0 = time.monotonic()
        with pytest.raises(ConflictError) as caught:
            api.open_volume(img, writable=True, lock_wait=0.3)
        assert time.monotonic() - t0 >= 0.3
        assert str(caught.value).startswith(
            f"lock.3390: locked by another writer (pid {child.pid}: python"
        )
        assert "waited 0.3 s" in str(caught.value)
        data = tmp_path / "in.txt"
        data.write_text("HELLO\n")
        done = _dasd(
            "put", img, "MAIN.DATA", data, "--text", "--recfm", "FB", "--lrecl", "80",
            "--space", "TRK,1,1", **{LOCK_WAIT_ENV: "0.2"},
        )  # fmt: skip
        assert done.returncode == 2
        lines = done.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith(
            f"dasd: lock.3390: locked by another writer (pid {child.pid}"
        ), done.stderr
        assert f"set {LOCK_WAIT_ENV}=SECONDS" in lines[0]
    finally:
        assert child.finish() == 0, child.error
    assert _datasets(img) == ["CHILD.DATA"]  # the refused writer wrote nothing


def test_lock_wait_setting(monkeypatch):
    monkeypatch.delenv(LOCK_WAIT_ENV, raising=False)
    assert lock_wait() == 5.0
    assert lock_wait(0) == 0.0
    monkeypatch.setenv(LOCK_WAIT_ENV, "12.5")
    assert lock_wait() == 12.5 and lock_wait(1) == 1.0
    monkeypatch.setenv(LOCK_WAIT_ENV, "soon")
    with pytest.raises(FormatError, match="DASD_LOCK_WAIT='soon' is not a number"):
        lock_wait()
    with pytest.raises(FormatError, match="must be 0 or more"):
        lock_wait(-1)


def test_same_image_writable_twice_in_one_process(tmp_path):
    img = _volume(tmp_path)
    other_name = tmp_path / "alias.3390"
    other_name.symlink_to(img)
    first = api.open_volume(img, writable=True)
    try:
        with pytest.raises(ConflictError, match="already open for writing in this process; "):
            api.open_volume(img, writable=True)
        with pytest.raises(ConflictError, match=r"this process \(as .*lock\.3390\)"):
            api.open_volume(other_name, writable=True)
        with api.open_volume(other_name) as reader:  # reading beside it is fine
            assert reader.volser == "LOCK01"
    finally:
        first.close()
    with pytest.raises(ConflictError, match="already open for writing in this process"):
        api.open_system([img, other_name], writable=True)
    with api.open_volume(img, writable=True, lock_wait=0) as vol:  # nothing left held
        assert vol.writable


def test_readers_are_never_blocked(tmp_path):
    img = _volume(tmp_path)
    child = Child(tmp_path, "hold", img)
    child.wait_ready()
    try:
        with api.open_volume(img, lock_wait=0) as vol:
            assert api.check(vol) == []
        listed = _dasd("ls", img, **{LOCK_WAIT_ENV: "0"})
        assert listed.returncode == 0 and "VOLSER=LOCK01" in listed.stdout
    finally:
        assert child.finish() == 0, child.error


def test_writers_of_several_volumes_lock_in_one_order(tmp_path, hercules):
    a = _volume(tmp_path, "a.3390", volser="VOLA")
    b = _volume(tmp_path, "b.3390", volser="VOLB")
    # Opposite orders; each pauses after every lock it takes.
    one = Child(tmp_path, "system", a, b, stop_name="ONE.DATA")
    two = Child(tmp_path, "system", b, a, stop_name="TWO.DATA")
    assert one.proc.wait(timeout=120) == 0, one.proc.stderr.read().decode()
    assert two.proc.wait(timeout=120) == 0, two.proc.stderr.read().decode()
    for child in (one, two):
        child.proc.stderr.close()
    for img in (a, b):
        assert sorted(_datasets(img)) == ["ONE.DATA", "TWO.DATA"]
        _clean(img, hercules)


# -- a writer that dies, a writer that lives ----------------------------------------------
def test_reader_rolls_back_a_dead_writers_commit(tmp_path, hercules):
    img = _volume(tmp_path, "dead.cckd", compress="zlib")
    before = _sha(img)
    child = Child(tmp_path, "die", img)
    assert child.finish() == 9
    assert os.path.exists(journal_path(os.fspath(img))) and _sha(img) != before
    with open_image(img) as im:  # read-only: the writer is dead, so it rolls back
        assert im.check() == []
    assert not os.path.exists(journal_path(os.fspath(img)))
    assert _sha(img) == before
    _clean(img, hercules)


def test_reader_never_rolls_back_a_live_writers_commit(tmp_path, hercules):
    img = _volume(tmp_path)
    child = Child(tmp_path, "pause", img)
    try:
        child.wait_ready()  # the child is inside its commit, its new bytes written
        during = _sha(img)
        with pytest.raises(ConflictError, match=rf"another writer \(pid {child.pid}.* commit"):
            open_image(img, lock_wait=0.3)
        assert os.path.exists(journal_path(os.fspath(img)))
        assert _sha(img) == during  # untouched by the reader
    finally:
        assert child.finish() == 0, child.error
    assert _datasets(img) == ["CHILD.DATA"]
    _clean(img, hercules)


# -- ssm import and dasd put on one image -------------------------------------------------
@pytest.fixture(scope="module")
def day(tmp_path_factory, killtest):
    """A tiny generated system's morning images and the day's basket."""
    work = tmp_path_factory.mktemp("day")
    scenario = next(s for s in killtest.build_world(work, "plain", "tiny") if s.command == "import")
    return scenario.base, work / "plain" / "day1.basket"


def _hot_site(day, folder: Path) -> list[Path]:
    folder.mkdir()
    out = []
    for src in day[0]:
        shutil.copyfile(src, folder / src.name)
        out.append(folder / src.name)
    return out


@pytest.mark.parametrize("wait", ["60", "0.1"])
def test_import_and_put_never_interleave(day, tmp_path, hercules, wait):
    hot = _hot_site(day, tmp_path / "hot")
    script = tmp_path / "slow_import.py"
    script.write_text(SLOW_IMPORT.format(repo=os.fspath(REPO)))
    importer = subprocess.Popen(
        [sys.executable, script, day[1], *hot], env=_env(), stderr=subprocess.PIPE
    )
    try:
        intent = Path(os.fspath(hot[0]) + ".ssm-intent")
        deadline = time.monotonic() + 60
        while not intent.exists() and importer.poll() is None and time.monotonic() < deadline:
            time.sleep(0.002)
        assert intent.exists(), "the import never started writing"
        data = tmp_path / "put.txt"
        data.write_text("".join(f"LINE {n}\n" for n in range(500)))
        put = _dasd(
            "put", hot[1], "KILL.PUT", data, "--text", "--recfm", "FB", "--lrecl", "80",
            "--space", "TRK,2,1", **{LOCK_WAIT_ENV: wait},
        )  # fmt: skip
    finally:
        assert importer.wait(timeout=120) == 0, importer.stderr.read().decode()
        importer.stderr.close()
    if wait == "60":
        assert put.returncode == 0, put.stderr  # it waited for the import, then wrote
        with api.open_volume(hot[1]) as vol:
            assert api.read_text(vol, "KILL.PUT") == [f"LINE {n}" for n in range(500)]
    else:
        assert put.returncode == 2
        assert put.stderr.startswith("dasd: user01.3390: locked by another writer (pid ")
        assert "KILL.PUT" not in _datasets(hot[1])
    again = subprocess.run(
        [sys.executable, "-m", "ssm.cli", "import", day[1], *hot],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert again.returncode == 0 and "already applied" in again.stdout.lower(), again.stdout
    for img in hot:
        _clean(img, hercules)


# -- the OPENED bit -------------------------------------------------------------------------
def test_opened_cckd_refused_without_the_override_and_written_with_it(tmp_path, hercules):
    img = _volume(tmp_path, "opened.cckd", compress="zlib")
    with open(img, "r+b") as fh:  # as an emulator leaves it while it has the file open
        fh.seek(512 + 3)
        opts = fh.read(1)[0]
        fh.seek(512 + 3)
        fh.write(bytes([opts | 0x80]))
    data = tmp_path / "in.txt"
    data.write_text("WRITTEN ANYWAY\n")
    put = ["put", img, "OPEN.DATA", data, "--text", "--recfm", "FB", "--lrecl", "80"]
    put += ["--space", "TRK,1,1"]
    refused = _dasd(*put)
    assert refused.returncode == 2
    assert refused.stderr.count("\n") == 1 and "(OPENED bit)" in refused.stderr
    assert "--ignore-opened" in refused.stderr
    assert "OPEN.DATA" not in _datasets(img)
    written = _dasd(*put, "--ignore-opened")
    assert written.returncode == 0, written.stderr
    with open_image(img) as im:
        assert im.opened  # the emulator's claim stays for cckdcdsk or the emulator
        assert im.check() == ["OPENED bit is set (not closed cleanly)"]
    # Hercules' check of a file with the bit on needs -f; it finds nothing to repair
    # and clears the bit.
    fixed = hercules.run("cckdcdsk", "-f", "-3", img)
    assert hercules.HHC_PROBLEM.search((fixed.stdout + fixed.stderr).decode()) is None
    _clean(img, hercules)
    with api.open_volume(img) as vol:
        assert api.read_text(vol, "OPEN.DATA") == ["WRITTEN ANYWAY"]
    assert "OPEN.DATA" in "\n".join(hercules.dasdls(img))
