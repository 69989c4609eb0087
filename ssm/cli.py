"""The ``ssm`` command: fingerprint a system, show a fingerprint, compare two, log many.

    ssm fingerprint IMAGE... -o FILE [--since OLD]
    ssm show FILE [--json] [--members]
    ssm compare OLD NEW [--json] [--include PAT] [--exclude PAT] [--map FROM=TO]
    ssm log FP... [--json] [--include PAT] [--exclude PAT] [--map FROM=TO]

Each subcommand parses its arguments, calls one library function
(:func:`ssm.fingerprint.fingerprint`, :func:`ssm.fpfile.read`,
:func:`ssm.compare.compare`, :func:`ssm.log.audit_log`) and formats the result; the
file format is docs/formats/fingerprint.md, the comparison semantics are in
:mod:`ssm.compare`.  ``--json`` prints one document with sorted keys.

Exit codes (as ``cmp``/``diff``): 0 success, or no differences (compare); 1 the two
fingerprints differ (compare); 2 error: one line ``ssm: <message>`` on stderr, never a
traceback (the hidden ``--traceback`` flag re-raises for developers); 130 interrupted.
Progress (per volume, bytes done, rate) goes to stderr, only when it is a terminal.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Sequence

from emulator.errors import EmulatorError

PROG = "ssm"
EXIT_OK, EXIT_DIFFERENT, EXIT_ERROR, EXIT_INTERRUPTED = 0, 1, 2, 130


class CliError(EmulatorError):
    """A problem with the command line itself (an option value, an output file)."""


# -- output helpers -------------------------------------------------------------------
def _json(obj) -> str:
    return json.dumps(obj, sort_keys=True, indent=2)


def _out(text: str = "") -> None:
    sys.stdout.write(text + "\n")


def _err(text: str) -> None:
    try:
        sys.stderr.write(text.replace("\n", " ") + "\n")
        sys.stderr.flush()
    except OSError:
        pass


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"  # pragma: no cover


class Meter:
    """Progress on stderr when it is a terminal: one line rewritten in place.

    Quiet (does nothing) when stderr is not a terminal, so pipes and logs stay clean."""

    def __init__(self, stream=None, min_interval: float = 0.1):
        self.stream = stream or sys.stderr
        try:
            self.enabled = self.stream.isatty()
        except (AttributeError, ValueError):
            self.enabled = False
        self.min_interval = min_interval
        self._last = 0.0
        self._width = 0

    def show(self, text: str, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if not force and now - self._last < self.min_interval:
            return
        self._last = now
        pad = max(0, self._width - len(text))
        self._width = len(text)
        try:
            self.stream.write("\r" + text + " " * pad)
            self.stream.flush()
        except OSError:
            self.enabled = False

    def done(self) -> None:
        """Clear the line (before normal output or an error)."""
        if self.enabled and self._width:
            try:
                self.stream.write("\r" + " " * self._width + "\r")
                self.stream.flush()
            except OSError:
                pass
            self._width = 0

    def fingerprint_callback(self) -> Callable | None:
        """A ``progress`` callback for :func:`ssm.fingerprint.fingerprint`, or None."""
        if not self.enabled:
            return None

        def callback(p) -> None:
            pct = 100.0 * p.bytes_done / p.bytes_total if p.bytes_total else 100.0
            where = f"{p.volser} " if p.volser else ""
            self.show(
                f"{where}{_size(p.bytes_done)} of {_size(p.bytes_total)} ({pct:.0f}%), "
                f"{p.datasets_done}/{p.datasets_total} data sets, {_size(p.rate)}/s",
                force=bool(getattr(p, "finished", False)),
            )

        return callback


def _read_fp(path: str):
    from ssm import fpfile

    if os.path.isdir(path):
        raise CliError("is a directory, not a fingerprint file", path)
    if not os.path.exists(path):
        raise CliError("no such file", path)
    return fpfile.read(path)


def _patterns(args) -> dict:
    """The filter and map options, checked before any file is read (PatternError)."""
    from ssm.patterns import DsnFilter, NameMaps

    found = {"include": args.include or (), "exclude": args.exclude or (), "maps": args.map or ()}
    DsnFilter(found["include"], found["exclude"])
    NameMaps(found["maps"])
    return found


# -- subcommands ----------------------------------------------------------------------
def cmd_fingerprint(args) -> int:
    from ssm import fpfile
    from ssm.fingerprint import fingerprint

    for path in args.images:
        if not os.path.exists(path):
            raise CliError("no such file", path)
    since = _read_fp(args.since) if args.since else None
    meter = Meter()
    try:
        fp = fingerprint(args.images, since=since, progress=meter.fingerprint_callback())
    finally:
        meter.done()
    fpfile.write(fp, args.output)
    stats = getattr(fp, "stats", None) or {}
    extra = []
    if stats.get("reused"):
        extra.append(f"{stats['reused']} reused")
    if stats.get("torn"):
        extra.append(f"{stats['torn']} torn")
    if stats.get("seconds"):
        extra.append(f"{stats['seconds']:.1f} s")
    tail = f" ({', '.join(extra)})" if extra else ""
    _out(
        f"{args.output}: {len(fp.volumes)} volumes, {len(fp.dataset_table)} data sets, "
        f"{len(fp.members)} members{tail}"
    )
    return EXIT_OK


SHOW_HEADER = (
    f"{'Volser':<6} {'Dsname':<44} {'ORG':<4}{'RECFM':<5} {'LRECL':>5} {'BLKSZ':>5} "
    f"{'Records':>9} {'Members':>7} Content"
)


def cmd_show(args) -> int:
    fp = _read_fp(args.file)
    if args.json:
        _out(_json(fp.to_json(members=True)))
        return EXIT_OK
    from ssm.model import digest_text

    _out(f"{args.file}: format {fp.version}, created {fp.created.isoformat()}, {fp.tool}")
    for v in fp.volumes:
        _out(f"  volume {v.volser} {v.devtype} {v.cyls} cylinders ({v.kind}) {v.path}")
    _out(SHOW_HEADER)
    for ds in fp.datasets:
        flags = " TORN" if ds.torn else " ERROR" if ds.error else ""
        members = str(ds.mcount) if ds.is_pds else ""
        _out(
            f"{ds.volser:<6} {ds.dsname:<44} {ds.dsorg:<4}{ds.recfm:<5} {ds.lrecl:>5} "
            f"{ds.blksize:>5} {ds.records:>9} {members:>7} {digest_text(ds.content)}{flags}"
        )
        if args.members and ds.is_pds:
            for m in fp.iter_members(ds):
                alias = f" alias of {m.alias_of}" if m.is_alias else ""
                _out(f"{'':<6}   {m.name:<8} {m.records:>9} {digest_text(m.content)}{alias}")
    _out(f"{len(fp.dataset_table)} data sets, {len(fp.members)} members")
    return EXIT_OK


def cmd_compare(args) -> int:
    from ssm.compare import compare, format_report

    patterns = _patterns(args)
    old = _read_fp(args.old)
    new = _read_fp(args.new)
    result = compare(old, new, old_label=args.old, new_label=args.new, **patterns)
    if args.json:
        _out(_json(result.to_json()))
    else:
        for line in format_report(result):
            _out(line)
    return EXIT_OK if result.equal else EXIT_DIFFERENT


def cmd_log(args) -> int:
    from ssm.log import audit_log, format_log

    if len(args.fingerprints) < 2:
        raise CliError(f"a log needs at least two fingerprints, got {len(args.fingerprints)}")
    patterns = _patterns(args)
    meter = Meter()
    sources = [(path, (lambda p=path: _read_fp(p))) for path in args.fingerprints]

    def progress(done: int, total: int, label: str) -> None:
        meter.show(f"read {done}/{total}: {label}", force=done == total)

    try:
        log = audit_log(sources, progress=progress if meter.enabled else None, **patterns)
    finally:
        meter.done()
    if args.json:
        _out(_json(log.to_json()))
    else:
        for line in format_log(log):
            _out(line)
    return EXIT_OK


# -- parser ---------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Fingerprint DASD volume images and compare fingerprints.",
        epilog="Exit codes: 0 ok or equal, 1 different (compare), 2 error.",
    )
    p.add_argument("--version", action="version", version=f"{PROG} {_version()}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def add(name: str, func: Callable, help_: str, epilog: str | None = None):
        sp = sub.add_parser(
            name,
            help=help_,
            description=help_,
            epilog=epilog,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        sp.set_defaults(func=func)
        return sp

    def filters(sp: argparse.ArgumentParser) -> None:
        sp.add_argument(
            "--include",
            action="append",
            metavar="PAT",
            help="only data sets matching PAT (repeatable; * %% ** as in DFSMSdss)",
        )
        sp.add_argument(
            "--exclude", action="append", metavar="PAT", help="skip data sets matching PAT"
        )
        sp.add_argument(
            "--map",
            action="append",
            metavar="FROM=TO",
            help="pair OLD data set FROM with NEW data set TO, e.g. 'SYS1.**=SYS7.**'",
        )
        sp.add_argument("--json", action="store_true", help="print one JSON document")

    sp = add("fingerprint", cmd_fingerprint, "fingerprint the volumes of a system into FILE")
    sp.add_argument("images", nargs="+", metavar="IMAGE")
    sp.add_argument("-o", "--output", required=True, metavar="FILE")
    sp.add_argument("--since", metavar="OLD", help="reuse data sets unchanged since OLD")

    sp = add("show", cmd_show, "print what a fingerprint file holds")
    sp.add_argument("file", metavar="FILE")
    sp.add_argument("--json", action="store_true", help="volumes, data sets and members")
    sp.add_argument("--members", action="store_true", help="list members too")

    sp = add(
        "compare",
        cmd_compare,
        "compare two fingerprints: added, deleted, changed, attributes, renamed",
        epilog="Exit codes: 0 equal, 1 different, 2 error.  Semantics: pydoc ssm.compare.",
    )
    sp.add_argument("old", metavar="OLD")
    sp.add_argument("new", metavar="NEW")
    filters(sp)

    sp = add(
        "log",
        cmd_log,
        "audit trail: what changed between each fingerprint and the next, by day",
        epilog="Fingerprints are ordered by creation time; each change is dated by the later one.",
    )
    sp.add_argument("fingerprints", nargs="+", metavar="FP")
    filters(sp)
    return p


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("dasd-ssm")
    except Exception:  # noqa: BLE001 - not installed: running from a source tree
        return "source"


# -- entry point ----------------------------------------------------------------------
def main(argv: Sequence[str] | None = None) -> int:
    """Run one ``ssm`` command; returns the exit code (see the module docstring)."""
    args_in = list(sys.argv[1:] if argv is None else argv)
    traceback = "--traceback" in args_in
    args_in = [a for a in args_in if a != "--traceback"]
    try:
        args = build_parser().parse_args(args_in)
    except SystemExit as exc:  # argparse: --help/--version (0) or a usage error (2)
        return exc.code if isinstance(exc.code, int) else EXIT_ERROR
    try:
        return args.func(args)
    except EmulatorError as exc:
        if traceback:
            raise
        _err(f"{PROG}: {exc}")
        return EXIT_ERROR
    except KeyboardInterrupt:
        if traceback:
            raise
        _err(f"{PROG}: interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (`ssm compare ... | head`): stop quietly, and point stdout
        # at /dev/null so the interpreter's final flush does not complain again.
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return EXIT_OK
    except OSError as exc:
        # The library turns expected I/O problems into EmulatorError; this is the net
        # for the rest (disk full, permissions on the output file).
        if traceback:
            raise
        where = f"{os.path.basename(exc.filename)}: " if exc.filename else ""
        _err(f"{PROG}: {where}{exc.strerror or exc}")
        return EXIT_ERROR
    except Exception as exc:  # noqa: BLE001 - a bug: one line for users, not a traceback
        if traceback:
            raise
        _err(f"{PROG}: internal error ({type(exc).__name__}: {exc}); rerun with --traceback")
        return EXIT_ERROR


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
