"""Every on-disk structure, declared once with Construct, plus what is derived from it.

Modules: ``ckd`` (Hercules image headers, CCKD tables, count fields), ``vtoc`` (VOL1,
DSCBs, extents), ``pds`` (directory entries, ISPF statistics), ``iebcopy`` (COPYR1,
COPYR2, block prefixes), ``xmit`` (NETDATA), ``tape`` (AWS/HET headers, labels).  No I/O happens here.

Helpers shared by every layout:

* :func:`parse_at` -- the one way to parse: turns Construct's errors (and the compiled
  twin's ``struct.error``) into :class:`~emulator.errors.FormatError` naming the place.
* :func:`offsets` -- field name -> byte offset, for kernels and raw slicing.
* :func:`dtype_of` -- a big-endian NumPy structured dtype with the same layout.
"""

from __future__ import annotations

import functools
import struct as _struct

import construct as cs
import numpy as np

from emulator.errors import FormatError


def parse_at(layout: cs.Construct, buf: bytes, offset: int = 0, where: str = "", path=None):
    """Parse ``layout`` from ``buf`` at ``offset``; any failure becomes a FormatError."""
    size = _fixed_size(layout)
    if size is not None and offset + size > len(buf):
        raise FormatError(
            f"{_name(layout)} needs {size} bytes at offset {offset}, only {max(0, len(buf) - offset)} there",
            path,
            where,
        )
    try:
        view = (
            memoryview(buf)[offset : offset + size]
            if size is not None
            else memoryview(buf)[offset:]
        )
        return layout.parse(bytes(view))
    except (cs.ConstructError, _struct.error, ValueError, UnicodeDecodeError) as exc:
        raise FormatError(f"{_name(layout)} at offset {offset}: {exc}", path, where) from None


@functools.lru_cache(maxsize=512)
def _fixed_size(layout: cs.Construct) -> int | None:
    """A layout's size, or None if it is variable (sizeof costs as much as a parse)."""
    try:
        return layout.sizeof()
    except cs.SizeofError:
        return None


@functools.lru_cache(maxsize=128)
def compiled(layout: cs.Construct) -> cs.Construct:
    """The compiled twin of a fixed layout, for warm paths (same parse and build,
    ~4x faster).  Parse it through :func:`parse_at`, which also maps the compiled
    form's bare ``struct.error`` to FormatError."""
    return layout.compile()


def _name(layout: cs.Construct) -> str:
    return getattr(layout, "name", None) or layout.__class__.__name__


def offsets(layout: cs.Struct) -> dict[str, int]:
    """Field name -> offset of a fixed-size Struct (walks ``subcons`` with ``sizeof``)."""
    out: dict[str, int] = {}
    pos = 0
    for sub in layout.subcons:
        if sub.name:
            out[sub.name] = pos
        pos += sub.sizeof()
    return out


def _leaf_dtype(sub: cs.Construct) -> str:
    size = sub.sizeof()
    inner = sub
    while hasattr(inner, "subcon") and not isinstance(inner, cs.FormatField):
        inner = inner.subcon
    if isinstance(inner, cs.FormatField) and size in (1, 2, 4, 8):
        kind = "i" if inner.fmtstr[-1].islower() else "u"
        if inner.fmtstr[-1] in "?":
            kind = "u"
        order = "<" if inner.fmtstr.startswith("<") else ">"
        return f"{order}{kind}{size}" if size > 1 else f"{kind}1"
    if isinstance(inner, cs.BytesInteger) and size in (1, 2, 4, 8):
        return f"{'<' if inner.swapped else '>'}u{size}" if size > 1 else "u1"
    return f"V{size}"


def dtype_of(layout: cs.Struct) -> np.dtype:
    """A NumPy structured dtype with the same field offsets as ``layout``.

    Integer fields keep their byte order; odd widths (3-byte TTRs, 5-byte CCHHR) and
    strings become ``V<n>`` so kernels assemble them from bytes.
    """
    names, formats, offs = [], [], []
    pos = 0
    for sub in layout.subcons:
        size = sub.sizeof()
        if sub.name and size:
            names.append(sub.name)
            formats.append(_leaf_dtype(sub))
            offs.append(pos)
        pos += size
    return np.dtype({"names": names, "formats": formats, "offsets": offs, "itemsize": pos})


__all__ = ["parse_at", "offsets", "dtype_of", "compiled"]
