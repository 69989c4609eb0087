"""Compressed CKD images: CCKD (``CKD_C370``) and CCKD64 (``CKD_C064``) (FORMATS.md 2).

File layout (FORMATS.md 2.1, 2.7): device header (512) || compressed device header
(CDH, 512) || L1 table at 1024 || then, in any order, L2 tables, track images and
free space.  ``L1[trk >> 8]`` locates an L2 table, whose entry ``[trk & 255]`` locates
the stored track image (compression byte, CC HH, then the rest of the track raw, as a
zlib stream or as a bzip2 stream; FORMATS.md 2.5).

Reading checks every offset and length against the file before use, bounds the
decompressed size by the track-slot size, and checks the home address against the
track number; anything wrong becomes a :class:`FormatError` naming the file and the
track (cyl/head).

Writing (one commit at a time, through :func:`emulator.image.journal.apply_writes` so
a crash leaves the old file or the new one): new track images and new L2 tables go
into free space (best fit, never leaving a gap smaller than a free-space entry) or at
the end of the file; the space they replace becomes free space.  After each commit
the header statistics, the free-space table (``FREE_BLK`` form, FORMATS.md 2.6) and
L1/L2 describe the file exactly as ``cckdcdsk -3`` expects: ``cdh_size`` is the file
size and every gap between allocated spaces is one free-space entry.  The OPENED bit
is left as found: a writable open refuses a file that has it unless told to ignore it
(:func:`open_cckd`), and then it stays set for ``cckdcdsk`` or the emulator to clear.
The file never shrinks (a trailing gap is recorded as free space).
"""

from __future__ import annotations

import bisect
import bz2
import os
import zlib

import numpy as np

from emulator.errors import ConflictError, FormatError, UnsupportedError
from emulator.geometry import Device
from emulator.image.base import DasdImage
from emulator.image.journal import apply_writes
from emulator.image.lock import WriterLock
from emulator.layouts import dtype_of, parse_at
from emulator.layouts.ckd import (
    CDH_SIZE,
    COMPRESS_BZIP2,
    COMPRESS_NONE,
    COMPRESS_ZLIB,
    DEVHDR_SIZE,
    FREE_MAGIC,
    HA_SIZE,
    L1_POS,
    L2_ENTRIES,
    OPT_BIGEND,
    OPT_NOFUDGE,
    OPT_OPENED,
    OPT_OPENRW,
    OPT_SPERRS,
    CompressedTrackHeader,
    cdh_layout,
    freeblk_layout,
    l1_entry_size,
    l2_layout,
)

VRM = b"\x00\x03\x01"
NULLFMT_MAX = 2  # L2 len 0, 1, 2 with trkoff 0 select a null-track format (1.5)
MIN_COMPRESS = 512  # images shorter than this are stored uncompressed (2.5)
MAX_CYLS = 0xFFFF  # CC in the home address is two bytes
_ALGOS = {"none": COMPRESS_NONE, "zlib": COMPRESS_ZLIB, "bzip2": COMPRESS_BZIP2}
_ALGO_NAMES = {v: k for k, v in _ALGOS.items()}
#: Length of each null-track format's image -> format (FORMATS.md 1.5).
_NULL_SIZES = {29: 1, 37: 0, 49277: 2}


def _u(cckd64: bool, bigend: bool) -> np.dtype:
    """Dtype of one L1 entry."""
    return np.dtype(f"{'>' if bigend else '<'}u{l1_entry_size(cckd64)}")


class _Space:
    """The free gaps of a CCKD file while a commit is planned.

    ``gaps`` is sorted by offset and no two gaps touch.  Allocation is best fit and
    never leaves a remainder smaller than one free-space entry (Hercules' own rule,
    so that the old chained form could always describe the file).
    """

    def __init__(self, gaps: list[tuple[int, int]], size: int, lopos: int, fbsize: int):
        self.gaps = [list(g) for g in gaps]
        self.size = size
        self.lopos = lopos
        self.fbsize = fbsize

    def get(self, length: int) -> int:
        best = None
        for idx, (off, glen) in enumerate(self.gaps):
            if off < self.lopos:
                continue
            if (glen == length or glen >= length + self.fbsize) and (
                best is None or glen < self.gaps[best][1]
            ):
                best = idx
                if glen == length:
                    break
        if best is not None:
            off, glen = self.gaps[best]
            if glen == length:
                del self.gaps[best]
            else:
                self.gaps[best] = [off + length, glen - length]
            return off
        # Grow the file.  A gap at the very end that is not longer than the request is
        # used first so no tail gap is left; a longer one (too short to split, see the
        # best-fit rule) stays free: the file never shrinks, so using it would leave
        # bytes past the recorded size.
        if self.gaps and sum(self.gaps[-1]) == self.size and self.gaps[-1][1] <= length:
            off = self.gaps.pop()[0]
        else:
            off = self.size
        self.size = off + length
        return off

    def release(self, off: int, length: int) -> None:
        idx = bisect.bisect_left(self.gaps, [off, 0])
        start, end = off, off + length
        if idx > 0 and sum(self.gaps[idx - 1]) == start:
            idx -= 1
            start = self.gaps[idx][0]
            del self.gaps[idx]
        if idx < len(self.gaps) and self.gaps[idx][0] == end:
            end = sum(self.gaps[idx])
            del self.gaps[idx]
        self.gaps.insert(idx, [start, end - start])

    def extend_tail(self, length: int) -> None:
        """Add ``length`` free bytes at the end of the file."""
        if self.gaps and sum(self.gaps[-1]) == self.size:
            self.gaps[-1][1] += length
        else:
            self.gaps.append([self.size, length])
        self.size += length


class CckdImage(DasdImage):
    """A CCKD or CCKD64 image file (base file only; shadow files are refused)."""

    kind = "cckd"

    def __init__(
        self,
        path: str,
        device: Device,
        cyls: int,
        trksize: int,
        writable: bool,
        cckd64: bool,
        bigend: bool,
        cdh_raw: bytes,
        lock: WriterLock | None = None,
    ):
        super().__init__(path, device, cyls, trksize, writable, lock)
        self.kind = "cckd64" if cckd64 else "cckd"
        self.cckd64 = cckd64
        self.bigend = bigend
        self._cdh_layout = cdh_layout(cckd64, bigend)
        self._l2_dtype = dtype_of(l2_layout(cckd64, bigend))
        self._l1_dtype = _u(cckd64, bigend)
        self._fb_layout = freeblk_layout(cckd64, bigend)
        self.fbsize = self._fb_layout.sizeof()
        self.l2size = L2_ENTRIES * self._l2_dtype.itemsize
        self.allones = (1 << (64 if cckd64 else 32)) - 1
        self._fh = open(path, "r+b" if writable else "rb")  # noqa: SIM115 - closed in _close
        try:
            self._setup(cdh_raw)
        except BaseException:
            self._fh.close()
            raise

    def _setup(self, cdh_raw: bytes) -> None:
        self._broken: str | None = None
        self._load_header(cdh_raw)
        self.num_l1 = self.cdh.num_L1tab
        self.lopos = L1_POS + self.num_l1 * self._l1_dtype.itemsize
        self.filesize = os.fstat(self._fh.fileno()).st_size
        if self.filesize < self.lopos:
            raise FormatError(
                f"file is {self.filesize} bytes, too short for its {self.num_l1}-entry L1 table",
                self.path,
            )
        raw_l1 = self._pread(L1_POS, self.lopos - L1_POS)
        self.l1 = np.frombuffer(raw_l1, dtype=self._l1_dtype).astype(np.uint64)
        self._l2: dict[int, np.ndarray] = {}
        self._gaps: list[tuple[int, int]] | None = None  # known free gaps (after a scan)
        self._imbed = 0

    # -- header ---------------------------------------------------------------------
    def _load_header(self, cdh_raw: bytes) -> None:
        self.cdh_raw = bytes(cdh_raw)
        self.cdh = parse_at(
            self._cdh_layout, self.cdh_raw, 0, "compressed device header", self.path
        )
        self.nullfmt = self.cdh.cdh_nullfmt
        if self.nullfmt > NULLFMT_MAX:
            # Hercules treats an unknown null format as format 0 when it opens a file.
            self.nullfmt = 0
        self.cmp_algo = self.cdh.cmp_algo
        self.cmp_parm = self.cdh.cmp_parm

    @property
    def compression(self) -> str:
        """Default compression of new track images: "none", "zlib" or "bzip2"."""
        return _ALGO_NAMES.get(self.cmp_algo, f"unknown({self.cmp_algo})")

    @property
    def opened(self) -> bool:
        """True when the header says a writer did not close the file cleanly."""
        return bool(self.cdh.cdh_opts & OPT_OPENED)

    # -- low-level I/O --------------------------------------------------------------
    def _pread(self, offset: int, length: int, where: str = "") -> bytes:
        data = os.pread(self._fh.fileno(), length, offset)
        if len(data) != length:
            raise FormatError(
                f"file ends at {self.filesize}, reading {length} bytes at offset {offset}",
                self.path,
                where,
            )
        return data

    def _bad(self, trk: int, message: str) -> FormatError:
        return FormatError(message, self.path, self.where(trk))

    # -- tables ---------------------------------------------------------------------
    def _l1_entry(self, l1x: int) -> int:
        return int(self.l1[l1x])

    def _is_null_off(self, off: int) -> bool:
        return off == 0 or off == self.allones

    def _l2_table(self, l1x: int, where: str = "") -> np.ndarray | None:
        """The L2 table of group ``l1x`` (None when L1 says the whole group is null)."""
        tab = self._l2.get(l1x)
        if tab is not None:
            return tab
        off = self._l1_entry(l1x)
        if self._is_null_off(off):
            return None
        if off < self.lopos or off + self.l2size > self.filesize:
            raise FormatError(
                f"L1 entry {l1x} points to offset {off}: L2 table would lie outside "
                f"{self.lopos}..{self.filesize}",
                self.path,
                where,
            )
        raw = self._pread(off, self.l2size, where)
        tab = np.frombuffer(raw, dtype=self._l2_dtype).copy()
        self._l2[l1x] = tab
        return tab

    def _entry(self, trk: int) -> tuple[int, int, int]:
        """(trkoff, len, size) of ``trk``; trkoff 0 means a null track of format len."""
        tab = self._l2_table(trk >> 8, self.where(trk))
        if tab is None:
            return 0, self.nullfmt, self.nullfmt
        ent = tab[trk & 0xFF]
        return int(ent["trkoff"]), int(ent["len"]), int(ent["size"])

    def _null_format(self, length: int) -> int:
        """Null-track format of an L2 entry with trkoff 0 (as Hercules cckd_null_trk)."""
        if length > NULLFMT_MAX:
            return self.nullfmt
        if length == 0 and self.nullfmt == 2:
            return 2  # compatibility quirk for old Linux-formatted images
        return length

    # -- reading --------------------------------------------------------------------
    def _read_raw(self, trk: int) -> bytes:
        if self._broken:
            raise ConflictError(self._broken, self.path)
        from emulator.track import null_track, track_length

        cyl, head = divmod(trk, self.heads)
        off, length, size = self._entry(trk)
        if self._is_null_off(off):
            return null_track(cyl, head, self._null_format(length))
        stored = self.read_stored(trk, (off, length, size))
        comp = stored[0]
        hdr = parse_at(CompressedTrackHeader, stored, 0, self.where(trk), self.path)
        if (hdr.cyl, hdr.head) != (cyl, head):
            raise self._bad(
                trk, f"track image at offset {off} says it is track {hdr.cyl}/{hdr.head}"
            )
        body = self._decompress(trk, comp, stored[HA_SIZE:], off)
        image = b"\x00" + stored[1:HA_SIZE] + body
        try:
            return image[: track_length(image)]
        except FormatError as exc:
            raise exc.located(self.path, self.where(trk)) from None

    def stored_entry(self, trk: int) -> tuple[int, int, int]:
        """The L2 entry of ``trk``: (trkoff, len, size); trkoff 0 means a null track of
        the format that ``len`` selects (FORMATS.md 2.4; a shadow file's all-ones
        offset is given as 0 too).  With :meth:`read_stored` it tells a reader cheaply
        whether a track's stored bytes changed."""
        self._check_trk(trk)
        if self._broken:
            raise ConflictError(self._broken, self.path)
        off, length, size = self._entry(trk)
        return (0 if self._is_null_off(off) else off), length, size

    def track_bytes(self, trk: int) -> bytes:
        """The uncompressed image of ``trk`` as stored: like :meth:`read_track` but not
        cut at the end-of-track marker and not cached (for bulk readers that walk the
        count fields themselves, bounded by the slot).  The stored bytes' offset,
        length, home address and decompressed size are checked as for read_track."""
        self._check_trk(trk)
        if self._broken:
            raise ConflictError(self._broken, self.path)
        cyl, head = divmod(trk, self.heads)
        entry = self._entry(trk)
        if self._is_null_off(entry[0]):
            from emulator.track import null_track

            return null_track(cyl, head, self._null_format(entry[1]))
        stored = self.read_stored(trk, entry)
        if stored[1:HA_SIZE] != cyl.to_bytes(2, "big") + head.to_bytes(2, "big"):
            raise self._bad(trk, f"track image at offset {entry[0]} is for another track")
        body = self._decompress(trk, stored[0], stored[HA_SIZE:], entry[0])
        return b"\x00" + stored[1:HA_SIZE] + body

    def generation(self) -> tuple:
        """As :meth:`DasdImage.generation`, plus the compressed device header as it
        is on disk now (a writer rewrites it on every commit)."""
        return super().generation() + (os.pread(self._fh.fileno(), CDH_SIZE, DEVHDR_SIZE),)

    def read_stored(self, trk: int, entry: tuple[int, int, int] | None = None) -> bytes:
        """The bytes stored for ``trk`` (compression byte, CCHH, body); b"" if null."""
        off, length, size = entry if entry is not None else self._entry(trk)
        if self._is_null_off(off):
            return b""
        if length < HA_SIZE:
            raise self._bad(trk, f"L2 entry length {length} is shorter than a track header")
        if length > size:
            raise self._bad(trk, f"L2 entry length {length} exceeds its space size {size}")
        if length > self.trksize:
            raise self._bad(trk, f"L2 entry length {length} exceeds the track size {self.trksize}")
        if off < self.lopos or off + length > self.filesize:
            raise self._bad(
                trk,
                f"track image at offset {off} length {length} lies outside "
                f"{self.lopos}..{self.filesize}",
            )
        return self._pread(off, length, self.where(trk))

    def _decompress(self, trk: int, comp: int, data: bytes, off: int) -> bytes:
        limit = self.trksize - HA_SIZE
        if comp == COMPRESS_NONE:
            return data
        if comp == COMPRESS_ZLIB:
            dec = zlib.decompressobj()
            try:
                out = dec.decompress(data, limit + 1)
            except zlib.error as exc:
                raise self._bad(trk, f"zlib data at offset {off} is corrupt: {exc}") from None
            complete = dec.eof
        elif comp == COMPRESS_BZIP2:
            dec = bz2.BZ2Decompressor()
            try:
                out = dec.decompress(data, limit + 1)
            except (OSError, ValueError, EOFError) as exc:
                raise self._bad(trk, f"bzip2 data at offset {off} is corrupt: {exc}") from None
            complete = dec.eof
        else:
            raise self._bad(trk, f"unknown compression code {comp} at offset {off}")
        if len(out) > limit:
            raise self._bad(
                trk, f"compressed image at offset {off} expands past the track size {self.trksize}"
            )
        if not complete:
            raise self._bad(trk, f"compressed image at offset {off} is truncated")
        return out

    # -- free space as recorded in the header ---------------------------------------
    def read_free_space(self) -> list[tuple[int, int]]:
        """The free spaces the header records, as (offset, length), in either form.

        New form: a ``FREE_BLK`` array at ``free_off``; old form: a chain through the
        free spaces themselves (FORMATS.md 2.6).  The walk is bounded by ``free_num``.
        """
        free_off, free_num = self.cdh.free_off, self.cdh.free_num
        where = "free space"
        if free_off == 0:
            if free_num != 0:
                raise FormatError(f"free_num is {free_num} but free_off is 0", self.path, where)
            return []
        if free_num <= 0 or free_num > self.filesize // self.fbsize:
            raise FormatError(f"free_num {free_num} is impossible", self.path, where)
        if free_off < self.lopos or free_off + self.fbsize > self.filesize:
            raise FormatError(f"free_off {free_off} is outside the file", self.path, where)
        first = self._pread(free_off, self.fbsize, where)
        out: list[tuple[int, int]] = []
        if first[:8] == FREE_MAGIC:
            end = free_off + (free_num + 1) * self.fbsize
            if end > self.filesize:
                raise FormatError(
                    f"FREE_BLK table at {free_off} runs past the end of the file", self.path, where
                )
            raw = self._pread(free_off + self.fbsize, free_num * self.fbsize, where)
            for i in range(free_num):
                ent = parse_at(self._fb_layout, raw, i * self.fbsize, where, self.path)
                out.append((ent.fb_offnxt, ent.fb_len))
            return out
        off = free_off
        for i in range(free_num):
            if off < self.lopos or off + self.fbsize > self.filesize:
                raise FormatError(
                    f"free-space chain entry {i} at offset {off} is outside the file",
                    self.path,
                    where,
                )
            ent = parse_at(
                self._fb_layout, self._pread(off, self.fbsize, where), 0, where, self.path
            )
            out.append((off, ent.fb_len))
            nxt = ent.fb_offnxt
            if i == free_num - 1:
                if nxt != 0:
                    raise FormatError(
                        f"free-space chain has more than free_num={free_num} entries",
                        self.path,
                        where,
                    )
            elif nxt <= off:
                raise FormatError(
                    f"free-space chain entry {i} at {off} links backwards to {nxt}",
                    self.path,
                    where,
                )
            off = nxt
        return out

    # -- space map ------------------------------------------------------------------
    def _scan_space(self) -> tuple[list[tuple[int, int]], int, int]:
        """Gaps between allocated spaces, the imbedded free bytes and the used bytes.

        Allocated spaces are the headers, L1, every L2 table and every track image
        (its L2 ``size``), as ``cckdcdsk`` counts them.  Overlaps are errors.
        """
        offs = [np.array([0, L1_POS], dtype=np.uint64)]
        sizes = [np.array([L1_POS, self.lopos - L1_POS], dtype=np.uint64)]
        lens = [np.array([L1_POS, self.lopos - L1_POS], dtype=np.uint64)]
        imbed = 0
        for l1x in range(self.num_l1):
            tab = self._l2_table(l1x, f"L2 table {l1x}")
            if tab is None:
                continue
            offs.append(np.array([self._l1_entry(l1x)], dtype=np.uint64))
            sizes.append(np.array([self.l2size], dtype=np.uint64))
            lens.append(np.array([self.l2size], dtype=np.uint64))
            trkoff = tab["trkoff"].astype(np.uint64)
            real = (trkoff != 0) & (trkoff != np.uint64(self.allones))
            if not real.any():
                continue
            tlen = tab["len"][real].astype(np.uint64)
            tsize = tab["size"][real].astype(np.uint64)
            toff = trkoff[real]
            # Offsets are checked before any sum so a wild 64-bit offset cannot wrap.
            bad = (tlen < HA_SIZE) | (tlen > tsize) | (tlen > self.trksize)
            outside = (toff < np.uint64(self.lopos)) | (toff > np.uint64(self.filesize))
            if outside.any():
                idx = int(np.nonzero(real)[0][np.argmax(outside)])
                raise self._bad(
                    l1x * L2_ENTRIES + idx,
                    f"track image offset {int(tab['trkoff'][idx])} lies outside "
                    f"{self.lopos}..{self.filesize}",
                )
            if bad.any():
                idx = int(np.nonzero(real)[0][np.argmax(bad)])
                trk = l1x * L2_ENTRIES + idx
                raise self._bad(
                    trk, f"L2 entry length {int(tab['len'][idx])} size {int(tab['size'][idx])}"
                )
            imbed += int((tsize - tlen).sum())
            offs.append(toff)
            sizes.append(tsize)
            lens.append(tlen)
        off = np.concatenate(offs)
        size = np.concatenate(sizes)
        used = int(np.concatenate(lens).sum())
        order = np.argsort(off, kind="stable")
        off, size = off[order], size[order]
        end = off + size
        if int(end.max()) > self.filesize:
            idx = int(np.argmax(end))
            raise FormatError(
                f"space at offset {int(off[idx])} length {int(size[idx])} runs past the end "
                f"of the file ({self.filesize}); run cckdcdsk on it",
                self.path,
            )
        if len(off) > 1:
            overlap = end[:-1] > off[1:]
            if overlap.any():
                idx = int(np.argmax(overlap))
                raise FormatError(
                    f"space at offset {int(off[idx])} length {int(size[idx])} overlaps the one "
                    f"at {int(off[idx + 1])}; run cckdcdsk on it",
                    self.path,
                )
        nxt = np.append(off[1:], np.uint64(self.filesize))
        gap = nxt - end
        has = gap > 0
        gaps = list(zip(end[has].tolist(), gap[has].tolist(), strict=True))
        return gaps, imbed, used

    def check(self) -> list[str]:
        """Differences between the header's space statistics and the file (empty if
        none), as ``cckdcdsk`` level 1 would find them."""
        gaps, imbed, used = self._scan_space()
        problems = []
        want = {
            "cdh_size": self.filesize,
            "cdh_used": used,
            "free_num": len(gaps),
            "free_total": sum(g for _, g in gaps) + imbed,
            "free_largest": max((g for _, g in gaps), default=0),
            "free_imbed": imbed,
        }
        for name, value in want.items():
            if self.cdh[name] != value:
                problems.append(f"{name} is {self.cdh[name]}, expected {value}")
        try:
            recorded = self.read_free_space()
        except FormatError as exc:
            problems.append(exc.message)
        else:
            if recorded != gaps:
                problems.append("recorded free space does not match the gaps in the file")
        if self.cdh.cdh_opts & OPT_OPENED:
            problems.append("OPENED bit is set (not closed cleanly)")
        return problems

    # -- writing --------------------------------------------------------------------
    def _stored_image(self, image: bytes) -> bytes:
        """The bytes to store for a track image: compressed with the image's algorithm
        unless that is not smaller, or the image is under 512 bytes."""
        body = image[HA_SIZE:]
        if len(image) >= MIN_COMPRESS and self.cmp_algo != COMPRESS_NONE:
            if self.cmp_algo == COMPRESS_ZLIB:
                level = self.cmp_parm if 0 <= self.cmp_parm <= 9 else -1
                packed = zlib.compress(body, level)
            else:
                level = self.cmp_parm if 1 <= self.cmp_parm <= 9 else 9
                packed = bz2.compress(body, level)
            if HA_SIZE + len(packed) < len(image):
                return bytes([self.cmp_algo]) + image[1:HA_SIZE] + packed
        return b"\x00" + image[1:HA_SIZE] + body

    def _null_code(self, trk: int, image: bytes) -> int | None:
        """The L2 len that makes Hercules rebuild exactly ``image``, or None."""
        from emulator.track import null_track

        fmt = _NULL_SIZES.get(len(image))
        if fmt is None or self._null_format(fmt) != fmt:
            return None
        return fmt if image == null_track(*divmod(trk, self.heads), fmt) else None

    def _l2_value(self, off: int, length: int) -> tuple[int, ...]:
        """An L2 entry {trkoff, len, size(, pad)} with no imbedded free space."""
        return (off, length, length, 0) if self.cckd64 else (off, length, length)

    def _check_unchanged(self) -> None:
        """Refuse to commit if another writer changed the header since we read it."""
        now = os.pread(self._fh.fileno(), CDH_SIZE, DEVHDR_SIZE)
        size = os.fstat(self._fh.fileno()).st_size
        if now != self.cdh_raw or size != self.filesize:
            raise ConflictError(
                "the image file was changed by another program since it was opened", self.path
            )

    def _commit_tracks(
        self, tracks: dict[int, bytes | memoryview], slots: dict[int, memoryview]
    ) -> None:
        if self._broken:
            raise ConflictError(self._broken, self.path)
        if not self.writable:
            raise ConflictError("image is open read-only", self.path)
        self._check_unchanged()
        if self._gaps is None:
            self._gaps, self._imbed, _ = self._scan_space()
        space = _Space(self._gaps, self.filesize, self.lopos, self.fbsize)
        imbed = self._imbed
        l1 = self.l1.copy()
        new_l2: dict[int, np.ndarray] = {}
        writes: list[tuple[int, bytes]] = []

        def table(l1x: int) -> np.ndarray:
            tab = new_l2.get(l1x)
            if tab is None:
                old = self._l2_table(l1x, f"L2 table {l1x}")
                if old is None:
                    tab = np.zeros(L2_ENTRIES, dtype=self._l2_dtype)
                    tab["len"] = self.nullfmt
                    tab["size"] = self.nullfmt
                else:
                    tab = old.copy()
                new_l2[l1x] = tab
            return tab

        for trk, staged in sorted(tracks.items()):
            image = bytes(staged)  # compressed from bytes; a staged slot row is copied once
            l1x, l2x = divmod(trk, L2_ENTRIES)
            tab = table(l1x)
            old_off, old_len, old_size = (int(tab[l2x][k]) for k in ("trkoff", "len", "size"))
            if not self._is_null_off(old_off):
                space.release(old_off, old_size)
                imbed -= old_size - old_len
            code = self._null_code(trk, image)
            if code is not None:
                tab[l2x] = self._l2_value(0, code)
                continue
            stored = self._stored_image(image)
            off = space.get(len(stored))
            writes.append((off, stored))
            tab[l2x] = self._l2_value(off, len(stored))

        for l1x, tab in sorted(new_l2.items()):
            old_off = int(l1[l1x])
            all_null = bool((tab["trkoff"] == 0).all()) and all(
                self._null_format(int(n)) == self.nullfmt for n in np.unique(tab["len"])
            )
            if all_null:
                # Every track of the group reads as the default null track: drop the table.
                if not self._is_null_off(old_off):
                    space.release(old_off, self.l2size)
                l1[l1x] = 0
                continue
            if self._is_null_off(old_off):
                l1[l1x] = space.get(self.l2size)
            writes.append((int(l1[l1x]), tab.tobytes()))

        changed = np.nonzero(l1 != self.l1)[0]
        if len(changed):
            lo, hi = int(changed[0]), int(changed[-1]) + 1
            raw = l1[lo:hi].astype(self._l1_dtype).tobytes()
            writes.append((L1_POS + lo * self._l1_dtype.itemsize, raw))

        # The FREE_BLK table lives inside a free space: the first one big enough, or
        # a new one added at the end of the file.
        fb_off = 0
        if space.gaps:
            need = (len(space.gaps) + 1) * self.fbsize
            fit = next((g for g in space.gaps if g[1] >= need), None)
            if fit is None:
                space.extend_tail(need + self.fbsize)
                need = (len(space.gaps) + 1) * self.fbsize
                fit = next(g for g in space.gaps if g[1] >= need)
            fb_off = fit[0]
            entries = [FREE_MAGIC + bytes(self.fbsize - 8)]
            entries += [self._fb_layout.build(dict(fb_offnxt=o, fb_len=n)) for o, n in space.gaps]
            writes.append((fb_off, b"".join(entries)))
        gaps = [(o, n) for o, n in space.gaps]
        free_gaps = sum(n for _, n in gaps)
        hdr = dict(self.cdh)
        hdr.pop("_io", None)
        hdr.update(
            # OPENED is kept as found: it is clear unless the open overrode it, and then
            # it is an emulator's claim that a commit of ours cannot withdraw.  Space
            # errors are gone: free space is rebuilt from L1/L2 on every commit.
            cdh_opts=(self.cdh.cdh_opts | OPT_OPENRW) & ~OPT_SPERRS & 0xFF,
            cdh_size=space.size,
            cdh_used=space.size - free_gaps - imbed,
            free_off=fb_off,
            free_total=free_gaps + imbed,
            free_largest=max((n for _, n in gaps), default=0),
            free_num=len(gaps),
            free_imbed=imbed,
        )
        cdh_raw = self._cdh_layout.build(hdr)
        writes.append((DEVHDR_SIZE, cdh_raw))
        # The file must end exactly at cdh_size: pad the tail if no write reaches it.
        reach = max(off + len(data) for off, data in writes)
        if reach < space.size:
            start = max(reach, self.filesize)
            if start < space.size:
                writes.append((start, bytes(space.size - start)))

        self._fh.flush()
        try:
            apply_writes(
                [self.path],
                [(0, off, data) for off, data in writes],
                self.lock,
                self.background_flush,
            )
        except BaseException:
            # The file may be half written; the journal beside it puts it back at the
            # next open.  This object no longer knows what is on disk.
            self._broken = "a commit failed part-way; reopen the image to roll it back"
            raise
        self._load_header(cdh_raw)
        self.filesize = space.size
        self.l1 = l1
        self._l2.update(new_l2)
        for l1x in new_l2:
            if int(l1[l1x]) == 0:
                self._l2.pop(l1x, None)
        self._gaps = gaps
        self._imbed = imbed

    def _close(self) -> None:
        self._fh.close()


def open_cckd(
    path: str,
    header,
    device: Device,
    writable: bool,
    lock: WriterLock | None = None,
    ignore_opened: bool = False,
) -> CckdImage:
    """Open a CCKD/CCKD64 file whose 512-byte device header is already parsed.

    ``lock``: the writer lock of a writable open.  A writable open is refused while
    the header's OPENED bit says an emulator has the file open (or died with it open),
    unless ``ignore_opened``: writing beside a running Hercules loses data, since it
    keeps L2 tables and free space in memory and writes them back."""
    cckd64 = header.dh_devid == b"CKD_C064"
    if header.dh_trksize != device.trksize:
        raise FormatError(
            f"device header track size {header.dh_trksize}; a compressed {device.name} "
            f"image has {device.trksize}",
            path,
        )
    with open(path, "rb") as fh:
        fh.seek(DEVHDR_SIZE)
        cdh_raw = fh.read(CDH_SIZE)
    if len(cdh_raw) < CDH_SIZE:
        raise FormatError(
            f"file is {DEVHDR_SIZE + len(cdh_raw)} bytes, too short for the compressed "
            "device header",
            path,
        )
    # The byte order of every other CDH field depends on this one option byte.
    bigend = bool(cdh_raw[3] & OPT_BIGEND)
    cdh = parse_at(cdh_layout(cckd64, bigend), cdh_raw, 0, "compressed device header", path)
    if cdh.cdh_vrm[:2] != VRM[:2]:
        vrm = ".".join(str(b) for b in cdh.cdh_vrm)
        cls = UnsupportedError if cdh.cdh_vrm[0] == 0 and cdh.cdh_vrm[1] < 3 else FormatError
        raise cls(f"compressed header version {vrm}; only 0.3.x is understood", path)
    if cdh.num_L2tab != L2_ENTRIES:
        raise FormatError(f"num_L2tab is {cdh.num_L2tab}, not {L2_ENTRIES}", path)
    cyls = cdh.cdh_cyls
    if not 1 <= cyls <= MAX_CYLS:
        raise FormatError(f"cdh_cyls {cyls} out of range 1..{MAX_CYLS}", path)
    groups = -(-cyls * device.heads // L2_ENTRIES)
    if cdh.num_L1tab not in (groups, groups + 1):
        raise FormatError(
            f"num_L1tab is {cdh.num_L1tab}; {cyls} cylinders of {device.heads} tracks need {groups}",
            path,
        )
    if writable:
        if cdh.cmp_algo not in _ALGO_NAMES:
            raise FormatError(f"unknown default compression code {cdh.cmp_algo}", path)
        if cdh.cdh_opts & OPT_OPENED and not ignore_opened:
            raise ConflictError(
                "the header says an emulator has it open or did not close it (OPENED "
                "bit): stop the emulator or run cckdcdsk -f, or write anyway with "
                "--ignore-opened (ignore_opened=True)",
                path,
            )
    return CckdImage(path, device, cyls, header.dh_trksize, writable, cckd64, bigend, cdh_raw, lock)


def create_cckd(
    path: str, device: Device, cyls: int, compress: str = "zlib", cckd64: bool = False
) -> CckdImage:
    """Write a new CCKD (or CCKD64) file whose tracks are all null (format 1).

    The headers match ``dasdinit -z``/``-bz2``/``-0`` (hyperion's 64-bit dasdinit for
    CCKD64) byte for byte; only the L1 table differs: dasdinit also stores tracks 0
    and 1, here every L1 entry is 0 so every track reads as ``cdh_nullfmt`` = 1.
    """
    from emulator.image.ckd import header_bytes

    if compress not in _ALGOS:
        raise FormatError(f"unknown compression {compress!r} (none, zlib, bzip2)", path)
    if not 1 <= cyls <= MAX_CYLS:
        raise FormatError(f"cylinder count {cyls} out of range 1..{MAX_CYLS}", path)
    num_l1 = -(-cyls * device.heads // L2_ENTRIES)
    l1_bytes = num_l1 * l1_entry_size(cckd64)
    size = L1_POS + l1_bytes
    cdh = dict(
        cdh_vrm=VRM,
        # dasdinit 3.13 writes X'41' (OPENRW + NOFUDGE); hyperion's CCKD64 files X'40'.
        cdh_opts=OPT_OPENRW if cckd64 else OPT_OPENRW | OPT_NOFUDGE,
        num_L1tab=num_l1,
        num_L2tab=L2_ENTRIES,
        cdh_size=size,
        cdh_used=size,
        free_off=0,
        free_total=0,
        free_largest=0,
        free_num=0,
        free_imbed=0,
        cdh_cyls=cyls,
        cdh_nullfmt=1,
        cmp_algo=_ALGOS[compress],
        cmp_parm=-1,
        reserved=bytes(cdh_layout(cckd64, False).sizeof() - (76 if cckd64 else 48)),
    )
    devid = b"CKD_C064" if cckd64 else b"CKD_C370"
    data = (
        header_bytes(device, device.trksize, 0, 0, devid)
        + cdh_layout(cckd64, False).build(cdh)
        + bytes(l1_bytes)
    )
    try:
        fh = open(path, "xb")  # noqa: SIM115 - closed below
    except FileExistsError:
        raise ConflictError("image file already exists", path) from None
    try:
        with fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        lock = WriterLock(path)
    except BaseException:
        os.unlink(path)  # never leave a half-made file behind
        raise
    try:
        return open_cckd(path, _parsed_header(path), device, writable=True, lock=lock)
    except BaseException:
        lock.release()
        os.unlink(path)
        raise


def _parsed_header(path: str):
    from emulator.layouts.ckd import DeviceHeader

    with open(path, "rb") as fh:
        return parse_at(DeviceHeader, fh.read(DEVHDR_SIZE), 0, "device header", path)


__all__ = [
    "CckdImage",
    "open_cckd",
    "create_cckd",
]
