"""Count-field walks over track images (FORMATS.md 1.2), compiled with Numba.

:func:`walk_counts` walks one track image, or a run of fixed-size track slots such as
an ``np.memmap`` of a plain image file, and returns where every record is.  It never
raises inside compiled code: a malformed track gets an error code in ``err`` and its
records stop where the walk stopped.  Layout offsets come in as arguments (from
``emulator.layouts.offsets(CountField)``), never from module globals, so the compiled
code does not depend on import order and the cache stays valid.

Results are in CSR form: the records of track ``t`` are ``starts[t]:starts[t+1]`` of
``offsets`` (absolute positions of the count fields in ``buf``), ``recnos``,
``keylens`` and ``datalens``.  Record 0 of each walked track is R0.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from emulator.errors import FormatError
from emulator.layouts import offsets as layout_offsets
from emulator.layouts.ckd import COUNT_SIZE, HA_SIZE, CountField

ERR_OK = 0
ERR_SHORT = 1  # slot too short for HA and one count field
ERR_NO_EOT = 2  # ran out of the slot looking for the end-of-track marker
ERR_OVERRUN = 3  # a record's key and data run past the end of the slot

ERROR_TEXT = {
    ERR_SHORT: "track image is shorter than HA and R0",
    ERR_NO_EOT: "no end-of-track marker before the end of the slot",
    ERR_OVERRUN: "a record runs past the end of the slot",
}


@nb.njit(cache=True)
def _walk_one(buf, base, limit, ha_size, count_size, off_kl, off_dl, out_off, out_n, store):
    """Walk one track in buf[base:limit]; returns (records, used length, error)."""
    pos = base + ha_size
    n = 0
    if limit - base < ha_size + count_size:
        return 0, 0, ERR_SHORT
    while True:
        if pos + count_size > limit:
            return n, 0, ERR_NO_EOT
        eot = True
        for i in range(count_size):
            if buf[pos + i] != 0xFF:
                eot = False
                break
        if eot:
            return n, pos + count_size - base, ERR_OK
        kl = np.int64(buf[pos + off_kl])
        dl = (np.int64(buf[pos + off_dl]) << 8) | np.int64(buf[pos + off_dl + 1])
        if store:
            out_off[out_n + n] = pos
        n += 1
        pos += count_size + kl + dl
        if pos > limit:
            return n, 0, ERR_OVERRUN


@nb.njit(cache=True)
def walk_counts(buf, start, end, slot, ha_size, count_size, off_rec, off_kl, off_dl):
    """Walk the tracks in ``buf[start:end]``, one every ``slot`` bytes.

    Returns ``(starts, offsets, recnos, keylens, datalens, used, err)``: ``used[t]`` is
    the track length up to and including the end marker (0 on error), ``err[t]`` one
    of the ``ERR_*`` codes.  The walk of a slot is bounded by the slot, so garbage
    can never make it loop.
    """
    ntrk = (end - start) // slot if slot > 0 else 0
    counts = np.zeros(ntrk, dtype=np.int64)
    used = np.zeros(ntrk, dtype=np.int64)
    err = np.zeros(ntrk, dtype=np.int8)
    dummy = np.zeros(0, dtype=np.int64)
    for t in range(ntrk):
        base = start + t * slot
        n, u, e = _walk_one(
            buf, base, base + slot, ha_size, count_size, off_kl, off_dl, dummy, 0, False
        )
        counts[t] = n
        used[t] = u
        err[t] = e
    starts = np.zeros(ntrk + 1, dtype=np.int64)
    for t in range(ntrk):
        starts[t + 1] = starts[t] + counts[t]
    total = starts[ntrk]
    offs = np.empty(total, dtype=np.int64)
    for t in range(ntrk):
        base = start + t * slot
        _walk_one(
            buf, base, base + slot, ha_size, count_size, off_kl, off_dl, offs, starts[t], True
        )
    recnos = np.empty(total, dtype=np.uint8)
    keylens = np.empty(total, dtype=np.int64)
    datalens = np.empty(total, dtype=np.int64)
    for i in range(total):
        p = offs[i]
        recnos[i] = buf[p + off_rec]
        keylens[i] = buf[p + off_kl]
        datalens[i] = (np.int64(buf[p + off_dl]) << 8) | np.int64(buf[p + off_dl + 1])
    return starts, offs, recnos, keylens, datalens, used, err


_COUNT_OFF = layout_offsets(CountField)


def walk_slots(buf: np.ndarray, slot: int, start: int = 0, end: int | None = None):
    """:func:`walk_counts` with the count-field layout filled in (``buf`` is uint8)."""
    if end is None:
        end = len(buf)
    return walk_counts(
        buf,
        start,
        end,
        slot,
        HA_SIZE,
        COUNT_SIZE,
        _COUNT_OFF["rec"],
        _COUNT_OFF["keylen"],
        _COUNT_OFF["datalen"],
    )


def track_records(image: bytes | bytearray | memoryview | np.ndarray, include_r0: bool = False):
    """(offsets, keylens, datalens) of the records of one track image (R1.. unless
    ``include_r0``); offsets are those of the count fields.  FormatError if malformed."""
    buf = np.frombuffer(image, dtype=np.uint8) if not isinstance(image, np.ndarray) else image
    if len(buf) == 0:
        raise FormatError(ERROR_TEXT[ERR_SHORT])
    _starts, offs, recnos, keylens, datalens, _used, err = walk_slots(buf, len(buf))
    if err[0] != ERR_OK:
        raise FormatError(ERROR_TEXT[int(err[0])])
    # As emulator.track.parse_track: the first record is R0 when its number is 0.
    first = 1 if not include_r0 and len(offs) and recnos[0] == 0 else 0
    return offs[first:], keylens[first:], datalens[first:]


__all__ = ["walk_counts", "walk_slots", "track_records", "ERROR_TEXT", "ERR_OK"]
