"""Partitioned data sets: directory entries and ISPF statistics (``directory``,
``ispf``) and members on a volume (``pds``); FORMATS.md section 6."""

from __future__ import annotations

from emulator.pds.directory import DirEntry, build_blocks, check, nobdb, parse_blocks
from emulator.pds.ispf import IspfStats
from emulator.pds.pds import Directory, Pds, resolve_aliases

__all__ = [
    "DirEntry",
    "Directory",
    "IspfStats",
    "Pds",
    "build_blocks",
    "check",
    "nobdb",
    "parse_blocks",
    "resolve_aliases",
]
