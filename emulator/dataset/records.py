"""Record formats: blocks <-> logical records, records <-> text lines, bytes -> records.

FORMATS.md section 7 (7.1 RECFM byte, 7.2 layout of blocks, 7.4 carriage control);
IBM *DFSMS Using Data Sets* (record formats, segment descriptor word).  Everything
here is a pure function on bytes: the blocks are the data parts of CKD records
(keys, if any, travel separately in :mod:`emulator.dataset.io`).

Decisions where real data and the manuals leave room:

* **F / FB / FBS reading is lenient.**  A block whose length is not a multiple of
  LRECL yields its whole records and then one *short* record with the remainder,
  so no byte is lost (QSAM would report a wrong-length record; Hercules ``dasdseq``
  reads past the block).  RECFM=F (unblocked) returns each block as one record
  whatever its length.  Writing is strict: every F record must be exactly LRECL
  bytes unless the caller asks for padding.
* **V / VB / VS / VBS reading is strict.**  Every BDW, RDW and SDW is checked
  against the block it sits in; a bad one is a :class:`FormatError` naming the
  block number (1-based, in the order given) and the offset inside it.  LRECL is
  not enforced on input (data written under a smaller LRECL is still readable);
  it is enforced when blocking.
* **Spanned records** are reassembled from segment codes 00 (complete), 01 (first),
  11 (middle) and 10 (last); any other order is a FormatError, as is a record
  still open at the end of the data.  A *null segment* (SDW byte 2 bit X'80', used
  by BDAM) carries no data and is skipped.
* **U**: one record per block.
* **Byte streams** (:func:`split_bytes`) are cut the way Hercules ``dasdload`` SEQ cuts
  its input for F/FB (LRECL pieces, the last padded with X'00'); V gets LRECL-4 pieces,
  U BLKSIZE pieces.
* **A / M** (carriage control) change nothing here: the control byte stays the
  first byte of each record and the first character of each text line.

Block walking of V formats is plain Python (``struct.unpack_from`` per descriptor
word): it is correct first, and the per-record work is already a couple of slices.
FB deblocking, the bulk case, is one NumPy reinterpretation of the joined blocks.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable

import numpy as np

from emulator import codepage as cp
from emulator.errors import FormatError
from emulator.recfm import (
    LRECL_X,
    RECFM_A,
    RECFM_B,
    RECFM_F,
    RECFM_FORMAT,
    RECFM_M,
    RECFM_S,
    RECFM_T,
    RECFM_U,
    RECFM_V,
    recfm_text,
    recfm_value,
)

# RECFM bits, their text and LRECL=X are declared once, in emulator.recfm (FORMATS.md 7.1).

#: Largest block a data set may declare (32767 physical; 32760 is the API limit).
MAX_BLKSIZE = 32760

_HALF = struct.Struct(">H")
_DW = struct.Struct(">HBB")  # BDW / RDW / SDW: length, flags (SDW code), reserved

SEG_COMPLETE, SEG_FIRST, SEG_LAST, SEG_MIDDLE = 0, 1, 2, 3
_SEG_NULL = 0x80

#: ASA control characters (FORMATS.md 7.4), EBCDIC byte -> meaning.
ASA_CONTROL = {
    0x40: "space 1 line",
    0xF0: "space 2 lines",
    0x60: "space 3 lines",
    0x4E: "suppress space (overprint)",
    0xF1: "skip to channel 1 (new page)",
    **{0xF1 + n: f"skip to channel {n + 1}" for n in range(1, 9)},
    0xC1: "skip to channel 10",
    0xC2: "skip to channel 11",
    0xC3: "skip to channel 12",
}


def is_fixed(recfm: int) -> bool:
    return recfm & RECFM_FORMAT == RECFM_F


def is_variable(recfm: int) -> bool:
    return recfm & RECFM_FORMAT == RECFM_V


def is_undefined(recfm: int) -> bool:
    return recfm & RECFM_FORMAT == RECFM_U


def is_spanned(recfm: int) -> bool:
    return is_variable(recfm) and bool(recfm & RECFM_S)


def _where(where: str, place: str) -> str:
    return f"{where} {place}" if where else place


def _check_format(recfm: int, where: str) -> int:
    fmt = recfm & RECFM_FORMAT
    if fmt == 0:
        raise FormatError(f"RECFM X'{recfm:02X}' has no record format (F, V or U)", where=where)
    return fmt


# -- deblocking --------------------------------------------------------------------
def deblock(recfm: int, lrecl: int, blocks: Iterable[bytes], where: str = "") -> list[bytes]:
    """Split data blocks into logical records (V formats: data without the RDW)."""
    fmt = _check_format(recfm, where)
    if fmt == RECFM_F:
        if recfm & RECFM_B:
            return _deblock_fixed(lrecl, blocks, where)
        return [bytes(b) for b in blocks]
    if fmt == RECFM_U:
        return [bytes(b) for b in blocks]
    if recfm & RECFM_S:
        return _deblock_spanned(blocks, where)
    return _deblock_variable(blocks, where)


def _deblock_fixed(lrecl: int, blocks: Iterable[bytes], where: str) -> list[bytes]:
    if lrecl <= 0:
        raise FormatError(f"LRECL {lrecl} for blocked fixed-length records", where=where)
    blocks = [bytes(b) for b in blocks]
    if all(len(b) % lrecl == 0 for b in blocks):
        # The bulk case: one reinterpretation of the joined bytes as LRECL-sized items.
        return np.frombuffer(b"".join(blocks), dtype=f"V{lrecl}").tolist()
    out: list[bytes] = []
    for block in blocks:
        whole = len(block) - len(block) % lrecl
        out.extend(block[i : i + lrecl] for i in range(0, whole, lrecl))
        if whole < len(block):
            out.append(block[whole:])  # lenient: the short remainder is a record
    return out


def fixed_array(lrecl: int, blocks: Iterable[bytes], where: str = "") -> np.ndarray:
    """FB blocks as one ``(n, lrecl)`` uint8 array (for bulk consumers: hashing, search).

    Every block must be a multiple of LRECL here, since a ragged record has no row.
    """
    if lrecl <= 0:
        raise FormatError(f"LRECL {lrecl} for fixed-length records", where=where)
    blocks = [bytes(b) for b in blocks]
    for n, block in enumerate(blocks, 1):
        if len(block) % lrecl:
            raise FormatError(
                f"block {n}: length {len(block)} is not a multiple of LRECL {lrecl}", where=where
            )
    return np.frombuffer(b"".join(blocks), dtype=np.uint8).reshape(-1, lrecl)


def _bdw_length(block: bytes, n: int, where: str) -> int:
    """Length of the block from its BDW, checked against the block itself."""
    if len(block) < 4:
        raise FormatError(
            f"block {n}: {len(block)} bytes, too short for a block descriptor word",
            where=where,
        )
    if block[0] & 0x80:
        # Large-block BDW (tape, LBI): 31-bit length in all four bytes.
        length = int.from_bytes(block[:4], "big") & 0x7FFFFFFF
    else:
        length, b2, b3 = _DW.unpack_from(block, 0)
        if b2 or b3:
            raise FormatError(
                f"block {n} offset 0: BDW X'{block[:4].hex().upper()}' has non-zero bytes 2-3",
                where=where,
            )
    if length != len(block):
        raise FormatError(
            f"block {n} offset 0: BDW length {length} but the block is {len(block)} bytes",
            where=where,
        )
    return length


def _descriptors(blocks: Iterable[bytes], what: str, where: str):
    """Walk the BDW-framed blocks of a V/VS data set, yielding
    ``(n, pos, length, byte 2, byte 3, block)`` for every RDW/SDW (``what``), each
    checked to lie inside its block."""
    for n, raw in enumerate(blocks, 1):
        block = bytes(raw)
        end = _bdw_length(block, n, where)
        pos = 4
        if pos == end:
            noun = "records" if what == "RDW" else "segments"
            raise FormatError(f"block {n}: BDW says 4 bytes, a block with no {noun}", where=where)
        while pos < end:
            if pos + 4 > end:
                raise FormatError(
                    f"block {n} offset {pos}: {end - pos} bytes left, too short for an {what}",
                    where=where,
                )
            length, b2, b3 = _DW.unpack_from(block, pos)
            if length < 4 or pos + length > end:
                raise FormatError(
                    f"block {n} offset {pos}: {what} length {length} "
                    f"(the block has {end - pos} bytes from here)",
                    where=where,
                )
            yield n, pos, length, b2, b3, block
            pos += length


def _deblock_variable(blocks: Iterable[bytes], where: str) -> list[bytes]:
    out: list[bytes] = []
    for n, pos, length, b2, b3, block in _descriptors(blocks, "RDW", where):
        if b2 or b3:
            raise FormatError(
                f"block {n} offset {pos}: RDW X'{block[pos : pos + 4].hex().upper()}' has "
                "non-zero bytes 2-3 (a segment descriptor in a non-spanned data set?)",
                where=where,
            )
        out.append(block[pos + 4 : pos + length])
    return out


def _deblock_spanned(blocks: Iterable[bytes], where: str) -> list[bytes]:
    out: list[bytes] = []
    parts: list[bytes] | None = None  # segments of the record being reassembled
    started = ""  # where that record started, for the error message
    for n, pos, length, flags, b3, block in _descriptors(blocks, "SDW", where):
        if b3 or flags & 0x7C:
            raise FormatError(
                f"block {n} offset {pos}: SDW X'{block[pos : pos + 4].hex().upper()}' "
                "has reserved bits set",
                where=where,
            )
        data = block[pos + 4 : pos + length]
        here = f"block {n} offset {pos}"
        if flags & _SEG_NULL:
            continue
        code = flags & 0x03
        if code in (SEG_COMPLETE, SEG_FIRST):
            if parts is not None:
                raise FormatError(
                    f"{here}: a new record starts while the one begun at {started} "
                    "has no last segment",
                    where=where,
                )
            if code == SEG_COMPLETE:
                out.append(data)
            else:
                parts, started = [data], here
        else:
            if parts is None:
                kind = "last" if code == SEG_LAST else "middle"
                raise FormatError(f"{here}: {kind} segment without a first segment", where=where)
            parts.append(data)
            if code == SEG_LAST:
                out.append(b"".join(parts))
                parts = None
    if parts is not None:
        raise FormatError(
            f"spanned record begun at {started} has no last segment (data ends)", where=where
        )
    return out


# -- blocking ----------------------------------------------------------------------
def block(
    recfm: int,
    lrecl: int,
    blksize: int,
    records: Iterable[bytes],
    pad: bytes | None = None,
) -> list[bytes]:
    """Build data blocks from logical records (the inverse of :func:`deblock`).

    F/FB/FBS records must be exactly LRECL bytes; with ``pad`` (one byte, normally
    X'40') shorter ones are padded.  V formats get their BDW/RDW/SDWs here.  Errors
    name the record number (1-based).
    """
    fmt = _check_format(recfm, "")
    if not 0 < blksize <= 0xFFFF:
        raise FormatError(f"BLKSIZE {blksize} out of range 1..65535")
    if fmt == RECFM_F:
        return _block_fixed(recfm, lrecl, blksize, records, pad)
    if fmt == RECFM_U:
        out = []
        for n, rec in enumerate(records, 1):
            if not rec:
                raise FormatError(f"record {n}: an empty U record cannot be written (DL 0 is EOF)")
            if len(rec) > blksize:
                raise FormatError(f"record {n}: {len(rec)} bytes exceed BLKSIZE {blksize}")
            out.append(bytes(rec))
        return out
    if recfm & RECFM_S:
        return _block_spanned(recfm, lrecl, blksize, records)
    return _block_variable(recfm, lrecl, blksize, records)


def _block_fixed(
    recfm: int, lrecl: int, blksize: int, records: Iterable[bytes], pad: bytes | None
) -> list[bytes]:
    if lrecl <= 0:
        raise FormatError(f"LRECL {lrecl} for fixed-length records")
    if pad is not None and len(pad) != 1:
        raise FormatError(f"pad must be one byte, not {len(pad)}")
    per_block = blksize // lrecl
    if per_block < 1:
        raise FormatError(f"BLKSIZE {blksize} is smaller than LRECL {lrecl}")
    if not recfm & RECFM_B:  # F and FS (standard, unblocked): one record a block
        per_block = 1
    recs: list[bytes] = []
    for n, rec in enumerate(records, 1):
        if len(rec) != lrecl:
            if pad is None or len(rec) > lrecl:
                raise FormatError(f"record {n}: {len(rec)} bytes, LRECL is {lrecl}")
            rec = bytes(rec) + pad * (lrecl - len(rec))
        recs.append(bytes(rec))
    if per_block == 1:
        return recs
    step = per_block * lrecl
    joined = b"".join(recs)
    return [joined[i : i + step] for i in range(0, len(joined), step)]


def _check_vlen(n: int, size: int, lrecl: int, limit: int, what: str) -> None:
    """A variable record of ``size`` bytes (with its RDW) must fit LRECL and the block."""
    if lrecl and lrecl != LRECL_X and size > lrecl:
        raise FormatError(f"record {n}: {size - 4} bytes + RDW exceed LRECL {lrecl}")
    if size > limit:
        raise FormatError(f"record {n}: {size - 4} bytes + RDW + BDW exceed {what}")


def _block_variable(recfm: int, lrecl: int, blksize: int, records: Iterable[bytes]) -> list[bytes]:
    if blksize < 8:
        raise FormatError(f"BLKSIZE {blksize} cannot hold a BDW and an RDW")
    blocked = bool(recfm & RECFM_B)
    out: list[bytes] = []
    parts: list[bytes] = []
    used = 4
    for n, rec in enumerate(records, 1):
        size = len(rec) + 4
        _check_vlen(n, size, lrecl, blksize - 4, f"BLKSIZE {blksize}")
        if parts and (not blocked or used + size > blksize):
            out.append(_HALF.pack(used) + b"\0\0" + b"".join(parts))
            parts, used = [], 4
        parts.append(_HALF.pack(size) + b"\0\0" + bytes(rec))
        used += size
    if parts:
        out.append(_HALF.pack(used) + b"\0\0" + b"".join(parts))
    return out


def _block_spanned(recfm: int, lrecl: int, blksize: int, records: Iterable[bytes]) -> list[bytes]:
    if blksize < 9:
        raise FormatError(f"BLKSIZE {blksize} cannot hold a BDW and an SDW with data")
    blocked = bool(recfm & RECFM_B)
    out: list[bytes] = []
    parts: list[bytes] = []
    used = 4

    def flush() -> None:
        nonlocal parts, used
        if parts:
            out.append(_HALF.pack(used) + b"\0\0" + b"".join(parts))
        parts, used = [], 4

    for n, rec in enumerate(records, 1):
        rec = bytes(rec)
        if lrecl and lrecl != LRECL_X and len(rec) + 4 > lrecl:
            raise FormatError(f"record {n}: {len(rec)} bytes + RDW exceed LRECL {lrecl}")
        pos = 0
        first = True
        while True:
            room = blksize - used - 4  # data bytes a segment could carry in this block
            rest = len(rec) - pos
            # A segment carries at least one data byte (an empty record: just the SDW);
            # VS (unblocked) puts one segment in each block.
            if parts and (not blocked or room < min(rest, 1)):
                flush()
                continue
            take = min(rest, room)
            last = take == rest
            if first:
                code = SEG_COMPLETE if last else SEG_FIRST
            else:
                code = SEG_LAST if last else SEG_MIDDLE
            parts.append(_DW.pack(take + 4, code, 0) + rec[pos : pos + take])
            used += take + 4
            pos += take
            first = False
            if last:
                break
            flush()  # the block is full: the record goes on in the next one
    flush()
    return out


# -- byte streams ------------------------------------------------------------------
#: Data bytes per record when a byte stream is cut for an LRECL=X data set: the most a
#: record may carry under a numeric LRECL (32756 with its RDW).
LRECL_X_PIECE = 32752


def split_bytes(recfm: int, lrecl: int, blksize: int, data: bytes) -> list[bytes]:
    """Cut a byte stream into logical records for a data set (the inverse of joining them).

    * F, FB, FBS: LRECL-byte records, the last padded with X'00' -- what Hercules
      ``dasdload`` SEQ does with its input file.
    * V, VB: records of LRECL-4 data bytes (the RDW is added by :func:`block`), and never
      more than one block holds (BLKSIZE-8) when not spanned; VS/VBS with LRECL=X:
      pieces of 32752 bytes.
    * U: BLKSIZE-byte records (one block each).

    Only the last record may be short; no data gives no records.
    """
    fmt = _check_format(recfm, "")
    data = bytes(data)
    if fmt == RECFM_F:
        size = lrecl
        if size <= 0:
            raise FormatError(f"LRECL {lrecl}: cannot cut data into fixed-length records")
        if len(data) % size:
            data += bytes(size - len(data) % size)
    elif fmt == RECFM_V:
        size = LRECL_X_PIECE if lrecl == LRECL_X else lrecl - 4
        if not recfm & RECFM_S:
            size = min(size, blksize - 8)
        if size <= 0:
            raise FormatError(
                f"RECFM {recfm_text(recfm)} LRECL {lrecl} BLKSIZE {blksize} holds no data bytes"
            )
    else:
        size = blksize
        if size <= 0:
            raise FormatError(f"BLKSIZE {blksize}: cannot cut data into undefined-length records")
    return [data[i : i + size] for i in range(0, len(data), size)]


# -- text --------------------------------------------------------------------------
def records_to_lines(
    records: Iterable[bytes], codepage: str | int = cp.DEFAULT, recfm: int | None = None
) -> list[str]:
    """Decode records to text lines.

    Trailing blanks are padding in fixed-length records and are stripped when
    ``recfm`` is None or fixed; V and U records keep them.  A carriage-control byte
    (RECFM ..A/..M) stays the first character.
    """
    strip = recfm is None or is_fixed(recfm)
    name = cp.codec_name(codepage)
    if strip:
        return [bytes(r).decode(name).rstrip(" ") for r in records]
    return [bytes(r).decode(name) for r in records]


def lines_to_records(
    lines: Iterable[str], recfm: int, lrecl: int, codepage: str | int = cp.DEFAULT
) -> list[bytes]:
    """Encode text lines as records: F pads with X'40' to LRECL; V and U do not.

    A line too long for LRECL (V: LRECL - 4 data bytes) is a FormatError naming the
    line number; so is a character the code page lacks.  BDW/RDWs are added by
    :func:`block`.
    """
    fmt = _check_format(recfm, "")
    fixed = fmt == RECFM_F
    if fixed and lrecl <= 0:
        raise FormatError(f"LRECL {lrecl} for fixed-length records")
    if fmt == RECFM_V and lrecl and lrecl != LRECL_X:
        limit = lrecl - 4
    elif fixed:
        limit = lrecl
    else:
        limit = None
    out: list[bytes] = []
    for n, line in enumerate(lines, 1):
        data = cp.encode(line, codepage, where=f"line {n}")
        if limit is not None and len(data) > limit:
            raise FormatError(
                f"{len(data)} bytes, longer than the {limit} a record can hold",
                where=f"line {n}",
            )
        if fixed and len(data) < lrecl:
            data += b"\x40" * (lrecl - len(data))
        out.append(data)
    return out


__all__ = [
    "RECFM_F",
    "RECFM_V",
    "RECFM_U",
    "RECFM_FORMAT",
    "RECFM_T",
    "RECFM_B",
    "RECFM_S",
    "RECFM_A",
    "RECFM_M",
    "LRECL_X",
    "MAX_BLKSIZE",
    "ASA_CONTROL",
    "recfm_text",
    "recfm_value",
    "is_fixed",
    "is_variable",
    "is_undefined",
    "is_spanned",
    "deblock",
    "block",
    "fixed_array",
    "split_bytes",
    "records_to_lines",
    "lines_to_records",
]
