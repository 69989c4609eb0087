"""DSCB contents as Python values (FORMATS.md 5.4-5.6, 5.9, 7.1).

:class:`Extent` and :class:`DatasetInfo` are what the rest of the emulator sees of a
data set's Format-1 (or Format-8) DSCB and its Format-3 DSCBs.  Every layout comes from
``emulator.layouts.vtoc``; this module only turns parsed fields into values users know
(RECFM "FB" through :mod:`emulator.recfm`, DSORG "PO", ISO dates, absolute track
numbers) and back.

A :class:`DatasetInfo` keeps the raw 140-byte F1 (``f1``), so fields we do not model
(DS1SMSFG, DS1OPTCD, unknown RECFM bits...) survive :func:`patch_format1` unchanged.

Extent addresses are CCHH; on 15-head devices the EAV form (FORMATS.md 5.5: cylinder =
``(HH & X'FFF0') << 12 | CC``) is applied, which is harmless on smaller volumes.  The
volume layer writes at most 65520 cylinders (no EAV), so the CCHH it writes is always
the plain cylinder and head; the 28-bit form is only decoded.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass, field

from emulator import codepage
from emulator.dates import date_to_ydd, ydd_to_date
from emulator.errors import FormatError
from emulator.layouts import parse_at
from emulator.layouts.vtoc import (
    DSCB_SIZE,
    DSORG_CX,
    DSORG_DA,
    DSORG_IS,
    DSORG_PO,
    DSORG_PS,
    DSORG_U,
    DSORG_VSAM,
    SCAL_ABSTR,
    SCAL_BLK,
    SCAL_CYL,
    SCAL_TRK,
    Format1,
    Format3,
)
from emulator.layouts.vtoc import (
    Extent as ExtentLayout,
)
from emulator.recfm import recfm_text, recfm_value

FMT_F0 = 0x00
FMT_F1 = 0xF1
FMT_F2 = 0xF2
FMT_F3 = 0xF3
FMT_F4 = 0xF4
FMT_F5 = 0xF5
FMT_F7 = 0xF7
FMT_F8 = 0xF8
FMT_F9 = 0xF9

F3_KEYID = b"\x03\x03\x03\x03"
F3_EXTENTS = 13  # 4 in the key area, 9 in the data area
F1_EXTENTS = 3
MAX_EXTENTS = 16  # classic non-VSAM limit per volume: F1's 3 + one F3's 13

DS1LARGE = 0x08  # DS1FLAG1: DSNTYPE=LARGE, DS1TTTHI holds the high byte of TT
DS1SMS_EF = 0x04  # DS1SMSFG: extended-format sequential, DS1TRBAL holds TT's high part

Cchhr = tuple[int, int, int]

# Compiled twins for the warm path (every listing parses every F1); built from the same
# declarations, so the layout is still declared once.  parse_at maps their struct.error.
_FORMAT1 = Format1.compile()
_FORMAT3 = Format3.compile()


# -- extents --------------------------------------------------------------------------
@dataclass(frozen=True)
class Extent:
    """One extent: absolute tracks ``begin``..``end`` (inclusive)."""

    seq: int
    begin: int
    end: int
    xttype: int = 0x01

    @property
    def tracks(self) -> int:
        return self.end - self.begin + 1


def cchh_to_trk(cyl: int, head: int, heads: int) -> int:
    """CCHH of an extent -> absolute track (28-bit EAV cylinders on 15-head devices)."""
    if heads <= 16:
        cyl = ((head & 0xFFF0) << 12) | cyl
        head &= 0x000F
    return cyl * heads + head


def trk_to_cchh(trk: int, heads: int) -> tuple[int, int]:
    """Absolute track -> the CCHH stored in an extent descriptor."""
    cyl, head = divmod(trk, heads)
    if cyl > 0xFFFF:
        head |= (cyl >> 16) << 4
        cyl &= 0xFFFF
    return cyl, head


def extent_of(raw, heads: int) -> Extent | None:
    """A parsed Extent layout -> :class:`Extent`; ``None`` for an unused slot (type 0)."""
    if raw.xttype == 0:
        return None
    for head in (raw.xtbtrk, raw.xtetrk):
        if (head & 0x000F if heads <= 16 else head) >= heads:
            raise FormatError(f"extent {raw.xtseqn} names head {head}; the device has {heads}")
    return Extent(
        raw.xtseqn,
        cchh_to_trk(raw.xtbcyl, raw.xtbtrk, heads),
        cchh_to_trk(raw.xtecyl, raw.xtetrk, heads),
        raw.xttype,
    )


def extent_fields(ext: Extent | None, heads: int) -> dict:
    """:class:`Extent` -> the field dict of the Extent layout (zeros for ``None``)."""
    if ext is None:
        return dict(xttype=0, xtseqn=0, xtbcyl=0, xtbtrk=0, xtecyl=0, xtetrk=0)
    bcyl, btrk = trk_to_cchh(ext.begin, heads)
    ecyl, etrk = trk_to_cchh(ext.end, heads)
    return dict(
        xttype=ext.xttype, xtseqn=ext.seq, xtbcyl=bcyl, xtbtrk=btrk, xtecyl=ecyl, xtetrk=etrk
    )


def extent_bytes(ext: Extent | None, heads: int) -> bytes:
    return ExtentLayout.build(extent_fields(ext, heads))


# -- DSORG (RECFM text lives in emulator.recfm, shared with the data set layer) --------
_DSORG_NAMES = (
    ("IS", DSORG_IS),
    ("PS", DSORG_PS),
    ("DA", DSORG_DA),
    ("CX", DSORG_CX),
    ("PO", DSORG_PO),
    ("VS", DSORG_VSAM),
    ("GS", 0x0080),
    ("TX", 0x0040),
    ("TQ", 0x0020),
    ("TR", 0x0004),
)


def dsorg_text(raw: int) -> str:
    """DS1DSORG halfword -> 'PS', 'PO', 'DA', 'IS', 'VS', with 'U' for unmovable ('POU')."""
    for name, bit in _DSORG_NAMES:
        if raw & bit:
            return name + ("U" if raw & DSORG_U else "")
    return "U" if raw & DSORG_U else ""


def dsorg_value(text: str) -> int:
    """'PS' -> X'4000', 'POU' -> X'0300', 'VS' -> X'0008', '' -> 0."""
    spec = text.strip().upper()
    unmovable = 0
    if spec.endswith("U") and spec != "U":
        spec, unmovable = spec[:-1], DSORG_U
    elif spec == "U":
        return DSORG_U
    if not spec:
        return 0
    for name, bit in _DSORG_NAMES:
        if spec == name:
            return bit | unmovable
    raise FormatError(f"DSORG {text!r} is not valid (PS, PO, DA, IS, VS; U suffix: unmovable)")


_SPACE_UNITS = {SCAL_ABSTR: "ABSTR", SCAL_BLK: "BLK", SCAL_TRK: "TRK", SCAL_CYL: "CYL"}
SPACE_CODES = {v: k for k, v in _SPACE_UNITS.items()}


# -- data set names -------------------------------------------------------------------
_QUALIFIER = re.compile(r"[A-Z@#$][A-Z0-9@#$-]{0,7}")


def validate_dsname(name: str) -> str:
    """Upper-case and check a data set name (1-44 chars, qualifiers of 1-8); returns it."""
    dsname = name.strip().upper() if isinstance(name, str) else ""
    if not 1 <= len(dsname) <= 44:
        raise FormatError(f"data set name {name!r} must be 1 to 44 characters")
    for qual in dsname.split("."):
        if not _QUALIFIER.fullmatch(qual):
            raise FormatError(
                f"data set name {name!r}: qualifier {qual!r} must be 1-8 characters, "
                "starting with a letter or @ # $, then letters, digits, @ # $ or -"
            )
    return dsname


def dsname_key(dsname: str) -> bytes:
    """The 44-byte EBCDIC key of an F1 DSCB."""
    return codepage.blank_pad(dsname, 44)


def dsname_of(key: bytes) -> str:
    return codepage.unpad(bytes(key))


# -- DatasetInfo ----------------------------------------------------------------------
@dataclass
class DatasetInfo:
    """One data set as its F1/F8 (+F3) DSCBs describe it.  Extents are absolute tracks."""

    dsname: str
    volser: str
    dsorg: str
    recfm: str
    lrecl: int
    blksize: int
    keylen: int
    extents: list[Extent]
    tracks: int
    used_tracks: int
    created: datetime.date | None
    expires: datetime.date | None
    referenced: datetime.date | None
    lstar: tuple[int, int]
    trbal: int
    nobdb: int
    space: tuple[str, int, int]
    dsorg_raw: int
    recfm_raw: int
    dscb: Cchhr
    f1: bytes = field(repr=False)
    chain: list[Cchhr] = field(default_factory=list, repr=False)  # F3/F9 addresses
    fmtid: int = FMT_F1
    noepv: int = 0

    @property
    def is_pds(self) -> bool:
        return bool(self.dsorg_raw & DSORG_PO)

    @property
    def refd(self) -> datetime.date | None:
        return self.referenced


def format1_fields(raw: bytes, where: str = "", path=None):
    """Parse a 140-byte F1/F8 DSCB (a Construct container; FormatError if short)."""
    return parse_at(_FORMAT1, raw, 0, where, path)


def format3_extents(raw: bytes, heads: int, where: str = "", path=None) -> list[Extent]:
    f3 = parse_at(_FORMAT3, raw, 0, where, path)
    out = []
    for item in list(f3.ds3extnt) + list(f3.ds3adext):
        ext = extent_of(item, heads)
        if ext is not None:
            out.append(ext)
    return out


def dataset_info(
    f1_raw: bytes,
    f3_raws: list[bytes],
    volser: str,
    heads: int,
    dscb: Cchhr,
    chain: list[Cchhr] | None = None,
    where: str = "",
    path=None,
) -> DatasetInfo:
    """Build a :class:`DatasetInfo` from an F1/F8 and its F3 DSCBs (F9s left out)."""
    f1 = format1_fields(f1_raw, where, path)
    dsname = dsname_of(f1.ds1dsnam)
    if not (dsname.isascii() and dsname.isprintable()):
        # Damage, not a name: no code page maps a valid name outside printable ASCII.
        raise FormatError(
            f"the data set name X'{bytes(f1.ds1dsnam).hex().upper()}' is not text",
            path,
            where,
        )
    extents = [e for e in (extent_of(x, heads) for x in (f1.ds1ext1, f1.ds1ext2, f1.ds1ext3)) if e]
    for raw in f3_raws:
        extents.extend(format3_extents(raw, heads, where, path))
    tt = int.from_bytes(f1.ds1lstar[:2], "big")
    rec = f1.ds1lstar[2]
    if f1.ds1flag1 & DS1LARGE:
        tt |= f1.ds1ttthi << 16
    elif f1.ds1smsfg & DS1SMS_EF:
        tt |= f1.ds1trbal << 16
    used = 0 if (tt, rec) == (0, 0) else tt + 1
    tracks = sum(e.tracks for e in extents)
    unit = _SPACE_UNITS[f1.ds1scal1 & 0xC0]
    first = extents[0].tracks if extents else 0
    primary = -(-first // heads) if unit == "CYL" else first
    return DatasetInfo(
        dsname=dsname,
        volser=volser,
        dsorg=dsorg_text(f1.ds1dsorg),
        recfm=recfm_text(f1.ds1recfm),
        lrecl=f1.ds1lrecl,
        blksize=f1.ds1blkl,
        keylen=f1.ds1keyl,
        extents=extents,
        tracks=tracks,
        used_tracks=used,
        created=ydd_to_date(f1.ds1credt),
        expires=ydd_to_date(f1.ds1expdt),
        referenced=ydd_to_date(f1.ds1refd),
        lstar=(tt, rec),
        trbal=f1.ds1trbal,
        nobdb=f1.ds1nobdb,
        space=(unit, primary, f1.ds1scal3),
        dsorg_raw=f1.ds1dsorg,
        recfm_raw=f1.ds1recfm,
        dscb=dscb,
        f1=bytes(f1_raw[:DSCB_SIZE]),
        chain=list(chain or []),
        fmtid=f1.ds1fmtid,
        noepv=f1.ds1noepv,
    )


def new_format1(
    dsname: str,
    volser: str,
    dsorg: int,
    recfm: int,
    lrecl: int,
    blksize: int,
    keylen: int,
    extents: list[Extent],
    heads: int,
    unit: str,
    secondary: int,
    created: datetime.date | None,
    expires: datetime.date | None,
    dsind: int,
    syscd: str,
    f3_ptr: Cchhr = (0, 0, 0),
) -> bytes:
    """A new F1 DSCB (140 bytes) as ``dasdload`` fills one (FORMATS.md 5.4 V6 notes)."""
    first3 = list(extents[:F1_EXTENTS]) + [None] * (F1_EXTENTS - len(extents[:F1_EXTENTS]))
    return Format1.build(
        dict(
            ds1dsnam=dsname_key(dsname),
            ds1fmtid=FMT_F1,
            ds1dssn=codepage.blank_pad(volser, 6),
            ds1volsq=1,
            ds1credt=date_to_ydd(created),
            ds1expdt=date_to_ydd(expires),
            ds1noepv=len(extents),
            ds1nobdb=0,
            ds1flag1=0,
            ds1syscd=codepage.blank_pad(syscd, 13),
            ds1refd=b"\x00\x00\x00",
            ds1smsfg=0,
            ds1scxtf=0,
            ds1scxtv=0,
            ds1dsorg=dsorg,
            ds1recfm=recfm,
            ds1optcd=0,
            ds1blkl=blksize,
            ds1lrecl=lrecl,
            ds1keyl=keylen,
            ds1rkp=0,
            ds1dsind=dsind,
            ds1scal1=SPACE_CODES[unit],
            ds1scal3=secondary,
            ds1lstar=b"\x00\x00\x00",
            ds1trbal=0,
            ds1resv=0,
            ds1ttthi=0,
            ds1ext1=extent_fields(first3[0], heads),
            ds1ext2=extent_fields(first3[1], heads),
            ds1ext3=extent_fields(first3[2], heads),
            ds1ptrds=dict(cyl=f3_ptr[0], head=f3_ptr[1], rec=f3_ptr[2]),
        )
    )


def patch_format1(raw: bytes, heads: int = 15, where: str = "", path=None, **changes) -> bytes:
    """Rewrite named F1 fields, keeping every other byte.

    ``changes`` use the layout's field names (``ds1lrecl=...``) plus three shortcuts:
    ``extents=[Extent...]`` (the first 3 go into DS1EXT1..3, DS1NOEPV is set to the
    full count), ``ptrds=(c, h, r)`` and ``lstar=(tt, r)``.
    """
    f1 = format1_fields(raw, where, path)
    if "extents" in changes:
        exts = list(changes.pop("extents"))
        first3 = exts[:F1_EXTENTS] + [None] * (F1_EXTENTS - len(exts[:F1_EXTENTS]))
        f1.ds1ext1 = extent_fields(first3[0], heads)
        f1.ds1ext2 = extent_fields(first3[1], heads)
        f1.ds1ext3 = extent_fields(first3[2], heads)
        f1.ds1noepv = len(exts)
    if "ptrds" in changes:
        c, h, r = changes.pop("ptrds")
        f1.ds1ptrds = dict(cyl=c, head=h, rec=r)
    if "lstar" in changes:
        tt, rec = changes.pop("lstar")
        if not (0 <= tt <= 0xFFFFFF and 0 <= rec <= 0xFF):
            raise FormatError(f"DS1LSTAR ({tt}, {rec}) out of range", path, where)
        if tt > 0xFFFF:
            if not f1.ds1flag1 & DS1LARGE:
                raise FormatError(
                    f"relative track {tt} needs DSNTYPE=LARGE (DS1LSTAR holds 65535)", path, where
                )
            f1.ds1ttthi = tt >> 16
        elif f1.ds1flag1 & DS1LARGE:
            f1.ds1ttthi = 0
        f1.ds1lstar = (tt & 0xFFFF).to_bytes(2, "big") + bytes([rec])
    for name, value in changes.items():
        if name not in f1 or name.startswith("_"):
            raise FormatError(f"F1 DSCB has no field {name!r}", path, where)
        f1[name] = value
    try:
        return Format1.build(f1)
    except Exception as exc:  # construct raises several types for out-of-range values
        raise FormatError(f"cannot build F1 DSCB: {exc}", path, where) from None


def new_format3(extents: list[Extent], heads: int, ptr: Cchhr = (0, 0, 0)) -> bytes:
    """A Format-3 DSCB holding up to 13 extents."""
    if len(extents) > F3_EXTENTS:
        raise FormatError(f"{len(extents)} extents do not fit one F3 DSCB (13)")
    items = [extent_fields(e, heads) for e in extents]
    items += [extent_fields(None, heads)] * (F3_EXTENTS - len(items))
    return Format3.build(
        dict(
            ds3keyid=F3_KEYID,
            ds3extnt=items[:4],
            ds3fmtid=FMT_F3,
            ds3adext=items[4:],
            ds3ptrds=dict(cyl=ptr[0], head=ptr[1], rec=ptr[2]),
        )
    )


def pointer_of(raw: bytes) -> Cchhr:
    """The CCHHR in the last 5 bytes of a DSCB (DS1PTRDS, DS3PTRDS, DS5PTRDS...)."""
    tail = raw[135:140]
    return (int.from_bytes(tail[0:2], "big"), int.from_bytes(tail[2:4], "big"), tail[4])


__all__ = [
    "Extent",
    "DatasetInfo",
    "recfm_text",
    "recfm_value",
    "dsorg_text",
    "dsorg_value",
    "validate_dsname",
    "dataset_info",
    "new_format1",
    "new_format3",
    "patch_format1",
    "format3_extents",
    "cchh_to_trk",
    "trk_to_cchh",
    "MAX_EXTENTS",
]
