"""Plain (uncompressed) CKD images, single-file or split (FORMATS.md 1.1-1.5).

Track *t* of a piece starts at ``512 + (t - first_track_of_piece) * trksize``.  A
volume over 2 GiB is split into ``name_1.ext``, ``name_2.ext`` ... as ``dasdinit``
makes them; each piece has its own header (dh_fileseq 1, 2, ...; dh_highcyl = last
cylinder held, 0 in the last piece).
"""

from __future__ import annotations

import os

from emulator.errors import FormatError
from emulator.geometry import Device
from emulator.image import changes
from emulator.image.base import DasdImage
from emulator.image.journal import apply_writes
from emulator.image.lock import WriterLock
from emulator.layouts import parse_at
from emulator.layouts.ckd import DEVHDR_SIZE, DeviceHeader

MAX_FILE = 0x7FFFFFFF  # dasdinit's limit per piece without -lfs
SEQ_CHARS = "123456789ABCDEFGHIJKLMNOPQR"


def max_cyls_per_file(trksize: int, heads: int) -> int:
    """Cylinders per piece of a split volume (3390: 2519)."""
    return (MAX_FILE - DEVHDR_SIZE + 1) // (trksize * heads)


def piece_name(path: str, seq: int) -> str:
    """File name of piece ``seq`` (1-based) of the volume named ``path``."""
    folder, base = os.path.split(path)
    stem, dot, ext = base.partition(".")
    if len(stem) >= 2 and stem[-2] == "_" and stem[-1] in SEQ_CHARS:
        stem = stem[:-1] + SEQ_CHARS[seq - 1]
    else:
        stem = f"{stem}_{SEQ_CHARS[seq - 1]}"
    return os.path.join(folder, stem + dot + ext)


def header_bytes(
    device: Device, trksize: int, fileseq: int, highcyl: int, devid: bytes = b"CKD_P370"
) -> bytes:
    return DeviceHeader.build(
        dict(
            dh_devid=devid,
            dh_heads=device.heads,
            dh_trksize=trksize,
            dh_devtyp=device.code,
            dh_fileseq=fileseq,
            dh_highcyl=highcyl,
            dh_serial=bytes(12),
            reserved=bytes(480),
        )
    )


class CkdImage(DasdImage):
    """An uncompressed CKD image: one file, or the pieces of a split volume."""

    kind = "ckd"

    def __init__(
        self,
        path: str,
        device: Device,
        pieces: list[tuple[str, int, int]],
        trksize: int,
        writable: bool,
        lock: WriterLock | None = None,
    ):
        # pieces: (file name, first cylinder, cylinder count)
        cyls = sum(n for _, _, n in pieces)
        super().__init__(path, device, cyls, trksize, writable, lock)
        self.pieces = pieces
        self._files = [open(name, "r+b" if writable else "rb") for name, _, _ in pieces]  # noqa: SIM115
        self._changes: changes.Recorder | None = None  # the change map, at the first commit

    @property
    def files(self) -> list[str]:
        return [name for name, _, _ in self.pieces]

    def _locate(self, trk: int) -> tuple[int, int]:
        cyl = trk // self.heads
        for idx, (_, first, count) in enumerate(self.pieces):
            if first <= cyl < first + count:
                return idx, DEVHDR_SIZE + (trk - first * self.heads) * self.trksize
        raise FormatError(
            f"track {divmod(trk, self.heads)} is in no piece of the volume", self.path
        )

    def _read_raw(self, trk: int) -> bytes:
        idx, offset = self._locate(trk)
        fh = self._files[idx]
        fh.seek(offset)
        slot = fh.read(self.trksize)
        if len(slot) != self.trksize:
            raise FormatError(
                f"{self.where(trk)}: file ends inside the track slot at offset {offset}",
                self.pieces[idx][0],
            )
        from emulator.track import track_length

        try:
            return slot[: track_length(slot)]
        except FormatError as exc:
            raise exc.located(self.pieces[idx][0], self.where(trk)) from None

    def _commit_tracks(
        self, tracks: dict[int, bytes | memoryview], slots: dict[int, memoryview]
    ) -> None:
        writes = []
        for trk, image in sorted(tracks.items()):
            idx, offset = self._locate(trk)
            row = slots.get(trk)  # already a whole zero-padded slot: no copy
            writes.append(
                (idx, offset, row if row is not None else image + bytes(self.trksize - len(image)))
            )
        for fh in self._files:
            fh.flush()
        if self._changes is None:
            self._changes = changes.Recorder(self.files)
        before = changes.stat_files(self.files)
        apply_writes(self.files, writes, self.lock, self.background_flush)
        self._changes.record(before, sorted(tracks))

    def read_slot(self, trk: int) -> bytes:
        """The raw track slot bytes, padding included (for byte-level comparisons)."""
        idx, offset = self._locate(trk)
        fh = self._files[idx]
        fh.seek(offset)
        return fh.read(self.trksize)

    def piece_tracks(self) -> list[tuple[int, int]]:
        """(first absolute track, number of tracks) of each file of the volume."""
        return [(first * self.heads, count * self.heads) for _, first, count in self.pieces]

    def slot_view(self, trk_from: int, trk_to: int):
        """Raw track slots ``trk_from .. trk_to-1`` as a read-only ``(n, trksize)``
        uint8 NumPy array: a memory map of the file (no copy) when the range lies in
        one piece, a copy otherwise.  Bytes past a track's end marker are garbage."""
        import numpy as np

        if not 0 <= trk_from <= trk_to <= self.total_tracks:
            raise FormatError(
                f"tracks {trk_from}..{trk_to - 1} are outside the volume "
                f"({self.total_tracks} tracks)",
                self.path,
            )
        parts = []
        for (name, _first, _count), (base, ntrk) in zip(
            self.pieces, self.piece_tracks(), strict=True
        ):
            lo, hi = max(trk_from, base), min(trk_to, base + ntrk)
            if lo >= hi:
                continue
            whole = np.memmap(name, dtype=np.uint8, mode="r", offset=DEVHDR_SIZE)
            if len(whole) < ntrk * self.trksize:
                raise FormatError(f"file is shorter than its {ntrk} tracks", name)
            slots = whole[: ntrk * self.trksize].reshape(ntrk, self.trksize)
            parts.append(slots[lo - base : hi - base])
        if len(parts) == 1:
            return parts[0]
        if not parts:
            return np.zeros((0, self.trksize), dtype=np.uint8)
        return np.concatenate(parts)

    def _close(self) -> None:
        for fh in self._files:
            fh.close()


def open_ckd(
    path: str, header: dict, device: Device, writable: bool, lock: WriterLock | None = None
) -> CkdImage:
    """Open a plain image whose first header is already parsed; finds split pieces.
    ``lock``: the writer lock of a writable open (on ``path``, the first piece)."""
    trksize, heads = header.dh_trksize, header.dh_heads
    if header.dh_fileseq == 0:
        names = [path]
        highcyls = [header.dh_highcyl]
    else:
        if header.dh_fileseq != 1:
            raise FormatError(
                f"this is piece {header.dh_fileseq} of a split volume; open the first piece", path
            )
        names = [path]
        hdr = header
        highcyls = [hdr.dh_highcyl]
        while hdr.dh_highcyl != 0:
            # Bounded: a chain of headers that never ends runs out of piece names.
            if len(names) >= len(SEQ_CHARS):
                raise FormatError("split volume has too many pieces", path)
            nxt = piece_name(path, len(names) + 1)
            if not os.path.exists(nxt):
                raise FormatError(f"split volume piece {os.path.basename(nxt)} is missing", path)
            with open(nxt, "rb") as fh:
                hdr = parse_at(DeviceHeader, fh.read(DEVHDR_SIZE), 0, "device header", nxt)
            if (
                hdr.dh_fileseq != len(names) + 1
                or hdr.dh_trksize != trksize
                or hdr.dh_heads != heads
                or hdr.dh_devid != header.dh_devid
                or hdr.dh_devtyp != header.dh_devtyp
            ):
                raise FormatError("split piece does not continue the volume", nxt)
            names.append(nxt)
            highcyls.append(hdr.dh_highcyl)
    pieces = []
    first = 0
    for name, highcyl in zip(names, highcyls, strict=True):
        size = os.path.getsize(name)
        body = size - DEVHDR_SIZE
        if body < 0 or body % (trksize * heads):
            raise FormatError(
                f"file size {size} is not 512 + a whole number of {heads}-track cylinders of {trksize} bytes",
                name,
            )
        count = body // (trksize * heads)
        if count == 0:
            raise FormatError("file holds no cylinders, only a device header", name)
        # As Hercules: a non-zero dh_highcyl must be the last cylinder the piece holds.
        if highcyl != 0 and highcyl != first + count - 1:
            raise FormatError(
                f"device header says the file ends at cylinder {highcyl}, its size says "
                f"{first + count - 1}",
                name,
            )
        pieces.append((name, first, count))
        first += count
    return CkdImage(path, device, pieces, trksize, writable, lock)


__all__ = ["CkdImage", "open_ckd", "piece_name", "max_cyls_per_file", "header_bytes"]


def create_ckd(path: str, device: Device, cyls: int) -> CkdImage:
    """Write a new plain image of null tracks (split over 2 GiB, as dasdinit does)."""
    from emulator.track import null_track

    trksize = device.trksize
    per_file = max_cyls_per_file(trksize, device.heads)
    if cyls <= per_file:
        layout = [(path, 0, cyls)]
    else:
        layout = []
        first = 0
        seq = 1
        while first < cyls:
            count = min(per_file, cyls - first)
            layout.append((piece_name(path, seq), first, count))
            first += count
            seq += 1
    created: list[str] = []
    try:
        for seq, (name, first, count) in enumerate(layout, start=1):
            if os.path.exists(name):
                from emulator.errors import ConflictError

                raise ConflictError("image file already exists", name)
            last = first + count - 1
            fileseq = 0 if len(layout) == 1 else seq
            highcyl = 0 if last == cyls - 1 else last
            with open(name, "wb") as fh:
                created.append(name)
                fh.write(header_bytes(device, trksize, fileseq, highcyl))
                for cyl in range(first, first + count):
                    cylinder = bytearray(trksize * device.heads)
                    for head in range(device.heads):
                        img = null_track(cyl, head)
                        cylinder[head * trksize : head * trksize + len(img)] = img
                    fh.write(cylinder)
        lock = WriterLock(layout[0][0])
    except BaseException:
        for name in created:
            os.unlink(name)
        raise
    try:
        return CkdImage(layout[0][0], device, layout, trksize, writable=True, lock=lock)
    except BaseException:
        lock.release()
        raise
