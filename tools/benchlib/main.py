"""The ``tools/bench`` command line."""

from __future__ import annotations

import argparse
import datetime as _dt
import os
import shutil
import sys
import tempfile
import time
import traceback
from dataclasses import replace
from pathlib import Path

from benchlib.context import FULL, QUICK, TINY, Context, Plan, fit_to_disk
from benchlib.machine import describe, install_peers
from benchlib.measure import REPO, BenchError, LibraryRunner, cold_reason
from benchlib.report import Row, Section, ratio_text, render, verdict
from benchlib.sections import SECTIONS
from benchlib.systems import Workspace

#: Rows quoted in the headline (and so in the README), in this order; ``{fp}`` stands
#: for each size of the fingerprint section.
HEADLINE = [
    "fp-{fp}-sha",
    "fp-{fp}-command",
    "fp-{fp}-xxh3",
    "fp-{fp}-one",
    "fp-{fp}-memory",
    "since-appends",
    "compare-command",
    "basket-bytes",
    "basket-export",
    "basket-import",
    "basket-members",
    "cckd-write",
    "cckd-read",
    "scaling-speedup",
    "sizes-linear",
]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ids = [s[0] for s in SECTIONS]
    ap = argparse.ArgumentParser(
        prog="tools/bench",
        description="Run the benchmark suite and write BENCHMARKS.md (the full run: "
        "1 GB and 3390-9 images; --quick: under 5 minutes).",
    )
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="smaller sizes, every section")
    mode.add_argument(
        "--tiny", action="store_true", help="one run of each side on tiny volumes (a self-test)"
    )
    ap.add_argument(
        "--only",
        metavar="SECTION[,SECTION]",
        help=f"run only these sections: {', '.join(ids)}",
    )
    ap.add_argument(
        "--out",
        metavar="FILE",
        help="the Markdown output, '-' for stdout (default: BENCHMARKS.md at the repository "
        "root for a full or --quick run of every section, else stdout)",
    )
    ap.add_argument(
        "--work",
        metavar="DIR",
        type=Path,
        help="where the work folder (images) is made; default $TMPDIR or /var/tmp",
    )
    ap.add_argument(
        "--keep",
        metavar="DIR",
        type=Path,
        help="use DIR as the work folder and keep it (its built systems are reused)",
    )
    ap.add_argument("--runs", type=int, help="runs of each side (default 5; 1 with --tiny)")
    ap.add_argument("--seed", type=int, default=1, help="generator seed (default 1)")
    args = ap.parse_args(argv)
    args.sections = ids
    if args.only:
        args.sections = [s.strip() for s in args.only.split(",") if s.strip()]
        unknown = sorted(set(args.sections) - set(ids))
        if unknown:
            ap.error(f"unknown section(s) {', '.join(unknown)}; known: {', '.join(ids)}")
    if args.runs is not None and args.runs < 1:
        ap.error("--runs must be at least 1")
    if args.out is None:
        everything = not args.only and not args.tiny
        args.out = str(REPO / "BENCHMARKS.md") if everything else "-"
    return args


class Say:
    """Progress on stderr, with the time since the start."""

    def __init__(self) -> None:
        self.t0 = time.perf_counter()

    def __call__(self, text: str) -> None:
        took = int(time.perf_counter() - self.t0)
        print(f"[{took // 60:02d}:{took % 60:02d}] {text}", file=sys.stderr, flush=True)


def headline(sections: list[Section], plan: Plan) -> list[str]:
    rows: dict[str, tuple[Section, Row]] = {}
    for sec in sections:
        for row in sec.rows:
            if row.key:
                rows[row.key] = (sec, row)
    keys = []
    for key in HEADLINE:
        keys += [key.format(fp=s) for s in plan.fp_sizes] if "{fp}" in key else [key]
    lines = []
    for key in keys:
        if key not in rows:
            continue
        _sec, row = rows[key]
        text = f"{row.measure}: ours {row.ours}"
        if row.peer != "-":
            text += f", peer {row.peer}, ratio {ratio_text(row.ratio)}"
        if row.target != "-":
            text += f"; target {row.target}: {verdict(row.met)}"
        lines.append(text)
    return lines


def measured_command(args: argparse.Namespace) -> str:
    """The command line with the options that change what is measured (where images
    and the output go does not)."""
    words = ["tools/bench"]
    words += ["--quick"] if args.quick else ["--tiny"] if args.tiny else []
    words += ["--only", args.only] if args.only else []
    words += ["--runs", str(args.runs)] if args.runs else []
    words += ["--seed", str(args.seed)] if args.seed != 1 else []
    return " ".join(words)


def default_work_parent() -> Path:
    return Path(os.environ.get("TMPDIR") or "/var/tmp")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    say = Say()
    plan = TINY if args.tiny else QUICK if args.quick else FULL
    if args.runs:
        plan = replace(plan, runs=args.runs)
    if args.keep:
        root = args.keep.resolve()
        root.mkdir(parents=True, exist_ok=True)
    else:
        parent = (args.work or default_work_parent()).resolve()
        parent.mkdir(parents=True, exist_ok=True)
        root = Path(tempfile.mkdtemp(prefix="ssm-bench-", dir=parent))
    free = shutil.disk_usage(root).free
    planned = plan
    plan = fit_to_disk(plan, free)
    if plan is not planned:
        say(plan.notes[-1])
    say(f"{plan.name} run of {', '.join(args.sections)} in {root} ({free / 1e9:.0f} GB free)")
    notes = list(plan.notes)
    if not args.tiny:  # a self-test installs nothing
        notes += [f"Peers {n}." for n in install_peers(say)]
    cold = cold_reason() if plan.cold else None
    machine = describe(root, os.cpu_count() or 1)
    ws = Workspace(root, args.seed, say)
    sections: list[Section] = []
    failed = False
    try:
        warm = ws.system("tiny", 1)
        with LibraryRunner(warm, root / "scratch") as lib:
            say(f"library server ready (start-up {lib.startup:.2f} s)")
            ctx = Context(plan, ws, lib, say, cold)
            for sid, title, fill in SECTIONS:
                if sid not in args.sections:
                    continue
                sec = Section(sid, title, reduced=plan.reduced.get(sid))
                t0 = time.perf_counter()
                say(f"[{sid}] start")
                try:
                    fill(ctx, sec)
                except Exception as exc:  # one failed section must not lose the others
                    traceback.print_exc()
                    sec.error = f"{type(exc).__name__}: {exc}"
                    failed = True
                sec.seconds = time.perf_counter() - t0
                say(f"[{sid}] done in {sec.seconds:.0f} s")
                sections.append(sec)
    except (BenchError, OSError) as exc:  # the library server or a system build failed
        say(f"error: {exc}")
        return 2
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    load = os.getloadavg()
    machine.append(("load at end", f"{load[0]:.2f} (1 min), {load[1]:.2f} (5 min)"))
    command = measured_command(args)
    text = render(
        command=command,
        date=_dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        machine=machine,
        headline=headline(sections, plan),
        notes=notes,
        reproduce=[
            "tools/bench            # the full run: 1 GB and 3390-9 images (about 30 minutes)",
            "tools/bench --quick    # every section on smaller sizes, under 5 minutes",
            "tools/bench --only fingerprint,since   # some sections; --keep DIR reuses images",
        ],
        sections=sections,
        wall=time.perf_counter() - say.t0,
    )
    if args.out == "-":
        sys.stdout.write(text)
    else:
        out = Path(args.out)
        tmp = out.with_name(out.name + ".tmp")
        tmp.write_text(text)
        tmp.replace(out)
        say(f"wrote {out}")
    return 1 if failed else 0
