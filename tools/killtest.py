"""Crash safety, proven by killing: SIGKILL the writers at random points, then check.

    python tools/killtest.py --kills 240                  # the full run (docs/RELIABILITY.md)
    python tools/killtest.py --kills 16 --size tiny       # a quick sample (tests/test_kill.py)

Eight scenarios: four commands on two image kinds (plain CKD and CCKD zlib) of a
generated system (``fixtures.generate.build_system``, as ``ssm generate``):

* ``put``: ``dasd put`` allocates a sequential data set and writes text into it;
* ``alloc``: ``dasd alloc`` allocates a PDS with directory blocks;
* ``iebcopy``: ``iebcopy``, one COPY step of three (two on tiny) PDSes of SYSRES into a
  PDS on USER01;
* ``import``: ``ssm import`` of one simulated day's basket (``ssm export --base``
  against the morning's fingerprint) into the two-volume hot site.

The expected *after* state comes from running each command to completion on a copy,
twice (the two results must agree, so the command is deterministic); those runs also
give the command's duration, the moment its first write shows and how long its
journals are seen.  Each trial copies the *before* images, starts the command, and
SIGKILLs it at a point drawn from a seeded RNG, a third of the trials each: anywhere in
the run; around the writes (from just before the first write to just after the
last journal); or inside a commit (a random time, up to the calibrated commit
length, after a journal first shows).  Then:

1. the next open recovers: every written image is opened read-only by this process
   (which rolls back a dead writer's journal) and ``emulator.api.check`` -- plus the
   compressed image's own space check -- must find nothing;
2. Hercules ``dasdls`` must list every image without an error, and ``cckdcdsk -3 -ro``
   must find nothing on a compressed one;
3. for ``ssm import``, the next run must finish the import or roll it back (half the
   trials each: ``ssm import`` again, or ``ssm.apply.recover``), then check as above;
4. the content must equal exactly the before or exactly the after state: a plain
   image byte for byte, a compressed one track image by track image (a CCKD file's
   layout may differ after recovery), an ``ssm import`` by its fingerprint state.

``--kills N`` counts the SIGKILLs that land before the command exits: trials run
round-robin until every scenario has its share; a trial whose command finished first
is checked all the same (it must show the after state) and counted as tried.  Any
difference counts the trial as corrupted; its images are kept under the work
folder (``corrupt-N``) with the seed, scenario and delay printed for a repeat.
Exit status 0 when nothing was corrupted, 1 otherwise, 2 on a setup error.
"""

from __future__ import annotations

import argparse
import errno
import hashlib
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
if str(REPO / "tests") not in sys.path:
    sys.path.insert(0, str(REPO / "tests"))

import oracle  # noqa: E402  (tests/oracle.py: the Hercules utilities and their quirks)

from emulator import api  # noqa: E402
from emulator.image.journal import journal_path  # noqa: E402
from ssm.apply import INTENT_SUFFIX  # noqa: E402

COMMANDS = ("put", "alloc", "iebcopy", "import")
#: Give up when this many trials per wanted kill did not land enough kills.
MAX_TRIALS_PER_KILL = 4
KINDS = ("plain", "cckd")
SEED_GENERATE = 1  # the system generator's seed (the same system every run)
SEED_DAY = 2  # the simulated day's seed

#: Per system size: text bytes written by put, and the space requests.
WORKLOAD = {
    "tiny": dict(
        put_bytes=40_000,
        put_space="TRK,2,1",
        alloc_space="TRK,2,1,2",
        copy_from=("SYS1.PARMLIB", "SYS1.PROCLIB"),
        copy_space="TRK,5,0,4",
    ),
    "small": dict(
        put_bytes=600_000,
        put_space="TRK,15,5",
        alloc_space="TRK,10,2,10",
        copy_from=("SYS1.PARMLIB", "SYS1.PROCLIB", "SYS1.MACLIB"),
        copy_space="TRK,45,5,40",
    ),
}


class SetupError(Exception):
    """The work folder could not be prepared (a command failed on a clean copy)."""


@dataclass
class Scenario:
    command: str
    kind: str
    base: list[Path]  # the before images (all of the system, in order)
    written: list[int]  # indexes into base of the images the command writes
    argv: Callable[[list[Path]], list[str]]  # argv for copies of base
    before: object = None
    after: object = None
    duration: float = 0.0
    first_write: float = 0.0
    commit_time: float = 0.005
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"{self.command}/{self.kind}"


# -- the system and the commands -------------------------------------------------------
def _python(*args: str) -> list[str]:
    return [sys.executable, *args]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


def _text(nbytes: int, seed: int) -> str:
    rnd = random.Random(seed)
    words = ["DASD", "TRACK", "EXTENT", "VTOC", "MEMBER", "RECORD", "BLOCK", "KILL", "SAFE"]
    lines, size = [], 0
    while size < nbytes:
        line = f"{len(lines):08d} " + " ".join(rnd.choice(words) for _ in range(10))
        lines.append(line[:79])
        size += 80
    return "\n".join(lines) + "\n"


def build_world(work: Path, kind: str, size: str) -> list[Scenario]:
    """The system of one image kind, its day's basket, and the four scenarios on it."""
    from fixtures.daysim import simulate_day
    from fixtures.generate import build_system
    from ssm import fpfile
    from ssm.export import export
    from ssm.fingerprint import fingerprint

    load = WORKLOAD[size]
    top = work / kind
    prod = [
        Path(p)
        for p in build_system(
            top / "prod", seed=SEED_GENERATE, size=size, compress="zlib" if kind == "cckd" else None
        )
    ]
    morning = top / "morning"
    morning.mkdir()
    base = [morning / p.name for p in prod]
    for src, dst in zip(prod, base, strict=True):
        shutil.copyfile(src, dst)
    fpfile.write(fingerprint(base), top / "morning.ssmfp")
    simulate_day(prod, seed=SEED_DAY)
    basket = top / "day1.basket"
    export(basket, base=top / "morning.ssmfp", images=prod)

    text = top / "put.txt"
    text.write_text(_text(load["put_bytes"], SEED_GENERATE))
    # iebcopy's before state: USER01 with the empty output PDS allocated.
    copy_base = top / "copy"
    copy_base.mkdir()
    copy_images = [copy_base / p.name for p in base]
    for src, dst in zip(base, copy_images, strict=True):
        shutil.copyfile(src, dst)
    unit, pri, sec, dirblks = load["copy_space"].split(",")
    with api.open_volume(copy_images[1], writable=True) as vol:
        api.allocate(
            vol, "KILL.COPY", "PO", "FB", 80, 27920, (unit, int(pri), int(sec)), int(dirblks)
        )
    sysin = top / "copy.sysin"
    indds = [f"IN{n}" for n in range(1, len(load["copy_from"]) + 1)]
    sysin.write_text(f" COPY OUTDD=OUT,INDD=({','.join(indds)})\n")

    def dcb(space: str, dsorg: str) -> list[str]:
        return [
            "--dsorg",
            dsorg,
            "--recfm",
            "FB",
            "--lrecl",
            "80",
            "--blksize",
            "27920",
            "--space",
            space,
        ]

    def put(imgs: list[Path]) -> list[str]:
        return _python(
            "-m",
            "emulator.cli.dasd",
            "put",
            str(imgs[1]),
            "KILL.PUT",
            str(text),
            "--text",
            *dcb(load["put_space"], "PS"),
        )

    def alloc(imgs: list[Path]) -> list[str]:
        return _python(
            "-m",
            "emulator.cli.dasd",
            "alloc",
            str(imgs[1]),
            "KILL.ALLOC",
            *dcb(load["alloc_space"], "PO"),
        )

    def iebcopy(imgs: list[Path]) -> list[str]:
        dds = [f"{dd}={imgs[0]}:{dsn}" for dd, dsn in zip(indds, load["copy_from"], strict=True)]
        dds.append(f"OUT={imgs[1]}:KILL.COPY")
        return _python(
            "-m",
            "emulator.cli.iebcopy",
            "--sysin",
            str(sysin),
            *(a for dd in dds for a in ("--dd", dd)),
        )

    def ssm_import(imgs: list[Path]) -> list[str]:
        return _python("-m", "ssm.cli", "import", str(basket), *map(str, imgs))

    return [
        Scenario("put", kind, base, [1], put),
        Scenario("alloc", kind, base, [1], alloc),
        Scenario("iebcopy", kind, copy_images, [1], iebcopy),
        Scenario("import", kind, base, [0, 1], ssm_import),
    ]


# -- states ----------------------------------------------------------------------------
def _digest_files(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _digest_tracks(path: Path) -> str:
    """Every track image of the volume, in order: the content whatever the CCKD layout."""
    h = hashlib.sha256()
    with api.open_volume(path) as vol:
        for trk in range(vol.image.total_tracks):
            image = vol.image.read_track(trk)
            h.update(len(image).to_bytes(4, "big") + image)
    return h.hexdigest()


def state_of(sc: Scenario, imgs: list[Path]) -> tuple:
    """The state the trial's result is compared by (see the module docstring, step 4)."""
    if sc.command == "import":
        from ssm.basket import ops
        from ssm.fingerprint import fingerprint

        return ("system", ops.system_state(fingerprint(imgs)))
    digest = _digest_files if sc.kind == "plain" else _digest_tracks
    return tuple(digest(imgs[i]) for i in sc.written)


def findings_of(sc: Scenario, imgs: list[Path]) -> list[str]:
    """Steps 1 and 2: our check after a read-only open, then Hercules'."""
    out = []
    for i in sc.written:
        path = imgs[i]
        with api.open_volume(path) as vol:  # the next open: rolls back a dead writer
            found = list(api.check(vol))
            if hasattr(vol.image, "check"):
                found += vol.image.check()
        out += [f"{path.name}: {f}" for f in found]
        if os.path.exists(journal_path(str(path))):
            out.append(f"{path.name}: journal still there after the next open")
    for i in sc.written:
        path = imgs[i]
        try:
            oracle.dasdls(path)
        except oracle.OracleError as exc:
            out.append(f"{path.name}: dasdls: {str(exc).splitlines()[0]}")
        if sc.kind == "cckd":
            ok, text = oracle.cckdcdsk(path, 3)
            if not ok:
                out.append(f"{path.name}: cckdcdsk: {text.strip().splitlines()[0]}")
    return out


# -- running ---------------------------------------------------------------------------
def _fresh_copy(sc: Scenario, folder: Path) -> list[Path]:
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    out = []
    for src in sc.base:
        dst = folder / src.name
        shutil.copyfile(src, dst)
        out.append(dst)
    return out


def _marks(sc: Scenario, imgs: list[Path]) -> list:
    """What changes when a write begins: image stats, journals, the intent log."""
    out = []
    for i in sc.written:
        st = os.stat(imgs[i])
        out.append((st.st_size, st.st_mtime_ns))
    out += [os.path.exists(journal_path(str(imgs[i]))) for i in sc.written]
    out += [os.path.exists(str(p) + INTENT_SUFFIX) for p in imgs]
    return out


def _journal_seen(sc: Scenario, imgs: list[Path]) -> bool:
    return any(os.path.exists(journal_path(str(imgs[i]))) for i in sc.written)


def calibrate(sc: Scenario, work: Path) -> None:
    """Run to completion twice: the after state (the same both times), and from the
    faster run the duration, the moment the first write shows and how long journals
    are seen (the commits)."""
    afters = []
    for n in range(2):
        imgs = _fresh_copy(sc, work / f"calibrate-{n}")
        if n == 0:
            sc.before = state_of(sc, imgs)
        start = _marks(sc, imgs)
        t0 = time.monotonic()
        proc = subprocess.Popen(
            sc.argv(imgs), env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        first = journal_on = journal_off = None
        while proc.poll() is None:
            now = time.monotonic() - t0
            if first is None and _marks(sc, imgs) != start:
                first = now
            if _journal_seen(sc, imgs):
                journal_on = now if journal_on is None else journal_on
                journal_off = now
            time.sleep(0.0002)
        took = time.monotonic() - t0
        if n == 0 or took < sc.duration:  # the faster run: kills must land before exit
            sc.duration = took
            sc.first_write = first if first is not None else took * 0.8
            if journal_on is not None:
                sc.commit_time = max(0.002, journal_off - journal_on)
        err = proc.stderr.read().decode(errors="replace").strip()
        proc.stderr.close()
        if proc.returncode != 0:
            raise SetupError(f"{sc.name}: exit {proc.returncode} on a clean copy: {err}")
        findings = findings_of(sc, imgs)
        if findings:
            raise SetupError(f"{sc.name}: a completed run leaves findings: {findings[:3]}")
        afters.append(state_of(sc, imgs))
        shutil.rmtree(imgs[0].parent)
    if afters[0] != afters[1]:
        raise SetupError(f"{sc.name}: two completed runs give different results")
    if afters[0] == sc.before:
        raise SetupError(f"{sc.name}: the command changes nothing")
    sc.after = afters[0]


def _kill_at(sc: Scenario, imgs: list[Path], how: str, delay: float) -> subprocess.Popen:
    """Start the command and SIGKILL it ``delay`` s after its start ("run", "writes")
    or after a journal first shows ("commit"); returns the finished process."""
    proc = subprocess.Popen(
        sc.argv(imgs), env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    if how == "commit":
        deadline = time.monotonic() + sc.duration * 3 + 5
        while proc.poll() is None and not _journal_seen(sc, imgs):
            if time.monotonic() > deadline:
                break
            time.sleep(0.0002)
    time.sleep(delay)
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    return proc


def _finish_import(sc: Scenario, imgs: list[Path], finish: bool) -> str | None:
    """Step 3: the next run finishes the import, or a recovery rolls it back."""
    if finish:
        proc = subprocess.run(sc.argv(imgs), env=_env(), capture_output=True, timeout=600)
        if proc.returncode != 0:
            err = (proc.stderr or proc.stdout).decode(errors="replace").strip()
            return f"the next ssm import exited {proc.returncode}: {err[:200]}"
        return None
    from emulator.errors import EmulatorError
    from ssm.apply import recover

    try:
        recover(imgs)
    except EmulatorError as exc:
        return f"ssm.apply.recover failed: {exc}"
    return None


def trial(sc: Scenario, rng: random.Random, work: Path, number: int) -> tuple[str, dict]:
    """One kill; returns the outcome ("before", "after" or "corrupted") and facts."""
    imgs = _fresh_copy(sc, work / "trial")
    # Every draw is made up front, so a seed gives the same plan whatever happens.
    how = rng.choice(("run", "writes", "commit"))
    if how == "run":
        delay = rng.uniform(0.0, sc.duration)
    elif how == "writes":
        last = min(sc.duration, sc.first_write + sc.commit_time + 0.05)
        delay = rng.uniform(max(0.0, sc.first_write - 0.05), last)
    else:
        delay = rng.uniform(0.0, sc.commit_time)
    finish = rng.random() < 0.5
    proc = _kill_at(sc, imgs, how, delay)
    facts = {
        "killed": proc.returncode == -signal.SIGKILL,
        "journal": _journal_seen(sc, imgs),
        "intent": any(os.path.exists(str(p) + INTENT_SUFFIX) for p in imgs),
        "delay": f"{delay:.4f} s ({how})",
    }
    problems = findings_of(sc, imgs)
    if sc.command == "import" and not problems:
        failed = _finish_import(sc, imgs, finish)
        problems = [failed] if failed else findings_of(sc, imgs)
    state = state_of(sc, imgs)
    if problems:
        outcome = "corrupted"
    elif state == sc.before:
        outcome = "before"
    elif state == sc.after:
        outcome = "after"
    else:
        outcome = "corrupted"
        problems = ["content equals neither the before nor the after state"]
    if outcome == "corrupted":
        if any(os.strerror(errno.ENOSPC) in p for p in problems):
            # The machine's disk, not the writer: the trial proves nothing either way.
            raise SetupError(f"trial {number} {sc.name}: the disk is full: {problems[0]}")
        facts["problems"] = problems
        keep = work / f"corrupt-{number}"
        try:
            shutil.copytree(imgs[0].parent, keep)
            facts["kept"] = keep
        except OSError as exc:
            facts["kept"] = f"nowhere: {exc}"
    return outcome, facts


# -- reporting -------------------------------------------------------------------------
COLUMNS = ("tried", "killed", "mid-commit", "intent", "before", "after", "recovered", "corrupted")


def _add(counts: dict[str, int], outcome: str, facts: dict) -> None:
    counts["tried"] = counts.get("tried", 0) + 1
    for key, flag in (("killed", "killed"), ("mid-commit", "journal"), ("intent", "intent")):
        counts[key] = counts.get(key, 0) + bool(facts[flag])
    counts[outcome] = counts.get(outcome, 0) + 1
    if outcome != "corrupted":
        counts["recovered"] = counts.get("recovered", 0) + 1


def markdown(scenarios: list[Scenario], total: dict[str, int], seed: int, command: str) -> str:
    """The table of docs/RELIABILITY.md: one row per scenario and the totals."""
    head = ["scenario", *COLUMNS]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for sc in scenarios:
        lines.append(
            f"| {sc.name} | " + " | ".join(str(sc.counts.get(c, 0)) for c in COLUMNS) + " |"
        )
    lines.append("| **all** | " + " | ".join(f"**{total.get(c, 0)}**" for c in COLUMNS) + " |")
    lines.append("")
    lines.append(f"Seed {seed}; reproduced by `{command}`.")
    return "\n".join(lines) + "\n"


def summary(total: dict[str, int], seed: int, seconds: float) -> str:
    return (
        f"killtest: seed {seed}: {total.get('tried', 0)} trials, "
        f"{total.get('killed', 0)} kills before exit ({total.get('mid-commit', 0)} inside a "
        f"commit, {total.get('intent', 0)} with an import unfinished), "
        f"{total.get('recovered', 0)} recovered (before {total.get('before', 0)}, after "
        f"{total.get('after', 0)}), {total.get('corrupted', 0)} corrupted, in {seconds:.0f} s"
    )


def run(
    kills: int,
    seed: int,
    size: str = "small",
    commands: tuple[str, ...] = COMMANDS,
    kinds: tuple[str, ...] = KINDS,
    work: Path | None = None,
    log: Callable[[str], None] = print,
) -> tuple[list[Scenario], dict[str, int]]:
    """Set up, calibrate, then run trials round-robin over the scenarios until each
    has its share of ``kills`` SIGKILLs that landed before the command exited (the
    trials whose command finished first are checked and counted too)."""
    own = work is None
    folder = Path(tempfile.mkdtemp(prefix="killtest-")) if own else Path(work)
    folder.mkdir(parents=True, exist_ok=True)
    try:
        scenarios: list[Scenario] = []
        for kind in kinds:
            log(f"building the {size} {kind} system and its basket")
            scenarios += [s for s in build_world(folder, kind, size) if s.command in commands]
        for sc in scenarios:
            calibrate(sc, folder)
            log(
                f"{sc.name}: runs {sc.duration:.2f} s, first write at {sc.first_write:.2f} s, "
                f"journals seen for {sc.commit_time * 1000:.0f} ms"
            )
        share, extra = divmod(kills, len(scenarios))
        quota = {sc.name: share + (i < extra) for i, sc in enumerate(scenarios)}
        rng = random.Random(seed)
        total: dict[str, int] = {}
        number = 0
        while total.get("killed", 0) < kills:
            if number >= MAX_TRIALS_PER_KILL * kills:
                raise SetupError(
                    f"only {total.get('killed', 0)} of {kills} kills landed in {number} trials: "
                    "the commands finish before the kills (a busy machine?)"
                )
            for sc in scenarios:
                if sc.counts.get("killed", 0) >= quota[sc.name]:
                    continue
                outcome, facts = trial(sc, rng, folder, number)
                number += 1
                _add(sc.counts, outcome, facts)
                _add(total, outcome, facts)
                if outcome == "corrupted":
                    log(
                        f"CORRUPTED trial {number - 1} {sc.name} delay {facts['delay']}: "
                        f"{'; '.join(facts['problems'])} (kept in {facts['kept']})"
                    )
            log(
                f"{total.get('killed', 0)}/{kills} kills landed in {number} trials, "
                f"{total.get('corrupted', 0)} corrupted"
            )
        return scenarios, total
    finally:
        if own and not any(p.name.startswith("corrupt-") for p in folder.iterdir()):
            shutil.rmtree(folder, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="killtest", description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--kills",
        type=int,
        default=240,
        help="SIGKILLs that must land before the command exits (default 240)",
    )
    p.add_argument("--seed", type=int, help="RNG seed (default: random, printed)")
    p.add_argument("--size", choices=list(WORKLOAD), default="small", help="system size")
    p.add_argument("--commands", default=",".join(COMMANDS), help="subset, comma-separated")
    p.add_argument("--kinds", default=",".join(KINDS), help="plain, cckd or both")
    p.add_argument("--work", type=Path, help="work folder (default: a temporary one)")
    p.add_argument("--markdown", type=Path, help="write the table as Markdown to this file")
    args = p.parse_args(argv)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1 << 31)
    commands = tuple(c for c in args.commands.split(",") if c)
    kinds = tuple(k for k in args.kinds.split(",") if k)
    bad = [c for c in commands if c not in COMMANDS] + [k for k in kinds if k not in KINDS]
    if bad or not commands or not kinds or args.kills < 1:
        p.error(f"unknown or empty choice: {', '.join(bad) or 'nothing chosen'}")
    if not oracle.have_hercules():
        print("killtest: the Hercules utilities (dasdls, cckdcdsk) are needed", file=sys.stderr)
        return 2
    print(f"killtest: seed {seed}", flush=True)
    t0 = time.monotonic()
    try:
        scenarios, total = run(
            args.kills,
            seed,
            args.size,
            commands,
            kinds,
            args.work,
            log=lambda s: print(s, flush=True),
        )
    except (SetupError, OSError) as exc:  # OSError: the work folder's disk, say
        print(f"killtest: {exc}", file=sys.stderr)
        return 2
    for sc in scenarios:
        print(f"  {sc.name:14} " + " ".join(f"{c} {sc.counts.get(c, 0)}" for c in COLUMNS))
    print(summary(total, seed, time.monotonic() - t0))
    if args.markdown:
        shown = f"python tools/killtest.py --kills {args.kills} --seed {seed}"
        if args.size != "small":
            shown += f" --size {args.size}"
        if commands != COMMANDS:
            shown += f" --commands {','.join(commands)}"
        if kinds != KINDS:
            shown += f" --kinds {','.join(kinds)}"
        args.markdown.write_text(markdown(scenarios, total, seed, shown))
    return 1 if total.get("corrupted") else 0


if __name__ == "__main__":
    sys.exit(main())
