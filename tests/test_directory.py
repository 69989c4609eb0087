"""PDS directory blocks and ISPF statistics (FORMATS.md 6.1-6.4).

Pure codecs are checked with hypothesis round trips; the packing is checked byte for
byte against directories Hercules dasdload wrote (the real genvol fixture and a volume
built here).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emulator.errors import FormatError, SpaceError
from emulator.image import open_image
from emulator.pds.directory import (
    DirEntry,
    EntryColumns,
    blocks_needed,
    build_blocks,
    check,
    load_module_alias_name,
    name_to_bytes,
    nobdb,
    note_list_ref,
    parse_blocks,
    relocate_userdata,
    validate_name,
)
from emulator.pds.ispf import IspfStats
from emulator.track import parse_track

GENVOL = "GENERATED__hercules-3.13-dasdload__genvol.3390"

# -- strategies -----------------------------------------------------------------------
FIRST = "ABCDEFGHIJKLMNOPQRSTUVWXYZ@#$"
REST = FIRST + "0123456789"
names = st.builds(lambda a, b: a + b, st.sampled_from(FIRST), st.text(REST, max_size=7))


@st.composite
def entries(draw) -> DirEntry:
    userlen = 2 * draw(st.integers(0, 31))
    userdata = draw(st.binary(min_size=userlen, max_size=userlen))
    max_ttrs = 0 if userlen < 3 else min(3, (userlen - 3) // 4 + 1)
    return DirEntry(
        name=draw(names),
        ttr=(draw(st.integers(0, 0xFFFF)), draw(st.integers(0, 0xFF))),
        alias=draw(st.booleans()),
        ttr_count=draw(st.integers(0, max_ttrs)),
        userdata=userdata,
    )


member_sets = st.lists(entries(), max_size=120, unique_by=lambda e: e.name)


# -- directory blocks -----------------------------------------------------------------
# No deadline: the first example may compile the packing kernels (a fresh Numba cache).
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(member_sets, st.integers(0, 3))
def test_build_then_parse_gives_the_entries_sorted(members, spare):
    nblocks = blocks_needed(members) + spare
    blocks = build_blocks(members, nblocks)
    assert len(blocks) == nblocks
    assert all(len(k) == 8 and len(d) == 256 for k, d in blocks)
    parsed = parse_blocks(blocks)
    assert parsed == sorted(members, key=lambda e: name_to_bytes(e.name))
    assert check(blocks) == []
    # Every used count includes itself and the 12-byte end marker of the last block.
    end_block = next(i for i, (k, _) in enumerate(blocks) if k == b"\xff" * 8)
    assert end_block == blocks_needed(members) - 1
    assert nobdb(members, nblocks) == int.from_bytes(blocks[end_block][1][:2], "big") & 0xFF
    for key, data in blocks[end_block + 1 :]:
        assert key == b"\x00" * 8 and data == b"\x00" * 256


@settings(max_examples=100, deadline=None)
@given(member_sets)
def test_packing_fills_each_block_before_starting_the_next(members):
    blocks = build_blocks(members, blocks_needed(members))
    ordered = sorted(members, key=lambda e: name_to_bytes(e.name))
    sizes = [e.size for e in ordered] + [12]
    pos = 0
    for _, data in blocks[:-1]:
        used = int.from_bytes(data[:2], "big")
        consumed = 2
        while pos < len(sizes) and consumed + sizes[pos] <= used:
            consumed += sizes[pos]
            pos += 1
        assert consumed == used
        # The next entry did not fit, so it started a new block.
        assert used + sizes[pos] > 256


@settings(max_examples=100, deadline=None)
@given(member_sets, member_sets)
def test_entry_columns_hold_the_entries_and_later_names_win(first, second):
    """What an import builds a directory from (EntryColumns, no object per entry):
    the same blocks as the entries themselves; joined, a later name replaces an earlier."""
    cols = EntryColumns.of(first)
    assert [cols.entry(i) for i in range(len(cols))] == first
    nblocks = blocks_needed(first) + 1
    assert cols.build(nblocks) == (build_blocks(first, nblocks), nobdb(first, nblocks))
    merged = {e.name: e for e in first} | {e.name: e for e in second}
    joined = EntryColumns.join([cols, EntryColumns.of(second)])
    assert sorted(map(joined.entry, range(len(joined))), key=lambda e: e.name) == sorted(
        merged.values(), key=lambda e: e.name
    )
    assert joined.blocks_needed() == blocks_needed(list(merged.values()))
    for e in second:
        assert joined.entry(joined.find(e.name)) == e


@pytest.mark.parametrize(
    ("name", "ttr_count", "userdata", "message"),
    [
        (b"", 0, b"", "not 1-8 characters"),
        (b"\xc1" * 9, 0, b"", "not 1-8 characters"),
        (b"\xc1", 4, b"", "user TTRs"),
        (b"\xc1", 0, b"\x00" * 3, "must be even"),
        (b"\xc1", 0, b"\x00" * 64, "at most 62"),
    ],
)
def test_entry_columns_refuse_what_a_dir_entry_refuses(name, ttr_count, userdata, message):
    raw = np.frombuffer(name + userdata, dtype=np.uint8)
    with pytest.raises(FormatError, match=message):
        EntryColumns.gather(
            raw, [0], [len(name)], [0], [False], [ttr_count], [len(name)], [len(userdata)]
        )


def test_empty_directory_is_x000e():
    blocks = build_blocks([], 3)
    assert blocks[0] == (b"\xff" * 8, b"\x00\x0e" + b"\xff" * 8 + b"\x00" * 246)
    assert blocks[1:] == [(b"\x00" * 8, b"\x00" * 256)] * 2
    assert parse_blocks(blocks) == []
    assert nobdb([], 3) == 14


def test_directory_full_raises_space_error_naming_the_sizes():
    members = [DirEntry(f"M{i:04d}", (0, 1), userdata=b"\x00" * 30) for i in range(13)]
    assert blocks_needed(members) == 3  # 6 entries of 42 bytes per block, end marker
    with pytest.raises(SpaceError, match="directory full: 2 blocks, need 3"):
        build_blocks(members, 2)
    with pytest.raises(SpaceError, match="directory full"):
        nobdb(members, 2)
    assert len(build_blocks(members, 3)) == 3


def test_end_marker_goes_to_a_new_block_when_it_does_not_fit():
    # 6 entries of 42 bytes use 254 bytes: the end marker needs a block of its own.
    members = [DirEntry(f"A{i}", (0, 1), userdata=b"\x00" * 30) for i in range(6)]
    blocks = build_blocks(members, 2)
    assert int.from_bytes(blocks[0][1][:2], "big") == 254
    assert blocks[0][0] == name_to_bytes("A5")
    assert blocks[1][0] == b"\xff" * 8 and blocks[1][1][:2] == b"\x00\x0e"
    with pytest.raises(SpaceError, match="directory full: 1 blocks, need 2"):
        build_blocks(members, 1)


def test_duplicate_names_are_refused():
    with pytest.raises(FormatError, match="duplicate"):
        build_blocks([DirEntry("A", (0, 1)), DirEntry("A", (0, 2))], 2)


@settings(max_examples=300)
@given(
    st.lists(
        st.tuples(st.binary(min_size=8, max_size=8), st.binary(min_size=256, max_size=256)),
        min_size=1,
        max_size=4,
    )
)
def test_garbage_blocks_raise_only_format_error(blocks):
    try:
        parse_blocks(blocks, where="X.PDS")
    except FormatError as exc:
        assert "X.PDS" in str(exc)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x00\x00" + b"\x00" * 254, "directory block 2: used-byte count 0 at offset 0"),
        (b"\x01\x01" + b"\x00" * 254, "used-byte count 257"),
        (b"\x00\x10" + b"\xc1" * 8 + b"\x00\x00\x01\x00" + b"\x00" * 242, "entry at offset 14"),
        (
            b"\x00\x14" + b"\xc1" * 8 + b"\x00\x00\x01\x0f" + b"\x00" * 242,
            "runs past the used count 20",
        ),
    ],
)
def test_bad_blocks_name_the_block_and_offset(data, message):
    good = build_blocks([DirEntry("A", (0, 3))], 1)
    # A first block without the end marker, so parsing goes on to block 2.
    first = (name_to_bytes("A"), b"\x00\x0e" + good[0][1][2:14] + b"\x00" * 242)
    with pytest.raises(FormatError, match=message) as info:
        parse_blocks([first, (b"\x00" * 8, data)], where="MY.PDS")
    assert "MY.PDS directory block 2" in str(info.value)


def test_missing_end_marker_and_wrong_sizes():
    body = b"\x00\x0e" + name_to_bytes("A") + b"\x00\x00\x03\x00" + b"\x00" * 242
    with pytest.raises(FormatError, match="no end-of-directory entry"):
        parse_blocks([(name_to_bytes("A"), body)], where="P")
    with pytest.raises(FormatError, match="key length 0 and data length 256"):
        parse_blocks([(b"", body)])


def test_check_flags_order_and_keys_but_parse_accepts_them():
    a, b = DirEntry("B", (0, 3)), DirEntry("A", (0, 5))
    body = b"\x00\x26" + a.pack() + b.pack() + b"\xff" * 8 + b"\x00" * 4
    blocks = [(b"\xff" * 8, body.ljust(256, b"\x00")), (b"\x00" * 8, b"\x00" * 256)]
    assert [e.name for e in parse_blocks(blocks)] == ["B", "A"]
    problems = check(blocks)
    assert any("'A' is out of order" in p for p in problems)
    blocks[1] = (b"\x00" * 8, b"\x01" + b"\x00" * 255)
    assert any("after the end is not empty" in p for p in check(blocks))
    wrong_key = [(name_to_bytes("Z"), blocks[0][1])]
    assert any("is not its last name" in p for p in check(wrong_key))


def test_entry_fields_and_c_byte():
    e = DirEntry("REVIEW", (1, 2), alias=True, ttr_count=1, userdata=b"\x00" * 34)
    assert e.c_byte == 0x80 | 0x20 | 17
    assert e.size == 46
    assert e.pack()[:12] == name_to_bytes("REVIEW") + b"\x00\x01\x02\xb1"
    with pytest.raises(FormatError):
        DirEntry("A", (0, 1), userdata=b"\x00" * 3)
    with pytest.raises(FormatError):
        DirEntry("A", (0, 1), userdata=b"\x00" * 64)
    with pytest.raises(FormatError):
        DirEntry("A", (0x10000, 1))
    odd = DirEntry("A", (0, 1), ttr_count=2, userdata=b"\x00" * 4)
    assert odd.user_ttrs == [(0, 0)]
    assert any("counts 2 user TTRs" in p for p in check(build_blocks([odd], 1)))


@pytest.mark.parametrize("name", ["A", "ABCDEFGH", "@#$", "$1", "x12", "IEFBR14"])
def test_valid_member_names(name):
    assert validate_name(name) == name.upper()


@pytest.mark.parametrize("name", ["", "1ABC", "ABCDEFGHI", "A B", "A.B", "A-B", "ÄB"])
def test_invalid_member_names(name):
    with pytest.raises(FormatError, match="invalid member name"):
        validate_name(name)


def test_load_module_user_ttrs_relocate_and_alias_name():
    # REVIEW.LOAD alias FSH from the genvol fixture (IHAPDS, FORMATS.md 6.4).
    userdata = bytes.fromhex("00010c0000000000c2e3042f782c00000000880a00000000d9c5e5c9c5e640400101")
    alias = DirEntry("FSH", (1, 2), alias=True, ttr_count=1, userdata=userdata)
    assert alias.user_ttrs == [(1, 12)]
    assert load_module_alias_name(alias) == "REVIEW"
    assert note_list_ref(alias) is None
    moved = relocate_userdata(alias, {(1, 12): (0, 7)})
    assert moved[:3] == b"\x00\x00\x07" and moved[3:] == userdata[3:]
    main = DirEntry(
        "M", (0, 4), ttr_count=2, userdata=bytes.fromhex("0000050000000902") + b"\x00" * 16
    )
    assert main.user_ttrs == [(0, 5), (0, 9)]
    assert note_list_ref(main) == ((0, 9), 2)
    assert main.ispf is None and load_module_alias_name(main) is None


# -- against Hercules dasdload ---------------------------------------------------------
def _dir_blocks(image_path, start_trk: int, count: int) -> list[tuple[bytes, bytes]]:
    image = open_image(image_path)
    try:
        recs = parse_track(image.read_track(start_trk))[:count]
    finally:
        image.close()
    return [(r.key, r.data) for r in recs]


# (relative location of the directory in the fixture: absolute track, blocks, nobdb)
GENVOL_DIRS = {
    "REVIEW.HELP": (1, 3, 140, 15, 5),
    "REVIEW.LOAD": (16, 3, 142, 14, 9),
    "RTI.LOADLIB": (24, 2, 158, 11, 0),
    "PYTHON.XMI.PDS": (26, 1, 68, 2, 0),
}


@pytest.mark.parametrize("dsname", sorted(GENVOL_DIRS))
def test_rebuilding_dasdload_directories_gives_the_same_bytes(real_fixtures, dsname):
    trk, count, expected_nobdb, n_entries, n_aliases = GENVOL_DIRS[dsname]
    blocks = _dir_blocks(real_fixtures / GENVOL, trk, count)
    members = parse_blocks(blocks, where=dsname)
    assert len(members) == n_entries
    assert sum(e.alias for e in members) == n_aliases
    assert build_blocks(members, count) == blocks
    assert nobdb(members, count) == expected_nobdb
    assert check(blocks) == []


def test_review_help_ispf_statistics(real_fixtures):
    blocks = _dir_blocks(real_fixtures / GENVOL, 1, 3)
    stats = {e.name: e.ispf for e in parse_blocks(blocks)}
    review = stats["REVIEW"]
    assert review is not None
    assert (review.vv_mm, review.userid) == ("50.02", "GREG")
    assert review.created == dt.date(1984, 8, 24)
    assert review.changed == dt.datetime(2021, 12, 18, 20, 58, 5)
    assert (review.current, review.initial, review.modified) == (2246, 76, 0)
    assert stats["FSH"] == stats["FSHELP"]


def test_load_module_user_data_is_not_taken_for_statistics(real_fixtures):
    for trk, count in ((16, 3), (24, 2)):
        for entry in parse_blocks(_dir_blocks(real_fixtures / GENVOL, trk, count)):
            assert entry.ispf is None
            assert entry.ttr_count == 1


def test_dasdload_empty_directory_matches_build_blocks(hercules, tmp_path):
    image = hercules.dasdload(
        "EMPTYV 3390 3\nEMPTY.PO empty trk 5 2 10 po fb 80 3120\n", tmp_path / "e.3390", tmp_path
    )
    blocks = _dir_blocks(image, 1, 10)
    assert blocks == build_blocks([], 10)
    assert parse_blocks(blocks) == []


# -- ISPF statistics -------------------------------------------------------------------
FORMATS_EXAMPLE = bytes.fromhex("010000170121068F0121068F0011005300530000C8C5D9C3F0F140404040")


def test_formats_md_example_decodes_field_by_field():
    stats = IspfStats.decode(FORMATS_EXAMPLE)
    assert stats is not None
    assert (stats.version, stats.mod, stats.vv_mm) == (1, 0, "01.00")
    assert stats.flags == 0 and not stats.sclm and not stats.extended
    assert stats.created == dt.date(2021, 3, 9)  # 2021 day 068
    assert stats.created.timetuple().tm_yday == 68
    assert stats.changed == dt.datetime(2021, 3, 9, 0, 11, 17)
    assert (stats.current, stats.initial, stats.modified) == (83, 83, 0)
    assert stats.userid == "HERC01"
    assert stats.encode() == FORMATS_EXAMPLE
    assert stats.as_dict()["changed"] == "2021-03-09 00:11:17"


dates = st.dates(dt.date(1900, 1, 1), dt.date(2099, 12, 31))
stats_strategy = st.builds(
    IspfStats,
    version=st.integers(0, 99),
    mod=st.integers(0, 99),
    created=dates,
    changed=st.datetimes(dt.datetime(1900, 1, 1), dt.datetime(2099, 12, 31, 23, 59, 59)).map(
        lambda d: d.replace(microsecond=0)
    ),
    current=st.integers(0, 0xFFFFFFFF),
    initial=st.integers(0, 0xFFFFFFFF),
    modified=st.integers(0, 0xFFFFFFFF),
    userid=st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789@#$", min_size=1, max_size=8),
    flags=st.integers(0, 255).map(lambda f: f & ~0x20),
    extended=st.booleans(),
)


@settings(max_examples=300)
@given(stats_strategy)
def test_ispf_round_trip(stats):
    raw = stats.encode()
    extended = stats.extended or stats.needs_extended
    assert len(raw) == (40 if extended else 30)
    assert bool(raw[2] & 0x20) == extended
    back = IspfStats.decode(raw)
    assert back == replace(stats, extended=extended)
    if extended:
        assert int.from_bytes(raw[14:16], "big") == min(stats.current, 0xFFFF)
        assert int.from_bytes(raw[28:32], "big") == stats.current


@settings(max_examples=300)
@given(
    st.one_of(
        st.binary(min_size=30, max_size=30),
        st.binary(min_size=40, max_size=40),
        st.binary(max_size=62),
    )
)
def test_decode_never_raises_on_odd_user_data(data):
    stats = IspfStats.decode(data)
    if stats is not None:
        assert len(data) in (30, 40)
        # What was believed must be encodable again.
        assert IspfStats.decode(stats.encode()) == stats


@pytest.mark.parametrize(
    ("offset", "value"),
    [
        (3, 0x60),  # 60 seconds
        (3, 0x1A),  # not a digit
        (4, 0x02),  # century byte 2
        (7, 0x0E),  # sign nibble E
        (6, 0x00),  # day 000 (bytes 5-7 = 21 00 0F)
        (12, 0x24),  # hour 24
        (13, 0x60),  # minute 60
        (0, 100),  # version 100
    ],
)
def test_implausible_fields_mean_not_statistics(offset, value):
    raw = bytearray(FORMATS_EXAMPLE)
    raw[offset] = value
    if offset == 6:
        raw[5:8] = bytes.fromhex("21000F")
    assert IspfStats.decode(bytes(raw)) is None


def test_day_366_only_in_leap_years():
    raw = bytearray(FORMATS_EXAMPLE)
    raw[4:8] = bytes.fromhex("0120366F")
    assert IspfStats.decode(bytes(raw)).created == dt.date(2020, 12, 31)
    raw[4:8] = bytes.fromhex("0121366F")
    assert IspfStats.decode(bytes(raw)) is None


def test_wrong_lengths_and_extended_without_flag():
    assert IspfStats.decode(FORMATS_EXAMPLE[:28]) is None
    assert IspfStats.decode(FORMATS_EXAMPLE + b"\x00" * 10) is None  # 40 bytes, no X'20'


def test_new_and_updated_follow_the_editor():
    t0 = dt.datetime(2024, 2, 29, 13, 5, 9, 123456)
    stats = IspfStats.new(10, "ibmuser", t0)
    assert (stats.version, stats.mod, stats.userid) == (1, 0, "IBMUSER")
    assert stats.created == dt.date(2024, 2, 29) and stats.changed == t0.replace(microsecond=0)
    assert (stats.current, stats.initial, stats.modified) == (10, 10, 0)
    assert len(stats.encode()) == 30

    old = [b"%02d" % i for i in range(10)]
    new = old[:3] + [b"XX", b"YY"] + old[4:]  # one line changed, one inserted
    t1 = dt.datetime(2025, 1, 1, 0, 0, 1)
    upd = stats.updated(len(new), "HERC01", t1, old=old, new=new)
    assert (upd.version, upd.mod) == (1, 1)
    assert upd.created == stats.created and upd.changed == t1
    assert (upd.current, upd.initial, upd.modified) == (11, 10, 2)
    assert upd.userid == "HERC01"
    # Without the records the previous count is kept.
    assert upd.updated(11, "X", t1).modified == 2

    top = replace(stats, mod=99)
    assert top.updated(10, "X", t1).mod == 99


def test_more_than_65535_lines_use_the_extended_form():
    stats = IspfStats.new(70000, "U", dt.datetime(2030, 6, 1, 8, 0, 0))
    assert stats.extended
    raw = stats.encode()
    assert len(raw) == 40 and raw[2] & 0x20
    assert raw[14:16] == b"\xff\xff" and int.from_bytes(raw[28:32], "big") == 70000
    entry = DirEntry("BIG", (0, 3), userdata=raw)
    assert entry.c_byte & 0x1F == 20
    assert entry.ispf == stats


def test_encode_refuses_values_it_cannot_store():
    stats = IspfStats.new(1, "U", dt.datetime(2030, 6, 1))
    with pytest.raises(FormatError, match="year 2100"):
        replace(stats, created=dt.date(2100, 1, 1)).encode()
    with pytest.raises(FormatError, match="line count"):
        replace(stats, current=-1).encode()
    with pytest.raises(FormatError):
        replace(stats, userid="TOOLONGID").encode()
