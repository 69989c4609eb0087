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
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from emulator.errors import FormatError, SpaceError
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


def _sort_key(entry: DirEntry) -> bytes:
    return entry.name_bytes


def _block_starts(sizes: Iterable[int]) -> Iterator[bool]:
    """The greedy packing, given the bytes of each entry in name order and then the
    end marker's: True for an entry that starts a new directory block."""
    used = 2
    for size in sizes:
        new = used + size > DIRBLK_DATALEN
        if new:
            used = 2
        used += size
        yield new


def _pack(entries: Sequence[DirEntry]) -> list[list[DirEntry | None]]:
    """Greedy packing in name order; ``None`` stands for the 12-byte end marker."""
    items: list[DirEntry | None] = [*sorted(entries, key=_sort_key), None]
    sizes = (DIRENTRY_SIZE if item is None else item.size for item in items)
    blocks: list[list[DirEntry | None]] = [[]]
    for item, new in zip(items, _block_starts(sizes), strict=True):
        if new:
            blocks.append([])
        blocks[-1].append(item)
    return blocks


def blocks_needed(entries: Sequence[DirEntry]) -> int:
    """Directory blocks the entries (and the end marker) take when packed."""
    return len(_pack(entries))


def blocks_needed_for(user_data_lengths: Mapping[str, int]) -> int:
    """:func:`blocks_needed` for entries given as name -> user-data length (no entry
    objects: an import sizes directories of thousands of new members)."""
    names = sorted(user_data_lengths, key=name_to_bytes)
    sizes = [DIRENTRY_SIZE + user_data_lengths[n] for n in names] + [DIRENTRY_SIZE]
    return 1 + sum(_block_starts(sizes))


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
    counts = Counter(e.name_bytes for e in entries)
    if len(counts) != len(entries):
        dup = min(n for n, c in counts.items() if c > 1)
        raise FormatError(f"duplicate directory entry {name_from_bytes(dup)!r}")
    packed = _pack(entries)
    if len(packed) > nblocks:
        raise SpaceError(f"directory full: {nblocks} blocks, need {len(packed)}")
    out: list[tuple[bytes, bytes]] = []
    for items in packed:
        body = b"".join(END_NAME + b"\x00" * 4 if item is None else item.pack() for item in items)
        last = items[-1]
        key = END_NAME if last is None else last.name_bytes
        count = (2 + len(body)).to_bytes(2, "big")
        out.append((key, (count + body).ljust(DIRBLK_DATALEN, b"\x00")))
    out.extend((UNUSED_KEY, b"\x00" * DIRBLK_DATALEN) for _ in range(nblocks - len(packed)))
    return out, _end_block_count(packed[-1])


def _end_block_count(items: list[DirEntry | None]) -> int:
    """DS1NOBDB from the packed end block (see :func:`nobdb`)."""
    used = 2 + sum(DIRENTRY_SIZE if item is None else item.size for item in items)
    return used & 0xFF


def nobdb(entries: Sequence[DirEntry], nblocks: int) -> int:
    """DS1NOBDB as Hercules dasdload writes it: the used count of the block holding the
    end marker (X'0E' for an empty directory).

    The field is one byte, so a completely used end block (256) cannot be stored; the
    value is kept modulo 256 as dasdload's byte assignment would (unconfirmed: no such
    directory has been seen).
    """
    packed = _pack(entries)
    if len(packed) > nblocks:
        raise SpaceError(f"directory full: {nblocks} blocks, need {len(packed)}")
    return _end_block_count(packed[-1])


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
    "blocks_needed_for",
    "note_list_ref",
    "load_module_alias_name",
    "IspfStats",
]
