"""Checks a new track image before it is written (as ``cckdcdsk`` level 3 would)."""

from __future__ import annotations

import struct

from emulator.errors import FormatError
from emulator.layouts.ckd import COUNT_SIZE, EOT_MARKER, HA_SIZE

_COUNT = struct.Struct(">HHBBH")


def check_track_image(
    image: bytes, trk: int, heads: int, trksize: int, path: str | None = None
) -> None:
    """Raise FormatError unless ``image`` is a well-formed track image for ``trk``."""
    cyl, head = divmod(trk, heads)
    where = f"new image for track {cyl}/{head}"
    if len(image) > trksize:
        raise FormatError(f"{len(image)} bytes do not fit a {trksize}-byte track slot", path, where)
    if len(image) < HA_SIZE + COUNT_SIZE + 8 + len(EOT_MARKER):
        raise FormatError(
            f"only {len(image)} bytes; a track needs HA, R0 and an end marker", path, where
        )
    bin_, ha_cyl, ha_head = struct.unpack_from(">BHH", image, 0)
    if bin_ != 0 or (ha_cyl, ha_head) != (cyl, head):
        raise FormatError(f"home address says {ha_cyl}/{ha_head}", path, where)
    pos = HA_SIZE
    expect_r0 = True
    while True:
        if pos + COUNT_SIZE > len(image):
            raise FormatError(f"no end-of-track marker (ran out at offset {pos})", path, where)
        if image[pos : pos + COUNT_SIZE] == EOT_MARKER:
            if pos + COUNT_SIZE != len(image):
                raise FormatError(
                    f"bytes follow the end-of-track marker at offset {pos}", path, where
                )
            return
        c, h, r, kl, dl = _COUNT.unpack_from(image, pos)
        if (c, h) != (cyl, head):
            raise FormatError(f"invalid count field at offset {pos}: CCHH {c}/{h}", path, where)
        if expect_r0 and (r != 0 or kl != 0 or dl != 8):
            raise FormatError(f"R0 at offset {pos} is not KL 0 DL 8", path, where)
        expect_r0 = False
        pos += COUNT_SIZE + kl + dl
