"""Hercules CKD image layouts (FORMATS.md 1 and 2).

The Hercules file headers and tables are little-endian (``cdh_opts & X'02'`` flags a
big-endian CCKD file, handled by :func:`cdh_layout`); everything inside a track image
(home address, count fields) is big-endian like the real device.
"""

from __future__ import annotations

import construct as cs

DEVHDR_SIZE = 512
CDH_SIZE = 512
L1_POS = 1024  # CCKD_L1TAB_POS
L2_ENTRIES = 256

ID_PLAIN = (b"CKD_P370", b"CKD_P064")
ID_COMPRESSED = (b"CKD_C370", b"CKD_C064")
ID_SHADOW = (b"CKD_S370", b"CKD_S064")
ID_FBA = (b"FBA_C370", b"FBA_S370", b"FBA_C064", b"FBA_S064")

OPT_BIGEND = 0x02
OPT_NOFUDGE = 0x01
OPT_OPENRW = 0x40
OPT_OPENED = 0x80
OPT_SPERRS = 0x20

COMPRESS_NONE, COMPRESS_ZLIB, COMPRESS_BZIP2 = 0, 1, 2

#: 512-byte device header at the start of every CKD image file (each split piece too).
DeviceHeader = cs.Struct(
    "dh_devid" / cs.Bytes(8),
    "dh_heads" / cs.Int32ul,
    "dh_trksize" / cs.Int32ul,
    "dh_devtyp" / cs.Int8ub,
    "dh_fileseq" / cs.Int8ub,
    "dh_highcyl" / cs.Int16ul,
    "dh_serial" / cs.Bytes(12),
    "reserved" / cs.Bytes(480),
)


def _cdh32(i16, i32, cyls):
    return cs.Struct(
        "cdh_vrm" / cs.Bytes(3),
        "cdh_opts" / cs.Int8ub,
        "num_L1tab" / i32,
        "num_L2tab" / i32,
        "cdh_size" / i32,
        "cdh_used" / i32,
        "free_off" / i32,
        "free_total" / i32,
        "free_largest" / i32,
        "free_num" / i32,
        "free_imbed" / i32,
        "cdh_cyls" / cyls,
        "cdh_nullfmt" / cs.Int8ub,
        "cmp_algo" / cs.Int8ub,
        "cmp_parm" / i16,
        "reserved" / cs.Bytes(464),
    )


def _cdh64(i16, i32, i64, s64):
    return cs.Struct(
        "cdh_vrm" / cs.Bytes(3),
        "cdh_opts" / cs.Int8ub,
        "num_L1tab" / i32,
        "num_L2tab" / i32,
        "cdh_cyls" / cs.Int32ul,
        "cdh_size" / i64,
        "cdh_used" / i64,
        "free_off" / i64,
        "free_total" / i64,
        "free_largest" / i64,
        "free_num" / s64,
        "free_imbed" / i64,
        "cdh_nullfmt" / cs.Int8ub,
        "cmp_algo" / cs.Int8ub,
        "cmp_parm" / i16,
        "reserved" / cs.Bytes(436),
    )


#: Compressed device header at file offset 512: (32-bit, little/big), (64-bit, little/big).
#: In a big-endian file (cdh_opts X'02') every numeric field is big-endian except
#: cdh_cyls: Hercules keeps it as a byte array always stored little-endian
#: (STORE_LE_FW/FETCH_LE_FW; cckd_swapend_chdr leaves it alone).
CDH32_LE = _cdh32(cs.Int16sl, cs.Int32ul, cs.Int32ul)
CDH32_BE = _cdh32(cs.Int16sb, cs.Int32ub, cs.Int32ul)
CDH64_LE = _cdh64(cs.Int16sl, cs.Int32ul, cs.Int64ul, cs.Int64sl)
CDH64_BE = _cdh64(cs.Int16sb, cs.Int32ub, cs.Int64ub, cs.Int64sb)

L2ENT32_LE = cs.Struct("trkoff" / cs.Int32ul, "len" / cs.Int16ul, "size" / cs.Int16ul)
L2ENT32_BE = cs.Struct("trkoff" / cs.Int32ub, "len" / cs.Int16ub, "size" / cs.Int16ub)
L2ENT64_LE = cs.Struct(
    "trkoff" / cs.Int64ul, "len" / cs.Int16ul, "size" / cs.Int16ul, "pad" / cs.Int32ul
)
L2ENT64_BE = cs.Struct(
    "trkoff" / cs.Int64ub, "len" / cs.Int16ub, "size" / cs.Int16ub, "pad" / cs.Int32ub
)


#: Free-space entry (FORMATS.md 2.6): {offset of a free space (old chained form: of
#: the next one), its length}; entry 0 of the FREE_BLK form starts with FREE_MAGIC.
FREEBLK32_LE = cs.Struct("fb_offnxt" / cs.Int32ul, "fb_len" / cs.Int32ul)
FREEBLK32_BE = cs.Struct("fb_offnxt" / cs.Int32ub, "fb_len" / cs.Int32ub)
FREEBLK64_LE = cs.Struct("fb_offnxt" / cs.Int64ul, "fb_len" / cs.Int64ul)
FREEBLK64_BE = cs.Struct("fb_offnxt" / cs.Int64ub, "fb_len" / cs.Int64ub)
FREE_MAGIC = b"FREE_BLK"


def freeblk_layout(cckd64: bool, bigend: bool) -> cs.Struct:
    """The free-space entry declaration for this file's width and byte order."""
    if cckd64:
        return FREEBLK64_BE if bigend else FREEBLK64_LE
    return FREEBLK32_BE if bigend else FREEBLK32_LE


def cdh_layout(cckd64: bool, bigend: bool) -> cs.Struct:
    """The compressed-device-header declaration for this file's width and byte order."""
    if cckd64:
        return CDH64_BE if bigend else CDH64_LE
    return CDH32_BE if bigend else CDH32_LE


def l2_layout(cckd64: bool, bigend: bool) -> cs.Struct:
    if cckd64:
        return L2ENT64_BE if bigend else L2ENT64_LE
    return L2ENT32_BE if bigend else L2ENT32_LE


def l1_entry_size(cckd64: bool) -> int:
    return 8 if cckd64 else 4


#: Home address at the start of every track image: bin(1) CC(2) HH(2).
HomeAddress = cs.Struct("bin" / cs.Int8ub, "cyl" / cs.Int16ub, "head" / cs.Int16ub)
HA_SIZE = 5

#: Count field of every record (R0..Rn); all X'FF' marks the end of the track.
CountField = cs.Struct(
    "cyl" / cs.Int16ub,
    "head" / cs.Int16ub,
    "rec" / cs.Int8ub,
    "keylen" / cs.Int8ub,
    "datalen" / cs.Int16ub,
)
COUNT_SIZE = 8
EOT_MARKER = b"\xff" * 8

#: Header of a track image inside a compressed file: compression byte then CC HH.
CompressedTrackHeader = cs.Struct("comp" / cs.Int8ub, "cyl" / cs.Int16ub, "head" / cs.Int16ub)

__all__ = [
    "DeviceHeader",
    "CountField",
    "HomeAddress",
    "CompressedTrackHeader",
    "cdh_layout",
    "l2_layout",
    "l1_entry_size",
]
