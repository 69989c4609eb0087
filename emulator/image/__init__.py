"""Hercules CKD volume images: open (sniffing the header), create, convert.

``open_image(path)`` returns a :class:`~emulator.image.base.DasdImage` for plain,
split, CCKD and CCKD64 files alike; higher layers only read and write tracks.
"""

from __future__ import annotations

import os

from emulator.errors import ConflictError, FormatError, NotFoundError, UnsupportedError
from emulator.geometry import Device, device_by_code
from emulator.image.base import DasdImage
from emulator.image.journal import recover
from emulator.layouts import parse_at
from emulator.layouts.ckd import (
    DEVHDR_SIZE,
    ID_COMPRESSED,
    ID_FBA,
    ID_PLAIN,
    ID_SHADOW,
    DeviceHeader,
)


def read_header(path: str):
    """Parse and sanity-check the 512-byte device header of an image file."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read(DEVHDR_SIZE)
    except FileNotFoundError:
        raise NotFoundError("no such image file", path) from None
    except IsADirectoryError:
        raise FormatError("is a directory, not an image file", path) from None
    except PermissionError:
        raise ConflictError("permission denied", path) from None
    if len(raw) < DEVHDR_SIZE:
        raise FormatError(f"file is {len(raw)} bytes, too short for a 512-byte device header", path)
    hdr = parse_at(DeviceHeader, raw, 0, "device header", path)
    devid = hdr.dh_devid
    if devid in ID_SHADOW:
        raise UnsupportedError(
            f"shadow file ({devid.decode()}) is not supported; open its base file", path
        )
    if devid in ID_FBA:
        raise UnsupportedError(f"FBA image ({devid.decode()}) is not a CKD volume", path)
    if devid not in ID_PLAIN + ID_COMPRESSED:
        shown = devid.decode("latin-1").encode("unicode_escape").decode()
        raise FormatError(f"not a Hercules CKD image (header id {shown!r})", path)
    try:
        dev = device_by_code(hdr.dh_devtyp)
    except NotFoundError:
        raise FormatError(
            f"unknown device type code X'{hdr.dh_devtyp:02X}' in device header", path
        ) from None
    if hdr.dh_heads != dev.heads:
        raise FormatError(
            f"device header says {hdr.dh_heads} heads, a {dev.name} has {dev.heads}", path
        )
    if not (dev.r1max < hdr.dh_trksize <= 0x100000):
        raise FormatError(
            f"device header track size {hdr.dh_trksize} is impossible for a {dev.name}", path
        )
    return hdr, dev


def open_image(path: str | os.PathLike, writable: bool = False) -> DasdImage:
    """Open any CKD image; an interrupted write left by a crash is rolled back first."""
    path = os.fspath(path)
    hdr, dev = read_header(path)
    if os.path.exists(path + ".journal"):
        if not os.access(path, os.W_OK):
            raise ConflictError(
                "an interrupted write must be rolled back; open the image read-write", path
            )
        recover(path)
    if writable and not os.access(path, os.W_OK):
        raise ConflictError("image file is read-only", path)
    if hdr.dh_devid in ID_PLAIN:
        from emulator.image.ckd import open_ckd

        return open_ckd(path, hdr, dev, writable)
    from emulator.image.cckd import open_cckd

    return open_cckd(path, hdr, dev, writable)


def create_image(
    path: str | os.PathLike,
    device: Device,
    cyls: int,
    compress: str | None = None,
    cckd64: bool = False,
) -> DasdImage:
    """Create an image of null tracks (format 1) and return it open for writing.

    ``compress``: None for plain CKD, or "none"/"zlib"/"bzip2" for CCKD
    (``cckd64`` selects the 64-bit form).  The volume layer writes track 0 and the VTOC.
    """
    path = os.fspath(path)
    if not 1 <= cyls <= 65520:
        raise FormatError(f"cylinder count {cyls} out of range 1..65520", path)
    if os.path.exists(path):
        raise ConflictError("image file already exists", path)
    if compress is None and not cckd64:
        from emulator.image.ckd import create_ckd

        return create_ckd(path, device, cyls)
    from emulator.image.cckd import create_cckd

    return create_cckd(path, device, cyls, compress or "zlib", cckd64)


__all__ = ["open_image", "create_image", "read_header", "DasdImage"]
