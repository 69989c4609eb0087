"""The volume layer: VOL1, VTOC, DSCBs, allocation and free space (FORMATS.md 4, 5).

``Volume.open(path)`` / ``Volume.create(path, "3390", "VOL001")`` return a
:class:`Volume`; data sets are described by :class:`DatasetInfo` with absolute-track
:class:`Extent` lists.  See ``docs/internals.md`` "Volume" for the contract.
"""

from emulator.volume.dscb import (
    DatasetInfo,
    Extent,
    dsorg_text,
    dsorg_value,
    recfm_text,
    recfm_value,
    validate_dsname,
)
from emulator.volume.volume import Volume, validate_volser

__all__ = [
    "Volume",
    "DatasetInfo",
    "Extent",
    "recfm_text",
    "recfm_value",
    "dsorg_text",
    "dsorg_value",
    "validate_dsname",
    "validate_volser",
]
