"""DSCB codecs: YDD dates, RECFM/DSORG text, data set names, F1/F3/F4/F5/F7 bytes.

Pure functions, so most checks are hypothesis round trips (FORMATS.md 5.2-5.7, 5.9, 7.1).
"""

from __future__ import annotations

import datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emulator import recfm as rf
from emulator.dataset import records
from emulator.dates import NEVER_EXPIRES, date_to_ydd, never_expires, ydd_to_date, yyddd
from emulator.errors import FormatError
from emulator.layouts import offsets
from emulator.layouts.vtoc import Format1, Format3, Format4, Format5, Format7
from emulator.volume.dscb import (
    DS1LARGE,
    Extent,
    cchh_to_trk,
    dataset_info,
    dsorg_text,
    dsorg_value,
    format3_extents,
    new_format1,
    new_format3,
    patch_format1,
    recfm_text,
    recfm_value,
    trk_to_cchh,
    validate_dsname,
)
from emulator.volume.vtoc import (
    build_f5,
    build_f7,
    complement,
    f5_entries,
    f5_free,
    f7_entries,
    f7_free,
    merge,
)

# -- dates ----------------------------------------------------------------------------


def test_ydd_known_values():
    # X'7E0147' is what dasdload wrote on 2026-11-24 (its day count starts at 0).
    assert ydd_to_date(bytes.fromhex("7E0147")) == datetime.date(2026, 11, 23)
    assert date_to_ydd(datetime.date(2026, 11, 23)) == bytes.fromhex("7E0147")
    assert ydd_to_date(b"\x00\x00\x00") is None
    assert date_to_ydd(None) == b"\x00\x00\x00"
    assert yyddd(datetime.date(2026, 11, 23)) == "26327"


def test_ydd_quirks():
    # dasdload's 0-based day: day 0 is 1 January, not an error
    assert ydd_to_date(bytes.fromhex("7E0000")) == datetime.date(2026, 1, 1)
    # MVS 3.8j wrote the year modulo 100
    assert ydd_to_date(bytes.fromhex("150044")) == datetime.date(2021, 3, 9)
    # "never expires" values, including the impossible day 366 of 1999
    assert never_expires(NEVER_EXPIRES) and never_expires(bytes.fromhex("63016E"))
    assert ydd_to_date(bytes.fromhex("63016E")) == datetime.date(1999, 12, 31)
    # not a date: decoding gives None instead of raising
    assert ydd_to_date(bytes.fromhex("7E0190")) is None  # day 400
    assert ydd_to_date(bytes.fromhex("7D016E")) is None  # day 366 of 2025
    assert ydd_to_date(b"\x01\x02") is None


def test_ydd_encode_refuses_unstorable_years():
    with pytest.raises(FormatError):
        date_to_ydd(datetime.date(1960, 1, 1))
    with pytest.raises(FormatError):
        date_to_ydd(datetime.date(2200, 1, 1))
    with pytest.raises(FormatError):
        date_to_ydd("2026-01-01")  # type: ignore[arg-type]


@given(st.dates(datetime.date(1970, 1, 1), datetime.date(2155, 12, 31)))
def test_ydd_round_trip(day):
    assert ydd_to_date(date_to_ydd(day)) == day


@given(st.binary(min_size=3, max_size=3))
def test_ydd_decode_never_raises(raw):
    value = ydd_to_date(raw)
    assert value is None or isinstance(value, datetime.date)


# -- RECFM and DSORG --------------------------------------------------------------------

RECFMS = {
    "F": 0x80,
    "FB": 0x90,
    "FBA": 0x94,
    "FBS": 0x98,
    "V": 0x40,
    "VB": 0x50,
    "VBA": 0x54,
    "VS": 0x48,
    "VBS": 0x58,
    "U": 0xC0,
    "FBM": 0x92,
}


@pytest.mark.parametrize("text,value", sorted(RECFMS.items()))
def test_recfm_table(text, value):
    # FORMATS.md 7.1 "Common values"
    assert recfm_value(text) == value
    assert recfm_text(value) == text
    assert recfm_value(text.lower()) == value


def _parsable(raw: int) -> bool:
    fmt = raw & 0xC0
    if raw & 0x06 == 0x06:  # A and M together
        return False
    if fmt == 0xC0 and raw & 0x18:  # U blocked or spanned
        return False
    return fmt != 0 or raw & 0x3E == 0  # bits without a format letter have no text form


@given(st.integers(0, 255).filter(_parsable))
def test_recfm_round_trip(raw):
    # the reserved bit X'01' is shown as a suffix and parsed back
    text = recfm_text(raw)
    assert recfm_value(text) == raw
    assert text.endswith("(X'01')") == bool(raw & 0x01)


def test_recfm_text_shows_everything():
    assert recfm_text(0x91) == "FB(X'01')"
    assert recfm_text(0x00) == ""
    assert recfm_text(0x01) == "(X'01')"
    assert recfm_text(0xD0) == "UB"  # shown although it cannot be written
    assert recfm_text(0x96) == "FBAM"
    assert recfm_value("") == 0 and recfm_value("fab") == 0x94


@pytest.mark.parametrize("bad", ["X", "FF", "FBB", "FAM", "F B", "Q", "UB", "US", "B", "(X'01')F"])
def test_recfm_bad(bad):
    with pytest.raises(FormatError):
        recfm_value(bad)


def test_recfm_is_declared_once():
    # the volume layer and the data set layer use the same pair of functions
    assert recfm_text is rf.recfm_text and recfm_value is rf.recfm_value
    assert records.recfm_text is rf.recfm_text and records.recfm_value is rf.recfm_value


@pytest.mark.parametrize(
    "text,value",
    [
        ("PS", 0x4000),
        ("PO", 0x0200),
        ("DA", 0x2000),
        ("IS", 0x8000),
        ("VS", 0x0008),
        ("POU", 0x0300),
        ("PSU", 0x4100),
        ("", 0),
        ("U", 0x0100),
    ],
)
def test_dsorg(text, value):
    assert dsorg_value(text) == value
    assert dsorg_text(value) == text


def test_dsorg_bad():
    with pytest.raises(FormatError):
        dsorg_value("XY")


# -- names ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name,expect",
    [
        ("sys1.maclib", "SYS1.MACLIB"),
        ("A", "A"),
        ("@#$.X-1", "@#$.X-1"),
        (
            "ABCDEFGH.ABCDEFGH.ABCDEFGH.ABCDEFGH.ABCDEFGH",
            "ABCDEFGH.ABCDEFGH.ABCDEFGH.ABCDEFGH.ABCDEFGH",
        ),
    ],
)
def test_dsname_ok(name, expect):
    assert validate_dsname(name) == expect


@pytest.mark.parametrize(
    "name",
    ["", "1ABC", "A..B", "ABCDEFGHI", "A.B.", ".A", "A B", "A*", "A" + ".B" * 22, "A_B", "-A"],
)
def test_dsname_bad(name):
    with pytest.raises(FormatError):
        validate_dsname(name)


# -- extents and CCHH ---------------------------------------------------------------------


@given(st.integers(0, 65520 * 15 - 1))
def test_cchh_round_trip_3390(trk):
    # up to 65520 cylinders (the most we create) the EAV 28-bit form is never needed:
    # the CCHH is the plain cylinder and head
    cyl, head = trk_to_cchh(trk, 15)
    assert (cyl, head) == divmod(trk, 15)
    assert cchh_to_trk(cyl, head, 15) == trk


@given(st.integers(0, 555 * 30 - 1))
def test_cchh_round_trip_3350(trk):
    # 30 heads: the EAV cylinder form must not be applied
    cyl, head = trk_to_cchh(trk, 30)
    assert (cyl, head) == divmod(trk, 30)
    assert cchh_to_trk(cyl, head, 30) == trk


def test_extent_tracks():
    assert Extent(0, 15, 29, 0x81).tracks == 15


# -- DSCB bytes: hypothesis round trips ---------------------------------------------------

extent_st = st.builds(
    lambda t, s, b, n: Extent(s, b, b + n, t),
    st.integers(1, 255),
    st.integers(0, 255),
    st.integers(0, 65000 * 15),
    st.integers(0, 5000),
)


@settings(max_examples=200)
@given(st.binary(min_size=140, max_size=140))
def test_f1_bytes_round_trip(raw):
    raw = raw[:44] + b"\xf1" + raw[45:]
    # parse then build gives the same 140 bytes; so does a patch that changes nothing
    assert Format1.build(Format1.parse(raw)) == raw
    assert patch_format1(raw) == raw


@settings(max_examples=200)
@given(st.binary(min_size=140, max_size=140))
def test_f3_f4_f5_f7_bytes_round_trip(raw):
    for layout in (Format3, Format4, Format5, Format7):
        assert layout.build(layout.parse(raw)) == raw


def test_format7_layout():
    # FORMATS.md 5.7: key id at 0, 5 extents of 8, X'F7' at 44, 11 more, 2 reserved,
    # next-F7 CCHHR at 135
    assert Format7.sizeof() == 140
    assert offsets(Format7) == {
        "ds7keyid": 0,
        "ds7extnt": 4,
        "ds7fmtid": 44,
        "ds7adext": 45,
        "ds7res1": 133,
        "ds7ptrds": 135,
    }
    raw = build_f7(f7_entries([(30, 150254)]), (0, 1, 4))
    # the end word is the last free track + 1 (s390-tools "ending RTA value + 1")
    assert raw[:4] == b"\x07" * 4 and raw[44] == 0xF7
    assert raw[4:12] == (30).to_bytes(4, "big") + (150255).to_bytes(4, "big")
    assert raw[12:44] == bytes(32) and raw[45:135] == bytes(90)
    assert raw[135:140] == bytes.fromhex("0000000104")
    assert f7_free([raw]) == [(30, 150254)]


@given(st.lists(st.tuples(st.integers(0, 982799), st.integers(1, 100000)), max_size=60))
def test_f7_round_trip(spans):
    # any free intervals of a 3390-54 survive F7 encoding, 16 to a DSCB
    free = merge([(b, min(b + n - 1, 982799)) for b, n in spans])
    entries = f7_entries(free)
    chunks = [entries[i : i + 16] for i in range(0, len(entries), 16)] or [[]]
    raws = [build_f7(c) for c in chunks]
    assert all(len(r) == 140 and r[44] == 0xF7 for r in raws)
    assert f7_free(raws) == free


def test_f7_bad_extent():
    raw = bytearray(build_f7([]))
    raw[4:12] = (100).to_bytes(4, "big") + (100).to_bytes(4, "big")
    with pytest.raises(FormatError, match="not after start"):
        f7_free([bytes(raw)], "VOL001 F7 DSCB", "x.3390")


@given(
    st.lists(extent_st, max_size=13),
    st.tuples(st.integers(0, 65535), st.integers(0, 14), st.integers(0, 255)),
)
def test_f3_extents_round_trip(extents, ptr):
    raw = new_format3(extents, 15, ptr)
    assert len(raw) == 140 and raw[:4] == b"\x03\x03\x03\x03" and raw[44] == 0xF3
    assert format3_extents(raw, 15) == extents
    assert new_format3(format3_extents(raw, 15), 15, ptr) == raw


@given(st.lists(st.tuples(st.integers(0, 65534), st.integers(1, 400)), max_size=40))
def test_f5_round_trip(spans):
    # any free intervals (merged, inside 65535 tracks) survive F5 encoding
    free = merge([(b, min(b + n - 1, 65534)) for b, n in spans])
    entries = f5_entries(free, 15)
    chunks = [entries[i : i + 26] for i in range(0, len(entries), 26)] or [[]]
    raws = [build_f5(c) for c in chunks]
    assert all(len(r) == 140 and r[44] == 0xF5 for r in raws)
    assert merge(f5_free(raws, 15)) == free


def test_complement():
    assert complement([(0, 0), (1, 14)], 150) == [(15, 149)]
    assert complement([(0, 0), (5, 9), (7, 20), (149, 149)], 150) == [(1, 4), (21, 148)]
    assert complement([(0, 200)], 150) == []


# -- DatasetInfo ----------------------------------------------------------------------------


def _f1(**kw):
    args = dict(
        dsname="USER.TEST.DATA",
        volser="VOL001",
        dsorg=0x0200,
        recfm=0x90,
        lrecl=80,
        blksize=3120,
        keylen=0,
        extents=[Extent(0, 15, 16, 1), Extent(1, 30, 44, 1)],
        heads=15,
        unit="TRK",
        secondary=5,
        created=datetime.date(2026, 11, 23),
        expires=None,
        dsind=0xA0,
        syscd="DASD-SSM",
    )
    args.update(kw)
    return new_format1(**args)


def test_dataset_info_fields():
    raw = patch_format1(_f1(), lstar=(1, 4), ds1trbal=1234, ds1nobdb=14)
    info = dataset_info(raw, [], "VOL001", 15, (0, 1, 3))
    assert info.dsname == "USER.TEST.DATA" and info.volser == "VOL001"
    assert (info.dsorg, info.recfm, info.lrecl, info.blksize) == ("PO", "FB", 80, 3120)
    assert info.extents == [Extent(0, 15, 16, 1), Extent(1, 30, 44, 1)]
    assert info.tracks == 17 and info.used_tracks == 2 and info.noepv == 2
    assert info.lstar == (1, 4) and info.trbal == 1234 and info.nobdb == 14
    assert info.space == ("TRK", 2, 5)
    assert info.created == datetime.date(2026, 11, 23) and info.expires is None
    assert info.f1 == raw and info.dscb == (0, 1, 3)
    assert Format1.parse(raw).ds1dsind == 0xA0


def test_dataset_info_f3_and_cyl_space():
    exts = [Extent(i, 15 * (i + 1), 15 * (i + 1) + 14, 0x81) for i in range(5)]
    raw = _f1(extents=exts, unit="CYL", secondary=1, f3_ptr=(0, 1, 9))
    f3 = new_format3(exts[3:], 15)
    info = dataset_info(raw, [f3], "VOL001", 15, (0, 1, 3))
    assert info.extents == exts and info.tracks == 75
    assert info.space == ("CYL", 1, 1)
    assert info.used_tracks == 0  # DS1LSTAR 0/0: nothing written


def test_used_tracks_large_format():
    raw = patch_format1(_f1(), ds1flag1=DS1LARGE)
    raw = patch_format1(raw, lstar=(0x012345, 7))
    info = dataset_info(raw, [], "VOL001", 15, (0, 1, 3))
    assert info.lstar == (0x012345, 7) and info.used_tracks == 0x012346
    with pytest.raises(FormatError):
        patch_format1(_f1(), lstar=(0x10000, 1))  # not LARGE: 16-bit TT only


def test_patch_format1_keeps_other_bytes():
    raw = bytearray(_f1())
    raw[78] = 0x55  # DS1SMSFG: a field we do not model
    raw[85] = 0x80  # DS1OPTCD
    out = patch_format1(bytes(raw), ds1lrecl=133)
    assert out[78] == 0x55 and out[85] == 0x80
    assert out[88:90] == (133).to_bytes(2, "big")
    diff = [i for i in range(140) if out[i] != raw[i]]
    assert diff == [89]


def test_patch_format1_bad_field():
    with pytest.raises(FormatError):
        patch_format1(_f1(), ds1nosuch=1)
    with pytest.raises(FormatError):
        patch_format1(_f1(), ds1lrecl=70000)
    with pytest.raises(FormatError):
        dataset_info(b"\xf1" * 100, [], "V", 15, (0, 1, 1))


def test_extent_head_out_of_range():
    from emulator.layouts.vtoc import Extent as ExtentLayout
    from emulator.volume.dscb import extent_of

    good = ExtentLayout.parse(bytes([1, 0, 0, 1, 0, 14, 0, 2, 0, 0]))
    assert extent_of(good, 15) == Extent(0, 29, 30, 1)
    bad = ExtentLayout.parse(bytes([1, 0, 0, 1, 0, 15, 0, 2, 0, 0]))
    with pytest.raises(FormatError, match="head 15"):
        extent_of(bad, 15)
    assert extent_of(ExtentLayout.parse(bytes(10)), 15) is None
