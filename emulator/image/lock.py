"""The writer lock: one writer per image at a time, readers never blocked.

A writable open takes an exclusive ``flock`` on the image's first file (the first
piece of a split volume) and holds it until the image is closed, so every
read-modify-write of a writer -- the VTOC it reads, the free space it computes, the
tracks it commits -- happens with no other writer in between.  A second writer waits
up to :func:`lock_wait` seconds (default :data:`DEFAULT_LOCK_WAIT`; the environment
variable ``DASD_LOCK_WAIT`` or a ``lock_wait`` argument changes it) and is then
refused with a one-line :class:`ConflictError` naming the file and, when the system
tells, the holder's process id.  Readers take no lock.

``flock`` and not ``fcntl``/POSIX record locks: a POSIX lock is dropped when the
process closes *any* descriptor of the file, which a reader in the same process does
all the time; an ``flock`` belongs to one open file description and lasts until that
one is closed.  The same property means a process would block on itself if it opened
the same image for writing twice, so a second writable open in one process is refused
at once (:data:`_held`), whatever path names the file.

Hercules does not take this lock; what it leaves in a compressed image's header (the
OPENED bit) is checked by :func:`emulator.image.cckd.open_cckd`.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
import time
from collections.abc import Iterator

from emulator.errors import ConflictError, FormatError

#: Seconds a writer waits for another writer of the same image before giving up.
DEFAULT_LOCK_WAIT = 5.0
LOCK_WAIT_ENV = "DASD_LOCK_WAIT"

#: (st_dev, st_ino) of every image this process holds (or is taking) the writer lock
#: of -> the path it was opened by.
_held: dict[tuple[int, int], str] = {}
_held_guard = threading.Lock()


def lock_wait(wait: float | None = None) -> float:
    """The wait to use: ``wait`` if given, else ``$DASD_LOCK_WAIT``, else the default."""
    if wait is None:
        text = os.environ.get(LOCK_WAIT_ENV, "").strip()
        if not text:
            return DEFAULT_LOCK_WAIT
        try:
            wait = float(text)
        except ValueError:
            raise FormatError(f"{LOCK_WAIT_ENV}={text!r} is not a number of seconds") from None
    if not wait >= 0:  # also refuses NaN
        raise FormatError(f"lock wait {wait!r} must be 0 or more seconds")
    return float(wait)


def lock_holder(fd: int) -> int | None:
    """The process id holding an ``flock`` on the file of ``fd``, from ``/proc/locks``
    (Linux; None where it cannot be told)."""
    st = os.fstat(fd)
    exact = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    fallback = None
    try:
        with open("/proc/locks", encoding="ascii", errors="replace") as fh:
            lines = fh.read().splitlines()
    except OSError:
        return None
    for line in lines:
        # "12: FLOCK  ADVISORY  WRITE 4711 fe:00:5308444 0 EOF"; waiters have "->".
        fields = line.split()
        if len(fields) < 6 or fields[1] != "FLOCK" or not fields[4].isdigit():
            continue
        if fields[5] == exact:
            return int(fields[4])
        # Overlay file systems report another device for the same inode.
        if fields[5].rsplit(":", 1)[-1] == str(st.st_ino):
            fallback = int(fields[4])
    return fallback


def describe_holder(fd: int) -> str:
    """Who holds the lock on ``fd``'s file, as ' (pid N: command)'; '' if unknown."""
    pid = lock_holder(fd)
    if pid is None:
        return ""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            argv = [a.decode(errors="replace") for a in fh.read().split(b"\0") if a]
    except OSError:
        argv = []
    shown = " ".join(os.path.basename(a) for a in argv[:4])  # "python ssm import day.basket"
    return f" (pid {pid}: {shown[:60]})" if shown else f" (pid {pid})"


def _try_flock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


class WriterLock:
    """The exclusive writer lock of one image, held from creation until :meth:`release`.

    ``wait``: seconds to wait for another writer (None: :func:`lock_wait`'s default).
    """

    def __init__(self, first_file: str | os.PathLike, wait: float | None = None):
        self.path = os.fspath(first_file)
        seconds = lock_wait(wait)
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            raise FormatError("no such image file", self.path) from None
        except OSError as exc:
            raise ConflictError(f"cannot open for locking: {exc.strerror}", self.path) from None
        st = os.fstat(fd)
        key = (st.st_dev, st.st_ino)
        with _held_guard:
            other = _held.get(key)
            if other is None:
                _held[key] = self.path
        if other is not None:
            os.close(fd)
            same = "" if os.path.abspath(other) == os.path.abspath(self.path) else f" (as {other})"
            raise ConflictError(
                f"already open for writing in this process{same}; close it first", self.path
            )
        try:
            self._acquire(fd, seconds)
        except BaseException:
            with _held_guard:
                _held.pop(key, None)
            os.close(fd)
            raise
        self.fd: int | None = fd
        self._key = key

    def _acquire(self, fd: int, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        pause = 0.005
        while not _try_flock(fd):
            now = time.monotonic()
            if now >= deadline:
                raise ConflictError(
                    f"locked by another writer{describe_holder(fd)}; waited {seconds:g} s "
                    f"(set {LOCK_WAIT_ENV}=SECONDS to wait longer)",
                    self.path,
                )
            time.sleep(min(pause, deadline - now))
            pause = min(pause * 2, 0.1)

    @property
    def held(self) -> bool:
        return self.fd is not None

    def release(self) -> None:
        """Drop the lock (closing the descriptor releases the ``flock``)."""
        if self.fd is None:
            return
        fd, self.fd = self.fd, None
        with _held_guard:
            _held.pop(self._key, None)
        os.close(fd)

    def __enter__(self) -> WriterLock:
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def __repr__(self) -> str:
        return f"<WriterLock {self.path} {'held' if self.held else 'released'}>"


def held_here(first_file: str | os.PathLike) -> bool:
    """True when this process holds the writer lock of the image whose first file this is."""
    try:
        st = os.stat(first_file)
    except OSError:
        return False
    with _held_guard:
        return (st.st_dev, st.st_ino) in _held


@contextlib.contextmanager
def dead_writer_lock(first_file: str | os.PathLike) -> Iterator[bool]:
    """Try once, without waiting, to take the writer lock: yields True while it is held
    (so no writer is alive), False when a live writer holds it.  For readers that must
    tell a dead writer's journal from a live one's."""
    path = os.fspath(first_file)
    if held_here(path):
        yield False
        return
    try:
        lock = WriterLock(path, wait=0)
    except ConflictError:
        yield False
        return
    try:
        yield True
    finally:
        lock.release()


__all__ = [
    "WriterLock",
    "DEFAULT_LOCK_WAIT",
    "LOCK_WAIT_ENV",
    "lock_wait",
    "lock_holder",
    "held_here",
    "dead_writer_lock",
]
