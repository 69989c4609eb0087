"""``iebcopy``: run IEBCOPY control statements against volume images and unload files.

    iebcopy --sysin copy.txt --dd IN=prod.3390:SYS1.MACLIB --dd OUT=work.3390:MY.MACLIB
    echo " COPY OUTDD=OUT,INDD=IN" | iebcopy --dd IN=lib.3390:A.LOAD --dd OUT=a.unl

SYSIN comes from ``--sysin FILE`` or standard input (``--sysin -``, the default).
``--dd NAME=IMAGE:DSN`` binds a DD name to a partitioned data set on a volume image;
``--dd NAME=FILE`` to an IEBCOPY unload file (an INDD loads it, an OUTDD is
written as an unload).  The SYSPRINT-like listing goes to standard output.

Exit status: the IEBCOPY return code (0, 4, 8, 12 or 16; docs/iebcopy.md).  A bad
command line or an error outside the utility's own processing prints one line
``iebcopy: message`` on standard error and exits 2 -- a value IEBCOPY never returns.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from emulator.errors import EmulatorError
from emulator.interchange import iebcopy

PROG = "iebcopy"
EXIT_ERROR = 2


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Copy, unload, load and compress partitioned data sets with IEBCOPY "
        "control statements.",
    )
    p.add_argument("--sysin", default="-", help="control statements file, or - for standard input")
    p.add_argument(
        "--dd",
        action="append",
        default=[],
        metavar="NAME=IMAGE:DSN|NAME=FILE",
        help="bind a DD name to a PDS on an image, or to an unload file (repeatable)",
    )
    p.add_argument(
        "--unload-format",
        choices=("vs", "records"),
        default="vs",
        help="unload files written: vs = RECFM=VS blocks with BDW/SDW (default); "
        "records = bare logical records (Hercules dasdload method VS)",
    )
    p.add_argument(
        "--ignore-opened",
        action="store_true",
        help="a compressed output image's header says an emulator has it open (OPENED "
        "bit): write anyway.  Only when the emulator is stopped or has the device "
        "detached; the bit stays set for cckdcdsk to check and clear",
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns the exit status (the IEBCOPY return code, or 2)."""
    try:
        args = build_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else EXIT_ERROR
    try:
        dds = [iebcopy.parse_dd(spec) for spec in args.dd]
        names = [d.name for d in dds]
        dup = next((n for n in names if names.count(n) > 1), None)
        if dup:
            raise EmulatorError(f"DD name {dup} is bound twice")
        descriptors = args.unload_format == "vs"
        if args.sysin == "-":
            result = iebcopy.run(
                sys.stdin.read(), dds, descriptors, ignore_opened=args.ignore_opened
            )
        else:
            result = iebcopy.run_file(
                args.sysin, dds, descriptors, ignore_opened=args.ignore_opened
            )
    except EmulatorError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    sys.stdout.write(result.listing)
    sys.stdout.flush()
    return result.rc


if __name__ == "__main__":
    sys.exit(main())
