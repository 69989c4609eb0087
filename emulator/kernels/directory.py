"""Directory block packing (FORMATS.md 6.1), compiled with Numba.

An import rebuilds the directory of a PDS of thousands of new members at once; packing
and filling its blocks entry by entry in Python cost more than the rest of writing it.
Sizes come in already in name order; block sizes come in as arguments.
"""

from __future__ import annotations

import numba as nb
import numpy as np


@nb.njit(cache=True, nogil=True)
def pack_entries(sizes, block_size, end_size):
    """Greedy packing of entries of ``sizes`` bytes (in name order), then the end
    marker of ``end_size``: each block (2 bytes of used count first) is filled while
    the next entry fits.  Returns (block, offset) of every entry and, last, of the end
    marker."""
    n = len(sizes)
    block = np.empty(n + 1, dtype=np.int64)
    at = np.empty(n + 1, dtype=np.int64)
    b = 0
    used = 2
    for i in range(n + 1):
        size = sizes[i] if i < n else end_size
        if used + size > block_size:
            b += 1
            used = 2
        block[i] = b
        at[i] = used
        used += size
    return block, at


@nb.njit(cache=True, nogil=True)
def fill_entries(image, rows, order, sizes, block, at):
    """Copy entry ``order[k]``'s first ``sizes[k]`` bytes of ``rows`` to its place
    ``image[block[k], at[k]:]``, for every k (name order)."""
    for k in range(len(order)):
        src = order[k]
        b = block[k]
        a = at[k]
        for j in range(sizes[k]):
            image[b, a + j] = rows[src, j]
