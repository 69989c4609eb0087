"""The error contract every command line of the project shares (dasd, iebcopy, ssm).

``run(prog, build_parser, argv, locate=None)`` parses the arguments and calls the
subcommand's function (``args.func``).  What the user sees:

* an :class:`~emulator.errors.EmulatorError`: one line ``prog: message`` on stderr and
  exit code 2 (``locate(args)`` may name the file the message lacks);
* an unexpected ``OSError`` (disk full, an unwritable output file): one line, exit 2;
* any other exception is a bug: one line asking for ``--traceback``, exit 2;
* Ctrl-C: exit 130; a reader that went away (``| head``): exit 0, quietly.

The hidden ``--traceback`` flag re-raises instead, for developers.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

from emulator.errors import EmulatorError

EXIT_OK, EXIT_ERROR, EXIT_INTERRUPTED = 0, 2, 130


def err(text: str) -> None:
    """One line on stderr (newlines inside the text are folded)."""
    try:
        sys.stderr.write(text.replace("\n", " ") + "\n")
        sys.stderr.flush()
    except OSError:
        pass


def run(
    prog: str,
    build_parser: Callable[[], argparse.ArgumentParser],
    argv: Sequence[str] | None,
    locate: Callable[[argparse.Namespace, EmulatorError], None] | None = None,
) -> int:
    """Run one command; returns its exit code (module docstring)."""
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
        if locate is not None:
            locate(args, exc)
        err(f"{prog}: {exc}")
        return EXIT_ERROR
    except KeyboardInterrupt:
        if traceback:
            raise
        err(f"{prog}: interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away: stop quietly, and point stdout at /dev/null so the
        # interpreter's final flush does not complain again.
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return EXIT_OK
    except OSError as exc:
        # The library turns expected I/O problems into EmulatorError; this is the net
        # for the rest (disk full, permissions on an output file).
        if traceback:
            raise
        where = f"{os.path.basename(exc.filename)}: " if exc.filename else ""
        err(f"{prog}: {where}{exc.strerror or exc}")
        return EXIT_ERROR
    except Exception as exc:  # noqa: BLE001 - a bug: one line for users, not a traceback
        if traceback:
            raise
        err(f"{prog}: internal error ({type(exc).__name__}: {exc}); rerun with --traceback")
        return EXIT_ERROR
