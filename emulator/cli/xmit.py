"""``dasd receive`` and ``dasd transmit``: TSO XMIT (NETDATA) files in and out of an image.

Each subcommand calls one function of :mod:`emulator.interchange.xmit` (FORMATS.md 9).
``dasd.py``'s ``build_parser`` registers them through :func:`add_subcommands`; an
EmulatorError propagates to ``dasd.main``, which prints one line and exits 2.

    dasd receive FILE.xmi IMAGE [--dsn NAME] [--replace]
    dasd transmit IMAGE DSN -o FILE.xmi [--from NODE.USER] [--to NODE.USER]
                  [--member NAME ...] [--message TEXT ...]
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Callable, Iterator

EXIT_OK = 0


def _out(text: str = "") -> None:
    sys.stdout.write(text + "\n")


def _node_user(text: str) -> tuple[str, str]:
    """'NODE.USER' -> ("NODE", "USER"); both parts 1-8 characters A-Z 0-9 @ # $."""
    parts = text.strip().upper().split(".")
    ok = len(parts) == 2 and all(
        1 <= len(p) <= 8 and all(c.isascii() and (c.isalnum() or c in "@#$") for c in p)
        for p in parts
    )
    if not ok:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not NODE.USER (each 1-8 characters A-Z 0-9 @ # $)"
        )
    return parts[0], parts[1]


@contextlib.contextmanager
def _opened(image: str, writable: bool, ignore_opened: bool = False) -> Iterator:
    """The volume of ``image``, closed however the command ends."""
    from emulator import api

    vol = api.open_volume(image, writable=writable, ignore_opened=ignore_opened)
    try:
        yield vol
    finally:
        vol.close()


def cmd_receive(args: argparse.Namespace) -> int:
    """Receive every data set of an XMIT file into an image; print any message file."""
    from emulator.interchange.xmit import receive

    def show(lines: list[str]) -> None:
        for line in lines:
            _out(line)

    with _opened(args.image, writable=True, ignore_opened=args.ignore_opened) as vol:
        infos = receive(args.file, vol, args.dsn, replace=args.replace, on_message=show)
        for info in infos:
            _out(
                f"{args.image}: received {info.dsname} (DSORG {info.dsorg} RECFM {info.recfm} "
                f"LRECL {info.lrecl} BLKSIZE {info.blksize}, {info.tracks} tracks)"
            )
    return EXIT_OK


def cmd_transmit(args: argparse.Namespace) -> int:
    """Write a PDS or sequential data set of an image as an XMIT file."""
    from emulator.interchange.xmit import transmit

    from_node, from_user = args.from_ or ("NODE", "USER")
    to_node, to_user = args.to or (from_node, from_user)
    with _opened(args.image, writable=False) as vol:
        transmit(
            vol,
            args.dsn,
            args.output,
            from_node=from_node,
            from_user=from_user,
            to_node=to_node,
            to_user=to_user,
            members=args.member or None,
            message=args.message or None,
        )
    _out(f"{args.output}: transmitted {args.dsn.upper()} from {args.image}")
    return EXIT_OK


def add_subcommands(add: Callable[[str, Callable, str], argparse.ArgumentParser]) -> None:
    """Register ``receive`` and ``transmit`` with dasd's ``add(name, func, help)``."""
    sp = add("receive", cmd_receive, "receive the data sets of a TSO XMIT file into an image")
    sp.add_argument("file", metavar="FILE.xmi")
    sp.add_argument("image")
    sp.add_argument(
        "--dsn", metavar="NAME", help="target data set name (default: the transmitted name)"
    )
    sp.add_argument(
        "--replace",
        action="store_true",
        help="write into an existing data set (a PDS gets the members, replacing same names)",
    )
    from emulator.cli.dasd import writer_opts

    writer_opts(sp)

    sp = add("transmit", cmd_transmit, "write a PDS or sequential data set as a TSO XMIT file")
    sp.add_argument("image")
    sp.add_argument("dsn")
    sp.add_argument("-o", "--output", required=True, metavar="FILE.xmi")
    sp.add_argument("--from", dest="from_", type=_node_user, metavar="NODE.USER", help="origin")
    sp.add_argument("--to", type=_node_user, metavar="NODE.USER", help="destination")
    sp.add_argument(
        "--member", action="append", metavar="NAME", help="send only this member (repeatable)"
    )
    sp.add_argument(
        "--message", action="append", metavar="TEXT", help="a message line (repeatable)"
    )


__all__ = ["add_subcommands", "cmd_receive", "cmd_transmit"]
