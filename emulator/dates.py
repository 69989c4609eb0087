"""YDD dates of DSCBs and IEBCOPY headers <-> ``datetime.date`` (FORMATS.md 5.9).

A YDD date is 3 bytes: the year minus 1900 (0..255) and the day of the year (1..366)
as a big-endian halfword.  All zeros means "no date".

Two things found on real volumes need care when decoding:

* Hercules 3.13 ``dasdload`` stores ``tm_yday``, which counts from 0, so its dates are
  one day early and a data set made on 1 January carries day 0.  Day 0 is read as
  1 January rather than rejected.
* MVS 3.8j stored the year modulo 100 (X'15' for 2021).  A year byte below 70 is read
  as 2000 + y; no real data set was made before 1970.

``X'63016D'`` and ``X'63016E'`` (1999.365 / 1999.366) mean "never expires"; both
decode to 1999-12-31 (day 366 does not exist in 1999) and :func:`never_expires`
recognises them.  Decoding never raises: bytes that are not a date give ``None`` (the
raw bytes stay in the DSCB, so nothing is lost).  Encoding checks its input.
"""

from __future__ import annotations

import datetime

from emulator.errors import FormatError

NO_DATE = b"\x00\x00\x00"
NEVER_EXPIRES = b"\x63\x01\x6d"  # 1999.365, the value IBM utilities write
_NEVER = (NEVER_EXPIRES, b"\x63\x01\x6e")


def ydd_to_date(raw: bytes) -> datetime.date | None:
    """3 YDD bytes -> date; ``None`` for zeros or bytes that are not a date."""
    if len(raw) != 3 or raw == NO_DATE:
        return None
    year_byte = raw[0]
    day = int.from_bytes(raw[1:3], "big")
    if raw in _NEVER:
        return datetime.date(1999, 12, 31)
    year = 2000 + year_byte if year_byte < 70 else 1900 + year_byte
    day = max(day, 1)  # dasdload's 0-based tm_yday: day 0 is 1 January
    if day > (366 if _leap(year) else 365):
        return None
    return datetime.date(year, 1, 1) + datetime.timedelta(days=day - 1)


def _leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def date_to_ydd(value: datetime.date | None) -> bytes:
    """date -> 3 YDD bytes (``None`` -> zeros).

    Years 1970..2155 only: earlier years would read back as 20xx (see above).
    """
    if value is None:
        return NO_DATE
    if not isinstance(value, datetime.date):
        raise FormatError(f"{value!r} is not a date")
    if not 1970 <= value.year <= 2155:
        raise FormatError(f"year {value.year} cannot be stored in a YDD date (1970..2155)")
    day = value.timetuple().tm_yday
    return bytes([value.year - 1900]) + day.to_bytes(2, "big")


def never_expires(raw: bytes) -> bool:
    """True for the 1999.365 / 1999.366 "never expires" values."""
    return bytes(raw) in _NEVER


def yyddd(value: datetime.date | None) -> str:
    """'26327' style text as ``dasdls -info`` prints dates; '' for no date."""
    if value is None:
        return ""
    return f"{value.year % 100:02d}{value.timetuple().tm_yday:03d}"


__all__ = ["NO_DATE", "NEVER_EXPIRES", "ydd_to_date", "date_to_ydd", "never_expires", "yyddd"]
