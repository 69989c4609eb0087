"""The ``ssm`` command: fingerprint, compare, and carry changes to a hot site in baskets.

    ssm fingerprint IMAGE... -o FILE [--since OLD]
    ssm show FILE [--json] [--members]          (a fingerprint or a basket, by its magic)
    ssm compare OLD NEW [--json] [--include PAT] [--exclude PAT] [--map FROM=TO]
    ssm log FP... [--json] [--include PAT] [--exclude PAT] [--map FROM=TO]
    ssm export (--base FP IMAGE... | --from OLD... --to NEW... | --full IMAGE...)
               -o BASKET [--include PAT] [--exclude PAT] [--map FROM=TO] [--key FILE]
    ssm verify BASKET [--key FILE]
    ssm import BASKET TARGET... [--dry-run] [--backout OUT] [--force] [--key FILE]
               [--include PAT]... [--exclude PAT]...
    ssm drill [--size S] [--days N] [--seed N] [--volumes N] [--keep FOLDER] [--json]

Each subcommand parses its arguments, calls one library function
(:func:`ssm.fingerprint.fingerprint`, :func:`ssm.fpfile.read`,
:func:`ssm.compare.compare`, :func:`ssm.log.audit_log`, :func:`ssm.export.export`,
:func:`ssm.basket.fmt.read_basket`, :func:`ssm.apply.import_basket`,
:func:`ssm.drill.drill`) and formats the result.  File formats:
docs/formats/fingerprint.md and docs/formats/basket.md; the comparison semantics are in
:mod:`ssm.compare`.  ``--json`` prints one document with sorted keys.

Exit codes (as ``cmp``/``diff``): 0 success, no differences (compare), basket whole
(verify), basket applied or already applied (import), disaster restore verified
(drill); 1 "different" or "not verified": the fingerprints differ (compare), the basket
is damaged, forged or unsigned when a key is given (verify, import), import refused
conflicts or data sets outside its --include/--exclude or target volumes, or its result
did not match the after-digests, the drill's restore did not verify; 2 error: one line ``ssm: <message>`` on stderr, never a traceback (the hidden
``--traceback`` flag re-raises for developers); 130 interrupted.  Progress goes to
stderr, only when it is a terminal.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Sequence

from emulator.cli import runner
from emulator.errors import EmulatorError

PROG = "ssm"
EXIT_OK, EXIT_DIFFERENT, EXIT_ERROR, EXIT_INTERRUPTED = 0, 1, 2, 130
#: fixtures.generate.SIZES, spelled out: importing the generator costs every command
#: a few tenths of a second (tests/test_generate.py keeps the two equal).
SYSTEM_SIZES = ("tiny", "small", "1g", "3390-3", "3390-9")


class CliError(EmulatorError):
    """A problem with the command line itself (an option value, an output file)."""


# -- output helpers -------------------------------------------------------------------
def _json(obj) -> str:
    return json.dumps(obj, sort_keys=True, indent=2)


def _out(text: str = "") -> None:
    sys.stdout.write(text + "\n")


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


def _is_basket(path: str) -> bool:
    """True when the file starts with the basket magic (docs/formats/basket.md)."""
    from ssm.basket.fmt import is_basket

    return os.path.isfile(path) and is_basket(path)


def cmd_show(args) -> int:
    if _is_basket(args.file):
        return _show_basket(args)
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


# -- baskets --------------------------------------------------------------------------
def _existing_file(path: str) -> str:
    if os.path.isdir(path):
        raise CliError("is a directory, not a file", path)
    if not os.path.exists(path):
        raise CliError("no such file", path)
    return path


def _read_key(path: str | None) -> bytes | None:
    """The secret of ``--key FILE``: the file's bytes (docs/formats/basket.md,
    "Integrity and authentication")."""
    if path is None:
        return None
    from ssm.basket.fmt import load_key

    return load_key(_existing_file(path))


def _basket_refusal(exc: EmulatorError, basket: str) -> bool:
    """True when ``exc`` says the basket itself is damaged, forged or unsigned (exit 1,
    "not verified"), as opposed to a problem with a target or the command (exit 2)."""
    from emulator.errors import FormatError, IntegrityError

    if not isinstance(exc, FormatError | IntegrityError) or exc.path is None:
        return False
    try:
        return os.path.samefile(exc.path, basket)
    except OSError:
        return os.path.abspath(exc.path) == os.path.abspath(basket)


def _op_name(op) -> str:
    """How ``ssm show`` names an operation's object: DSN, DSN(MEMBER), a rename's new
    name, a record edit's range (OLD numbering)."""
    name = f"{op.dsname}({op.member})" if op.member else op.dsname
    if op.new_name:
        name += f" -> {op.new_name}"
    if op.records:
        name += f" records [{op.records[0]}, {op.records[1]})"
    return name


def _short_digest(value: str | None) -> str:
    if value is None:
        return "-"
    algo, _, hexpart = value.partition(":")
    return f"{algo}:{hexpart[:12]}" if hexpart else value[:20]


def _show_basket(args) -> int:
    from ssm.basket.fmt import read_basket

    path = _existing_file(args.file)
    with read_basket(path) as basket:
        return _print_basket(args, path, basket)


def _print_basket(args, path: str, basket) -> int:
    if args.json:
        _out(_json(basket.to_json()))
        return EXIT_OK
    header = basket.header
    counts = header.get("counts") or {}
    content = counts.get("content_bytes")
    content_text = f" ({_size(content)} of content)" if isinstance(content, int) else ""
    signed = "signed" if basket.signed else "unsigned"
    _out(
        f"{path}: basket format {header.get('format', '?')}, {_size(basket.size)}, "
        f"{len(basket.operations)} operations, {basket.payload_count} "
        f"payloads{content_text}, {signed}"
    )
    _out(
        f"  mode {header.get('mode', '?')}, created {header.get('created', '?')}, {header.get('tool', '?')}"
    )
    for side in ("base", "result"):
        state = header.get(side)
        if isinstance(state, dict):
            vols = " ".join(state.get("volsers") or [])
            made = f", fingerprint of {state['created']}" if state.get("created") else ""
            _out(f"  {side + ':':<7} {_short_digest(state.get('state'))} {vols}{made}")
        elif side in header:
            _out(f"  {side + ':':<7} none")
    filters = header.get("filters") or {}
    for name in ("include", "exclude", "maps"):
        if filters.get(name):
            _out(f"  {name}: {' '.join(filters[name])}")
    _out(f"{'Seq':>5} {'Operation':<18} {'Volser':<6} {'Before':<20} {'After':<20} Object")
    for op in basket.operations:
        _out(
            f"{op.seq:>5} {op.kind:<18} {op.volser or '':<6} {_short_digest(op.before):<20} "
            f"{_short_digest(op.after):<20} {_op_name(op)}"
        )
    kinds: dict[str, int] = {}
    for op in basket.operations:
        kinds[op.kind] = kinds.get(op.kind, 0) + 1
    _out(", ".join(f"{n} {kind}" for kind, n in sorted(kinds.items())) or "no operations")
    return EXIT_OK


def _counts_text(counts: dict) -> str:
    parts = [f"{v} {k}" for k, v in sorted(counts.items()) if isinstance(v, int) and v]
    return ", ".join(parts) or "no changes"


def cmd_export(args) -> int:
    from ssm.export import export

    patterns = _patterns(args)
    modes = [
        name
        for name, given in (
            ("--base", args.base is not None),
            ("--from/--to", bool(args.from_images or args.to_images)),
            ("--full", args.full),
        )
        if given
    ]
    if len(modes) != 1:
        raise CliError(
            "give exactly one of --base FP IMAGE..., --from OLD... --to NEW..., "
            f"--full IMAGE... (got {', '.join(modes) or 'none'})"
        )
    kwargs: dict = {}
    if args.base is not None:
        if not args.images:
            raise CliError("--base needs the IMAGE files of the system now")
        _read_fp(args.base)  # a clear error before anything is written
        kwargs.update(base=args.base, images=args.images)
    elif args.full:
        if not args.images:
            raise CliError("--full needs the IMAGE files to dump")
        kwargs.update(full=True, images=args.images)
    else:
        if args.images:
            raise CliError("--from/--to take no other IMAGE arguments")
        if not args.from_images or not args.to_images:
            raise CliError("--from OLD... needs --to NEW... and the other way round")
        kwargs.update(from_images=args.from_images, images=args.to_images)
    for path in [*args.images, *(args.from_images or ()), *(args.to_images or ())]:
        _existing_file(path)
    key = _read_key(args.key)
    result = export(args.output, key=key, **kwargs, **patterns)
    if args.json:
        _out(_json(_import_json(args.output, result, "basket")))
        return EXIT_OK
    signed = ", signed" if key else ""
    _out(
        f"{args.output}: {result.operations} operations, {_size(result.bytes)}{signed} "
        f"({_size(result.content_bytes)} of content) in {result.seconds:.2f} s"
    )
    if result.counts:
        _out(f"  {_counts_text(result.counts)}")
    return EXIT_OK


def cmd_verify(args) -> int:
    from ssm.basket.fmt import verify_basket

    path = _existing_file(args.basket)
    key = _read_key(args.key)
    try:
        basket = verify_basket(path, key=key)
    except EmulatorError as exc:
        if not _basket_refusal(exc, path):
            raise
        _out(f"{path}: NOT VERIFIED: {exc}")
        return EXIT_DIFFERENT
    with basket:
        if key:
            auth = "signature checked"
        elif basket.signed:
            auth = "signed (signature not checked: no --key)"
        else:
            auth = "unsigned"
        _out(
            f"{path}: verified: {len(basket.operations)} operations, "
            f"{basket.payload_count} payloads, {_size(basket.size)}, {auth}"
        )
    return EXIT_OK


def cmd_import(args) -> int:
    from ssm.apply import import_basket

    path = _existing_file(args.basket)
    for target in args.targets:
        _existing_file(target)
    if args.backout and os.path.isdir(args.backout):
        raise CliError("is a directory, not a basket file", args.backout)
    key = _read_key(args.key)
    meter = Meter()

    def progress(p) -> None:
        where = f" {p.volser}" if p.volser else ""
        count = f" {p.done}/{p.total}" if p.total else ""
        meter.show(f"{p.phase}{where}{count} {p.message}".rstrip(), force=p.phase == "done")

    try:
        result = import_basket(
            path,
            list(args.targets),
            dry_run=args.dry_run,
            backout=args.backout,
            force=args.force,
            key=key,
            progress=progress if meter.enabled else None,
            ignore_opened=args.ignore_opened,
            include=args.include or (),
            exclude=args.exclude or (),
        )
    except EmulatorError as exc:
        meter.done()
        if not _basket_refusal(exc, path):
            raise
        _out(f"{path}: NOT VERIFIED, nothing written: {exc}")
        return EXIT_DIFFERENT
    finally:
        meter.done()
    if args.json:
        _out(_json(_import_json(path, result)))
    else:
        for line in _import_lines(path, result):
            _out(line)
    return _import_exit(result)


def _import_json(path: str, result, label: str = "basket") -> dict:
    """A result object of the library as a JSON document (its own ``to_json`` first)."""
    if hasattr(result, "to_json"):
        doc = result.to_json()
    else:
        import dataclasses

        doc = dataclasses.asdict(result) if dataclasses.is_dataclass(result) else dict(result)
    doc = {k: (str(v) if isinstance(v, os.PathLike) else v) for k, v in doc.items()}
    doc.setdefault(label, path)
    return doc


def _import_exit(result) -> int:
    """0 applied (or already applied, or a clean dry run); 1 refused or not verified."""
    if result.already_applied:
        return EXIT_OK
    if result.refused or result.conflicts:
        return EXIT_DIFFERENT
    if result.dry_run:
        return EXIT_OK
    return EXIT_OK if result.verified else EXIT_DIFFERENT


def _import_lines(path: str, result) -> list[str]:
    lines = []
    if result.recovered:
        lines.append(f"{path}: an interrupted import was found: {result.recovered}")
    if result.outside:
        lines.append(
            f"{path}: REFUSED, nothing written: {len(result.outside)} data sets outside "
            "this import's limits"
        )
        lines += [f"  outside: {o}" for o in result.outside]
        return lines
    if result.already_applied:
        lines.append(f"{path}: already applied; nothing to do")
        return lines
    if result.refused or (result.conflicts and not result.dry_run):
        lines.append(f"{path}: REFUSED, nothing written: {len(result.conflicts)} conflicts")
        lines += [f"  conflict: {c}" for c in result.conflicts]
        if not result.forced:
            lines.append("  (--force applies over the conflicts that allow it)")
        return lines
    if result.dry_run:
        lines.append(
            f"{path}: dry run, nothing written: {result.applied} operations to apply, "
            f"{result.skipped} already applied, {len(result.conflicts)} conflicts"
        )
        lines += [f"  conflict: {c}" for c in result.conflicts]
        lines += [f"  would force: {c}" for c in result.forced]
        lines += [f"  {step}" for step in result.plan]
        return lines
    rate = f", {_size(result.rate)}/s" if result.rate else ""
    vols = ", ".join(f"{v} {n}" for v, n in sorted(result.volumes.items()) if n)
    lines.append(
        f"{path}: applied {result.applied} operations ({vols or 'none'}), skipped "
        f"{result.skipped} already applied; {_size(result.bytes)} in {result.seconds:.2f} s{rate}"
    )
    if result.forced:
        lines.append(f"  applied over {len(result.forced)} conflicts (--force):")
        lines += [f"  forced: {c}" for c in result.forced]
    if result.backout:
        lines.append(f"  backout basket: {result.backout}")
    if result.verified:
        lines.append("  result verified against the after-digests")
    else:
        lines.append("  result NOT VERIFIED against the after-digests:")
        lines += [f"  mismatch: {m}" for m in result.mismatches]
    return lines


def cmd_drill(args) -> int:
    from ssm.drill import drill

    meter = Meter()
    try:
        report = drill(
            folder=args.keep,
            size=args.size,
            days=args.days,
            seed=args.seed,
            volumes=args.volumes,
            progress=(lambda text: meter.show(f"ssm drill: {text}", force=True))
            if meter.enabled
            else None,
        )
    except ValueError as exc:
        raise CliError(str(exc)) from exc
    finally:
        meter.done()
    if args.json:
        _out(_json(report.to_json()))
    else:
        for line in report.lines():
            _out(line)
    return EXIT_OK if report.ok else EXIT_DIFFERENT


def cmd_generate(args) -> int:
    import datetime as dt

    from emulator.volume import Volume
    from fixtures.daysim import simulate_day
    from fixtures.generate import DEFAULT_NOW, build_system

    try:
        now = dt.datetime.fromisoformat(args.now) if args.now else DEFAULT_NOW
    except ValueError as exc:
        raise CliError(f"--now {args.now!r} is not an ISO date/time") from exc
    start = time.perf_counter()
    try:
        paths = build_system(
            args.outdir,
            seed=args.seed,
            size=args.size,
            volumes=args.volumes,
            devtype=args.devtype,
            compress=None if args.compress == "none" else args.compress,
            now=now,
        )
    except ValueError as exc:
        raise CliError(str(exc)) from exc
    took = time.perf_counter() - start
    for path in paths:
        with Volume.open(path) as vol:  # a split image: count every piece
            files = getattr(vol.image, "files", None) or [vol.path]
            volser = vol.volser
        _out(f"{volser}  {path}  {_size(sum(os.path.getsize(f) for f in files))}")
    _out(f"built in {took:.1f} s ({args.size}, seed {args.seed}, {len(paths)} volumes)")
    for day in range(1, args.days + 1):
        start = time.perf_counter()
        log = simulate_day(
            paths, seed=args.seed * 1000 + day, rate=args.rate, now=now + dt.timedelta(days=day)
        )
        out = os.path.join(args.outdir, f"changes-day{day}.json")
        with open(out, "w", encoding="utf-8") as fh:
            fh.write(log.to_json())
        _out(f"day {day}: {len(log)} changes in {time.perf_counter() - start:.1f} s -> {out}")
    return EXIT_OK


def _rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a rate from 0 to 1")
    return value


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


# -- parser ---------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG,
        description=(
            "Fingerprint DASD volume images, compare fingerprints, and carry the changes "
            "to a hot site in verified change baskets."
        ),
        epilog="Exit codes: 0 ok or equal, 1 different or not verified, 2 error.",
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

    sp = add("show", cmd_show, "print what a fingerprint file or a basket holds")
    sp.add_argument("file", metavar="FILE", help="a fingerprint or a basket (told by its magic)")
    sp.add_argument(
        "--json", action="store_true", help="volumes, data sets and members; a basket's manifest"
    )
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

    def key_option(sp: argparse.ArgumentParser, text: str) -> None:
        sp.add_argument("--key", metavar="FILE", help=text)

    sp = add(
        "export",
        cmd_export,
        "write a change basket: what changed since a fingerprint, between two dumps, or all",
        epilog=(
            "Modes: --base FP IMAGE... (cumulative: since the fingerprint FP);\n"
            "       --from OLD... --to NEW... (between two dumps of one system);\n"
            "       --full IMAGE... (every data set).  Format: docs/formats/basket.md."
        ),
    )
    sp.add_argument("images", nargs="*", metavar="IMAGE", help="the system's volumes now")
    sp.add_argument("--base", metavar="FP", help="the baseline fingerprint")
    sp.add_argument("--from", dest="from_images", nargs="+", metavar="OLD", help="old dump")
    sp.add_argument("--to", dest="to_images", nargs="+", metavar="NEW", help="new dump")
    sp.add_argument("--full", action="store_true", help="every data set of IMAGE...")
    sp.add_argument("-o", "--output", required=True, metavar="BASKET")
    filters(sp)
    key_option(sp, "sign the basket with the secret in FILE (HMAC-SHA256)")

    sp = add(
        "verify",
        cmd_verify,
        "check a basket whole: every digest, and its signature with --key",
        epilog="Exit codes: 0 whole, 1 not verified (damaged, forged, unsigned), 2 error.",
    )
    sp.add_argument("basket", metavar="BASKET")
    key_option(sp, "require a valid signature made with the secret in FILE")

    sp = add(
        "import",
        cmd_import,
        "apply a basket to the target volumes, all or nothing, and verify the result",
        epilog=(
            "Exit codes: 0 applied or already applied, 1 refused (conflicts, a damaged\n"
            "or unsigned basket) or the result not verified, 2 error."
        ),
    )
    sp.add_argument("basket", metavar="BASKET")
    sp.add_argument("targets", nargs="+", metavar="TARGET", help="the hot site's volumes")
    sp.add_argument("--dry-run", action="store_true", help="check and report; write nothing")
    sp.add_argument("--backout", metavar="OUT", help="write the basket that undoes this import")
    sp.add_argument("--force", action="store_true", help="apply over drift (reported)")
    sp.add_argument(
        "--ignore-opened",
        action="store_true",
        help="a compressed target's header says an emulator has it open (OPENED bit): "
        "write anyway, only with the emulator stopped",
    )
    sp.add_argument(
        "--include",
        action="append",
        metavar="PAT",
        help="refuse the basket unless every data set it touches matches a PAT (repeatable)",
    )
    sp.add_argument(
        "--exclude",
        action="append",
        metavar="PAT",
        help="refuse the basket if it touches a data set matching PAT, e.g. 'SYS1.**'",
    )
    sp.add_argument("--json", action="store_true", help="print one JSON document")
    key_option(sp, "refuse a basket not signed with the secret in FILE")

    sp = add(
        "drill",
        cmd_drill,
        "a month of hot-site synchronisation on a generated system, then a disaster",
        epilog=(
            "Builds production, backs it up to a hot site, runs DAYS days of change with\n"
            "an evening basket each, then restores backup + latest basket and proves it\n"
            "equals production.  Exit codes: 0 restore verified, 1 not, 2 error."
        ),
    )
    sp.add_argument("--size", choices=SYSTEM_SIZES, default="tiny", help="default tiny")
    sp.add_argument("--days", type=_positive, default=3, help="days of change (default 3)")
    sp.add_argument("--seed", type=int, default=1, help="generator seed (default 1)")
    sp.add_argument("--volumes", type=_positive, default=2, help="volumes (default 2)")
    sp.add_argument("--keep", metavar="FOLDER", help="work in FOLDER and keep it (else a temp)")
    sp.add_argument("--json", action="store_true", help="print the report as JSON")

    sp = add(
        "generate",
        cmd_generate,
        "build a production-like system of volume images, then simulated days of change",
        epilog=(
            "Deterministic: the same seed, size and clock give the same bytes.  Each day\n"
            "writes its ground-truth change log to OUTDIR/changes-day<N>.json."
        ),
    )
    sp.add_argument("outdir", metavar="OUTDIR", help="folder for the images (created if needed)")
    sp.add_argument(
        "--size",
        choices=SYSTEM_SIZES,
        default="small",
        help="default small",
    )
    sp.add_argument("--seed", type=int, default=1, help="generator seed (default 1)")
    sp.add_argument("--volumes", type=_positive, default=2, help="volumes (default 2)")
    sp.add_argument("--devtype", default="3390", help="3390 (default) or 3380, with a model")
    sp.add_argument(
        "--compress", choices=["none", "zlib", "bzip2"], default="none", help="CCKD compression"
    )
    sp.add_argument(
        "--now", help="the system's clock, ISO date/time (default: the generator's, 2026-11-01)"
    )
    sp.add_argument("--days", type=int, default=0, help="simulated days to apply after building")
    sp.add_argument("--rate", type=_rate, default=0.01, help="change rate of each day (0.01)")
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
    return runner.run(PROG, build_parser, argv)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
