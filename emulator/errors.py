"""The emulator's error hierarchy.

Every error carries the file (``path``) and the place inside it (``where``: volser,
CCHHR, data set, member, offset).  ``str(exc)`` is the one line a user sees, e.g.
``work.cckd: MVSRES 0/1/3: SYS1.PARMLIB F1 DSCB: extent 2 ends past cylinder 1112``.
The CLI maps every ``EmulatorError`` to that line on stderr and exit code 2.
"""

from __future__ import annotations

import os


class EmulatorError(Exception):
    """Root of every error raised on purpose by the emulator."""

    def __init__(self, message: str, path: str | os.PathLike | None = None, where: str = ""):
        self.message = message
        self.path = os.fspath(path) if path is not None else None
        self.where = where
        super().__init__(self.__str__())

    def __str__(self) -> str:
        parts = [p for p in (self.path and os.path.basename(self.path), self.where) if p]
        parts.append(self.message)
        return ": ".join(parts)

    def located(self, path: str | os.PathLike | None = None, where: str = "") -> EmulatorError:
        """Fill in the file and place if a lower layer did not know them; returns self."""
        if self.path is None and path is not None:
            self.path = os.fspath(path)
        if where and not self.where:
            self.where = where
        elif where and where not in self.where:
            self.where = f"{where} {self.where}"
        self.args = (self.__str__(),)
        return self


class FormatError(EmulatorError, ValueError):
    """Raised when bytes on disk (or in an input file) do not follow the format."""


class SpaceError(EmulatorError):
    """Raised when a volume, data set, directory or track has no room for a write."""


class NotFoundError(EmulatorError, LookupError):
    """Raised when a volume, data set or member named by the caller does not exist."""


class ConflictError(EmulatorError):
    """Raised when a write would clash with what is there (name exists, image locked,
    read-only image, indexed VTOC, image changed under us)."""


class IntegrityError(EmulatorError):
    """Raised when a digest, journal or consistency check fails."""


class UnsupportedError(EmulatorError):
    """Raised for valid input that this emulator does not handle (shadow files, PDSE)."""


__all__ = [
    "EmulatorError",
    "FormatError",
    "SpaceError",
    "NotFoundError",
    "ConflictError",
    "IntegrityError",
    "UnsupportedError",
]
