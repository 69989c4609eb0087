"""Emulated tape files (AWS, HET) and IBM standard tape labels (docs/tape.md).

FORMATS.md has no tape section; docs/tape.md describes the format and its sources:
Hercules ``hetlib.h`` (chunk header, flag bits, limits) and ``sllib.h`` (label
layouts, field names used here in lower case).

A tape file is a sequence of *chunks*, each a 6-byte header and ``clen`` data bytes.
The header's lengths are little-endian (the only little-endian structure in this
package besides the Hercules DASD headers).  One tape block is one or more chunks:
the first carries BOR (X'80'), the last EOR (X'20').  A tape mark is a chunk with
flag X'40' and no data.  HET adds a compression method in the low two bits of
``flags1`` (1 zlib, 2 bzip2); the data of every chunk of a block is then one
compressed stream, cut into chunks.  Bus-Tech's zlib variant sets ``flags2`` X'80'.

Standard labels are 80-byte EBCDIC blocks.  Every field is character data (numbers
are zoned decimal digits), so each is declared as ``Bytes`` and decoded by the reader.
"""

from __future__ import annotations

import construct as cs

# -- chunk header (hetlib.h HETHDR; AWS uses the same 6 bytes) --------------------------

#: One chunk header: current and previous chunk data lengths, two flag bytes.
ChunkHeader = cs.Struct(
    "clen" / cs.Int16ul,
    "plen" / cs.Int16ul,
    "flags1" / cs.Int8ub,
    "flags2" / cs.Int8ub,
)
CHUNK_HEADER_SIZE = 6

FLAGS1_BOR = 0x80  # first chunk of a block (AWS "new record")
FLAGS1_TAPEMARK = 0x40
FLAGS1_EOR = 0x20  # last chunk of a block (AWS "end of record")
FLAGS1_COMPRESS = 0x03  # HET compression method mask
FLAGS1_ZLIB = 0x01
FLAGS1_BZLIB = 0x02
#: Bits no Hercules version defines; a chunk carrying them is not one we understand.
FLAGS1_UNDEFINED = 0x1C

FLAGS2_ZLIB_BUSTECH = 0x80  # Bus-Tech zlib; only this bit of flags2 is defined
FLAGS2_UNDEFINED = 0x7F

#: Largest chunk (the lengths are 16-bit) and largest block this reader accepts
#: (decompressed): standard-label tapes written through QSAM/BSAM stay below 65536.
MAX_CHUNK = 65535
MAX_BLOCK = 65535

# -- IBM standard labels (sllib.h SLLABEL) ----------------------------------------------

LABEL_SIZE = 80

#: VOL1: volume label, first block of a standard-label tape.
Vol1 = cs.Struct(
    "labid" / cs.Bytes(4),  # 'VOL1'
    "volser" / cs.Bytes(6),
    "access" / cs.Bytes(1),
    "vtoc" / cs.Bytes(5),  # DASD only; blank on tape
    "rsvd1" / cs.Bytes(25),
    "owner" / cs.Bytes(10),
    "rsvd2" / cs.Bytes(29),
)

#: HDR1 / EOF1 / EOV1: data set label 1.
Ds1 = cs.Struct(
    "labid" / cs.Bytes(4),  # 'HDR1', 'EOF1', 'EOV1'
    "dsid" / cs.Bytes(17),  # the last 17 characters of the data set name
    "volser" / cs.Bytes(6),  # first volume of the data set
    "volseq" / cs.Bytes(4),
    "dsseq" / cs.Bytes(4),  # data set (file) sequence number on the tape
    "genno" / cs.Bytes(4),
    "verno" / cs.Bytes(2),
    "crtdt" / cs.Bytes(6),  # cyyddd: c blank 19xx, '0' 20xx, '1' 21xx
    "expdt" / cs.Bytes(6),
    "dssec" / cs.Bytes(1),
    "blklo" / cs.Bytes(6),  # block count (trailer labels), low 6 digits
    "syscd" / cs.Bytes(13),
    "rsvd1" / cs.Bytes(3),
    "blkhi" / cs.Bytes(4),  # block count, high-order digits (z/OS)
)

#: HDR2 / EOF2 / EOV2: data set label 2 (the DCB).
Ds2 = cs.Struct(
    "labid" / cs.Bytes(4),
    "recfm" / cs.Bytes(1),  # F, V, U (D on ASCII tapes)
    "blksize" / cs.Bytes(5),
    "lrecl" / cs.Bytes(5),
    "den" / cs.Bytes(1),
    "dspos" / cs.Bytes(1),
    "jobid" / cs.Bytes(17),  # 'JOBNAME /STEPNAME'
    "trtch" / cs.Bytes(2),
    "ctrl" / cs.Bytes(1),  # A (ASA) or M (machine) control characters
    "rsvd1" / cs.Bytes(1),
    "blkattr" / cs.Bytes(1),  # B blocked, S spanned (or standard), R both
    "rsvd2" / cs.Bytes(2),
    "devser" / cs.Bytes(6),
    "ckptid" / cs.Bytes(1),
    "rsvd3" / cs.Bytes(22),
    "lblkln" / cs.Bytes(10),  # large block length (blocks over 32760)
)

#: Label identifiers as EBCDIC bytes (cp037/cp1047 agree on letters and digits).
LABID_VOL1 = b"\xe5\xd6\xd3\xf1"
#: 'VOL1' in ASCII: an ISO/ANSI labelled tape, which this reader does not handle.
LABID_VOL1_ASCII = b"VOL1"

__all__ = [
    "ChunkHeader",
    "Vol1",
    "Ds1",
    "Ds2",
    "CHUNK_HEADER_SIZE",
    "LABEL_SIZE",
    "MAX_BLOCK",
    "MAX_CHUNK",
]
