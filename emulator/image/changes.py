"""Change maps: which tracks each commit of a plain CKD image wrote
(docs/formats/changes.md).

:func:`stat_files` is taken before a commit writes, :meth:`Recorder.record` after its
data is on disk; :func:`state` and :func:`changed_since` answer for readers.  A map is
trusted only while the image's files are as its last record says, so a write the map
did not see makes it untrusted (never wrong) until the next commit starts a new epoch.
"""

from __future__ import annotations

import contextlib
import os
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import blake3
import numpy as np

SUFFIX = ".changes"
MAGIC = b"DASDCHG1"
EPOCH_SIZE = 16
#: Past this size the next commit starts a new epoch (the map is rewritten small): a
#: reader parses the whole log, one record at a time.
MAX_BYTES = 2 << 20

_HEAD = struct.Struct(">QII")  # generation, ntracks, nfiles
_FILE = struct.Struct(">QQQQ")  # size, mtime_ns, ctime_ns, inode
_CRC = struct.Struct(">I")

FileStats = tuple[tuple[int, int, int, int], ...]


def map_path(first_file: str) -> str:
    return first_file + SUFFIX


def discard(first_file: str) -> None:
    """Remove the map of an image that is being deleted or renamed (a renamed file's
    change time moves, so its map would not be trusted anyway)."""
    with contextlib.suppress(OSError):
        os.unlink(map_path(first_file))


def stat_files(files: Sequence[str]) -> FileStats:
    """What a record compares: size, mtime, ctime and inode of every file."""
    out = []
    for name in files:
        st = os.stat(name)
        out.append((st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino))
    return tuple(out)


@dataclass
class _Log:
    data: bytes
    epoch: bytes
    generations: list[int]
    at: list[tuple[int, int]]  # per record: where its track numbers are, how many
    stats: FileStats | None  # after the last whole record
    end: int  # bytes of whole records (where the next one is appended)

    def tracks_after(self, generation: int) -> np.ndarray:
        parts = [
            np.frombuffer(self.data, dtype=">u4", count=n, offset=off)
            for gen, (off, n) in zip(self.generations, self.at, strict=True)
            if gen > generation
        ]
        if not parts:
            return np.zeros(0, dtype=np.int64)
        return np.unique(np.concatenate(parts).astype(np.int64))


def _load(path: str) -> _Log | None:
    """The map's whole records, or None when there is no map or no valid header.  The
    walk checks each record's CRC and decodes only the last one's statistics."""
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError:
        return None
    if len(data) < len(MAGIC) + EPOCH_SIZE or not data.startswith(MAGIC):
        return None
    pos = len(MAGIC) + EPOCH_SIZE
    log = _Log(data, data[len(MAGIC) : pos], [], [], None, pos)
    last = None
    head, crc_of, crc = _HEAD.unpack_from, zlib.crc32, _CRC.unpack_from
    view = memoryview(data)
    while pos + _HEAD.size <= len(data):
        gen, ntracks, nfiles = head(data, pos)
        body = _HEAD.size + nfiles * _FILE.size + 4 * ntracks
        if pos + body + _CRC.size > len(data) or crc(data, pos + body)[0] != crc_of(
            view[pos : pos + body]
        ):
            break
        log.generations.append(gen)
        log.at.append((pos + _HEAD.size + nfiles * _FILE.size, ntracks))
        last = (pos + _HEAD.size, nfiles)
        pos += body + _CRC.size
        log.end = pos
    if last is not None:
        at, nfiles = last
        log.stats = tuple(_FILE.unpack_from(data, at + k * _FILE.size) for k in range(nfiles))
    return log


def _record_bytes(generation: int, stats: FileStats, tracks: np.ndarray) -> bytes:
    body = (
        _HEAD.pack(generation, len(tracks), len(stats))
        + b"".join(_FILE.pack(*s) for s in stats)
        + np.asarray(tracks, dtype=">u4").tobytes()
    )
    return body + _CRC.pack(zlib.crc32(body))


class Recorder:
    """The writer's side of one image's map: held by a writable image (which holds the
    writer lock, so no other writer of ours appends meanwhile); the map is parsed once,
    at the first commit."""

    def __init__(self, files: Sequence[str]):
        self.files = list(files)
        self.path = map_path(self.files[0])
        self._tail: tuple[int, int, FileStats] | None = None  # end, generation, stats
        self._loaded = False

    def record(self, before: FileStats, tracks: Sequence[int]) -> None:
        """Note that a commit wrote ``tracks``, the files' statistics before it being
        ``before``; call with the data on disk.  A map that did not see the files as
        ``before`` (or is missing, damaged or full) starts a new epoch with this
        record.  Never raises: a map it cannot write is simply not trusted."""
        trks = np.unique(np.asarray(tracks, dtype=np.int64))
        try:
            if not self._loaded:
                log = _load(self.path)
                self._loaded = True
                if log is not None and log.generations:
                    self._tail = (log.end, log.generations[-1], log.stats)
            after = stat_files(self.files)
            tail = self._tail
            if tail is not None and tail[2] == before and tail[0] + 64 + 4 * len(trks) <= MAX_BYTES:
                rec = _record_bytes(tail[1] + 1, after, trks)
                with open(self.path, "r+b") as fh:
                    fh.seek(tail[0])
                    fh.write(rec)
                    fh.truncate()
                self._tail = (tail[0] + len(rec), tail[1] + 1, after)
                return
            self._tail = None  # stays None if the new epoch cannot be written
            rec = _record_bytes(1, after, trks)
            names = "\0".join(os.path.basename(f) for f in self.files).encode()
            epoch = blake3.blake3(names + b"\0" + rec).digest()[:EPOCH_SIZE]
            tmp = self.path + ".tmp"
            with open(tmp, "wb") as fh:
                fh.write(MAGIC + epoch + rec)
            os.replace(tmp, self.path)
            self._tail = (len(MAGIC) + EPOCH_SIZE + len(rec), 1, after)
        except OSError:
            self._tail = None
            with contextlib.suppress(OSError):
                os.unlink(self.path)  # a map it could not keep must not be trusted


def _trusted(files: Sequence[str]) -> _Log | None:
    """The map of ``files`` if it has a record and the files are as its last one says."""
    log = _load(map_path(files[0]))
    if log is None or not log.generations:
        return None
    try:
        return log if stat_files(files) == log.stats else None
    except OSError:
        return None


def state(files: Sequence[str]) -> tuple[str, int] | None:
    """``(epoch hex, generation)`` when the map of ``files`` is trusted now, else None."""
    log = _trusted(files)
    return None if log is None else (log.epoch.hex(), log.generations[-1])


def changed_since(files: Sequence[str], epoch: str, generation: int) -> np.ndarray | None:
    """The tracks commits wrote after ``generation`` of ``epoch`` (sorted, unique), when
    the map of ``files`` is trusted now and still in that epoch; else None (read and
    compare instead)."""
    log = _trusted(files)
    if log is None or log.epoch.hex() != epoch:
        return None
    if not log.generations[0] <= generation <= log.generations[-1]:
        return None
    return log.tracks_after(generation)


__all__ = ["SUFFIX", "map_path", "discard", "stat_files", "Recorder", "state", "changed_since"]
