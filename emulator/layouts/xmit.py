"""TSO XMIT / NETDATA layouts (FORMATS.md 9.1 segments, 9.2 control records, 9.3 text units).

IBM *z/OS TSO/E Customization*, "Format of transmitted data" (NETDATA).  A NETDATA
stream is a run of **segments**: a length byte (counting itself and the flag byte) and
a flag byte, then up to 253 data bytes.  Segments reassemble into logical records; a
control record starts with its 6-byte EBCDIC name (INMR01 ... INMR07), INMR02 adds a
4-byte file number, and text units follow.  All numbers are big-endian.
"""

from __future__ import annotations

import construct as cs

#: Segment header: length (2..255, including these two bytes) and flags.
SegmentHeader = cs.Struct(
    "seglen" / cs.Int8ub,
    "segflags" / cs.Int8ub,
)
SEGMENT_HEADER_SIZE = 2
SEGMENT_MAX = 255
SEGMENT_DATA_MAX = SEGMENT_MAX - SEGMENT_HEADER_SIZE  # 253

#: Segment flags.
SEG_FIRST = 0x80
SEG_LAST = 0x40
SEG_CONTROL = 0x20
SEG_RECNUM = 0x10  # the segment carries the number of the next record, not data
SEG_RESERVED = 0x0F

#: Text unit header (key, number of values); each value is a 2-byte length and data.
TextUnitHeader = cs.Struct(
    "tukey" / cs.Int16ub,
    "tunum" / cs.Int16ub,
)
TEXT_UNIT_HEADER_SIZE = 4
TextUnitLength = cs.Struct("tulen" / cs.Int16ub)
TEXT_UNIT_LENGTH_SIZE = 2

#: Control record name (EBCDIC), and the file number INMR02 carries after it.
CONTROL_NAME_SIZE = 6
Inmr02Prefix = cs.Struct(
    "inmrname" / cs.Bytes(CONTROL_NAME_SIZE),
    "inmfilen" / cs.Int32ub,
)
INMR02_PREFIX_SIZE = 10

CONTROL_RECORDS = ("INMR01", "INMR02", "INMR03", "INMR04", "INMR06", "INMR07")

#: Text-unit keys: key -> (name, kind).  Kinds: "name" (EBCDIC, one value),
#: "names" (EBCDIC, one value per item: INMDSNAM qualifiers, INMMEMBR), "number"
#: (big-endian unsigned, 1-8 bytes), "date" (EBCDIC digits YYYYMMDDHHMMSS...),
#: "flag" (no values needed), "bytes" (kept as they are).
TEXT_UNITS: dict[int, tuple[str, str]] = {
    0x0001: ("INMDDNAM", "name"),
    0x0002: ("INMDSNAM", "names"),
    0x0003: ("INMMEMBR", "names"),
    0x000B: ("INMSECND", "number"),
    0x000C: ("INMDIR", "number"),
    0x0022: ("INMEXPDT", "date"),
    0x0028: ("INMTERM", "flag"),
    0x0030: ("INMBLKSZ", "number"),
    0x003C: ("INMDSORG", "number"),
    0x0042: ("INMLRECL", "number"),
    0x0049: ("INMRECFM", "number"),
    0x1001: ("INMTNODE", "name"),
    0x1002: ("INMTUID", "name"),
    0x1011: ("INMFNODE", "name"),
    0x1012: ("INMFUID", "name"),
    0x1020: ("INMLREF", "date"),
    0x1021: ("INMLCHG", "date"),
    0x1022: ("INMCREAT", "date"),
    0x1023: ("INMFVERS", "number"),
    0x1024: ("INMFTIME", "date"),
    0x1025: ("INMTTIME", "date"),
    0x1026: ("INMFACK", "name"),
    0x1027: ("INMERRCD", "name"),
    0x1028: ("INMUTILN", "name"),
    0x1029: ("INMUSERP", "name"),
    0x102A: ("INMRECCT", "number"),
    0x102C: ("INMSIZE", "number"),
    0x102D: ("INMFFM", "name"),
    0x102F: ("INMNUMF", "number"),
    0x8012: ("INMTYPE", "number"),
}
TEXT_UNIT_KEYS: dict[str, int] = {name: key for key, (name, _) in TEXT_UNITS.items()}
#: Numbers longer than this are not numbers (FORMATS.md 9.3: 1-8 bytes).
NUMBER_MAX = 8

#: INMDSORG values (the DS1DSORG bit layout).
INMDSORG_PS = 0x4000
INMDSORG_PO = 0x0200
INMDSORG_VSAM = 0x0008

#: INMRECFM (2 bytes): the high byte is the DCB RECFM byte (F X'80', V X'40', U X'C0',
#: T X'20', B X'10', S X'08', A X'04', M X'02'); the low byte says how the records
#: travel.
INMRECFM_SHORT_VBS = 0x0001  # shortened VBS transmission format (INMR03)
INMRECFM_NO_RDW = 0x0002  # variable records without their 4-byte RDW
INMRECFM_PACKED = 0x0004  # blanks removed
INMRECFM_COMPRESSED = 0x0008  # Huffman compressed
INMRECFM_DATA_SET = 0x0001 | 0x0002  # low-byte bits a receiver handles

#: INMTYPE (1 byte; FORMATS.md 9.3, flag values unconfirmed).
INMTYPE_PDSE = 0x80
INMTYPE_PROGRAM_LIBRARY = 0x40
INMTYPE_EXTENDED = 0x04
INMTYPE_LARGE = 0x01

#: INMUTILN values.
UTIL_INMCOPY = "INMCOPY"
UTIL_IEBCOPY = "IEBCOPY"
UTIL_AMSCIPHR = "AMSCIPHR"

#: The fixed record length of the file (INMR01 INMLRECL), and the pad of the last one.
XMIT_LRECL = 80
PAD_BYTE = 0x40

__all__ = [
    "SegmentHeader",
    "TextUnitHeader",
    "TextUnitLength",
    "Inmr02Prefix",
    "TEXT_UNITS",
    "TEXT_UNIT_KEYS",
]
