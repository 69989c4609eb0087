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
from emulator.kernels.gather import memcpy_at
from emulator.layouts import offsets as layout_offsets
from emulator.layouts.ckd import COUNT_SIZE, HA_SIZE, CountField, HomeAddress
from emulator.memory import scratch

ERR_OK = 0
ERR_SHORT = 1  # slot too short for HA and one count field
ERR_NO_EOT = 2  # ran out of the slot looking for the end-of-track marker
ERR_OVERRUN = 3  # a record's key and data run past the end of the slot

ERROR_TEXT = {
    ERR_SHORT: "track image is shorter than HA and R0",
    ERR_NO_EOT: "no end-of-track marker before the end of the slot",
    ERR_OVERRUN: "a record runs past the end of the slot",
}


@nb.njit(cache=True, nogil=True, inline="always")
def _is_end_marker(buf, pos, count_size):
    """Whether the count field at ``buf[pos]`` is the end-of-track marker (all X'FF')."""
    for i in range(count_size):
        if buf[pos + i] != 0xFF:
            return False
    return True


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
        if _is_end_marker(buf, pos, count_size):
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


@nb.njit(cache=True, nogil=True)
def place_records(b1, b2, track_len, max_rec, used, r):
    """Records placed one after another, as a writer fills tracks: record i needs
    ``b1[i]`` device bytes if last on its track and takes ``b2[i]`` when others follow
    (``Device.record_space``); the first track already holds ``r`` records using
    ``used`` bytes.  Returns (track offset from the first track, record number) per
    record and the bytes used on the last track.  Every ``b1[i] <= track_len`` (the
    caller checks), so each record fits an empty track."""
    n = len(b1)
    trk = np.empty(n, dtype=np.int64)
    rec = np.empty(n, dtype=np.int64)
    t = 0
    for i in range(n):
        if used + b1[i] > track_len or r >= max_rec:
            t += 1
            used = 0
            r = 0
        used += b2[i]
        r += 1
        trk[i] = t
        rec[i] = r
    return trk, rec, used


@nb.njit(cache=True, nogil=True)
def fill_tracks(
    out, used, cyl, head, row, rec, src, key_off, key_len, data_off, data_len,
    ha_size, count_size, off_cyl, off_head, off_rec, off_kl, off_dl, data_at,
):  # fmt: skip
    """Write track images into the rows of ``out`` (C-contiguous uint8): a row whose
    ``used`` is 0 starts with HA and R0 (FORMATS.md 1.2), any other continues after its
    first ``used`` bytes; record i (count field, key, data from ``src``) goes into row
    ``row[i]`` as record ``rec[i]``, in order; every row ends with the end marker.
    ``data_at[i]`` receives where record i's data starts in its row; the rest of each
    row is zeroed (so ``out`` need not be).  Returns -1, or the first record that does
    not fit its row (nothing after it is written)."""
    width = out.shape[1]
    ntrk = out.shape[0]
    for t in range(ntrk):
        if used[t] == 0:
            out[t, 0] = 0
            out[t, 1] = (cyl[t] >> 8) & 0xFF
            out[t, 2] = cyl[t] & 0xFF
            out[t, 3] = (head[t] >> 8) & 0xFF
            out[t, 4] = head[t] & 0xFF
            p = ha_size
            for j in range(count_size + 8):
                out[t, p + j] = 0
            out[t, p + off_cyl] = (cyl[t] >> 8) & 0xFF
            out[t, p + off_cyl + 1] = cyl[t] & 0xFF
            out[t, p + off_head] = (head[t] >> 8) & 0xFF
            out[t, p + off_head + 1] = head[t] & 0xFF
            out[t, p + off_dl + 1] = 8  # R0: key length 0, data length 8
            used[t] = ha_size + count_size + 8
    for i in range(len(row)):
        t = row[i]
        p = used[t]
        kl = key_len[i]
        dl = data_len[i]
        if p + count_size + kl + dl + count_size > width:
            return i
        for j in range(count_size):
            out[t, p + j] = 0
        out[t, p + off_cyl] = (cyl[t] >> 8) & 0xFF
        out[t, p + off_cyl + 1] = cyl[t] & 0xFF
        out[t, p + off_head] = (head[t] >> 8) & 0xFF
        out[t, p + off_head + 1] = head[t] & 0xFF
        out[t, p + off_rec] = rec[i] & 0xFF
        out[t, p + off_kl] = kl
        out[t, p + off_dl] = (dl >> 8) & 0xFF
        out[t, p + off_dl + 1] = dl & 0xFF
        p += count_size
        base = t * width
        memcpy_at(out, base + p, src, key_off[i], kl)
        p += kl
        data_at[i] = p
        memcpy_at(out, base + p, src, data_off[i], dl)
        used[t] = p + dl
    for t in range(ntrk):
        for j in range(count_size):
            out[t, used[t] + j] = 0xFF
        used[t] += count_size
        out[t, used[t] :] = 0
    return -1


_COUNT_OFF = layout_offsets(CountField)
_HA_OFF = layout_offsets(HomeAddress)


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


@nb.njit(cache=True, nogil=True)
def _slot_ok(row, n, cyl, head, ha_size, count_size, off_cyl, off_head, off_rec, off_kl, off_dl):
    """Whether ``row[:n]`` is a well-formed image of track ``cyl``/``head`` (HA, R0 with
    KL 0 DL 8, count fields of this track, the end marker ending it exactly) and
    ``row[n:]`` is all zero: what ``emulator.image.check.check_track_image`` checks."""
    if n > len(row) or n < ha_size + count_size + 8 + count_size:
        return False
    if row[0] != 0 or ((np.int64(row[1]) << 8) | row[2]) != cyl:
        return False
    if ((np.int64(row[3]) << 8) | row[4]) != head:
        return False
    pos = ha_size
    first = True
    while True:
        if pos + count_size > n:
            return False
        if _is_end_marker(row, pos, count_size):
            if pos + count_size != n:
                return False
            break
        c = (np.int64(row[pos + off_cyl]) << 8) | row[pos + off_cyl + 1]
        h = (np.int64(row[pos + off_head]) << 8) | row[pos + off_head + 1]
        kl = np.int64(row[pos + off_kl])
        dl = (np.int64(row[pos + off_dl]) << 8) | np.int64(row[pos + off_dl + 1])
        if c != cyl or h != head:
            return False
        if first and (row[pos + off_rec] != 0 or kl != 0 or dl != 8):
            return False
        first = False
        pos += count_size + kl + dl
    padding = 0  # an OR over the padding, without an early exit: the loop vectorizes
    for i in range(n, len(row)):
        padding |= row[i]
    return padding == 0


@nb.njit(cache=True, nogil=True)
def _first_bad_slot(
    slots, lengths, cyl, head, ha_size, count_size, off_cyl, off_head, off_rec, off_kl, off_dl
):  # fmt: skip
    for k in range(slots.shape[0]):
        if not _slot_ok(
            slots[k], lengths[k], cyl[k], head[k], ha_size, count_size,
            off_cyl, off_head, off_rec, off_kl, off_dl,
        ):  # fmt: skip
            return k
    return -1


def first_bad_slot(
    slots: np.ndarray, lengths: np.ndarray, cyl: np.ndarray, head: np.ndarray
) -> int:
    """The first row k of ``slots`` (uint8, one track slot a row) that is not a
    well-formed image of track ``cyl[k]``/``head[k]`` in its first ``lengths[k]`` bytes
    followed by zeros, or -1: the checks of ``check_track_image`` for many tracks in one
    compiled pass (the caller asks ``check_track_image`` what is wrong with that row)."""
    i64 = np.int64
    return int(
        _first_bad_slot(
            slots, np.asarray(lengths, dtype=i64), np.asarray(cyl, dtype=i64),
            np.asarray(head, dtype=i64), HA_SIZE, COUNT_SIZE, _COUNT_OFF["cyl"],
            _COUNT_OFF["head"], _COUNT_OFF["rec"], _COUNT_OFF["keylen"], _COUNT_OFF["datalen"],
        )
    )  # fmt: skip


if (_HA_OFF["cyl"], _HA_OFF["head"], HA_SIZE) != (1, 3, 5):  # fill_tracks writes the HA so
    raise ImportError("emulator.layouts.ckd.HomeAddress is not bin(1) || CC(2) || HH(2)")


def build_tracks(
    cyl: np.ndarray,
    head: np.ndarray,
    row: np.ndarray,
    rec: np.ndarray,
    src: np.ndarray,
    key_off: np.ndarray,
    key_len: np.ndarray,
    data_off: np.ndarray,
    data_len: np.ndarray,
    trksize: int,
    prefix: bytes = b"",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Track images of many records at once, as :func:`emulator.track.build_track`
    builds one: ``(slots, used, data_at)``, ``slots[t, :used[t]]`` being the image of
    track t (zeros after it: ``Volume.write_slots`` takes the rows as they are) (C ``cyl[t]``, H ``head[t]``), ``data_at[i]`` where record i's data is in
    its row.  Record i goes on track ``row[i]`` (ascending) as record number ``rec[i]``
    with the key and data at the given offsets of ``src`` (uint8; a record with both
    lengths 0 is an EOF record).  ``prefix``: the image of track 0 up to its end marker
    (records kept there, new ones appended after them); else every track starts with
    HA and R0.  FormatError when a track's records do not fit ``trksize``."""
    ntrk = len(cyl)
    limit = len(src)
    if len(row) and (
        (key_off < 0).any()
        or (data_off < 0).any()
        or (key_off + key_len > limit).any()
        or (data_off + data_len > limit).any()
        or (row < 0).any()
        or (row >= ntrk).any()
        or (np.diff(row) < 0).any()
    ):
        raise FormatError("record offsets outside the source, or tracks out of order")
    # Not zeroed here: fill_tracks writes every byte of each row, zeros after the image
    # (as on disk), and writing them once costs half of writing them twice.
    slots = scratch((ntrk, trksize))
    used = np.zeros(ntrk, dtype=np.int64)
    if prefix:
        if len(prefix) + COUNT_SIZE > trksize or ntrk == 0:
            raise FormatError(f"a track prefix of {len(prefix)} bytes does not fit the track")
        slots[0, : len(prefix)] = np.frombuffer(prefix, dtype=np.uint8)
        used[0] = len(prefix)
    data_at = np.zeros(len(row), dtype=np.int64)
    i64 = np.int64
    bad = fill_tracks(
        slots, used, cyl.astype(i64), head.astype(i64), row.astype(i64), rec.astype(i64),
        src, key_off.astype(i64), key_len.astype(i64), data_off.astype(i64),
        data_len.astype(i64), HA_SIZE, COUNT_SIZE, _COUNT_OFF["cyl"], _COUNT_OFF["head"],
        _COUNT_OFF["rec"], _COUNT_OFF["keylen"], _COUNT_OFF["datalen"], data_at,
    )  # fmt: skip
    if bad >= 0:
        raise FormatError(
            f"record {bad} (KL {int(key_len[bad])} DL {int(data_len[bad])}) does not fit "
            f"track {int(row[bad])} of {trksize} bytes"
        )
    return slots, used, data_at


__all__ = [
    "walk_counts",
    "walk_slots",
    "track_records",
    "place_records",
    "build_tracks",
    "first_bad_slot",
    "ERROR_TEXT",
    "ERR_OK",
]
