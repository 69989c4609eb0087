"""PDS directory layouts (FORMATS.md 6).

A directory block is a CKD record with an 8-byte key (the last name in the block) and
256 data bytes: a halfword count of used bytes (including itself), then entries.
"""

from __future__ import annotations

import construct as cs

DIRBLK_KEYLEN = 8
DIRBLK_DATALEN = 256
END_NAME = b"\xff" * 8

#: Fixed 12-byte part of a directory entry; user data (2*(C & 31) bytes) follows.
DirEntry = cs.Struct(
    "pdsmembr" / cs.Bytes(8),
    "pdsttrp" / cs.Bytes(3),
    "pdsindc" / cs.Int8ub,
)
DIRENTRY_SIZE = 12

C_ALIAS = 0x80
C_TTRN_MASK = 0x60
C_TTRN_SHIFT = 5
C_USERLEN_MASK = 0x1F

#: ISPF statistics, standard 30-byte form (C & 31 = 15).
IspfStats = cs.Struct(
    "ispfvers" / cs.Int8ub,
    "ispfmod" / cs.Int8ub,
    "ispfflag" / cs.Int8ub,
    "ispfsecs" / cs.Int8ub,  # packed BCD
    "ispfcrdt" / cs.Bytes(4),  # century byte + packed YYDDDF
    "ispfchdt" / cs.Bytes(4),
    "ispfhour" / cs.Int8ub,  # packed BCD
    "ispfmin" / cs.Int8ub,  # packed BCD
    "ispfcurl" / cs.Int16ub,
    "ispfinil" / cs.Int16ub,
    "ispfmodl" / cs.Int16ub,
    "ispfuser" / cs.Bytes(8),  # user id, EBCDIC, blank padded
    "ispfrsv" / cs.Bytes(2),  # blanks
)
ISPF_SIZE = 30

#: Extended ISPF statistics (flag X'20', C & 31 = 20): line counts also as fullwords.
IspfStatsExtended = cs.Struct(
    *IspfStats.subcons[:-1],
    "ispfxcurl" / cs.Int32ub,
    "ispfxinil" / cs.Int32ub,
    "ispfxmodl" / cs.Int32ub,
)
ISPF_EXT_SIZE = 40
ISPF_FLAG_SCLM = 0x80
ISPF_FLAG_EXT = 0x20

__all__ = ["DirEntry", "IspfStats", "IspfStatsExtended"]
