"""Basket file format and operation model (docs/formats/basket.md): round trips,
determinism, every flipped byte and every truncation detected, signing, versioning,
payload encodings that never raise anything but FormatError on bad input."""

from __future__ import annotations

import struct
from dataclasses import replace

import blake3
import numpy as np
import pytest
import zstandard
from conftest import members_p1, reseal_basket
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emulator.dataset import records as rf
from emulator.errors import FormatError, IntegrityError, UnsupportedError
from ssm.basket import fmt, ops
from ssm.basket.ops import Block, MemberImage, Operation, RecordEdit
from ssm.model import DATASET_DTYPE, MEMBER_DTYPE, Fingerprint, VolumeFp, empty_tables

D1 = "blake3:" + "11" * 32
D2 = "blake3:" + "22" * 32
KEY = b"0123456789abcdef-secret"


def small_basket() -> tuple[dict, list[Operation], list[bytes]]:
    payloads = [
        ops.encode_blocks([Block(0x000102, b"", b"HELLO WORLD " * 20), Block(0x103, b"", b"x")]),
        ops.encode_edits([RecordEdit(3, 5, [b"a" * 80, b"b" * 80])]),
    ]
    operations = [
        Operation(0, "dataset.delete", "SYS001", "OLD.DATA", before=D1),
        Operation(
            1,
            "dataset.records",
            "SYS001",
            "BIG.LOG",
            before=D1,
            after=D2,
            payload=1,
            records=(3, 5),
            new_records=(3, 5),
            dcb={"dsorg": "PS", "recfm": "FB", "lrecl": 80, "blksize": 27920, "keylen": 0},
        ),
        Operation(
            2,
            "member.put",
            "SYS001",
            "USER.SRC",
            member="PAYROLL",
            after=D2,
            payload=0,
            userdata=bytes(30),
            ttr_count=0,
            size=241,
        ),
        Operation(
            3,
            "alias.put",
            "SYS001",
            "USER.SRC",
            member="PAY",
            after=D1,
            alias_of="PAYROLL",
            userdata=bytes(30),
        ),
    ]
    header = {"created": "2026-01-02T03:04:05+00:00", "tool": "ssm test", "mode": "base"}
    return header, operations, payloads


@pytest.fixture
def basket(tmp_path):
    path = tmp_path / "small.basket"
    fmt.write_basket(path, *small_basket())
    return path


def test_round_trip_and_payloads(basket):
    header, operations, payloads = small_basket()
    with fmt.verify_basket(basket) as b:
        assert b.version == fmt.FORMAT_VERSION
        assert b.header["mode"] == "base" and b.header["format"] == fmt.FORMAT_VERSION
        assert b.header["counts"]["payloads"] == 2
        assert b.operations == operations
        assert [b.payload(i) for i in range(b.payload_count)] == payloads
        assert b.size == basket.stat().st_size
        assert not b.signed
        edits = ops.decode_payload("dataset.records", b.payload(1))
        assert ops.splice([b"r%d" % i for i in range(8)], edits)[3:5] == [b"a" * 80, b"b" * 80]


def test_deterministic_bytes(tmp_path):
    a, b = tmp_path / "a.basket", tmp_path / "b.basket"
    fmt.write_basket(a, *small_basket())
    fmt.write_basket(b, *small_basket())
    assert a.read_bytes() == b.read_bytes()
    fmt.write_basket(a, *small_basket(), key=KEY)
    fmt.write_basket(b, *small_basket(), key=KEY)
    assert a.read_bytes() == b.read_bytes()


def test_threads_do_not_change_the_bytes(tmp_path):
    payloads = [(b"record %d " % i) * (5000 + 700 * i) for i in range(12)]
    operations = [Operation(0, "dataset.delete", "V", "X.Y", before=D1)]
    a, b = tmp_path / "a.basket", tmp_path / "b.basket"
    fmt.write_basket(a, {}, operations, payloads, threads=1)
    fmt.write_basket(b, {}, operations, payloads, threads=4)
    assert a.read_bytes() == b.read_bytes()


def test_not_a_basket(tmp_path):
    for path in (tmp_path, tmp_path / "missing", tmp_path / "empty"):
        if path.name == "empty":
            path.write_bytes(b"")
        with pytest.raises(FormatError):
            fmt.read_basket(path)


def test_layout_fixed_parts(basket):
    data = basket.read_bytes()
    assert data[:8] == b"\x89SSMBK\r\n"
    assert struct.unpack_from("<HHI", data, 8) == (3, 0, 3)
    assert data[32:38] == b"header"
    tail = data[-fmt.TRAILER.size :]
    assert tail[:8] == b"SSMBKEND"
    assert struct.unpack_from("<Q", tail, 8)[0] == len(data)
    assert tail[-32:] == blake3.blake3(data[:-32]).digest()
    assert fmt.is_basket(basket)


def _flip_errors(tmp_path, data: bytes, key: bytes | None = None) -> list[int]:
    """Positions whose flipped byte was NOT refused."""
    missed = []
    path = tmp_path / "flip.basket"
    for pos in range(len(data)):
        damaged = bytearray(data)
        damaged[pos] ^= 0xFF if pos % 2 else 0x01
        path.write_bytes(bytes(damaged))
        try:
            fmt.read_basket(path, key).close()
        except (FormatError, IntegrityError) as exc:
            assert exc.path is not None and "offset" in str(exc)
            continue
        missed.append(pos)
    return missed


def test_every_flipped_byte_is_detected(basket, tmp_path):
    data = basket.read_bytes()
    assert len(data) < 2000
    assert _flip_errors(tmp_path, data) == []


def test_every_flipped_byte_of_a_signed_basket_is_detected(tmp_path):
    path = tmp_path / "signed.basket"
    fmt.write_basket(path, *small_basket(), key=KEY)
    assert _flip_errors(tmp_path, path.read_bytes(), KEY) == []


def test_truncation_and_appended_bytes(basket, tmp_path):
    data = basket.read_bytes()
    path = tmp_path / "cut.basket"
    for n in range(len(data)):
        path.write_bytes(data[:n])
        with pytest.raises((FormatError, IntegrityError)):
            fmt.read_basket(path)
    path.write_bytes(data + b"\x00")
    with pytest.raises(FormatError):
        fmt.read_basket(path)


def test_version_is_checked_first(basket, tmp_path):
    data = bytearray(basket.read_bytes())
    newer = fmt.FORMAT_VERSION + 1
    data[8:10] = newer.to_bytes(2, "little")
    path = tmp_path / "newer.basket"
    path.write_bytes(bytes(data))
    with pytest.raises(FormatError, match="version"):  # digest broken: damage
        fmt.read_basket(path)
    path.write_bytes(reseal_basket(data))
    with pytest.raises(UnsupportedError, match=f"format {newer}"):  # a newer ssm's basket
        fmt.read_basket(path)
    path.write_bytes(b"\x89SSMFP\r\n" + bytes(200))
    with pytest.raises(FormatError, match="magic"):
        fmt.read_basket(path)
    assert not fmt.is_basket(path)


def test_signed_baskets(tmp_path):
    signed, unsigned = tmp_path / "s.basket", tmp_path / "u.basket"
    fmt.write_basket(signed, *small_basket(), key=KEY)
    fmt.write_basket(unsigned, *small_basket())
    with fmt.read_basket(signed, KEY) as b:
        assert b.signed and b.authenticated
    with fmt.read_basket(signed) as b:  # no key: read, the MAC not checked
        assert b.signed and not b.authenticated
    with pytest.raises(IntegrityError, match="not signed"):
        fmt.read_basket(unsigned, KEY)
    with pytest.raises(IntegrityError, match="signature"):
        fmt.read_basket(signed, b"another key entirely")


def test_forged_basket_refused_with_key(tmp_path):
    path = tmp_path / "s.basket"
    fmt.write_basket(path, *small_basket(), key=KEY, compression="none")
    data = bytearray(path.read_bytes())
    # Change a byte of a stored payload and reseal every digest: only the MAC tells.
    target = data.index(b"HELLO WORLD")
    data[target] = ord("J")
    forged = reseal_basket(data)
    path.write_bytes(forged)
    with fmt.read_basket(path) as b:  # digests intact: without a key it reads
        assert b"JELLO" in b.payload(0)
    with pytest.raises(IntegrityError, match="signature"):
        fmt.read_basket(path, KEY)
    # Strip the signature (flag, auth byte, MAC) and reseal: now unsigned, refused too.
    data = bytearray(forged)
    data[10:12] = b"\x00\x00"
    tpos = len(data) - fmt.TRAILER.size
    data[tpos + 16] = 0
    data[tpos + 24 : tpos + 56] = bytes(32)
    path.write_bytes(reseal_basket(data))
    fmt.read_basket(path).close()
    with pytest.raises(IntegrityError, match="not signed"):
        fmt.read_basket(path, KEY)


@pytest.mark.parametrize("compression", ["zstd", "zlib"])
def test_payload_head_decodes_a_members_head_in_one_pass(tmp_path, compression):
    blocks = [Block(0x000101 + i, b"", bytes([i]) * 4000) for i in range(20)]
    members = [MemberImage("MAIN", False, 0, b"", None, blocks)]
    payloads = [ops.encode_members(members), members_p1(members)]
    operations = [
        Operation(i, "dataset.create", "V", f"A.PDS{i}", after=D2, payload=i,
                  dcb={"dsorg": "PO", "recfm": "FB", "lrecl": 80, "blksize": 4000, "keylen": 0},
                  space={"unit": "TRK", "primary": 5, "secondary": 1, "dirblks": 2})
        for i in range(2)
    ]  # fmt: skip
    path = tmp_path / "m.basket"
    fmt.write_basket(path, {}, operations, payloads, compression=compression)
    need = ops.members_head_size(payloads[0][: ops.MEMBERS_HEAD_SIZE])
    with fmt.read_basket(path) as b:
        assert fmt.CODEC_NAMES[b.frames[0].codec] == compression
        head = b.payload_head(0, ops.MEMBERS_HEAD_SIZE, ops.members_head_size)
        assert head == payloads[0][:need] == b.payload_head(0, need)
        # P1 has no head of its own: the extension says so and the first bytes come back
        p1 = b.payload_head(1, ops.MEMBERS_HEAD_SIZE, ops.members_head_size)
        assert p1 == payloads[1][: ops.MEMBERS_HEAD_SIZE]


def test_payload_rechecked_and_bounded(tmp_path):
    path = tmp_path / "p.basket"
    payload = b"ABCDEFGH" * 1000
    operations = [Operation(0, "dataset.content", "V", "A.B", before=D1, after=D2, payload=0)]
    payloads = [ops.encode_records([payload])]
    fmt.write_basket(path, {}, operations, payloads)
    b = fmt.read_basket(path)
    info = b.payload_info(0)
    assert info.codec == fmt.CODEC_ZSTD and info.stored_len < info.raw_len
    # The file changes after it was verified: the payload's digest is checked again.
    with open(path, "r+b") as f:
        f.seek(info.data_offset + 3)
        f.write(b"\x00")
    with pytest.raises(IntegrityError):
        b.payload(0)
    with open(path, "r+b") as f:  # truncated under an open basket: an error, no crash
        f.truncate(info.data_offset + 10)
    with pytest.raises(FormatError, match="file ends"):
        b.payload(0)
    b.close()
    # A frame that lies about its decoded length (digests resealed): FormatError.
    fmt.write_basket(path, {}, operations, payloads)
    data = bytearray(path.read_bytes())
    codec, res, raw_len, stored_len, digest = fmt.FRAME.unpack_from(data, info.offset)
    fmt.FRAME.pack_into(data, info.offset, codec, res, raw_len - 1, stored_len, digest)
    path.write_bytes(reseal_basket(data))
    with fmt.read_basket(path) as b, pytest.raises(FormatError, match="decodes"):
        b.payload(0)
    with pytest.raises(FormatError):
        fmt.verify_basket(path)


@pytest.mark.parametrize("policy", fmt.POLICIES)
def test_compression_policies(tmp_path, policy):
    path = tmp_path / f"{policy}.basket"
    payloads = [b"text line\n" * 5000, bytes(range(256)) * 3, b"", b"short"]
    operations = [Operation(0, "dataset.delete", "V", "X.Y", before=D1)]
    fmt.write_basket(path, {}, operations, payloads, compression=policy)
    with fmt.read_basket(path) as b:
        assert [b.payload(i) for i in range(4)] == payloads
        codecs = {b.payload_info(i).codec for i in range(4)}
        assert (codecs == {fmt.CODEC_STORED}) == (policy == "none")


def test_write_refuses_bad_input(tmp_path):
    header, operations, payloads = small_basket()
    with pytest.raises(ValueError):
        fmt.write_basket(tmp_path / "x", header, operations, payloads[:1])
    operations[0].seq = 5
    with pytest.raises(ValueError):
        fmt.write_basket(tmp_path / "x", header, operations, payloads)
    assert not list(tmp_path.iterdir())  # nothing left behind


# -- hypothesis: random operation lists and payloads ----------------------------------
names = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789#@$", min_size=1, max_size=8)
digests = st.binary(min_size=32, max_size=32).map(lambda b: "blake3:" + b.hex())
small_bytes = st.binary(max_size=300)


@st.composite
def operation_lists(draw):
    payloads = draw(st.lists(small_bytes, max_size=6))
    out = []
    for seq in range(draw(st.integers(0, 10))):
        kind = draw(st.sampled_from(ops.KINDS))
        member = draw(names) if kind in ops.MEMBER_KINDS else None
        needs = kind in ops.PAYLOAD_FORMS
        if needs and not payloads:
            payloads.append(b"")
        op = Operation(
            seq,
            kind,
            draw(names),
            draw(names) + "." + draw(names),
            member=member,
            new_name=draw(names) if kind.endswith("rename") else None,
            before=None if kind == "dataset.create" else draw(digests),
            after=None
            if kind in ("dataset.delete", "member.delete", "alias.delete")
            else draw(digests),
            payload=draw(st.integers(0, len(payloads) - 1)) if needs else None,
            records=(3, 9) if kind == "dataset.records" else None,
            dcb={"dsorg": "PS", "recfm": "FB", "lrecl": 80, "blksize": 800, "keylen": 0}
            if kind == "dataset.create"
            else None,
            space={"unit": "TRK", "primary": 1, "secondary": 0, "dirblks": 0}
            if kind == "dataset.create"
            else None,
            userdata=draw(st.none() | st.binary(max_size=62)),
            ttr_count=draw(st.integers(0, 3)),
            alias_of=draw(names) if kind == "alias.put" else None,
            size=draw(st.integers(0, 1 << 40)),
        )
        out.append(op)
    return out, payloads


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=operation_lists(), policy=st.sampled_from(fmt.POLICIES), signed=st.booleans())
def test_round_trip_property(tmp_path, data, policy, signed):
    operations, payloads = data
    path = tmp_path / "h.basket"
    key = KEY if signed else None
    fmt.write_basket(path, {"created": "x"}, operations, payloads, key, compression=policy)
    with fmt.read_basket(path, key) as b:
        assert b.operations == operations
        assert [b.payload(i) for i in range(b.payload_count)] == payloads


records_lists = st.lists(st.binary(max_size=120), max_size=20)
blocks_lists = st.lists(
    st.builds(Block, st.integers(0, 0xFFFFFF), st.binary(max_size=8), st.binary(max_size=200)),
    max_size=10,
)


@settings(max_examples=100, deadline=None)
@given(records=records_lists, blocks=blocks_lists, cuts=st.lists(st.integers(0, 30), max_size=6))
def test_payload_encodings_round_trip(records, blocks, cuts):
    assert ops.decode_records(ops.encode_records(records)) == records
    assert ops.decode_blocks(ops.encode_blocks(blocks)) == blocks
    bounds = sorted(cuts)
    edits = [
        RecordEdit(bounds[i], bounds[i + 1], records[:i]) for i in range(0, len(bounds) - 1, 2)
    ]
    assert ops.decode_edits(ops.encode_edits(edits)) == edits
    members = [
        MemberImage("MAIN", False, 1, b"\x00\x00\x05\x01", None, blocks),
        MemberImage("ALIAS", True, 0, b"", "MAIN"),
    ]
    assert ops.decode_members(ops.encode_members(members)) == members


@settings(max_examples=100, deadline=None)
@given(blocks=blocks_lists, more=blocks_lists)
def test_members_payload_head_alone_and_the_older_form(blocks, more):
    members = [
        MemberImage("MAIN", False, 1, b"\x00\x00\x05\x01", None, blocks),
        MemberImage("ALIAS", True, 0, b"", "MAIN"),
        MemberImage("NEXT", False, 0, b"\x01\x02", None, more),
    ]
    payload = ops.encode_members(members)
    assert payload[:2] == b"P2"
    whole = ops.decode_members(payload)
    assert whole == members
    # The head alone: the same entries and block columns, offsets into the whole payload.
    need = ops.members_head_size(payload[: ops.MEMBERS_HEAD_SIZE])
    assert need == len(payload) - sum(len(b.key) + len(b.data) for b in blocks + more)
    head = ops.decode_members(payload[:need], size=len(payload))
    for a, b in zip(head, whole, strict=True):
        assert (a.name, a.alias, a.ttr_count, a.userdata, a.alias_of) == (
            b.name, b.alias, b.ttr_count, b.userdata, b.alias_of
        )  # fmt: skip
        assert (a.blocks.lo, a.blocks.hi) == (b.blocks.lo, b.blocks.hi)
    table = head[0].blocks.table
    if need < len(payload):  # else the head is the whole payload
        assert table.payload is None and len(table.raw) == 0
    for col in ("ttr", "key_off", "key_len", "data_off", "data_len"):
        assert (getattr(table, col) == getattr(whole[0].blocks.table, col)).all()
    # A head that does not account for every byte of the payload is damage.
    with pytest.raises(FormatError, match="after the last block"):
        ops.decode_members(payload[:need], size=len(payload) + 1)
    with pytest.raises(FormatError, match="after the last block"):
        ops.decode_members(payload + b"\x00")
    # Baskets of versions 1 and 2 hold the older form: it decodes to the same entries.
    assert ops.members_head_size(members_p1(members)) is None
    assert ops.decode_members(members_p1(members)) == members
    with pytest.raises(FormatError, match="decoded whole"):
        ops.decode_members(members_p1(members)[:20], size=len(members_p1(members)))


def test_members_payload_columns_and_entries_a_directory_refuses():
    """The import loads from the columns (``MemberList.entries``, ``aliases()``): they
    agree with the entries; an entry no directory can hold is refused at decoding."""
    blocks = [Block(0x000101, b"", b"x" * 80)]
    members = [
        MemberImage("MAIN", False, 1, b"\x00\x00\x05\x01", None, blocks),
        MemberImage("ALIAS", True, 1, b"\x00\x00\x05\x01", "MAIN"),
        MemberImage("NEXT", False, 0, b"\x01\x02", None, blocks),
    ]
    decoded = ops.decode_members(ops.encode_members(members))
    cols = decoded.entries
    assert [cols.entry(i).name for i in range(len(cols))] == ["MAIN", "ALIAS", "NEXT"]
    assert [cols.entry(i).userdata for i in range(len(cols))] == [m.userdata for m in members]
    assert decoded.aliases() == [("ALIAS", "MAIN", b"\x00\x00\x05\x01", 1)]
    for bad, message in (
        (replace(members[2], name="TOOLONGNAME"), "not 1-8 characters"),
        (replace(members[2], userdata=b"\x01"), "must be even"),
    ):
        with pytest.raises(FormatError, match=message):
            ops.decode_members(ops.encode_members([*members[:2], bad]))


@settings(max_examples=300, deadline=None)
@given(junk=st.binary(max_size=200), form=st.sampled_from([b"R1", b"E1", b"B1", b"P1", b"P2"]))
def test_payload_decoders_only_raise_format_error(junk, form):
    data = form + b"\x00\x00" + junk
    for decoder in (ops.decode_records, ops.decode_edits, ops.decode_blocks, ops.decode_members):
        try:
            decoder(data)
        except FormatError:
            pass
    try:  # a P2 head alone, said to belong to a longer payload
        ops.decode_members(data, size=len(data) + len(junk))
    except FormatError:
        pass


def test_splice_from_an_offset():
    old = [b"%d" % i for i in range(20)]
    edits = [RecordEdit(5, 7, [b"x"]), RecordEdit(10, 10, [b"y", b"z"]), RecordEdit(18, 20, [])]
    full = ops.splice(old, edits)
    assert full == old[:5] + [b"x"] + old[7:10] + [b"y", b"z"] + old[10:18]
    assert ops.splice(old[5:], edits, 5) == full[5:]
    with pytest.raises(FormatError):
        ops.splice(old[:8], edits)


def _record_ends(recfm: int, block: bytes) -> list[int]:
    """Stream offsets (fingerprint.md *Content digests*) inside a V or VS block where a
    logical record ends: after an RDW, after a complete or last segment."""
    spanned = bool(recfm & rf.RECFM_S)
    ends, pos, count = [], 4, 0
    while pos < len(block):
        length, flags = struct.unpack_from(">HB", block, pos)
        code = flags & 3 if spanned else 0
        count += length - 4 if code in (2, 3) else length
        if code in (0, 2):
            ends.append(count)
        pos += length
    return ends


@pytest.mark.parametrize("recfm_text", ["VB", "VBS"])
def test_split_block_at_every_record_end(recfm_text):
    recfm = rf.recfm_value(recfm_text)
    records = [bytes([i % 251]) * (1 + (i * 37) % 700) for i in range(60)]
    blocks = rf.block(recfm, 800 if recfm_text == "VB" else 0x8000, 800, records)
    for k, block in enumerate(blocks):
        starts = not block[6] & 2  # its first segment starts a record: 0 is a record end
        for skip in [0] * starts + _record_ends(recfm, block):
            head, rest = ops.split_block(recfm, block, skip)
            before = rf.deblock(recfm, 0, [b for b in [*blocks[:k], head] if b])
            after = rf.deblock(recfm, 0, [b for b in [rest, *blocks[k + 1 :]] if b])
            assert before + after == records
    # a cut inside a record (or past the block) is refused
    block = blocks[1]
    inside = _record_ends(recfm, block)[0] - 1
    for bad in (inside, 10**6):
        with pytest.raises(FormatError):
            ops.split_block(recfm, block, bad)


def test_split_block_fixed_and_undefined():
    fb, u = rf.recfm_value("FB"), rf.recfm_value("U")
    assert ops.split_block(fb, b"A" * 80 + b"B" * 80, 80) == (b"A" * 80, b"B" * 80)
    assert ops.split_block(u, b"LOAD", 8) == (b"LOAD", b"")
    assert ops.split_block(u, b"LOAD", 0) == (b"", b"LOAD")
    with pytest.raises(FormatError):
        ops.split_block(u, b"LOAD", 5)


def test_operation_json_checks():
    op = Operation(0, "member.rename", "V", "A.B", member="X", new_name="Y", before=D1, after=D1)
    assert Operation.from_json(op.to_json()) == op
    for broken in (
        {**op.to_json(), "kind": "member.explode"},
        {**op.to_json(), "before": "md5:00"},
        {**op.to_json(), "new_name": None},
        {**op.to_json(), "seq": -1},
        {**op.to_json(), "member": None},
        {k: v for k, v in op.to_json().items() if k != "dsname"},
        {**op.to_json(), "userdata": "zz"},
        ["not", "an", "object"],
    ):
        with pytest.raises(FormatError):
            Operation.from_json(broken)
    with pytest.raises(FormatError, match="before"):
        Operation(0, "dataset.delete", "V", "A.B").check()


# -- state digests ---------------------------------------------------------------------
def _fp(rows: list[dict], members: list[dict] = ()) -> Fingerprint:
    _, _, groups, extents = empty_tables()
    table = np.zeros(len(rows), dtype=DATASET_DTYPE)
    for i, r in enumerate(rows):
        for k, v in r.items():
            table[i][k] = v
    mem = np.zeros(len(members), dtype=MEMBER_DTYPE)
    for i, r in enumerate(members):
        for k, v in r.items():
            mem[i][k] = v
    vols = [
        VolumeFp("VOL001", "3390", 10, 15, 56664, "ckd", "a"),
        VolumeFp("VOL002", "3390", 10, 15, 56664, "ckd", "b"),
    ]
    return Fingerprint(1, None, "t", vols, table, mem, groups, extents, b"")


def test_state_digests_ignore_placement():
    base = dict(
        dsname=b"A.B",
        dsorg=b"PO",
        recfm=b"FB",
        lrecl=80,
        blksize=800,
        space_unit=b"TRK",
        secondary=1,
        flags=1,
        content=b"\x01" * 32,
        mstart=0,
        mcount=1,
    )
    mrow = dict(
        ds=0, name="M".encode("cp037").ljust(8, b"\x40"), content=b"\x02" * 32, attrs=b"\x03" * 16
    )
    a = _fp([base], [mrow])
    moved = _fp(
        [{**base, "vol": 1, "tracks": 99, "created": 700000, "primary": 7}],
        [{**mrow, "ttr": 0x20304}],
    )
    assert ops.dataset_state(a, 0) == ops.dataset_state(moved, 0)
    assert ops.system_state(a) == ops.system_state(moved)
    reblocked = _fp([{**base, "blksize": 3200}], [mrow])
    assert ops.dataset_state(a, 0) != ops.dataset_state(reblocked, 0)
    assert ops.attribute_state(a, 0) != ops.attribute_state(reblocked, 0)
    stats = _fp([base], [{**mrow, "attrs": b"\x04" * 16}])
    assert ops.dataset_state(a, 0) != ops.dataset_state(stats, 0)  # member attributes count
    assert ops.attribute_state(a, 0) == ops.attribute_state(stats, 0)
    ds = a.datasets[0]
    assert ops.state_of(a, "A.B", "M") == ops.member_state(b"\x02" * 32, b"\x03" * 16)
    assert ops.state_of(a, "A.B", "N") is None and ops.state_of(a, "X.Y") is None
    assert ops.state_of(a, "A.B", kind="dataset.attributes") == ops.attribute_state(a, ds)
    assert ops.system_state(a, exclude=["A.**"]) != ops.system_state(a)
    renamed = _fp([{**base, "dsname": b"C.D"}], [mrow])  # NEW names map back to OLD's
    assert ops.system_state(renamed) != ops.system_state(a)
    assert ops.system_state(renamed, maps=["A.B=C.D"], side="new") == ops.system_state(a)


@pytest.mark.parametrize("policy", ["bz2", "lzma", "zstd", "auto"])
def test_no_codec_inflates_past_the_ratio_a_reader_accepts(policy):
    """bzip2, xz and zstd pack a run of one byte far past deflate's 1032:1; the writer
    falls back so that every frame it makes passes the reader's bound (which keeps a
    small crafted basket from making the reader allocate gigabytes)."""
    from ssm.basket import fmt

    data = b"\x40" * (4 << 20)
    codec, stored = fmt.compress_payload(data, policy)
    assert len(data) <= fmt.MAX_RATIO * len(stored)
    assert not fmt._inflates_too_far(codec, len(data), len(stored))
    assert fmt._inflate(codec, stored, len(data), "test", None) == data
    assert fmt._inflates_too_far(fmt.CODEC_BZ2, 1 << 30, 785)  # a 1 GiB bomb in 785 bytes


# -- zstd frames (format 2) -------------------------------------------------------------
def _text_records(count: int) -> bytes:
    """A records payload like a source library's: 80-byte card images."""
    cards = [
        b"%-72s%08d" % (b"       MOVE WS-FIELD-%d TO OUT-REC-%d." % (i % 97, i % 13), i)
        for i in range(count)
    ]
    return ops.encode_records(cards)


def _one_payload_basket(path, payload: bytes, policy: str) -> int:
    """Writes a basket of one dataset.content operation; returns its frame's offset."""
    operations = [Operation(0, "dataset.content", "V", "A.B", before=D1, after=D2, payload=0)]
    fmt.write_basket(path, {}, operations, [payload], compression=policy)
    with fmt.read_basket(path) as b:
        return b.frames[0].offset


def _zstd_content_size_at(stored: bytes) -> tuple[int, int]:
    """(offset, width) of a zstd frame header's content size field (RFC 8878 3.1.1.1)."""
    descriptor = stored[4]
    single_segment = descriptor >> 5 & 1
    width = (1 if single_segment else 0, 2, 4, 8)[descriptor >> 6]
    return 5 + (not single_segment) + (0, 1, 2, 4)[descriptor & 3], width


@pytest.mark.parametrize("policy", ["auto", "zstd"])
def test_auto_and_zstd_write_zstd_frames(tmp_path, policy):
    path = tmp_path / "z.basket"
    big, small = _text_records(20000), _text_records(3)
    tiny = b"x" * (fmt.SMALL_PAYLOAD - 1)
    operations = [Operation(0, "dataset.delete", "V", "X.Y", before=D1)]
    fmt.write_basket(path, {}, operations, [big, small, tiny], compression=policy)
    with fmt.verify_basket(path) as b:
        assert [b.payload(i) for i in range(3)] == [big, small, tiny]
        buffer = np.full(len(big) + 7, 0xEE, np.uint8)
        for i, want in enumerate([big, small, tiny]):  # in place, whatever was there
            assert b.payload_into(i, buffer).tobytes() == want
        with pytest.raises(FormatError, match="buffer for"):
            b.payload_into(0, buffer[: len(big) - 1])
        assert [f.codec for f in b.frames] == [fmt.CODEC_ZSTD, fmt.CODEC_ZSTD, fmt.CODEC_STORED]
        assert b.to_json()["payloads"][0]["codec"] == "zstd"
        assert b.frames[0].stored_len * 10 < b.frames[0].raw_len
        data = path.read_bytes()
        stored = data[b.frames[0].data_offset : b.frames[0].data_offset + b.frames[0].stored_len]
    # What the reader relies on and determinism needs: the content size, no checksum
    # (the frame digest covers it), no dictionary.
    params = zstandard.get_frame_parameters(stored)
    assert (params.content_size, params.has_checksum, params.dict_id) == (len(big), False, 0)


def test_zstd_baskets_are_deterministic(tmp_path):
    payloads = [_text_records(5000 + 3000 * i) for i in range(6)]
    operations = [Operation(0, "dataset.delete", "V", "X.Y", before=D1)]
    a, b = tmp_path / "a.basket", tmp_path / "b.basket"
    fmt.write_basket(a, {}, operations, payloads, threads=1, compression="zstd")
    fmt.write_basket(b, {}, operations, payloads, threads=4, compression="zstd")
    assert a.read_bytes() == b.read_bytes()
    assert fmt.compress_payload(payloads[0]) == fmt.compress_payload(bytes(payloads[0]))


def test_damaged_zstd_frames_are_refused_naming_the_file_and_payload(tmp_path):
    """Digests resealed, so only decoding can tell: bytes changed inside the stored
    frame, a frame header that says fewer bytes than the content, and both the frame
    header and the zstd header saying so (the decoder must stop at raw_len)."""
    good = tmp_path / "good.basket"
    payload = _text_records(4000)
    frame = _one_payload_basket(good, payload, "zstd")
    data = good.read_bytes()
    codec, res, raw_len, stored_len, digest = fmt.FRAME.unpack_from(data, frame)
    assert codec == fmt.CODEC_ZSTD
    start = frame + fmt.FRAME.size

    flipped = bytearray(data)
    for pos in range(start + stored_len // 3, start + stored_len // 3 + 8):
        flipped[pos] ^= 0x5A
    short = bytearray(data)
    fmt.FRAME.pack_into(short, frame, codec, res, raw_len - 1, stored_len, digest)
    both = bytearray(short)
    at, width = _zstd_content_size_at(data[start : start + stored_len])
    assert width in (4, 8)
    both[start + at : start + at + width] = (raw_len - 1).to_bytes(width, "little")
    empty = bytearray(data)  # content size 0: the decoder would read nothing
    empty[start + at : start + at + width] = bytes(width)
    fmt.FRAME.pack_into(empty, frame, codec, res, 0, stored_len, digest)
    for name, damaged, message in (
        ("flipped", flipped, "cannot decode"),
        ("short", short, "says it decodes to"),
        ("both", both, "cannot decode"),
        ("zero", empty, "empty zstd frame"),
    ):
        path = tmp_path / f"{name}.basket"
        path.write_bytes(reseal_basket(damaged))
        with fmt.read_basket(path) as b, pytest.raises(FormatError, match=message) as exc:
            b.payload(0)
        assert exc.value.path == str(path) and "payload 0 at offset" in str(exc.value)
        with fmt.read_basket(path) as b, pytest.raises(FormatError, match=message) as exc:
            b.payload_into(0, np.zeros(raw_len + 16, np.uint8))  # decoded in place
        assert exc.value.path == str(path) and "payload 0 at offset" in str(exc.value)
        with pytest.raises(FormatError, match=message) as exc:
            fmt.verify_basket(path)
        assert str(exc.value).startswith(f"{name}.basket: payload 0 ")


def _basket_with_frame(path, codec: int, raw_len: int, stored: bytes) -> None:
    """A basket whose one frame holds ``stored`` as given, every digest right."""
    frame = _one_payload_basket(path, b"?" * len(stored), "none")
    data = bytearray(path.read_bytes())
    _c, res, _r, stored_len, digest = fmt.FRAME.unpack_from(data, frame)
    fmt.FRAME.pack_into(data, frame, codec, res, raw_len, stored_len, digest)
    data[frame + fmt.FRAME.size : frame + fmt.FRAME.size + stored_len] = stored
    path.write_bytes(reseal_basket(data))


def test_a_zstd_bomb_is_refused_before_decoding(tmp_path):
    """zstd packs a run of one byte about 32,000:1 (a run block per 128 KiB); a crafted
    frame claiming that much is refused by the reader's ratio bound, undecoded."""
    raw_len = 16 << 20
    bomb = zstandard.ZstdCompressor(level=3).compress(bytes(raw_len))
    assert raw_len > 20 * fmt.MAX_RATIO * len(bomb)
    path = tmp_path / "bomb.basket"
    _basket_with_frame(path, fmt.CODEC_ZSTD, raw_len, bomb)
    with pytest.raises(FormatError, match="bad frame: codec 4") as exc:
        fmt.read_basket(path)
    assert "payload 0 at offset" in str(exc.value)


def test_a_zstd_frame_without_its_size_is_refused(tmp_path):
    """Without the content size the decoder would size its output some other way: the
    reader wants the size written, and equal to the frame's raw_len."""
    payload = _text_records(200)
    unsized = zstandard.ZstdCompressor(level=3, write_content_size=False).compress(payload)
    path = tmp_path / "unsized.basket"
    _basket_with_frame(path, fmt.CODEC_ZSTD, len(payload), unsized)
    with fmt.read_basket(path) as b, pytest.raises(FormatError, match="an unknown number"):
        b.payload(0)
    sized = zstandard.ZstdCompressor(level=3).compress(payload)
    _basket_with_frame(path, fmt.CODEC_ZSTD, len(payload), sized + sized)  # two frames
    with fmt.read_basket(path) as b, pytest.raises(FormatError, match="unused data"):
        b.payload(0)
    _basket_with_frame(path, fmt.CODEC_ZSTD, len(payload), sized)
    with fmt.read_basket(path) as b:
        assert b.payload(0) == payload


def test_a_run_of_one_byte_stays_within_the_ratio(tmp_path):
    run = b"\x40" * (8 << 20)  # blank cards: a data set of spaces
    assert len(run) > fmt.MAX_RATIO * len(fmt._zstd_compressor().compress(run))
    path = tmp_path / "run.basket"
    _one_payload_basket(path, run, "auto")
    with fmt.read_basket(path) as b:
        info = b.payload_info(0)
        assert info.codec == fmt.CODEC_ZLIB and info.raw_len <= fmt.MAX_RATIO * info.stored_len
        assert b.payload(0) == run


def _as_version_1(data: bytes) -> bytes:
    """A basket as a version-1 writer made it (same layout, header says format 1)."""
    out = bytearray(data)
    out[8:10] = (1).to_bytes(2, "little")
    at = out.index(b'"format":%d' % fmt.FORMAT_VERSION)
    out[at : at + 10] = b'"format":1'
    return reseal_basket(out)


def test_version_1_baskets_are_read_and_keep_to_their_codecs(tmp_path):
    header, operations, payloads = small_basket()
    old = tmp_path / "v1.basket"
    fmt.write_basket(old, header, operations, payloads, compression="zlib")
    old.write_bytes(_as_version_1(old.read_bytes()))
    with fmt.verify_basket(old) as b:
        assert (b.version, b.header["format"]) == (1, 1)
        assert b.operations == operations
        assert [b.payload(i) for i in range(b.payload_count)] == payloads
    # Codec 4 came with version 2: in a version-1 basket it is damage.
    fmt.write_basket(old, header, operations, payloads, compression="zstd")
    old.write_bytes(_as_version_1(old.read_bytes()))
    with pytest.raises(FormatError, match="codec 4") as exc:
        fmt.read_basket(old)
    assert exc.value.path == str(old) and "payload 0 at offset" in str(exc.value)
