"""Crash-safe writes: an undo journal beside the image.

Every commit that changes image files goes through :func:`apply_writes`:

1. the bytes about to be overwritten, and each file's size, are saved to
   ``<first image file>.journal`` and flushed to disk (file and directory);
2. the new bytes are written and flushed;
3. the journal is deleted.

Steps 1-3 run under an exclusive ``flock`` on the first image file (:func:`commit_lock`).
A journal found at open time (:func:`recover`) is only acted on under that same lock,
and only if it is still there once the lock is held: a journal whose writer is alive
(committing right now) is waited for, never rolled back under it.  A journal that
survives its writer means step 2 may be half done: if the journal is whole (its trailer CRC matches) the saved bytes are put back and the files
cut to their old sizes, so the image is exactly as before the interrupted commit; a
journal without a valid trailer means step 2 never started, and it is simply removed.

Journal layout (all big-endian)::

    "DASDJNL1" || u32 nfiles || nfiles x (u16 namelen || name utf-8 || u64 size)
    || entries: u32 fileidx || u64 offset || u32 length || original bytes
    || "END!" || u32 crc32(everything before "END!")
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import struct
import time
import zlib
from collections.abc import Iterator, Sequence

from emulator.errors import ConflictError, IntegrityError

MAGIC = b"DASDJNL1"
TRAILER = b"END!"
#: How long to wait for another process's commit before giving up (a commit of even a
#: large transaction takes well under a second; a stuck holder must not hang us).
LOCK_WAIT = 30.0


@contextlib.contextmanager
def commit_lock(first_file: str, wait: float = LOCK_WAIT) -> Iterator[None]:
    """Hold an exclusive ``flock`` on the image's first file (waits up to ``wait`` s)."""
    fd = os.open(first_file, os.O_RDONLY)
    try:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise ConflictError(
                        f"another program has held the image locked for {wait:.0f} s", first_file
                    ) from None
                time.sleep(0.005)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


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


def apply_writes(files: Sequence[str], writes: Sequence[tuple[int, int, bytes]]) -> None:
    """Write ``(file index, offset, data)`` ranges into ``files`` all-or-nothing."""
    if not writes:
        return
    sizes = [os.path.getsize(f) for f in files]
    body = bytearray(MAGIC)
    body += struct.pack(">I", len(files))
    for name, size in zip(files, sizes, strict=True):
        raw = os.path.basename(name).encode()
        body += struct.pack(">H", len(raw)) + raw + struct.pack(">Q", size)
    with commit_lock(files[0]):
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


def recover(first_file: str) -> str | None:
    """Undo an interrupted commit of the image whose first file is ``first_file``.

    Waits for a commit in progress (its journal then disappears by itself).  Returns
    None when there was nothing to do, else a short description of what was done
    ("rolled back" or "discarded an unapplied journal").
    """
    if not os.path.exists(journal_path(first_file)):
        return None
    with commit_lock(first_file):
        return _recover_locked(first_file)


def _recover_locked(first_file: str) -> str | None:
    jpath = journal_path(first_file)
    if not os.path.exists(jpath):
        return None  # its writer finished while we waited for the lock
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


__all__ = ["apply_writes", "recover", "journal_path", "commit_lock"]
