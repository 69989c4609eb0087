"""The VTOC of one volume, held in memory (FORMATS.md 4, 5.1-5.3, 5.6, 5.7).

:class:`Vtoc` reads every track of the VTOC extent (DS4VTOCE) once, keeps each DSCB
slot as 140 bytes addressed by its CCHHR, and writes back only the tracks whose
slots changed.  Chains (F1 -> F3, F8 -> F9 -> F3, F5 -> F5) are followed with a
visited set and a bound of the number of slots, so a looping chain is a FormatError,
never a hang.

Free space (pure functions at the bottom): the volume's used tracks are track 0
(IPL records and VOL1), the VTOC extent and every data set extent; everything else is
free.  Format-5 DSCBs hold free extents as (relative track, whole cylinders, extra
tracks); with 16-bit relative tracks they can describe volumes up to 65535 tracks.
Larger volumes keep free space in Format-7 DSCBs (FORMATS.md 5.7): 16 extents of two
32-bit relative track addresses each, chained from DS4EFPTR.

**F7 end value.**  FORMATS.md 5.7 leaves open whether the second word is the last free
track or the last free track + 1.  We write and read it as **last + 1** (an exclusive
end), the way IBM's own s390-tools code does: ``include/lib/vtoc.h`` declares
``ds7ext`` as "starting RTA value" / "ending RTA value + 1", and ``libvtoc/vtoc.c``
``vtoc_set_freespace`` stores ``stop + 1`` (its merge and split logic compares one
extent's end with the next one's start, which only works with exclusive ends).
Hercules' ``dasdinit -linux`` (hyperion ``dasdutil.c`` ``create_ckd_file``) writes
``total tracks - 1`` for a whole-volume extent that starts at track 2, which read with
the same rule leaves the volume's last track out of the free space: safe (a track is
never handed out twice), and ``Volume.check`` reports it.  Both writers put the F7
right after the F5 (R3 of the first VTOC track) and set DS4VTOCI X'A0' (DS4DOSBT with
DS4EFVLD: the F5 is empty, the F7s are valid) and DS4EFLVL X'07'; so do we.
"""

from __future__ import annotations

from collections.abc import Iterator

from emulator.errors import FormatError
from emulator.layouts import parse_at
from emulator.layouts.vtoc import (
    DSCB_DATALEN,
    DSCB_KEYLEN,
    DSCB_SIZE,
    Format4,
    Format5,
    Format7,
)
from emulator.track import build_track, parse_track
from emulator.volume.dscb import (
    FMT_F0,
    FMT_F1,
    FMT_F4,
    FMT_F5,
    FMT_F7,
    FMT_F8,
    Cchhr,
    cchh_to_trk,
    dsname_of,
    pointer_of,
)

F4_KEY = b"\x04" * 44
F5_KEYID = b"\x05\x05\x05\x05"
F5_EXTENTS = 26  # 8 in the key area, 18 in the data area
F5_MAX_TRACKS = 0xFFFF  # DS5 relative track addresses are 16 bits
F7_KEYID = b"\x07\x07\x07\x07"
F7_EXTENTS = 16  # 5 in the key area, 11 in the data area


def fmt_of(raw: bytes) -> int:
    """The format id of a DSCB (abs 44); 0 for an empty (F0) slot."""
    return raw[DSCB_KEYLEN]


def cchhr_text(addr: Cchhr) -> str:
    return f"{addr[0]}/{addr[1]}/{addr[2]}"


class Vtoc:
    """Every DSCB slot of a VTOC, by CCHHR, in on-disk order."""

    def __init__(
        self,
        path: str | None,
        volser: str,
        heads: int,
        f4_addr: Cchhr,
        begin: int,
        end: int,
        tracks: dict[int, list[Cchhr]],
        slots: dict[Cchhr, bytes],
        renumberable: set[int],
    ):
        self.path = path
        self.volser = volser
        self.heads = heads
        self.f4_addr = f4_addr
        self.begin = begin  # absolute tracks of the VTOC extent, inclusive
        self.end = end
        self.tracks = tracks  # track -> slot addresses on it, in record order
        self.slots = slots
        self._writable_tracks = renumberable  # tracks whose records are R1..Rn
        self.dirty: set[int] = set()
        self._names: dict[str, tuple[Cchhr, bytes]] | None = None

    # -- loading ----------------------------------------------------------------------
    @classmethod
    def load(cls, image, pointer: Cchhr, volser: str) -> Vtoc:
        """Read the F4 that the VOL1 ``pointer`` names, then every track of DS4VTOCE."""
        path = image.path
        heads = image.heads
        cyl, head, rec = pointer
        where = f"{volser} VOL1"
        if head >= heads or cyl * heads + head >= image.total_tracks:
            raise FormatError(
                f"VTOC pointer {cchhr_text(pointer)} is past the end of the volume "
                f"({image.cyls} cylinders of {heads} tracks)",
                path,
                where,
            )
        f4_trk = cyl * heads + head
        f4_raw = None
        for r in parse_track(image.read_track(f4_trk), where=f"{volser} track {cyl}/{head}"):
            if r.rec == rec and len(r.key) == DSCB_KEYLEN and len(r.data) == DSCB_DATALEN:
                f4_raw = r.key + r.data
                break
        if f4_raw is None or f4_raw[:44] != F4_KEY or fmt_of(f4_raw) != FMT_F4:
            raise FormatError(
                f"VTOC pointer {cchhr_text(pointer)} does not address a Format-4 DSCB",
                path,
                where,
            )
        f4 = parse_at(Format4, f4_raw, 0, f"{volser} {cchhr_text(pointer)}: F4 DSCB", path)
        ext = f4.ds4vtoce
        begin = cchh_to_trk(ext.xtbcyl, ext.xtbtrk, heads)
        end = cchh_to_trk(ext.xtecyl, ext.xtetrk, heads)
        f4_where = f"{volser} {cchhr_text(pointer)}: F4 DSCB"
        if ext.xtbtrk >= heads or ext.xtetrk >= heads:
            raise FormatError(
                f"VTOC extent {ext.xtbcyl}/{ext.xtbtrk}-{ext.xtecyl}/{ext.xtetrk} has a head "
                f"number past {heads - 1}",
                path,
                f4_where,
            )
        if end >= image.total_tracks:
            raise FormatError(
                f"VTOC extent ends at {ext.xtecyl}/{ext.xtetrk}, past the end of the volume "
                f"({image.cyls} cylinders)",
                path,
                f4_where,
            )
        if begin > end:
            raise FormatError(
                f"VTOC extent {ext.xtbcyl}/{ext.xtbtrk}-{ext.xtecyl}/{ext.xtetrk} ends before "
                "it begins",
                path,
                f4_where,
            )
        if not begin <= f4_trk <= end:
            # Readers would scan a VTOC that does not hold its own F4; refuse it.
            raise FormatError(
                f"the F4 DSCB at {cchhr_text(pointer)} lies outside its VTOC extent "
                f"{ext.xtbcyl}/{ext.xtbtrk}-{ext.xtecyl}/{ext.xtetrk}",
                path,
                f4_where,
            )
        tracks: dict[int, list[Cchhr]] = {}
        slots: dict[Cchhr, bytes] = {}
        renumberable: set[int] = set()
        for trk in range(begin, end + 1):
            c, h = divmod(trk, heads)
            twhere = f"{volser} VTOC track {c}/{h}"
            recs = parse_track(image.read_track(trk), where=twhere)
            addrs = []
            for r in recs:
                if len(r.key) != DSCB_KEYLEN or len(r.data) != DSCB_DATALEN:
                    raise FormatError(
                        f"record R{r.rec} has KL {len(r.key)} DL {len(r.data)}; a DSCB is "
                        "KL 44 DL 96",
                        path,
                        twhere,
                    )
                addr = (c, h, r.rec)
                if addr in slots:
                    raise FormatError(f"two records numbered R{r.rec}", path, twhere)
                slots[addr] = r.key + r.data
                addrs.append(addr)
            tracks[trk] = addrs
            if [a[2] for a in addrs] == list(range(1, len(addrs) + 1)):
                renumberable.add(trk)
        return cls(path, volser, heads, pointer, begin, end, tracks, slots, renumberable)

    # -- slots ------------------------------------------------------------------------
    def __contains__(self, addr: Cchhr) -> bool:
        return addr in self.slots

    def get(self, addr: Cchhr) -> bytes:
        return self.slots[addr]

    def put(self, addr: Cchhr, raw: bytes) -> None:
        """Replace the DSCB at ``addr`` (140 bytes); its track is written at flush."""
        if len(raw) != DSCB_SIZE:
            raise FormatError(f"a DSCB is 140 bytes, not {len(raw)}", self.path, self.volser)
        if addr not in self.slots:
            raise FormatError(
                f"{cchhr_text(addr)} is not a DSCB slot of the VTOC", self.path, self.volser
            )
        old = self.slots[addr]
        self.slots[addr] = bytes(raw)
        self.dirty.add(addr[0] * self.heads + addr[1])
        if self._names is not None:
            if old[:DSCB_KEYLEN] != raw[:DSCB_KEYLEN] or fmt_of(old) != fmt_of(raw):
                self._names = None  # a name came or went: rebuild on the next lookup
            elif fmt_of(raw) in (FMT_F1, FMT_F8):
                self._names[dsname_of(raw[:DSCB_KEYLEN])] = (addr, bytes(raw))

    def clear(self, addr: Cchhr) -> None:
        """Make ``addr`` an F0 (all-zero) DSCB."""
        self.put(addr, bytes(DSCB_SIZE))

    def items(self) -> Iterator[tuple[Cchhr, bytes]]:
        return iter(self.slots.items())

    def free_slots(self) -> list[Cchhr]:
        """Addresses of F0 DSCBs in on-disk order."""
        return [a for a, raw in self.slots.items() if fmt_of(raw) == FMT_F0]

    def identifiers(self) -> list[tuple[Cchhr, bytes]]:
        """(address, raw) of every F1 and F8 DSCB, in on-disk order."""
        return list(self._name_index().values())

    def find(self, dsname: str) -> tuple[Cchhr, bytes] | None:
        """(address, raw) of the F1/F8 DSCB of ``dsname`` (upper case), or None."""
        return self._name_index().get(dsname)

    def _name_index(self) -> dict[str, tuple[Cchhr, bytes]]:
        # Built once per VTOC state (every put() drops it): looking a data set up is
        # done for every block write, and scanning all slots each time dominated.
        if self._names is None:
            names: dict[str, tuple[Cchhr, bytes]] = {}
            for a, raw in self.slots.items():
                if fmt_of(raw) in (FMT_F1, FMT_F8):
                    names.setdefault(dsname_of(raw[:DSCB_KEYLEN]), (a, raw))
            self._names = names
        return self._names

    def chain(self, start: Cchhr, allowed: set[int], where: str) -> list[tuple[Cchhr, bytes]]:
        """Follow CCHHR pointers (last 5 bytes of each DSCB) from ``start``.

        Each target must be a slot of this VTOC whose format is in ``allowed``; a
        pointer back to a DSCB already seen is a loop.  Both are FormatErrors.
        """
        out: list[tuple[Cchhr, bytes]] = []
        seen: set[Cchhr] = set()
        addr = start
        while addr != (0, 0, 0):
            if addr in seen or len(out) > len(self.slots):
                raise FormatError(f"DSCB chain loops back to {cchhr_text(addr)}", self.path, where)
            seen.add(addr)
            if addr not in self.slots:
                raise FormatError(
                    f"DSCB pointer {cchhr_text(addr)} is not a record of the VTOC", self.path, where
                )
            raw = self.slots[addr]
            if fmt_of(raw) not in allowed:
                expected = " or ".join(f"X'{f:02X}'" for f in sorted(allowed))
                raise FormatError(
                    f"DSCB pointer {cchhr_text(addr)} addresses a format X'{fmt_of(raw):02X}' "
                    f"DSCB, expected {expected}",
                    self.path,
                    where,
                )
            out.append((addr, raw))
            addr = pointer_of(raw)
        return out

    # -- F4 and F5 --------------------------------------------------------------------
    @property
    def f4_raw(self) -> bytes:
        return self.slots[self.f4_addr]

    def f4(self):
        return parse_at(Format4, self.f4_raw, 0, f"{self.volser} F4 DSCB", self.path)

    def put_f4(self, f4) -> None:
        self.put(self.f4_addr, Format4.build(f4))

    def f5_start(self) -> Cchhr | None:
        """The first F5: the DSCB after the F4 (IBM's rule), else the first F5 found."""
        order = list(self.slots)
        idx = order.index(self.f4_addr)
        if idx + 1 < len(order) and fmt_of(self.slots[order[idx + 1]]) == FMT_F5:
            return order[idx + 1]
        for addr, raw in self.slots.items():
            if fmt_of(raw) == FMT_F5 and raw[:4] == F5_KEYID:
                return addr
        return None

    def f5_chain(self) -> list[tuple[Cchhr, bytes]]:
        start = self.f5_start()
        if start is None:
            return []
        return self.chain(start, {FMT_F5}, f"{self.volser} F5 chain")

    def f7_start(self) -> Cchhr | None:
        """The first F7: the DSCB that DS4EFPTR names (None when it is zero)."""
        ptr = self.f4().ds4efptr
        addr = (int.from_bytes(ptr[0:2], "big"), int.from_bytes(ptr[2:4], "big"), ptr[4])
        return None if addr == (0, 0, 0) else addr

    def f7_chain(self) -> list[tuple[Cchhr, bytes]]:
        start = self.f7_start()
        if start is None:
            return []
        return self.chain(start, {FMT_F7}, f"{self.volser} F7 chain")

    # -- writing ----------------------------------------------------------------------
    def flush(self, image) -> None:
        """Write every track with a changed slot (records keep their numbers R1..Rn)."""
        for trk in sorted(self.dirty):
            c, h = divmod(trk, self.heads)
            if trk not in self._writable_tracks:
                raise FormatError(
                    "records are not numbered R1..Rn; this VTOC track cannot be rewritten",
                    self.path,
                    f"{self.volser} VTOC track {c}/{h}",
                )
            records = [
                (self.slots[a][:DSCB_KEYLEN], self.slots[a][DSCB_KEYLEN:]) for a in self.tracks[trk]
            ]
            image.write_track(trk, build_track(c, h, records))
        self.dirty.clear()


# -- free space (pure) -----------------------------------------------------------------
def merge(intervals: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sort and merge overlapping or adjacent (begin, end) track intervals."""
    out: list[tuple[int, int]] = []
    for b, e in sorted(intervals):
        if out and b <= out[-1][1] + 1:
            if e > out[-1][1]:
                out[-1] = (out[-1][0], e)
        else:
            out.append((b, e))
    return out


def complement(used: list[tuple[int, int]], total: int) -> list[tuple[int, int]]:
    """Free (begin, end) intervals of ``0..total-1`` not covered by ``used``."""
    free = []
    pos = 0
    for b, e in merge([(max(0, b), min(total - 1, e)) for b, e in used if e >= 0 and b < total]):
        if b > pos:
            free.append((pos, b - 1))
        pos = max(pos, e + 1)
    if pos < total:
        free.append((pos, total - 1))
    return free


def f5_entries(free: list[tuple[int, int]], heads: int) -> list[dict]:
    """Free intervals -> FreeExtent field dicts (relative track, cylinders, tracks)."""
    out = []
    for b, e in free:
        cyls, trks = divmod(e - b + 1, heads)
        out.append(dict(rtrk=b, cyls=cyls, trks=trks))
    return out


def f5_free(raws: list[bytes], heads: int, where: str = "", path=None) -> list[tuple[int, int]]:
    """The free intervals an F5 chain lists (zero entries skipped)."""
    out = []
    for raw in raws:
        f5 = parse_at(Format5, raw, 0, where, path)
        for item in list(f5.ds5avext) + list(f5.ds5mavet):
            length = item.cyls * heads + item.trks
            if length:
                out.append((item.rtrk, item.rtrk + length - 1))
    return out


def build_f5(entries: list[dict], ptr: Cchhr = (0, 0, 0)) -> bytes:
    """One Format-5 DSCB with up to 26 free extents."""
    zero = dict(rtrk=0, cyls=0, trks=0)
    items = list(entries) + [zero] * (F5_EXTENTS - len(entries))
    return Format5.build(
        dict(
            ds5keyid=F5_KEYID,
            ds5avext=items[:8],
            ds5fmtid=FMT_F5,
            ds5mavet=items[8:],
            ds5ptrds=dict(cyl=ptr[0], head=ptr[1], rec=ptr[2]),
        )
    )


def f7_entries(free: list[tuple[int, int]]) -> list[dict]:
    """Free intervals (inclusive) -> F7Extent field dicts (start, last + 1)."""
    return [dict(start=b, end=e + 1) for b, e in free]


def f7_free(raws: list[bytes], where: str = "", path=None) -> list[tuple[int, int]]:
    """The free intervals (inclusive) an F7 chain lists; all-zero entries are unused."""
    out = []
    for n, raw in enumerate(raws, 1):
        f7 = parse_at(Format7, raw, 0, where, path)
        for i, item in enumerate(list(f7.ds7extnt) + list(f7.ds7adext), 1):
            if item.start == 0 and item.end == 0:
                continue
            if item.end <= item.start:
                raise FormatError(
                    f"F7 DSCB {n} extent {i}: end {item.end} is not after start {item.start} "
                    "(the end is the last free track + 1)",
                    path,
                    where,
                )
            out.append((item.start, item.end - 1))
    return out


def build_f7(entries: list[dict], ptr: Cchhr = (0, 0, 0)) -> bytes:
    """One Format-7 DSCB with up to 16 free extents."""
    items = list(entries) + [dict(start=0, end=0)] * (F7_EXTENTS - len(entries))
    return Format7.build(
        dict(
            ds7keyid=F7_KEYID,
            ds7extnt=items[:5],
            ds7fmtid=FMT_F7,
            ds7adext=items[5:],
            ds7res1=bytes(2),
            ds7ptrds=dict(cyl=ptr[0], head=ptr[1], rec=ptr[2]),
        )
    )


__all__ = [
    "Vtoc",
    "merge",
    "complement",
    "f5_entries",
    "f5_free",
    "build_f5",
    "f7_entries",
    "f7_free",
    "build_f7",
    "fmt_of",
]
