"""A CKD volume: VOL1 label, VTOC, data sets, allocation and free space.

FORMATS.md 4 (track 0, VOL1), 5 (VTOC and DSCBs; 5.7 Format-7 free space), 6.1 (empty
PDS directory), 7.1-7.3 (RECFM and blocks on tracks).  The layer below is
``emulator.image`` (whole tracks in transactions); the layers above (data set I/O, PDS,
CLI) see :class:`Volume` and :class:`~emulator.volume.dscb.DatasetInfo`.

Choices made here, and why:

* **Reading** works on any CKD device the image layer opens (3390, 3380, 3350, 3330,
  2314...), on VTOCs anywhere on the volume (``dasdload`` puts it after the data sets),
  on indexed VTOCs, and on volumes whose F5 is marked invalid (DS4VTOCI X'80', as
  ``dasdload`` writes): free space is then computed from the extents.
* **Writing** is limited to 3390 and 3380 volumes (``UnsupportedError`` names any
  other device).  Writes are refused with ``ConflictError`` when the VTOC is indexed
  (DS4IVTOC: the index data set SYS1.VTOCIX.volser would have to be updated too, and
  turning the index off behind z/OS's back is unconfirmed, FORMATS.md 5.2), when
  DS4DIRF says an earlier VTOC update was interrupted, and on volumes of more than
  65520 cylinders (EAV: cylinder-managed space, F8/F9 DSCBs and 28-bit cylinder
  numbers are out of scope; we create at most 65520 cylinders, so every extent we
  write is a plain CCHH).
* **Free space kept exact.**  After every change the free-space DSCBs are rebuilt from
  the extents.  On volumes of up to 65535 tracks that is the F5 chain, and DS4DOSBT
  (X'80') is cleared, so a ``dasdload`` volume becomes one whose F5 can be trusted.
  F5 relative track addresses are 16 bits, so larger volumes (3390-9, -27, -54), and
  any volume whose DS4EFVLD is already set, keep free space in a Format-7 chain
  (FORMATS.md 5.7; end = last free track + 1, see ``emulator.volume.vtoc``): one
  empty F5, the F7s after it, DS4VTOCI X'A0' (DS4DOSBT + DS4EFVLD), DS4EFLVL X'07' and
  DS4EFPTR naming the first F7, as s390-tools and Hercules write them.  A big volume
  that ``dasdload`` made (empty F5, DS4DOSBT, no F7) gets its F7s at the first write.
* **Allocation** is first fit.  The primary quantity goes into one extent when a free
  extent is big enough, else into up to 5 extents (largest free extents first), as
  z/OS does without CONTIG.  CYL space is taken on cylinder boundaries (extent type
  X'81').  :meth:`Volume.extend` adds exactly one extent; a data set has at most 16
  (F1's 3 and one F3's 13).  New F1/F3 DSCBs go into the first F0 slot.
* **New data sets** look like ``dasdload``'s EMPTY ones (FORMATS.md 5.4 V6 notes):
  PS gets an EOF at R1 of its first track, PO its directory blocks (KL 8 DL 256; the
  first holds only the end entry, X'000E' used; the rest are Hercules' zero fill) and
  an EOF; DS1LSTAR points at that EOF, DS1TRBAL is what is left of its track,
  DS1NOBDB 14 for PO, DS1DSIND X'80' (+X'20' when BLKSIZE is a multiple of 8).  Only
  DS1SYSCD differs: "DASD-SSM" names the writer.  DS1CREDT defaults to today (not
  ``dasdload``'s day-early value).
* **Transactions.**  Every mutating call runs inside ``image.transaction()``: a failure
  leaves the image untouched, and the in-memory VTOC is re-read from the image.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import os
import re
from collections.abc import Iterator, Sequence
from typing import Any

from emulator import codepage
from emulator.dates import date_to_ydd
from emulator.errors import (
    ConflictError,
    EmulatorError,
    FormatError,
    NotFoundError,
    SpaceError,
    UnsupportedError,
)
from emulator.geometry import WRITABLE, Device, parse_devtype
from emulator.image import DasdImage, create_image, open_image, side_files
from emulator.layouts import parse_at
from emulator.layouts.vtoc import (
    DS4DIRF,
    DS4DOSBT,
    DS4EFLVL_F7,
    DS4EFVLD,
    DS4IVTOC,
    DSCB_SIZE,
    DSIND_BLK8,
    DSIND_LASTVOL,
    DSORG_PO,
    DSORG_PS,
    DSORG_U,
    XTTYPE_CYL,
    XTTYPE_DATA,
    Format4,
    Vol1,
)
from emulator.recfm import LRECL_X
from emulator.track import build_track, parse_track
from emulator.volume.dscb import (
    F1_EXTENTS,
    FMT_F0,
    FMT_F1,
    FMT_F2,
    FMT_F3,
    FMT_F7,
    FMT_F8,
    FMT_F9,
    MAX_EXTENTS,
    Cchhr,
    DatasetInfo,
    Extent,
    dataset_info,
    dsname_key,
    dsname_of,
    dsorg_value,
    new_format1,
    new_format3,
    patch_format1,
    pointer_of,
    recfm_value,
    validate_dsname,
)
from emulator.volume.vtoc import (
    F5_EXTENTS,
    F5_MAX_TRACKS,
    F7_EXTENTS,
    Vtoc,
    build_f5,
    build_f7,
    cchhr_text,
    complement,
    f5_entries,
    f5_free,
    f7_entries,
    f7_free,
    fmt_of,
    merge,
)

VOL1_KEY = b"\xe5\xd6\xd3\xf1"  # 'VOL1'
IPL1_KEY = b"\xc9\xd7\xd3\xf1"  # 'IPL1'
IPL2_KEY = b"\xc9\xd7\xd3\xf2"  # 'IPL2'
# Hercules 3.13 dasdinit: disabled-wait PSW, CCW1 read IPL2, CCW2 zeros (FORMATS.md 4)
IPL1_DATA = bytes.fromhex("000600000000000f03000000000000010000000000000000")
IPL2_LEN = 144
VOL1_SECURITY = 0x40  # what Hercules 3.13 writes (4.x and ICKDSF: X'C0')
SYSCODE = "DASD-SSM"  # DS1SYSCD of data sets we allocate
MAX_PRIMARY_EXTENTS = 5
MAX_BLKSIZE = 32760
PDS_EMPTY_USED = 14  # X'000E': 2 count bytes + the 12-byte end entry (FORMATS.md 6.1)
MAX_CYLS = 65520  # beyond: EAV cylinder-managed space and 28-bit cylinders (FORMATS.md 5.5)
DS4DSCYL_EAV = 0xFFFE  # DS4DSCYL of an EAV: the count is in DS4DCYL
DIRBLK_KEYLEN, DIRBLK_DATALEN = 8, 256

_VOLSER = re.compile(r"[A-Z0-9@#$-]{1,6}")


def _eof_record() -> tuple[bytes, bytes]:
    return (b"", b"")


def validate_volser(volser: str) -> str:
    """Upper-case and check a volume serial (1-6 letters, digits, @ # $ -)."""
    text = volser.strip().upper() if isinstance(volser, str) else ""
    if not _VOLSER.fullmatch(text):
        raise FormatError(f"volume serial {volser!r} must be 1-6 letters, digits, @ # $ or -")
    return text


class Volume:
    """An open CKD volume.  Use :meth:`open` or :meth:`create`."""

    def __init__(self, image: DasdImage):
        self.image = image
        self.device: Device = image.device
        self.heads: int = image.heads
        self.cyls: int = image.cyls
        self.path: str = image.path
        self.writable: bool = image.writable
        self.volser, self.vtoc_pointer, self.owner = self._read_label()
        self._vtoc: Vtoc | None = None
        self._info_cache: dict[tuple, DatasetInfo] = {}
        self._load_vtoc()

    # -- opening and creating ---------------------------------------------------------
    @classmethod
    def open(
        cls,
        path: str | os.PathLike,
        writable: bool = False,
        *,
        ignore_opened: bool = False,
        lock_wait: float | None = None,
    ) -> Volume:
        """Open an existing volume image (plain CKD, split, CCKD, CCKD64); the keyword
        arguments are :func:`emulator.image.open_image`'s (writer lock, OPENED bit)."""
        image = open_image(path, writable, ignore_opened=ignore_opened, lock_wait=lock_wait)
        try:
            return cls(image)
        except BaseException:
            image.close()
            raise

    @classmethod
    def create(
        cls,
        path: str | os.PathLike,
        devtype: str,
        volser: str,
        cyls: int | None = None,
        compress: str | None = None,
        cckd64: bool = False,
        owner: str = "HERCULES",
        vtoc_tracks: int | None = None,
    ) -> Volume:
        """Create a volume as ``dasdinit`` does (track 0) plus an empty VTOC (as ICKDSF).

        ``devtype`` is "3390", "3390-9", "3380-K"...; without ``cyls`` the model's
        cylinder count is used.  The VTOC starts at track 0/1; ``vtoc_tracks`` gives its
        size (default: the module function :func:`vtoc_tracks`).  Volumes of more than 65535 tracks
        get a Format-7 free-space DSCB.  Returns the volume open for writing.
        """
        path = os.fspath(path)
        dev, model_cyls = parse_devtype(devtype)
        if dev.name not in WRITABLE:
            raise UnsupportedError(
                f"cannot create a {dev.name} volume: only {' and '.join(WRITABLE)} are written",
                path,
            )
        serial = validate_volser(volser)
        ncyls = model_cyls if cyls is None else int(cyls)
        if not 1 <= ncyls <= MAX_CYLS:
            raise UnsupportedError(
                f"{ncyls} cylinders: volumes of 1..{MAX_CYLS} cylinders are created (larger "
                "ones are EAVs, with cylinder-managed space)",
                path,
            )
        ntracks = vtoc_size(dev, ncyls, vtoc_tracks, path)
        image = create_image(path, dev, ncyls, compress, cckd64)
        try:
            with image.transaction():
                _format_volume(image, serial, owner, ntracks)
            return cls(image)
        except BaseException:
            files = list(getattr(image, "files", None) or [path])
            image.close()
            for name in files + side_files(path):
                with contextlib.suppress(OSError):
                    os.remove(name)
            raise

    # -- lifetime ---------------------------------------------------------------------
    def sync(self) -> None:
        """Wait until the commits so far are on disk (``DasdImage.background_flush``)."""
        self.image.sync()

    def close(self) -> None:
        self.image.close()

    def __enter__(self) -> Volume:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Volume {self.volser} {self.device.name} {self.cyls} cyl {self.path}>"

    # -- track passthroughs -----------------------------------------------------------
    def read_track(self, trk: int) -> bytes:
        return self.image.read_track(trk)

    def write_track(self, trk: int, image: bytes) -> None:
        """Write a data track.  Track 0 and the VTOC are only changed through this class."""
        self._require_data_track(trk)
        self.image.write_track(trk, image)

    def write_slots(self, trks: Sequence[int], slots: Any, lengths: Sequence[int]) -> None:
        """Write many data tracks from zero-padded slot rows without copying them
        (:meth:`emulator.image.base.DasdImage.write_slots`); as :meth:`write_track`,
        never track 0 or the VTOC."""
        for trk in trks:
            self._require_data_track(trk)
        self.image.write_slots(trks, slots, lengths)

    def _require_data_track(self, trk: int) -> None:
        self._require_device_writable()
        if trk == 0 or self.vtoc.begin <= trk <= self.vtoc.end:
            cyl, head = divmod(trk, self.heads)
            raise ConflictError(
                f"track {cyl}/{head} holds the volume label or VTOC; write it through the "
                "volume methods",
                self.path,
                self.volser,
            )

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Volume]:
        """Group several calls: all reach the image or none do."""
        try:
            with self.image.transaction():
                yield self
        except BaseException:
            self._vtoc = None  # re-read what the image really holds
            raise

    # -- label and VTOC ---------------------------------------------------------------
    def _read_label(self) -> tuple[str, Cchhr, str]:
        where = "track 0/0"
        try:
            records = parse_track(self.image.read_track(0), where=where)
        except EmulatorError as exc:
            raise exc.located(self.path) from None
        for r in records:
            if r.key == VOL1_KEY and len(r.data) >= 80:
                vol1 = parse_at(Vol1, r.data, 0, f"{where} R{r.rec} VOL1", self.path)
                volser = codepage.unpad(vol1.vol1vser)
                ptr = (vol1.vol1vtoc.cyl, vol1.vol1vtoc.head, vol1.vol1vtoc.rec)
                return volser, ptr, codepage.unpad(vol1.vol1ownr).strip()
        raise FormatError("no VOL1 label on track 0 (an unlabelled, raw volume?)", self.path, where)

    def _load_vtoc(self) -> Vtoc:
        try:
            self._vtoc = Vtoc.load(self.image, self.vtoc_pointer, self.volser)
        except EmulatorError as exc:
            raise exc.located(self.path) from None
        return self._vtoc

    @property
    def vtoc(self) -> Vtoc:
        """The VTOC held in memory (re-read after a rolled-back change)."""
        return self._vtoc if self._vtoc is not None else self._load_vtoc()

    @property
    def vtoc_extent(self) -> tuple[int, int]:
        """(first, last) absolute track of the VTOC."""
        return self.vtoc.begin, self.vtoc.end

    @property
    def indexed(self) -> bool:
        """True when the VTOC has an index (DS4IVTOC)."""
        return bool(self.vtoc.f4().ds4vtoci & DS4IVTOC)

    # -- data sets --------------------------------------------------------------------
    def _info(self, addr: Cchhr, raw: bytes) -> DatasetInfo:
        """DatasetInfo for the F1/F8 at ``addr``; FormatError if its DSCBs are broken."""
        name = dsname_of(raw[:44])
        kind = "F8" if fmt_of(raw) == FMT_F8 else "F1"
        where = f"{self.volser} {cchhr_text(addr)}: {name} {kind} DSCB"
        allowed = {FMT_F9, FMT_F3} if kind == "F8" else {FMT_F2, FMT_F3}
        try:
            chain = self.vtoc.chain(pointer_of(raw), allowed, where)
        except EmulatorError as exc:
            raise exc.located(self.path, where) from None
        # Cached by content: every write re-reads every data set (free space, checks).
        key = (addr, raw, tuple(r for _, r in chain))
        hit = self._info_cache.get(key)
        if hit is None:
            hit = self._build_info(addr, raw, chain, where)
            if len(self._info_cache) > 4096:
                self._info_cache.clear()
            self._info_cache[key] = hit
        return dataclasses.replace(hit, extents=list(hit.extents), chain=list(hit.chain))

    def _build_info(
        self, addr: Cchhr, raw: bytes, chain: list[tuple[Cchhr, bytes]], where: str
    ) -> DatasetInfo:
        f3s = [r for _, r in chain if fmt_of(r) == FMT_F3]
        try:
            info = dataset_info(
                raw, f3s, self.volser, self.heads, addr, [a for a, _ in chain], where, self.path
            )
        except EmulatorError as exc:
            raise exc.located(self.path, where) from None
        last_cyl = self.cyls - 1
        for n, ext in enumerate(info.extents, 1):
            if ext.begin > ext.end:
                raise FormatError(f"extent {n} ends before it begins", self.path, where)
            if ext.end >= self.image.total_tracks:
                raise FormatError(f"extent {n} ends past cylinder {last_cyl}", self.path, where)
        return info

    def _scan(self) -> tuple[list[DatasetInfo], list[FormatError]]:
        infos: list[DatasetInfo] = []
        problems: list[FormatError] = []
        for addr, raw in self.vtoc.identifiers():
            try:
                infos.append(self._info(addr, raw))
            except FormatError as exc:
                problems.append(exc)
        return infos, problems

    def datasets(self) -> list[DatasetInfo]:
        """Every data set (F1/F8 DSCB) in VTOC order; FormatError if one is broken."""
        infos, problems = self._scan()
        if problems:
            raise problems[0]
        return infos

    def _find(self, dsname: str) -> tuple[Cchhr, bytes] | None:
        return self.vtoc.find(dsname.strip().upper())

    def dataset(self, dsname: str) -> DatasetInfo:
        """The data set named ``dsname`` (any case); NotFoundError if it is not here."""
        hit = self._find(dsname)
        if hit is None:
            raise NotFoundError(
                f"data set {dsname.strip().upper()} not found", self.path, self.volser
            )
        return self._info(*hit)

    # -- relative tracks --------------------------------------------------------------
    def trk_of(self, info: DatasetInfo, tt: int) -> int:
        """Relative track ``tt`` of a data set -> absolute track (FORMATS.md 6.5)."""
        rel = tt
        if rel >= 0:
            for ext in info.extents:
                if rel < ext.tracks:
                    return ext.begin + rel
                rel -= ext.tracks
        raise FormatError(
            f"relative track {tt} is outside the data set ({info.tracks} tracks)",
            self.path,
            f"{self.volser}: {info.dsname}",
        )

    def tt_of(self, info: DatasetInfo, trk: int) -> int:
        """Absolute track -> relative track of the data set."""
        base = 0
        for ext in info.extents:
            if ext.begin <= trk <= ext.end:
                return base + trk - ext.begin
            base += ext.tracks
        cyl, head = divmod(trk, self.heads)
        raise FormatError(
            f"track {cyl}/{head} is not part of the data set",
            self.path,
            f"{self.volser}: {info.dsname}",
        )

    # -- free space -------------------------------------------------------------------
    def _used(self) -> list[tuple[int, int]]:
        used = [(0, 0), (self.vtoc.begin, self.vtoc.end)]
        for addr, raw in self.vtoc.identifiers():
            try:
                info = self._info(addr, raw)
            except FormatError:
                continue  # check() reports it; writes are refused while it is broken
            used.extend((e.begin, e.end) for e in info.extents)
        return used

    @property
    def space_tracks(self) -> int:
        """Tracks that hold data sets: the image may be longer than DS4DSCYL says (an
        alternate cylinder, as on Hercules 4.x volumes); those tracks are never free."""
        f4 = self.vtoc.f4()
        total = self.image.total_tracks
        if 0 < f4.ds4dscyl < 0xFFFE and f4.ds4dstrk == self.heads:
            return min(total, f4.ds4dscyl * self.heads)
        return total

    def free_extents(self) -> list[tuple[int, int]]:
        """Free space as (first, last) absolute tracks, computed from the extents."""
        return complement(self._used(), self.space_tracks)

    def _pieces(self, cyl_aligned: bool) -> list[tuple[int, int]]:
        free = self.free_extents()
        if not cyl_aligned:
            return free
        out = []
        for b, e in free:
            first = -(-b // self.heads) * self.heads
            last = (e + 1) // self.heads * self.heads - 1
            if last >= first:
                out.append((first, last))
        return out

    def _find_space(
        self, tracks: int, cyl_aligned: bool, max_extents: int, what: str
    ) -> list[tuple[int, int]]:
        pieces = self._pieces(cyl_aligned)
        for b, e in pieces:
            if e - b + 1 >= tracks:
                return [(b, b + tracks - 1)]
        if max_extents > 1:
            chosen, need = [], tracks
            for b, e in sorted(pieces, key=lambda p: (p[0] - p[1], p[0]))[:max_extents]:
                take = min(need, e - b + 1)
                chosen.append((b, b + take - 1))
                need -= take
                if need == 0:
                    return sorted(chosen)
        largest = max((e - b + 1 for b, e in pieces), default=0)
        total = sum(e - b + 1 for b, e in pieces)
        unit = "whole-cylinder " if cyl_aligned else ""
        raise SpaceError(
            f"{what}: asked for {tracks} tracks; the largest free {unit}extent is {largest} "
            f"tracks ({total} {unit}tracks free in all)",
            self.path,
            self.volser,
        )

    # -- checks before writing --------------------------------------------------------
    def _require_device_writable(self) -> None:
        if self.device.name not in WRITABLE:
            raise UnsupportedError(
                f"{self.device.name} volumes are read only here (writes: {' and '.join(WRITABLE)})",
                self.path,
                self.volser,
            )
        if not self.writable:
            raise ConflictError("volume is open read-only", self.path, self.volser)

    def _require_writable(self) -> None:
        self._require_device_writable()
        vtoci = self.vtoc.f4().ds4vtoci
        if vtoci & DS4IVTOC:
            raise ConflictError(
                f"indexed VTOC (DS4IVTOC, index SYS1.VTOCIX.{self.volser}): writes refused, "
                "the index cannot be kept in step",
                self.path,
                self.volser,
            )
        if self.cyls > MAX_CYLS or self.vtoc.f4().ds4dscyl == DS4DSCYL_EAV:
            raise UnsupportedError(
                f"{self.cyls} cylinders: an extended address volume (more than {MAX_CYLS} "
                "cylinders) is read only here",
                self.path,
                self.volser,
            )
        if vtoci & DS4DIRF:
            raise ConflictError(
                "an earlier VTOC update was interrupted (DS4DIRF): writes refused",
                self.path,
                self.volser,
            )
        _, problems = self._scan()
        if problems:
            raise problems[0]

    @contextlib.contextmanager
    def _mutation(self, space: bool = True) -> Iterator[None]:
        """The write part of a call.  Callers run ``_require_writable`` and every check
        that can fail (names, space, DSCB slots) first, so a refusal never poisons a
        caller's enclosing transaction.  ``space=False`` for a change that rewrites a
        DSCB in place (no extents or slots change), which needs no free-space rebuild:
        PDS member writes update DS1LSTAR once per member."""
        try:
            with self.image.transaction():
                yield
                if space:
                    self._finish_vtoc()
                else:
                    self.vtoc.flush(self.image)
        except BaseException:
            self._vtoc = None  # the image rolled back; forget our in-memory edits
            raise

    def _uses_f7(self, f4=None) -> bool:
        """True when free space belongs in Format-7 DSCBs: more tracks than an F5 can
        address, or DS4EFVLD already set by whoever formatted the volume."""
        f4 = f4 if f4 is not None else self.vtoc.f4()
        return self.space_tracks > F5_MAX_TRACKS or bool(f4.ds4vtoci & DS4EFVLD)

    def _finish_vtoc(self) -> None:
        """Rebuild F5 (or F5 + F7), recount F4 DS4DSREC/DS4HPCHR, write the VTOC tracks."""
        v = self.vtoc
        f4 = v.f4()
        if self._uses_f7(f4):
            self._rebuild_f5([])  # one empty F5 (IBM: the second DSCB is always an F5)
            first = self._rebuild_f7()
            f4.ds4vtoci |= DS4DOSBT | DS4EFVLD
            f4.ds4eflvl = DS4EFLVL_F7
            f4.ds4efptr = (
                first[0].to_bytes(2, "big") + first[1].to_bytes(2, "big") + bytes([first[2]])
            )
        else:
            self._rebuild_f5(f5_entries(self.free_extents(), self.heads))
            f4.ds4vtoci &= ~DS4DOSBT
        f4.ds4dsrec = len(v.free_slots())
        hp = _hpchr(v)
        f4.ds4hpchr = dict(cyl=hp[0], head=hp[1], rec=hp[2])
        v.put_f4(f4)
        v.flush(self.image)

    def _rebuild_f5(self, entries: list[dict]) -> None:
        v = self.vtoc
        try:
            old = [a for a, _ in v.f5_chain()]
        except FormatError:
            start = v.f5_start()
            old = [start] if start else []  # a broken chain: keep only its head
        self._rebuild_chain(old, entries, F5_EXTENTS, build_f5, "Format-5")

    def _rebuild_f7(self) -> Cchhr:
        """Write the free extents into an F7 chain; returns the first F7's address."""
        v = self.vtoc
        try:
            old = [a for a, _ in v.f7_chain()]
        except FormatError:
            start = v.f7_start()
            ok = start in v and fmt_of(v.get(start)) == FMT_F7
            old = [start] if ok else []  # a broken chain: keep only its head
        # F7s that no chain reaches are leftovers: reuse them (or clear them below).
        old += [a for a, raw in v.items() if fmt_of(raw) == FMT_F7 and a not in old]
        entries = f7_entries(self.free_extents())
        return self._rebuild_chain(old, entries, F7_EXTENTS, build_f7, "Format-7")[0]

    def _rebuild_chain(
        self, old: list[Cchhr], entries: list[dict], per_dscb: int, build, what: str
    ) -> list[Cchhr]:
        """Put ``entries`` into a chain of DSCBs, reusing ``old`` slots first, then F0s;
        old slots left over become F0.  Returns the chain's addresses (at least one)."""
        v = self.vtoc
        chunks = [entries[i : i + per_dscb] for i in range(0, len(entries), per_dscb)]
        chunks = chunks or [[]]
        addrs = old[: len(chunks)]
        for addr in old[len(chunks) :]:
            v.clear(addr)
        for addr in v.free_slots():
            if len(addrs) >= len(chunks):
                break
            if addr not in addrs:
                addrs.append(addr)
        if len(addrs) < len(chunks):
            raise SpaceError(
                f"the VTOC is full: no DSCB left for a {what} ({len(v.slots)} DSCBs)",
                self.path,
                self.volser,
            )
        for i, (addr, chunk) in enumerate(zip(addrs, chunks, strict=True)):
            ptr = addrs[i + 1] if i + 1 < len(addrs) else (0, 0, 0)
            v.put(addr, build(chunk, ptr))
        return addrs

    def _take_slot(self, exclude: tuple[Cchhr, ...] = ()) -> Cchhr:
        for addr in self.vtoc.free_slots():
            if addr not in exclude:
                return addr
        raise SpaceError(f"the VTOC is full ({len(self.vtoc.slots)} DSCBs)", self.path, self.volser)

    # -- DCB rules --------------------------------------------------------------------
    def _half_track(self, keylen: int) -> int:
        """Largest block (≤ 32760) of which two fit on a track: 27998 on 3390."""
        lo, hi = 1, MAX_BLKSIZE
        if self.device.records_per_track(keylen, lo) < 2:
            return 0
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self.device.records_per_track(keylen, mid) >= 2:
                lo = mid
            else:
                hi = mid - 1
        return lo

    def _dcb(
        self, recfm: int, lrecl: int | str | None, blksize: int | None, keylen: int, where: str
    ) -> tuple[int, int]:
        """Check (and default) LRECL and BLKSIZE for ``recfm``; returns them.

        LRECL=X (``"X"`` or X'8000', FORMATS.md 7.2) is accepted for VS/VBS only."""
        if isinstance(lrecl, str):
            if lrecl.strip().upper() != "X":
                raise FormatError(f"LRECL {lrecl!r} must be a number or X", self.path, where)
            lrecl = LRECL_X
        elif lrecl is not None and (isinstance(lrecl, bool) or not isinstance(lrecl, int)):
            raise FormatError(f"LRECL {lrecl!r} must be a number or X", self.path, where)
        if blksize is not None and (isinstance(blksize, bool) or not isinstance(blksize, int)):
            raise FormatError(f"BLKSIZE {blksize!r} must be a number", self.path, where)
        fmt = recfm & 0xC0
        blocked = bool(recfm & 0x10)
        spanned = bool(recfm & 0x08)
        if not 0 <= keylen <= 255:
            raise FormatError(f"KEYLEN {keylen} is not 0..255", self.path, where)
        half = self._half_track(keylen)
        if fmt == 0x80:  # F
            lrecl = 80 if lrecl is None else lrecl
            if not 1 <= lrecl <= MAX_BLKSIZE:
                raise FormatError(f"LRECL {lrecl} is not 1..{MAX_BLKSIZE}", self.path, where)
            if blksize is None:
                blksize = (half // lrecl) * lrecl if blocked and lrecl <= half else lrecl
            if blocked and blksize % lrecl:
                raise FormatError(
                    f"BLKSIZE {blksize} is not a multiple of LRECL {lrecl}", self.path, where
                )
            if not blocked and blksize != lrecl:
                raise FormatError(
                    f"unblocked RECFM F needs BLKSIZE = LRECL ({lrecl}), not {blksize}",
                    self.path,
                    where,
                )
        elif fmt == 0x40:  # V
            lrecl = 80 if lrecl is None else lrecl
            if lrecl == LRECL_X:
                # LRECL=X: records of any length, so only spanned records can hold them.
                if not spanned:
                    raise FormatError(
                        "LRECL=X (X'8000') needs spanned records (RECFM VS or VBS)",
                        self.path,
                        where,
                    )
                if blksize is None:
                    blksize = half or MAX_BLKSIZE
            elif not 5 <= lrecl <= MAX_BLKSIZE:
                raise FormatError(
                    f"LRECL {lrecl} is not 5..{MAX_BLKSIZE} (or X for VS/VBS)", self.path, where
                )
            if blksize is None:
                blksize = max(half, lrecl + 4) if blocked else lrecl + 4
                blksize = min(blksize, MAX_BLKSIZE)
            if not spanned and lrecl > blksize - 4:
                raise FormatError(
                    f"LRECL {lrecl} is more than BLKSIZE {blksize} - 4 (RECFM V, not spanned)",
                    self.path,
                    where,
                )
            if blksize < 8:
                raise FormatError(f"BLKSIZE {blksize} is too small for RECFM V", self.path, where)
        elif fmt == 0xC0:  # U
            lrecl = 0 if lrecl is None else lrecl
            blksize = 6144 if blksize is None else blksize
            if not 0 <= lrecl <= blksize:
                raise FormatError(
                    f"LRECL {lrecl} must be 0..BLKSIZE ({blksize}) for RECFM U", self.path, where
                )
        else:
            raise FormatError("RECFM must start with F, V or U", self.path, where)
        if not 1 <= blksize <= MAX_BLKSIZE:
            raise FormatError(f"BLKSIZE {blksize} is not 1..{MAX_BLKSIZE}", self.path, where)
        if self.device.records_per_track(keylen, blksize) < 1:
            raise FormatError(
                f"a block of {blksize} bytes (key {keylen}) does not fit a {self.device.name} "
                "track",
                self.path,
                where,
            )
        return lrecl, blksize

    # -- allocation -------------------------------------------------------------------
    def allocate(
        self,
        dsname: str,
        dsorg: str = "PS",
        recfm: str | int = "FB",
        lrecl: int | str | None = None,
        blksize: int | None = None,
        keylen: int = 0,
        space: tuple = ("TRK", 1, 0),
        dirblks: int = 0,
        created: datetime.date | None = None,
        expires: datetime.date | None = None,
    ) -> DatasetInfo:
        """Allocate a new PS or PO data set and initialise it.

        PS gets an EOF record at R1 of its first track; PO gets ``dirblks`` empty
        directory blocks and an EOF.  DS1LSTAR points at that EOF, as ``dasdload``
        writes it.  LRECL defaults to 80 (0 for RECFM U); ``"X"`` (stored as X'8000') is
        LRECL=X for VS/VBS.  BLKSIZE defaults to the half-track optimum for FB/VB (and
        LRECL=X), LRECL (+4 for V) unblocked, 6144 for U.
        """
        name = validate_dsname(dsname)
        where = f"{self.volser}: {name}"
        org = dsorg_value(dsorg) if isinstance(dsorg, str) else int(dsorg)
        base = org & ~DSORG_U
        if base not in (DSORG_PS, DSORG_PO):
            raise UnsupportedError(
                f"DSORG {dsorg!r}: only PS and PO data sets are allocated", self.path, where
            )
        recfm_raw = recfm_value(recfm) if isinstance(recfm, str) else int(recfm)
        if not 0 <= recfm_raw <= 0xFF:
            raise FormatError(f"RECFM X'{recfm_raw:X}' is not one byte", self.path, where)
        lrecl, blksize = self._dcb(recfm_raw, lrecl, blksize, keylen, where)
        unit, primary, secondary = _space_spec(space, self.path, where)
        if base == DSORG_PO and dirblks < 1:
            raise FormatError("a PO data set needs at least 1 directory block", self.path, where)
        if base == DSORG_PS and dirblks:
            raise FormatError("directory blocks are only for PO data sets", self.path, where)
        if not 0 <= dirblks <= 0xFFFF:
            raise FormatError(f"{dirblks} directory blocks is too many", self.path, where)
        cyl = unit == "CYL"
        tracks = primary * self.heads if cyl else primary
        created = datetime.date.today() if created is None else created
        date_to_ydd(created)  # check the dates before anything is changed
        date_to_ydd(expires)
        layout = self._directory_layout(dirblks) if base == DSORG_PO else [[_eof_record()]]
        if len(layout) > tracks:
            raise SpaceError(
                f"{dirblks} directory blocks need {len(layout)} tracks, {tracks} allocated",
                self.path,
                where,
            )
        self._require_writable()
        if self._find(name) is not None:
            raise ConflictError(f"data set {name} already exists", self.path, self.volser)
        spans = self._find_space(tracks, cyl, MAX_PRIMARY_EXTENTS, name)
        xttype = XTTYPE_CYL if cyl else XTTYPE_DATA
        extents = [Extent(i, b, e, xttype) for i, (b, e) in enumerate(spans)]
        f1_addr = self._take_slot()
        f3_addr = self._take_slot((f1_addr,)) if len(extents) > F1_EXTENTS else (0, 0, 0)
        with self._mutation():
            dsind = DSIND_LASTVOL | (DSIND_BLK8 if blksize % 8 == 0 else 0)
            raw = new_format1(
                name,
                self.volser,
                org,
                recfm_raw,
                lrecl,
                blksize,
                keylen,
                extents,
                self.heads,
                unit,
                secondary,
                created,
                expires,
                dsind,
                SYSCODE,
                f3_addr,
            )
            if len(extents) > F1_EXTENTS:
                self.vtoc.put(f3_addr, new_format3(extents[F1_EXTENTS:], self.heads))
            info = dataset_info(raw, [], self.volser, self.heads, f1_addr)
            info.extents = extents
            lstar, trbal = self._write_layout(info, layout)
            nobdb = PDS_EMPTY_USED if base == DSORG_PO else 0
            raw = patch_format1(raw, self.heads, lstar=lstar, ds1trbal=trbal, ds1nobdb=nobdb)
            self.vtoc.put(f1_addr, raw)
        return self.dataset(name)

    def _directory_layout(self, dirblks: int) -> list[list[tuple[bytes, bytes]]]:
        """Empty directory blocks and the EOF, packed onto tracks by device capacity."""
        first = (b"\xff" * 8, PDS_EMPTY_USED.to_bytes(2, "big") + b"\xff" * 8 + bytes(246))
        rest = (b"\x00" * 8, bytes(DIRBLK_DATALEN))  # Hercules' fill for unused blocks
        records = [first] + [rest] * (dirblks - 1) + [_eof_record()]
        return self._pack(records)

    def _pack(self, records: list[tuple[bytes, bytes]]) -> list[list[tuple[bytes, bytes]]]:
        tracks: list[list[tuple[bytes, bytes]]] = [[]]
        used = 0
        for key, data in records:
            new = self.device.fits(used, len(key), len(data))
            if new is None:
                tracks.append([])
                used = 0
                new = self.device.fits(0, len(key), len(data))
                if new is None:  # pragma: no cover - directory blocks always fit
                    raise FormatError(f"record KL {len(key)} DL {len(data)} fits no track")
            tracks[-1].append((key, data))
            used = new
        return tracks

    def _write_layout(
        self, info: DatasetInfo, layout: list[list[tuple[bytes, bytes]]]
    ) -> tuple[tuple[int, int], int]:
        """Write records track by track from relative track 0; returns (LSTAR, TRBAL)."""
        used = 0
        for tt, records in enumerate(layout):
            trk = self.trk_of(info, tt)
            cyl, head = divmod(trk, self.heads)
            self.image.write_track(trk, build_track(cyl, head, records))
            used = 0
            for key, data in records:
                used = self.device.fits(used, len(key), len(data)) or used
        last = len(layout) - 1
        return (last, len(layout[last])), self.device.track_balance(used)

    # -- extend, scratch, rename, update ----------------------------------------------
    def extend(self, dsname: str, tracks: int) -> DatasetInfo:
        """Add one extent of at least ``tracks`` tracks (whole secondary quantities)."""
        name = dsname.strip().upper()
        where = f"{self.volser}: {name}"
        if not isinstance(tracks, int) or tracks < 1:
            raise FormatError(f"cannot extend by {tracks!r} tracks", self.path, where)
        self._require_writable()
        info = self.dataset(name)
        if info.fmtid != FMT_F1:
            raise UnsupportedError("extending an F8 (EAV) data set", self.path, where)
        if len(info.extents) >= MAX_EXTENTS:
            raise SpaceError(
                f"{name} already has {len(info.extents)} extents (the limit is {MAX_EXTENTS})",
                self.path,
                self.volser,
            )
        unit, _, secondary = info.space
        cyl = unit == "CYL"
        step = secondary * self.heads if cyl else secondary
        if step:
            size = -(-tracks // step) * step
        else:  # no secondary quantity: exactly what was asked, in whole cylinders for CYL
            size = -(-tracks // self.heads) * self.heads if cyl else tracks
        (b, e) = self._find_space(size, cyl, 1, name)[0]
        extents = info.extents + [
            Extent(len(info.extents), b, e, XTTYPE_CYL if cyl else XTTYPE_DATA)
        ]
        ptr = pointer_of(info.f1)
        f3_addr = None
        if len(extents) > F1_EXTENTS:
            existing = [a for a in info.chain if fmt_of(self.vtoc.get(a)) == FMT_F3]
            f3_addr = existing[0] if existing else self._take_slot((info.dscb,))
            ptr = f3_addr
        raw = patch_format1(info.f1, self.heads, extents=extents, ptrds=ptr)
        with self._mutation():
            if f3_addr is not None:
                self.vtoc.put(f3_addr, new_format3(extents[F1_EXTENTS:], self.heads))
            self.vtoc.put(info.dscb, raw)
        return self.dataset(name)

    def scratch(self, dsname: str) -> None:
        """Delete a data set: its F1 and F3 DSCBs become F0; its space becomes free."""
        self._require_writable()
        info = self.dataset(dsname)
        with self._mutation():
            for addr in info.chain:
                self.vtoc.clear(addr)
            self.vtoc.clear(info.dscb)

    def rename(self, old: str, new: str) -> DatasetInfo:
        """Give a data set a new name (its F1 stays where it is in the VTOC)."""
        name = validate_dsname(new)
        self._require_writable()
        info = self.dataset(old)
        if name != info.dsname and self._find(name) is not None:
            raise ConflictError(f"data set {name} already exists", self.path, self.volser)
        with self._mutation(space=False):
            self.vtoc.put(info.dscb, dsname_key(name) + info.f1[44:])
        return self.dataset(name)

    def update(self, dsname: str, **fields) -> DatasetInfo:
        """Rewrite F1 fields.

        Known fields: ``lstar=(tt, r)``, ``trbal``, ``nobdb``, ``recfm`` (text or
        byte), ``lrecl``, ``blksize``, ``keylen``, ``dsorg`` (text or halfword),
        ``refd``/``referenced``, ``created``, ``expires`` (dates or None),
        ``secondary`` (DS1SCAL3).
        """
        changes: dict = {}
        for key, value in fields.items():
            if key == "lstar":
                tt, rec = value
                changes["lstar"] = (int(tt), int(rec))
            elif key in _F1_INTS:
                changes[_F1_INTS[key]] = int(value)
            elif key == "recfm":
                changes["ds1recfm"] = recfm_value(value) if isinstance(value, str) else int(value)
            elif key == "dsorg":
                changes["ds1dsorg"] = dsorg_value(value) if isinstance(value, str) else int(value)
            elif key in _F1_DATES:
                changes[_F1_DATES[key]] = date_to_ydd(value)
            else:
                known = ", ".join(["lstar", "recfm", "dsorg", *_F1_INTS, *_F1_DATES])
                raise UnsupportedError(
                    f"cannot update F1 field {key!r} (known: {known})", self.path, self.volser
                )
        self._require_writable()
        info = self.dataset(dsname)
        where = f"{self.volser} {cchhr_text(info.dscb)}: {info.dsname} F1 DSCB"
        if "lstar" in changes and changes["lstar"] != (0, 0):
            tt = changes["lstar"][0]
            if tt >= info.tracks:
                raise FormatError(
                    f"DS1LSTAR track {tt} is past the data set's {info.tracks} tracks",
                    self.path,
                    where,
                )
        raw = patch_format1(info.f1, self.heads, where, self.path, **changes)
        with self._mutation(space=False):
            self.vtoc.put(info.dscb, raw)
        return self.dataset(info.dsname)

    # -- consistency check ------------------------------------------------------------
    def check(self) -> list[str]:
        """Findings about the label, VTOC and extents; an empty list when all is well."""
        out: list[str] = []
        v = self.vtoc
        f4 = v.f4()
        vs = self.volser
        first_track = v.tracks.get(v.begin) or []
        if not first_track or v.f4_addr != first_track[0]:
            out.append(
                f"{vs} VOL1: VTOC pointer {cchhr_text(v.f4_addr)} is not the first record of "
                f"the VTOC extent (track {cchhr_text(divmod(v.begin, self.heads) + (1,))})"
            )
        f4where = f"{vs} {cchhr_text(v.f4_addr)}: F4 DSCB"
        if (f4.ds4dscyl > self.cyls and f4.ds4dscyl != 0xFFFE) or f4.ds4dstrk != self.heads:
            out.append(
                f"{f4where}: DS4DEVSZ says {f4.ds4dscyl} cylinders of {f4.ds4dstrk} tracks, "
                f"the image has {self.cyls} of {self.heads}"
            )
        if f4.ds4devtk != self.device.track_len:
            out.append(
                f"{f4where}: DS4DEVTK {f4.ds4devtk}, a {self.device.name} track is "
                f"{self.device.track_len}"
            )
        if f4.ds4noext != 1:
            out.append(f"{f4where}: DS4NOEXT is {f4.ds4noext}, not 1")
        vtoci = f4.ds4vtoci
        if vtoci & DS4DIRF:
            out.append(f"{f4where}: DS4DIRF is set (a VTOC update was interrupted)")
        infos, problems = self._scan()
        out.extend(f"{p.where}: {p.message}" for p in problems)
        out.extend(self._check_datasets(infos))
        if not vtoci & DS4IVTOC:  # an index keeps its own counts (FORMATS.md 5.2)
            out.extend(self._check_counts(f4, f4where))
            if vtoci & DS4EFVLD:
                out.extend(self._check_f7(f4, f4where))
            elif not vtoci & DS4DOSBT:
                out.extend(self._check_f5())
        return out

    def _check_datasets(self, infos: list[DatasetInfo]) -> list[str]:
        out = []
        total = self.image.total_tracks
        owners: list[tuple[int, int, str]] = [(0, 0, "track 0 (VOL1)")]
        owners.append((self.vtoc.begin, self.vtoc.end, "the VTOC"))
        seen: dict[str, Cchhr] = {}
        for info in infos:
            where = f"{self.volser} {cchhr_text(info.dscb)}: {info.dsname}"
            if info.dsname in seen:
                out.append(f"{where}: same name as the DSCB at {cchhr_text(seen[info.dsname])}")
            seen.setdefault(info.dsname, info.dscb)
            if info.noepv != len(info.extents):
                out.append(
                    f"{where}: DS1NOEPV says {info.noepv} extents, the DSCBs hold "
                    f"{len(info.extents)}"
                )
            if len(info.extents) > MAX_EXTENTS and info.dsorg not in ("VS", "VSU"):
                out.append(f"{where}: {len(info.extents)} extents (more than {MAX_EXTENTS})")
            for n, ext in enumerate(info.extents, 1):
                if ext.end >= total:
                    continue  # already reported by _scan
                if ext.xttype == XTTYPE_CYL and (
                    ext.begin % self.heads or (ext.end + 1) % self.heads
                ):
                    out.append(f"{where}: extent {n} has type X'81' but is not whole cylinders")
                owners.append((ext.begin, ext.end, f"{info.dsname} extent {n}"))
        owners.sort()
        reach_end, reach_who = -1, ""
        for b, e, who in owners:
            if b <= reach_end:
                out.append(f"{self.volser}: {who} ({_span(b, e, self.heads)}) overlaps {reach_who}")
            if e > reach_end:
                reach_end, reach_who = e, f"{who} ({_span(b, e, self.heads)})"
        return out

    def _check_counts(self, f4, f4where: str) -> list[str]:
        out = []
        v = self.vtoc
        free = len(v.free_slots())
        if f4.ds4dsrec != free:
            out.append(f"{f4where}: DS4DSREC says {f4.ds4dsrec} free DSCBs, the VTOC has {free}")
        hp = (f4.ds4hpchr.cyl, f4.ds4hpchr.head, f4.ds4hpchr.rec)
        order = {a: i for i, a in enumerate(v.slots)}
        if hp not in order:
            out.append(f"{f4where}: DS4HPCHR {cchhr_text(hp)} is not a DSCB of the VTOC")
        else:
            beyond = [a for a, _ in v.identifiers() if order[a] > order[hp]]
            if beyond:
                out.append(
                    f"{f4where}: DS4HPCHR {cchhr_text(hp)} is before the data set DSCB at "
                    f"{cchhr_text(beyond[-1])}"
                )
        return out

    def _check_f5(self) -> list[str]:
        where = f"{self.volser} F5 DSCB"
        try:
            chain = self.vtoc.f5_chain()
        except FormatError as exc:
            return [f"{exc.where}: {exc.message}"]
        if not chain:
            return [f"{where}: no Format-5 DSCB, and DS4VTOCI does not mark it invalid"]
        try:
            listed = f5_free([r for _, r in chain], self.heads, where, self.path)
        except FormatError as exc:
            return [f"{exc.where}: {exc.message}"]
        return self._compare_free("F5", where, listed)

    def _check_f7(self, f4, f4where: str) -> list[str]:
        where = f"{self.volser} F7 DSCB"
        out = []
        if f4.ds4eflvl != DS4EFLVL_F7:
            out.append(
                f"{f4where}: DS4EFVLD is set but DS4EFLVL is X'{f4.ds4eflvl:02X}', not X'07'"
            )
        try:
            chain = self.vtoc.f7_chain()
            listed = f7_free([r for _, r in chain], where, self.path)
        except FormatError as exc:
            return out + [f"{exc.where}: {exc.message}"]
        if not chain:
            return out + [f"{f4where}: DS4EFVLD is set but DS4EFPTR names no Format-7 DSCB"]
        return out + self._compare_free("F7", where, listed)

    def _compare_free(self, kind: str, where: str, listed: list[tuple[int, int]]) -> list[str]:
        """A finding when the free extents a chain lists are not exactly the free space."""
        ordered = sorted(listed)
        overlaps = [(a, b) for a, b in zip(ordered, ordered[1:], strict=False) if b[0] <= a[1]]
        out = [
            f"{where}: {kind} extents {_span(*a, self.heads)} and {_span(*b, self.heads)} overlap"
            for a, b in overlaps[:3]
        ]
        listed = merge(listed)
        actual = self.free_extents()
        if listed == actual:
            return out
        extra = [x for x in listed if x not in actual][:3]
        missing = [x for x in actual if x not in listed][:3]
        text = "; ".join(
            [f"{kind} lists {_span(b, e, self.heads)}" for b, e in extra]
            + [f"free but not in {kind}: {_span(b, e, self.heads)}" for b, e in missing]
        )
        return out + [f"{where}: free space disagrees with the extents ({text})"]


# -- helpers -------------------------------------------------------------------------
_F1_INTS = {
    "trbal": "ds1trbal",
    "nobdb": "ds1nobdb",
    "lrecl": "ds1lrecl",
    "blksize": "ds1blkl",
    "keylen": "ds1keyl",
    "secondary": "ds1scal3",
}
_F1_DATES = {
    "refd": "ds1refd",
    "referenced": "ds1refd",
    "created": "ds1credt",
    "expires": "ds1expdt",
}


def _span(b: int, e: int, heads: int) -> str:
    return f"{b // heads}/{b % heads}-{e // heads}/{e % heads}"


def _hpchr(v: Vtoc) -> Cchhr:
    """DS4HPCHR: the last F1/F8 DSCB, or the last non-empty DSCB when there is none."""
    ids = v.identifiers()
    if ids:
        return ids[-1][0]
    last = v.f4_addr
    for addr, raw in v.items():
        if fmt_of(raw) != FMT_F0:
            last = addr
    return last


def _space_spec(space, path, where: str) -> tuple[str, int, int]:
    try:
        unit, primary, *rest = space
        secondary = rest[0] if rest else 0
        unit = str(unit).upper()
        primary, secondary = int(primary), int(secondary)
    except (TypeError, ValueError):
        raise FormatError(
            f'space {space!r} must be ("TRK" or "CYL", primary, secondary)', path, where
        ) from None
    if unit not in ("TRK", "CYL"):
        raise FormatError(f"space unit {unit!r} must be TRK or CYL", path, where)
    if not 1 <= primary <= 0xFFFFFF or not 0 <= secondary <= 0xFFFFFF:
        raise FormatError(
            f"primary {primary} must be 1..16777215 and secondary {secondary} 0..16777215",
            path,
            where,
        )
    return unit, primary, secondary


def vtoc_tracks(device: Device, cyls: int) -> int:
    """How many tracks the VTOC of a new volume gets.

    The rest of cylinder 0 (14 tracks on 3390/3380), or enough DSCBs for about one data
    set per 10 cylinders when that is more, then rounded so data space starts on a
    cylinder boundary.  One track on a one-cylinder volume.
    """
    heads = device.heads
    per_track = device.records_per_track(44, 96)
    want = -(-(cyls // 10 + 3) // per_track)
    if cyls == 1:
        return min(want, heads - 1)
    tracks = max(want, heads - 1)
    return -(-(tracks + 1) // heads) * heads - 1


def vtoc_size(device: Device, cyls: int, wanted: int | None = None, path=None) -> int:
    """The VTOC size of a new volume: ``wanted`` tracks (checked) or the default rule."""
    if wanted is None:
        return vtoc_tracks(device, cyls)
    total = cyls * device.heads
    per_track = device.records_per_track(44, 96)
    if isinstance(wanted, bool) or not isinstance(wanted, int) or not 1 <= wanted < total:
        raise FormatError(
            f"VTOC size {wanted!r} must be 1..{total - 1} tracks (track 0 holds the label)",
            path,
        )
    if wanted * per_track > 0xFFFF + 3:
        # DS4DSREC, the count of free DSCBs, is a halfword.
        raise FormatError(
            f"a VTOC of {wanted} tracks holds {wanted * per_track} DSCBs; DS4DSREC counts "
            "at most 65535 free ones",
            path,
        )
    return wanted


def _format_volume(image: DasdImage, volser: str, owner: str, ntracks: int) -> None:
    """Write track 0 (IPL1, IPL2, VOL1) and an empty VTOC from 0/1: F4, F5, on volumes
    of more than 65535 tracks an F7 listing the free space, then F0s."""
    dev = image.device
    heads = image.heads
    vtoc_begin, vtoc_end = 1, ntracks
    owner_text = owner.upper() if len(owner) > 10 else "    " + owner.upper()
    vol1 = Vol1.build(
        dict(
            vol1id=VOL1_KEY,
            vol1vser=codepage.blank_pad(volser, 6),
            vol1fsct=VOL1_SECURITY,
            vol1vtoc=dict(cyl=0, head=1, rec=1),
            vol1rsv1=b"\x40" * 21,
            vol1ownr=codepage.blank_pad(owner_text[:14], 14),
            vol1rsv2=b"\x40" * 29,
        )
    )
    image.write_track(
        0,
        build_track(0, 0, [(IPL1_KEY, IPL1_DATA), (IPL2_KEY, bytes(IPL2_LEN)), (VOL1_KEY, vol1)]),
    )
    per_track = dev.records_per_track(44, 96)
    total = image.total_tracks
    small = total <= F5_MAX_TRACKS
    free = [(vtoc_end + 1, total - 1)] if vtoc_end + 1 < total else []
    f5 = build_f5(f5_entries(free, heads) if small else [])
    bcyl, btrk = divmod(vtoc_begin, heads)
    ecyl, etrk = divmod(vtoc_end, heads)
    # The F7 follows the F5 (R3), as s390-tools and Hercules place it; the last
    # non-empty DSCB is DS4HPCHR while there is no F1.
    last_rec = 2 if small else 3
    efptr = bytes(5) if small else bcyl.to_bytes(2, "big") + btrk.to_bytes(2, "big") + b"\x03"
    f4 = Format4.build(
        dict(
            ds4keyid=b"\x04" * 44,
            ds4idfmt=0xF4,
            ds4hpchr=dict(cyl=bcyl, head=btrk, rec=last_rec),
            ds4dsrec=ntracks * per_track - last_rec,
            ds4hcchh=image.cyls.to_bytes(2, "big") + b"\x00\x00",
            ds4noatk=0,
            ds4vtoci=0 if small else DS4DOSBT | DS4EFVLD,
            ds4noext=1,
            ds4smsfg=0,
            ds4devac=0,
            ds4dscyl=image.cyls,
            ds4dstrk=heads,
            ds4devtk=dev.track_len,
            ds4devi=0,
            ds4devl=0,
            ds4devk=0,
            ds4devfg=dev.dsind_devfg,
            ds4devtl=0,
            ds4devdt=per_track,
            ds4devdb=dev.records_per_track(DIRBLK_KEYLEN, DIRBLK_DATALEN),
            ds4amtim=bytes(8),
            ds4amcat=bytes(3),
            ds4r2tim=bytes(8),
            ds4res1=bytes(5),
            ds4f6ptr=bytes(5),
            ds4vtoce=dict(
                xttype=XTTYPE_DATA, xtseqn=0, xtbcyl=bcyl, xtbtrk=btrk, xtecyl=ecyl, xtetrk=etrk
            ),
            ds4res2=bytes(10),
            ds4eflvl=0 if small else DS4EFLVL_F7,
            ds4efptr=efptr,
            ds4res3=0,
            ds4dcyl=0,
            ds4res4=bytes(2),
            ds4devf2=0,
            ds4res5=0,
        )
    )
    empty = bytes(DSCB_SIZE)
    for trk in range(vtoc_begin, vtoc_end + 1):
        slots = [empty] * per_track
        if trk == vtoc_begin:
            slots[0], slots[1] = f4, f5
            if not small:
                slots[2] = build_f7(f7_entries(free))
        cyl, head = divmod(trk, heads)
        image.write_track(trk, build_track(cyl, head, [(s[:44], s[44:]) for s in slots]))


__all__ = ["Volume", "validate_volser", "vtoc_tracks", "vtoc_size", "MAX_CYLS"]
