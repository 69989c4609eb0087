"""CKD device geometry and track-capacity formulas.

Source: Hercules ``dasdtab.c`` (device table) and ``dasdutil.c capacity_calc()``
(FORMATS.md 1.3, 1.6, 1.7).  The image slot size (``trksize``) and the device track
length used for packing blocks (``track_len``, DS4DEVTK) are different things: blocks
go onto a track while the *device* capacity formula says they fit, never by slot size.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from emulator.errors import FormatError, NotFoundError


@dataclass(frozen=True)
class Device:
    """One CKD device type (all models share formula and track layout)."""

    name: str  # "3390"
    devtype: int  # 0x3390
    heads: int  # tracks per cylinder
    r1max: int  # largest R1 data length (track capacity)
    track_len: int  # DS4DEVTK: device track length for the capacity formula
    formula: int  # -2, -1, 1, 2 as in Hercules
    f: tuple[int, ...]  # formula factors f1..f6
    models: dict[str, int]  # model suffix -> primary cylinders
    altcyls: int
    ucb_unit: int  # DEVTYPE/UCB unit type byte (IEBCOPY COPYR1)
    dsind_devfg: int  # DS4DEVFG written in the F4

    @property
    def code(self) -> int:
        """The low byte of the device type as stored in the image header (dh_devtyp)."""
        return self.devtype & 0xFF

    @property
    def trksize(self) -> int:
        """Bytes reserved for one track in a Hercules image file (FORMATS.md 1.3)."""
        return _round_up(5 + 8 + 8 + 8 + self.r1max + 8, 512)

    def cylinders(self, model: str | None) -> int:
        if model is None or model == "":
            return self.models[""]
        key = model.upper()
        if key not in self.models:
            raise NotFoundError(
                f"unknown model {self.name}-{model} (known: {', '.join(self.model_names())})"
            )
        return self.models[key]

    def model_names(self) -> list[str]:
        return [f"{self.name}-{m}" if m else self.name for m in self.models]

    # -- capacity -----------------------------------------------------------------
    def record_space(self, keylen: int, datalen: int) -> tuple[int, int]:
        """(b1, b2): device bytes a record needs if it is the last on the track, and
        the bytes it uses when others follow (Hercules ``capacity_calc``)."""
        return _record_space(self.formula, self.f, keylen, datalen)

    def fits(self, used: int, keylen: int, datalen: int) -> int | None:
        """New running total if a record of this size fits after ``used`` device bytes
        on a track, else None."""
        b1, b2 = _record_space(self.formula, self.f, keylen, datalen)
        if used + b1 > self.track_len:
            return None
        return used + b2

    def place(
        self, keylens: Sequence[int], datalens: Sequence[int], used: int = 0, r: int = 0,
        max_rec: int = 255,
    ) -> tuple[np.ndarray, np.ndarray, int]:  # fmt: skip
        """Where records written one after another go, as :meth:`fits` decides record by
        record: ``(track offset, record number)`` arrays and the bytes used on the last
        track, starting on a track that holds ``r`` records using ``used`` bytes (a
        track takes at most ``max_rec`` records).  FormatError for a record no track
        holds."""
        from emulator.kernels.tracks import place_records

        kl = np.asarray(keylens, dtype=np.int64)
        dl = np.asarray(datalens, dtype=np.int64)
        b1, b2 = (np.asarray(b, dtype=np.int64) for b in _space(self.formula, self.f, kl, dl))
        too_big = np.flatnonzero(b1 > self.track_len)
        if len(too_big):
            i = int(too_big[0])
            raise FormatError(f"a block of KL {kl[i]} DL {dl[i]} fits no {self.name} track")
        return place_records(b1, b2, self.track_len, max_rec, used, r)

    def records_per_track(self, keylen: int, datalen: int) -> int:
        b1, b2 = _record_space(self.formula, self.f, keylen, datalen)
        if b1 > self.track_len:
            return 0
        if self.formula in (-2,):
            return (self.track_len - b1) // b2 + 1
        return self.track_len // b2

    def track_balance(self, used: int) -> int:
        """DS1TRBAL: device bytes left on a track after ``used``."""
        return max(0, self.track_len - used)


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


@lru_cache(maxsize=4096)
def _record_space(formula: int, f: tuple[int, ...], keylen: int, datalen: int) -> tuple[int, int]:
    return _space(formula, f, keylen, datalen)


def _space(formula: int, f: tuple[int, ...], keylen, datalen):
    """(b1, b2) of :meth:`Device.record_space`, for ints or, element by element,
    for arrays of key and data lengths (no branch on a length: ``(keylen != 0)``
    counts the key's overhead only when there is a key)."""
    keyed = keylen != 0
    if formula == -2:  # 2311, 2314
        c, x, d1, d2 = f[0], f[1], f[2], f[3]
        b1 = keylen + datalen + c * keyed
        b2 = (keylen + datalen) * d1 // d2 + c * keyed + x
        return b1, b2
    if formula == -1:  # 2305, 3330, 3340, 3350
        c, x = f[0], f[1]
        b = keylen + datalen + c * keyed + x
        return b, b
    if formula == 1:  # 3375, 3380
        f1, f2, f3 = f[0], f[1], f[2]
        fl1 = _round_up(datalen + f2, f1)
        fl2 = _round_up(keylen + f3, f1) * keyed
        return fl1 + fl2, fl1 + fl2
    # formula 2: 3390, 9345
    f1, f2, f3, f4, f5, f6 = f
    int1 = (datalen + f6 + f5 * 2 - 1) // (f5 * 2)
    int2 = (keylen + f6 + f5 * 2 - 1) // (f5 * 2)
    fl1 = f1 * f2 + _round_up(datalen + f6 + f4 * int1, f1)
    fl2 = (f1 * f3 + _round_up(keylen + f6 + f4 * int2, f1)) * keyed
    return fl1 + fl2, fl1 + fl2


_DEVICES: dict[str, Device] = {
    d.name: d
    for d in (
        Device(
            "2305",
            0x2305,
            8,
            14136,
            14568,
            -1,
            (202, 432),
            {"": 48, "1": 48, "2": 96},
            6,
            0x06,
            0x01,
        ),
        Device(
            "2311",
            0x2311,
            10,
            3625,
            3625,
            -2,
            (20, 61, 537, 512),
            {"": 200, "1": 200},
            3,
            0x01,
            0x01,
        ),
        Device(
            "2314",
            0x2314,
            20,
            7294,
            7294,
            -2,
            (45, 101, 2137, 2048),
            {"": 200, "1": 200},
            3,
            0x08,
            0x01,
        ),
        Device(
            "3330",
            0x3330,
            19,
            13030,
            13165,
            -1,
            (56, 135),
            {"": 404, "1": 404, "2": 808, "11": 808},
            7,
            0x09,
            0x01,
        ),
        Device(
            "3340",
            0x3340,
            12,
            8368,
            8535,
            -1,
            (75, 167),
            {"": 348, "1": 348, "35": 348, "2": 696, "70": 696},
            1,
            0x0A,
            0x01,
        ),
        Device("3350", 0x3350, 30, 19069, 19254, -1, (82, 185), {"": 555, "1": 555}, 5, 0x0B, 0x01),
        Device(
            "3375", 0x3375, 12, 35616, 36000, 1, (32, 384, 160), {"": 959, "1": 959}, 3, 0x0C, 0x30
        ),
        Device(
            "3380",
            0x3380,
            15,
            47476,
            47968,
            1,
            (32, 492, 236),
            {
                "": 885,
                "1": 885,
                "A": 885,
                "B": 885,
                "D": 885,
                "J": 885,
                "2": 1770,
                "E": 1770,
                "3": 2655,
                "K": 2655,
            },
            1,
            0x0E,
            0x30,
        ),
        Device(
            "3390",
            0x3390,
            15,
            56664,
            58786,
            2,
            (34, 19, 9, 6, 116, 6),
            {
                "": 1113,
                "1": 1113,
                "2": 2226,
                "3": 3339,
                "9": 10017,
                "27": 32760,
                "J": 32760,
                "54": 65520,
                "JJ": 65520,
            },
            1,
            0x0F,
            0x30,
        ),
        Device(
            "9345",
            0x9345,
            15,
            46456,
            48280,
            2,
            (34, 18, 7, 6, 116, 6),
            {"": 1440, "1": 1440, "2": 2156},
            0,
            0x04,
            0x30,
        ),
    )
}

_BY_CODE = {d.code: d for d in _DEVICES.values()}

#: Device types we create and write; the others are read only.
WRITABLE = ("3390", "3380")


def device(name: str) -> Device:
    """Look up a device by name ("3390") or name-model ("3390-9"); returns the Device."""
    base = name.upper().split("-", 1)[0]
    if base not in _DEVICES:
        raise NotFoundError(f"unknown device type {name!r} (known: {', '.join(_DEVICES)})")
    return _DEVICES[base]


def parse_devtype(spec: str) -> tuple[Device, int]:
    """'3390-9' -> (Device 3390, 10017 cylinders); '3390' -> model 1 size."""
    base, _, model = spec.upper().partition("-")
    dev = device(base)
    return dev, dev.cylinders(model or None)


def device_by_code(code: int) -> Device:
    """The device for an image header's dh_devtyp byte (X'90' -> 3390)."""
    if code not in _BY_CODE:
        raise NotFoundError(f"unknown device type code X'{code:02X}'")
    return _BY_CODE[code]


def all_devices() -> list[Device]:
    return list(_DEVICES.values())


__all__ = ["Device", "device", "device_by_code", "parse_devtype", "all_devices", "WRITABLE"]
