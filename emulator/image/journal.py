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

Journal layout (all big-endian)::

    "DASDJNL1" || u32 nfiles || nfiles x (u16 namelen || name utf-8 || u64 size)
    || entries: u32 fileidx || u64 offset || u32 length || original bytes
    || "END!" || u32 crc32(everything before "END!")
"""

from __future__ import annotations

import os
import struct
import time
import zlib
from collections.abc import Sequence

from emulator.errors import ConflictError, IntegrityError
from emulator.image.lock import WriterLock, dead_writer_lock, describe_holder, held_here, lock_wait

MAGIC = b"DASDJNL1"
TRAILER = b"END!"


def journal_path(first_file: str) -> str:
    return first_file + ".journal"


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
    files: Sequence[str], writes: Sequence[tuple[int, int, bytes]], lock: WriterLock
) -> None:
    """Write ``(file index, offset, data)`` ranges into ``files`` all-or-nothing.

    ``lock`` is the writer lock of the image, which the caller holds."""
    if not writes:
        return
    if not lock.held:
        raise ConflictError("commit without the image's writer lock", files[0])
    sizes = [os.path.getsize(f) for f in files]
    body = bytearray(MAGIC)
    body += struct.pack(">I", len(files))
    for name, size in zip(files, sizes, strict=True):
        raw = os.path.basename(name).encode()
        body += struct.pack(">H", len(raw)) + raw + struct.pack(">Q", size)
    _apply_locked(files, writes, sizes, body)


def _apply_locked(files, writes, sizes, body: bytearray) -> None:
    handles = [open(f, "r+b") for f in files]  # noqa: SIM115 - closed below
    try:
        for idx, offset, data in writes:
            end = min(offset + len(data), sizes[idx])
            if end > offset:
                handles[idx].seek(offset)
                old = handles[idx].read(end - offset)
            else:
                old = b""
            body += struct.pack(">IQI", idx, offset, len(old)) + old
        body += TRAILER + struct.pack(">I", zlib.crc32(body))
        jpath = journal_path(files[0])
        with open(jpath, "wb") as jf:
            jf.write(body)
            jf.flush()
            os.fsync(jf.fileno())
        _fsync_dir(jpath)
        for idx, offset, data in writes:
            handles[idx].seek(offset)
            handles[idx].write(data)
        for h in handles:
            h.flush()
            os.fsync(h.fileno())
    finally:
        for h in handles:
            h.close()
    os.unlink(journal_path(files[0]))
    _fsync_dir(files[0])


def recover(first_file: str, wait: float | None = None) -> str | None:
    """For a read-only open: undo a commit that a dead writer left half done.

    A journal of a live writer (it holds the writer lock, so it is committing now) is
    never touched: this waits up to ``wait`` seconds (:func:`lock_wait`) for it to
    disappear, then refuses.  A dead writer's journal is rolled back under the writer
    lock, which needs write permission on the image (a read-only reader is refused:
    reading the half-written image would give wrong data).  Returns None when there
    was nothing to do, else what was done.
    """
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
        and body.startswith(MAGIC)
        and body[-8:-4] == TRAILER
        and zlib.crc32(body[:-8]) == struct.unpack(">I", body[-4:])[0]
    )
    if not whole:
        # The trailer is written last and before any image byte changes, so a
        # journal without a good trailer means the image was never touched.
        os.unlink(jpath)
        _fsync_dir(jpath)
        return "discarded an unapplied journal"
    folder = os.path.dirname(os.path.abspath(first_file))
    pos = len(MAGIC)
    (nfiles,) = struct.unpack_from(">I", body, pos)
    pos += 4
    names, sizes = [], []
    for _ in range(nfiles):
        (nlen,) = struct.unpack_from(">H", body, pos)
        pos += 2
        names.append(os.path.join(folder, body[pos : pos + nlen].decode()))
        pos += nlen
        (size,) = struct.unpack_from(">Q", body, pos)
        sizes.append(size)
        pos += 8
    entries = []
    limit = len(body) - 8
    while pos < limit:
        idx, offset, length = struct.unpack_from(">IQI", body, pos)
        pos += 16
        if idx >= nfiles or pos + length > limit:
            raise IntegrityError(f"journal entry at offset {pos - 16} is malformed", jpath)
        entries.append((idx, offset, body[pos : pos + length]))
        pos += length
    for idx, name in enumerate(names):
        with open(name, "r+b") as fh:
            for eidx, offset, old in entries:
                if eidx == idx and old:
                    fh.seek(offset)
                    fh.write(old)
            fh.truncate(sizes[idx])
            fh.flush()
            os.fsync(fh.fileno())
    os.unlink(jpath)
    _fsync_dir(jpath)
    return "rolled back an interrupted write"


__all__ = ["apply_writes", "recover", "recover_locked", "journal_path"]
