"""ISPF statistics in PDS directory user data (FORMATS.md 6.3).

A text member saved by the ISPF editor carries 30 bytes of user data (C & X'1F' = 15):
version and modification level, the creation date, the date and time of the last
change, line counts and the user id.  Dates are a century byte (X'00' = 19xx, X'01' =
20xx) followed by packed decimal ``YYDDDF``; the time is packed hour, minute and
second.  Members of more than 65535 lines use the extended form (flag X'20', 40 bytes,
C & X'1F' = 20) whose fullwords at offsets 28/32/36 hold the real line counts while the
halfwords hold min(count, 65535).

User data of other members (load modules, SCLM, private tools) must never be taken for
statistics, so :meth:`IspfStats.decode` checks every packed field and date and returns
None instead of raising.
"""

from __future__ import annotations

import datetime as _dt
import difflib
from collections.abc import Sequence
from dataclasses import dataclass, replace

from emulator.codepage import blank_pad
from emulator.errors import FormatError
from emulator.layouts import parse_at
from emulator.layouts.pds import (
    ISPF_EXT_SIZE,
    ISPF_FLAG_EXT,
    ISPF_FLAG_SCLM,
    ISPF_SIZE,
)
from emulator.layouts.pds import IspfStats as _IspfLayout
from emulator.layouts.pds import IspfStatsExtended as _IspfExtLayout

#: Largest count a halfword field can carry; beyond it the extended form is used.
HALFWORD_MAX = 0xFFFF
#: Largest count the extended form can carry.
FULLWORD_MAX = 0xFFFFFFFF
#: ISPF stops counting modification levels at 99 (it does not wrap to 00).
MOD_MAX = 99
#: User ids are at most 8 characters in the layout (FORMATS.md 6.3 / layouts.pds).
USERID_LEN = 8
#: Name codes: member names and user ids are plain EBCDIC; 037 and 1047 agree on them.
_CODEPAGE = "037"


def _unpack_digits(data: bytes) -> str | None:
    """Packed decimal digits with no sign nibble (e.g. X'0011' -> '0011'); None if any
    nibble is not a decimal digit."""
    text = data.hex()
    return text if text.isdigit() else None


def _bcd(value: int) -> int:
    """0..99 -> one packed byte without sign (17 -> X'17')."""
    return (value // 10) << 4 | (value % 10)


def _decode_date(raw: bytes) -> _dt.date | None:
    """Century byte + packed YYDDDF -> date; None for anything implausible."""
    if len(raw) != 4 or raw[0] > 1:
        return None
    text = raw[1:].hex()
    # Sign nibble: ISPF writes F; C (positive) is accepted as packed decimal allows.
    if text[-1] not in "fc" or not text[:-1].isdigit():
        return None
    year = 1900 + 100 * raw[0] + int(text[0:2])
    day = int(text[2:5])
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    if not 1 <= day <= (366 if leap else 365):
        return None
    return _dt.date(year, 1, 1) + _dt.timedelta(days=day - 1)


def _encode_date(value: _dt.date, what: str) -> bytes:
    if not 1900 <= value.year <= 2099:
        raise FormatError(f"ISPF statistics: {what} year {value.year} is outside 1900..2099")
    century, yy = divmod(value.year - 1900, 100)
    day = value.timetuple().tm_yday
    return bytes([century]) + bytes.fromhex(f"{yy:02d}{day:03d}f")


@dataclass(frozen=True)
class IspfStats:
    """ISPF statistics of one member (FORMATS.md 6.3).

    ``flags`` is the raw flag byte (X'80' SCLM, X'20' extended; other bits are kept as
    read); ``extended`` says whether the 40-byte form is (or will be) written.
    """

    version: int
    mod: int
    created: _dt.date
    changed: _dt.datetime
    current: int
    initial: int
    modified: int
    userid: str
    flags: int = 0
    extended: bool = False

    # -- derived -----------------------------------------------------------------
    @property
    def sclm(self) -> bool:
        """The member is managed by SCLM (flag X'80')."""
        return bool(self.flags & ISPF_FLAG_SCLM)

    @property
    def vv_mm(self) -> str:
        """Version and level as ISPF shows them, e.g. '01.00'."""
        return f"{self.version:02d}.{self.mod:02d}"

    @property
    def needs_extended(self) -> bool:
        """True when a line count does not fit the halfword fields."""
        return max(self.current, self.initial, self.modified) > HALFWORD_MAX

    def as_dict(self) -> dict:
        """JSON-ready form: values as ISPF shows them, dates in ISO format."""
        return {
            "version": self.vv_mm,
            "created": self.created.isoformat(),
            "changed": self.changed.isoformat(sep=" "),
            "current": self.current,
            "initial": self.initial,
            "modified": self.modified,
            "userid": self.userid,
            "sclm": self.sclm,
            "extended": self.extended,
        }

    # -- codec -------------------------------------------------------------------
    @classmethod
    def decode(cls, userdata: bytes, where: str = "") -> IspfStats | None:
        """The statistics in ``userdata``, or None when it is not ISPF statistics.

        Never raises on odd user data: load modules and other tools put different
        bytes there, so every field is checked (length 30 or 40 with flag X'20',
        packed digits, plausible dates and time) before it is believed.
        """
        del where  # kept for symmetry with other decoders; nothing here raises
        size = len(userdata)
        if size not in (ISPF_SIZE, ISPF_EXT_SIZE):
            return None
        extended = size == ISPF_EXT_SIZE
        try:
            rec = parse_at(_IspfExtLayout if extended else _IspfLayout, bytes(userdata))
        except FormatError:  # pragma: no cover - sizes were checked above
            return None
        if extended and not rec.ispfflag & ISPF_FLAG_EXT:
            return None
        if rec.ispfvers > 99 or rec.ispfmod > 99:
            return None
        clock = _unpack_digits(bytes([rec.ispfhour, rec.ispfmin, rec.ispfsecs]))
        if clock is None:
            return None
        hour, minute, second = int(clock[0:2]), int(clock[2:4]), int(clock[4:6])
        if hour > 23 or minute > 59 or second > 59:
            return None
        created = _decode_date(rec.ispfcrdt)
        changed_day = _decode_date(rec.ispfchdt)
        if created is None or changed_day is None:
            return None
        if extended:
            current, initial, modified = rec.ispfxcurl, rec.ispfxinil, rec.ispfxmodl
        else:
            current, initial, modified = rec.ispfcurl, rec.ispfinil, rec.ispfmodl
        userid = rec.ispfuser.decode(f"cp{_CODEPAGE}").rstrip(" \x00")
        return cls(
            version=rec.ispfvers,
            mod=rec.ispfmod,
            created=created,
            changed=_dt.datetime.combine(changed_day, _dt.time(hour, minute, second)),
            current=current,
            initial=initial,
            modified=modified,
            userid=userid,
            flags=rec.ispfflag & ~ISPF_FLAG_EXT,
            extended=extended,
        )

    def encode(self) -> bytes:
        """The user-data bytes: 30 (standard) or 40 (extended, flag X'20')."""
        if not (0 <= self.version <= 99 and 0 <= self.mod <= 99):
            raise FormatError(f"ISPF statistics: version {self.vv_mm} is outside 00.00..99.99")
        for label, count in (
            ("current", self.current),
            ("initial", self.initial),
            ("modified", self.modified),
        ):
            if not 0 <= count <= FULLWORD_MAX:
                raise FormatError(f"ISPF statistics: {label} line count {count} out of range")
        extended = self.extended or self.needs_extended
        flags = (self.flags & 0xFF & ~ISPF_FLAG_EXT) | (ISPF_FLAG_EXT if extended else 0)
        userid = blank_pad(self.userid, USERID_LEN, _CODEPAGE)
        fields = dict(
            ispfvers=self.version,
            ispfmod=self.mod,
            ispfflag=flags,
            ispfsecs=_bcd(self.changed.second),
            ispfcrdt=_encode_date(self.created, "creation"),
            ispfchdt=_encode_date(self.changed.date(), "change"),
            ispfhour=_bcd(self.changed.hour),
            ispfmin=_bcd(self.changed.minute),
            ispfcurl=min(self.current, HALFWORD_MAX),
            ispfinil=min(self.initial, HALFWORD_MAX),
            ispfmodl=min(self.modified, HALFWORD_MAX),
            ispfuser=userid,
        )
        if extended:
            fields.update(ispfxcurl=self.current, ispfxinil=self.initial, ispfxmodl=self.modified)
            return _IspfExtLayout.build(fields)
        return _IspfLayout.build(dict(fields, ispfrsv=b"\x40\x40"))

    # -- what the ISPF editor does on SAVE ---------------------------------------
    @classmethod
    def new(cls, lines: int, userid: str, now: _dt.datetime) -> IspfStats:
        """Statistics of a member saved for the first time: 01.00, created = changed =
        ``now`` (to the second), current = initial = ``lines``, modified 0."""
        now = now.replace(microsecond=0, tzinfo=None)
        return cls(
            version=1,
            mod=0,
            created=now.date(),
            changed=now,
            current=lines,
            initial=lines,
            modified=0,
            userid=userid.upper(),
            extended=lines > HALFWORD_MAX,
        )

    def updated(
        self,
        lines: int,
        userid: str,
        now: _dt.datetime,
        old: Sequence[bytes] | None = None,
        new: Sequence[bytes] | None = None,
    ) -> IspfStats:
        """Statistics after the member is saved again by ``userid`` at ``now``.

        The modification level goes up by one and stays at 99 once there (ISPF does not
        wrap it).  ISPF counts the lines changed in edit sessions; we cannot see the
        sessions, so when the old and new records are given, ``modified`` is the number
        of new records that are not part of the longest common alignment with the old
        ones (inserted or changed lines).  Without them the previous count is kept.
        """
        modified = self.modified
        if old is not None and new is not None:
            matcher = difflib.SequenceMatcher(None, list(old), list(new), autojunk=False)
            kept = sum(block.size for block in matcher.get_matching_blocks())
            modified = len(new) - kept
        now = now.replace(microsecond=0, tzinfo=None)
        return replace(
            self,
            mod=min(self.mod + 1, MOD_MAX),
            changed=now,
            current=lines,
            modified=modified,
            userid=userid.upper(),
            extended=self.extended or max(lines, self.initial, modified) > HALFWORD_MAX,
        )


__all__ = ["IspfStats", "HALFWORD_MAX", "MOD_MAX"]
