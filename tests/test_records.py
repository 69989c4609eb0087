"""Record formats (FORMATS.md 7): blocking round trips, corruption, text conversion."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emulator import codepage as cp
from emulator.dataset import records as rf
from emulator.dataset.records import (
    LRECL_X,
    RECFM_A,
    RECFM_B,
    RECFM_F,
    RECFM_M,
    RECFM_S,
    RECFM_U,
    RECFM_V,
    block,
    deblock,
    lines_to_records,
    recfm_text,
    recfm_value,
    records_to_lines,
    split_bytes,
)
from emulator.errors import FormatError

F, FB, FBS = RECFM_F, RECFM_F | RECFM_B, RECFM_F | RECFM_B | RECFM_S
V, VB, VS, VBS = RECFM_V, RECFM_V | RECFM_B, RECFM_V | RECFM_S, RECFM_V | RECFM_B | RECFM_S
U = RECFM_U
CONTROL = (0, RECFM_A, RECFM_M)

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# -- strategies ------------------------------------------------------------------------
@st.composite
def fixed_case(draw):
    recfm = draw(st.sampled_from((F, FB, FBS, F | RECFM_S))) | draw(st.sampled_from(CONTROL))
    lrecl = draw(st.integers(1, 120))
    blksize = lrecl if recfm & RECFM_B == 0 else lrecl * draw(st.integers(1, 12))
    blksize += draw(st.integers(0, lrecl - 1))  # BLKSIZE need not be a multiple
    recs = draw(st.lists(st.binary(min_size=lrecl, max_size=lrecl), max_size=40))
    return recfm, lrecl, blksize, recs


@st.composite
def variable_case(draw):
    recfm = draw(st.sampled_from((V, VB))) | draw(st.sampled_from(CONTROL))
    lrecl = draw(st.integers(4, 300))
    blksize = draw(st.integers(lrecl + 4, lrecl + 400))
    recs = draw(st.lists(st.binary(max_size=lrecl - 4), max_size=40))
    return recfm, lrecl, blksize, recs


@st.composite
def spanned_case(draw):
    recfm = draw(st.sampled_from((VS, VBS))) | draw(st.sampled_from(CONTROL))
    blksize = draw(st.integers(9, 200))
    lrecl = draw(st.sampled_from((LRECL_X, 0, 2000)))
    # records much longer than the block must span several blocks
    recs = draw(st.lists(st.binary(max_size=900), max_size=25))
    return recfm, lrecl, blksize, recs


@st.composite
def undefined_case(draw):
    recfm = U | draw(st.sampled_from(CONTROL))
    blksize = draw(st.integers(1, 300))
    recs = draw(st.lists(st.binary(min_size=1, max_size=blksize), max_size=40))
    return recfm, 0, blksize, recs


any_case = st.one_of(fixed_case(), variable_case(), spanned_case(), undefined_case())


# -- round trips ------------------------------------------------------------------------
@FAST
@given(any_case)
def test_deblock_of_block_gives_the_records(case):
    recfm, lrecl, blksize, recs = case
    blocks = block(recfm, lrecl, blksize, recs)
    assert all(0 < len(b) <= blksize for b in blocks)
    assert deblock(recfm, lrecl, blocks) == recs


@FAST
@given(any_case)
def test_block_of_deblock_gives_the_blocks(case):
    recfm, lrecl, blksize, recs = case
    blocks = block(recfm, lrecl, blksize, recs)
    assert block(recfm, lrecl, blksize, deblock(recfm, lrecl, blocks)) == blocks


@FAST
@given(fixed_case())
def test_fixed_blocks_are_full_except_the_last(case):
    recfm, lrecl, blksize, recs = case
    blocks = block(recfm, lrecl, blksize, recs)
    per = blksize // lrecl if recfm & RECFM_B else 1
    assert all(len(b) == per * lrecl for b in blocks[:-1])
    assert sum(len(b) for b in blocks) == lrecl * len(recs)


@FAST
@given(variable_case())
def test_variable_descriptors(case):
    recfm, lrecl, blksize, recs = case
    blocks = block(recfm, lrecl, blksize, recs)
    if not recfm & RECFM_B:
        assert len(blocks) == len(recs)
    for b in blocks:
        assert struct.unpack(">HH", b[:4]) == (len(b), 0)
        pos = 4
        while pos < len(b):
            length, zero = struct.unpack_from(">HH", b, pos)
            assert zero == 0 and length >= 4
            pos += length
        assert pos == len(b)


@FAST
@given(spanned_case())
def test_spanned_segments(case):
    recfm, lrecl, blksize, recs = case
    blocks = block(recfm, lrecl, blksize, recs)
    codes = []
    for b in blocks:
        assert struct.unpack(">HH", b[:4]) == (len(b), 0)
        pos = 4
        nseg = 0
        while pos < len(b):
            length, code, zero = struct.unpack_from(">HBB", b, pos)
            assert zero == 0 and code in (0, 1, 2, 3)
            codes.append(code)
            pos += length
            nseg += 1
        if not recfm & RECFM_B:
            assert nseg == 1  # VS: one segment per block
    # a record longer than a block is split: first ... middle ... last
    assert codes.count(1) == codes.count(2)
    if any(len(r) + 8 > blksize for r in recs):
        assert 1 in codes


def test_spanned_example_by_hand():
    # VBS, BLKSIZE 20: a 30-byte record then a 2-byte one.
    rec1, rec2 = bytes(range(30)), b"\xc1\xc2"
    blocks = block(VBS, LRECL_X, 20, [rec1, rec2])
    assert blocks == [
        b"\x00\x14\x00\x00" + b"\x00\x10\x01\x00" + rec1[:12],
        b"\x00\x14\x00\x00" + b"\x00\x10\x03\x00" + rec1[12:24],
        b"\x00\x14\x00\x00" + b"\x00\x0a\x02\x00" + rec1[24:] + b"\x00\x06\x00\x00" + rec2,
    ]
    assert deblock(VBS, LRECL_X, blocks) == [rec1, rec2]


def test_vb_example_by_hand():
    blocks = block(VB, 84, 98, [b"\xc1" * 3, b"", b"\xc2" * 80])
    assert blocks == [
        b"\x00\x0f\x00\x00\x00\x07\x00\x00\xc1\xc1\xc1\x00\x04\x00\x00",
        b"\x00\x58\x00\x00\x00\x54\x00\x00" + b"\xc2" * 80,
    ]


def test_fb_deblock_is_lenient_with_a_ragged_block():
    blocks = [b"A" * 80 * 3, b"B" * 100]
    recs = deblock(FB, 80, blocks)
    assert recs == [b"A" * 80] * 3 + [b"B" * 80, b"B" * 20]
    assert deblock(F, 80, [b"x" * 50]) == [b"x" * 50]


def test_fixed_array():
    arr = rf.fixed_array(4, [b"abcdefgh", b"ijkl"])
    assert arr.shape == (3, 4) and arr.dtype == np.uint8
    assert arr[2].tobytes() == b"ijkl"
    with pytest.raises(FormatError, match="block 2"):
        rf.fixed_array(4, [b"abcd", b"abc"])


# -- blocking errors ------------------------------------------------------------------------
def test_block_errors():
    with pytest.raises(FormatError, match="record 2: 79 bytes"):
        block(FB, 80, 800, [b" " * 80, b" " * 79])
    assert block(FB, 80, 800, [b"x"], pad=b"\x40") == [b"x" + b"\x40" * 79]
    with pytest.raises(FormatError, match="record 1: 81 bytes"):
        block(FB, 80, 800, [b" " * 81], pad=b"\x40")
    with pytest.raises(FormatError, match="smaller than LRECL"):
        block(FB, 80, 79, [])
    with pytest.raises(FormatError, match="exceed LRECL"):
        block(VB, 20, 100, [b"x" * 17])
    with pytest.raises(FormatError, match="exceed BLKSIZE"):
        block(VB, 200, 100, [b"x" * 93])
    with pytest.raises(FormatError, match="empty U record"):
        block(U, 0, 100, [b""])
    with pytest.raises(FormatError, match="exceed BLKSIZE"):
        block(U, 0, 100, [b"x" * 101])
    with pytest.raises(FormatError, match="no record format"):
        block(0x10, 80, 800, [])


# -- corruption: FormatError, never anything else -------------------------------------------
def _deblock_only_format_errors(recfm, lrecl, blocks):
    try:
        out = deblock(recfm, lrecl, blocks)
    except FormatError:
        return None
    assert isinstance(out, list) and all(isinstance(r, bytes) for r in out)
    return out


@FAST
@given(
    st.one_of(variable_case(), spanned_case()),
    st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), min_size=1, max_size=4),
    st.integers(0, 10_000),
)
def test_corrupt_descriptors_raise_only_format_error(case, flips, cut):
    recfm, lrecl, blksize, recs = case
    blocks = [bytearray(b) for b in block(recfm, lrecl, blksize, recs)]
    if not blocks:
        blocks = [bytearray(b"\x00\x04\x00\x00")]
    for where, value in flips:
        b = blocks[where % len(blocks)]
        b[where % len(b)] = value
    i = cut % len(blocks)
    blocks[i] = blocks[i][: cut % (len(blocks[i]) + 1)]
    _deblock_only_format_errors(recfm, lrecl, [bytes(b) for b in blocks])


@FAST
@given(
    st.sampled_from((F, FB, FBS, V, VB, VS, VBS, U, 0x00, 0x50 | RECFM_A)),
    st.integers(0, 300),
    st.lists(st.binary(max_size=60), max_size=6),
)
def test_garbage_blocks_raise_only_format_error(recfm, lrecl, blocks):
    _deblock_only_format_errors(recfm, lrecl, blocks)


def test_descriptor_errors_name_block_and_offset():
    good = block(VB, 100, 200, [b"abc", b"defg"])[0]
    bad = good[:4] + b"\x00\x02\x00\x00" + good[8:]
    with pytest.raises(FormatError, match=r"block 2 offset 4: RDW length 2"):
        deblock(VB, 100, [good, bad], where="VOL001: MY.DS")
    with pytest.raises(FormatError, match=r"block 1 offset 0: BDW length 99"):
        deblock(VB, 100, [b"\x00\x63\x00\x00" + good[4:]])
    with pytest.raises(FormatError, match="VOL001: MY.DS"):
        deblock(VB, 100, [b"\x00"], where="VOL001: MY.DS")
    seg_last = b"\x00\x09\x00\x00\x00\x05\x02\x00x"
    with pytest.raises(FormatError, match="last segment without a first"):
        deblock(VBS, LRECL_X, [seg_last])
    seg_first = b"\x00\x09\x00\x00\x00\x05\x01\x00x"
    with pytest.raises(FormatError, match="has no last segment"):
        deblock(VBS, LRECL_X, [seg_first])
    with pytest.raises(FormatError, match="a new record starts"):
        deblock(VBS, LRECL_X, [seg_first, seg_first])
    with pytest.raises(FormatError, match="non-zero bytes 2-3"):
        deblock(VB, 100, [b"\x00\x09\x00\x00\x00\x05\x01\x00x"])


def test_null_segment_is_skipped():
    null = b"\x00\x04\x80\x00"
    blk = b"\x00\x0d\x00\x00" + null + b"\x00\x05\x00\x00x"
    assert deblock(VBS, LRECL_X, [blk]) == [b"x"]


# -- RECFM names -------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name,code",
    [("F", 0x80), ("FB", 0x90), ("FBA", 0x94), ("FBS", 0x98), ("V", 0x40), ("VB", 0x50)]
    + [("VBA", 0x54), ("VS", 0x48), ("VBS", 0x58), ("U", 0xC0), ("VBM", 0x52), ("UA", 0xC4)],
)
def test_recfm_names(name, code):
    assert recfm_value(name) == code
    assert recfm_text(code) == name


def test_recfm_bad_names():
    # one pair of RECFM functions (emulator.recfm) serves both layers: strict parsing,
    # and the reserved bit X'01' is shown, never dropped
    for bad in ("X", "FBB", "FAM", "UB", "US", "UBS", "B"):
        with pytest.raises(FormatError):
            recfm_value(bad)
    assert recfm_text(0x00) == "" and recfm_value("") == 0
    assert recfm_text(0x91) == "FB(X'01')" and recfm_value("FB(X'01')") == 0x91


# -- text --------------------------------------------------------------------------------
CODEPAGES = ("1047", "037", "500", "1140")


def _encodable(codepage):
    name = cp.codec_name(codepage)

    def ok(ch):
        if not ch.isprintable():
            return False
        try:
            ch.encode(name)
        except UnicodeEncodeError:
            return False
        return True

    return st.characters(min_codepoint=0x20, max_codepoint=0x24FF).filter(ok)


@st.composite
def text_case(draw):
    codepage = draw(st.sampled_from(CODEPAGES))
    lines = draw(st.lists(st.text(_encodable(codepage), max_size=30), max_size=20))
    return codepage, lines


@FAST
@given(text_case(), st.sampled_from((F, FB, FBS, F | RECFM_A)))
def test_text_fixed_round_trip(case, recfm):
    codepage, lines = case
    recs = lines_to_records(lines, recfm, 30, codepage)
    assert all(len(r) == 30 for r in recs)
    assert records_to_lines(recs, codepage, recfm) == [ln.rstrip(" ") for ln in lines]
    # the records survive blocking too
    assert deblock(recfm, 30, block(recfm, 30, 300, recs)) == recs


@FAST
@given(text_case(), st.sampled_from((V, VB, VBS, U)))
def test_text_variable_round_trip(case, recfm):
    codepage, lines = case
    if recfm == U:
        lines = [ln for ln in lines if ln]  # U records cannot be empty on disk
    recs = lines_to_records(lines, recfm, 34, codepage)
    assert records_to_lines(recs, codepage, recfm) == lines


def test_text_code_pages_differ_where_formats_says():
    # FORMATS.md 10: brackets are X'AD'/X'BD' in 1047, X'BA'/X'BB' in 037, X'4A'/X'5A' in 500
    assert lines_to_records(["[]"], V, 0, "1047") == [b"\xad\xbd"]
    assert lines_to_records(["[]"], V, 0, "037") == [b"\xba\xbb"]
    assert lines_to_records(["[]"], V, 0, "500") == [b"\x4a\x5a"]
    assert lines_to_records(["€"], V, 0, "1140") == [b"\x9f"]
    assert records_to_lines([b"\xc1\x40\x40"], "037") == ["A"]
    assert records_to_lines([b"\xc1\x40\x40"], "037", VB) == ["A  "]
    # carriage control stays the first character
    assert records_to_lines([b"\xf1\xc1"], "1047", FB | RECFM_A) == ["1A"]


def test_text_errors_name_the_line():
    with pytest.raises(FormatError, match="line 2"):
        lines_to_records(["ok", "x" * 81], FB, 80)
    with pytest.raises(FormatError, match="line 1"):
        lines_to_records(["x" * 97], VB, 100)
    with pytest.raises(FormatError, match=r"line 3.*code page 037"):
        lines_to_records(["a", "b", "€"], FB, 80, "037")


# -- byte streams ------------------------------------------------------------------------
@FAST
@given(
    st.binary(max_size=3000),
    st.sampled_from((F, FB, FBS, FB | RECFM_A)),
    st.integers(1, 200),
    st.integers(1, 10),
)
def test_split_bytes_fixed_pads_like_dasdload_seq(data, recfm, lrecl, per_block):
    recs = split_bytes(recfm, lrecl, lrecl * per_block, data)
    assert all(len(r) == lrecl for r in recs)
    joined = b"".join(recs)
    # dasdload SEQ: LRECL pieces, the last one padded with X'00'
    assert joined[: len(data)] == data and joined[len(data) :] == bytes(len(joined) - len(data))
    assert len(joined) - len(data) < lrecl
    blksize = lrecl if recfm & RECFM_B == 0 else lrecl * per_block
    assert deblock(recfm, lrecl, block(recfm, lrecl, blksize, recs)) == recs


@FAST
@given(
    st.binary(max_size=5000),
    st.sampled_from((V, VB, VS, VBS)),
    st.integers(5, 600),
    st.integers(9, 700),
)
def test_split_bytes_variable_and_undefined(data, recfm, lrecl, blksize):
    recs = split_bytes(recfm, lrecl, blksize, data)
    assert b"".join(recs) == data and all(recs)
    limit = lrecl - 4 if recfm & RECFM_S else min(lrecl - 4, blksize - 8)
    assert all(len(r) <= limit for r in recs[:-1]) and all(len(r) == limit for r in recs[:-1])
    # what was cut can be blocked under the data set's DCB and read back
    assert deblock(recfm, lrecl, block(recfm, lrecl, blksize, recs)) == recs
    urecs = split_bytes(U, 0, blksize, data)
    assert b"".join(urecs) == data and all(0 < len(r) <= blksize for r in urecs)
    assert deblock(U, 0, block(U, 0, blksize, urecs)) == urecs


def test_split_bytes_edges():
    assert split_bytes(FB, 80, 800, b"") == [] and split_bytes(U, 0, 100, b"") == []
    # LRECL=X: pieces of 32752 bytes (the most a numeric LRECL allows), any block size
    data = bytes(range(256)) * 300
    recs = split_bytes(VBS, LRECL_X, 6144, data)
    assert [len(r) for r in recs] == [32752, 32752, len(data) - 2 * 32752]
    assert deblock(VBS, LRECL_X, block(VBS, LRECL_X, 6144, recs)) == recs
    with pytest.raises(FormatError, match="LRECL 0"):
        split_bytes(FB, 0, 800, b"x")
    with pytest.raises(FormatError, match="holds no data"):
        split_bytes(VB, 4, 800, b"x")
    with pytest.raises(FormatError, match="BLKSIZE 0"):
        split_bytes(U, 0, 0, b"x")
    with pytest.raises(FormatError, match="no record format"):
        split_bytes(0x10, 80, 800, b"x")
