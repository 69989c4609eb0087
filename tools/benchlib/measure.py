"""One measured side of a comparison, alternation of sides, and their medians.

A side is either a program (``run_program``: wall time from start to exit, CPU time
and peak resident memory from ``os.wait4``, which covers the program's own children)
or a library call (:class:`LibraryRunner`: the call runs in a process forked from a
server that has imported everything and loaded Numba's cache once, so the time is the
call's alone; its peak memory is that child's, which starts with the server's imports,
as a fresh ``ssm`` process would).  Sides are run alternately, the first side changing
from round to round, and compared by their medians.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

TOOLS = Path(__file__).resolve().parent.parent
REPO = TOOLS.parent


class BenchError(Exception):
    """A side failed or produced a wrong result; the section reports it."""


@dataclass(frozen=True)
class Sample:
    """One run of one side."""

    seconds: float  # what is compared: the program's wall time, or the library call's
    cpu: float  # CPU seconds (user + system, every thread and child) of that run
    peak_rss: int  # bytes: the process's maximum resident set size
    info: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Stat:
    """The medians of one side's samples."""

    runs: int
    seconds: float
    cores: float  # median CPU seconds per wall second
    peak_rss: int  # the largest of the runs
    info: dict

    @classmethod
    def of(cls, samples: Sequence[Sample]) -> Stat:
        if not samples:
            raise BenchError("no samples")
        return cls(
            runs=len(samples),
            seconds=statistics.median(s.seconds for s in samples),
            cores=statistics.median(s.cpu / s.seconds if s.seconds else 0.0 for s in samples),
            peak_rss=max(s.peak_rss for s in samples),
            info=samples[-1].info,
        )


def child_env() -> dict[str, str]:
    """The environment of measured Python processes: the repository and tools/ importable."""
    env = dict(os.environ)
    extra = [str(REPO), str(TOOLS)]
    if env.get("PYTHONPATH"):
        extra.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(extra)
    return env


# GNU time: it forks and execs the program, so the peak memory it reports is the
# program's own.  (``wait4`` on a program started from this process would report at
#: least this process's peak: exec keeps the replaced memory's high-water mark.)


def run_program(
    cmd: Sequence[str] | str,
    *,
    cwd: str | os.PathLike | None = None,
    timeout: float | None = None,
    ok_codes: Sequence[int] = (0,),
) -> Sample:
    """Run a program (a string runs through ``bash -c``); its output is discarded.
    Peak memory comes from GNU time (0 when it is not installed)."""
    argv = ["bash", "-c", cmd] if isinstance(cmd, str) else [str(a) for a in cmd]
    gnu_time = shutil.which("time")
    with tempfile.NamedTemporaryFile("r", prefix="bench-time-", suffix=".txt") as report:
        if gnu_time:
            argv = [gnu_time, "-q", "-f", "%M %U %S", "-o", report.name, *argv]
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            argv,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # a timeout ends the program and its children
            env=child_env(),
        )
        timer = None
        if timeout:
            timer = threading.Timer(timeout, _kill_group, (proc.pid,))
            timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            if timer:
                timer.cancel()
        seconds = time.perf_counter() - t0
        proc.returncode = code = os.waitstatus_to_exitcode(status)
        fields = report.read().split() if gnu_time else []
    if code not in ok_codes:
        shown = cmd if isinstance(cmd, str) else " ".join(map(str, cmd))
        raise BenchError(f"exit code {code}: {shown[:200]}")
    if len(fields) >= 3:
        kib, user, system = int(fields[-3]), float(fields[-2]), float(fields[-1])
        return Sample(seconds, user + system, kib * 1024)
    return Sample(seconds, usage.ru_utime + usage.ru_stime, 0)


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:  # it ended just now
        pass


class LibraryRunner:
    """Library calls (:mod:`benchlib.jobs`) run one at a time, each in a fresh fork of a
    warm server process (:mod:`benchlib.server`)."""

    def __init__(self, warm_images: Sequence[str | os.PathLike], scratch: Path):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "benchlib.server"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=child_env(),
        )
        reply = self._ask({"warm": [os.fspath(p) for p in warm_images], "scratch": str(scratch)})
        #: seconds the server took to import and load Numba's cache (start-up).
        self.startup = float(reply["seconds"])

    def _ask(self, request: dict) -> dict:
        assert self.proc.stdin and self.proc.stdout
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise BenchError("the library server ended (see the messages above)")
        reply = json.loads(line)
        if "error" in reply:
            raise BenchError(f"{request.get('job', 'warm-up')}: {reply['error']}")
        return reply

    def run(self, job: str, **args) -> Sample:
        reply = self._ask({"job": job, "args": args})
        return Sample(reply["seconds"], reply["cpu"], reply["peak_rss"], reply.get("info", {}))

    def close(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin
            self.proc.stdin.close()
            self.proc.wait(timeout=60)

    def __enter__(self) -> LibraryRunner:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@dataclass
class Side:
    """One side of a comparison: ``prepare`` (not timed) runs before every run;
    ``check`` looks at the first run's sample and raises BenchError when it is wrong."""

    name: str
    run: Callable[[], Sample]
    prepare: Callable[[], None] | None = None
    check: Callable[[Sample], None] | None = None


Progress = Callable[[str], None]


def alternate(
    sides: Sequence[Side], runs: int, progress: Progress | None = None
) -> dict[str, Stat]:
    """Run every side ``runs`` times, round after round; the order of the sides is
    reversed every other round so that neither always goes first.  Medians by name."""
    samples: dict[str, list[Sample]] = {s.name: [] for s in sides}
    for round_ in range(runs):
        order = list(sides) if round_ % 2 == 0 else list(reversed(sides))
        for side in order:
            if progress:
                progress(f"{side.name} ({round_ + 1}/{runs})")
            if side.prepare:
                side.prepare()
                # What preparation wrote (copies, new volumes) reaches the disk first:
                # otherwise a side that flushes its files (an import's fsyncs) would pay
                # for writing back the preparation's gigabytes as well.
                os.sync()
            sample = side.run()
            if round_ == 0 and side.check:
                side.check(sample)
            samples[side.name].append(sample)
    return {name: Stat.of(s) for name, s in samples.items()}


DROP_CACHES = Path("/proc/sys/vm/drop_caches")


def drop_caches() -> None:
    """Empty the kernel's page cache (root only): the next read comes from the disk."""
    os.sync()
    DROP_CACHES.write_text("3\n")


def cold_reason() -> str | None:
    """Why cold-cache runs cannot be measured here (None when they can)."""
    try:
        drop_caches()
    except OSError as exc:
        return f"no permission to drop caches ({exc.strerror or exc})"
    return None
