"""The ``dasd`` command: one subcommand per library call on a Hercules DASD image.

Each subcommand parses its arguments, calls ONE function of :mod:`emulator.api` (or
:mod:`emulator.dasdload`) and formats the result.  ``dasd ls`` and ``dasd cat`` print what
Hercules ``dasdls -info`` and ``dasdcat`` print, so they can be compared with the oracle.

Exit codes: 0 ok, 1 findings (``check``), 2 error (one line ``dasd: <message>`` on
stderr, never a traceback; the hidden ``--traceback`` flag re-raises for developers),
130 interrupted.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from emulator.cli import runner
from emulator.errors import EmulatorError

PROG = "dasd"
EXIT_OK, EXIT_FINDINGS, EXIT_ERROR, EXIT_INTERRUPTED = 0, 1, 2, 130
COMPRESS_CHOICES = ("none", "zlib", "bzip2")


class CliError(EmulatorError):
    """A problem with the command line itself (bad option value, unreadable input file)."""


def _api():
    # Imported on first use so `dasd --help` stays fast and works with a partial install.
    from emulator import api

    return api


# -- argument types --------------------------------------------------------------------
def _space(text: str) -> tuple[str, int, int, int]:
    """'TRK,5,5' or 'CYL,1,1,10' -> (unit, primary, secondary, directory blocks)."""
    parts = [p.strip() for p in text.replace(" ", ",").split(",") if p.strip()]
    if len(parts) not in (2, 3, 4) or parts[0].upper() not in ("TRK", "CYL"):
        raise argparse.ArgumentTypeError(f"{text!r} is not UNIT,PRIMARY[,SECONDARY[,DIRBLKS]]")
    try:
        nums = [int(p) for p in parts[1:]]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: quantities must be whole numbers") from None
    if any(n < 0 for n in nums) or nums[0] == 0:
        raise argparse.ArgumentTypeError(f"{text!r}: primary must be > 0, others >= 0")
    nums += [0] * (3 - len(nums))
    return parts[0].upper(), nums[0], nums[1], nums[2]


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be greater than 0")
    return value


def _nonneg(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must not be negative")
    return value


# -- helpers ---------------------------------------------------------------------------
def _json(obj) -> str:
    return json.dumps(obj, sort_keys=True, indent=2, default=_json_default)


def _json_default(obj):
    if isinstance(obj, _dt.date | _dt.datetime):
        return obj.isoformat()
    if isinstance(obj, bytes):
        return obj.hex().upper()
    if hasattr(obj, "_asdict"):
        return obj._asdict()
    if hasattr(obj, "__dataclass_fields__"):
        return {k: getattr(obj, k) for k in obj.__dataclass_fields__}
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def _out(text: str = "") -> None:
    sys.stdout.write(text + "\n")


def _read_input(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise CliError("no such file", path) from None
    except IsADirectoryError:
        raise CliError("is a directory", path) from None
    except OSError as exc:
        raise CliError(exc.strerror or str(exc), path) from None


class _Opened:
    """Open a volume for one command and close it however the command ends."""

    def __init__(self, path: str, writable: bool = False, ignore_opened: bool = False):
        self.path = path
        self.writable = writable
        self.ignore_opened = ignore_opened

    def __enter__(self):
        self.vol = _api().open_volume(
            self.path, writable=self.writable, ignore_opened=self.ignore_opened
        )
        return self.vol

    def __exit__(self, *exc) -> None:
        self.vol.close()


def _date(value) -> str:
    return value.isoformat() if value else "-"


def dataset_dict(info) -> dict:
    """A DatasetInfo as the JSON object `dasd ls --json` prints."""
    extents = [
        {"seq": e.seq, "begin": e.begin, "end": e.end, "tracks": e.end - e.begin + 1}
        for e in info.extents
    ]
    space = info.space
    return {
        "dsname": info.dsname,
        "volser": info.volser,
        "dsorg": info.dsorg,
        "recfm": info.recfm,
        "lrecl": info.lrecl,
        "blksize": info.blksize,
        "keylen": info.keylen,
        "tracks": info.tracks,
        "used_tracks": info.used_tracks,
        "extents": extents,
        "created": _date(info.created) if info.created else None,
        "expires": _date(info.expires) if info.expires else None,
        "referenced": _date(info.referenced) if info.referenced else None,
        "space": {"unit": space[0], "primary": space[1], "secondary": space[2]} if space else None,
    }


LS_HEADER = (
    f"{'Dsname':<44} {'Created':<10} {'ORG':<4}{'RECFM':<5} {'LRECL':>5} {'BLKSZ':>5} "
    f"{'Key':>3} {'Trks':>5} {'Used':>5} {'#Ext':>4} 2ndry_alloc"
)


def ls_line(info) -> str:
    """One `dasd ls` row: dasdls -info columns, dates as YYYY-MM-DD."""
    unit, _, sec = info.space if info.space else ("TRK", 0, 0)
    return (
        f"{info.dsname:<44} {_date(info.created):<10} {(info.dsorg or '??'):<4}"
        f"{(info.recfm or '?'):<5} {info.lrecl:>5} {info.blksize:>5} {info.keylen:>3} "
        f"{info.tracks:>5} {info.used_tracks:>5} {len(info.extents):>4} {unit:<3} {sec:>7}"
    )


def _ispf_columns(ispf: dict | None) -> str:
    if not ispf:
        return ""
    vv = ispf.get("version", "")
    created = str(ispf.get("created", ""))[:10]
    changed = str(ispf.get("changed", "")).replace("T", " ")[:19]
    return (
        f"{vv:<6} {created:<10} {changed:<19} {ispf.get('current', ''):>6} "
        f"{ispf.get('initial', ''):>6} {ispf.get('modified', ''):>6} {ispf.get('userid', '')}"
    )


MEMBERS_HEADER = (
    f"{'Name':<8} {'Alias-of':<8} {'TTR':<6} {'VV.MM':<6} {'Created':<10} {'Changed':<19} "
    f"{'Size':>6} {'Init':>6} {'Mod':>6} ID"
)


def member_line(m: dict) -> str:
    head = f"{m['name']:<8} {(m.get('alias_of') or ''):<8} {m['ttr']:<6}"
    ispf = _ispf_columns(m.get("ispf"))
    if ispf:
        return f"{head} {ispf}"
    data = m.get("userdata") or ""
    return f"{head} {('userdata ' + data) if data else ''}".rstrip()


# -- subcommands -----------------------------------------------------------------------
def cmd_init(args) -> int:
    vol = _api().create_volume(
        args.image,
        args.devtype,
        args.volser,
        cyls=args.cyls,
        compress=args.compress,
        cckd64=args.cckd64,
    )
    try:
        _out(f"{args.image}: created {vol.device.name} volume {vol.volser}, {vol.cyls} cylinders")
    finally:
        vol.close()
    return EXIT_OK


def cmd_load(args) -> int:
    from emulator import dasdload

    vol = dasdload.load(args.ctlfile, args.image, compress=args.compress, cckd64=args.cckd64)
    try:
        names = [info.dsname for info in vol.datasets()]
        _out(f"{args.image}: loaded volume {vol.volser}, {len(names)} data sets")
    finally:
        vol.close()
    return EXIT_OK


def cmd_ls(args) -> int:
    with _Opened(args.image) as vol:
        infos = _api().list_datasets(vol)
        if args.json:
            _out(_json([dataset_dict(i) for i in infos]))
            return EXIT_OK
        _out(f"{args.image}: VOLSER={vol.volser}")
        _out(LS_HEADER)
        for info in infos:
            _out(ls_line(info))
    return EXIT_OK


def cmd_members(args) -> int:
    with _Opened(args.image) as vol:
        members = _api().list_members(vol, args.dsn)
    if args.json:
        _out(_json(members))
        return EXIT_OK
    _out(MEMBERS_HEADER)
    for m in members:
        _out(member_line(m))
    return EXIT_OK


def cmd_cat(args) -> int:
    with _Opened(args.image) as vol:
        if args.text:
            lines = _api().read_text(vol, args.dsn, codepage=args.codepage)
            sys.stdout.write("".join(line + "\n" for line in lines))
        else:
            data = _api().read_bytes(vol, args.dsn)
            sys.stdout.flush()
            sys.stdout.buffer.write(data)
    return EXIT_OK


def cmd_put(args) -> int:
    api = _api()
    dsname, member = api.parse_dsn(args.dsn)  # validate before touching anything
    raw = _read_input(args.file)
    dcb = space = None
    dirblks = 0
    dcb_given = {"--dsorg": args.dsorg, "--recfm": args.recfm, "--lrecl": args.lrecl}
    dcb_given |= {"--blksize": args.blksize, "--space": args.space}
    if any(v is not None for v in dcb_given.values()):
        # Allocation attributes: a missing one is an error, not a silent default.
        missing = [k for k in ("--recfm", "--lrecl", "--space") if dcb_given[k] is None]
        if missing:
            raise CliError(f"to allocate {dsname} also give {' '.join(missing)}")
        dsorg = args.dsorg or ("PO" if member else "PS")
        dcb = api.Dcb(dsorg=dsorg, recfm=args.recfm, lrecl=args.lrecl, blksize=args.blksize)
        unit, pri, sec, dirblks = args.space
        space = (unit, pri, sec)
    what = f"{dsname}({member})" if member else dsname
    with _Opened(args.image, writable=True, ignore_opened=args.ignore_opened) as vol:
        if args.text:
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise CliError(f"not UTF-8 text (byte {exc.start})", args.file) from None
            from emulator.dasdload import text_lines

            data = text_lines(text)
            info = api.write(
                vol,
                args.dsn,
                data,
                text=True,
                codepage=args.codepage,
                dcb=dcb,
                space=space,
                dirblks=dirblks,
            )
            done = f"{len(data)} records"
        else:
            # Binary input is cut into records by the data set's DCB (or the new one's).
            info = api.write_bytes(vol, args.dsn, raw, dcb=dcb, space=space, dirblks=dirblks)
            done = f"{len(raw)} bytes"
    _out(f"{args.image}: wrote {done} to {what} ({info.dsorg} {info.recfm})")
    return EXIT_OK


def cmd_alloc(args) -> int:
    unit, pri, sec, dirblks = args.space
    if args.dsorg == "PO" and dirblks == 0:
        raise CliError("a PO data set needs directory blocks: --space UNIT,PRI,SEC,DIRBLKS")
    with _Opened(args.image, writable=True, ignore_opened=args.ignore_opened) as vol:
        info = _api().allocate(
            vol,
            args.dsn,
            dsorg=args.dsorg,
            recfm=args.recfm,
            lrecl=args.lrecl,
            blksize=args.blksize,
            space=(unit, pri, sec),
            dirblks=dirblks,
            keylen=args.keylen,
        )
        _out(f"{args.image}: allocated {info.dsname} ({info.tracks} tracks)")
    return EXIT_OK


def cmd_rm(args) -> int:
    dsname, member = _api().parse_dsn(args.dsn)
    with _Opened(args.image, writable=True, ignore_opened=args.ignore_opened) as vol:
        _api().remove(vol, args.dsn)
    _out(
        f"{args.image}: removed {dsname}({member})" if member else f"{args.image}: removed {dsname}"
    )
    return EXIT_OK


def cmd_rename(args) -> int:
    with _Opened(args.image, writable=True, ignore_opened=args.ignore_opened) as vol:
        _api().rename(vol, args.old, args.new)
    _out(f"{args.image}: renamed {args.old.upper()} to {args.new.upper()}")
    return EXIT_OK


def cmd_check(args) -> int:
    with _Opened(args.image) as vol:
        findings = _api().check(vol)
    if args.json:
        _out(_json(findings))
    else:
        for finding in findings:
            _out(finding)
        if not findings:
            _out(f"{args.image}: clean")
    return EXIT_FINDINGS if findings else EXIT_OK


def cmd_convert(args) -> int:
    _api().convert(args.input, args.output, compress=args.compress, cckd64=args.cckd64)
    _out(f"{args.output}: written from {args.input}")
    return EXIT_OK


DEMO_JCL = [
    "//HELLO    JOB (ACCT),'DASD DEMO',CLASS=A,MSGCLASS=X",
    "//STEP1    EXEC PGM=IEBGENER",
    "//SYSPRINT DD SYSOUT=*",
    "//SYSUT1   DD DSN=DEMO.DATA,DISP=SHR",
    "//SYSUT2   DD SYSOUT=*",
    "//SYSIN    DD DUMMY",
]


def cmd_demo(args) -> int:
    """Create a small volume, allocate a PDS and a PS data set, write, list and read."""
    api = _api()
    folder = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="dasd-demo-"))
    folder.mkdir(parents=True, exist_ok=True)
    image = folder / "demo.3390"
    if image.exists():
        raise CliError("already exists; remove it or choose another --dir", image)
    _out(f"$ dasd init {image} 3390 DEMO01 --cyls 10")
    vol = api.create_volume(image, "3390", "DEMO01", cyls=10)
    try:
        _out(f"$ dasd alloc {image} DEMO.JCL --dsorg PO --recfm FB --lrecl 80 --blksize 3120 --space TRK,5,5,5")  # fmt: skip
        api.allocate(vol, "DEMO.JCL", "PO", "FB", 80, 3120, space=("TRK", 5, 5), dirblks=5)
        _out(f"$ dasd alloc {image} DEMO.DATA --dsorg PS --recfm FB --lrecl 80 --blksize 800 --space TRK,1,1")  # fmt: skip
        api.allocate(vol, "DEMO.DATA", "PS", "FB", 80, 800, space=("TRK", 1, 1))
        # The inputs are written beside the image so every command shown can be rerun.
        inputs = {
            "DEMO.JCL(HELLO)": ("hello.jcl", DEMO_JCL),
            "DEMO.JCL(EMPTY)": ("empty.jcl", ["//EMPTY    JOB", "//* nothing to do"]),
            "DEMO.DATA": (
                "data.txt",
                [f"RECORD {n:03d} OF THE DEMO DATA SET" for n in range(1, 6)],
            ),
        }
        for dsn, (name, lines) in inputs.items():
            (folder / name).write_text("".join(line + "\n" for line in lines))
            shown = f"'{dsn}'" if "(" in dsn else dsn
            _out(f"$ dasd put {image} {shown} {folder / name} --text")
            api.write(vol, dsn, lines, text=True)
        _out()
        _out(f"$ dasd ls {image}")
        _out(f"{image}: VOLSER={vol.volser}")
        _out(LS_HEADER)
        for info in api.list_datasets(vol):
            _out(ls_line(info))
        _out(f"\n$ dasd members {image} DEMO.JCL")
        _out(MEMBERS_HEADER)
        for m in api.list_members(vol, "DEMO.JCL"):
            _out(member_line(m))
        _out(f"\n$ dasd cat {image} 'DEMO.JCL(HELLO)' --text")
        for line in api.read_text(vol, "DEMO.JCL(HELLO)"):
            _out(line)
        _out(f"\n$ dasd cat {image} DEMO.DATA --text")
        for line in api.read_text(vol, "DEMO.DATA"):
            _out(line)
        findings = api.check(vol)
        _out(f"\n$ dasd check {image}")
        _out("\n".join(findings) if findings else f"{image}: clean")
    finally:
        vol.close()
    _out(f"\nThe volume is {image}; Hercules reads it too (dasdls {image}).")
    return EXIT_OK


# -- parser ----------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Read and write data sets inside Hercules DASD images.",
        epilog="Exit codes: 0 ok, 1 findings (check), 2 error.",
    )
    p.add_argument("--version", action="version", version=f"{PROG} {_version()}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def add(name: str, func: Callable, help_: str) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=help_, description=help_)
        sp.set_defaults(func=func)
        return sp

    def compress_opts(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--compress", choices=COMPRESS_CHOICES, help="write a CCKD image")
        sp.add_argument("--cckd64", action="store_true", help="write a CCKD64 image")

    sp = add("init", cmd_init, "create a new volume image")
    sp.add_argument("image")
    sp.add_argument("devtype", metavar="DEVTYPE[-MODEL]", help="e.g. 3390, 3390-3, 3380-K")
    sp.add_argument("volser")
    sp.add_argument("--cyls", type=_positive, help="cylinders (default: the model's)")
    compress_opts(sp)

    sp = add("load", cmd_load, "build a volume from a Hercules dasdload control file")
    sp.add_argument("ctlfile")
    sp.add_argument("image")
    compress_opts(sp)

    sp = add("ls", cmd_ls, "list the data sets on a volume")
    sp.add_argument("image")
    sp.add_argument("--json", action="store_true")

    sp = add("members", cmd_members, "list the members of a PDS")
    sp.add_argument("image")
    sp.add_argument("dsn")
    sp.add_argument("--json", action="store_true")

    sp = add("cat", cmd_cat, "print a sequential data set or member")
    sp.add_argument("image")
    sp.add_argument("dsn", metavar="DSN|DSN(MEMBER)")
    sp.add_argument("--text", action="store_true", help="decode EBCDIC, one line per record")
    sp.add_argument("--codepage", default="1047")

    sp = add("put", cmd_put, "write a member or a sequential data set from a file")
    sp.add_argument("image")
    sp.add_argument("dsn", metavar="DSN|DSN(MEMBER)")
    sp.add_argument("file")
    sp.add_argument("--text", action="store_true", help="the file is text: one line per record")
    sp.add_argument("--codepage", default="1047")
    dcb_opts(sp, required=False)
    writer_opts(sp)

    sp = add("alloc", cmd_alloc, "allocate a data set")
    sp.add_argument("image")
    sp.add_argument("dsn")
    dcb_opts(sp, required=True)
    writer_opts(sp)

    sp = add("rm", cmd_rm, "scratch a data set or delete a member")
    sp.add_argument("image")
    sp.add_argument("dsn", metavar="DSN|DSN(MEMBER)")
    writer_opts(sp)

    sp = add("rename", cmd_rename, "rename a data set, or a member: DSN(OLD) NEW")
    sp.add_argument("image")
    sp.add_argument("old")
    sp.add_argument("new")
    writer_opts(sp)

    sp = add("check", cmd_check, "check VTOC, free space, extents and directories")
    sp.add_argument("image")
    sp.add_argument("--json", action="store_true")

    sp = add("convert", cmd_convert, "copy an image between plain and compressed forms")
    sp.add_argument("input")
    sp.add_argument("output")
    compress_opts(sp)

    from emulator.cli import tape as tape_cli
    from emulator.cli import xmit as xmit_cli

    xmit_cli.add_subcommands(add)
    tape_cli.add_subcommands(add)

    sp = add("demo", cmd_demo, "create a small volume and show every step")
    sp.add_argument("--dir", help="folder for demo.3390 (default: a new temporary folder)")
    return p


def dcb_opts(sp: argparse.ArgumentParser, required: bool) -> None:
    sp.add_argument("--dsorg", choices=("PS", "PO"), type=str.upper, required=required)
    sp.add_argument("--recfm", type=str.upper, required=required, help="F, FB, V, VB, U, ...")
    sp.add_argument("--lrecl", type=_nonneg, required=required)
    sp.add_argument("--blksize", type=_nonneg, required=required)
    sp.add_argument("--keylen", type=_nonneg, default=0, help=argparse.SUPPRESS)
    sp.add_argument("--space", type=_space, required=required, metavar="TRK|CYL,PRI,SEC[,DIR]")


def writer_opts(sp: argparse.ArgumentParser) -> None:
    """Options of the subcommands that write an existing image."""
    sp.add_argument(
        "--ignore-opened",
        action="store_true",
        help="a compressed image's header says an emulator has it open (OPENED bit): "
        "write anyway.  Only when the emulator is stopped or has the device detached; "
        "the bit stays set for cckdcdsk to check and clear",
    )


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("dasd-ssm")
    except Exception:  # noqa: BLE001 - not installed: running from a source tree
        return "source"


# -- entry point -----------------------------------------------------------------------
def _locate(args, exc: EmulatorError) -> None:
    place = getattr(args, "image", None) or getattr(args, "input", None)
    if place is not None and exc.path is None and not isinstance(exc, CliError):
        exc.located(place)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one `dasd` command; returns the exit code (see the module docstring)."""
    return runner.run(PROG, build_parser, argv, _locate)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
