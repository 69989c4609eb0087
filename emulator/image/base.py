"""The image interface: whole tracks in, whole tracks out, inside transactions.

Every image kind (plain CKD, split CKD, CCKD, CCKD64) implements :class:`DasdImage`.
Higher layers never see file offsets: they read and write track images (HA, R0,
records, end marker) addressed by absolute track number ``trk = cyl*heads + head``.

Writes are buffered per transaction.  ``with image.transaction():`` commits all of a
caller's writes or none of them (see ``emulator.image.journal``).  A writable image
holds its writer lock (``emulator.image.lock``) from open to :meth:`DasdImage.close`.
"""

from __future__ import annotations

import contextlib
import os
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from emulator.errors import ConflictError, FormatError
from emulator.geometry import Device
from emulator.image.journal import settle
from emulator.image.lock import WriterLock

CACHE_TRACKS = 256


class DasdImage:
    """A CKD volume image.  Subclasses implement ``_read_raw`` and ``_commit_tracks``."""

    kind = "?"

    def __init__(
        self,
        path: str | os.PathLike,
        device: Device,
        cyls: int,
        trksize: int,
        writable: bool,
        lock: WriterLock | None = None,
    ):
        if writable and (lock is None or not lock.held):
            raise ConflictError("a writable image needs its writer lock", path)
        self.path = os.fspath(path)
        self.lock = lock
        self.device = device
        self.heads = device.heads
        self.cyls = cyls
        self.trksize = trksize
        self.writable = writable
        self._pending: dict[int, bytes | memoryview] = {}
        #: Full zero-padded slot rows of images staged by write_slots (no copy needed).
        self._slots: dict[int, memoryview] = {}
        self._depth = 0
        self._poisoned = False
        self._cache: OrderedDict[int, bytes] = OrderedDict()
        self.closed = False
        #: Commits return before their data is flushed to disk (a thread flushes it;
        #: ``emulator.image.journal``): :meth:`sync` makes them durable, and so does
        #: :meth:`close`.  For a caller that commits several images one after another
        #: and syncs them together at the end.
        self.background_flush = False

    # -- geometry -------------------------------------------------------------------
    @property
    def total_tracks(self) -> int:
        return self.cyls * self.heads

    def cchh(self, trk: int) -> tuple[int, int]:
        return divmod(trk, self.heads)

    def where(self, trk: int) -> str:
        cyl, head = divmod(trk, self.heads)
        return f"track {cyl}/{head}"

    def _check_trk(self, trk: int) -> None:
        if not 0 <= trk < self.total_tracks:
            cyl, head = divmod(trk, self.heads) if trk >= 0 else (trk, 0)
            raise FormatError(
                f"track {cyl}/{head} is outside the volume ({self.cyls} cylinders of {self.heads} tracks)",
                self.path,
            )

    # -- reading --------------------------------------------------------------------
    def read_track(self, trk: int) -> bytes:
        """The track image of absolute track ``trk``, up to and including its end marker."""
        self._check_trk(trk)
        if trk in self._pending:
            return bytes(self._pending[trk])  # no copy for bytes; a staged slot row is copied
        hit = self._cache.get(trk)
        if hit is not None:
            self._cache.move_to_end(trk)
            return hit
        data = self._read_raw(trk)
        self._cache[trk] = data
        if len(self._cache) > CACHE_TRACKS:
            self._cache.popitem(last=False)
        return data

    def _read_raw(self, trk: int) -> bytes:  # pragma: no cover - abstract
        raise NotImplementedError

    def generation(self) -> tuple:
        """A marker that changes when another program writes the image: (size,
        mtime_ns) of every file of the image.  For readers running beside a writer
        (read it before and after reading tracks; a difference means re-read)."""
        out = []
        for name in getattr(self, "files", None) or [self.path]:
            st = os.stat(name)
            out.append((st.st_size, st.st_mtime_ns))
        return tuple(out)

    # -- writing --------------------------------------------------------------------
    def _require_staging(self) -> None:
        """Refuse a write to a read-only image or to a transaction that already failed."""
        if not self.writable:
            raise ConflictError("image is open read-only", self.path)
        if self._poisoned:
            raise ConflictError(
                "an earlier write in this transaction failed; it must be rolled back", self.path
            )

    def write_track(self, trk: int, image: bytes) -> None:
        """Stage a new image for ``trk``; it reaches the file when the transaction commits."""
        self._require_staging()
        self._check_trk(trk)
        from emulator.image.check import check_track_image  # local: avoids an import cycle

        check_track_image(image, trk, self.heads, self.trksize, self.path)
        self._pending[trk] = bytes(image)
        self._slots.pop(trk, None)
        if self._depth == 0:
            self.commit()

    def write_slots(self, trks: Sequence[int], slots: Any, lengths: Sequence[int]) -> None:
        """Stage new images for many tracks without copying them: row k of ``slots`` (a
        C-contiguous uint8 array ``trksize`` wide) holds the image of ``trks[k]`` in its
        first ``lengths[k]`` bytes and zeros after them, exactly as the slot is stored in
        a plain image file.  The array must stay unchanged until the transaction ends.
        Each image is checked as :meth:`write_track` checks it, all before any is
        staged."""
        self._require_staging()
        from emulator.image.check import check_track_image  # local: avoids an import cycle
        from emulator.kernels.tracks import first_bad_slot

        if slots.ndim != 2 or slots.shape[1] != self.trksize or not slots.flags.c_contiguous:
            raise FormatError(f"track slots must be rows of {self.trksize} bytes", self.path)
        if len(trks) != len(lengths) or len(trks) != slots.shape[0]:
            raise FormatError(
                f"{len(trks)} tracks, {len(lengths)} lengths and {slots.shape[0]} slots",
                self.path,
            )
        for trk in trks:
            self._check_trk(trk)
        cyl, head = np.divmod(np.asarray(trks, dtype=np.int64), self.heads)
        bad = first_bad_slot(slots, np.asarray(lengths, dtype=np.int64), cyl, head)
        if bad >= 0:  # check_track_image says what is wrong; else it is the padding
            trk, n = int(trks[bad]), int(lengths[bad])
            check_track_image(memoryview(slots[bad])[:n], trk, self.heads, self.trksize, self.path)
            raise FormatError(f"{self.where(trk)}: the slot is not zero after the image", self.path)
        for k, (trk, n) in enumerate(zip(trks, lengths, strict=True)):
            row = memoryview(slots[k])
            self._pending[trk] = row[:n]
            self._slots[trk] = row
        if self._depth == 0:
            self.commit()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[DasdImage]:
        """All writes inside the block reach the file together, or none do."""
        self._depth += 1
        try:
            yield self
        except BaseException:
            self._depth -= 1
            if self._depth == 0:
                self.rollback()
            else:
                self._poisoned = True
            raise
        self._depth -= 1
        if self._depth == 0:
            if self._poisoned:
                self.rollback()
                raise ConflictError("transaction rolled back after an inner failure", self.path)
            self.commit()

    def commit(self) -> None:
        if not self._pending:
            return
        pending, self._pending = self._pending, {}
        slots, self._slots = self._slots, {}
        try:
            self._commit_tracks(pending, slots)
        finally:
            self._cache.clear()

    def rollback(self) -> None:
        self._pending.clear()
        self._slots.clear()
        self._poisoned = False
        self._cache.clear()

    def _commit_tracks(
        self, tracks: dict[int, bytes | memoryview], slots: dict[int, memoryview]
    ) -> None:  # pragma: no cover
        """Write ``tracks`` (images); ``slots``: the full zero-padded slot row of those
        staged by :meth:`write_slots`."""
        raise NotImplementedError

    # -- lifetime -------------------------------------------------------------------
    def sync(self) -> None:
        """Wait until every commit so far is on disk (see :attr:`background_flush`)."""
        settle(self.path)  # the journal is named after the first file: the path

    def close(self) -> None:
        if self.closed:
            return
        try:
            if self._pending and self._depth == 0:
                self.commit()
        finally:
            try:
                self.sync()  # before the writer lock goes: the journal must be gone
            finally:  # a failed flush is raised, but the image is closed all the same
                self._close()
                self.closed = True
                if self.lock is not None:
                    self.lock.release()

    def _close(self) -> None:
        pass

    def __enter__(self) -> DasdImage:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.path} {self.device.name} {self.cyls} cyl>"
