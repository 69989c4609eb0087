"""Data set blocks on tracks: read and write sequential runs of CKD records.

FORMATS.md 7.3 (every block is one CKD record, placed R1, R2, ... while the device
capacity formula of 1.7 says it fits, then the next track of the extent, then the
next extent; an EOF record, KL0 DL0, follows the last block), 6.5 (TT -> CCHH through
the extents), 5.4 (DS1LSTAR = TTR of the final EOF record and DS1TRBAL = device track
length minus the capacity used on that track, as Hercules ``dasdload`` writes them)
and 1.2 (every count field carries the track's CCHH).

This layer sees the volume only through the contract in docs/internals.md: the
``DatasetInfo`` (extents as absolute inclusive tracks, keylen, recfm_raw, lrecl,
blksize, space), ``vol.image`` (``read_track``/``write_track``/``transaction``),
``vol.device`` (capacity formula), ``vol.extend`` and ``vol.update``.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, NamedTuple

from emulator.dataset import records as rf
from emulator.errors import EmulatorError, FormatError, SpaceError
from emulator.track import build_track, parse_track

if TYPE_CHECKING:  # the volume layer is below this one; imported for hints only
    from emulator.volume.dscb import DatasetInfo
    from emulator.volume.volume import Volume

#: The count field's R is one byte; no device packs this many records on a track, but
#: a writer must never wrap the number silently.
MAX_REC = 255


class Block(NamedTuple):
    """One data set block: its relative track and record number, key and data."""

    tt: int
    r: int
    key: bytes
    data: bytes


class WriteResult(NamedTuple):
    """What :func:`write_blocks` did.

    ``ttrs``: (TT, R) of each block written, in order; ``eof``: (TT, R) of the EOF
    record (DS1LSTAR); ``tracks_used``: relative tracks in use up to and including
    the EOF track (``eof[0] + 1``).
    """

    ttrs: list[tuple[int, int]]
    eof: tuple[int, int]
    tracks_used: int


class _TrackMap:
    """Relative track (TT) -> absolute track through a data set's extents (FORMATS.md 6.5)."""

    def __init__(self, info: DatasetInfo, heads: int, where: str, path: str | None):
        self.begins: list[int] = []
        self.starts: list[int] = []  # TT of each extent's first track
        total = 0
        for ext in sorted(info.extents, key=lambda e: e.seq):
            if ext.end < ext.begin:
                raise FormatError(
                    f"extent {ext.seq} ends at track {ext.end} before it begins ({ext.begin})",
                    path,
                    where,
                )
            self.begins.append(ext.begin)
            self.starts.append(total)
            total += ext.end - ext.begin + 1
        self.total = total
        self.heads = heads

    def __len__(self) -> int:
        return self.total

    def trk(self, tt: int) -> int:
        i = bisect.bisect_right(self.starts, tt) - 1
        return self.begins[i] + tt - self.starts[i]


def _where(vol: Volume, info: DatasetInfo, trk: int | None = None, rec: int | None = None) -> str:
    if trk is None:
        return f"{vol.volser}: {info.dsname}"
    cyl, head = divmod(trk, vol.heads)
    place = f"{cyl}/{head}" if rec is None else f"{cyl}/{head}/{rec}"
    return f"{vol.volser} {place}: {info.dsname}"


def _path(vol: Volume) -> str | None:
    return getattr(vol.image, "path", None)


def _track_records(vol: Volume, info: DatasetInfo, trk: int) -> list:
    """The records R1..Rn of an absolute track, every count field checked against it.

    ``parse_track`` rather than the Numba walk in ``emulator.kernels.tracks``: for one
    track at a time the kernel saved at most a quarter (60 records of 800 bytes) and
    lost on tracks of a few large blocks, where the time goes into copying the data.
    """
    try:
        image = vol.image.read_track(trk)
        recs = parse_track(image, where=_where(vol, info, trk))
    except EmulatorError as exc:
        raise exc.located(_path(vol), _where(vol, info, trk)) from None
    cyl, head = divmod(trk, vol.heads)
    for rec in recs:
        if (rec.cyl, rec.head) != (cyl, head):
            raise FormatError(
                f"count field says cylinder {rec.cyl} head {rec.head}, "
                f"the record is on track {cyl}/{head}",
                _path(vol),
                _where(vol, info, trk, rec.rec),
            )
    return recs


def _check_start(tmap: _TrackMap, start: tuple[int, int], vol: Volume, info: DatasetInfo) -> None:
    tt, r = start
    if not 0 <= tt < len(tmap) or not 1 <= r <= MAX_REC:
        raise FormatError(
            f"start TTR {tt}/{r} is outside the data set ({len(tmap)} tracks)",
            _path(vol),
            _where(vol, info),
        )


def read_blocks(vol: Volume, info: DatasetInfo, start: tuple[int, int] = (0, 1)) -> Iterator[Block]:
    """Yield the blocks from ``start`` (TT, R) up to the first EOF record.

    Reading also stops at the end of the last extent (a data set allocated but never
    written has no EOF, only R0 on its tracks).  Keys are returned as stored.
    """
    tmap = _TrackMap(info, vol.heads, _where(vol, info), _path(vol))
    if len(tmap) == 0:
        return
    _check_start(tmap, start, vol, info)
    first_tt, first_r = start
    for tt in range(first_tt, len(tmap)):
        trk = tmap.trk(tt)
        for rec in _track_records(vol, info, trk):
            if tt == first_tt and rec.rec < first_r:
                continue
            if rec.is_eof:
                return
            yield Block(tt, rec.rec, rec.key, rec.data)


def read_records(vol: Volume, info: DatasetInfo) -> list[bytes]:
    """The logical records of a sequential data set (keys, if any, are dropped)."""
    recfm, lrecl = info.recfm_raw, info.lrecl
    blocks = read_blocks(vol, info)
    if rf.is_variable(recfm) and not rf.is_spanned(recfm):
        # Block by block, so an error names the cylinder/head/record it is in.
        tmap = _TrackMap(info, vol.heads, _where(vol, info), _path(vol))
        out: list[bytes] = []
        for blk in blocks:
            try:
                out.extend(rf.deblock(recfm, lrecl, [blk.data]))
            except EmulatorError as exc:
                raise exc.located(_path(vol), _where(vol, info, tmap.trk(blk.tt), blk.r)) from None
        return out
    try:
        return rf.deblock(recfm, lrecl, [b.data for b in blocks], _where(vol, info))
    except EmulatorError as exc:
        raise exc.located(_path(vol)) from None


def _secondary_tracks(vol: Volume, info: DatasetInfo) -> int:
    """Tracks one secondary extent adds (0 if the data set has no secondary space)."""
    space = getattr(info, "space", None)
    if not space:
        return 0
    unit, _primary, secondary = space
    unit = str(unit).upper()
    if secondary <= 0:
        return 0
    if unit.startswith("CYL"):
        return secondary * vol.heads
    if unit.startswith("BLK"):
        # average-block units: as many tracks as that many BLKSIZE blocks need
        per_track = vol.device.records_per_track(info.keylen or 0, info.blksize or 1) or 1
        return -(-secondary // per_track)
    return secondary


def write_blocks(
    vol: Volume,
    info: DatasetInfo,
    blocks: Iterable[tuple[bytes, bytes]],
    start: tuple[int, int] = (0, 1),
) -> WriteResult:
    """Write (key, data) blocks from ``start`` (TT, R), then an EOF record.

    Records before ``start`` on its track are kept (and count towards the track's
    capacity); records after it on that track are replaced.  Tracks past the EOF
    track are left as they are: their contents lie beyond the end of the data.  When
    the allocated space ends, a secondary extent is asked for (SpaceError if the data
    set has none or the volume cannot give it).  DS1LSTAR and DS1TRBAL are updated.
    All of it happens in one image transaction: it is written whole or not at all.
    """
    dev = vol.device
    path = _path(vol)
    tmap = _TrackMap(info, vol.heads, _where(vol, info), path)
    if len(tmap) == 0:
        raise SpaceError("data set has no space allocated", path, _where(vol, info))
    _check_start(tmap, start, vol, info)
    tt, r = start
    ttrs: list[tuple[int, int]] = []

    # Volume.transaction also drops the volume's cached VTOC if the write fails, so the
    # extents and F1 fields that extend/update changed in memory are re-read.
    transaction = vol.transaction if hasattr(vol, "transaction") else vol.image.transaction
    # Volume.write_track refuses track 0 and the VTOC: a damaged extent cannot overwrite them.
    put_track = vol.write_track if hasattr(vol, "write_track") else vol.image.write_track
    with transaction():
        trk = tmap.trk(tt)
        pending: list[tuple[bytes, bytes]] = []
        used = 0
        if r > 1:
            kept = [rec for rec in _track_records(vol, info, trk) if rec.rec < r]
            if [rec.rec for rec in kept] != list(range(1, r)):
                raise FormatError(
                    f"cannot write at R{r}: the track holds records "
                    f"{[rec.rec for rec in kept]} before it, not R1..R{r - 1}",
                    path,
                    _where(vol, info, trk),
                )
            for rec in kept:
                new = dev.fits(used, len(rec.key), len(rec.data))
                if new is None:
                    raise FormatError(
                        f"R{rec.rec} does not fit the track by the {dev.name} capacity formula",
                        path,
                        _where(vol, info, trk, rec.rec),
                    )
                used = new
                pending.append((rec.key, rec.data))

        def next_track() -> None:
            """Write the current track and move to R1 of the next (extending if needed)."""
            nonlocal tt, r, trk, pending, used, tmap, info
            cyl, head = divmod(trk, vol.heads)
            put_track(trk, build_track(cyl, head, pending))
            tt += 1
            if tt >= len(tmap):
                more = _secondary_tracks(vol, info)
                if more <= 0:
                    raise SpaceError(
                        f"all {len(tmap)} allocated tracks are full and the data set has "
                        "no secondary space",
                        path,
                        _where(vol, info),
                    )
                info = vol.extend(info.dsname, more)
                tmap = _TrackMap(info, vol.heads, _where(vol, info), path)
                if tt >= len(tmap):
                    raise SpaceError(
                        f"extending by {more} tracks gave no new track", path, _where(vol, info)
                    )
            trk = tmap.trk(tt)
            pending, used, r = [], 0, 1

        for n, (key, data) in enumerate(blocks, 1):
            key, data = bytes(key), bytes(data)
            if not data and not key:
                raise FormatError(
                    f"block {n} is empty; a KL0 DL0 record would read as end of file",
                    path,
                    _where(vol, info),
                )
            if len(key) > 255 or dev.fits(0, len(key), len(data)) is None:
                raise FormatError(
                    f"block {n} (KL {len(key)} DL {len(data)}) does not fit on a {dev.name} track",
                    path,
                    _where(vol, info),
                )
            new = dev.fits(used, len(key), len(data))
            if new is None or r > MAX_REC:
                next_track()
                new = dev.fits(0, len(key), len(data))
            pending.append((key, data))
            ttrs.append((tt, r))
            used, r = new, r + 1

        new = dev.fits(used, 0, 0)
        if new is None or r > MAX_REC:
            next_track()
            new = dev.fits(0, 0, 0)
        pending.append((b"", b""))
        eof = (tt, r)
        used = new
        cyl, head = divmod(trk, vol.heads)
        put_track(trk, build_track(cyl, head, pending))
        vol.update(info.dsname, lstar=eof, trbal=dev.track_balance(used))
    return WriteResult(ttrs, eof, eof[0] + 1)


def write_records(vol: Volume, info: DatasetInfo, records: Iterable[bytes]) -> WriteResult:
    """Block ``records`` by the data set's RECFM/LRECL/BLKSIZE and write them from (0, 1).

    A keyed data set (KEYLEN > 0) gets binary-zero keys: the records API carries data
    only; use :func:`write_blocks` to supply keys.
    """
    try:
        data_blocks = rf.block(info.recfm_raw, info.lrecl, info.blksize, records)
    except EmulatorError as exc:
        raise exc.located(_path(vol), _where(vol, info)) from None
    key = bytes(info.keylen or 0)
    return write_blocks(vol, info, ((key, b) for b in data_blocks))


__all__ = ["Block", "WriteResult", "read_blocks", "read_records", "write_blocks", "write_records"]
