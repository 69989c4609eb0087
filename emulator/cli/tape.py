"""``dasd tape``: list and extract the data sets of AWS and HET tape files (docs/tape.md).

``dasd tape ls FILE [--json]`` prints one line per data set (number, dsname, DCB from
HDR2, blocks, bytes, creation date, the step that wrote it and what it holds);
``dasd tape get FILE N -o OUT [--form auto|raw]`` writes data set N to OUT.  Each calls
one function of :mod:`emulator.interchange.tape`; errors propagate to ``dasd.main``
(one line, exit code 2).

Wiring: ``dasd.build_parser`` calls :func:`add_subcommands` with its ``add`` helper,
which registers the one subcommand ``tape``; ``ls`` and ``get`` are its own
sub-subcommands.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import sys
from collections.abc import Callable

EXIT_OK = 0

LS_HEADER = (
    f"{'FILE':>4} {'DSNAME':<17} {'RECFM':<5} {'LRECL':>5} {'BLKSIZE':>7} {'BLOCKS':>6} "
    f"{'BYTES':>10} {'CREATED':<10} {'STEP':<8} KIND"
)


def _tape():
    # Imported on first use so `dasd --help` stays fast.
    from emulator.interchange import tape

    return tape


def _json(obj) -> str:
    return json.dumps(obj, sort_keys=True, indent=2, default=_json_default)


def _json_default(obj):
    if isinstance(obj, _dt.date | _dt.datetime):
        return obj.isoformat()
    if isinstance(obj, bytes):
        return obj.hex().upper()
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def _out(text: str = "") -> None:
    sys.stdout.write(text + "\n")


def _num(value) -> str:
    return "" if value is None else str(value)


def ls_line(f: dict) -> str:
    """One `dasd tape ls` line for a :func:`~emulator.interchange.tape.tape_ls` dict."""
    kind = f["kind"]
    unloaded = f.get("unloaded")
    if unloaded:
        kind += f" ({unloaded['recfm']} {unloaded['lrecl']}/{unloaded['blksize']})"
    if f["problems"]:
        kind += " DAMAGED: " + "; ".join(f["problems"])
    return (
        f"{f['number']:>4} {f['dsname']:<17} {f['recfm']:<5} {_num(f['lrecl']):>5} "
        f"{_num(f['blksize']):>7} {f['blocks']:>6} {f['bytes']:>10} "
        f"{f['created'] or '':<10} {f['step']:<8} {kind}"
    )


def cmd_tape_ls(args) -> int:
    info = _tape().tape_info(args.tape)
    if args.json:
        _out(_json(info))
        return EXIT_OK
    comp = f" {'+'.join(info['compression'])}" if info["compression"] else ""
    volume = f"VOLSER={info['volser']}" if info["label_type"] == "SL" else "unlabelled"
    owner = f" OWNER={info['owner']}" if info["owner"] else ""
    _out(f"{args.tape}: {info['format']}{comp} {info['label_type']} {volume}{owner}")
    _out(LS_HEADER)
    for f in info["files"]:
        _out(ls_line(f))
    return EXIT_OK


def cmd_tape_get(args) -> int:
    result = _tape().tape_get(args.tape, args.number, args.output, form=args.form)
    if args.json:
        _out(_json(result))
        return EXIT_OK
    dcb = ""
    if result["kind"] == "sequential" and result["recfm"]:
        dcb = f" {result['recfm']} {_num(result['lrecl'])}/{_num(result['blksize'])}"
    records = f", {result['records']} records" if "records" in result else ""
    _out(
        f"{result['out']}: data set {result['number']} {result['dsname']} "
        f"({result['kind']}{dcb}), {result['blocks']} blocks{records}, {result['bytes']} bytes"
    )
    return EXIT_OK


def cmd_tape(args) -> int:
    """Run the chosen ``tape`` sub-subcommand."""
    return args.tape_func(args)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be greater than 0")
    return value


def add_subcommands(add: Callable[..., argparse.ArgumentParser]) -> None:
    """Register ``tape`` (with ``ls`` and ``get``) through ``dasd.build_parser``'s ``add``."""
    sp = add("tape", cmd_tape, "list or extract the data sets of an AWS or HET tape file")
    sub = sp.add_subparsers(dest="tape_command", metavar="ACTION", required=True)

    ls = sub.add_parser("ls", help="list the data sets and their labels")
    ls.add_argument("tape", metavar="FILE")
    ls.add_argument("--json", action="store_true", help="print every label field as JSON")
    ls.set_defaults(tape_func=cmd_tape_ls)

    get = sub.add_parser(
        "get",
        help="extract one data set (IEBCOPY unload, XMIT file or sequential data)",
    )
    get.add_argument("tape", metavar="FILE")
    get.add_argument("number", metavar="N", type=_positive, help="data set number (from ls)")
    get.add_argument("-o", "--output", required=True, metavar="OUT")
    get.add_argument(
        "--form",
        choices=("auto", "raw"),
        default="auto",
        help="auto: by content (default); raw: the blocks concatenated",
    )
    get.add_argument("--json", action="store_true")
    get.set_defaults(tape_func=cmd_tape_get)


__all__ = ["add_subcommands", "cmd_tape", "cmd_tape_ls", "cmd_tape_get", "ls_line"]
