"""IEBCOPY unload data sets: read, load into a PDS, write (FORMATS.md 8).

An unload is a sequence of logical records (FORMATS.md 8.1): COPYR1 (56 bytes, or 52
from MVS 3.8j IEBCOPY; 8.2), COPYR2 (276 bytes, the DEB extents of the source data set;
8.3), then *units* -- a 12-byte prefix F M BB CC HH R KL DL followed by key and data
(8.4) -- packed into logical records: directory blocks (KL 8, DL 256) up to a unit
with KL 0 DL 0, then member blocks, each member closed by a KL 0 DL 0 unit (its EOF).

Three physical forms hold those records, all read by :func:`read_unload_file`:

* VS blocks as on disk or tape: BDW + SDW + data, records possibly spanned;
* the records with their RDW/SDW but without BDWs;
* the records alone, back to back (what NETDATA carries, and what Hercules
  ``dasdload`` method VS reads: it takes 56 bytes of COPYR1, 276 of COPYR2 and then
  one unit at a time from the prefix lengths, ignoring record boundaries).

Original TTRs (8.5): TT = tracks of the earlier COPYR2 extents + (CC*heads + HH) -
(start CC*heads + start HH) of the extent holding the block, heads from COPYR1's
DEVTYPE; R from the prefix.  Loading writes each member's blocks and relocates the
directory TTR, the user-data TTRs (C byte) and note lists through old -> new TTRs.

PDSE unloads (8.7): program-object unloads (COPYR1 X'10', or the PDSE format bits
X'40') are refused with UnsupportedError.  A data-library PDSE unload (COPYR1 X'01'
with the old format bits, as z/OS 1.13 wrote MOSHIX.WORK.SMF, SOURCES.md #7) is read:
its directory units carry prefix flag X'08', its members end with a X'80' unit and
are followed by PDSE attribute units (flag X'04', ended by X'84') that a PDS has no
place for and that are skipped; member TTRs are PDSE tokens, read from prefix bytes
HH R, and every directory entry must name the first block of a member (checked).

Writing (8.6) produces the z/OS form: a 56-byte COPYR1 describing the volume the PDS
is on, COPYR2 with one extent from cylinder 0 head 0 over the data set's tracks, the
directory blocks needed for the entries (unused, all-zero blocks would stop
``dasdload``), a 12-byte zero unit, then each member's blocks in disk order with the
CCHHR of their real TTR in that pretend extent, and a KL 0 DL 0 unit after each.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple

from emulator.dataset import records as rf
from emulator.dates import date_to_ydd
from emulator.errors import (
    ConflictError,
    EmulatorError,
    FormatError,
    NotFoundError,
    UnsupportedError,
)
from emulator.layouts import parse_at
from emulator.layouts.iebcopy import (
    COPYR1_HDRID,
    COPYR1_OLD_SIZE,
    COPYR1_SIZE,
    COPYR2_SIZE,
    MAX_EXTENTS,
    PFX_ATTR,
    PREFIX_SIZE,
    ULD_FORMAT_MASK,
    ULD_FORMAT_OLD,
    ULD_FORMAT_PDSE,
    ULD_FROM_PDSE,
    ULD_PROGRAM_OBJECTS,
    BlockPrefix,
    Copyr1,
    Copyr1Old,
    Copyr2,
)
from emulator.layouts.pds import DIRBLK_DATALEN, DIRBLK_KEYLEN, END_NAME
from emulator.pds.directory import (
    LM_ATR1,
    LM_ATR1_SCATTER,
    LM_BASIC_SIZE,
    LM_SCATTER_SIZE,
    NAME_LEN,
    DirEntry,
    blocks_needed,
    build_blocks,
    load_module_alias_name,
    name_to_bytes,
    parse_blocks,
    relocate_userdata,
    validate_name,
)
from emulator.pds.pds import resolve_aliases
from emulator.recfm import RECFM_F, RECFM_FORMAT, RECFM_U, RECFM_V, recfm_text

Ttr = tuple[int, int]

#: The unload data set's own DCB (FORMATS.md 8.1): RECFM=VS.
UNLOAD_RECFM = 0x48
UNLOAD_MIN_LRECL = 280
UNLOAD_MAX_LRECL = 32760
#: RDW/SDW (4) + prefix (12) on top of the PDS block size and key length.
UNLOAD_LRECL_OVERHEAD = 16
#: Bounds that keep a damaged file from running away.
MAX_DIRECTORY_UNITS = 65535
EMPTY_UNIT = bytes(PREFIX_SIZE)

#: DEVTYPE UCB type of the volume an unload is written from; byte 1 is X'50' as in
#: Hercules' own device table (FORMATS.md 8.2), byte 2 X'20' = DASD, byte 3 the unit.
UCB_PREFIX = b"\x30\x50\x20"


# ---------------------------------------------------------------------------------
# The model
# ---------------------------------------------------------------------------------
class DebExtent(NamedTuple):
    """One COPYR2 extent: start and end cylinder/head (inclusive) and its tracks."""

    bcyl: int
    bhead: int
    ecyl: int
    ehead: int
    ntrk: int


class UnloadBlock(NamedTuple):
    """One member block: its TTR in the unloaded data set, key and data."""

    ttr: Ttr
    key: bytes
    data: bytes


@dataclass
class UnloadRun:
    """The blocks from one member start up to its EOF unit, in unload order.

    ``ttr`` is the original TTR of the first block (of the EOF for an empty member);
    ``eof`` the original TTR of the EOF unit.
    """

    ttr: Ttr
    blocks: list[UnloadBlock]
    eof: Ttr


@dataclass
class Unload:
    """An IEBCOPY unload read into memory.

    DCB of the unloaded PDS: ``dsorg``, ``recfm``, ``lrecl``, ``blksize``, ``keylen``
    (from COPYR1).  ``copyr1``: every COPYR1 field (Construct container, see
    emulator.layouts.iebcopy); ``copyr1_size`` 52 or 56; ``heads``/``cyls``/
    ``ucbtype``: the original device; ``extents``: COPYR2; ``entries``: the
    directory with the ORIGINAL TTRs, in directory order, ``alias_of`` filled in;
    ``runs``: member data in unload order; ``dirblocks``: directory blocks in the
    unload; ``pdse``: a PDSE data-library unload.
    """

    dsorg: int
    recfm: int
    lrecl: int
    blksize: int
    keylen: int
    copyr1: Any
    copyr1_size: int
    extents: list[DebExtent]
    entries: list[DirEntry]
    runs: list[UnloadRun]
    dirblocks: int
    pdse: bool = False
    path: str | None = None
    _by_ttr: dict[Ttr, tuple[int, int]] = field(default_factory=dict, repr=False)

    # -- describing --------------------------------------------------------------
    @property
    def flags(self) -> int:
        return self.copyr1.uldfmt

    @property
    def heads(self) -> int:
        return self.copyr1.devtype.heads

    @property
    def cyls(self) -> int:
        return self.copyr1.devtype.cyls

    @property
    def ucbtype(self) -> bytes:
        return bytes(self.copyr1.devtype.ucbtype)

    @property
    def unload_blksize(self) -> int:
        return self.copyr1.uldblksz

    @property
    def recfm_text(self) -> str:
        return recfm_text(self.recfm)

    @property
    def members(self) -> list[DirEntry]:
        """The entries that are not aliases."""
        return [e for e in self.entries if not e.alias]

    def __repr__(self) -> str:
        return (
            f"<Unload {self.recfm_text} {self.lrecl}/{self.blksize} "
            f"{len(self.entries)} entries {len(self.runs)} runs>"
        )

    # -- member data -------------------------------------------------------------
    def entry(self, name: str) -> DirEntry:
        """The directory entry called ``name`` (NotFoundError if there is none)."""
        upper = name.upper()
        for e in self.entries:
            if e.name == upper:
                return e
        raise NotFoundError(f"member {upper} is not in the unload", self.path)

    def blocks(self, name_or_entry: str | DirEntry) -> list[UnloadBlock]:
        """A member's blocks, from the block its directory TTR names up to its EOF."""
        entry = name_or_entry if isinstance(name_or_entry, DirEntry) else self.entry(name_or_entry)
        run, start = self._locate(entry)
        return run.blocks[start:]

    def eof_ttr(self, entry: DirEntry) -> Ttr:
        run, _ = self._locate(entry)
        return run.eof

    def _locate(self, entry: DirEntry) -> tuple[UnloadRun, int]:
        found = self._by_ttr.get(entry.ttr)
        if found is None:
            raise FormatError(
                f"member {entry.name}: TTR {_ttr_text(entry.ttr)} names no block of the unload",
                self.path,
            )
        run_index, block_index = found
        return self.runs[run_index], block_index


def _ttr_text(ttr: Ttr) -> str:
    return f"{ttr[0]:04X}{ttr[1]:02X}"


# ---------------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------------
def _check_copyr1(rec: bytes, where: str, path: str | None) -> tuple[Any, int]:
    if len(rec) not in (COPYR1_SIZE, COPYR1_OLD_SIZE):
        raise FormatError(
            f"first record is {len(rec)} bytes, not a COPYR1 ({COPYR1_OLD_SIZE} or "
            f"{COPYR1_SIZE} bytes)",
            path,
            where,
        )
    layout = Copyr1 if len(rec) == COPYR1_SIZE else Copyr1Old
    c1 = parse_at(layout, rec, 0, f"{where} COPYR1".strip(), path)
    if bytes(c1.hdrid) != COPYR1_HDRID:
        raise FormatError(
            f"not an IEBCOPY unload: COPYR1 bytes 1-3 are X'{bytes(c1.hdrid).hex().upper()}', "
            "not X'CA6D0F'",
            path,
            where,
        )
    flags = c1.uldfmt
    fmt = flags & ULD_FORMAT_MASK
    if flags & ULD_PROGRAM_OBJECTS or fmt == ULD_FORMAT_PDSE:
        raise UnsupportedError(
            f"this is a PDSE unload (COPYR1 flags X'{flags:02X}'"
            + (": program objects" if flags & ULD_PROGRAM_OBJECTS else "")
            + "); PDSE unloads with program objects or in the PDSE unload format are not "
            "supported (a PDS cannot hold program objects: reload it with IEBCOPY on z/OS)",
            path,
            where,
        )
    if fmt != ULD_FORMAT_OLD:
        raise FormatError(
            f"COPYR1 flags X'{flags:02X}' say the unload is known to be bad or of a "
            "reserved format",
            path,
            where,
        )
    return c1, len(rec)


def _parse_copyr2(rec: bytes, heads: int, where: str, path: str | None) -> list[DebExtent]:
    if len(rec) != COPYR2_SIZE:
        raise FormatError(
            f"second record is {len(rec)} bytes, not a COPYR2 ({COPYR2_SIZE} bytes)", path, where
        )
    c2 = parse_at(Copyr2, rec, 0, f"{where} COPYR2".strip(), path)
    count = c2.debbasic[0]
    if not 1 <= count <= MAX_EXTENTS:
        raise FormatError(f"COPYR2 gives {count} extents (1..{MAX_EXTENTS} allowed)", path, where)
    extents = []
    for i in range(count):
        x = c2.debxtent[i]
        ext = DebExtent(x.bcyl, x.bhead, x.ecyl, x.ehead, x.ntrk)
        if heads and (ext.ecyl * heads + ext.ehead) < (ext.bcyl * heads + ext.bhead):
            raise FormatError(
                f"COPYR2 extent {i + 1} ends ({ext.ecyl}/{ext.ehead}) before it begins "
                f"({ext.bcyl}/{ext.bhead})",
                path,
                where,
            )
        extents.append(ext)
    return extents


class _Unit(NamedTuple):
    flags: int
    cyl: int
    head: int
    rec: int
    key: bytes
    data: bytes
    place: str


def _units(chunks: Iterable[tuple[bytes, str]], path: str | None) -> Iterator[_Unit]:
    """Units from each chunk (a logical record, or the whole rest of a record-less
    stream); a unit may not run past the end of its chunk."""
    for chunk, place in chunks:
        pos = 0
        end = len(chunk)
        while pos < end:
            here = f"{place} offset {pos}"
            if pos + PREFIX_SIZE > end:
                raise FormatError(
                    f"{end - pos} bytes left, too short for a 12-byte block prefix", path, here
                )
            p = parse_at(BlockPrefix, chunk, pos, here, path)
            size = PREFIX_SIZE + p.klen + p.dlen
            if pos + size > end:
                raise FormatError(
                    f"block prefix says KL {p.klen} DL {p.dlen} but only "
                    f"{end - pos - PREFIX_SIZE} bytes follow it",
                    path,
                    here,
                )
            body = pos + PREFIX_SIZE
            yield _Unit(
                p.flags,
                p.cyl,
                p.head,
                p.rec,
                bytes(chunk[body : body + p.klen]),
                bytes(chunk[body + p.klen : pos + size]),
                here,
            )
            pos += size


def _ttr_calc(heads: int, extents: Sequence[DebExtent], path: str | None):
    def calc(unit: _Unit) -> Ttr:
        absolute = unit.cyl * heads + unit.head
        base = 0
        for ext in extents:
            first = ext.bcyl * heads + ext.bhead
            last = ext.ecyl * heads + ext.ehead
            if first <= absolute <= last:
                tt = base + absolute - first
                if tt > 0xFFFF:
                    break
                return tt, unit.rec
            base += ext.ntrk
        raise FormatError(
            f"block at CCHHR {unit.cyl}/{unit.head}/{unit.rec} lies outside the "
            f"{len(extents)} extent(s) COPYR2 gives",
            path,
            unit.place,
        )

    return calc


def _build(
    records: Iterator[bytes] | None,
    stream: bytes | None,
    where: str,
    path: str | None,
    copyr1_size: int | None = None,
) -> Unload:
    """Parse from logical records (``records``) or from a record-less ``stream``."""
    if records is not None:
        try:
            first = next(records)
            second = next(records)
        except StopIteration:
            raise FormatError(
                "the unload ends before its two header records (COPYR1, COPYR2)", path, where
            ) from None
        rec1, rec2 = bytes(first), bytes(second)
    else:
        size = copyr1_size or COPYR1_SIZE
        if len(stream) < size + COPYR2_SIZE:
            raise FormatError(f"{len(stream)} bytes: too short for COPYR1 and COPYR2", path, where)
        rec1, rec2 = stream[:size], stream[size : size + COPYR2_SIZE]
    c1, c1size = _check_copyr1(rec1, where, path)
    pdse = bool(c1.uldfmt & ULD_FROM_PDSE)
    heads = c1.devtype.heads
    extents = _parse_copyr2(rec2, heads, where, path)
    if not pdse and heads == 0:
        raise FormatError("COPYR1 gives 0 tracks per cylinder", path, where)
    more = max(0, c1.hdrcount - 2)

    def chunks() -> Iterator[tuple[bytes, str]]:
        if records is not None:
            n = 2
            for rec in records:
                n += 1
                if n <= 2 + more:
                    continue  # further header records (PDSE unloads): not used
                yield bytes(rec), f"{where} record {n}".strip()
        else:
            start = c1size + COPYR2_SIZE
            if more:
                raise UnsupportedError(
                    f"COPYR1 announces {c1.hdrcount} header records; without record "
                    "boundaries the extra ones cannot be skipped",
                    path,
                    where,
                )
            yield stream[start:], f"{where} offset {start}".strip()

    units = _units(chunks(), path)
    dir_blocks: list[tuple[bytes, bytes]] = []
    ended = False
    for unit in units:
        if not unit.key and not unit.data:
            ended = True
            break
        if len(unit.key) != DIRBLK_KEYLEN or len(unit.data) != DIRBLK_DATALEN:
            raise FormatError(
                f"directory unit {len(dir_blocks) + 1} is KL {len(unit.key)} DL "
                f"{len(unit.data)}, not KL {DIRBLK_KEYLEN} DL {DIRBLK_DATALEN}",
                path,
                unit.place,
            )
        if len(dir_blocks) >= MAX_DIRECTORY_UNITS:
            raise FormatError(f"more than {MAX_DIRECTORY_UNITS} directory blocks", path, where)
        dir_blocks.append((unit.key, unit.data))
    if not ended:
        raise FormatError(
            f"the directory ({len(dir_blocks)} blocks) has no end unit (12 zero bytes): "
            "the unload is truncated",
            path,
            where,
        )
    if pdse:
        dir_blocks = [_pdse_dirblock(key, data) for key, data in dir_blocks]
    try:
        entries = parse_blocks(dir_blocks, where=f"{where} unload".strip())
    except EmulatorError as exc:
        raise exc.located(path) from None
    blank = next((i for i, e in enumerate(entries) if not e.name), None)
    if blank is not None:  # eight blanks: no member can be written under that name
        raise FormatError(
            f"directory entry {blank + 1} has a blank member name", path, f"{where} unload".strip()
        )

    if pdse:

        def ttr_of(unit: _Unit) -> Ttr:
            # PDSE member tokens: the prefix's HH R (SOURCES.md #7).
            return unit.head, unit.rec

    else:
        ttr_of = _ttr_calc(heads, extents, path)

    runs: list[UnloadRun] = []
    current: list[UnloadBlock] = []
    in_attr = False
    for unit in units:
        if pdse and unit.flags & PFX_ATTR:
            in_attr = not (not unit.key and not unit.data)
            continue
        if in_attr:
            raise FormatError("PDSE attribute records without their end unit", path, unit.place)
        ttr = ttr_of(unit)
        if not unit.key and not unit.data:
            runs.append(UnloadRun(current[0].ttr if current else ttr, current, ttr))
            current = []
            continue
        current.append(UnloadBlock(ttr, unit.key, unit.data))
    if current:
        raise FormatError(
            f"the last member ({len(current)} blocks from TTR {_ttr_text(current[0].ttr)}) has "
            "no EOF unit: the unload is truncated",
            path,
            where,
        )

    by_ttr: dict[Ttr, tuple[int, int]] = {}
    for i, run in enumerate(runs):
        by_ttr.setdefault(run.ttr, (i, 0))
        for j, blk in enumerate(run.blocks):
            by_ttr.setdefault(blk.ttr, (i, j))
    unload = Unload(
        dsorg=c1.ds1dsorg,
        recfm=c1.ds1recfm,
        lrecl=c1.ds1lrecl,
        blksize=c1.ds1blkl,
        keylen=c1.ds1keyl,
        copyr1=c1,
        copyr1_size=c1size,
        extents=extents,
        entries=resolve_aliases(entries),
        runs=runs,
        dirblocks=len(dir_blocks),
        pdse=pdse,
        path=path,
        _by_ttr=by_ttr,
    )
    for e in unload.entries:
        run, index = unload._locate(e)  # every entry must name a block (FormatError)
        if pdse and index != 0:
            raise UnsupportedError(
                f"PDSE unload: member {e.name} TTR {_ttr_text(e.ttr)} is not the start of a "
                "member's data; this PDSE unload cannot be read correctly",
                path,
                where,
            )
    return unload


def _pdse_dirblock(key: bytes, data: bytes) -> tuple[bytes, bytes]:
    """A PDSE unload's directory block in PDS form: z/OS counts only the 8 name bytes
    of the end marker in the used count (SOURCES.md #7), a PDS all 12 of them."""
    used = int.from_bytes(data[0:2], "big")
    pos = 2
    while pos + NAME_LEN <= used:
        if data[pos : pos + NAME_LEN] == END_NAME:
            if pos + 12 > used and pos + 12 <= DIRBLK_DATALEN:
                data = (pos + 12).to_bytes(2, "big") + data[2:]
            break
        if pos + 12 > min(used, len(data)):  # a used count that lies ends the walk
            break
        pos += 12 + 2 * (data[pos + 11] & 0x1F)
    return key, data


def read_unload(records: Iterable[bytes], where: str = "", path: str | None = None) -> Unload:
    """Parse unload LOGICAL records (no BDW/SDW: as NETDATA carries them)."""
    return _build(iter(records), None, where, path)


def _looks_like_stream(data: bytes, c1size: int) -> bool:
    """True when a directory unit (or the directory's end) follows COPYR1 of
    ``c1size`` bytes and COPYR2."""
    pos = c1size + COPYR2_SIZE
    if len(data) < pos + PREFIX_SIZE:
        return False
    kl, dl = data[pos + 9], int.from_bytes(data[pos + 10 : pos + 12], "big")
    return (kl, dl) in ((DIRBLK_KEYLEN, DIRBLK_DATALEN), (0, 0))


def _split_blocks(data: bytes, path: str | None) -> list[bytes]:
    """Cut a byte stream of VS blocks at their BDW lengths (checked by deblocking)."""
    blocks = []
    pos = 0
    while pos < len(data):
        if pos + 4 > len(data):
            raise FormatError(
                f"{len(data) - pos} bytes at the end, too short for a block descriptor word",
                path,
                f"offset {pos}",
            )
        length = int.from_bytes(data[pos : pos + 2], "big")
        if length < 8 or pos + length > len(data):
            raise FormatError(
                f"BDW length {length} but {len(data) - pos} bytes are left in the file",
                path,
                f"block {len(blocks) + 1} offset {pos}",
            )
        blocks.append(data[pos : pos + length])
        pos += length
    return blocks


def _split_segments(data: bytes, path: str | None) -> list[bytes]:
    """Records given with SDWs but no BDWs: wrap each segment into a one-segment block."""
    blocks = []
    pos = 0
    while pos < len(data):
        if pos + 4 > len(data):
            raise FormatError(
                f"{len(data) - pos} bytes at the end, too short for a record descriptor word",
                path,
                f"offset {pos}",
            )
        length = int.from_bytes(data[pos : pos + 2], "big")
        if length < 4 or pos + length > len(data):
            raise FormatError(
                f"RDW length {length} but {len(data) - pos} bytes are left in the file",
                path,
                f"segment {len(blocks) + 1} offset {pos}",
            )
        blocks.append((length + 4).to_bytes(2, "big") + b"\0\0" + data[pos : pos + length])
        pos += length
    return blocks


NETDATA_INMR01 = bytes.fromhex("C9D5D4D9F0F1")


def detect_form(data: bytes) -> str:
    """ "blocks" (BDW+SDW), "segments" (SDW/RDW, no BDW), "stream" (no descriptors) or
    "" when the bytes do not start like an unload."""
    if data[9:12] == COPYR1_HDRID and data[2:4] == b"\0\0":
        return "blocks"
    if data[5:8] == COPYR1_HDRID:
        return "segments"
    if data[1:4] == COPYR1_HDRID:
        return "stream"
    return ""


def read_unload_file(path: str | os.PathLike) -> Unload:
    """Read an unload file in any of the three forms (module docstring)."""
    name = os.fspath(path)
    try:
        with open(name, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        raise NotFoundError(f"cannot read the unload file: {exc.strerror}", name) from None
    return parse_unload_bytes(data, name)


def parse_unload_bytes(data: bytes, path: str | None = None) -> Unload:
    """:func:`read_unload_file` on bytes already in memory."""
    form = detect_form(data)
    if form == "stream":
        for size in (COPYR1_SIZE, COPYR1_OLD_SIZE):
            if _looks_like_stream(data, size):
                return _build(None, data, "", path, size)
        return _build(None, data, "", path, COPYR1_SIZE)  # reports what is wrong
    if form in ("blocks", "segments"):
        blocks = _split_blocks(data, path) if form == "blocks" else _split_segments(data, path)
        try:
            records = rf.deblock(0x58, 0, blocks)  # VBS: one or more segments per block
        except EmulatorError as exc:
            raise exc.located(path) from None
        return read_unload(records, path=path)
    if data[2:8] == NETDATA_INMR01:
        raise FormatError(
            "this is a TSO XMIT (NETDATA) file, not an IEBCOPY unload: receive it instead",
            path,
        )
    raise FormatError(
        "not an IEBCOPY unload: no COPYR1 eye-catcher X'CA6D0F' at offset 1 (records), 5 "
        "(RDW) or 9 (BDW and RDW)",
        path,
    )


# ---------------------------------------------------------------------------------
# Copying members into a PDS (shared by load_unload and the iebcopy utility)
# ---------------------------------------------------------------------------------
class MemberSource:
    """What a member copy reads: a PDS on a volume or an unload.

    ``entries`` in directory order with ORIGINAL TTRs and ``alias_of``; ``blocks(e)``
    the member's blocks with their TTRs; ``eof(e)`` the TTR of its EOF; the DCB.
    """

    entries: list[DirEntry]
    recfm: int
    lrecl: int
    blksize: int
    keylen: int
    label: str

    def blocks(self, entry: DirEntry) -> list[UnloadBlock]:  # pragma: no cover - protocol
        raise NotImplementedError

    def eof(self, entry: DirEntry) -> Ttr:  # pragma: no cover - protocol
        raise NotImplementedError


class UnloadSource(MemberSource):
    def __init__(self, unload: Unload, label: str = ""):
        self.unload = unload
        self.entries = unload.entries
        self.recfm, self.lrecl, self.blksize, self.keylen = (
            unload.recfm,
            unload.lrecl,
            unload.blksize,
            unload.keylen,
        )
        self.label = label or (os.path.basename(unload.path) if unload.path else "unload")

    def blocks(self, entry: DirEntry) -> list[UnloadBlock]:
        return self.unload.blocks(entry)

    def eof(self, entry: DirEntry) -> Ttr:
        return self.unload.eof_ttr(entry)


class PdsSource(MemberSource):
    """A PDS read through :class:`emulator.pds.pds.Pds` (the EOF TTR is taken as the
    record after the last block: it is only a key in the TTR map)."""

    def __init__(self, pds: Any, label: str = ""):
        self.pds = pds
        info = pds.info
        self.entries = pds.members()
        self.recfm, self.lrecl, self.blksize, self.keylen = (
            info.recfm_raw,
            info.lrecl,
            info.blksize,
            info.keylen,
        )
        self.label = label or pds.dsname
        self._cache: dict[Ttr, list[UnloadBlock]] = {}

    def blocks(self, entry: DirEntry) -> list[UnloadBlock]:
        if entry.ttr not in self._cache:
            self._cache[entry.ttr] = [
                UnloadBlock((b.tt, b.r), b.key, b.data)
                for b in self.pds.blocks_with_ttr(entry.name)
            ]
        return self._cache[entry.ttr]

    def eof(self, entry: DirEntry) -> Ttr:
        blocks = self.blocks(entry)
        if not blocks:
            return entry.ttr
        tt, r = blocks[-1].ttr
        return (tt, r + 1) if r < 255 else (tt + 1, 1)


@dataclass(frozen=True)
class Pick:
    """One source entry to copy: its name in the source, its name in the target and
    whether an existing target member of that name is replaced."""

    name: str
    newname: str | None = None
    replace: bool = False

    @property
    def target(self) -> str:
        return self.newname or self.name


@dataclass(frozen=True)
class Copied:
    """What happened to one entry: ``status`` is "copied", "replaced", "not replaced"
    (exists, no replace) or "skipped" (an alias whose member was not copied)."""

    name: str
    source: str
    status: str
    alias_of: str | None = None
    entry: DirEntry | None = None

    @property
    def renamed(self) -> bool:
        return self.name != self.source

    @property
    def done(self) -> bool:
        return self.status in ("copied", "replaced")


def _alias_section_offset(data: bytes) -> int | None:
    if len(data) <= LM_ATR1:
        return None
    return LM_BASIC_SIZE + (LM_SCATTER_SIZE if data[LM_ATR1] & LM_ATR1_SCATTER else 0) + 3


def _rename_alias_target(entry: DirEntry, old_main: str, new_main: str) -> bytes:
    """A load-module alias's user data with PDS2MNM changed to the renamed member."""
    if old_main == new_main or load_module_alias_name(entry) != old_main:
        return entry.userdata
    off = _alias_section_offset(entry.userdata)
    if off is None:
        return entry.userdata
    data = entry.userdata
    return data[:off] + name_to_bytes(new_main) + data[off + NAME_LEN :]


def put_entries(pds: Any, entries: Sequence[DirEntry]) -> None:
    """Add or overwrite directory entries as they are (TTRs already right); one
    transaction with the caller's, SpaceError before writing when they do not fit."""
    directory = pds.directory()
    names = {e.name for e in entries}
    merged = [e for e in directory.entries if e.name not in names] + [
        replace(e, alias_of=None) for e in entries
    ]
    pds.write_directory(merged, directory)


def _check_dcb(source: MemberSource, info: Any, path: str | None, where: str) -> bool:
    """Whether blocks can be copied as they are (True) or need reblocking (False);
    ConflictError when the target cannot hold the source's records at all."""
    sfmt, tfmt = source.recfm & RECFM_FORMAT, info.recfm_raw & RECFM_FORMAT
    what = (
        f"{source.label} is RECFM {recfm_text(source.recfm)} LRECL {source.lrecl} BLKSIZE "
        f"{source.blksize}, {info.dsname} is RECFM {info.recfm} LRECL {info.lrecl} "
        f"BLKSIZE {info.blksize}"
    )
    if sfmt != tfmt or source.keylen != info.keylen:
        raise ConflictError(f"record formats differ: {what}", path, where)
    if sfmt == RECFM_F and source.lrecl != info.lrecl:
        raise ConflictError(f"LRECLs differ: {what}", path, where)
    if sfmt == RECFM_V and source.lrecl > info.lrecl:
        raise ConflictError(f"the input LRECL is larger: {what}", path, where)
    if source.blksize <= info.blksize or sfmt == RECFM_U:
        if sfmt == RECFM_U and source.blksize > info.blksize:
            raise ConflictError(f"the input block size is larger: {what}", path, where)
        return True
    return False


def copy_members(
    source: MemberSource,
    pds: Any,
    picks: Sequence[Pick] | None = None,
    replace_all: bool = False,
    group: bool = False,
) -> list[Copied]:
    """Copy entries from ``source`` into the open ``pds`` (caller holds the transaction).

    ``picks`` None: every entry, same names, replace = ``replace_all``.  Otherwise only
    the picked names (``group``: with every alias of a picked member, and a picked alias
    brings its member and the member's other aliases, as IEBCOPY COPYGROUP).  A main
    member is written with its blocks, user data relocated; its aliases (those copied)
    point at the copy, keeping their user data (TTRs relocated, a load-module alias's
    member name updated on rename).  An alias copied without its member gets its own
    copy of the data.  Results in source directory order.
    """
    info = pds.info
    where = f"{pds.vol.volser}: {pds.dsname}"
    path = getattr(pds.vol, "path", None)
    as_is = _check_dcb(source, info, path, where)
    by_name = {e.name: e for e in source.entries}
    wanted: dict[str, Pick] = {}
    if picks is None:
        wanted = {e.name: Pick(e.name, None, replace_all) for e in source.entries}
    else:
        for p in picks:
            wanted[p.name] = p
        if group:
            for p in list(picks):
                e = by_name.get(p.name)
                if e is None:
                    continue
                main = e.alias_of if e.alias else e.name
                for other in source.entries:
                    key = other.alias_of if other.alias else other.name
                    if key == main and other.name not in wanted:
                        wanted[other.name] = Pick(other.name, None, p.replace or replace_all)
    missing = [n for n in wanted if n not in by_name]
    if missing:
        raise NotFoundError(f"member {missing[0]} is not in {source.label}", path, where)
    existing = {e.name for e in pds.members()}
    results: dict[str, Copied] = {}
    # Groups keyed by the source TTR: the main member first, then its aliases.
    groups: dict[Ttr, list[DirEntry]] = {}
    for e in source.entries:
        if e.name in wanted:
            groups.setdefault(e.ttr, []).append(e)
    for ttr_key in sorted(groups):  # disk order, as IEBCOPY and dasdload copy
        members = groups[ttr_key]
        members.sort(key=lambda e: e.alias)
        main = members[0]
        pick = wanted[main.name]
        target = pick.target
        if target in existing and not pick.replace:
            results[main.name] = Copied(target, main.name, "not replaced", None)
            for a in members[1:]:
                ap = wanted[a.name]
                status = "not replaced" if ap.target in existing else "skipped"
                results[a.name] = Copied(ap.target, a.name, status, target)
            continue
        blocks = source.blocks(main)
        old_ttrs = [b.ttr for b in blocks]
        kd = [(b.key, b.data) for b in blocks]
        try:
            if as_is:
                new = pds.write(
                    target,
                    blocks=kd,
                    userdata=main.userdata,
                    ttr_count=main.ttr_count,
                    old_ttrs=old_ttrs,
                )
            else:
                recs = rf.deblock(source.recfm, source.lrecl, [d for _, d in kd])
                new = pds.write(target, records=recs, userdata=main.userdata, ttr_count=0)
        except EmulatorError as exc:
            raise exc.located(path, f"{where}({target})") from None
        mapping: dict[Ttr, Ttr] = {ttr_key: new.ttr, source.eof(main): new.ttr}
        if as_is and blocks:
            written = pds.blocks_with_ttr(target)
            mapping.update(zip(old_ttrs, [(b.tt, b.r) for b in written], strict=False))
        if main.alias:
            # An alias copied without its member: the copy is a real member now, but the
            # entry keeps the alias bit and user data, as the directory had it.
            new = replace(new, alias=True, userdata=relocate_userdata(main, mapping))
            put_entries(pds, [new])
        status = "replaced" if target in existing else "copied"
        results[main.name] = Copied(target, main.name, status, main.alias_of, new)
        existing.add(target)
        alias_entries = []
        for a in members[1:]:
            ap = wanted[a.name]
            if ap.target in existing and not ap.replace:
                results[a.name] = Copied(ap.target, a.name, "not replaced", target)
                continue
            userdata = relocate_userdata(a, mapping)
            userdata = _rename_alias_target(replace(a, userdata=userdata), main.name, target)
            ae = DirEntry(ap.target, new.ttr, True, a.ttr_count, userdata)
            alias_entries.append(ae)
            status = "replaced" if ap.target in existing else "copied"
            results[a.name] = Copied(ap.target, a.name, status, target, ae)
            existing.add(ap.target)
        if alias_entries:
            put_entries(pds, alias_entries)
    return [results[e.name] for e in source.entries if e.name in results]


# ---------------------------------------------------------------------------------
# Loading an unload into a PDS
# ---------------------------------------------------------------------------------
def _tracks_needed(device: Any, keylen: int, blocks: Iterable[tuple[int, int]]) -> int:
    """Tracks the (keylen, datalen) records take, packed as io.write_blocks packs them."""
    tracks, used = 1, 0
    for kl, dl in blocks:
        new = device.fits(used, kl, dl)
        if new is None:
            tracks += 1
            new = device.fits(0, kl, dl) or 0
        used = new
    return tracks


def space_for(device: Any, unload: Unload | MemberSource, dirblks: int) -> int:
    """Tracks a new PDS needs for the directory and every run of ``unload``."""
    keylen = unload.keylen
    sizes: list[tuple[int, int]] = [(DIRBLK_KEYLEN, DIRBLK_DATALEN)] * dirblks + [(0, 0)]
    if isinstance(unload, Unload):
        for run in unload.runs:
            sizes.extend((len(b.key) or keylen, len(b.data)) for b in run.blocks)
            sizes.append((0, 0))
    return _tracks_needed(device, keylen, sizes)


def load_unload(
    vol: Any,
    dsname: str,
    unload: Unload,
    replace: bool = True,
    select: Iterable[str] | Mapping[str, str] | None = None,
    dirblks: int | None = None,
) -> list[Copied]:
    """Load ``unload`` into PDS ``dsname`` on ``vol``; one transaction.

    A data set that does not exist is allocated with the unload's DCB, the directory
    blocks of the unload (or ``dirblks``, or what the entries need, the most of them)
    and room for every member.  ``select``: names (or {name: new name}) to load; their
    aliases come with them.  Existing members are replaced when ``replace``.
    """
    from emulator.pds.pds import Pds

    picks = None
    if select is not None:
        pairs = select.items() if isinstance(select, Mapping) else ((n, None) for n in select)
        picks = [
            Pick(validate_name(n), validate_name(new) if new else None, replace) for n, new in pairs
        ]
    with vol.transaction():
        try:
            vol.dataset(dsname)
        except NotFoundError:
            allocate_for(vol, dsname, unload, dirblks)
        pds = Pds(vol, dsname)
        return copy_members(
            UnloadSource(unload), pds, picks, replace_all=replace, group=picks is not None
        )


def allocate_for(vol: Any, dsname: str, unload: Unload, dirblks: int | None = None) -> Any:
    """Allocate a PDS fit to receive ``unload`` (its DCB, directory and size)."""
    nblocks = max(unload.dirblocks, blocks_needed(unload.entries), dirblks or 0, 1)
    tracks = space_for(vol.device, unload, nblocks)
    recfm = unload.recfm
    lrecl = unload.lrecl
    if recfm & RECFM_FORMAT == RECFM_U:
        lrecl = min(lrecl, unload.blksize)
    return vol.allocate(
        dsname,
        "PO",
        recfm=recfm,
        lrecl=lrecl,
        blksize=unload.blksize,
        keylen=unload.keylen,
        space=("TRK", tracks, max(1, tracks // 4)),
        dirblks=nblocks,
    )


def allocate_like(vol: Any, dsname: str, source: MemberSource) -> Any:
    """Allocate a PDS for copies from ``source`` (an unload or a PDS): its DCB, room
    for the directory and for every member it holds."""
    if isinstance(source, UnloadSource):
        return allocate_for(vol, dsname, source.unload)
    entries = source.entries
    nblocks = max(blocks_needed(entries), 1)
    pds = getattr(source, "pds", None)
    if pds is not None:
        nblocks = max(nblocks, pds.directory().blocks)
    sizes: list[tuple[int, int]] = [(DIRBLK_KEYLEN, DIRBLK_DATALEN)] * nblocks + [(0, 0)]
    seen: set[Ttr] = set()
    for e in entries:
        if e.ttr in seen:
            continue
        seen.add(e.ttr)
        sizes.extend((len(b.key), len(b.data)) for b in source.blocks(e))
        sizes.append((0, 0))
    tracks = _tracks_needed(vol.device, source.keylen, sizes)
    lrecl = source.lrecl
    if source.recfm & RECFM_FORMAT == RECFM_U:
        lrecl = min(lrecl, source.blksize)
    return vol.allocate(
        dsname,
        "PO",
        recfm=source.recfm,
        lrecl=lrecl,
        blksize=source.blksize,
        keylen=source.keylen,
        space=("TRK", tracks, max(1, tracks // 4)),
        dirblks=nblocks,
    )


# ---------------------------------------------------------------------------------
# Writing an unload
# ---------------------------------------------------------------------------------
def unload_dcb(blksize: int, keylen: int, largest: int = 0) -> tuple[int, int]:
    """(LRECL, BLKSIZE) of the unload data set for a PDS (FORMATS.md 8.1); ``largest``:
    the largest key + data of any block, when bigger than the PDS's BLKSIZE says."""
    lrecl = max(UNLOAD_MIN_LRECL, blksize + keylen + UNLOAD_LRECL_OVERHEAD, largest + 16)
    if lrecl > UNLOAD_MAX_LRECL:
        raise UnsupportedError(
            f"blocks of {lrecl - UNLOAD_LRECL_OVERHEAD} bytes need an unload LRECL of "
            f"{lrecl}, more than {UNLOAD_MAX_LRECL} (LRECL=X unloads are not written)"
        )
    return lrecl, min(UNLOAD_MAX_LRECL, lrecl + 4)


def _prefix(cyl: int, head: int, rec: int, key: bytes, data: bytes) -> bytes:
    return BlockPrefix.build(
        dict(flags=0, extent=0, bin=0, cyl=cyl, head=head, rec=rec, klen=len(key), dlen=len(data))
    )


def _devtype(vol: Any) -> dict:
    dev = vol.device
    return dict(
        ucbtype=UCB_PREFIX + bytes([dev.ucb_unit]),
        maxblk=dev.r1max,
        cyls=min(vol.cyls, 0xFFFF),
        heads=dev.heads,
        tracklen=min(dev.track_len, 0xFFFF),
        overhead=b"\0\0",
        keyovhd=0,
        devflags=0,
        tolerance=0,
    )


def _ydd(day: Any) -> bytes:
    try:
        return date_to_ydd(day)
    except FormatError:
        return bytes(3)  # a date a YDD field cannot hold: leave DS1REFD unset


def write_unload(vol: Any, dsname: str, members: Iterable[str] | None = None) -> list[bytes]:
    """The logical records of a z/OS-form unload of PDS ``dsname`` (module docstring).

    ``members``: names to unload (an alias brings nothing else along; a member's
    aliases are included only when named), None for all.
    """
    from emulator.pds.pds import Pds

    pds = Pds(vol, dsname)
    info = pds.info
    where = f"{vol.volser}: {info.dsname}"
    entries = pds.members()
    if members is not None:
        names = {validate_name(m) for m in members}
        missing = sorted(names - {e.name for e in entries})
        if missing:
            raise NotFoundError(f"member {missing[0]} not found", vol.path, where)
        entries = [e for e in entries if e.name in names]
    source = PdsSource(pds)
    heads = vol.heads
    runs: dict[Ttr, list[UnloadBlock]] = {}
    for e in entries:
        if e.ttr not in runs:
            runs[e.ttr] = source.blocks(e)
    largest = max((len(b.key) + len(b.data) for blocks in runs.values() for b in blocks), default=0)
    lrecl, blksize = unload_dcb(info.blksize, info.keylen, largest)
    ntrk = max(1, info.tracks)
    if ntrk > 0xFFFF:
        raise UnsupportedError(f"{ntrk} tracks do not fit a COPYR2 extent", vol.path, where)
    last = ntrk - 1
    lstar = info.lstar
    c1 = dict(
        uldfmt=ULD_FORMAT_OLD,
        hdrid=COPYR1_HDRID,
        ds1dsorg=info.dsorg_raw,
        ds1blkl=info.blksize,
        ds1lrecl=info.lrecl,
        ds1recfm=info.recfm_raw,
        ds1keyl=info.keylen,
        ds1optcd=0,
        ds1smsfg=0,
        uldblksz=blksize,
        devtype=_devtype(vol),
        hdrcount=2,
        resv1=0,
        ds1refd=_ydd(info.referenced),
        ds1scext=b"\0\0\0",
        ds1scalo=b"\0\0\0\0",
        ds1lstar=lstar[0].to_bytes(2, "big") + bytes([lstar[1]]),
        ds1trbal=info.trbal & 0xFFFF,
        resv2=b"\0\0",
    )
    copyr1 = Copyr1.build(c1)
    ext = dict(
        mask=0,
        ucbaddr=b"\0\0\0",
        bin=0,
        bcyl=0,
        bhead=0,
        ecyl=last // heads,
        ehead=last % heads,
        ntrk=ntrk,
    )
    zero_ext = dict(mask=0, ucbaddr=b"\0\0\0", bin=0, bcyl=0, bhead=0, ecyl=0, ehead=0, ntrk=0)
    copyr2 = Copyr2.build(
        dict(
            debbasic=b"\x01" + bytes(15),
            debxtent=[ext] + [zero_ext] * (MAX_EXTENTS - 1),
            resv=b"\0\0\0\0",
        )
    )
    limit = lrecl - 4
    records = [copyr1, copyr2]
    dir_units = [
        _prefix(0, 0, 0, key, data) + key + data
        for key, data in build_blocks(entries, blocks_needed(entries))
    ]
    records.extend(_pack(dir_units + [EMPTY_UNIT], limit))
    for start in sorted(runs):
        units = []
        blocks = runs[start]
        for b in blocks:
            cyl, head = divmod(b.ttr[0], heads)
            units.append(_prefix(cyl, head, b.ttr[1], b.key, b.data) + b.key + b.data)
        eof = source.eof(next(e for e in entries if e.ttr == start))
        cyl, head = divmod(eof[0], heads)
        units.append(_prefix(cyl, head, eof[1], b"", b""))
        records.extend(_pack(units, limit))
    return records


def _pack(units: list[bytes], limit: int) -> list[bytes]:
    out: list[bytes] = []
    cur = b""
    for u in units:
        if cur and len(cur) + len(u) > limit:
            out.append(cur)
            cur = b""
        cur += u
    if cur:
        out.append(cur)
    return out


def unload_lrecl(records: Sequence[bytes]) -> int:
    """The LRECL an unload's records were packed for (COPYR1 unload block size - 4)."""
    c1 = parse_at(Copyr1Old, records[0], 0, "COPYR1")
    return max(c1.uldblksz - 4, max(len(r) for r in records) + 4)


def write_unload_file(
    path: str | os.PathLike,
    vol: Any,
    dsname: str,
    members: Iterable[str] | None = None,
    descriptors: bool = True,
) -> int:
    """Write an unload file; returns its size.  ``descriptors``: VS blocks with BDW and
    SDW (RECFM=VS, LRECL/BLKSIZE of FORMATS.md 8.1: a standalone unload data set as on
    disk or tape); False: the records back to back (Hercules dasdload method VS).
    Written to a temporary name and renamed, so a failure leaves no file."""
    records = write_unload(vol, dsname, members)
    return write_records_file(path, records, descriptors)


def write_records_file(
    path: str | os.PathLike, records: Sequence[bytes], descriptors: bool = True
) -> int:
    """Write unload ``records`` as a file (see :func:`write_unload_file`)."""
    if descriptors:
        lrecl = unload_lrecl(records)
        blocks = rf.block(UNLOAD_RECFM, lrecl, lrecl + 4, records)
        data = b"".join(blocks)
    else:
        data = b"".join(records)
    name = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(name))
    fd, tmp = tempfile.mkstemp(prefix=".unload-", dir=folder)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, name)
    except BaseException:
        try:
            os.remove(tmp)
        except OSError:
            pass
        raise
    return len(data)


__all__ = [
    "Unload",
    "UnloadRun",
    "UnloadBlock",
    "DebExtent",
    "read_unload",
    "read_unload_file",
    "parse_unload_bytes",
    "detect_form",
    "load_unload",
    "allocate_for",
    "allocate_like",
    "write_unload",
    "write_unload_file",
    "write_records_file",
    "unload_dcb",
    "copy_members",
    "put_entries",
    "Pick",
    "Copied",
    "MemberSource",
    "UnloadSource",
    "PdsSource",
]
