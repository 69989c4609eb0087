"""PDS directory: entries and directory blocks (FORMATS.md 6.1, 6.2, 6.4).

The directory is the first records of a partitioned data set: CKD records with an
8-byte key (the last name in the block, X'FF'*8 for the block holding the end marker)
and 256 data bytes.  Data bytes 0-1 count the bytes used, themselves included; entries
follow in ascending EBCDIC name order and continue across blocks::

    name(8) || TTR(3) || C(1) || user data (2 * (C & X'1F') bytes)

C: X'80' alias, X'60' number of TTRs in the user data, X'1F' user-data halfwords.
The end of the directory is an entry named X'FF'*8, counted as 12 bytes in the used
count; the blocks after it have key X'00'*8 and 256 zero bytes (as Hercules writes).

This module is pure (no I/O): :func:`parse_blocks` and :func:`build_blocks` convert
between ``(key, data)`` pairs and :class:`DirEntry` lists; :mod:`emulator.pds.pds`
reads and writes them on a volume.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from emulator.errors import FormatError, SpaceError
from emulator.kernels.directory import fill_entries, pack_entries
from emulator.layouts import offsets
from emulator.layouts.pds import (
    C_ALIAS,
    C_TTRN_MASK,
    C_TTRN_SHIFT,
    C_USERLEN_MASK,
    DIRBLK_DATALEN,
    DIRBLK_KEYLEN,
    DIRENTRY_SIZE,
    END_NAME,
)
from emulator.layouts.pds import DirEntry as _DirEntryPlain
from emulator.pds.ispf import IspfStats

#: Field offsets of an entry's fixed part, from the same declaration: parsing reads them
#: by slicing (a directory of thousands of entries is read on every member change).
_ENTRY_AT = offsets(_DirEntryPlain)
_NAME_AT, _TTR_AT, _C_AT = _ENTRY_AT["pdsmembr"], _ENTRY_AT["pdsttrp"], _ENTRY_AT["pdsindc"]
if (_NAME_AT, _TTR_AT, _C_AT) != (0, 8, 11):  # DirEntry.pack joins the fields in this order
    raise ImportError("emulator.layouts.pds.DirEntry is not name(8) || TTR(3) || C(1)")

#: Member names are plain EBCDIC letters, digits and national characters, on which code
#: pages 037 and 1047 agree; names read from disk are decoded with 037 so every byte
#: value round-trips.
NAME_CODEPAGE = "cp037"
NAME_LEN = 8
BLANK = 0x40
#: Used-count of a block holding only the end marker (X'000E', FORMATS.md 6.1).
EMPTY_BLOCK_COUNT = 2 + DIRENTRY_SIZE
USERDATA_MAX = 2 * C_USERLEN_MASK  # 62 bytes
#: Hercules fills directory blocks after the end marker with this key and zero data.
UNUSED_KEY = b"\x00" * DIRBLK_KEYLEN
#: Offsets in load-module user data (IHAPDS, FORMATS.md 6.4); the i-th user TTR is at
#: 4*i, as Hercules dasdload's update_dirblk relocates them.
USER_TTR_STRIDE = 4
LM_NOTE_COUNT = 7  # PDS2NL: number of note-list entries (after TTRN at 4..6)
LM_ATR1 = 8
LM_ATR1_SCATTER = 0x04  # PDS2SCTR: scatter-load section present
LM_BASIC_SIZE = 21  # TTRT, zero, TTRN, NL, ATR(2), STOR(3), FTBL(2), EPA(3), FTBO(3)
LM_SCATTER_SIZE = 8
LM_ALIAS_SIZE = 11  # entry point (3) + name of the main member (8)

_NAME_RE = re.compile(r"[A-Z@#$][A-Z0-9@#$]{0,7}")


def validate_name(name: str, where: str = "") -> str:
    """Upper-case a member name and check it: 1-8 of A-Z 0-9 @ # $, no leading digit."""
    upper = name.upper() if isinstance(name, str) else ""
    if not _NAME_RE.fullmatch(upper):
        raise FormatError(
            f"invalid member name {name!r}: 1-8 characters A-Z 0-9 @ # $, not starting with a digit",
            where=where,
        )
    return upper


#: Latin-1 byte -> code page 037 byte: cp037 maps exactly the 256 Latin-1 characters, and
#: a table lookup is far cheaper than the codec for the thousands of names of a directory.
_TO_NAME_CODEPAGE = bytes(range(256)).decode("latin-1").encode(NAME_CODEPAGE)


def name_to_bytes(name: str) -> bytes:
    """A member name as its 8 directory bytes (EBCDIC, blank padded)."""
    raw = name.encode("latin-1").translate(_TO_NAME_CODEPAGE)
    if not 1 <= len(raw) <= NAME_LEN:
        raise FormatError(f"member name {name!r} is not 1-8 characters")
    return raw + bytes([BLANK]) * (NAME_LEN - len(raw))


def name_from_bytes(raw: bytes) -> str:
    """8 directory bytes -> the name; only trailing EBCDIC blanks are dropped, so any
    byte string round-trips through :func:`name_to_bytes`."""
    return raw.rstrip(bytes([BLANK])).decode(NAME_CODEPAGE)


def ttr_bytes(ttr: tuple[int, int]) -> bytes:
    tt, r = ttr
    return tt.to_bytes(2, "big") + bytes([r])


def ttr_from(raw: bytes) -> tuple[int, int]:
    return int.from_bytes(raw[0:2], "big"), raw[2]


@dataclass(frozen=True)
class DirEntry:
    """One directory entry (FORMATS.md 6.2).

    ``ttr`` is (relative track, record) of the member's first block; ``ttr_count`` the
    number of TTRs in ``userdata`` (C bits 1-2) that move with the member; ``alias_of``
    is filled in by :meth:`emulator.pds.pds.Pds.members` and is not part of the entry
    on disk (it takes no part in comparisons).
    """

    name: str
    ttr: tuple[int, int]
    alias: bool = False
    ttr_count: int = 0
    userdata: bytes = b""
    alias_of: str | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        tt, r = self.ttr
        if not (0 <= tt <= 0xFFFF and 0 <= r <= 0xFF):
            raise FormatError(f"member {self.name}: TTR {self.ttr} out of range")
        if not 0 <= self.ttr_count <= 3:
            raise FormatError(f"member {self.name}: {self.ttr_count} user TTRs (0-3 allowed)")
        size = len(self.userdata)
        if size % 2 or size > USERDATA_MAX:
            raise FormatError(
                f"member {self.name}: user data of {size} bytes (must be even, at most {USERDATA_MAX})"
            )

    @property
    def c_byte(self) -> int:
        """The C byte: alias bit, TTR count, user-data halfwords."""
        return (
            (C_ALIAS if self.alias else 0)
            | (self.ttr_count << C_TTRN_SHIFT)
            | (len(self.userdata) // 2)
        )

    @property
    def size(self) -> int:
        """Bytes the entry takes in a directory block."""
        return DIRENTRY_SIZE + len(self.userdata)

    @functools.cached_property
    def name_bytes(self) -> bytes:
        """The name's 8 directory bytes (cached: every sort of a directory uses them)."""
        return name_to_bytes(self.name)

    @property
    def ispf(self) -> IspfStats | None:
        """ISPF statistics in the user data, or None (load modules, no statistics)."""
        if self.ttr_count:
            return None
        return IspfStats.decode(self.userdata)

    @property
    def user_ttrs(self) -> list[tuple[int, int]]:
        """The TTRs in the user data counted by the C byte (load modules: text, note
        list), in order."""
        return [ttr_from(self.userdata[off : off + 3]) for off in user_ttr_offsets(self)]

    @property
    def alias_section_name(self) -> str | None:
        """Load-module alias: the main member's name from the alias section of the user
        data (IHAPDS PDS2MNM), or None when there is none."""
        return load_module_alias_name(self)

    def pack(self) -> bytes:
        """The entry's bytes in a directory block: name || TTR || C (the declared order,
        checked at import) || user data, joined directly since a directory of thousands
        of entries is rebuilt on every member change."""
        tt, r = self.ttr
        return b"".join(
            (self.name_bytes, tt.to_bytes(2, "big"), bytes((r, self.c_byte)), self.userdata)
        )


def user_ttr_offsets(entry: DirEntry) -> list[int]:
    """Offsets in the user data of the TTRs counted in the C byte (4*i: TTR of text at
    0, TTR of the note list at 4, as IHAPDS and Hercules dasdload place them)."""
    # A C byte that counts more TTRs than the user data holds is tolerated on reading
    # (check() reports it); only the TTRs that are really there are returned.
    return [
        USER_TTR_STRIDE * i
        for i in range(entry.ttr_count)
        if USER_TTR_STRIDE * i + 3 <= len(entry.userdata)
    ]


def relocate_userdata(entry: DirEntry, mapping: dict[tuple[int, int], tuple[int, int]]) -> bytes:
    """User data with every counted TTR replaced through ``mapping`` (old -> new).

    A TTR missing from the mapping is left as it is: a zero TTR (no note list) is
    normal, and anything else points outside the member, which :func:`check` reports.
    """
    data = bytearray(entry.userdata)
    for off in user_ttr_offsets(entry):
        old = ttr_from(bytes(data[off : off + 3]))
        new = mapping.get(old)
        if new is not None:
            data[off : off + 3] = ttr_bytes(new)
    return bytes(data)


def note_list_ref(entry: DirEntry) -> tuple[tuple[int, int], int] | None:
    """(TTR of the note list record, number of 4-byte entries) of a load module that has
    one, as Hercules dasdload relocates it: not an alias, two user TTRs, count byte non-zero."""
    if entry.alias or entry.ttr_count < 2 or len(entry.userdata) <= LM_NOTE_COUNT:
        return None
    count = entry.userdata[LM_NOTE_COUNT]
    if count == 0:
        return None
    return ttr_from(entry.userdata[USER_TTR_STRIDE : USER_TTR_STRIDE + 3]), count


def load_module_alias_name(entry: DirEntry) -> str | None:
    """The main member's name in a load-module alias entry (IHAPDS alias section: entry
    point (3) then PDS2MNM (8), after the basic section and the scatter section if
    ATR1 X'04' says there is one).  None if the entry has no such section or the bytes
    there are not a valid member name."""
    if not entry.alias or entry.ttr_count == 0:
        return None
    data = entry.userdata
    if len(data) <= LM_ATR1:
        return None
    off = LM_BASIC_SIZE + (LM_SCATTER_SIZE if data[LM_ATR1] & LM_ATR1_SCATTER else 0) + 3
    if len(data) < off + NAME_LEN:
        return None
    name = name_from_bytes(data[off : off + NAME_LEN])
    try:
        return validate_name(name)
    except FormatError:
        return None


def parse_blocks(blocks: Iterable[tuple[bytes, bytes]], where: str = "") -> list[DirEntry]:
    """Directory blocks ``(key, data)`` -> entries, up to the X'FF'*8 end marker.

    Checks each block's size, used count (2..256) and that every entry lies inside the
    used bytes; a violation is a FormatError naming the block (1-based) and the offset.
    Names out of order and keys that disagree with the block's last name are accepted
    here (real directories are read as they are) and reported by :func:`check`.
    Running out of blocks before the end marker is a FormatError.
    """
    entries: list[DirEntry] = []
    prefix = f"{where} " if where else ""
    number = 0
    for number, (key, data) in enumerate(blocks, start=1):
        place = f"{prefix}directory block {number}"
        if len(key) != DIRBLK_KEYLEN or len(data) != DIRBLK_DATALEN:
            raise FormatError(
                f"key length {len(key)} and data length {len(data)}, expected "
                f"{DIRBLK_KEYLEN} and {DIRBLK_DATALEN}",
                where=place,
            )
        used = int.from_bytes(data[0:2], "big")
        if not 2 <= used <= DIRBLK_DATALEN:
            raise FormatError(f"used-byte count {used} at offset 0 is outside 2..256", where=place)
        pos = 2
        while pos < used:
            if pos + DIRENTRY_SIZE > used:
                raise FormatError(
                    f"entry at offset {pos} runs past the used count {used}", where=place
                )
            name_raw = bytes(data[pos + _NAME_AT : pos + _NAME_AT + NAME_LEN])
            if name_raw == END_NAME:
                return entries
            c = data[pos + _C_AT]
            userlen = 2 * (c & C_USERLEN_MASK)
            end = pos + DIRENTRY_SIZE + userlen
            if end > used:
                raise FormatError(
                    f"entry {name_from_bytes(name_raw)!r} at offset {pos} with {userlen} "
                    f"bytes of user data runs past the used count {used}",
                    where=place,
                )
            try:
                entry = DirEntry(
                    name=name_from_bytes(name_raw),
                    ttr=ttr_from(data[pos + _TTR_AT : pos + _TTR_AT + 3]),
                    alias=bool(c & C_ALIAS),
                    ttr_count=(c & C_TTRN_MASK) >> C_TTRN_SHIFT,
                    userdata=bytes(data[pos + DIRENTRY_SIZE : end]),
                )
            except FormatError as exc:
                raise exc.located(where=f"{place} offset {pos}") from None
            entry.__dict__["name_bytes"] = name_raw  # the cached property, already known
            entries.append(entry)
            pos = end
    raise FormatError(
        f"no end-of-directory entry (X'FF'*8) in {number} directory block(s)",
        where=where,
    )


class _Packing(NamedTuple):
    """Entries packed greedily in name order: ``order`` (entry indexes in name order),
    ``block`` and ``at`` (directory block and data offset of each, in that order),
    ``blocks`` (used blocks, the end marker's included) and ``end_at`` (the end
    marker's offset in the last one)."""

    order: np.ndarray
    block: np.ndarray
    at: np.ndarray
    blocks: int
    end_at: int


def _packing(keys: np.ndarray, sizes: np.ndarray | Sequence[int]) -> _Packing:
    """The packing of entries with name ``keys`` (:meth:`EntryColumns.keys`) and byte
    ``sizes``: sorted by name, each block filled while the next entry fits."""
    order = np.argsort(keys, kind="stable")
    ordered = np.asarray(sizes, dtype=np.int64)[order]
    block, at = pack_entries(ordered, DIRBLK_DATALEN, DIRENTRY_SIZE)
    return _Packing(order, block[:-1], at[:-1], int(block[-1]) + 1, int(at[-1]))


@dataclass(frozen=True)
class EntryColumns:
    """Directory entries as columns, what :class:`DirEntry` holds one row each: the
    form an import of thousands of new members builds a directory from, with no object
    per entry.  ``names``: (n, 8) uint8, EBCDIC, blank padded; ``ttr``: TT << 8 | R;
    ``c``: the C byte; ``userdata``: (n, 62) uint8, entry i's user data being the first
    ``2 * (c[i] & X'1F')`` bytes of row i."""

    names: np.ndarray
    ttr: np.ndarray
    c: np.ndarray
    userdata: np.ndarray

    _FIELDS = ("names", "ttr", "c", "userdata")

    def __len__(self) -> int:
        return len(self.ttr)

    @classmethod
    def gather(
        cls,
        raw: np.ndarray,
        name_at: np.ndarray,
        name_len: np.ndarray,
        ttr: np.ndarray,
        alias: np.ndarray,
        ttr_count: np.ndarray,
        userdata_at: np.ndarray,
        userdata_len: np.ndarray,
        where: str = "",
    ) -> EntryColumns:
        """Entries whose names (EBCDIC, 1-8 bytes) and user data lie in ``raw`` at the
        given offsets; the checks of :class:`DirEntry`, as a FormatError naming the
        first entry that fails one."""
        name_len = np.asarray(name_len, dtype=np.int64)
        userdata_len = np.asarray(userdata_len, dtype=np.int64)
        ttr = np.asarray(ttr, dtype=np.int64)
        ttr_count = np.asarray(ttr_count, dtype=np.int64)
        bad_name = (name_len < 1) | (name_len > NAME_LEN)
        bad = (
            bad_name
            | (ttr < 0)
            | (ttr > 0xFFFFFF)
            | (ttr_count < 0)
            | (ttr_count > 3)
            | (userdata_len % 2 == 1)
            | (userdata_len > USERDATA_MAX)
        )
        if bad.any():
            i = int(np.argmax(bad))
            a, n = int(name_at[i]), int(name_len[i])
            name = bytes(raw[a : a + n]).decode(NAME_CODEPAGE)
            if bad_name[i]:
                raise FormatError(f"member name {name!r} is not 1-8 characters", where=where)
            try:
                DirEntry(  # raises the entry's own message
                    name,
                    (int(ttr[i]) >> 8, int(ttr[i]) & 0xFF),
                    ttr_count=int(ttr_count[i]),
                    userdata=bytes(int(userdata_len[i])),
                )
            except FormatError as exc:
                raise exc.located(where=where) from None
        names = _rows(raw, name_at, name_len, NAME_LEN, BLANK)
        c = (
            np.where(np.asarray(alias, dtype=bool), C_ALIAS, 0)
            | (ttr_count << C_TTRN_SHIFT)
            | (userdata_len // 2)
        ).astype(np.uint8)
        return cls(names, ttr, c, _rows(raw, userdata_at, userdata_len, USERDATA_MAX, 0))

    @classmethod
    def of(cls, entries: Sequence[DirEntry]) -> EntryColumns:
        """The columns of ``entries`` (checked already, as DirEntry objects)."""
        n = len(entries)
        names = np.frombuffer(b"".join([e.name_bytes for e in entries]), dtype=np.uint8)
        fields = np.array(
            [((e.ttr[0] << 8) | e.ttr[1], e.c_byte) for e in entries], dtype=np.int64
        ).reshape(n, 2)
        userdata = [e.userdata for e in entries]
        ud_len = np.fromiter(map(len, userdata), dtype=np.int64, count=n)
        ud = np.frombuffer(b"".join(userdata), dtype=np.uint8)
        return cls(
            names.reshape(n, NAME_LEN),
            fields[:, 0],
            fields[:, 1].astype(np.uint8),
            _rows(ud, np.cumsum(ud_len) - ud_len, ud_len, USERDATA_MAX, 0),
        )

    @classmethod
    def join(cls, parts: Sequence[EntryColumns]) -> EntryColumns:
        """The rows of ``parts`` one after another; a name in a later part replaces the
        same name in an earlier one (as a dict of entries updated in turn)."""
        cols = cls(*(np.concatenate([getattr(p, f) for p in parts]) for f in cls._FIELDS))
        keys = cols.keys()[::-1]
        _, last = np.unique(keys, return_index=True)  # first of the reversed: the last
        if len(last) == len(keys):
            return cols
        return cols.take(np.sort(len(keys) - 1 - last))

    def take(self, rows: np.ndarray) -> EntryColumns:
        return EntryColumns(*(getattr(self, f)[rows] for f in self._FIELDS))

    def entry(self, i: int) -> DirEntry:
        """Row ``i`` as a :class:`DirEntry`."""
        c, ttr = int(self.c[i]), int(self.ttr[i])
        return DirEntry(
            name_from_bytes(self.names[i].tobytes()),
            (ttr >> 8, ttr & 0xFF),
            alias=bool(c & C_ALIAS),
            ttr_count=(c & C_TTRN_MASK) >> C_TTRN_SHIFT,
            userdata=self.userdata[i, : 2 * (c & C_USERLEN_MASK)].tobytes(),
        )

    def find(self, name: str) -> int | None:
        """The row of the entry named ``name``, or None."""
        key = int.from_bytes(name_to_bytes(name), "big")
        rows = np.flatnonzero(self.keys() == key)
        return int(rows[-1]) if len(rows) else None

    def keys(self) -> np.ndarray:
        """The names as big-endian 64-bit integers: their order is the EBCDIC order."""
        return np.ascontiguousarray(self.names).view(">u8").ravel()

    def ttr_counts(self) -> np.ndarray:
        """TTRs counted in each entry's user data (C bits 1-2)."""
        return (self.c.astype(np.int64) & C_TTRN_MASK) >> C_TTRN_SHIFT

    def sizes(self) -> np.ndarray:
        """Bytes each entry takes in a directory block."""
        return DIRENTRY_SIZE + 2 * (self.c.astype(np.int64) & C_USERLEN_MASK)

    def blocks_needed(self) -> int:
        """Directory blocks the entries (and the end marker) take when packed."""
        return _packing(self.keys(), self.sizes()).blocks

    def build(self, nblocks: int) -> tuple[list[tuple[bytes, bytes]], int]:
        """:func:`build_directory` of these entries."""
        keys = self.keys()
        pk = _packing(keys, self.sizes())
        ordered = keys[pk.order]
        same = np.flatnonzero(ordered[1:] == ordered[:-1])
        if len(same):
            dup = self.names[pk.order[same[0]]].tobytes()
            raise FormatError(f"duplicate directory entry {name_from_bytes(dup)!r}")
        if pk.blocks > nblocks:
            raise SpaceError(f"directory full: {nblocks} blocks, need {pk.blocks}")
        n = len(self)
        image = np.zeros((nblocks, DIRBLK_DATALEN), dtype=np.uint8)
        # Each entry's bytes as a row: name || TTR || C || user data (then padding).
        rows = np.empty((n, DIRENTRY_SIZE + USERDATA_MAX), dtype=np.uint8)
        rows[:, _NAME_AT : _NAME_AT + NAME_LEN] = self.names
        ttr = self.ttr.astype(">u4").view(np.uint8).reshape(n, 4)
        rows[:, _TTR_AT : _TTR_AT + 3] = ttr[:, 1:]
        rows[:, _C_AT] = self.c
        rows[:, DIRENTRY_SIZE:] = self.userdata
        sizes = self.sizes()[pk.order]
        fill_entries(image, rows, pk.order, sizes, pk.block, pk.at)
        end = pk.blocks - 1
        image[end, pk.end_at : pk.end_at + NAME_LEN] = 0xFF
        used = np.full(pk.blocks, 2, dtype=np.int64)
        np.add.at(used, pk.block, sizes)
        used[end] += DIRENTRY_SIZE
        image[: pk.blocks, 0] = used >> 8
        image[: pk.blocks, 1] = used & 0xFF
        last = np.searchsorted(pk.block, np.arange(end), side="right") - 1
        block_keys = [self.names[pk.order[i]].tobytes() for i in last.tolist()]
        block_keys += [END_NAME] + [UNUSED_KEY] * (nblocks - pk.blocks)
        out = [(k, image[b].tobytes()) for b, k in enumerate(block_keys)]
        return out, int(used[end]) & 0xFF


def _rows(
    raw: np.ndarray, at: np.ndarray, lengths: np.ndarray, width: int, fill: int
) -> np.ndarray:
    """(n, ``width``) uint8: row i holds ``raw[at[i] : at[i] + lengths[i]]``, then ``fill``."""
    n = len(lengths)
    out = np.full((n, width), fill, dtype=np.uint8)
    total = int(lengths.sum())
    if total:
        row = np.repeat(np.arange(n), lengths)
        col = np.arange(total) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        out[row, col] = raw[np.repeat(np.asarray(at, dtype=np.int64), lengths) + col]
    return out


def _packing_of(entries: Sequence[DirEntry]) -> _Packing:
    """:func:`_packing` of entry objects (names as keys, as :meth:`EntryColumns.keys`)."""
    keys = np.frombuffer(b"".join(e.name_bytes for e in entries), dtype=">u8")
    return _packing(keys, [e.size for e in entries])


def blocks_needed(entries: Sequence[DirEntry]) -> int:
    """Directory blocks the entries (and the end marker) take when packed."""
    return _packing_of(entries).blocks


def build_blocks(entries: Sequence[DirEntry], nblocks: int) -> list[tuple[bytes, bytes]]:
    """Entries -> ``nblocks`` directory blocks ``(key, data)``, packed the way Hercules
    dasdload and IEBCOPY leave them: sorted by EBCDIC name, each block filled while the
    next entry fits, the end marker after the last entry (its 12 bytes counted), key =
    last name in the block (X'FF'*8 for the end block), then unused blocks of key
    X'00'*8 and zero data.  SpaceError ("directory full") when they do not fit.
    """
    return build_directory(entries, nblocks)[0]


def build_directory(
    entries: Sequence[DirEntry], nblocks: int
) -> tuple[list[tuple[bytes, bytes]], int]:
    """:func:`build_blocks` and :func:`nobdb` from one packing: ``(blocks, DS1NOBDB)``
    (a directory rewrite needs both; packing sorts every entry)."""
    return EntryColumns.of(entries).build(nblocks)


def nobdb(entries: Sequence[DirEntry], nblocks: int) -> int:
    """DS1NOBDB as Hercules dasdload writes it: the used count of the block holding the
    end marker (X'0E' for an empty directory).

    The field is one byte, so a completely used end block (256) cannot be stored; the
    value is kept modulo 256 as dasdload's byte assignment would (unconfirmed: no such
    directory has been seen).
    """
    pk = _packing_of(entries)
    if pk.blocks > nblocks:
        raise SpaceError(f"directory full: {nblocks} blocks, need {pk.blocks}")
    return (pk.end_at + DIRENTRY_SIZE) & 0xFF


def check(blocks: Sequence[tuple[bytes, bytes]], where: str = "") -> list[str]:
    """Problems a reader tolerates but a writer must not leave: names out of order or
    repeated, keys that disagree with the last name of their block, used data after the
    end block.  Returns one message per problem (empty list = clean)."""
    problems: list[str] = []
    prefix = f"{where}: " if where else ""
    try:
        entries = parse_blocks(blocks, where)
    except FormatError as exc:
        return [str(exc)]
    previous: bytes | None = None
    for entry in entries:
        if len(user_ttr_offsets(entry)) != entry.ttr_count:
            problems.append(
                f"{prefix}member {entry.name!r} counts {entry.ttr_count} user TTRs in "
                f"{len(entry.userdata)} bytes of user data"
            )
        raw = entry.name_bytes
        if previous is not None and raw <= previous:
            what = "repeated" if raw == previous else "out of order"
            problems.append(f"{prefix}member {entry.name!r} is {what} in the directory")
        previous = raw
    ended = False
    for number, (key, data) in enumerate(blocks, start=1):
        if ended:
            if data.strip(b"\x00") or key not in (UNUSED_KEY, END_NAME):
                problems.append(f"{prefix}directory block {number} after the end is not empty")
            continue
        used = int.from_bytes(data[0:2], "big")
        pos, last = 2, None
        while pos + DIRENTRY_SIZE <= used:
            name = bytes(data[pos : pos + NAME_LEN])
            if name == END_NAME:
                ended = True
                last = END_NAME
                break
            last = name
            pos += DIRENTRY_SIZE + 2 * (data[pos + 11] & C_USERLEN_MASK)
        if last is not None and bytes(key) != last:
            problems.append(
                f"{prefix}directory block {number} key {bytes(key).hex().upper()} is not its "
                f"last name {last.hex().upper()}"
            )
    return problems


__all__ = [
    "DirEntry",
    "EntryColumns",
    "parse_blocks",
    "build_blocks",
    "build_directory",
    "blocks_needed",
    "nobdb",
    "check",
    "validate_name",
    "name_to_bytes",
    "name_from_bytes",
    "user_ttr_offsets",
    "relocate_userdata",
    "note_list_ref",
    "load_module_alias_name",
    "IspfStats",
]
