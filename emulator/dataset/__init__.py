"""Data set I/O: record formats (``records``) and blocks on tracks (``io``).

FORMATS.md section 7.  ``records`` is pure (bytes in, bytes out); ``io`` reads and
writes runs of CKD records through a volume (docs/internals.md "Data set I/O").
"""

from __future__ import annotations

from emulator.dataset.io import (
    Block,
    WriteResult,
    read_blocks,
    read_records,
    write_blocks,
    write_records,
)
from emulator.dataset.records import (
    block,
    deblock,
    lines_to_records,
    records_to_lines,
)

__all__ = [
    "Block",
    "WriteResult",
    "read_blocks",
    "read_records",
    "write_blocks",
    "write_records",
    "block",
    "deblock",
    "lines_to_records",
    "records_to_lines",
]
