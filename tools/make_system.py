"""Build a generated production-like system (fixtures.generate) and print its volumes.

    python tools/make_system.py OUTDIR --seed 7 --size 1g [--volumes 2] [--compress zlib]
    python tools/make_system.py OUTDIR --size small --days 2      # then 2 simulated days

Prints one line per volume image (path of its first file, bytes in all its files: a
plain image over 2 GB is split as dasdinit splits it), the build time, and for each
simulated day the ChangeLog file written next to the images (changes-day<N>.json).
Sizes: tiny, small, 1g, 3390-3, 3390-9 (see fixtures/generate.py).
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from emulator.errors import EmulatorError  # noqa: E402
from emulator.volume import Volume  # noqa: E402
from fixtures.daysim import simulate_day  # noqa: E402
from fixtures.generate import DEFAULT_NOW, SIZES, build_system  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("outdir", type=Path, help="folder for the images (created if needed)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--size", choices=list(SIZES), default="small")
    parser.add_argument("--volumes", type=int, default=2)
    parser.add_argument("--devtype", default="3390")
    parser.add_argument("--compress", choices=["zlib", "bzip2"], default=None)
    parser.add_argument(
        "--now", default=DEFAULT_NOW.isoformat(), help="the system's clock (ISO date/time)"
    )
    parser.add_argument("--days", type=int, default=0, help="simulated days to apply after")
    parser.add_argument("--rate", type=float, default=0.01, help="change rate of each day")
    args = parser.parse_args(argv)
    now = dt.datetime.fromisoformat(args.now)
    start = time.perf_counter()
    try:
        paths = build_system(
            args.outdir,
            seed=args.seed,
            size=args.size,
            volumes=args.volumes,
            devtype=args.devtype,
            compress=args.compress,
            now=now,
        )
    except (EmulatorError, ValueError) as exc:
        print(f"make_system: {exc}", file=sys.stderr)
        return 2
    took = time.perf_counter() - start
    for path in paths:
        with Volume.open(path) as vol:  # a split image: count every piece
            files = getattr(vol.image, "files", None) or [vol.path]
        print(f"{path}\t{sum(Path(f).stat().st_size for f in files)}")
    print(f"built in {took:.1f} s ({args.size}, seed {args.seed}, {len(paths)} volumes)")
    for day in range(1, args.days + 1):
        start = time.perf_counter()
        log = simulate_day(
            paths, seed=args.seed * 1000 + day, rate=args.rate, now=now + dt.timedelta(days=day)
        )
        out = args.outdir / f"changes-day{day}.json"
        out.write_text(log.to_json())
        print(f"day {day}: {len(log)} changes in {time.perf_counter() - start:.1f} s -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
