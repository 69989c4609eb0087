"""Track images: parse and build (FORMATS.md 1.2).

A track image is HA(5) R0(8+8) R1..Rn (count 8 + key + data each) then the
end-of-track marker X'FF'*8.  Bytes after the marker are garbage and never read.
Cold-path helpers live here; the bulk walk over many tracks is in ``emulator.kernels``.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

from emulator.errors import FormatError
from emulator.layouts.ckd import COUNT_SIZE, EOT_MARKER, HA_SIZE

_COUNT = struct.Struct(">HHBBH")
_HA = struct.Struct(">BHH")


class Record(NamedTuple):
    """One CKD record: count fields, key and data bytes."""

    cyl: int
    head: int
    rec: int
    key: bytes
    data: bytes

    @property
    def is_eof(self) -> bool:
        """A record with KL=0 and DL=0 is an end-of-file marker."""
        return not self.key and not self.data


def parse_track(
    image: bytes | memoryview, where: str = "", include_r0: bool = False
) -> list[Record]:
    """Split a track image into records (R1..Rn unless ``include_r0``).

    Raises FormatError naming ``where`` if a count field runs past the image.
    """
    buf = memoryview(image)
    size = len(buf)
    if size < HA_SIZE + COUNT_SIZE:
        raise FormatError(f"track image of {size} bytes is shorter than HA and R0", where=where)
    pos = HA_SIZE
    out: list[Record] = []
    while True:
        if pos + COUNT_SIZE > size:
            raise FormatError(
                f"track has no end-of-track marker (ran out at offset {pos})", where=where
            )
        if buf[pos : pos + COUNT_SIZE] == EOT_MARKER:
            return out
        cyl, head, rec, kl, dl = _COUNT.unpack_from(buf, pos)
        end = pos + COUNT_SIZE + kl + dl
        if end > size:
            raise FormatError(
                f"record R{rec} at offset {pos} (KL {kl} DL {dl}) runs past the track image ({size} bytes)",
                where=where,
            )
        if rec != 0 or include_r0 or pos != HA_SIZE:
            key_start = pos + COUNT_SIZE
            out.append(
                Record(
                    cyl,
                    head,
                    rec,
                    bytes(buf[key_start : key_start + kl]),
                    bytes(buf[key_start + kl : end]),
                )
            )
        pos = end


def track_length(image: bytes | memoryview) -> int:
    """Bytes used by the track image up to and including the end-of-track marker."""
    buf = memoryview(image)
    pos = HA_SIZE
    while pos + COUNT_SIZE <= len(buf):
        if buf[pos : pos + COUNT_SIZE] == EOT_MARKER:
            return pos + COUNT_SIZE
        _, _, _, kl, dl = _COUNT.unpack_from(buf, pos)
        pos += COUNT_SIZE + kl + dl
    raise FormatError("track has no end-of-track marker")


def home_address(image: bytes | memoryview) -> tuple[int, int]:
    """(cyl, head) from the HA."""
    _, cyl, head = _HA.unpack_from(image, 0)
    return cyl, head


def build_track(
    cyl: int, head: int, records: list[tuple[bytes, bytes]] | list[Record], first_rec: int = 1
) -> bytes:
    """HA + R0 + the given (key, data) records numbered from ``first_rec`` + EOT.

    Every count field carries the HA's CCHH (search-ID channel programs compare them).
    """
    parts = [_HA.pack(0, cyl, head), _COUNT.pack(cyl, head, 0, 0, 8), bytes(8)]
    rec = first_rec
    for item in records:
        key, data = (item.key, item.data) if isinstance(item, Record) else item
        if len(key) > 255 or len(data) > 0xFFFF:
            raise FormatError(f"record R{rec} too long (KL {len(key)} DL {len(data)})")
        parts.append(_COUNT.pack(cyl, head, rec & 0xFF, len(key), len(data)))
        parts.append(key)
        parts.append(data)
        rec += 1
    parts.append(EOT_MARKER)
    return b"".join(parts)


def null_track(cyl: int, head: int, fmt: int = 1) -> bytes:
    """Null (unformatted) track in Hercules format 0 (EOF record), 1 (R0 only) or 2."""
    if fmt == 0:
        return build_track(cyl, head, [(b"", b"")])
    if fmt == 2:
        return build_track(cyl, head, [(b"", bytes(4096))] * 12)
    return build_track(cyl, head, [])


__all__ = ["Record", "parse_track", "build_track", "null_track", "track_length", "home_address"]
