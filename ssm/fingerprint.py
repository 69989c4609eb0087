"""Fingerprint a system of volume images (docs/formats/fingerprint.md).

    from ssm.fingerprint import fingerprint
    fp = fingerprint(["res.3390", "work.cckd"])                 # full pass
    fp2 = fingerprint(["res.3390", "work.cckd"], since=fp)      # reuse unchanged tracks

How it reads (all through the emulator's public API and its kernels):

* Each data set is one job; jobs run on a pool of worker threads (one per core, at
  most two by default), biggest first.  Each worker opens its own
  :class:`~emulator.volume.volume.Volume` per image, since image objects are not
  shared between threads.  The Numba kernels, zlib and BLAKE3 release the GIL.
* Tracks come from a *source*: for a plain image a memory map of its files
  (``CkdImage.slot_view``, no copy, mapped again every 64 MiB so the resident size
  stays bounded), for CCKD a buffer filled by ``CckdImage.track_bytes``.
* :mod:`emulator.kernels.gather` walks count fields into a record table and emits the
  stream (the logical content, by the format document's rules) into a 4 MiB chunk;
  BLAKE3 hashes it per member, or per record group for large sequential data sets.
  The copy is cheaper than hashing blocks where they lie: BLAKE3 uses its full SIMD
  width only on long input at 1 KiB-aligned stream offsets, and fed one block at a
  time (27998 bytes at any offset) it ran at half its speed, far more than the copy
  costs.  PDS directories are parsed by a kernel too
  (:func:`~emulator.kernels.gather.parse_directory`); each member costs one BLAKE3
  call for its content and one for its attributes, the rest is NumPy.
* Every track a job reads gets a signature
  (:func:`emulator.kernels.hashing.track_signatures` for plain images, taken per batch
  just before the batch is walked, which also brings the batch into the CPU cache;
  XXH3 of the stored bytes for CCKD).  With ``since``: a data set whose extents, DCB
  and read tracks are unchanged is taken over whole; in a changed PDS, members whose
  tracks kept their signatures are; a changed grouped sequential data set resumes at
  its first changed group.
* Torn reads: the image's generation marker (``DasdImage.generation``) is read before
  and after each job; when it changed the job runs again once on a freshly opened
  volume, and is flagged ``DS_TORN`` if it changed again.  On an image written in the
  last seconds, signatures are also re-taken after each batch and each job, and
  :func:`_settle` checks every data set of such a volume again after a delay.
"""

from __future__ import annotations

import datetime as _dt
import os
import struct
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import blake3
import numpy as np
import xxhash

from emulator import api
from emulator.errors import EmulatorError, NotFoundError
from emulator.image import changes
from emulator.kernels import gather as g
from emulator.kernels import hashing as hk
from emulator.memory import scratch
from ssm import model as m

#: Streams shorter than this are hashed whole; longer ones through their record groups.
GROUP_MIN_STREAM = 1 << 20
GROUP_MIN = 16 << 10
GROUP_MAX = 256 << 10
#: Output chunk per worker (bytes of stream hashed at a time).
CHUNK = 4 << 20
#: Tracks walked per kernel call for sequential data sets (7 MiB of 3390 slots: the
#: signature pass leaves them in the CPU cache for the walk and the copy).
BATCH_TRACKS = 64
#: Tracks decompressed at a time for a PDS on a compressed image.
WINDOW_TRACKS = 512
#: ... and with --since, when only some members are read.
SINCE_WINDOW = 16
#: Tracks of a PDS on a plain image walked at a time (a memory map, no copy).
PLAIN_WINDOW = 4096
#: Bytes of a plain image read through one memory map before it is mapped again.
REMAP_BYTES = 64 << 20
#: An image written less than this many seconds ago gets its signatures re-checked.
ACTIVE_WINDOW = 2.0
#: Seconds between reading a data set of a volume that is being written and checking
#: that its tracks still have the signatures they had when read (see _settle).
VERIFY_DELAY = 0.1
#: Below this many bytes of data sets to read, one worker by default: a second thread
#: then costs more than it saves.  Measured warm: 128 MiB of PDS members 0.104 s with
#: one or two, 250 MiB of sequential data 0.117 s with one and 0.084 s with two; an
#: import's verifying fingerprint of 100 MB of new members took 0.07-0.11 s less CPU
#: and 0.02-0.07 s less time with one (medians of 14 forked runs, two series).
PARALLEL_BYTES = 192 << 20


def default_workers(nbytes: int) -> int:
    """Worker threads for a fingerprint that reads ``nbytes``: one per core, at most
    two, or one under :data:`PARALLEL_BYTES`."""
    return min(2, os.cpu_count() or 1) if nbytes >= PARALLEL_BYTES else 1


_LAY = [int(x) for x in hk.LAYOUT]
_HA, _CNT, _OREC, _OKL, _ODL = _LAY
_UNITS = {"ABSTR": 0, "BLK": 1, "TRK": 2, "CYL": 3}


def tool_version() -> str:
    try:
        from importlib.metadata import version

        return f"ssm {version('dasd-ssm')}"
    except Exception:  # not installed as a package (running from a checkout)
        return "ssm 0.1.0"


# -- progress -------------------------------------------------------------------------
@dataclass
class Progress:
    """Where a run is: handed to the ``progress`` callback (from any thread)."""

    volser: str
    path: str
    bytes_done: int
    bytes_total: int
    datasets_done: int
    datasets_total: int
    elapsed: float
    finished: bool = False

    @property
    def rate(self) -> float:
        """Bytes per second so far."""
        return self.bytes_done / self.elapsed if self.elapsed > 0 else 0.0


# -- track sources --------------------------------------------------------------------
def _open_volume(path: str):
    """Open read-only; a commit another program is making is waited for (the image
    layer's commit lock), an interrupted one rolled back."""
    return api.open_volume(path)


class _Source:
    """Track slots of one volume for one worker thread."""

    def __init__(self, path: str, vol: api.Volume | None = None):
        self.path = path
        #: ``vol``: a volume the caller opened and closes (see ``_Worker.shared``).
        self.owned = vol is None
        self.vol = _open_volume(path) if vol is None else vol
        image = self.vol.image
        self.image = image
        self.trksize = image.trksize
        self.kind = image.kind
        self.plain = hasattr(image, "slot_view")
        self.stored = hasattr(image, "stored_entry")
        self.buf: np.ndarray | None = None
        self.touched = 0
        #: From the image's change map (docs/formats/changes.md), with --since: the
        #: generation marker it holds for, which tracks may have changed, and the old
        #: signatures the others keep.
        self.known: tuple[tuple, np.ndarray, np.ndarray] | None = None
        if self.plain:
            self.refresh()

    def refresh(self) -> None:
        """Map the image's files again.  Dropping the old maps unmaps the pages read so
        far, so the process's resident size stays bounded however big the image is."""
        image = self.image
        self.pieces = [
            (base, n, image.slot_view(base, base + n)) for base, n in image.piece_tracks()
        ]
        self.touched = 0

    def _account(self, tracks: int) -> None:
        self.touched += tracks * self.trksize
        if self.touched > REMAP_BYTES:
            self.refresh()

    def close(self) -> None:
        self.pieces = []
        if self.owned:
            self.vol.close()

    def marker(self) -> tuple:
        return self.image.generation()

    def batches(self, tracks: np.ndarray, size: int):
        """Yield ``(slots, rows, trks, bad)`` for the tracks in order, ``size`` at a time;
        ``bad`` is True when a track could not be read (it then reads as empty)."""
        n = len(tracks)
        pos = 0
        while pos < n:
            if self.plain:
                trk0 = int(tracks[pos])
                piece = next((p for p in self.pieces if p[0] <= trk0 < p[0] + p[1]), None)
                if piece is None:  # the volume layer checked the extents; be safe anyway
                    raise EmulatorError(f"track {trk0} is in no file of the volume", self.path)
                base, cnt, view = piece
                end = min(n, pos + size)
                chunk = tracks[pos:end]
                inside = (chunk >= base) & (chunk < base + cnt)
                if not inside.all():
                    end = pos + int(np.argmin(inside))
                    chunk = tracks[pos:end]
                yield view, chunk - base, chunk, False
                pos = end
                self._account(len(chunk))
            else:
                end = min(n, pos + size)
                chunk = tracks[pos:end]
                if self.buf is None or self.buf.shape[0] < len(chunk):
                    self.buf = hk.aligned_slots(max(size, len(chunk)), self.trksize)
                bad = False
                read = getattr(self.image, "track_bytes", None) or self.image.read_track
                for k, trk in enumerate(chunk.tolist()):
                    try:
                        image = read(trk)[: self.trksize]
                    except EmulatorError:
                        image = _empty_track(trk, self.vol.heads)
                        bad = True
                    self.buf[k, : len(image)] = np.frombuffer(image, dtype=np.uint8)
                    # No bytes of an earlier track may follow: a track without an end
                    # marker then walks into zeros and is reported malformed.
                    self.buf[k, len(image) :] = 0
                yield self.buf, np.arange(len(chunk), dtype=np.int64), chunk, bad
                pos = end

    def one_piece(self, tracks: np.ndarray) -> bool:
        """True when a plain image holds all of ``tracks`` in one file (no copy needed)."""
        if not self.plain or not len(tracks):
            return self.plain
        lo, hi = int(tracks.min()), int(tracks.max())
        return any(base <= lo and hi < base + n for base, n, _ in self.pieces)

    def window(self, tracks: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool]:
        """``(slots, rows, bad)`` holding all of ``tracks`` at once."""
        if self.one_piece(tracks):
            self._account(len(tracks))
            for base, n, view in self.pieces:
                if len(tracks) == 0 or base <= int(tracks[0]) < base + n:
                    return view, tracks - base, False
        buf = hk.aligned_slots(max(len(tracks), 1), self.trksize)
        bad = False
        pos = 0
        for slots, rows, trks, b in self.batches(tracks, BATCH_TRACKS):
            buf[pos : pos + len(trks)] = slots[rows]
            pos += len(trks)
            bad = bad or b
        return buf, np.arange(len(tracks), dtype=np.int64), bad

    def sigs(self, slots: np.ndarray, rows: np.ndarray, trks: np.ndarray) -> np.ndarray:
        """Signatures of tracks already in ``slots[rows]`` (plain) or of their stored
        bytes (CCKD: no decompression needed)."""
        if self.stored:
            return self.stored_sigs(trks)
        return hk.track_signatures(slots, rows)[0]

    def stored_sigs(self, trks: np.ndarray) -> np.ndarray:
        out = np.zeros(len(trks), dtype=np.uint64)
        image = self.image
        for k, trk in enumerate(trks.tolist()):
            try:
                entry = image.stored_entry(trk)
                off, length, _size = entry
                data = image.read_stored(trk, entry) if off else b""  # one L2 lookup
                seed = length | (0 if off else 1 << 32)  # a null track has no bytes
                out[k] = xxhash.xxh3_64_intdigest(data, seed=seed) or 1
            except EmulatorError:
                out[k] = 1  # unreadable: never equal to a real signature of readable bytes
        return out

    def track_sigs(self, tracks: np.ndarray) -> np.ndarray:
        """Signatures of arbitrary tracks (for the ``--since`` check).  With a trusted
        change map (``known``) and the image as it was then, a track no commit wrote
        since the old fingerprint keeps its old signature without being read."""
        if self.stored:
            return self.stored_sigs(tracks)
        if self.known is not None and len(tracks):
            marker, changed, old = self.known
            if self.marker() == marker:
                out = old[tracks]
                todo = changed[tracks] | (out == 0)
                if todo.any():
                    out[todo] = self._slot_sigs(tracks[todo])
                return out
        return self._slot_sigs(tracks)

    def _slot_sigs(self, tracks: np.ndarray) -> np.ndarray:
        parts = [
            self.sigs(slots, rows, trks) for slots, rows, trks, _ in self.batches(tracks, 1024)
        ]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.uint64)


def _empty_track(trk: int, heads: int) -> bytes:
    cyl, head = divmod(trk, heads)
    ha = b"\x00" + struct.pack(">HH", cyl, head)
    r0 = struct.pack(">HHBBH", cyl, head, 0, 0, 8) + bytes(8)
    return ha + r0 + b"\xff" * 8


class _Worker:
    """Per-thread buffers and open volumes."""

    def __init__(self):
        self.out = scratch(CHUNK)
        self.gend = np.zeros(CHUNK // GROUP_MIN + 2, dtype=np.int64)
        self.grec = np.zeros_like(self.gend)
        self.gblk = np.zeros_like(self.gend)
        self.gskip = np.zeros_like(self.gend)
        self.m_end = np.zeros(0, dtype=np.int64)
        self.sources: dict[str, _Source] = {}
        #: Set while the image was written recently: every batch's signatures are taken
        #: again after its records were emitted, and a difference sets ``changed``.
        self.careful = False
        self.changed = False
        #: Called with the bytes of each batch of tracks read (progress within a job).
        self.tick: Callable[[int], None] = lambda n: None
        #: path -> ``_Source.known`` for the sources this worker opens (--since).
        self.known: dict[str, tuple] = {}
        #: path -> the volume :func:`fingerprint` opened to list the data sets, for a
        #: worker that runs in that thread: reading its VTOC again cost more than a
        #: small data set (an import's verification opens every volume it wrote).
        self.shared: dict[str, api.Volume] = {}

    def source(self, path: str) -> _Source:
        src = self.sources.get(path)
        if src is None:
            src = self.sources[path] = _Source(path, self.shared.get(path))
            src.known = self.known.get(path)
        return src

    def member_arrays(self, n: int):
        if len(self.m_end) < n:
            size = max(n, 1024)
            self.m_end = np.zeros(size, dtype=np.int64)
            self.m_recs = np.zeros(size, dtype=np.int64)
            self.m_status = np.zeros(size, dtype=np.int64)
        self.m_status[:n] = 0
        return self.m_end, self.m_recs, self.m_status

    def close(self) -> None:
        for src in self.sources.values():
            src.close()
        self.sources.clear()


# -- streams --------------------------------------------------------------------------
def _mode(recfm_raw: int, keylen: int, lrecl: int) -> tuple[int, int]:
    """(MODE_*, LRECL to split F blocks at, 0 for one record per block)."""
    if keylen:
        return g.MODE_KEYED, 0
    fmt = recfm_raw & 0xC0
    if fmt == 0x80:
        return g.MODE_F, (lrecl if recfm_raw & 0x10 and lrecl > 0 else 0)
    if fmt == 0x40:
        return (g.MODE_VS if recfm_raw & 0x08 else g.MODE_V), 0
    return g.MODE_U, 0


@dataclass
class _Stream:
    """The result of hashing one stream."""

    content: bytes = m.ZERO_DIGEST
    records: int = 0
    size: int = 0
    groups: list = field(default_factory=list)  # (first, count, offset, size, digest)
    err: int = 0
    eof: bool = False
    tracks: list = field(default_factory=list)  # absolute tracks read, with signatures
    sigs: list = field(default_factory=list)


class _Hasher:
    """Feeds chunks of a stream into BLAKE3: whole, or per record group.

    A group is ``(first record, records, stream offset, bytes, digest, start TTR key,
    skip)``: where it starts (its block's TT << 8 | R, and the stream bytes of that
    block before its first record) lets ``--since`` resume reading there.
    """

    def __init__(self, cdc: bool):
        self.cdc = cdc
        self.whole = blake3.blake3()
        self.group = blake3.blake3()
        # (stream end offset, records so far, next group's TTR key, its skip)
        self.pending: list[tuple[int, int, int, int]] = []
        self.groups: list = []
        self.g_off = 0
        self.g_rec = 0
        self.g_ttr = 0
        self.g_skip = 0
        self.grouped = False

    def resume(self, groups: list, st: np.ndarray) -> None:
        """Continue a grouped stream after ``groups`` (taken over from --since)."""
        last = groups[-1]
        self.groups = list(groups)
        self.grouped = True
        self.g_off = last[2] + last[3]
        self.g_rec = last[0] + last[1]
        st[g.S_BASE] = self.g_off
        st[g.S_RECS] = self.g_rec

    def boundaries(self, wk: _Worker, st: np.ndarray, rk, rr, tt0: int) -> None:
        ng = int(st[g.S_NG])
        if ng:
            blk = wk.gblk[:ng]
            ttr = ((tt0 + rk[blk].astype(np.int64)) << 8) | rr[blk]
            self.pending.extend(
                zip(
                    wk.gend[:ng].tolist(),
                    wk.grec[:ng].tolist(),
                    ttr.tolist(),
                    wk.gskip[:ng].tolist(),
                    strict=True,
                )
            )

    def _close_group(self, end: int, recs: int) -> None:
        self.groups.append(
            (
                self.g_rec,
                recs - self.g_rec,
                self.g_off,
                end - self.g_off,
                self.group.digest(),
                self.g_ttr,
                self.g_skip,
            )
        )
        self.group = blake3.blake3()

    def flush(self, wk: _Worker, st: np.ndarray, final: bool) -> None:
        """Hash ``out[:commit]`` and move the uncommitted tail to the front."""
        out = wk.out
        commit, pos, base = int(st[g.S_COMMIT]), int(st[g.S_POS]), int(st[g.S_BASE])
        mv = memoryview(out)
        if not self.cdc:
            self.whole.update(mv[:commit])
        elif not self.grouped and final and base == 0 and commit < GROUP_MIN_STREAM:
            self.whole.update(mv[:commit])  # a small stream: one digest of the bytes
        else:
            self.grouped = True
            pending = self.pending
            closed = 0
            for end, recs, ttr, skip in pending:  # in stream order
                if end > base + commit:
                    break
                piece = mv[max(self.g_off, base) - base : end - base]
                if self.g_off >= base:  # the whole group is in this chunk: one call
                    digest = blake3.blake3(piece).digest()
                else:
                    self.group.update(piece)
                    digest = self.group.digest()
                    self.group = blake3.blake3()
                self.groups.append(
                    (self.g_rec, recs - self.g_rec, self.g_off, end - self.g_off, digest,
                     self.g_ttr, self.g_skip)
                )  # fmt: skip
                self.g_off, self.g_rec, self.g_ttr, self.g_skip = end, recs, ttr, skip
                closed += 1
            del pending[:closed]
            self.group.update(mv[max(self.g_off, base) - base : commit])
        if commit and pos > commit:
            out[: pos - commit] = out[commit:pos]
        st[g.S_POS] = pos - commit
        st[g.S_SPFX] = max(0, int(st[g.S_SPFX]) - commit)
        st[g.S_BASE] = base + commit
        st[g.S_COMMIT] = 0

    def finish(self, st: np.ndarray) -> _Stream:
        total = int(st[g.S_BASE])
        recs = int(st[g.S_RECS])
        res = _Stream(records=recs, size=total)
        if self.cdc and self.grouped:
            if total > self.g_off or not self.groups:
                self._close_group(total, recs)
            res.groups = self.groups
            res.content = group_table_digest(self.groups)
        else:
            res.content = self.whole.digest()
        return res


_GROUP_ENTRY = np.dtype([("count", "<u8"), ("size", "<u8"), ("digest", f"V{m.CONTENT_SIZE}")])


def group_table_digest(groups: Sequence[tuple]) -> bytes:
    """Content digest of a grouped stream (docs/formats/fingerprint.md "Record groups"):
    BLAKE3 over the group count and, per group, u64 count || u64 size || digest."""
    h = blake3.blake3(b"ssm.groups.v1")
    h.update(struct.pack("<Q", len(groups)))
    table = np.zeros(len(groups), dtype=_GROUP_ENTRY)  # one update, not three per group
    if len(groups):  # (first, count, offset, size, digest, ...)
        table["count"] = [group[1] for group in groups]
        table["size"] = [group[3] for group in groups]
        table["digest"] = [group[4] for group in groups]
    h.update(table.tobytes())
    return h.digest()


def _group_tuples(rows: np.ndarray) -> list[tuple]:
    """GROUP_DTYPE rows as the tuples _Hasher keeps (column-wise: one pass per column,
    not one NumPy scalar per field)."""
    size = m.CONTENT_SIZE
    raw = np.ascontiguousarray(rows["digest"]).tobytes()
    digests = [raw[i : i + size] for i in range(0, len(raw), size)]
    return list(
        zip(
            rows["first"].tolist(),
            rows["count"].tolist(),
            rows["offset"].tolist(),
            rows["size"].tolist(),
            digests,
            rows["ttr"].tolist(),
            rows["skip"].tolist(),
            strict=True,
        )
    )


def _drain(wk, hasher, st, slots, rows, table, i, n, mode, split, cdc, tt0=0) -> int:
    """Emit records i..n-1 of a record table until EOF, error or the table's end,
    flushing full chunks; returns the next record index.  ``tt0``: relative track of
    the table's first track (for the groups' start TTRs)."""
    _starts, rk, rr, rkl, rdl, rpos, _err = table
    while True:
        i = g.emit_records(
            slots, rows, rk, rkl, rdl, rpos, i, n, mode, split, _CNT, st, wk.out,
            cdc, GROUP_MIN, GROUP_MAX, wk.gend, wk.grec, wk.gblk, wk.gskip,
        )  # fmt: skip
        hasher.boundaries(wk, st, rk, rr, tt0)
        if st[g.S_ERR] or st[g.S_DONE] or i >= n:
            return i
        if int(st[g.S_POS]) - int(st[g.S_COMMIT]) > len(wk.out) // 2:
            # an open spanned record fills half the chunk: give it room
            bigger = scratch(len(wk.out) * 2)
            bigger[: int(st[g.S_POS])] = wk.out[: int(st[g.S_POS])]
            wk.out = bigger
            wk.gend = np.zeros(len(bigger) // GROUP_MIN + 2, dtype=np.int64)
            wk.grec = np.zeros_like(wk.gend)
            wk.gblk = np.zeros_like(wk.gend)
            wk.gskip = np.zeros_like(wk.gend)
        hasher.flush(wk, st, final=False)


def _stream(
    wk: _Worker,
    src: _Source,
    tracks: np.ndarray,
    start_r: int,
    mode: int,
    split: int,
    cdc: bool,
    sig: bool = True,
    tt_base: int = 0,
    resume: tuple | None = None,
) -> _Stream:
    """Hash the stream that starts at record ``start_r`` of ``tracks[0]`` (relative
    track ``tt_base``) and runs to the next EOF record (or the end of ``tracks``).
    ``resume``: ``(groups before, skip)`` to continue a grouped stream at a group's
    start (--since)."""
    st = np.zeros(g.NSTATE, dtype=np.int64)
    hasher = _Hasher(cdc)
    if resume is not None:
        hasher.resume(resume[0], st)
        st[g.S_SKIP] = resume[1]
    read_trks: list[np.ndarray] = []
    read_sigs: list[np.ndarray] = []
    err = 0
    first = True
    tt0 = tt_base
    for slots, rows, trks, bad in src.batches(tracks, BATCH_TRACKS):
        sigs = src.sigs(slots, rows, trks) if sig else np.zeros(len(trks), dtype=np.uint64)
        table = g.walk_records(slots, rows, _HA, _CNT, _OREC, _OKL, _ODL)
        starts, rk, rr = table[0], table[1], table[2]
        i = 0
        if first:
            first = False
            if not len(trks):
                break
            hit = np.nonzero(rr[starts[0] : starts[1]] == start_r)[0]
            if len(hit):
                i = int(starts[0] + hit[0])
            if resume is None:
                hasher.g_ttr, hasher.g_skip = (tt_base << 8) | int(rr[i] if len(rr) else 0), 0
            else:
                hasher.g_ttr, hasher.g_skip = (tt_base << 8) | start_r, resume[1]
            if not len(hit) and start_r > 1:  # the TTR names no record
                err = g.E_TTR
                read_trks.append(trks[:1])
                read_sigs.append(sigs[:1])
                break
        n = len(rk)
        i = _drain(wk, hasher, st, slots, rows, table, i, n, mode, split, cdc, tt0)
        tt0 += len(trks)
        wk.tick(len(trks) * src.trksize)
        if st[g.S_DONE] or st[g.S_ERR]:
            last = int(rk[i]) + 1 if i < n else len(trks)
        else:
            last = len(trks)
        if wk.careful and sig and not np.array_equal(src.sigs(slots, rows, trks), sigs):
            wk.changed = True  # a track changed while its records were emitted
        read_trks.append(trks[:last])
        read_sigs.append(sigs[:last])
        if bad or table[6][:last].any():
            err = err or g.E_TRACK
        if st[g.S_DONE] or st[g.S_ERR]:
            break
    if st[g.S_SPAN] and not st[g.S_ERR]:
        st[g.S_ERR] = g.E_SPAN
    hasher.flush(wk, st, final=True)
    res = hasher.finish(st)
    res.err = err or int(st[g.S_ERR])
    res.eof = bool(st[g.S_DONE])
    res.tracks = read_trks
    res.sigs = read_sigs
    return res


# -- data sets ------------------------------------------------------------------------
@dataclass
class _Result:
    """One data set's rows, before the tables are put together."""

    row: dict
    members: np.ndarray
    userdata: bytes
    groups: list
    extents: list
    sig_trks: np.ndarray
    sig_vals: np.ndarray
    reused: bool = False
    read_bytes: int = 0
    when: float = 0.0  # time.monotonic() when the read ended


def _tracks_of(info) -> np.ndarray:
    exts = sorted(info.extents, key=lambda e: e.seq)
    if not exts:
        return np.zeros(0, dtype=np.int64)
    return np.concatenate([np.arange(e.begin, e.end + 1, dtype=np.int64) for e in exts])


def _ds_attrs(row: dict, member_list_digest: bytes | None) -> bytes:
    """Attributes digest of a data set (docs/formats/fingerprint.md)."""
    h = blake3.blake3(b"ssm.ds.attrs.v1")
    h.update(
        struct.pack(
            "<HBIIBBIIii",
            row["dsorg_raw"],
            row["recfm_raw"],
            row["lrecl"],
            row["blksize"],
            row["keylen"],
            _UNITS.get(row["space_unit"], 255),
            row["secondary"],
            row["tracks"],
            row["created"],
            row["expires"],
        )
    )
    if member_list_digest is not None:
        h.update(member_list_digest)
    return h.digest(length=m.ATTRS_SIZE)


def _base_row(info, vol_index: int) -> dict:
    unit, primary, secondary = info.space
    return dict(
        vol=vol_index,
        dsname=info.dsname,
        dsorg=info.dsorg,
        recfm=info.recfm,
        dsorg_raw=info.dsorg_raw,
        recfm_raw=info.recfm_raw,
        keylen=info.keylen,
        lrecl=info.lrecl,
        blksize=info.blksize,
        space_unit=unit,
        primary=primary,
        secondary=secondary,
        tracks=info.tracks,
        used_tracks=info.used_tracks,
        nextents=len(info.extents),
        created=m.date_ordinal(info.created),
        expires=m.date_ordinal(info.expires),
        referenced=m.date_ordinal(info.referenced),
        flags=0,
        records=0,
        size=0,
        tracks_read=0,
        content=m.ZERO_DIGEST,
        attrs=bytes(m.ATTRS_SIZE),
    )


def _sequential(wk: _Worker, src: _Source, info, row: dict) -> _Result:
    tracks = _tracks_of(info)
    mode, split = _mode(info.recfm_raw, info.keylen, info.lrecl)
    res = _stream(wk, src, tracks, 1, mode, split, cdc=True)
    if res.err in (g.E_BDW, g.E_RDW, g.E_SPAN):
        # Blocks that break the RECFM rules: hash them as U blocks, so the digest still
        # follows every byte, and say so.
        res = _stream(wk, src, tracks, 1, g.MODE_U, 0, cdc=True)
        row["flags"] |= m.DS_ERROR
    if res.err:
        row["flags"] |= m.DS_ERROR
    if not res.eof:
        row["flags"] |= m.DS_NO_EOF
    if info.keylen:
        row["flags"] |= m.DS_KEYED
    if res.groups:
        row["flags"] |= m.DS_GROUPED
    row.update(records=res.records, size=res.size, content=res.content)
    trks = np.concatenate(res.tracks) if res.tracks else np.zeros(0, dtype=np.int64)
    sigs = np.concatenate(res.sigs) if res.sigs else np.zeros(0, dtype=np.uint64)
    row["tracks_read"] = len(trks)
    row["attrs"] = _ds_attrs(row, None)
    return _Result(
        row, np.zeros(0, dtype=m.MEMBER_DTYPE), b"", res.groups, [], trks, sigs,
        read_bytes=res.size,
    )  # fmt: skip


@dataclass
class _Directory:
    """The entries of a PDS directory as arrays, in directory order."""

    status: int
    eof: int  # record index of the EOF after the directory, -1 if none
    names: np.ndarray  # uint64: the 8 name bytes, big-endian
    tt: np.ndarray
    r: np.ndarray
    c: np.ndarray
    udoff: np.ndarray
    ud: np.ndarray  # uint8: all user data

    @property
    def ttrs(self) -> np.ndarray:
        return self.tt * 256 + self.r


def _load_directory(src: _Source, tracks: np.ndarray, window: int):
    """(directory, window end, slots, rows, bad, table) of the first window, grown
    until it holds the whole directory."""
    w1 = min(len(tracks), window)
    while True:
        slots, rows, bad = src.window(tracks[:w1])
        table = g.walk_records(slots, rows, _HA, _CNT, _OREC, _OKL, _ODL)
        _starts, rk, _rr, rkl, rdl, rpos, _err = table
        d = _Directory(*g.parse_directory(slots, rows, rk, rkl, rdl, rpos, _CNT))
        if d.status == g.D_MORE and w1 < len(tracks):
            w1 = min(len(tracks), w1 * 4)
            continue
        return d, w1, slots, rows, bad, table


def _member_digests(wk, src, tracks, w0, w1, slots, rows, table, here, mode, split):
    """Content of the members whose (unique) TTRs ``here`` lie in window [w0, w1):
    returns ``_GOT`` rows and the relative track after the last one read."""
    _starts, rk, rr, rkl, rdl, rpos, _terr = table
    keys = rk.astype(np.int64) * 256 + rr
    order = np.argsort(keys, kind="stable")
    skeys = keys[order]
    want = here - w0 * 256
    pos = np.searchsorted(skeys, want)
    ok = pos < len(skeys)
    ok[ok] = skeys[pos[ok]] == want[ok]
    ustarts = np.full(len(want), -1, dtype=np.int64)
    ustarts[ok] = order[pos[ok]]
    eofs, bound = g.member_ends(rkl, rdl, ustarts)
    found = eofs[eofs >= 0]
    hi = w0 + int(rk[found].max()) + 1 if len(found) else 0
    # tracks from the member's TTR to its EOF record's (0: no EOF in the window)
    spans = np.where(eofs >= 0, w0 + rk[np.maximum(eofs, 0)].astype(np.int64) - (here >> 8) + 1, 0)
    parts = []
    m_end, m_recs, m_status = wk.member_arrays(len(here))
    k = 0
    while k < len(here):
        k2, _used = g.emit_members(
            slots, rows, rk, rkl, rdl, rpos, ustarts, eofs, bound, k, mode, split,
            _CNT, wk.out, m_end, m_recs, m_status,
        )  # fmt: skip
        ends = m_end[k:k2]
        begins = np.zeros_like(ends)  # member k's stream is out[begins[k]:ends[k]]
        begins[1:] = ends[:-1]
        status = m_status[k:k2]
        if w1 < len(tracks):  # members running past this window: streamed from their TTR
            later = np.flatnonzero(status == g.E_NO_EOF)
            done = np.flatnonzero(status != g.E_NO_EOF)
        else:
            later, done = np.zeros(0, dtype=np.int64), np.arange(k2 - k)
        # The per-member Python work: one BLAKE3 call each.
        mv = memoryview(wk.out)
        digests = [
            blake3.blake3(mv[a:b]).digest()
            for a, b in zip(begins[done].tolist(), ends[done].tolist(), strict=True)
        ]
        parts.append(
            _got(here[k + done], digests, m_recs[k + done], (ends - begins)[done],
                 status[done], spans[k + done])
        )  # fmt: skip
        streamed = (k + later).tolist()
        if k2 < len(here) and m_status[k2] == g.E_TOO_BIG:
            streamed.append(k2)
            k2 += 1
        for j in streamed:
            key = int(here[j])
            (digest, recs, size, status1), last = _member_stream(
                wk, src, tracks, divmod(key, 256), mode, split
            )
            span = last - (key >> 8) if status1 == g.E_OK else 0
            parts.append(_got([key], [digest], [recs], [size], [status1], [span]))
            hi = max(hi, last)
        k = k2
    return parts, hi


#: What is known of one member stream (one per unique TTR) before the member table is
#: made: its TTR key, content digest, records, bytes, status (gather E_*) and span.
_GOT = np.dtype(
    [("ttr", "<i8"), ("content", f"V{m.CONTENT_SIZE}"), ("records", "<i8"), ("size", "<i8"),
     ("status", "<i8"), ("span", "<i8")]
)  # fmt: skip


def _got(ttr, digests: list[bytes], records, size, status, span) -> np.ndarray:
    """``_GOT`` rows from columns (digests as a list of 32-byte strings)."""
    out = np.zeros(len(digests), dtype=_GOT)
    out["ttr"] = ttr
    out["content"] = np.frombuffer(b"".join(digests), dtype=f"V{m.CONTENT_SIZE}")
    out["records"] = records
    out["size"] = size
    out["status"] = status
    out["span"] = span
    return out


def _partitioned(wk: _Worker, src: _Source, info, row: dict, prior=None) -> _Result:
    """A PDS: directory, then every member's stream.  ``prior`` (from ``--since``):
    ``(old member results by TTR key, old signatures, old relative->absolute tracks)``;
    a member whose tracks all kept their signatures is taken over without reading it."""
    row["flags"] |= m.DS_PDS
    tracks = _tracks_of(info)
    mode, split = _mode(info.recfm_raw, info.keylen, info.lrecl)
    if not len(tracks):
        row["flags"] |= m.DS_ERROR
        row["attrs"] = _ds_attrs(row, blake3.blake3().digest())
        row["content"] = blake3.blake3(b"ssm.pds.v1").digest()
        return _Result(
            row, np.zeros(0, m.MEMBER_DTYPE), b"", [], [], tracks, tracks.astype(np.uint64)
        )
    # Windows of tracks: on a plain image a memory map (walking count fields is cheap,
    # so a window is large); on other images decompressed tracks.
    window = PLAIN_WINDOW if src.one_piece(tracks) else WINDOW_TRACKS
    d, w1, slots, rows, bad, table = _load_directory(src, tracks, window)
    if prior is not None and not src.one_piece(tracks):
        window = SINCE_WINDOW  # --since: decompress little more than the changed members
    if d.status != g.D_OK:
        # A directory we cannot read is flagged; the entries before the damage are kept
        # and its tracks still get signatures, so --since notices a repair.
        row["flags"] |= m.DS_ERROR
    dir_end = int(table[1][d.eof]) + 1 if d.eof >= 0 else w1
    uttrs = np.unique(d.ttrs)
    t_end = max(info.used_tracks, dir_end, int(d.tt.max()) + 1 if len(d.tt) else 1, 1)
    t_end = min(t_end, len(tracks))
    results: list[np.ndarray] = []
    new_sigs = None
    if prior is not None:
        uttrs, new_sigs = _reuse_members(src, tracks, t_end, uttrs, prior, results)
    sig_trks: list[np.ndarray] = []
    sig_vals: list[np.ndarray] = []
    hi = t_end
    w0 = 0
    first = True
    while first or w0 < t_end:
        here = uttrs[(uttrs >= w0 * 256) & (uttrs < w1 * 256)]
        trks = tracks[w0:w1]
        upto = max(0, min(len(trks), t_end - w0))
        if not first and new_sigs is not None and not len(here):
            # --since: nothing to read in this window; its signatures are known
            sig_trks.append(trks[:upto])
            sig_vals.append(new_sigs[w0 : w0 + upto])
        else:
            if not first:
                slots, rows, bad = src.window(trks)
                table = g.walk_records(slots, rows, _HA, _CNT, _OREC, _OKL, _ODL)
            if bad:
                row["flags"] |= m.DS_ERROR
            if upto:
                sig_trks.append(trks[:upto])
                if new_sigs is not None:
                    sig_vals.append(new_sigs[w0 : w0 + upto])
                else:
                    sig_vals.append(src.sigs(slots, rows[:upto], trks[:upto]))
                if table[6][:upto].any():
                    row["flags"] |= m.DS_ERROR
            if len(here):
                got, last = _member_digests(
                    wk, src, tracks, w0, w1, slots, rows, table, here, mode, split
                )
                results.extend(got)
                hi = max(hi, last)
            if wk.careful and upto:
                if not np.array_equal(src.sigs(slots, rows[:upto], trks[:upto]), sig_vals[-1]):
                    wk.changed = True  # a track changed while its members were emitted
        first = False
        w0 = w1
        w1 = min(len(tracks), w0 + window)
    if hi > t_end:  # members ran past DS1LSTAR: their tracks need signatures too
        extra = tracks[t_end:hi]
        sig_trks.append(extra)
        sig_vals.append(src.track_sigs(extra))
    arr, ud, read_bytes = _member_table(d, results, row)
    trks = np.concatenate(sig_trks) if sig_trks else np.zeros(0, dtype=np.int64)
    sigs = np.concatenate(sig_vals) if sig_vals else np.zeros(0, dtype=np.uint64)
    row["tracks_read"] = len(trks)
    return _Result(row, arr, ud, [], [], trks, sigs, read_bytes=read_bytes)


def _reuse_members(src, tracks, t_end, uttrs, prior, results):
    """--since inside a changed PDS: members (by TTR) whose tracks are the same absolute
    tracks as before and kept every signature are taken from the old fingerprint.
    Returns (TTRs still to read, signatures of relative tracks 0..t_end-1)."""
    rows, old_sigs, old_tracks = prior
    new_sigs = src.track_sigs(tracks[:t_end])
    if not len(rows) or not len(uttrs):
        return uttrs, new_sigs
    # A relative track is "same" when it is the same absolute track as before and
    # kept a (non-zero) signature; a member is reusable when all its tracks are.
    n = min(t_end, len(old_tracks))
    same = np.zeros(t_end, dtype=bool)
    same[:n] = (old_tracks[:n] == tracks[:n]) & (old_sigs[tracks[:n]] != 0)
    same[:n] &= new_sigs[:n] == old_sigs[tracks[:n]]
    bad = np.concatenate([[0], np.cumsum(~same)])
    keys = rows["ttr"].astype(np.int64)
    pos = np.minimum(np.searchsorted(keys, uttrs), len(keys) - 1)
    hit = keys[pos] == uttrs
    tt = uttrs >> 8
    span = rows["span"].astype(np.int64)[pos]
    end = tt + span
    ok = hit & (span > 0) & (end <= t_end)
    ok[ok] = bad[end[ok]] - bad[tt[ok]] == 0
    old = rows[pos[ok]]
    got = np.zeros(len(old), dtype=_GOT)
    got["ttr"] = uttrs[ok]
    for name in ("content", "records", "size", "span"):
        got[name] = old[name]
    got["status"] = g.E_OK
    results.append(got)
    return uttrs[~ok], new_sigs


def _ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """The indices ``starts[k] .. starts[k] + lengths[k] - 1`` for every k, concatenated."""
    lengths = lengths.astype(np.int64)
    total = int(lengths.sum())
    before = np.cumsum(lengths) - lengths  # where each range begins in the output
    return np.repeat(starts.astype(np.int64) - before, lengths) + np.arange(total)


_MEMBER_ATTRS_TAG = b"ssm.member.attrs.v1"


def _member_attrs(alias, ttrn, udlen, ud, alias_of) -> np.ndarray:
    """Attributes digests of members (docs/formats/fingerprint.md): ``alias``, ``ttrn``,
    ``udlen`` per member, ``ud`` their normalised user data concatenated, ``alias_of``
    an (n, 8) uint8 array.  The messages are laid out with NumPy; Python makes one
    BLAKE3 call per member."""
    n = len(alias)
    tag = np.frombuffer(_MEMBER_ATTRS_TAG, dtype=np.uint8)
    lens = len(tag) + 3 + udlen.astype(np.int64) + 8
    starts = np.cumsum(lens) - lens
    msg = np.zeros(int(lens.sum()), dtype=np.uint8)
    msg[starts[:, None] + np.arange(len(tag))] = tag
    head = starts + len(tag)
    msg[head] = alias
    msg[head + 1] = ttrn
    msg[head + 2] = udlen
    msg[_ranges(head + 3, udlen)] = ud
    msg[(head + 3 + udlen)[:, None] + np.arange(8)] = alias_of
    mv = memoryview(msg)
    size = m.ATTRS_SIZE
    digests = [
        blake3.blake3(mv[a:b]).digest(length=size)
        for a, b in zip(starts.tolist(), (starts + lens).tolist(), strict=True)
    ]
    return np.frombuffer(b"".join(digests), dtype=f"V{size}") if n else np.zeros(0, f"V{size}")


def _alias_targets(d: _Directory, order, names, ttrs, alias, ttrn, udoff, udlen):
    """(alias_of row per member, -1 none; alias-of name as (n, 8) uint8, zeros none) in
    name order: for an alias, the first real member in directory order with its TTR,
    else the member named in a load module's alias section (as
    ``emulator.pds.Pds.members`` resolves it)."""
    n = len(names)
    alias_row = np.full(n, -1, dtype=np.int64)
    alias_name = np.zeros((n, 8), dtype=np.uint8)
    arows = np.flatnonzero(alias)
    if not len(arows):
        return alias_row, alias_name
    dir_pos = np.empty(n, dtype=np.int64)
    dir_pos[order] = np.arange(n)
    mains = np.flatnonzero(~alias)
    mains = mains[np.lexsort((dir_pos[mains], ttrs[mains]))]  # by TTR, then directory order
    mttr = ttrs[mains]
    first = np.ones(len(mains), dtype=bool)
    first[1:] = mttr[1:] != mttr[:-1]
    mains, mttr = mains[first], mttr[first]
    at = np.minimum(np.searchsorted(mttr, ttrs[arows]), max(len(mttr) - 1, 0))
    target = np.full(len(arows), -2, dtype=np.int64)  # -2: no target
    if len(mttr):
        hit = mttr[at] == ttrs[arows]
        target[hit] = mains[at[hit]]
    name_bytes = names.astype(">u8").view(np.uint8).reshape(n, 8)
    for k in np.flatnonzero((target == -2) & (ttrn[arows] > 0)).tolist():
        i = int(arows[k])
        named = _lm_alias_name(bytes(d.ud[udoff[i] : udoff[i] + udlen[i]]))
        if named is not None:
            alias_name[i] = np.frombuffer(named, dtype=np.uint8)
            key = np.frombuffer(named, dtype=">u8")[0]
            j = int(np.searchsorted(names, key, side="right")) - 1
            target[k] = j if j >= 0 and names[j] == key else -1
    has = target != -2
    alias_row[arows[has]] = target[has]
    real = arows[target >= 0]
    alias_name[real] = name_bytes[target[target >= 0]]
    return alias_row, alias_name


def _member_table(
    d: _Directory, results: list[np.ndarray], row: dict
) -> tuple[np.ndarray, bytes, int]:
    """Member rows (sorted by name), their user data and the bytes read; fills the
    PDS's content, records, size and attributes in ``row``."""
    n = len(d.names)
    order = np.argsort(d.names, kind="stable")
    names = d.names[order]
    ttrs = d.ttrs[order]
    c = d.c[order].astype(np.int64)
    alias = (c & 0x80) != 0
    ttrn = (c & 0x60) >> 5
    udlen = 2 * (c & 0x1F)
    udoff = d.udoff[order]
    # Normalised user data: the TTRs counted by the C byte (at 0, 4, 8) zeroed.
    ud = d.ud.copy()
    for i in range(3):
        sel = (ttrn > i) & (udlen >= 4 * i + 3)
        for b in range(3):
            ud[udoff[sel] + 4 * i + b] = 0
    ud_sorted = ud[_ranges(udoff, udlen)]  # user data in name order
    arr = np.zeros(n, dtype=m.MEMBER_DTYPE)
    name_bytes = names.astype(">u8").view("S8")
    arr["name"] = name_bytes
    arr["ttrn"] = ttrn
    arr["udlen"] = udlen
    arr["ttr"] = ttrs
    arr["udoff"] = np.cumsum(udlen) - udlen
    read_bytes = 0
    status = np.full(n, g.E_TTR, dtype=np.int64)
    got = np.concatenate(results) if results else np.zeros(0, dtype=_GOT)
    if len(got):
        got = got[np.argsort(got["ttr"], kind="stable")]
        pos = np.minimum(np.searchsorted(got["ttr"], ttrs), len(got) - 1)
        hit = got["ttr"][pos] == ttrs
        src = got[pos[hit]]
        for name in ("span", "content", "records", "size"):
            arr[name][hit] = src[name]
        status[hit] = src["status"]
        read_bytes = int(got["size"].sum())
    flags = np.zeros(n, dtype=np.int64)
    flags[alias] |= m.M_ALIAS
    flags[ttrn > 0] |= m.M_LOADMOD
    flags[(ttrn == 0) & ((udlen == 30) | (udlen == 40))] |= m.M_ISPF
    flags[status != g.E_OK] |= m.M_ERROR
    if (status != g.E_OK).any():
        row["flags"] |= m.DS_ERROR
    arr["flags"] = flags
    alias_row, alias_name = _alias_targets(d, order, names, ttrs, alias, ttrn, udoff, udlen)
    arr["alias_of"] = alias_row
    # The alias-of name in the attributes digest: 8 bytes, blank padded (an empty name
    # and a real member's: 8 zero bytes).
    nonzero = alias_name != 0
    named = alias & nonzero.any(axis=1)
    last = 7 - np.argmax(nonzero[:, ::-1], axis=1)
    alias_name[named[:, None] & (np.arange(8) > last[:, None])] = 0x40
    alias_name[~named] = 0
    arr["attrs"] = _member_attrs(alias, ttrn, udlen, ud_sorted, alias_name)
    # PDS content and member-list digests: one BLAKE3 call each over packed rows.
    packed = np.zeros(n, dtype=[("name", "S8"), ("alias", "u1"), ("content", "V32")])
    packed["name"] = name_bytes
    packed["alias"] = alias
    packed["content"] = arr["content"]
    row["records"] = n
    row["size"] = int(arr["size"][~alias].sum())
    row["content"] = blake3.blake3(b"ssm.pds.v1" + packed.tobytes()).digest()
    row["attrs"] = _ds_attrs(row, _member_list_digest(arr))
    return arr, ud_sorted.tobytes(), read_bytes


def _member_list_digest(members: np.ndarray) -> bytes:
    """BLAKE3-256 over (name(8) || attributes digest(16)) of every entry, in name order."""
    listing = np.zeros(len(members), dtype=[("name", "S8"), ("attrs", f"V{m.ATTRS_SIZE}")])
    listing["name"] = members["name"]
    listing["attrs"] = members["attrs"]
    return blake3.blake3(listing.tobytes()).digest()


def _lm_alias_name(userdata: bytes) -> bytes | None:
    """The main member's name in a load-module alias entry's user data (IHAPDS alias
    section), via emulator.pds; None when there is none."""
    from emulator.pds.directory import DirEntry, load_module_alias_name, name_to_bytes

    try:
        entry = DirEntry("ALIAS", (0, 0), alias=True, ttr_count=1, userdata=userdata)
        name = load_module_alias_name(entry)
        return name_to_bytes(name) if name else None
    except EmulatorError:
        return None


def _member_stream(wk, src, tracks, ttr, mode, split):
    """A member too big for one chunk, or running past a window, streamed from its
    TTR; returns ((digest, records, bytes, status), relative track after the last read)."""
    tt, r = ttr
    res = _stream(wk, src, tracks[tt:], r, mode, split, cdc=False, sig=False)
    status = res.err
    if res.err in (g.E_BDW, g.E_RDW, g.E_SPAN):
        res = _stream(wk, src, tracks[tt:], r, g.MODE_U, 0, cdc=False, sig=False)
    elif not res.eof and not status:
        status = g.E_NO_EOF
    last = tt + sum(len(t) for t in res.tracks)
    return (res.content, res.records, res.size, status), last


def _process(wk: _Worker, src: _Source, info, vol_index: int, prior=None) -> _Result:
    row = _base_row(info, vol_index)
    if info.dsorg_raw & 0x0200:
        res = _partitioned(wk, src, info, row, prior)
    else:
        res = _sequential(wk, src, info, row)
    res.extents = [(e.seq, e.begin, e.end) for e in sorted(info.extents, key=lambda e: e.seq)]
    return res


def _reuse(
    wk: _Worker, src: _Source, info, vol_index: int, old, old_ds, old_sigs
) -> _Result | None:
    """The old fingerprint's data set if nothing it was read from changed, else None."""
    if old_ds is None or old_ds.flags & (m.DS_TORN | m.DS_ERROR):
        return None
    exts = [(e.begin, e.end) for e in sorted(info.extents, key=lambda e: e.seq)]
    if exts != old_ds.extents:
        return None
    row = _base_row(info, vol_index)
    for key in ("dsorg_raw", "recfm_raw", "lrecl", "blksize", "keylen"):
        if row[key] != getattr(old_ds, key):
            return None
    tracks = _tracks_of(info)
    read = tracks[old_sigs[tracks] != 0] if len(old_sigs) else tracks[:0]
    if len(read) != old_ds.tracks_read:
        return None
    new = src.track_sigs(read)
    if not np.array_equal(new, old_sigs[read]):
        return None
    row.update(
        flags=old_ds.flags,
        records=old_ds.records,
        size=old_ds.size,
        tracks_read=old_ds.tracks_read,
        content=old_ds.content,
    )
    members = old.members[old_ds.mstart : old_ds.mstart + old_ds.mcount].copy()
    list_digest = None
    ud = b""
    if old_ds.is_pds:
        list_digest = _member_list_digest(members)
        if len(members):
            lo = int(members["udoff"].min())
            hi = int((members["udoff"].astype(np.int64) + members["udlen"]).max())
            ud = old.userdata[lo:hi]
            members["udoff"] -= lo
            alias = members["alias_of"]
            members["alias_of"] = np.where(alias >= 0, alias - old_ds.mstart, -1)
    row["attrs"] = _ds_attrs(row, list_digest)
    groups = old_ds.group_rows.copy()  # rows kept as an array (no tuple per group)
    res = _Result(row, members, ud, groups, [], read, new, reused=True)
    res.extents = [(e.seq, e.begin, e.end) for e in sorted(info.extents, key=lambda e: e.seq)]
    return res


def _resume(wk, src, info, vol_index, old_ds, old_sigs) -> _Result | None:
    """--since for a grouped sequential data set whose first tracks are unchanged (a
    log that grew, a file rewritten from some point on): the groups that end before
    the first changed track are taken over, reading resumes where the next one starts
    (its cut points depend only on the records after it, so they come out as a full
    read would make them).  None when that does not apply."""
    if old_sigs is None or old_ds.is_pds or info.dsorg_raw & 0x0200:
        return None
    if not old_ds.flags & m.DS_GROUPED or old_ds.gcount < 2:
        return None
    if old_ds.flags & (m.DS_TORN | m.DS_ERROR):
        return None
    for key in ("recfm_raw", "lrecl", "keylen"):
        if getattr(old_ds, key) != getattr(info, key):
            return None
    mode, split = _mode(info.recfm_raw, info.keylen, info.lrecl)
    if mode == g.MODE_VS:
        return None  # a group may start inside a spanned record's block: not resumable
    tracks = _tracks_of(info)
    old_tracks = np.concatenate([np.arange(b, e + 1, dtype=np.int64) for b, e in old_ds.extents])
    n = min(old_ds.tracks_read, len(tracks), len(old_tracks))
    moved = np.nonzero(tracks[:n] != old_tracks[:n])[0]
    n = int(moved[0]) if len(moved) else n
    prefix = tracks[:n]
    new = src.track_sigs(prefix)
    changed = np.nonzero((new != old_sigs[prefix]) | (old_sigs[prefix] == 0))[0]
    first_changed = int(changed[0]) if len(changed) else n
    rows = old_ds.group_rows
    starts = rows["ttr"].astype(np.int64) >> 8
    # Resume at group j: groups 0..j-1 end in a block on a track before start(j).
    j = int(np.searchsorted(starts, first_changed, side="left")) - 1
    if j < 1:
        return None
    tt, r, skip = int(starts[j]), int(rows["ttr"][j]) & 0xFF, int(rows["skip"][j])
    before = _group_tuples(rows[:j])
    res = _stream(wk, src, tracks[tt:], r, mode, split, cdc=True, tt_base=tt, resume=(before, skip))
    if res.err or res.size < GROUP_MIN_STREAM:
        return None  # let a full read decide what this data set is now
    row = _base_row(info, vol_index)
    row["flags"] |= m.DS_GROUPED | (m.DS_KEYED if info.keylen else 0)
    if not res.eof:
        row["flags"] |= m.DS_NO_EOF
    trks = np.concatenate([tracks[:tt], *res.tracks])
    sigs = np.concatenate([new[:tt], *res.sigs])
    row.update(records=res.records, size=res.size, content=res.content, tracks_read=len(trks))
    row["attrs"] = _ds_attrs(row, None)
    read = res.size - before[-1][2] - before[-1][3]
    extents = [(e.seq, e.begin, e.end) for e in sorted(info.extents, key=lambda e: e.seq)]
    return _Result(row, np.zeros(0, m.MEMBER_DTYPE), b"", res.groups, extents, trks, sigs,
                   reused=False, read_bytes=read)  # fmt: skip


def _prior(old, old_ds, info, old_sigs):
    """What ``--since`` can offer a changed PDS: its old members by TTR (see
    :func:`_partitioned`), or None."""
    if old_ds is None or old_sigs is None or not old_ds.is_pds or not info.dsorg_raw & 0x0200:
        return None
    if old_ds.flags & (m.DS_TORN | m.DS_ERROR):
        return None
    for key in ("recfm_raw", "lrecl", "keylen"):  # what decides the stream rule
        if getattr(old_ds, key) != getattr(info, key):
            return None
    rows = old_ds.member_rows
    rows = rows[(rows["flags"] & m.M_ERROR) == 0]
    # one row per TTR (aliases share it), sorted by TTR for searchsorted
    _, first = np.unique(rows["ttr"], return_index=True)
    by_ttr = rows[first]
    old_tracks = (
        np.concatenate([np.arange(b, e + 1, dtype=np.int64) for b, e in old_ds.extents])
        if old_ds.extents
        else np.zeros(0, dtype=np.int64)
    )
    return by_ttr, old_sigs, old_tracks


# -- the run --------------------------------------------------------------------------
@dataclass
class _Job:
    vol_index: int
    path: str
    volser: str
    info: object
    weight: int


def _recent(marker: tuple) -> bool:
    now = time.time_ns()
    for item in marker:
        if isinstance(item, tuple) and len(item) == 2:
            if now - item[1] < ACTIVE_WINDOW * 1e9:
                return True
    return False


def _run_job(
    job: _Job, wk: _Worker, old, old_index, old_sigs, watch: bool = True
) -> _Result | None:
    """One data set, with the torn-read protocol (module docstring); ``watch``: False
    when no other writer can change the image (see :func:`fingerprint`)."""
    src = wk.source(job.path)
    info = job.info
    fresh: _Source | None = None
    try:
        for attempt in range(2):
            before = src.marker()
            wk.careful, wk.changed = watch and _recent(before), False
            old_ds = old_index.get((job.volser, info.dsname)) if old is not None else None
            res = None
            if old_ds is not None:
                res = _reuse(
                    wk, src, info, job.vol_index, old, old_ds, old_sigs.get(job.volser, ())
                )
            if res is None and old_ds is not None:
                res = _resume(wk, src, info, job.vol_index, old_ds, old_sigs.get(job.volser))
            if res is None:
                prior = _prior(old, old_ds, info, old_sigs.get(job.volser))
                res = _process(wk, src, info, job.vol_index, prior)
            after = src.marker()
            stable = before == after and not wk.changed
            if stable and (wk.careful or (watch and _recent(after))) and len(res.sig_trks):
                stable = np.array_equal(src.track_sigs(res.sig_trks), res.sig_vals)
            res.when = time.monotonic()
            if stable:
                return res
            if attempt == 0:
                # Read again on a freshly opened volume (new VTOC, new CCKD tables).
                if fresh is not None:
                    fresh.close()
                fresh = src = _Source(job.path)
                try:
                    info = src.vol.dataset(info.dsname)
                except NotFoundError:
                    return None  # scratched while we read it: it is no longer there
        res.row["flags"] |= m.DS_TORN
        return res
    finally:
        if fresh is not None:
            fresh.close()


def _settle(jobs, results, active, old, old_index, old_sigs) -> None:
    """Check again, at least VERIFY_DELAY after it was read, every data set of a volume
    written during the run (or just before it): a data set whose tracks lost their
    signatures is read again, then checked again after the same delay, and flagged
    torn if it changed once more.  A writer paused in the middle of an update for
    longer than that is indistinguishable from a finished one (an image holds no
    update markers; on z/OS, ENQ is what tells).
    """
    for round_ in range(2):
        todo = [
            i
            for i, r in enumerate(results)
            if r is not None
            and jobs[i].vol_index in active
            and not r.row["flags"] & m.DS_TORN
            and len(r.sig_trks)
        ]
        if not todo:
            return
        wait = VERIFY_DELAY - (time.monotonic() - max(results[i].when for i in todo))
        if wait > 0:
            time.sleep(wait)
        changed = []
        sources: dict[str, _Source] = {}
        try:
            for i in todo:
                path = jobs[i].path
                src = sources.get(path) or sources.setdefault(path, _Source(path))
                r = results[i]
                if not np.array_equal(src.track_sigs(r.sig_trks), r.sig_vals):
                    changed.append(i)
        finally:
            for src in sources.values():
                src.close()
        if not changed:
            return
        for i in changed:
            if round_ == 1:
                results[i].row["flags"] |= m.DS_TORN
                continue
            wk = _Worker()
            try:
                src = wk.source(jobs[i].path)
                try:
                    info = src.vol.dataset(jobs[i].info.dsname)
                except NotFoundError:
                    results[i] = None  # scratched meanwhile: no longer there
                    continue
                job = _Job(jobs[i].vol_index, jobs[i].path, jobs[i].volser, info, jobs[i].weight)
                results[i] = _run_job(job, wk, old, old_index, old_sigs)
            finally:
                wk.close()


def _load_since(since) -> m.Fingerprint | None:
    if since is None or isinstance(since, m.Fingerprint):
        return since
    from ssm import fpfile

    return fpfile.read(since)


def fingerprint(
    paths: Iterable[str | os.PathLike],
    since: m.Fingerprint | str | os.PathLike | None = None,
    progress: Callable[[Progress], None] | None = None,
    *,
    workers: int | None = None,
    created: _dt.datetime | None = None,
    datasets: Iterable[str] | None = None,
    exclusive: bool = False,
) -> m.Fingerprint:
    """Fingerprint the volumes ``paths`` (one system); see the module docstring.

    ``datasets``: only these data set names (all when None), e.g. what an import
    touched.

    ``since``: an older fingerprint (object or file) whose unchanged data sets are
    reused.  ``progress`` is called (from worker threads, at most ~10 times a second,
    and once at the end) with a :class:`Progress`.  ``workers``: threads (default:
    :func:`default_workers` of the bytes to read).  ``created``: the timestamp to
    record (default now, UTC).
    ``exclusive``: the caller holds the writer lock of every image (an import checking
    what it wrote), so nothing else can write them meanwhile: a recent modification time
    is the caller's own and the re-checks for a volume being written are skipped (the
    generation markers are still compared).
    """
    t0 = time.perf_counter()
    paths = [os.fspath(p) for p in paths]
    old = _load_since(since)
    created = created or _dt.datetime.now(_dt.UTC).replace(microsecond=0)
    wanted = None if datasets is None else {n.strip().upper() for n in datasets if n}

    volumes: list[m.VolumeFp] = []
    jobs: list[_Job] = []
    # Kept open to the end: the generation markers recorded come from these images.
    opened = []
    try:
        for path in paths:
            opened.append(_open_volume(path))
        system = api.System(opened)
    except BaseException:
        for vol in opened:
            vol.close()
        raise
    with system:
        maps = [_map_state(vol.image) for vol in system.volumes]
        starts = [vol.image.generation() for vol in system.volumes]
        for vi, vol in enumerate(system.volumes):
            image = vol.image
            volumes.append(
                m.VolumeFp(
                    volser=vol.volser,
                    devtype=vol.device.name,
                    cyls=vol.cyls,
                    heads=vol.heads,
                    trksize=image.trksize,
                    kind=image.kind,
                    path=paths[vi],
                    sig_kind=m.SIG_STORED if hasattr(image, "stored_entry") else m.SIG_SLOT,
                    track_sigs=np.zeros(vol.cyls * vol.heads, dtype=np.uint64),
                )
            )
            for info in vol.datasets():
                if wanted is not None and info.dsname not in wanted:
                    continue
                weight = (info.used_tracks or info.tracks) * image.trksize
                jobs.append(_Job(vi, paths[vi], vol.volser, info, weight))
        fp, report = _run(
            paths,
            volumes,
            jobs,
            old,
            progress,
            workers,
            created,
            t0,
            system.volumes,
            starts,
            watch=not exclusive,
        )
        for vf, vol, state, start in zip(volumes, system.volumes, maps, starts, strict=True):
            first = vol.image.generation()[0]
            vf.size, vf.mtime_ns = int(first[0]), int(first[1])
            # The map's state holds for this fingerprint if nothing wrote the image
            # during the run (docs/formats/changes.md).
            if state is not None and vol.image.generation() == start:
                if _map_state(vol.image) == state:
                    vf.changes = {"epoch": state[0], "generation": state[1]}
    fp.stats["seconds"] = time.perf_counter() - t0
    report(None, finished=True)
    return fp


def _known(image, old_vol: m.VolumeFp) -> tuple | None:
    """``_Source.known`` for a plain image whose change map is trusted and in the epoch
    ``old_vol`` recorded, else None."""
    marker = image.generation()
    epoch, generation = old_vol.changes["epoch"], old_vol.changes["generation"]
    changed = changes.changed_since(image.files, epoch, generation)
    if changed is None or image.generation() != marker:
        return None
    mask = np.zeros(len(old_vol.track_sigs), dtype=bool)
    mask[changed[changed < len(mask)]] = True
    return marker, mask, old_vol.track_sigs


def _map_state(image) -> tuple[str, int] | None:
    """The change map's ``(epoch, generation)`` of a plain image, when trusted."""
    return changes.state(image.files) if image.kind == "ckd" else None


def _run(paths, volumes, jobs, old, progress, workers, created, t0, vols, starts, watch=True):
    """Run the jobs on the worker pool and put the fingerprint together."""
    old_index: dict[tuple[str, str], m.DatasetFp] = {}
    old_sigs: dict[str, np.ndarray] = {}
    known: dict[str, tuple] = {}
    if old is not None:
        old_vols = {v.volser: v for v in old.volumes}
        for vi, vf in enumerate(volumes):
            ov = old_vols.get(vf.volser)
            # Signatures are only comparable on the same geometry and image kind.
            if ov is not None and (ov.devtype, ov.cyls, ov.heads, ov.sig_kind) == (
                vf.devtype,
                vf.cyls,
                vf.heads,
                vf.sig_kind,
            ):
                old_sigs[vf.volser] = ov.track_sigs
                if ov.changes is not None and vf.sig_kind == m.SIG_SLOT:
                    entry = _known(vols[vi].image, ov)
                    if entry is not None:
                        known[paths[vi]] = entry
        for ds in old.datasets:
            if ds.volser in old_sigs:
                old_index.setdefault((ds.volser, ds.dsname), ds)

    total = sum(j.weight for j in jobs)
    lock = threading.Lock()
    state = {"done": 0, "n": 0, "last": 0.0}

    def report(job: _Job | None, finished: bool = False) -> None:
        if progress is None:
            return
        with lock:
            now = time.perf_counter()
            if not finished and now - state["last"] < 0.1:
                return
            state["last"] = now
            p = Progress(
                volser=job.volser if job else "",
                path=job.path if job else "",
                bytes_done=state["done"],
                bytes_total=total,
                datasets_done=state["n"],
                datasets_total=len(jobs),
                elapsed=now - t0,
                finished=finished,
            )
        progress(p)

    local = threading.local()
    workers_made: list[_Worker] = []
    nworkers = workers or default_workers(sum(job.weight for job in jobs))

    def run(job: _Job) -> _Result | None:
        wk = getattr(local, "wk", None)
        if wk is None:
            wk = local.wk = _Worker()
            wk.known = known
            if nworkers <= 1:  # the jobs run in this thread, which holds ``vols`` open
                wk.shared = dict(zip(paths, vols, strict=True))
            with lock:
                workers_made.append(wk)
        ticked = [0]

        def tick(nbytes: int) -> None:
            # Progress inside a long job, never past the job's share of the total.
            add = min(nbytes, job.weight - ticked[0])
            if add > 0:
                ticked[0] += add
                with lock:
                    state["done"] += add
                report(job)

        wk.tick = tick
        res = _run_job(job, wk, old, old_index, old_sigs, watch)
        with lock:
            state["done"] += job.weight - ticked[0]
            state["n"] += 1
        report(job)
        return res

    order = sorted(range(len(jobs)), key=lambda i: -jobs[i].weight)
    results: list[_Result | None] = [None] * len(jobs)
    try:
        if nworkers <= 1:
            for i in order:
                results[i] = run(jobs[i])
        else:
            with ThreadPoolExecutor(max_workers=nworkers) as pool:
                futures = {i: pool.submit(run, jobs[i]) for i in order}
                for i, fut in futures.items():
                    results[i] = fut.result()
    finally:
        for wk in workers_made:
            wk.close()
    active = {
        vi
        for vi, vol in enumerate(vols)
        if watch and (_recent(starts[vi]) or vol.image.generation() != starts[vi])
    }
    if active:
        _settle(jobs, results, active, old, old_index, old_sigs)

    fp = _assemble(volumes, jobs, results, created)
    fp.stats = {
        "datasets": len(jobs),
        "reused": sum(1 for r in results if r is not None and r.reused),
        "torn": int(sum(1 for r in results if r is not None and r.row["flags"] & m.DS_TORN)),
        "read_bytes": sum(r.read_bytes for r in results if r is not None),
        "seconds": time.perf_counter() - t0,
        "workers": nworkers,
    }
    return fp, report


def _assemble(volumes, jobs, results, created) -> m.Fingerprint:
    """Put the per-data-set results together in file order (volume, dsname)."""
    keyed = sorted(
        (jobs[i].vol_index, r.row["dsname"], i) for i, r in enumerate(results) if r is not None
    )
    nds = len(keyed)
    table = np.zeros(nds, dtype=m.DATASET_DTYPE)
    mparts, gparts, eparts, ud_parts = [], [], [], []
    mcount = gcount = udoff = 0
    for di, (vi, _name, i) in enumerate(keyed):
        r = results[i]
        row = dict(r.row)
        mem = r.members
        if len(mem):
            mem = mem.copy()
            mem["ds"] = di
            mem["udoff"] += udoff
            mem["alias_of"] = np.where(mem["alias_of"] >= 0, mem["alias_of"] + mcount, -1)
            mparts.append(mem)
        ud_parts.append(r.userdata)
        row.update(mstart=mcount, mcount=len(mem), gstart=gcount, gcount=len(r.groups))
        mcount += len(mem)
        udoff += len(r.userdata)
        if isinstance(r.groups, np.ndarray):
            if len(r.groups):
                grp = r.groups.copy()
                grp["ds"] = di
                gparts.append(grp)
                gcount += len(r.groups)
        elif r.groups:
            grp = np.zeros(len(r.groups), dtype=m.GROUP_DTYPE)
            grp["ds"] = di
            for k, name in enumerate(("first", "count", "offset", "size", "digest", "ttr", "skip")):
                grp[name] = [group[k] for group in r.groups]
            gparts.append(grp)
            gcount += len(r.groups)
        if r.extents:
            ext = np.zeros(len(r.extents), dtype=m.EXTENT_DTYPE)
            for k, (seq, b, e) in enumerate(r.extents):
                ext[k] = (di, seq, b, e)
            eparts.append(ext)
        for name in m.DATASET_DTYPE.names:
            value = row[name]
            table[di][name] = value.encode("ascii") if isinstance(value, str) else value
        sigs = volumes[vi].track_sigs
        if len(r.sig_trks):
            sigs[r.sig_trks] = r.sig_vals
    dt, mt, gt, et = m.empty_tables()
    return m.Fingerprint(
        version=m.FORMAT_VERSION,
        created=created,
        tool=tool_version(),
        volumes=volumes,
        dataset_table=table,
        members=np.concatenate(mparts) if mparts else mt,
        groups=np.concatenate(gparts) if gparts else gt,
        extents=np.concatenate(eparts) if eparts else et,
        userdata=b"".join(ud_parts),
    )


__all__ = ["fingerprint", "Progress", "group_table_digest", "tool_version", "GROUP_MIN_STREAM"]
