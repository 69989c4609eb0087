"""Fast non-cryptographic hashes of track images, compiled with Numba.

A *track signature* (docs/formats/fingerprint.md, "Track signature") is a 64-bit hash
of a track image from its home address up to and including the end-of-track marker
(FORMATS.md 1.2: bytes past the marker in a slot are garbage and never hashed).  It
only tells ``ssm fingerprint --since`` which tracks changed; content equality is
always decided by BLAKE3 digests.

The hash is XXH64's round function over 8-byte little-endian words in four
independent lanes (so the CPU overlaps the multiplications), folded with the length;
the last ``used % 8`` bytes enter one by one.  It runs at memory bandwidth.  It is not
XXH64 itself (the lanes are not the reference algorithm's stripes) and needs no
interoperability: signatures are only compared with signatures made by this module.

Track slots must be 8-byte aligned for the word view: a plain image's slots are (512
+ t*trksize, trksize a multiple of 512), and buffers made by the fingerprint engine
are allocated that way.  Layout offsets come in as arguments, never as globals.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from emulator.layouts import offsets as layout_offsets
from emulator.layouts.ckd import COUNT_SIZE, HA_SIZE, CountField

_P1 = np.uint64(11400714785074694791)
_P2 = np.uint64(14029467366897019727)
_P3 = np.uint64(1609587929392839161)
_P4 = np.uint64(9650029242287828579)
_P5 = np.uint64(2870177450012600261)

#: Error codes of :func:`track_used` (as emulator.kernels.tracks).
ERR_OK = 0
ERR_SHORT = 1
ERR_NO_EOT = 2
ERR_OVERRUN = 3


@nb.njit(cache=True, nogil=True, inline="always")
def _rotl(x, r):
    return (x << np.uint64(r)) | (x >> np.uint64(64 - r))


@nb.njit(cache=True, nogil=True, inline="always")
def _round(acc, w, p1, p2):
    acc = acc + w * p2
    acc = (acc << np.uint64(31)) | (acc >> np.uint64(33))
    return acc * p1


@nb.njit(cache=True, nogil=True)
def hash_words(words, bytes_, row, used, seed):
    """Hash ``used`` bytes of row ``row``: ``words`` is the uint64 view and ``bytes_``
    the uint8 view of the same 2-D slot array."""
    p1, p2, p3, p4, p5 = _P1, _P2, _P3, _P4, _P5
    s = np.uint64(seed)
    a0 = s + p1 + p2
    a1 = s + p2
    a2 = s
    a3 = s - p1
    nw = used // 8
    i = 0
    while i + 4 <= nw:
        a0 = _round(a0, words[row, i], p1, p2)
        a1 = _round(a1, words[row, i + 1], p1, p2)
        a2 = _round(a2, words[row, i + 2], p1, p2)
        a3 = _round(a3, words[row, i + 3], p1, p2)
        i += 4
    h = _rotl(a0, 1) + _rotl(a1, 7) + _rotl(a2, 12) + _rotl(a3, 18)
    while i < nw:
        h ^= _round(np.uint64(0), words[row, i], p1, p2)
        h = _rotl(h, 27) * p1 + p4
        i += 1
    for j in range(nw * 8, used):
        h ^= np.uint64(bytes_[row, j]) * p5
        h = _rotl(h, 11) * p1
    h += np.uint64(used)
    h ^= h >> np.uint64(33)
    h *= p2
    h ^= h >> np.uint64(29)
    h *= p3
    h ^= h >> np.uint64(32)
    if h == np.uint64(0):
        h = np.uint64(1)  # 0 means "not read" in a fingerprint
    return h


@nb.njit(cache=True, nogil=True)
def track_used(slots, row, ha_size, count_size, off_kl, off_dl):
    """(bytes used up to and including the end marker, error code) of one track slot;
    the walk is bounded by the slot."""
    limit = slots.shape[1]
    if limit < ha_size + count_size:
        return 0, ERR_SHORT
    pos = ha_size
    while True:
        if pos + count_size > limit:
            return 0, ERR_NO_EOT
        eot = True
        for i in range(count_size):
            if slots[row, pos + i] != 0xFF:
                eot = False
                break
        if eot:
            return pos + count_size, ERR_OK
        kl = np.int64(slots[row, pos + off_kl])
        dl = (np.int64(slots[row, pos + off_dl]) << 8) | np.int64(slots[row, pos + off_dl + 1])
        pos += count_size + kl + dl
        if pos > limit:
            return 0, ERR_OVERRUN


@nb.njit(cache=True, nogil=True)
def slot_signatures(slots, words, rows, ha_size, count_size, off_kl, off_dl):
    """Signatures of the tracks in ``slots[rows]``: (sigs uint64, used int64, err int8).

    A malformed track (no end marker inside its slot) is hashed whole, so a change to
    it is still seen; its error code tells the caller it is malformed.
    """
    n = len(rows)
    sigs = np.zeros(n, dtype=np.uint64)
    used = np.zeros(n, dtype=np.int64)
    err = np.zeros(n, dtype=np.int8)
    for k in range(n):
        row = rows[k]
        u, e = track_used(slots, row, ha_size, count_size, off_kl, off_dl)
        err[k] = e
        if e != ERR_OK:
            u = slots.shape[1]
        used[k] = u
        sigs[k] = hash_words(words, slots, row, u, 0)
    return sigs, used, err


_COUNT_OFF = layout_offsets(CountField)
#: (ha_size, count_size, off_rec, off_kl, off_dl) for the kernels in this package.
LAYOUT = np.array(
    [HA_SIZE, COUNT_SIZE, _COUNT_OFF["rec"], _COUNT_OFF["keylen"], _COUNT_OFF["datalen"]],
    dtype=np.int64,
)


def word_view(slots: np.ndarray) -> np.ndarray:
    """The uint64 view of a 2-D uint8 slot array (slots must be 8-byte aligned)."""
    if slots.shape[1] % 8 or slots.ctypes.data % 8:
        raise ValueError("track slots must be 8-byte aligned multiples of 8 bytes")
    return slots.view(np.uint64)


def signatures(slots: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`slot_signatures` with the count-field layout filled in."""
    return slot_signatures(
        slots,
        word_view(slots),
        np.ascontiguousarray(rows, dtype=np.int64),
        int(LAYOUT[0]),
        int(LAYOUT[1]),
        int(LAYOUT[3]),
        int(LAYOUT[4]),
    )


def aligned_slots(rows: int, trksize: int) -> np.ndarray:
    """A zeroed (rows, trksize) uint8 array whose rows are 8-byte aligned."""
    size = rows * trksize
    raw = np.zeros(size + 64, dtype=np.uint8)
    start = (-raw.ctypes.data) % 64
    return raw[start : start + size].reshape(rows, trksize)


__all__ = [
    "hash_words",
    "track_used",
    "slot_signatures",
    "signatures",
    "word_view",
    "aligned_slots",
    "LAYOUT",
]
