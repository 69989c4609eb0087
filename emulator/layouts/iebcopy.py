"""IEBCOPY unload layouts (FORMATS.md 8.2 COPYR1, 8.3 COPYR2, 8.4 block prefix).

Offsets are those of the logical-record data (no BDW/SDW), as FORMATS.md 8.1 gives
them.  Field names follow Hercules ``dasdblks.h`` (COPYR1, COPYR2, DATABLK) and
IBM's "Header records" table.  All fields are big-endian.
"""

from __future__ import annotations

import construct as cs

#: COPYR1 eye-catcher at offset 1.
COPYR1_HDRID = b"\xca\x6d\x0f"
#: COPYR1 length: z/OS writes 56 bytes, MVS 3.8j IEBCOPY 52 (no DS1TRBAL, reserved).
COPYR1_SIZE = 56
COPYR1_OLD_SIZE = 52

#: COPYR1 byte 0 (unload flags): bits 0-1 the format, X'10' program objects inside,
#: X'01' the unloaded data set was a PDSE.
ULD_FORMAT_MASK = 0xC0
ULD_FORMAT_OLD = 0x00
ULD_FORMAT_PDSE = 0x40
ULD_FORMAT_BAD = 0x80
ULD_PROGRAM_OBJECTS = 0x10
ULD_FROM_PDSE = 0x01

#: DEVTYPE area of COPYR1 (offsets 16-35): the device the data set was unloaded from.
Devtype = cs.Struct(
    "ucbtype" / cs.Bytes(4),
    "maxblk" / cs.Int32ub,
    "cyls" / cs.Int16ub,
    "heads" / cs.Int16ub,
    "tracklen" / cs.Int16ub,
    "overhead" / cs.Bytes(2),
    "keyovhd" / cs.Int8ub,
    "devflags" / cs.Int8ub,
    "tolerance" / cs.Int16ub,
)
DEVTYPE_SIZE = 20

#: The first 52 bytes, common to both forms.
Copyr1Old = cs.Struct(
    "uldfmt" / cs.Int8ub,
    "hdrid" / cs.Bytes(3),
    "ds1dsorg" / cs.Int16ub,
    "ds1blkl" / cs.Int16ub,
    "ds1lrecl" / cs.Int16ub,
    "ds1recfm" / cs.Int8ub,
    "ds1keyl" / cs.Int8ub,
    "ds1optcd" / cs.Int8ub,
    "ds1smsfg" / cs.Int8ub,
    "uldblksz" / cs.Int16ub,
    "devtype" / Devtype,
    "hdrcount" / cs.Int16ub,  # number of header records; 0 means 2
    "resv1" / cs.Int8ub,
    "ds1refd" / cs.Bytes(3),
    "ds1scext" / cs.Bytes(3),
    "ds1scalo" / cs.Bytes(4),
    "ds1lstar" / cs.Bytes(3),
)

#: The 56-byte z/OS form.
Copyr1 = cs.Struct(
    *Copyr1Old.subcons,
    "ds1trbal" / cs.Int16ub,
    "resv2" / cs.Bytes(2),
)

#: One DEB extent entry (16 bytes).
DebExtent = cs.Struct(
    "mask" / cs.Int8ub,
    "ucbaddr" / cs.Bytes(3),
    "bin" / cs.Int16ub,
    "bcyl" / cs.Int16ub,
    "bhead" / cs.Int16ub,
    "ecyl" / cs.Int16ub,
    "ehead" / cs.Int16ub,
    "ntrk" / cs.Int16ub,
)
DEB_EXTENT_SIZE = 16
MAX_EXTENTS = 16

#: COPYR2: the last 16 bytes of the DEB basic section (byte 0 = number of extents, as
#: Hercules reads it) and 16 extent entries.
Copyr2 = cs.Struct(
    "debbasic" / cs.Bytes(16),
    "debxtent" / cs.Array(MAX_EXTENTS, DebExtent),
    "resv" / cs.Bytes(4),
)
COPYR2_SIZE = 276

#: The 12-byte prefix of every directory and member block: F, M, BB, CCHHR, KL, DL.
BlockPrefix = cs.Struct(
    "flags" / cs.Int8ub,
    "extent" / cs.Int8ub,
    "bin" / cs.Int16ub,
    "cyl" / cs.Int16ub,
    "head" / cs.Int16ub,
    "rec" / cs.Int8ub,
    "klen" / cs.Int8ub,
    "dlen" / cs.Int16ub,
)
PREFIX_SIZE = 12
#: A directory unit: prefix + 8-byte key + 256-byte block.
DIR_UNIT_SIZE = PREFIX_SIZE + 8 + 256

#: Prefix flag bits seen in PDSE unloads (FORMATS.md 8.7; SOURCES.md #7): X'08' on
#: directory units, X'80' on the unit that ends a member or the directory, X'04' on
#: the PDSE attribute records that follow a member's data.
PFX_PDSE_DIR = 0x08
PFX_END = 0x80
PFX_ATTR = 0x04

__all__ = [
    "Copyr1",
    "Copyr1Old",
    "Copyr2",
    "DebExtent",
    "Devtype",
    "BlockPrefix",
]
