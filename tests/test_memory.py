"""emulator.memory.scratch: large arrays in private maps of their own."""

from __future__ import annotations

import gc
import mmap
import weakref

import numpy as np

from emulator.memory import HUGE_PAGE, scratch


def test_small_arrays_are_plain_numpy():
    a = scratch((3, 5), np.int64)
    assert a.shape == (3, 5) and a.dtype == np.int64
    assert a.base is None or not isinstance(a.base, mmap.mmap)


def test_large_arrays_are_aligned_writable_maps_that_go_with_the_array():
    rows = 2 * HUGE_PAGE // 56832 + 3
    a = scratch((rows, 56832))
    assert a.shape == (rows, 56832) and a.dtype == np.uint8 and a.flags.writeable
    assert a.ctypes.data % HUGE_PAGE == 0
    a[:] = 7
    a[-1, -1] = 9
    assert int(a.sum()) == 7 * a.size + 2
    words = scratch(HUGE_PAGE, np.uint64)  # the shape counts items, not bytes
    assert words.nbytes == 8 * HUGE_PAGE
    words[-1] = 2**63
    assert int(words[-1]) == 2**63
    mapped = a
    while not isinstance(mapped, mmap.mmap):  # array -> array -> memoryview -> map
        mapped = mapped.base if isinstance(mapped, np.ndarray) else mapped.obj
    gone = weakref.ref(mapped)
    del a, mapped
    gc.collect()
    assert gone() is None
