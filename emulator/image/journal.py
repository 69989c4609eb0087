"""Crash-safe writes: an undo journal beside the image.

Every commit that changes image files goes through :func:`apply_writes`:

1. the bytes about to be overwritten, and each file's size, are saved to
   ``<first image file>.journal`` and flushed to disk (file and directory);
2. the new bytes are written and flushed;
3. the journal is deleted.

Only the holder of the image's writer lock (:class:`emulator.image.lock.WriterLock`,
taken at a writable open and held until close) commits, so a journal whose writer is
alive always has that lock held.  A journal found at open time is acted on only under
the writer lock: a writable open holds it anyway; a read-only open takes it just long
enough to roll back, and only when no live writer holds it (:func:`recover`).  A
journal that survives its writer means step 2 may be half done: if the journal is
whole (its trailer CRC matches) the saved bytes are put back and the files cut to their
old sizes, so the image is exactly as before the interrupted commit; a journal without
a valid trailer means step 2 never started, and it is simply removed.

Journal layout, version 2 (all big-endian)::

    "DASDJNL2" || u32 nfiles || nfiles x (u16 namelen || name utf-8 || u64 size)
    || entries: u32 fileidx || u64 offset || u32 length || u32 stored || stored bytes
    || "END!" || u32 crc32(everything before "END!")

An entry's original region is ``length`` bytes at ``offset``: its ``stored`` bytes
followed by ``length - stored`` zero bytes (``stored <= length``).  Trailing zeros are
left off because most overwritten bytes are zeros: an empty track slot of a new volume
is a home address, R0 and an end marker, then padding, so the entry of a 3390 slot
keeps 29 of its 56,832 bytes.  There is one entry per write, and none for a write wholly past its
file's old size (cutting the file to that size undoes it).  Rolling back writes every
entry's region (zeros included) and then cuts each file to its saved size.

Version 1 (``"DASDJNL1"``, written by earlier versions and still rolled back) is the
same but for its entries, which hold the whole region: ``u32 fileidx || u64 offset ||
u32 length || length original bytes``.

A commit may leave its last step to a background thread (``apply_writes(...,
background=True)``): the new bytes are written, and the thread flushes them to disk and
then deletes the journal, while the caller goes on (an import applies its next volume
while this one's data reaches the disk).  Until :func:`settle` has waited for it the
commit is complete for this process but not yet durable: a crash before the flush ends
leaves a whole journal, which rolls the image back, exactly as for a crash during step 2.
The next commit of the image, its close and :func:`settle` wait for the thread; a
read-only open by this same process reads the new bytes without waiting.

Writes that continue each other (same file, each starting where the one before ends)
form a run (up to :data:`RUN_BYTES`): its old bytes are looked at through one read-only
memory map of the file, and only what the journal keeps of them is copied (reading
each run into a buffer first cost a copy of every overwritten byte, and new memory);
its new bytes are written from one seek.  They are not joined into one buffer first:
copying them cost more than the calls it would save.
"""

from __future__ import annotations

import mmap
import os
import struct
import threading
import time
import zlib
from collections.abc import Sequence
from typing import BinaryIO

import numpy as np

from emulator.errors import ConflictError, IntegrityError
from emulator.image.lock import WriterLock, dead_writer_lock, describe_holder, held_here, lock_wait

MAGIC = b"DASDJNL2"
MAGIC_V1 = b"DASDJNL1"
TRAILER = b"END!"
_HEADER = struct.Struct(">I")
_NAME = struct.Struct(">H")
_SIZE = struct.Struct(">Q")
_ENTRY = struct.Struct(">IQII")  # fileidx, offset, length, stored
_ENTRY_V1 = struct.Struct(">IQI")  # fileidx, offset, length

#: The most old bytes mapped at a time: a run of continuing writes is cut at the
#: first write boundary past this, so a commit of a whole volume never maps all of it.
RUN_BYTES = 8 << 20

# Compared against with memcmp (bytes.startswith takes a memoryview and copies nothing).
_ZEROS = memoryview(bytes(1 << 16))
# Within this many bytes, bytes.rstrip finds the last non-zero byte directly.
_SCAN_BYTES = 64


def journal_path(first_file: str) -> str:
    return first_file + ".journal"


class _Flush(threading.Thread):
    """Flushes a background commit's files to disk, then deletes its journal."""

    def __init__(self, first_file: str, handles: list[BinaryIO]):
        super().__init__(name=f"flush {os.path.basename(first_file)}")
        self.first_file, self.handles = first_file, handles
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            for h in self.handles:
                os.fsync(h.fileno())
            os.unlink(journal_path(self.first_file))
            _fsync_dir(self.first_file)
        except BaseException as exc:  # reported by settle()
            self.error = exc
        finally:
            for h in self.handles:
                h.close()


#: Background commits still being flushed, by the absolute path of the first file.
_FLUSHING: dict[str, _Flush] = {}


def flushing(first_file: str) -> bool:
    """Whether a background commit of this process is still flushing the image."""
    return os.path.abspath(first_file) in _FLUSHING


def settle(first_file: str) -> None:
    """Wait until a background commit of the image (if any) is on disk and its journal
    gone; IntegrityError when the flush failed (the journal stays, so the next open
    rolls that commit back)."""
    flush = _FLUSHING.pop(os.path.abspath(first_file), None)
    if flush is None:
        return
    flush.join()
    if flush.error is not None:
        raise IntegrityError(
            f"flushing a commit to disk failed ({flush.error}); the next open rolls it back",
            first_file,
        )


def _fsync_dir(path: str) -> None:
    try:
        fd = os.open(os.path.dirname(os.path.abspath(path)) or ".", os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def apply_writes(
    files: Sequence[str],
    writes: Sequence[tuple[int, int, bytes]],
    lock: WriterLock,
    background: bool = False,
) -> None:
    """Write ``(file index, offset, data)`` ranges into ``files`` all-or-nothing.

    ``lock`` is the writer lock of the image, which the caller holds.  Writes are
    applied in their order (a later one wins where two overlap).  ``background``:
    return once the new bytes are written, leaving the flush to disk and the journal's
    removal to a thread (:func:`settle` waits for it)."""
    if not writes:
        return
    if not lock.held:
        raise ConflictError("commit without the image's writer lock", files[0])
    settle(files[0])  # an earlier commit's journal goes before this one's is written
    sizes = [os.path.getsize(f) for f in files]
    body = bytearray(MAGIC)
    body += _HEADER.pack(len(files))
    for name, size in zip(files, sizes, strict=True):
        raw = os.path.basename(name).encode()
        body += _NAME.pack(len(raw)) + raw + _SIZE.pack(size)
    _apply_locked(files, _runs(writes), sizes, body, background)


def _runs(writes: Sequence[tuple[int, int, bytes]]) -> list[tuple[int, int, list[bytes]]]:
    """``writes`` as ``(file index, offset, datas)`` runs: consecutive writes of one
    file, each starting where the one before ends, up to :data:`RUN_BYTES` a run.
    Order is kept, so overlapping writes still apply in the caller's order."""
    runs: list[tuple[int, int, list[bytes]]] = []
    run_end = run_bytes = -1
    for idx, offset, data in writes:
        if runs and runs[-1][0] == idx and offset == run_end and run_bytes < RUN_BYTES:
            runs[-1][2].append(data)
            run_bytes += len(data)
        else:
            runs.append((idx, offset, [data]))
            run_bytes = len(data)
        run_end = offset + len(data)
    return runs


def _all_zero(buf: np.ndarray, start: int, end: int) -> bool:
    """Whether ``buf[start:end]`` is all zero bytes."""
    return not buf[start:end].any()


def _trimmed_end(buf: np.ndarray, start: int, end: int) -> int:
    """``end`` less the zero bytes that ``buf[start:end]`` ends with."""
    # A track slot is data, then zeros: gallop from the start to a point past which all
    # is zero (an empty track's first probe is it), then bisect down to a short span
    # that holds the last non-zero byte.  Invariant: buf[end:] is all zero and the last
    # non-zero byte, if there is one, is in buf[low:end].
    low, step = start, _SCAN_BYTES
    while low + step < end:
        if _all_zero(buf, low + step, end):
            end = low + step
            break
        low += step
        step *= 2
    while end - low > _SCAN_BYTES:
        mid = (low + end) // 2
        if _all_zero(buf, mid, end):
            end = mid
        else:
            low = mid
    return low + len(buf[low:end].tobytes().rstrip(b"\0"))


def _journal_entries(
    body: bytearray, idx: int, offset: int, datas: list[bytes], old: np.ndarray, size: int
) -> None:
    """Append the entries of a run's writes to ``body``; ``old[:size]`` holds the run's
    bytes before the commit, up to the file's old size."""
    view = memoryview(old)
    pos = 0
    for data in datas:
        length = min(len(data), size - pos)
        if length > 0:
            stored = _trimmed_end(old, pos, pos + length) - pos
            body += _ENTRY.pack(idx, offset + pos, length, stored)
            body += view[pos : pos + stored]
        pos += len(data)


def _apply_locked(
    files: Sequence[str],
    runs: list[tuple[int, int, list[bytes]]],
    sizes: list[int],
    body: bytearray,
    background: bool = False,
) -> None:
    written = sorted({idx for idx, _, _ in runs})
    handles = {idx: open(files[idx], "r+b") for idx in written}  # noqa: SIM115 - closed below
    try:
        for idx, offset, datas in runs:
            end = min(offset + sum(map(len, datas)), sizes[idx])
            if end <= offset:
                continue  # wholly past the file's old size: cutting the file undoes it
            # The old bytes are looked at where they lie, in a read-only map of the
            # file: only the bytes a journal entry keeps are copied (most of a slot
            # being overwritten is zeros), not the whole run into new memory.
            start = offset - offset % mmap.ALLOCATIONGRANULARITY
            with mmap.mmap(
                handles[idx].fileno(), end - start, access=mmap.ACCESS_READ, offset=start
            ) as mapped:
                old = np.frombuffer(mapped, dtype=np.uint8)[offset - start :]
                _journal_entries(body, idx, offset, datas, old, end - offset)
                del old  # the map closes only when no view of it is left
        body += TRAILER + struct.pack(">I", zlib.crc32(body))
        jpath = journal_path(files[0])
        with open(jpath, "wb") as jf:
            jf.write(body)
            jf.flush()
            os.fsync(jf.fileno())
        _fsync_dir(jpath)
        for idx, offset, datas in runs:
            handles[idx].seek(offset)
            for data in datas:
                handles[idx].write(data)
        for h in handles.values():
            h.flush()
        flush = _Flush(files[0], list(handles.values()))
        handles = {}  # the flush closes them
    finally:
        for h in handles.values():
            h.close()
    if background:
        _FLUSHING[os.path.abspath(files[0])] = flush
        flush.start()
        return
    flush.run()
    if flush.error is not None:
        raise flush.error


def recover(first_file: str, wait: float | None = None) -> str | None:
    """For a read-only open: undo a commit that a dead writer left half done.

    A journal of a live writer (it holds the writer lock, so it is committing now) is
    never touched: this waits up to ``wait`` seconds (:func:`lock_wait`) for it to
    disappear, then refuses.  A dead writer's journal is rolled back under the writer
    lock, which needs write permission on the image (a read-only reader is refused:
    reading the half-written image would give wrong data).  Returns None when there
    was nothing to do, else what was done.
    """
    if flushing(first_file):
        return None  # this process's own commit: written, only not yet on disk
    jpath = journal_path(first_file)
    deadline = time.monotonic() + lock_wait(wait)
    while os.path.exists(jpath):
        with dead_writer_lock(first_file) as dead:
            if dead:
                if not os.access(first_file, os.W_OK):
                    raise ConflictError(
                        "an interrupted write must be rolled back; open the image read-write",
                        first_file,
                    )
                return recover_locked(first_file)
        if held_here(first_file):
            raise ConflictError(
                "a failed commit of this process's writable open of the image is not "
                "rolled back yet; close that first",
                first_file,
            )
        if time.monotonic() >= deadline:
            with open(first_file, "rb") as fh:
                holder = describe_holder(fh.fileno())
            raise ConflictError(
                f"another writer{holder} is in the middle of a commit; try again", first_file
            )
        time.sleep(0.01)
    return None


def recover_locked(first_file: str) -> str | None:
    """Undo an interrupted commit; the caller holds the image's writer lock."""
    jpath = journal_path(first_file)
    if not os.path.exists(jpath):
        return None
    with open(jpath, "rb") as jf:
        body = jf.read()
    whole = (
        len(body) >= len(MAGIC) + 8
        and body[: len(MAGIC)] in (MAGIC, MAGIC_V1)
        and body[-8:-4] == TRAILER
        and zlib.crc32(body[:-8]) == struct.unpack(">I", body[-4:])[0]
    )
    if not whole:
        # The trailer is written last and before any image byte changes, so a
        # journal without a good trailer means the image was never touched.
        os.unlink(jpath)
        _fsync_dir(jpath)
        return "discarded an unapplied journal"
    names, sizes, entries = _parse(body, jpath)
    for idx, name in enumerate(names):
        with open(name, "r+b") as fh:
            for eidx, offset, stored, zeros in entries:
                if eidx == idx:
                    fh.seek(offset)
                    fh.write(stored)
                    _write_zeros(fh, zeros)
            fh.truncate(sizes[idx])
            fh.flush()
            os.fsync(fh.fileno())
    os.unlink(jpath)
    _fsync_dir(jpath)
    return "rolled back an interrupted write"


def _parse(
    body: bytes, jpath: str
) -> tuple[list[str], list[int], list[tuple[int, int, bytes, int]]]:
    """(file paths, old sizes, entries) of a whole journal of either version; an entry
    is (file index, offset, stored bytes, zero bytes that follow them)."""
    folder = os.path.dirname(os.path.abspath(jpath))
    version2 = body.startswith(MAGIC)
    pos = len(MAGIC)
    names, sizes = [], []
    try:
        (nfiles,) = _HEADER.unpack_from(body, pos)
        pos += _HEADER.size
        for _ in range(nfiles):
            (nlen,) = _NAME.unpack_from(body, pos)
            pos += _NAME.size
            names.append(os.path.join(folder, body[pos : pos + nlen].decode()))
            pos += nlen
            (size,) = _SIZE.unpack_from(body, pos)
            sizes.append(size)
            pos += _SIZE.size
    except (struct.error, UnicodeDecodeError):
        raise IntegrityError("journal file table is malformed", jpath) from None
    entries = []
    limit = len(body) - 8
    entry = _ENTRY if version2 else _ENTRY_V1
    while pos < limit:
        start = pos
        if pos + entry.size > limit:
            raise IntegrityError(f"journal entry at offset {start} is malformed", jpath)
        if version2:
            idx, offset, length, stored = entry.unpack_from(body, pos)
        else:
            idx, offset, length = entry.unpack_from(body, pos)
            stored = length
        pos += entry.size
        if idx >= nfiles or stored > length or pos + stored > limit:
            raise IntegrityError(f"journal entry at offset {start} is malformed", jpath)
        entries.append((idx, offset, body[pos : pos + stored], length - stored))
        pos += stored
    return names, sizes, entries


def _write_zeros(fh: BinaryIO, count: int) -> None:
    while count > 0:
        piece = min(count, len(_ZEROS))
        fh.write(_ZEROS[:piece])
        count -= piece


__all__ = ["apply_writes", "flushing", "journal_path", "recover", "recover_locked", "settle"]
