"""Hercules CKD volume images: open (sniffing the header), create, convert.

``open_image(path)`` returns a :class:`~emulator.image.base.DasdImage` for plain,
split, CCKD and CCKD64 files alike; higher layers only read and write tracks.
"""

from __future__ import annotations

import os

from emulator.errors import ConflictError, FormatError, NotFoundError, UnsupportedError
from emulator.geometry import Device, device_by_code
from emulator.image import changes
from emulator.image.base import DasdImage
from emulator.image.journal import journal_path, recover, recover_locked
from emulator.image.lock import WriterLock
from emulator.layouts import parse_at
from emulator.layouts.ckd import (
    DEVHDR_SIZE,
    ID_COMPRESSED,
    ID_FBA,
    ID_PLAIN,
    ID_SHADOW,
    DeviceHeader,
)


def side_files(first_file: str) -> list[str]:
    """The files kept beside an image, named after its first file: the undo journal
    and the change map.  A half-made image is removed with them."""
    return [journal_path(first_file), changes.map_path(first_file)]


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


def open_image(
    path: str | os.PathLike,
    writable: bool = False,
    *,
    ignore_opened: bool = False,
    lock_wait: float | None = None,
) -> DasdImage:
    """Open any CKD image; an interrupted write left by a crash is rolled back first.

    ``writable``: take the image's writer lock (``emulator.image.lock``) and hold it
    until ``close()``; another writer holding it is waited for up to ``lock_wait``
    seconds (default ``$DASD_LOCK_WAIT`` or 5), then ConflictError.  Readers take no
    lock.  ``ignore_opened``: write a compressed image even though its header says an
    emulator has it open (the OPENED bit; see :func:`emulator.image.cckd.open_cckd`).
    """
    path = os.fspath(path)
    if not writable:
        hdr, dev = read_header(path)
        if os.path.exists(journal_path(path)):
            # A dead writer's half-done commit is rolled back before anything is read
            # (a live writer's is waited for, never touched).
            recover(path, lock_wait)
            hdr, dev = read_header(path)
        return _open_kind(path, hdr, dev, False, None, ignore_opened)
    read_header(path)  # a file that is no image is refused before it is locked
    if not os.access(path, os.W_OK):
        raise ConflictError("image file is read-only", path)
    lock = WriterLock(path, lock_wait)
    try:
        if os.path.exists(journal_path(path)):
            recover_locked(path)  # we hold the lock: its writer is dead
        hdr, dev = read_header(path)
        return _open_kind(path, hdr, dev, True, lock, ignore_opened)
    except BaseException:
        lock.release()
        raise


def _open_kind(
    path: str, hdr, dev: Device, writable: bool, lock: WriterLock | None, ignore_opened: bool
) -> DasdImage:
    if hdr.dh_devid in ID_PLAIN:
        from emulator.image.ckd import open_ckd

        return open_ckd(path, hdr, dev, writable, lock)
    from emulator.image.cckd import open_cckd

    return open_cckd(path, hdr, dev, writable, lock, ignore_opened)


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


#: Bytes of track images staged per commit while converting (bounds memory use).
CONVERT_BATCH_BYTES = 32 << 20


def convert_image(
    src_path: str | os.PathLike,
    dst_path: str | os.PathLike,
    compress: str | None = None,
    cckd64: bool = False,
) -> None:
    """Copy every track of ``src_path`` into a new image ``dst_path`` of another form.

    ``compress``/``cckd64`` as for :func:`create_image` (None: plain CKD, split over
    2 GiB like dasdinit).  All or nothing: the output is built under a temporary name
    in the destination folder and renamed into place only when complete, so a failure
    never leaves a partial output (a split output is renamed piece by piece and the
    pieces already renamed are removed again if a later rename fails).
    """
    src_path, dst_path = os.fspath(src_path), os.fspath(dst_path)
    if os.path.exists(dst_path):
        raise ConflictError("output image file already exists", dst_path)
    folder, base = os.path.split(os.path.abspath(dst_path))
    stem, dot, ext = base.partition(".")
    tmp = os.path.join(folder, f"{stem}-tmp{os.getpid()}{dot}{ext}")
    src = open_image(src_path)
    try:
        made: list[str] = []
        try:
            dst = create_image(tmp, src.device, src.cyls, compress, cckd64)
            made = list(getattr(dst, "files", [dst.path]))
            try:
                _copy_tracks(src, dst)
            finally:
                dst.close()
            changes.discard(made[0])  # the map of the temporary name
            _rename_all(made, _final_names(dst_path, len(made)))
        except BaseException:
            for name in made or _tmp_pieces(tmp):
                for junk in (name, *side_files(name)):
                    if os.path.exists(junk):
                        os.unlink(junk)
            raise
    finally:
        src.close()


def _copy_tracks(src: DasdImage, dst: DasdImage) -> None:
    from emulator.track import null_track

    batch: dict[int, bytes] = {}
    staged = 0
    for trk in range(src.total_tracks):
        image = src.read_track(trk)
        if image == null_track(*divmod(trk, src.heads)):
            continue  # a new image already holds format-1 null tracks
        batch[trk] = image
        staged += len(image)
        if staged >= CONVERT_BATCH_BYTES:
            # Tracks are copied as they are, without write_track's check: Hercules
            # accepts records whose count-field CCHH differs from the home address.
            # Committing in batches is safe: nobody sees the file before the rename.
            dst._commit_tracks(batch, {})
            batch, staged = {}, 0
    if batch:
        dst._commit_tracks(batch, {})


def _final_names(dst_path: str, pieces: int) -> list[str]:
    from emulator.image.ckd import piece_name

    if pieces == 1:
        return [dst_path]
    return [piece_name(dst_path, seq) for seq in range(1, pieces + 1)]


def _rename_all(made: list[str], targets: list[str]) -> None:
    for name in targets:
        if os.path.exists(name):
            raise ConflictError("output image file already exists", name)
    done: list[str] = []
    try:
        for old, new in zip(made, targets, strict=True):
            os.rename(old, new)
            done.append(new)
    except BaseException:
        for new in done:
            os.unlink(new)
        raise


def _tmp_pieces(tmp: str) -> list[str]:
    from emulator.image.ckd import SEQ_CHARS, piece_name

    names = [tmp] + [piece_name(tmp, seq) for seq in range(1, len(SEQ_CHARS) + 1)]
    return [n for n in names if os.path.exists(n)]


__all__ = ["open_image", "create_image", "convert_image", "read_header", "side_files", "DasdImage"]
