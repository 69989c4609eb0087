"""Large scratch arrays in memory of their own.

The bulk paths (track images of a whole load, inflated payloads, hash output) each
want tens of megabytes that they fill at once.  What such memory costs is mostly its
first touch: a page fault per 4 KiB page, each paid again on a virtual machine whose
host took the page back.  ``np.empty`` gives memory from ``malloc``, which above its
adaptive threshold is recycled heap: 4 KiB pages, and after a ``fork`` every first
write to one of them copies it.  :func:`scratch` maps fresh private memory instead and
asks for transparent huge pages (``madvise``; ``enabled=madvise`` is the usual system
setting), so the kernel faults it in 2 MiB at a time: 40 MiB filled in a fresh
process took 6 ms instead of 28 ms (median of 12, docs/import.md "Throughput").
"""

from __future__ import annotations

import mmap

import numpy as np
import numpy.typing as npt

#: Transparent huge page size on x86-64 and the threshold below which an array is
#: left to ``np.empty`` (a smaller one cannot hold a huge page).
HUGE_PAGE = 2 << 20

_PRIVATE = getattr(mmap, "MAP_PRIVATE", None)
_ANONYMOUS = getattr(mmap, "MAP_ANONYMOUS", None)
_HUGEPAGE = getattr(mmap, "MADV_HUGEPAGE", None)


def scratch(shape: int | tuple[int, ...], dtype: npt.DTypeLike = np.uint8) -> np.ndarray:
    """An uninitialised array of ``shape``, as ``np.empty``.  From :data:`HUGE_PAGE`
    bytes up it lies in an anonymous private map of its own, 2 MiB aligned, unmapped
    when the array goes."""
    dt = np.dtype(dtype)
    count = int(np.prod(shape, dtype=np.int64))
    nbytes = count * dt.itemsize
    if nbytes < HUGE_PAGE or _PRIVATE is None or _ANONYMOUS is None:
        return np.empty(shape, dt)
    size = -(-nbytes // HUGE_PAGE) * HUGE_PAGE + HUGE_PAGE  # room to align the start
    mapped = mmap.mmap(-1, size, flags=_PRIVATE | _ANONYMOUS)
    if _HUGEPAGE is not None:
        mapped.madvise(_HUGEPAGE)
    start = -np.frombuffer(mapped, np.uint8, count=1).ctypes.data % HUGE_PAGE
    return np.frombuffer(mapped, dt, count=count, offset=start).reshape(shape)
