"""TSO XMIT (NETDATA) files: read them, receive them into a volume, transmit from one.

FORMATS.md 9 (9.1 segments, 9.2 control records, 9.3 text units, 9.4 data records,
9.5 writing); IBM *z/OS TSO/E Customization*, "Format of transmitted data"; Hercules
``dasdload`` (``read_xmit_rec``, ``process_inmr02``) for what the oracle accepts.  The
PDS content of a transmission is an IEBCOPY unload (FORMATS.md 8), read and written by
:mod:`emulator.interchange.unload`.

Reading (:func:`read_xmit`) is strict about framing and lenient about content:

* segments are read back to back, ignoring the 80-byte records of the file; a length
  byte below 2, reserved flag bits (X'0F'), a record that does not begin with a first
  segment or one that begins inside another record, a control flag that changes inside
  a record and a segment running past the end of the file are FormatErrors naming the
  file and the byte offset;
* reading stops at INMR06; whatever follows it (the X'40' padding of the last 80-byte
  record, or anything else) is ignored, as Hercules ignores it;
* a segment with flag X'10' carries the number of the next record, not data, and is
  skipped;
* the k-th INMR03 starts the data of the k-th file announced by INMR02 records (the
  order ``dasdload`` assumes);
* sequential data arrives as logical records, but producers differ: V records without
  their RDW (INMRECFM low byte X'02') are taken as they are, V records with an RDW lose
  it (after it is checked), and F records longer than LRECL (whole blocks, as the MVS
  3.8j sample sends them) are cut into LRECL pieces.

Receiving (:func:`receive`) writes every data set of the transmission in one volume
transaction; message files (INMTERM) are shown, not stored.  Transmitting
(:func:`transmit`) writes what z/OS TRANSMIT writes (FORMATS.md 9.5), so Hercules
``dasdload`` XMIT/XMSEQ loads it; the bytes depend only on the data set and ``now``.
"""

from __future__ import annotations

import datetime as _dt
import math
import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from emulator import codepage as cp
from emulator.errors import (
    ConflictError,
    EmulatorError,
    FormatError,
    NotFoundError,
    UnsupportedError,
)
from emulator.layouts import offsets, parse_at
from emulator.layouts.xmit import (
    CONTROL_NAME_SIZE,
    CONTROL_RECORDS,
    INMDSORG_PO,
    INMDSORG_PS,
    INMDSORG_VSAM,
    INMR02_PREFIX_SIZE,
    INMRECFM_COMPRESSED,
    INMRECFM_NO_RDW,
    INMRECFM_PACKED,
    INMTYPE_PROGRAM_LIBRARY,
    NUMBER_MAX,
    PAD_BYTE,
    SEG_CONTROL,
    SEG_FIRST,
    SEG_LAST,
    SEG_RECNUM,
    SEG_RESERVED,
    SEGMENT_DATA_MAX,
    SEGMENT_HEADER_SIZE,
    TEXT_UNIT_HEADER_SIZE,
    TEXT_UNIT_KEYS,
    TEXT_UNIT_LENGTH_SIZE,
    TEXT_UNITS,
    UTIL_AMSCIPHR,
    UTIL_IEBCOPY,
    UTIL_INMCOPY,
    XMIT_LRECL,
    Inmr02Prefix,
    SegmentHeader,
    TextUnitHeader,
    TextUnitLength,
)

if TYPE_CHECKING:  # the volume layer is below this one; imported for hints only
    from emulator.volume.dscb import DatasetInfo
    from emulator.volume.volume import Volume

#: Names, user ids and nodes are plain EBCDIC; code pages 037 and 1047 agree on them.
NAME_CODEPAGE = "037"
_INMR01 = "INMR01".encode("cp037")
_SEG = offsets(SegmentHeader)
_RECFM_F, _RECFM_V, _RECFM_U = 0x80, 0x40, 0xC0
_RECFM_FORMAT = 0xC0
#: What z/OS TRANSMIT writes in the INMCOPY INMR02 of a PDS (the temporary unload data
#: set: RECFM VS without RDWs, LRECL 32756, BLKSIZE 3120 in every z/OS sample).
UNLOAD_INMRECFM = 0x4802
UNLOAD_LRECL = 32756
UNLOAD_BLKSIZE = 3120
#: INMR03 as TSO TRANSMIT writes it: the file travels as 80-byte records, RECFM X'0001'.
INMR03_RECFM = 0x0001
#: A message file: z/OS sends it as RECFM VB (no RDW) LRECL 251 BLKSIZE 3120.
MESSAGE_INMRECFM = 0x5002
MESSAGE_LRECL = 251
MESSAGE_BLKSIZE = 3120
_MAX_INPUT = 1 << 31  # bytes; larger files cannot fit a volume we write
_SIZE_MAX = 0xFFFFFFFF  # INMSIZE is an estimate in 4 bytes: larger sizes are capped


# -- parsed form -------------------------------------------------------------------------
@dataclass(frozen=True)
class TextUnit:
    """One text unit: its key and raw values (FORMATS.md 9.3)."""

    key: int
    values: tuple[bytes, ...]

    @property
    def name(self) -> str:
        return TEXT_UNITS.get(self.key, (f"X'{self.key:04X}'", "bytes"))[0]


@dataclass
class ControlRecord:
    """A control record (INMR01...INMR07) with its text units."""

    name: str
    offset: int  # byte offset of its first segment in the file
    units: list[TextUnit] = field(default_factory=list)
    file_number: int | None = None  # INMR02 only

    def unit(self, name: str) -> TextUnit | None:
        key = TEXT_UNIT_KEYS[name]
        return next((u for u in self.units if u.key == key), None)

    def has(self, name: str) -> bool:
        return self.unit(name) is not None

    def number(self, name: str, default: int | None = None) -> int | None:
        """A numeric text unit (big-endian, 1-8 bytes), or ``default`` when absent."""
        tu = self.unit(name)
        if tu is None or not tu.values:
            return default
        return int.from_bytes(tu.values[0], "big")

    def text(self, name: str, default: str | None = None) -> str | None:
        """A name text unit decoded from EBCDIC; several values (INMDSNAM qualifiers)
        are joined with '.'."""
        tu = self.unit(name)
        if tu is None or not tu.values:
            return default
        return ".".join(cp.decode(v, NAME_CODEPAGE).strip() for v in tu.values)


@dataclass
class XmitFile:
    """One file of a transmission: a PDS (its IEBCOPY unload records), a sequential data
    set (its logical records) or a message (its text records)."""

    number: int
    kind: str  # "pds" | "sequential" | "message"
    dsname: str | None
    dsorg: str  # "PO" or "PS"
    recfm: str  # "FB", "VB", "U", ...
    recfm_raw: int  # the DS1RECFM byte (high byte of INMRECFM)
    lrecl: int
    blksize: int
    dirblks: int
    size: int  # INMSIZE: the sender's estimate in bytes
    inmtype: int | None
    steps: list[ControlRecord]  # its INMR02 records, in file order
    header: ControlRecord  # its INMR03
    records: list[bytes] = field(repr=False, default_factory=list)
    members: list[str] = field(default_factory=list)  # INMMEMBR, when the sender chose

    @property
    def offset(self) -> int:
        """Byte offset of the INMR03 that starts this file's data."""
        return self.header.offset

    def lines(self, codepage: str = cp.DEFAULT) -> list[str]:
        """The records as text (a message file's lines); F records lose trailing blanks."""
        from emulator.dataset.records import records_to_lines

        return records_to_lines(self.records, codepage, recfm=self.recfm_raw or None)


@dataclass
class Transmission:
    """A parsed XMIT file: the INMR01 header, every control record, and the files."""

    path: str | None
    header: ControlRecord
    controls: list[ControlRecord]
    files: list[XmitFile]

    @property
    def from_node(self) -> str:
        return self.header.text("INMFNODE", "") or ""

    @property
    def from_user(self) -> str:
        return self.header.text("INMFUID", "") or ""

    @property
    def to_node(self) -> str:
        return self.header.text("INMTNODE", "") or ""

    @property
    def to_user(self) -> str:
        return self.header.text("INMTUID", "") or ""

    @property
    def time(self) -> str:
        """INMFTIME as sent: EBCDIC digits YYYYMMDDHHMMSS, maybe with a fraction."""
        return self.header.text("INMFTIME", "") or ""

    @property
    def timestamp(self) -> _dt.datetime | None:
        digits = self.time
        try:
            return _dt.datetime.strptime(digits[:14], "%Y%m%d%H%M%S")
        except ValueError:
            return None

    @property
    def lrecl(self) -> int:
        return self.header.number("INMLRECL", XMIT_LRECL) or XMIT_LRECL

    @property
    def datasets(self) -> list[XmitFile]:
        """The files that are data sets (not messages)."""
        return [f for f in self.files if f.kind != "message"]

    @property
    def messages(self) -> list[XmitFile]:
        return [f for f in self.files if f.kind == "message"]


# -- reading -----------------------------------------------------------------------------
def _place(where: str, offset: int) -> str:
    return f"{where} offset {offset}" if where else f"offset {offset}"


def _records(data: bytes, path: str | None, where: str) -> Iterator[tuple[int, int, bytes]]:
    """Logical records as (offset of the first segment, first segment's flags, data).

    The caller stops at INMR06; running out of bytes before is an error.  Every segment
    advances at least two bytes, so the walk ends.  The segment header is sliced by the
    offsets of the ``SegmentHeader`` layout (two bytes, on the hot path).
    """
    view = memoryview(data)
    end_of_data = len(data)
    len_at, flags_at = _SEG["seglen"], _SEG["segflags"]
    pos = 0
    start: int | None = None
    first_flags = 0
    parts: list[memoryview] = []
    while True:
        if pos >= end_of_data:
            if start is not None:
                raise FormatError(
                    f"the file ends inside the record that begins at offset {start} (truncated?)",
                    path,
                    _place(where, pos),
                )
            raise FormatError(
                "the file ends without an INMR06 trailer record (truncated?)",
                path,
                _place(where, pos),
            )
        if pos + SEGMENT_HEADER_SIZE > end_of_data:
            raise FormatError(
                "the file ends inside a segment header (truncated?)", path, _place(where, pos)
            )
        seglen, flags = data[pos + len_at], data[pos + flags_at]
        if seglen < SEGMENT_HEADER_SIZE:
            raise FormatError(
                f"segment length byte {seglen} (a segment is 2..255 bytes, its header included)",
                path,
                _place(where, pos),
            )
        if flags & SEG_RESERVED:
            raise FormatError(
                f"segment flags X'{flags:02X}' have reserved bits (X'0F') set",
                path,
                _place(where, pos),
            )
        if pos + seglen > end_of_data:
            raise FormatError(
                f"segment of {seglen} bytes runs past the end of the file "
                f"({end_of_data - pos} bytes left; truncated?)",
                path,
                _place(where, pos),
            )
        if start is None:
            if not flags & SEG_FIRST:
                raise FormatError(
                    f"segment flags X'{flags:02X}': a record must begin with a first "
                    "segment (X'80')",
                    path,
                    _place(where, pos),
                )
            start, first_flags = pos, flags
        else:
            if flags & SEG_FIRST:
                raise FormatError(
                    f"segment flags X'{flags:02X}': a new record begins before the record "
                    f"at offset {start} has its last segment",
                    path,
                    _place(where, pos),
                )
            if (flags ^ first_flags) & SEG_CONTROL:
                raise FormatError(
                    f"segment flags X'{flags:02X}': the control-record flag (X'20') differs "
                    f"from the first segment of the record at offset {start}",
                    path,
                    _place(where, pos),
                )
        parts.append(view[pos + SEGMENT_HEADER_SIZE : pos + seglen])
        pos += seglen
        if flags & SEG_LAST:
            record = b"".join(parts)
            rec_start = start
            parts, start = [], None
            yield rec_start, first_flags, record


def _control(payload: bytes, offset: int, path: str | None, where: str) -> ControlRecord:
    """Parse a control record's name, INMR02 file number and text units."""
    place = _place(where, offset)
    if len(payload) < CONTROL_NAME_SIZE:
        raise FormatError(
            f"control record of {len(payload)} bytes is too short for its name", path, place
        )
    name = cp.decode(payload[:CONTROL_NAME_SIZE], NAME_CODEPAGE)
    if name not in CONTROL_RECORDS:
        raise FormatError(
            f"unknown control record {name!r} (known: {', '.join(CONTROL_RECORDS)})",
            path,
            place,
        )
    rec = ControlRecord(name, offset)
    pos = CONTROL_NAME_SIZE
    if name == "INMR02":
        prefix = parse_at(Inmr02Prefix, payload, 0, f"{place}: INMR02", path)
        rec.file_number = prefix.inmfilen
        pos = INMR02_PREFIX_SIZE
    end = len(payload)
    while pos < end:
        tu_where = f"{place}: {name} text unit at +{pos}"
        head = parse_at(TextUnitHeader, payload, pos, tu_where, path)
        key, count = head.tukey, head.tunum
        label = TEXT_UNITS.get(key, (f"X'{key:04X}'", ""))[0]
        pos += TEXT_UNIT_HEADER_SIZE
        values = []
        for n in range(1, count + 1):
            length = parse_at(TextUnitLength, payload, pos, f"{tu_where} ({label})", path).tulen
            pos += TEXT_UNIT_LENGTH_SIZE
            if pos + length > end:
                raise FormatError(
                    f"{name} text unit {label} value {n} of {count} says {length} bytes, "
                    f"only {end - pos} left in the record",
                    path,
                    tu_where,
                )
            values.append(bytes(payload[pos : pos + length]))
            pos += length
        kind = TEXT_UNITS.get(key, ("", "bytes"))[1]
        if kind == "number":
            for v in values:
                if not 1 <= len(v) <= NUMBER_MAX:
                    raise FormatError(
                        f"{name} text unit {label}: a number of {len(v)} bytes "
                        f"(numbers are 1..{NUMBER_MAX} bytes)",
                        path,
                        tu_where,
                    )
        rec.units.append(TextUnit(key, tuple(values)))
    return rec


def _read_input(source: bytes | str | os.PathLike) -> tuple[bytes, str | None]:
    if isinstance(source, bytes | bytearray | memoryview):
        return bytes(source), None
    path = os.fspath(source)
    try:
        size = os.stat(path).st_size
        if size > _MAX_INPUT:
            raise FormatError(f"{size} bytes is too large for an XMIT file we can receive", path)
        with open(path, "rb") as fh:
            return fh.read(), path
    except FileNotFoundError:
        raise NotFoundError("no such XMIT file", path) from None
    except IsADirectoryError:
        raise FormatError("is a directory, not an XMIT file", path) from None
    except OSError as exc:
        raise FormatError(f"cannot read: {exc.strerror or exc}", path) from None


def read_xmit(data: bytes | str | os.PathLike, where: str = "") -> Transmission:
    """Parse an XMIT (NETDATA) file given as bytes or a path.

    ``where`` names the place of the bytes in errors (e.g. a tape file) when they are
    not a file of their own.  Every error is a FormatError (UnsupportedError for
    encrypted or packed files, VSAM and utilities other than INMCOPY/IEBCOPY) naming
    the file and the byte offset.
    """
    buf, path = _read_input(data)
    first = buf[SEGMENT_HEADER_SIZE : SEGMENT_HEADER_SIZE + CONTROL_NAME_SIZE]
    if len(buf) < 2 or not buf[1] & SEG_FIRST or not buf[1] & SEG_CONTROL or first != _INMR01:
        what = "the file is empty" if not buf else "it does not begin with an INMR01 record"
        raise FormatError(f"not a TSO XMIT (NETDATA) file: {what}", path, _place(where, 0))

    header: ControlRecord | None = None
    controls: list[ControlRecord] = []
    steps: dict[int, list[ControlRecord]] = {}
    sections: list[tuple[ControlRecord, list[bytes], list[int]]] = []
    for offset, flags, payload in _records(buf, path, where):
        if flags & SEG_CONTROL:
            rec = _control(payload, offset, path, where)
            controls.append(rec)
            if rec.name == "INMR01":
                if header is not None:
                    raise FormatError(
                        f"a second INMR01 (the first is at offset {header.offset})",
                        path,
                        _place(where, offset),
                    )
                header = rec
            elif rec.name == "INMR02":
                steps.setdefault(rec.file_number, []).append(rec)
            elif rec.name == "INMR03":
                if len(sections) >= len(steps):
                    raise FormatError(
                        f"INMR03 number {len(sections) + 1} starts the data of a file no "
                        f"INMR02 describes ({len(steps)} files described)",
                        path,
                        _place(where, offset),
                    )
                sections.append((rec, [], []))
            elif rec.name == "INMR06":
                break
            continue
        if flags & SEG_RECNUM:
            continue  # the number of the next record: no data of its own
        if not sections:
            raise FormatError(
                "a data record before any INMR03 (no file has started)",
                path,
                _place(where, offset),
            )
        sections[-1][1].append(payload)
        sections[-1][2].append(offset)
    if header is None:  # cannot happen: the first record was checked to be INMR01
        raise FormatError("no INMR01 header record", path, _place(where, 0))

    numbers = list(steps)
    if len(sections) < len(numbers):
        missing = numbers[len(sections)]
        raise FormatError(
            f"file {missing} described by INMR02 has no data (no INMR03 before INMR06)",
            path,
            _place(where, steps[missing][0].offset),
        )
    files = [
        _file(num, steps[num], hdr, recs, offs, path, where)
        for num, (hdr, recs, offs) in zip(numbers, sections, strict=True)
    ]
    return Transmission(path, header, controls, files)


def _file(
    number: int,
    steps: list[ControlRecord],
    header: ControlRecord,
    records: list[bytes],
    offsets_: list[int],
    path: str | None,
    where: str,
) -> XmitFile:
    """Describe one file from its INMR02 steps and turn its data into records."""
    from emulator.recfm import recfm_text

    place = _place(where, steps[0].offset)
    utils = [s.text("INMUTILN", "") or "" for s in steps]
    for util in utils:
        if util == UTIL_AMSCIPHR:
            raise UnsupportedError(
                f"file {number} is encrypted (INMUTILN {UTIL_AMSCIPHR})", path, place
            )
        if util not in (UTIL_INMCOPY, UTIL_IEBCOPY):
            raise UnsupportedError(
                f"file {number} was made by utility {util or '(none)'}; only INMCOPY and "
                "IEBCOPY transmissions can be received",
                path,
                place,
            )
    # For a PDS the IEBCOPY step describes the library; the INMCOPY step after it only
    # describes the temporary unload data set.
    desc = steps[utils.index(UTIL_IEBCOPY)] if UTIL_IEBCOPY in utils else steps[0]
    dsname = next((s.text("INMDSNAM") for s in [desc, *steps] if s.has("INMDSNAM")), None)
    inmdsorg = desc.number("INMDSORG", 0) or 0
    if inmdsorg & INMDSORG_VSAM:
        raise UnsupportedError(f"file {number} is a VSAM data set", path, place)
    recfm_tu = desc.unit("INMRECFM")
    raw = recfm_tu.values[0] if recfm_tu is not None and recfm_tu.values else b""
    recfm_raw = raw[0] if raw else 0
    transfer = raw[1] if len(raw) > 1 else 0
    lrecl = desc.number("INMLRECL", 0) or 0
    blksize = desc.number("INMBLKSZ", 0) or 0
    if UTIL_IEBCOPY in utils:
        kind = "pds"
    elif any(s.has("INMTERM") for s in steps) and dsname is None:
        kind = "message"
    else:
        kind = "sequential"
        if inmdsorg & INMDSORG_PO:
            raise UnsupportedError(
                f"file {number} is a partitioned data set sent without IEBCOPY", path, place
            )
    try:
        recfm = recfm_text(recfm_raw)
    except EmulatorError:
        recfm = f"X'{recfm_raw:02X}'"
    xfile = XmitFile(
        number=number,
        kind=kind,
        dsname=dsname,
        dsorg="PO" if kind == "pds" else "PS",
        recfm=recfm,
        recfm_raw=recfm_raw,
        lrecl=lrecl,
        blksize=blksize,
        dirblks=desc.number("INMDIR", 0) or 0,
        size=desc.number("INMSIZE", 0) or 0,
        inmtype=desc.number("INMTYPE"),
        steps=steps,
        header=header,
        members=[
            cp.decode(v, NAME_CODEPAGE).strip()
            for s in steps
            if (tu := s.unit("INMMEMBR")) is not None
            for v in tu.values
        ],
    )
    if kind == "pds":
        xfile.records = records
    else:
        if transfer & (INMRECFM_PACKED | INMRECFM_COMPRESSED):
            raise UnsupportedError(
                f"file {number} travels packed or compressed (INMRECFM X'{transfer:02X}')",
                path,
                place,
            )
        xfile.records = _logical_records(xfile, transfer, records, offsets_, path, where)
    return xfile


def _logical_records(
    xfile: XmitFile,
    transfer: int,
    records: list[bytes],
    offsets_: list[int],
    path: str | None,
    where: str,
) -> list[bytes]:
    """A sequential file's data records as the data set's logical records (FORMATS.md 9.4)."""
    fmt = xfile.recfm_raw & _RECFM_FORMAT
    if fmt == _RECFM_F:
        lrecl = xfile.lrecl
        if lrecl <= 0:
            raise FormatError(
                f"file {xfile.number}: RECFM {xfile.recfm} with LRECL {lrecl}",
                path,
                _place(where, xfile.steps[0].offset),
            )
        out: list[bytes] = []
        for rec, off in zip(records, offsets_, strict=True):
            if len(rec) % lrecl:
                raise FormatError(
                    f"file {xfile.number}: a data record of {len(rec)} bytes is not a "
                    f"multiple of LRECL {lrecl}",
                    path,
                    _place(where, off),
                )
            out.extend(rec[i : i + lrecl] for i in range(0, len(rec), lrecl))
        return out
    if fmt == _RECFM_V and not transfer & INMRECFM_NO_RDW:
        out = []
        for rec, off in zip(records, offsets_, strict=True):
            size = int.from_bytes(rec[:2], "big") if len(rec) >= 4 else -1
            if size != len(rec) or rec[2:4] != b"\0\0":
                raise FormatError(
                    f"file {xfile.number}: a variable-length record of {len(rec)} bytes "
                    f"without a valid RDW (X'{rec[:4].hex().upper()}'), and INMRECFM "
                    "does not say RDWs were removed (X'02')",
                    path,
                    _place(where, off),
                )
            out.append(rec[4:])
        return out
    return records


# -- receiving ---------------------------------------------------------------------------
def _tracks_for(vol: Volume, keylen: int, block_sizes: Sequence[int]) -> int:
    """Tracks that blocks of these data lengths (in order, then an EOF) fill on ``vol``."""
    dev = vol.device
    used, tracks = 0, 1
    for size in [*block_sizes, 0]:
        kl = keylen if size else 0
        nxt = dev.fits(used, kl, size)
        if nxt is None:
            tracks += 1
            nxt = dev.fits(0, kl, size) or 0
        used = nxt
    return tracks


def _space(tracks: int, space: tuple[str, int | None, int] | None, heads: int) -> tuple:
    """An allocation that holds ``tracks``: the caller's (its primary raised when too
    small, as dasdload does), else those tracks with a quarter more as secondary space."""
    if space is None:
        return ("TRK", tracks, max(1, tracks // 4))
    unit, primary, secondary = space
    per = heads if str(unit).upper() == "CYL" else 1
    return (unit, max(primary or 0, math.ceil(tracks / per), 1), secondary)


def _half_track(vol: Volume) -> int:
    """The largest block two of which fit a track (the default BLKSIZE of FB/VB)."""
    dev = vol.device
    lo, hi = 1, 0xFFFF
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if dev.records_per_track(0, mid) >= 2:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _sequential_dcb(vol: Volume, xfile: XmitFile) -> tuple[int, int | None, int]:
    """(RECFM byte, LRECL, BLKSIZE) for a new sequential data set: the transmitted DCB,
    with what it lacks filled in as the volume layer defaults it, and widened where the
    records would not fit it."""
    from emulator.dataset.records import MAX_BLKSIZE
    from emulator.recfm import LRECL_X, RECFM_B, RECFM_S

    recfm = xfile.recfm_raw
    if recfm & _RECFM_FORMAT == 0:
        recfm |= _RECFM_U  # no format bits: the records are taken as they come
    fmt = recfm & _RECFM_FORMAT
    longest = max((len(r) for r in xfile.records), default=0)
    lrecl, blksize = xfile.lrecl, xfile.blksize
    if fmt == _RECFM_F:
        lrecl = lrecl or 80
        if not blksize or blksize % lrecl or (not recfm & RECFM_B and blksize != lrecl):
            half = _half_track(vol)
            blksize = (half // lrecl) * lrecl if recfm & RECFM_B and lrecl <= half else lrecl
        return recfm, lrecl, blksize
    if fmt == _RECFM_V:
        if lrecl != LRECL_X:
            lrecl = min(max(lrecl, longest + 4, 5), MAX_BLKSIZE)
        if not blksize:
            blksize = max(_half_track(vol), lrecl + 4) if recfm & RECFM_B else lrecl + 4
        if not recfm & RECFM_S and lrecl != LRECL_X:
            blksize = max(blksize, lrecl + 4)
        return recfm, lrecl, min(blksize, MAX_BLKSIZE)
    blksize = min(max(blksize, longest) or 6144, MAX_BLKSIZE)
    return recfm, min(lrecl, blksize), blksize


def _existing(vol: Volume, dsname: str, replace: bool, partitioned: bool) -> Any:
    """The data set ``dsname`` if it exists and may be written, else None."""
    try:
        info = vol.dataset(dsname)
    except NotFoundError:
        return None
    where = f"{vol.volser}: {dsname}"
    if not replace:
        what = "add the members to it" if partitioned else "overwrite it"
        raise ConflictError(
            f"data set {dsname} already exists (receive with replace to {what})",
            vol.path,
            where,
        )
    if bool(info.dsorg_raw & INMDSORG_PO) != partitioned:
        have = "partitioned" if info.dsorg_raw & INMDSORG_PO else "sequential"
        want = "a PDS" if partitioned else "a sequential file"
        raise ConflictError(f"{dsname} is {have}; {want} cannot go into it", vol.path, where)
    return info


def store_sequential(
    vol: Volume,
    dsname: str,
    xfile: XmitFile,
    space: tuple[str, int | None, int] | None = None,
    replace: bool = False,
) -> DatasetInfo:
    """Allocate ``dsname`` with the file's DCB and write its records (one transaction).

    ``space`` (unit, primary or None, secondary) is raised to what the records need.  An
    existing data set is overwritten only with ``replace``, and keeps its own DCB."""
    from emulator.dataset import io
    from emulator.dataset.records import block

    with vol.transaction():
        info = _existing(vol, dsname, replace, partitioned=False)
        if info is None:
            recfm, lrecl, blksize = _sequential_dcb(vol, xfile)
            try:
                blocks = block(recfm, lrecl or 0, blksize, xfile.records)
            except EmulatorError as exc:
                raise exc.located(vol.path, f"{vol.volser}: {dsname}") from None
            tracks = _tracks_for(vol, 0, [len(b) for b in blocks])
            info = vol.allocate(
                dsname,
                dsorg="PS",
                recfm=recfm,
                lrecl=lrecl,
                blksize=blksize,
                space=_space(tracks, space, vol.heads),
            )
        io.write_records(vol, info, xfile.records)
    return vol.dataset(dsname)


def store_pds(
    vol: Volume,
    dsname: str,
    unload: Any,
    dcb: tuple[int, int, int] | None = None,
    dirblks: int = 0,
    space: tuple[str, int | None, int] | None = None,
    replace: bool = False,
) -> DatasetInfo:
    """Allocate ``dsname`` as a PDS for an IEBCOPY unload and load it (one transaction).

    ``dcb`` (RECFM byte, LRECL, BLKSIZE) is the library's as the XMIT's IEBCOPY INMR02
    gives it (Hercules takes it from there), else COPYR1's; the directory gets at least
    ``dirblks`` blocks and as many as the unload's entries need; ``space`` is raised to
    what the members need.  An existing PDS receives the members (replacing those of
    the same name) only with ``replace``."""
    from emulator.interchange import unload as ul
    from emulator.pds.directory import blocks_needed

    with vol.transaction():
        if _existing(vol, dsname, replace, partitioned=True) is None:
            recfm, lrecl, blksize = dcb or (unload.recfm, unload.lrecl, unload.blksize)
            if recfm & _RECFM_FORMAT == _RECFM_U:
                lrecl = min(lrecl, blksize)
            nblocks = max(unload.dirblocks, blocks_needed(unload.entries), dirblks, 1)
            tracks = ul.space_for(vol.device, unload, nblocks)
            vol.allocate(
                dsname,
                dsorg="PO",
                recfm=recfm,
                lrecl=lrecl,
                blksize=blksize,
                keylen=unload.keylen,
                space=_space(tracks, space, vol.heads),
                dirblks=nblocks,
            )
        ul.load_unload(vol, dsname, unload, replace=True)
    return vol.dataset(dsname)


def xmit_dcb(xfile: XmitFile) -> tuple[int, int, int] | None:
    """The library's (RECFM byte, LRECL, BLKSIZE) as the IEBCOPY INMR02 gives them, or
    None when it gives no RECFM or BLKSIZE (then COPYR1's are used)."""
    if not xfile.recfm_raw or not xfile.blksize:
        return None
    return xfile.recfm_raw, xfile.lrecl, xfile.blksize


def read_pds(xfile: XmitFile, path: str | None = None) -> Any:
    """The IEBCOPY unload a PDS file carries; a PDSE program library that the unload
    reader cannot take is refused by name."""
    from emulator.interchange import unload as ul

    where = f"file {xfile.number} ({xfile.dsname or 'no name'})"
    try:
        return ul.read_unload(xfile.records, where=where, path=path)
    except UnsupportedError as exc:
        raise exc.located(path, where) from None
    except EmulatorError as exc:
        if xfile.inmtype is not None and xfile.inmtype & INMTYPE_PROGRAM_LIBRARY:
            raise UnsupportedError(
                f"a PDSE program library (INMTYPE X'{xfile.inmtype:02X}'): program objects "
                f"cannot be received ({exc.message})",
                path,
                where,
            ) from None
        raise exc.located(path, where) from None


def _check_target(dsname: str, path: str | None) -> str:
    from emulator.volume.dscb import validate_dsname

    try:
        return validate_dsname(dsname)
    except FormatError as exc:
        raise exc.located(path) from None


def receive(
    xmit_path: str | os.PathLike,
    vol: Volume,
    dsname: str | None = None,
    replace: bool = False,
    on_message: Callable[[list[str]], None] | None = None,
    codepage: str = cp.DEFAULT,
) -> list[DatasetInfo]:
    """Receive every data set of an XMIT file into ``vol`` (TSO RECEIVE INDATASET).

    PDS files are loaded from their IEBCOPY unload (allocated with the transmitted
    DCB, INMDIR directory blocks and the space they need); sequential files are
    allocated and written.  ``dsname`` names the target when the transmission holds
    one data set (default: its INMDSNAM; a file without one needs ``dsname``).  Message
    files are not stored: their lines go to ``on_message``, as TSO RECEIVE shows them.
    Everything is read and checked first; the data sets are then written in one volume
    transaction, so a failure leaves the image as it was.
    """
    tx = read_xmit(xmit_path)
    path = tx.path
    datasets = tx.datasets
    if not tx.files:
        kinds = ", ".join(c.name for c in tx.controls)
        raise FormatError(f"the transmission holds no files (records {kinds})", path)
    if dsname is not None and len(datasets) > 1:
        names = ", ".join(f.dsname or f"file {f.number}" for f in datasets)
        raise ConflictError(
            f"the transmission holds {len(datasets)} data sets ({names}); one target name "
            "cannot receive them all (leave the name out to use theirs)",
            path,
        )
    plans: list[tuple[str, XmitFile, Any]] = []
    seen: dict[str, int] = {}
    for xfile in datasets:
        name = dsname or xfile.dsname
        if not name:
            raise FormatError(
                f"file {xfile.number} carries no data set name (no INMDSNAM); give the "
                "target name (dasd receive --dsn NAME)",
                path,
                _place("", xfile.offset),
            )
        name = _check_target(name, path)
        if name in seen:
            raise ConflictError(
                f"files {seen[name]} and {xfile.number} are both named {name}", path
            )
        seen[name] = xfile.number
        unload = read_pds(xfile, path) if xfile.kind == "pds" else None
        plans.append((name, xfile, unload))
    if on_message is not None:
        for msg in tx.messages:
            on_message(msg.lines(codepage))
    infos = []
    with vol.transaction():
        for name, xfile, unload in plans:
            try:
                if unload is not None:
                    info = store_pds(
                        vol, name, unload, xmit_dcb(xfile), xfile.dirblks, replace=replace
                    )
                else:
                    info = store_sequential(vol, name, xfile, replace=replace)
            except EmulatorError as exc:
                raise exc.located(getattr(vol, "path", None)) from None
            infos.append(info)
    return infos


# -- transmitting ------------------------------------------------------------------------
def _tu(name: str, *values: bytes) -> bytes:
    out = bytearray(TEXT_UNIT_KEYS[name].to_bytes(2, "big") + len(values).to_bytes(2, "big"))
    for v in values:
        out += len(v).to_bytes(2, "big") + v
    return bytes(out)


def _num(name: str, value: int, width: int) -> bytes:
    return _tu(name, value.to_bytes(width, "big"))


def _name(name: str, text: str) -> bytes:
    return _tu(name, cp.encode(text, NAME_CODEPAGE))


def _segments(record: bytes, control: bool) -> bytes:
    """One logical record as segments of at most 253 data bytes (FORMATS.md 9.1)."""
    ctl = SEG_CONTROL if control else 0
    if not record:
        return bytes([SEGMENT_HEADER_SIZE, SEG_FIRST | SEG_LAST | ctl])
    out = bytearray()
    for pos in range(0, len(record), SEGMENT_DATA_MAX):
        chunk = record[pos : pos + SEGMENT_DATA_MAX]
        flags = ctl
        if pos == 0:
            flags |= SEG_FIRST
        if pos + SEGMENT_DATA_MAX >= len(record):
            flags |= SEG_LAST
        out += bytes([len(chunk) + SEGMENT_HEADER_SIZE, flags]) + chunk
    return bytes(out)


def _control_record(name: str, *units: bytes, file_number: int | None = None) -> bytes:
    body = cp.encode(name, NAME_CODEPAGE)
    if file_number is not None:
        body += file_number.to_bytes(4, "big")
    return _segments(body + b"".join(units), control=True)


def _node_user(value: str, what: str) -> str:
    text = (value or "").strip().upper()
    if not 1 <= len(text) <= 8 or not all(c.isalnum() or c in "@#$" for c in text):
        raise FormatError(f"{what} {value!r} must be 1-8 characters A-Z 0-9 @ # $")
    return text


def transmit(
    vol: Volume,
    dsname: str,
    out_path: str | os.PathLike,
    from_node: str = "NODE",
    from_user: str = "USER",
    to_node: str | None = None,
    to_user: str | None = None,
    now: _dt.datetime | None = None,
    members: Sequence[str] | None = None,
    message: Sequence[str] | None = None,
    codepage: str = cp.DEFAULT,
) -> None:
    """Write ``dsname`` (a PDS, or a sequential data set) as an XMIT file (FORMATS.md 9.5).

    A PDS travels as an IEBCOPY unload (all members, or ``members``); a sequential data
    set as its logical records (V without RDWs).  ``message`` lines (code page
    ``codepage``) become a message file before the data set, as TRANSMIT ... MSG does.
    The output is the same bytes for the same data set and ``now``; it is written to a
    temporary name and renamed when complete.
    """
    from emulator.dataset import io
    from emulator.interchange import unload as ul
    from emulator.volume.dscb import validate_dsname

    name = validate_dsname(dsname)
    fnode, fuser = _node_user(from_node, "node"), _node_user(from_user, "user id")
    tnode = _node_user(to_node or fnode, "node")
    tuser = _node_user(to_user or fuser, "user id")
    when = now or _dt.datetime.now()
    info = vol.dataset(name)
    where = f"{vol.volser}: {name}"
    if members and not info.dsorg_raw & INMDSORG_PO:
        raise FormatError("members can only be selected from a PDS", vol.path, where)

    files: list[tuple[list[bytes], list[bytes]]] = []  # (INMR02s, data records)
    if message:
        lines = [cp.encode(line.rstrip(), codepage, where="message") for line in message]
        size = sum(len(r) for r in lines)
        inmr02 = [
            _name("INMUTILN", UTIL_INMCOPY),
            _tu("INMTERM"),
            _num("INMSIZE", min(size, _SIZE_MAX), 4),
            _num("INMDSORG", INMDSORG_PS, 2),
            _num("INMLRECL", MESSAGE_LRECL, 4),
            _num("INMBLKSZ", MESSAGE_BLKSIZE, 4),
            _num("INMRECFM", MESSAGE_INMRECFM, 2),
        ]
        files.append(([b"".join(inmr02)], lines))
    qualifiers = [cp.encode(q, NAME_CODEPAGE) for q in name.split(".")]
    if info.dsorg_raw & INMDSORG_PO:
        records = ul.write_unload(vol, name, members=members)
        size = sum(len(r) for r in records)
        # INMDIR: the library's own directory size (the blocks up to its first EOF),
        # so the receiver has the room the sender had.
        dirblks = sum(1 for _ in io.read_blocks(vol, info))
        lrecl = info.lrecl
        iebcopy = [
            _name("INMUTILN", UTIL_IEBCOPY),
            _num("INMSIZE", min(size, _SIZE_MAX), 4),
            _num("INMDSORG", INMDSORG_PO, 2),
            _num("INMTYPE", 0, 1),
            _num("INMLRECL", lrecl, 4),
            _num("INMBLKSZ", info.blksize, 4),
            _num("INMRECFM", info.recfm_raw << 8, 2),
            _num("INMDIR", dirblks, 3),
            _tu("INMDSNAM", *qualifiers),
        ]
        inmcopy = [
            _name("INMUTILN", UTIL_INMCOPY),
            _num("INMSIZE", min(size, _SIZE_MAX), 4),
            _num("INMDSORG", INMDSORG_PS, 2),
            _num("INMLRECL", UNLOAD_LRECL, 4),
            _num("INMBLKSZ", UNLOAD_BLKSIZE, 4),
            _num("INMRECFM", UNLOAD_INMRECFM, 2),
        ]
        files.append(([b"".join(iebcopy), b"".join(inmcopy)], records))
    else:
        try:
            records = io.read_records(vol, info)
        except EmulatorError as exc:
            raise exc.located(vol.path, where) from None
        fmt = info.recfm_raw & _RECFM_FORMAT
        inmrecfm = info.recfm_raw << 8 | (INMRECFM_NO_RDW if fmt == _RECFM_V else 0)
        size = sum(len(r) for r in records)
        inmcopy = [
            _name("INMUTILN", UTIL_INMCOPY),
            _num("INMSIZE", min(size, _SIZE_MAX), 4),
            _num("INMDSORG", INMDSORG_PS, 2),
            _num("INMLRECL", info.lrecl, 4),
            _num("INMBLKSZ", info.blksize, 4),
            _num("INMRECFM", inmrecfm, 2),
            _tu("INMDSNAM", *qualifiers),
        ]
        files.append(([b"".join(inmcopy)], records))

    out = bytearray()
    out += _control_record(
        "INMR01",
        _num("INMLRECL", XMIT_LRECL, 1),
        _name("INMFNODE", fnode),
        _name("INMFUID", fuser),
        _name("INMTNODE", tnode),
        _name("INMTUID", tuser),
        _name("INMFTIME", when.strftime("%Y%m%d%H%M%S")),
        _num("INMNUMF", len(files), 1),
    )
    for number, (inmr02s, _) in enumerate(files, 1):
        for units in inmr02s:
            out += _control_record("INMR02", units, file_number=number)
    for _steps, records in files:
        size = sum(len(r) for r in records)
        out += _control_record(
            "INMR03",
            _num("INMSIZE", min(size, _SIZE_MAX), 4),
            _num("INMDSORG", INMDSORG_PS, 2),
            _num("INMLRECL", XMIT_LRECL, 2),
            _num("INMRECFM", INMR03_RECFM, 2),
        )
        for rec in records:
            out += _segments(bytes(rec), control=False)
    out += _control_record("INMR06")
    if len(out) % XMIT_LRECL:
        out += bytes([PAD_BYTE]) * (XMIT_LRECL - len(out) % XMIT_LRECL)
    _write_file(Path(out_path), bytes(out))


def _write_file(target: Path, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``target``, then rename it into place."""
    folder = target.parent if str(target.parent) else Path(".")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise FormatError(f"cannot write: {exc.strerror or exc}", target) from None
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, target)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError):
            raise FormatError(f"cannot write: {exc.strerror or exc}", target) from None
        raise


__all__ = [
    "ControlRecord",
    "TextUnit",
    "Transmission",
    "XmitFile",
    "read_xmit",
    "receive",
    "store_pds",
    "store_sequential",
    "transmit",
]
