"""Track signatures: fast non-cryptographic hashes of track images.

A *track signature* (docs/formats/fingerprint.md, "Track signatures") is a 64-bit hash
of a track image from its home address up to and including the end-of-track marker
(FORMATS.md 1.2: bytes past the marker in a slot are garbage and never hashed).  It
only tells ``ssm fingerprint --since`` which tracks changed; content equality is
always decided by BLAKE3 digests.

A Numba walk over the count fields (:func:`slot_lengths`) finds each track's length;
the bytes are then hashed with XXH3-64, about as fast as memory delivers them (a Numba
hash of 64-bit words ran at half that speed, bound by its multiplications).  XXH3 is
the C function compiled into the ``xxhash`` package's extension, called by name from
a Numba kernel (:func:`slot_signatures`): no Python call per track and, unlike the
package's Python binding, the GIL is released, so two workers hash side by side.  When
the extension does not export it, the binding is called per track instead; both give
the same values.  Layout offsets come in as arguments, never as globals.
"""

from __future__ import annotations

import ctypes

import numba as nb
import numpy as np
import xxhash
from llvmlite import binding as llvm_binding
from llvmlite import ir
from numba.core import cgutils, types
from numba.extending import intrinsic

from emulator.layouts import offsets as layout_offsets
from emulator.layouts.ckd import COUNT_SIZE, HA_SIZE, CountField

#: Error codes of :func:`track_used` (as emulator.kernels.tracks).
ERR_OK = 0
ERR_SHORT = 1
ERR_NO_EOT = 2
ERR_OVERRUN = 3


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
def slot_lengths(slots, rows, ha_size, count_size, off_kl, off_dl):
    """(bytes used, error code) of the tracks in ``slots[rows]``: up to and including
    the end marker, or the whole slot for a malformed track (so a change to it is
    still seen; the error code says it is malformed)."""
    n = len(rows)
    used = np.zeros(n, dtype=np.int64)
    err = np.zeros(n, dtype=np.int8)
    for k in range(n):
        u, e = track_used(slots, rows[k], ha_size, count_size, off_kl, off_dl)
        err[k] = e
        used[k] = u if e == ERR_OK else slots.shape[1]
    return used, err


def _find_xxh3() -> str | None:
    """The name of an exported XXH3-64 entry point of the ``xxhash`` extension, made
    visible to Numba's linker; None when there is none (see the module docstring)."""
    try:
        from xxhash import _xxhash as extension

        library = ctypes.CDLL(extension.__file__)
        for name in ("XXH3_64bits_dispatch", "XXH3_64bits"):  # dispatch: best SIMD here
            if hasattr(library, name):
                llvm_binding.load_library_permanently(extension.__file__)
                return name
    except (ImportError, OSError, AttributeError):
        pass
    return None


#: Resolved once per process, before any kernel that calls it is loaded from the cache.
XXH3_SYMBOL = _find_xxh3()


@intrinsic
def _xxh3_at(typingctx, arr, off, n):
    """XXH3-64 of the ``n`` bytes at ``arr.data + off`` (C-contiguous uint8; the caller
    keeps the range inside the array), through the exported C function."""
    sig = types.uint64(arr, types.intp, types.intp)

    def codegen(context, builder, signature, args):
        a, o, count = args
        aarr = context.make_array(signature.args[0])(context, builder, a)
        byte = ir.IntType(8).as_pointer()
        p = builder.gep(builder.bitcast(aarr.data, byte), [o])
        fnty = ir.FunctionType(ir.IntType(64), [byte, ir.IntType(64)])
        fn = cgutils.get_or_insert_function(builder.module, fnty, XXH3_SYMBOL)
        return builder.call(fn, [p, count])

    return sig, codegen


@nb.njit(cache=True, nogil=True)
def slot_signatures(slots, rows, used):
    """XXH3-64 of ``slots[rows[k], :used[k]]`` for every k, 0 replaced by 1."""
    out = np.empty(len(rows), dtype=np.uint64)
    width = slots.shape[1]
    for k in range(len(rows)):
        h = _xxh3_at(slots, rows[k] * width, used[k])
        out[k] = h if h != 0 else np.uint64(1)
    return out


_COUNT_OFF = layout_offsets(CountField)
#: (ha_size, count_size, off_rec, off_kl, off_dl) for the kernels in this package.
LAYOUT = np.array(
    [HA_SIZE, COUNT_SIZE, _COUNT_OFF["rec"], _COUNT_OFF["keylen"], _COUNT_OFF["datalen"]],
    dtype=np.int64,
)


def track_signatures(slots: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(signatures uint64, error codes int8) of the tracks in ``slots[rows]``:
    XXH3-64 of each track's used bytes (:func:`slot_lengths`), 0 replaced by 1 (0 means
    "not read" in a fingerprint)."""
    rows = np.ascontiguousarray(rows, dtype=np.int64)
    used, err = slot_lengths(
        slots, rows, int(LAYOUT[0]), int(LAYOUT[1]), int(LAYOUT[3]), int(LAYOUT[4])
    )
    if XXH3_SYMBOL is not None and slots.flags.c_contiguous:
        return slot_signatures(slots, rows, used), err
    flat = memoryview(slots).cast("B")  # slot arrays are C-contiguous
    starts = rows * slots.shape[1]
    xxh3 = xxhash.xxh3_64_intdigest
    sigs = np.fromiter(
        (xxh3(flat[a:b]) for a, b in zip(starts.tolist(), (starts + used).tolist(), strict=True)),
        dtype=np.uint64,
        count=len(rows),
    )
    sigs[sigs == 0] = 1
    return sigs, err


def aligned_slots(rows: int, trksize: int) -> np.ndarray:
    """A zeroed (rows, trksize) uint8 array whose rows are 8-byte aligned."""
    size = rows * trksize
    raw = np.zeros(size + 64, dtype=np.uint8)
    start = (-raw.ctypes.data) % 64
    return raw[start : start + size].reshape(rows, trksize)


__all__ = ["track_used", "slot_lengths", "track_signatures", "aligned_slots", "LAYOUT"]
