"""Blocks of ``blocks`` and ``members`` payloads as columns (docs/formats/basket.md
"Payloads").

A payload of new member data holds tens of thousands of blocks.  Decoding them into one
Python object each cost more than inflating the payload, so a Numba scan records where
every block's key and data are (:class:`BlockTable`, offsets into the payload bytes) and
members see their blocks through a :class:`BlockRun`, which makes ``Block`` tuples only
when someone iterates it.  The import's one-pass load reads the columns directly.

Every bound is checked in the scan (nothing in a payload can make it read outside the
payload or allocate more than the payload's size implies); a violation comes back as a
code and position that the caller turns into the same ``FormatError`` as before.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Sequence
from typing import NamedTuple, overload

import numba as nb
import numpy as np


class Block(NamedTuple):
    """A block of a member payload: ``ttr`` = TT << 8 | R on the source (0: unknown)."""

    ttr: int
    key: bytes
    data: bytes


#: Block header in a payload: ttr(4) keylen(1) zero(1) zero(2) datalen(4), little-endian.
BLOCK_HEADER = struct.Struct("<IBBHI")
_BLOCK_KL_AT = 4
_BLOCK_DL_AT = 8

#: Scan results (``code`` of :func:`scan_blocks` / :func:`scan_members`).
SCAN_OK = 0
SCAN_SHORT = 1  # ``need`` bytes needed at ``pos``
SCAN_COUNT = 2  # the count ``need`` read at ``pos`` exceeds what the payload can hold
SCAN_EXTRA = 3  # ``need`` bytes after the last block's data, at ``pos``


class BlockTable(NamedTuple):
    """Where the blocks of a payload are: row i is a block with source TTR ``ttr[i]``,
    key ``raw[key_off[i] : key_off[i] + key_len[i]]`` and data
    ``raw[data_off[i] : data_off[i] + data_len[i]]``."""

    payload: bytes
    raw: np.ndarray  # uint8 view of ``payload``
    ttr: np.ndarray
    key_off: np.ndarray
    key_len: np.ndarray
    data_off: np.ndarray
    data_len: np.ndarray

    def block(self, i: int) -> Block:
        k, kl, d, dl = (
            int(self.key_off[i]),
            int(self.key_len[i]),
            int(self.data_off[i]),
            int(self.data_len[i]),
        )
        return Block(int(self.ttr[i]), self.payload[k : k + kl], self.payload[d : d + dl])


class ListView(Sequence):
    """A sequence made on demand from a payload's columns that compares equal to a list
    of the same items (so decoded payloads compare like the lists they were encoded
    from); ``noun`` names its items in its repr."""

    __slots__ = ()
    noun = "items"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Sequence) and not isinstance(other, str | bytes):
            return list(self) == list(other)
        return NotImplemented

    def __repr__(self) -> str:
        return f"{type(self).__name__}({len(self)} {self.noun})"


class BlockRun(ListView, Sequence[Block]):
    """Blocks ``lo .. hi-1`` of a :class:`BlockTable`, read like a list of ``Block``."""

    __slots__ = ("table", "lo", "hi")
    noun = "blocks"

    def __init__(self, table: BlockTable, lo: int, hi: int):
        self.table, self.lo, self.hi = table, lo, hi

    def __len__(self) -> int:
        return self.hi - self.lo

    @overload
    def __getitem__(self, i: int) -> Block: ...
    @overload
    def __getitem__(self, i: slice) -> list[Block]: ...
    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self.table.block(self.lo + j) for j in range(*i.indices(len(self)))]
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError("block index out of range")
        return self.table.block(self.lo + i)

    def __iter__(self) -> Iterator[Block]:
        block = self.table.block
        return (block(j) for j in range(self.lo, self.hi))


def run_of(blocks: Sequence[Block]) -> BlockRun:
    """The blocks as a :class:`BlockRun` (one copy of their bytes); a BlockRun is
    returned as it is."""
    if isinstance(blocks, BlockRun):
        return blocks
    keys = [bytes(b.key) for b in blocks]
    datas = [bytes(b.data) for b in blocks]
    payload = b"".join(x for pair in zip(keys, datas, strict=True) for x in pair)
    key_len = np.fromiter(map(len, keys), dtype=np.int64, count=len(keys))
    data_len = np.fromiter(map(len, datas), dtype=np.int64, count=len(datas))
    ends = np.cumsum(key_len + data_len)
    key_off = ends - key_len - data_len
    ttr = np.fromiter((b.ttr for b in blocks), dtype=np.int64, count=len(blocks))
    raw = np.frombuffer(payload, dtype=np.uint8)
    table = BlockTable(payload, raw, ttr, key_off, key_len, key_off + key_len, data_len)
    return BlockRun(table, 0, len(blocks))


@nb.njit(cache=True, nogil=True, inline="always")
def _u32_nb(raw, pos):
    """The little-endian u32 at ``raw[pos]`` (the caller checked the bounds)."""
    return (
        np.int64(raw[pos])
        | (np.int64(raw[pos + 1]) << 8)
        | (np.int64(raw[pos + 2]) << 16)
        | (np.int64(raw[pos + 3]) << 24)
    )


@nb.njit(cache=True, nogil=True)
def _scan_run(raw, pos, n, header, kl_at, dl_at, ttr, koff, klen, doff, dlen, base, data, end):
    """Read ``n`` blocks from ``raw[pos:]`` into the columns from row ``base``:
    (code, pos, need, data) as :func:`scan_blocks`.  ``data`` < 0: each header is
    followed by its key and data (``P1``, ``B1``); else the keys and data lie from
    offset ``data`` up to ``end`` of the payload, one block after another (``P2``), and
    the offset after this run's is returned."""
    size = len(raw)
    for i in range(n):
        if pos + header > size:
            return SCAN_SHORT, pos, header, data
        t = _u32_nb(raw, pos)
        kl = np.int64(raw[pos + kl_at])
        dl = _u32_nb(raw, pos + dl_at)
        pos += header
        at = pos if data < 0 else data
        if at + kl + dl > (size if data < 0 else end):
            return SCAN_SHORT, at, kl + dl, data
        j = base + i
        ttr[j] = t
        koff[j] = at
        klen[j] = kl
        doff[j] = at + kl
        dlen[j] = dl
        if data < 0:
            pos += kl + dl
        else:
            data += kl + dl
    return SCAN_OK, pos, 0, data


@nb.njit(cache=True, nogil=True)
def _scan_count(raw, pos, minimum):
    """(code, pos after the count, count) for a u32 count whose items take at least
    ``minimum`` bytes each."""
    if pos + 4 > len(raw):
        return SCAN_SHORT, pos, 4
    n = _u32_nb(raw, pos)
    if n * minimum > len(raw) - pos - 4:
        return SCAN_COUNT, pos, n
    return SCAN_OK, pos + 4, n


@nb.njit(cache=True, nogil=True)
def _scan_blocks(raw, pos, header, kl_at, dl_at):
    code, pos, n = _scan_count(raw, pos, header)
    if code != SCAN_OK:
        z = np.zeros(0, dtype=np.int64)
        return code, pos, n, z, z, z, z, z
    ttr = np.zeros(n, dtype=np.int64)
    koff = np.zeros(n, dtype=np.int64)
    klen = np.zeros(n, dtype=np.int64)
    doff = np.zeros(n, dtype=np.int64)
    dlen = np.zeros(n, dtype=np.int64)
    code, pos, need, _ = _scan_run(
        raw, pos, n, header, kl_at, dl_at, ttr, koff, klen, doff, dlen, 0, -1, 0
    )
    return code, pos, need, ttr, koff, klen, doff, dlen


def scan_blocks(payload: bytes, pos: int) -> tuple[int, int, int, BlockTable]:
    """A block count and its blocks from ``payload[pos:]``: ``(code, pos, need, table)``,
    ``pos`` after them when ``code`` is SCAN_OK, else where the problem is."""
    raw = np.frombuffer(payload, dtype=np.uint8)
    code, pos, need, *cols = _scan_blocks(raw, pos, BLOCK_HEADER.size, _BLOCK_KL_AT, _BLOCK_DL_AT)
    return int(code), int(pos), int(need), BlockTable(payload, raw, *cols)


@nb.njit(cache=True, nogil=True)
def _scan_members(raw, pos, n, header, kl_at, dl_at, data, end):
    size = len(raw)
    # per member: name offset, name length, flags, TTR count, user-data offset and
    # length, target, first block, block count
    mem = np.zeros((n, 9), dtype=np.int64)
    # No payload holds more blocks than this; np.empty: only the rows written are ever
    # touched (zeroing this bound for a 10 MB payload cost more than the scan).
    cap = (size - pos) // header + 1
    ttr = np.empty(cap, dtype=np.int64)
    koff = np.empty(cap, dtype=np.int64)
    klen = np.empty(cap, dtype=np.int64)
    doff = np.empty(cap, dtype=np.int64)
    dlen = np.empty(cap, dtype=np.int64)
    nb_ = 0
    for i in range(n):
        if pos + 1 > size:
            return SCAN_SHORT, pos, 1, mem, nb_, ttr, koff, klen, doff, dlen
        nl = np.int64(raw[pos])
        pos += 1
        if pos + nl > size:
            return SCAN_SHORT, pos, nl, mem, nb_, ttr, koff, klen, doff, dlen
        mem[i, 0] = pos
        mem[i, 1] = nl
        pos += nl
        if pos + 3 > size:
            return SCAN_SHORT, pos, 3, mem, nb_, ttr, koff, klen, doff, dlen
        mem[i, 2] = raw[pos]
        mem[i, 3] = raw[pos + 1]
        ul = np.int64(raw[pos + 2])
        pos += 3
        if pos + ul > size:
            return SCAN_SHORT, pos, ul, mem, nb_, ttr, koff, klen, doff, dlen
        mem[i, 4] = pos
        mem[i, 5] = ul
        pos += ul
        if pos + 4 > size:
            return SCAN_SHORT, pos, 4, mem, nb_, ttr, koff, klen, doff, dlen
        mem[i, 6] = _u32_nb(raw, pos)
        pos += 4
        code, pos, cnt = _scan_count(raw, pos, header)
        if code != SCAN_OK:
            return code, pos, cnt, mem, nb_, ttr, koff, klen, doff, dlen
        if nb_ + cnt > cap:  # cannot happen after the count check; keeps the writes bounded
            return SCAN_COUNT, pos - 4, cnt, mem, nb_, ttr, koff, klen, doff, dlen
        mem[i, 7] = nb_
        mem[i, 8] = cnt
        code, pos, need, data = _scan_run(
            raw, pos, cnt, header, kl_at, dl_at, ttr, koff, klen, doff, dlen, nb_, data, end
        )
        if code != SCAN_OK:
            return code, pos, need, mem, nb_, ttr, koff, klen, doff, dlen
        nb_ += cnt
    if data >= 0 and data != end:
        return SCAN_EXTRA, data, end - data, mem, nb_, ttr, koff, klen, doff, dlen
    return SCAN_OK, pos, 0, mem, nb_, ttr, koff, klen, doff, dlen


def scan_members(
    payload: bytes | np.ndarray, pos: int, n: int, data: int = -1, end: int = 0
) -> tuple[int, int, int, np.ndarray, BlockTable]:
    """``n`` member entries from ``payload[pos:]``: ``(code, pos, need, members,
    table)``; ``members`` has one row per entry (name offset and length, flags, TTR
    count, user-data offset and length, target, first block, block count).

    ``data`` >= 0 (a ``P2`` payload): ``payload`` ends with the head, whose blocks'
    keys and data lie one after another from offset ``data`` to exactly ``end`` of the
    whole payload (SCAN_EXTRA when they end before it); the table's offsets are into
    the whole payload, which ``payload`` need not hold."""
    raw = np.frombuffer(payload, dtype=np.uint8)
    code, pos, need, mem, used, *cols = _scan_members(
        raw, pos, n, BLOCK_HEADER.size, _BLOCK_KL_AT, _BLOCK_DL_AT, data, end
    )
    table = BlockTable(payload, raw, *(c[:used].copy() for c in cols))
    return int(code), int(pos), int(need), mem, table


if BLOCK_HEADER.format != "<IBBHI":  # the scan reads the fields at these offsets
    raise ImportError("ssm.basket.blocks: block header layout changed")

__all__ = [
    "Block",
    "BlockRun",
    "BlockTable",
    "BLOCK_HEADER",
    "run_of",
    "scan_blocks",
    "scan_members",
    "SCAN_OK",
    "SCAN_SHORT",
    "SCAN_COUNT",
    "SCAN_EXTRA",
]
