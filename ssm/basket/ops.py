"""The operations of a change basket, their state digests and payload encodings.

Specification: docs/formats/basket.md, sections *Operations*, *State digests* and
*Payloads*.  This module is pure (no I/O): ``ssm.export`` builds operations and
payloads with it, ``ssm.basket.fmt`` stores them, ``ssm.apply`` decodes payloads and
computes the same state digests from a fingerprint of its target.

    from ssm.basket import ops
    op = ops.Operation(seq=0, kind="member.put", volser="SYS001", dsname="USER.SRC",
                       member="PAYROLL", before=None, after=ops.member_state(c, a), payload=0)
    state = ops.dataset_state(fp, fp.find("USER.SRC"))      # "blake3:<hex>"
    blocks = ops.decode_blocks(basket.payload(op.payload))  # [Block(ttr, key, data)]
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, fields
from typing import NamedTuple

import blake3
import numpy as np

from emulator.dataset import records as rf
from emulator.errors import FormatError
from emulator.pds.directory import EntryColumns
from ssm.basket.blocks import (
    BLOCK_HEADER,
    SCAN_EXTRA,
    SCAN_OK,
    SCAN_SHORT,
    Block,
    BlockRun,
    BlockTable,
    ListView,
    run_of,
    scan_blocks,
    scan_members,
)
from ssm.model import DS_PDS, DatasetFp, Fingerprint, digest_text
from ssm.patterns import DsnFilter, NameMaps

#: Every operation kind, in the order of the table in basket.md.
KINDS = (
    "dataset.create",
    "dataset.delete",
    "dataset.rename",
    "dataset.content",
    "dataset.records",
    "dataset.attributes",
    "member.put",
    "member.delete",
    "member.rename",
    "member.userdata",
    "alias.put",
    "alias.delete",
)
DATASET_KINDS = frozenset(k for k in KINDS if k.startswith("dataset."))
MEMBER_KINDS = frozenset(KINDS) - DATASET_KINDS
#: Kinds whose object may be absent before (before is None) / must be gone after.
#: A dataset.create with a before digest replaces that data set (scratch, allocate).
CREATES = frozenset({"dataset.create", "member.put", "alias.put"})
DELETES = frozenset({"dataset.delete", "member.delete", "alias.delete"})
#: Kinds that need a payload, and the payload encoding each uses.
PAYLOAD_FORMS = {
    "dataset.create": ("records", "blocks", "members"),
    "dataset.content": ("records", "blocks"),
    "dataset.records": ("edits",),
    "member.put": ("blocks",),
}
DCB_KEYS = ("dsorg", "recfm", "lrecl", "blksize", "keylen")
SPACE_KEYS = ("unit", "primary", "secondary", "dirblks")
_TEXT_KEYS = ("dsorg", "recfm", "unit")
#: The largest value of each number in ``dcb`` and ``space``: the width of the DSCB
#: field it ends up in (a crafted manifest must not size an allocation).
_LIMITS = {
    "lrecl": 0xFFFF,
    "blksize": 0xFFFF,
    "keylen": 0xFF,
    "primary": 0xFFFFFF,
    "secondary": 0xFFFFFF,
    "dirblks": 0xFFFFFF,
    "tracks": 0xFFFFFFFF,
}

_DIGEST_RE = re.compile(r"blake3:[0-9a-f]{64}\Z")


# -- the operation --------------------------------------------------------------------
@dataclass
class Operation:
    """One change of one object (basket.md *Operations*, field by field)."""

    seq: int
    kind: str
    volser: str
    dsname: str
    member: str | None = None
    new_name: str | None = None
    dcb: dict | None = None  # dsorg, recfm, lrecl, blksize, keylen (NEW side)
    space: dict | None = None  # unit, primary, secondary, dirblks (NEW side)
    before: str | None = None  # state digest expected on the target; None: must not exist
    after: str | None = None  # state digest once applied; None: gone
    payload: int | None = None  # index of the payload
    records: tuple[int, int] | None = None  # dataset.records: [start, stop) in OLD numbering
    new_records: tuple[int, int] | None = None  # the same span in NEW numbering
    userdata: bytes | None = None  # member kinds: directory user data, TTRs as on the source
    ttr_count: int = 0
    alias_of: str | None = None  # alias.put: its member
    size: int = 0  # content bytes written (information)
    extra: dict = field(default_factory=dict, compare=False)  # unknown JSON keys, kept

    @property
    def is_member(self) -> bool:
        return self.kind in MEMBER_KINDS

    @property
    def target(self) -> str:
        """``DSN`` or ``DSN(MEMBER)``: the object before the operation."""
        return f"{self.dsname}({self.member})" if self.member else self.dsname

    @property
    def result(self) -> str:
        """The object's name after the operation (renames: the new name)."""
        if self.kind == "dataset.rename":
            return self.new_name or self.dsname
        if self.kind == "member.rename":
            return f"{self.dsname}({self.new_name})"
        return self.target

    def to_json(self) -> dict:
        out = {
            "seq": self.seq,
            "kind": self.kind,
            "volser": self.volser,
            "dsname": self.dsname,
            "member": self.member,
            "new_name": self.new_name,
            "dcb": self.dcb,
            "space": self.space,
            "before": self.before,
            "after": self.after,
            "payload": self.payload,
            "records": list(self.records) if self.records is not None else None,
            "new_records": list(self.new_records) if self.new_records is not None else None,
            "userdata": self.userdata.hex().upper() if self.userdata is not None else None,
            "ttr_count": self.ttr_count,
            "alias_of": self.alias_of,
            "size": self.size,
        }
        for key, value in self.extra.items():
            out.setdefault(key, value)
        return out

    @classmethod
    def from_json(cls, data: dict, where: str = "", path: str | None = None) -> Operation:
        """Decode and check one manifest row; FormatError naming ``where`` on anything
        malformed (never KeyError/TypeError)."""
        if not isinstance(data, dict):
            raise FormatError(f"operation is a {type(data).__name__}, not an object", path, where)
        try:
            op = cls(
                seq=_int(data["seq"]),
                kind=_str(data["kind"]),
                volser=_str(data["volser"]),
                dsname=_str(data["dsname"]),
                member=_opt_str(data.get("member")),
                new_name=_opt_str(data.get("new_name")),
                dcb=_opt_dict(data.get("dcb"), DCB_KEYS),
                space=_opt_dict(data.get("space"), SPACE_KEYS),
                before=_opt_str(data.get("before")),
                after=_opt_str(data.get("after")),
                payload=None if data.get("payload") is None else _int(data["payload"]),
                records=_opt_range(data.get("records")),
                new_records=_opt_range(data.get("new_records")),
                userdata=(
                    None if data.get("userdata") is None else bytes.fromhex(_str(data["userdata"]))
                ),
                ttr_count=_int(data.get("ttr_count", 0)),
                alias_of=_opt_str(data.get("alias_of")),
                size=_int(data.get("size", 0)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise FormatError(f"bad operation: {exc!r}", path, where) from None
        known = {f.name for f in fields(cls)}
        op.extra = {k: v for k, v in data.items() if k not in known}
        op.check(where, path)
        return op

    def check(self, where: str = "", path: str | None = None) -> None:
        """FormatError unless the fields fit the kind (basket.md *Operations*)."""

        def bad(message: str) -> FormatError:
            return FormatError(f"operation {self.seq} ({self.kind}): {message}", path, where)

        if self.kind not in KINDS:
            raise bad("unknown kind")
        for label, digest in (("before", self.before), ("after", self.after)):
            if digest is not None and not _DIGEST_RE.match(digest):
                raise bad(f"{label} digest {digest!r} is not blake3:<64 hex digits>")
        if self.kind in DELETES and self.after is not None:
            raise bad("a deleted object has no after digest")
        if self.kind not in CREATES and self.before is None:
            raise bad("before digest missing")
        if self.kind not in DELETES and self.after is None:
            raise bad("after digest missing")
        if self.is_member and not self.member:
            raise bad("member name missing")
        if not self.is_member and self.member is not None:
            raise bad("a data set operation names a member")
        if self.kind in ("dataset.rename", "member.rename") and not self.new_name:
            raise bad("new name missing")
        if self.kind in PAYLOAD_FORMS and self.payload is None:
            raise bad("payload missing")
        if self.kind not in PAYLOAD_FORMS and self.payload is not None:
            raise bad("unexpected payload")
        if self.kind == "dataset.records" and self.records is None:
            raise bad("record range missing")
        if self.kind == "dataset.create" and (self.dcb is None or self.space is None):
            raise bad("DCB and space missing")
        if self.kind == "alias.put" and not self.alias_of:
            raise bad("alias target missing")
        if not 0 <= self.ttr_count <= 3:
            raise bad(f"TTR count {self.ttr_count} is not 0..3")
        if self.userdata is not None and len(self.userdata) > 62:
            raise bad(f"{len(self.userdata)} bytes of user data (at most 62)")


def _int(value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{value!r} is not a non-negative integer")
    return value


def _str(value) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{value!r} is not a string")
    return value


def _opt_str(value) -> str | None:
    return None if value is None else _str(value)


def _opt_range(value) -> tuple[int, int] | None:
    if value is None:
        return None
    if not isinstance(value, list) or len(value) != 2:
        raise ValueError(f"{value!r} is not a [start, stop) pair")
    start, stop = _int(value[0]), _int(value[1])
    if stop < start:
        raise ValueError(f"range {value!r} ends before it starts")
    return start, stop


def _opt_dict(value, keys: Sequence[str]) -> dict | None:
    """An object with at least ``keys``; text values (DSORG, RECFM, unit) must be
    strings and every other known value a non-negative integer within its limit."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise TypeError(f"{value!r} is not an object")
    missing = [k for k in keys if k not in value]
    if missing:
        raise ValueError(f"{value!r} lacks {', '.join(missing)}")
    for key in _TEXT_KEYS:
        if key in value:
            _str(value[key])
    for key, limit in _LIMITS.items():
        if key in value and _int(value[key]) > limit:
            raise ValueError(f"{key} {value[key]} is more than {limit}")
    return dict(value)


# -- state digests (basket.md "State digests") ----------------------------------------
def _pad(text: str | bytes, width: int) -> bytes:
    raw = text.encode("ascii") if isinstance(text, str) else bytes(text)
    return raw[:width].ljust(width, b"\x00")


def attribute_state_raw(
    dsorg: str, recfm: str, lrecl: int, blksize: int, keylen: int, unit: str, secondary: int
) -> bytes:
    """The 32 raw bytes of a data set's attribute state."""
    return blake3.blake3(
        b"ssm.basket.dsattrs.v1"
        + _pad(dsorg, 4)
        + _pad(recfm, 8)
        + struct.pack("<IIB", lrecl & 0xFFFFFFFF, blksize & 0xFFFFFFFF, keylen & 0xFF)
        + _pad(unit, 5)
        + struct.pack("<I", secondary & 0xFFFFFFFF)
    ).digest()


def _row_attribute_state(row: np.void) -> bytes:
    return attribute_state_raw(
        bytes(row["dsorg"]).rstrip(b"\x00").decode("ascii", "replace"),
        bytes(row["recfm"]).rstrip(b"\x00").decode("ascii", "replace"),
        int(row["lrecl"]),
        int(row["blksize"]),
        int(row["keylen"]),
        bytes(row["space_unit"]).rstrip(b"\x00").decode("ascii", "replace"),
        int(row["secondary"]),
    )


def attribute_state(fp: Fingerprint, ds: DatasetFp | int) -> str:
    """``blake3:<hex>`` attribute state of data set ``ds`` (object or row index)."""
    index = ds if isinstance(ds, int) else ds.index
    return digest_text(_row_attribute_state(fp.dataset_table[index]))


def _dataset_state_raw(fp: Fingerprint, index: int) -> bytes:
    row = fp.dataset_table[index]
    h = blake3.blake3(b"ssm.basket.ds.v1")
    h.update(_row_attribute_state(row))
    h.update(bytes(row["content"]))
    if int(row["flags"]) & DS_PDS:
        start, count = int(row["mstart"]), int(row["mcount"])
        rows = fp.members[start : start + count]
        if count:
            # name(8) || attrs(16) per entry, rows already in directory (name) order.
            packed = np.empty(count, dtype=[("name", "S8"), ("attrs", "V16")])
            packed["name"] = rows["name"]
            packed["attrs"] = rows["attrs"]
            h.update(packed.tobytes())
    return h.digest()


def dataset_state(fp: Fingerprint, ds: DatasetFp | int) -> str:
    """``blake3:<hex>`` data set state of ``ds`` (object or row index)."""
    index = ds if isinstance(ds, int) else ds.index
    return digest_text(_dataset_state_raw(fp, index))


def member_state_raw(content: bytes, attrs: bytes) -> bytes:
    return blake3.blake3(b"ssm.basket.member.v1" + bytes(content) + bytes(attrs)).digest()


def member_state(content: bytes, attrs: bytes) -> str:
    """``blake3:<hex>`` member state from a member's content and attributes digests."""
    return digest_text(member_state_raw(content, attrs))


def member_state_of(fp: Fingerprint, ds: DatasetFp, name: str) -> str | None:
    """State of member ``name`` of ``ds`` in ``fp``, or None when it does not exist."""
    m = fp.member(ds, name)
    return None if m is None else member_state(m.content, m.attrs)


def state_of(
    fp: Fingerprint, dsname: str, member: str | None = None, kind: str | None = None
) -> str | None:
    """The state digest an operation of ``kind`` on ``dsname``/``member`` compares with
    in ``fp`` (None: the object does not exist).  ``dataset.attributes`` uses the
    attribute state, other data set kinds the data set state, member kinds the member
    state.  The data set is looked up by name on any volume (placement is no content)."""
    ds = fp.find(dsname)
    if ds is None:
        return None
    if member is not None:
        return member_state_of(fp, ds, member)
    if kind == "dataset.attributes":
        return attribute_state(fp, ds)
    return dataset_state(fp, ds)


def system_state(
    fp: Fingerprint,
    include: Iterable[str] = (),
    exclude: Iterable[str] = (),
    maps: Iterable[str] = (),
    side: str = "old",
) -> str:
    """System state of ``fp`` over the data sets that pass the filters, under their
    target names: ``side="new"`` maps names back through ``maps`` (NEW -> OLD names),
    ``side="old"`` uses them as they are (basket.md *State digests*)."""
    flt = DsnFilter(include, exclude)
    name_maps = NameMaps(maps)
    entries: list[tuple[str, str, int]] = []
    for i, ds in enumerate(fp.datasets):
        name = ds.dsname
        other = name_maps.backward(name) if side == "new" else name_maps.forward(name)
        if flt and not flt.passes(name, other):
            continue
        target = other if side == "new" else name
        entries.append((target, ds.volser, i))
    h = blake3.blake3(b"ssm.basket.system.v1")
    for target, _vol, i in sorted(entries):
        h.update(_pad(target, 44))
        h.update(_dataset_state_raw(fp, i))
    return digest_text(h.digest())


# -- payload encodings (basket.md "Payloads") ----------------------------------------
class RecordEdit(NamedTuple):
    """Replace OLD records ``[start, stop)`` with ``records``."""

    start: int
    stop: int
    records: list[bytes]


@dataclass
class MemberImage:
    """One directory entry of a PDS in a ``members`` payload (dataset.create)."""

    name: str
    alias: bool
    ttr_count: int
    userdata: bytes
    alias_of: str | None = None  # alias: its member's name
    blocks: Sequence[Block] = field(default_factory=list)  # decoded: a BlockRun


_U32 = struct.Struct("<I")
_EDIT = struct.Struct("<QQ")
_BLOCK = BLOCK_HEADER  # ttr, keylen, 0, 0, datalen
_NO_TARGET = 0xFFFFFFFF


def _records_parts(records: Sequence[bytes], out: list[bytes]) -> None:
    out.append(_U32.pack(len(records)))
    for r in records:
        out.append(_U32.pack(len(r)))
        out.append(bytes(r))


def encode_records(records: Sequence[bytes]) -> bytes:
    """``records`` payload: logical records, each with a 4-byte length."""
    out = [b"R1\x00\x00"]
    _records_parts(records, out)
    return b"".join(out)


def encode_edits(edits: Sequence[RecordEdit]) -> bytes:
    """``record edits`` payload."""
    out = [b"E1\x00\x00", _U32.pack(len(edits))]
    for e in edits:
        out.append(_EDIT.pack(e.start, e.stop))
        _records_parts(e.records, out)
    return b"".join(out)


def _blocks_parts(
    blocks: Sequence[Block], out: list[bytes], data: list[bytes] | None = None
) -> None:
    """A block list into ``out``; with ``data``, the keys and data go there instead of
    after each header (``P2``)."""
    data = out if data is None else data
    out.append(_U32.pack(len(blocks)))
    for b in blocks:
        out.append(_BLOCK.pack(b.ttr, len(b.key), 0, 0, len(b.data)))
        data.append(bytes(b.key))
        data.append(bytes(b.data))


def encode_blocks(blocks: Sequence[Block]) -> bytes:
    """``blocks`` payload (member.put)."""
    out = [b"B1\x00\x00"]
    _blocks_parts(blocks, out)
    return b"".join(out)


def encode_members(members: Sequence[MemberImage]) -> bytes:
    """``members`` payload (dataset.create of a PDS), form ``P2``: entries in the order
    given, with their block headers, then every block's key and data."""
    index = {m.name: i for i, m in enumerate(members)}
    head: list[bytes] = []
    data: list[bytes] = []
    for m in members:
        name = m.name.encode("cp037")
        target = _NO_TARGET
        if m.alias and m.alias_of is not None and m.alias_of in index:
            target = index[m.alias_of]
        flags = 1 if m.alias else 0
        head.append(bytes([len(name)]) + name + bytes([flags, m.ttr_count, len(m.userdata)]))
        head.append(bytes(m.userdata))
        head.append(_U32.pack(target))
        _blocks_parts([] if m.alias else m.blocks, head, data)
    joined = b"".join(head)
    return b"".join([_MEMBERS_HEAD.pack(b"P2", 0, len(members), len(joined)), joined, *data])


#: The fixed start of a ``P2`` members payload: magic, zero, count, head_len.
_MEMBERS_HEAD = struct.Struct("<2sHII")
MEMBERS_HEAD_SIZE = _MEMBERS_HEAD.size


def members_head_size(start: bytes) -> int | None:
    """The bytes a reader needs to decode a members payload without its data, given
    its first 12: ``12 + head_len`` for ``P2``; None for another form (``P1``
    interleaves the data, so the whole payload is needed)."""
    if len(start) < MEMBERS_HEAD_SIZE or start[:4] != b"P2\x00\x00":
        return None
    return MEMBERS_HEAD_SIZE + _MEMBERS_HEAD.unpack_from(start)[3]


class _Reader:
    """Bounded cursor over a payload: every read checks its length (FormatError)."""

    def __init__(self, data: bytes | np.ndarray, where: str):
        # .obj: the bytes themselves, for slicing; a uint8 array is read in place (only
        # decode_members takes one: the others slice .obj for bytes)
        self.data = memoryview(data if isinstance(data, np.ndarray) else bytes(data))
        self.pos = 0
        self.where = where

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise FormatError(
                f"payload ends at {len(self.data)}, {n} bytes needed at {self.pos}",
                where=self.where,
            )
        out = bytes(self.data[self.pos : self.pos + n])
        self.pos += n
        return out

    def u32(self) -> int:
        return _U32.unpack(self.take(4))[0]

    def count(self, minimum: int) -> int:
        """A count whose items take at least ``minimum`` bytes each (bounds allocation)."""
        n = self.u32()
        if n * minimum > len(self.data) - self.pos:
            raise FormatError(f"count {n} at {self.pos - 4} exceeds the payload", where=self.where)
        return n

    def magic(self, want: bytes) -> None:
        got = self.take(4)
        if got != want + b"\x00\x00":
            raise FormatError(f"payload starts {got!r}, not {want!r}", where=self.where)

    def end(self) -> None:
        if self.pos != len(self.data):
            raise FormatError(
                f"{len(self.data) - self.pos} bytes after the payload's end", where=self.where
            )

    # records() and blocks() read items in a loop of their own (offsets, one slice per
    # field) rather than through take(): member payloads hold tens of thousands of
    # blocks, and the checks are the same.
    def _short(self, pos: int, n: int) -> FormatError:
        return FormatError(
            f"payload ends at {len(self.data)}, {n} bytes needed at {pos}", where=self.where
        )

    def records(self) -> list[bytes]:
        n = self.count(4)
        raw, pos, size = self.data.obj, self.pos, len(self.data)
        unpack = _U32.unpack_from
        out = []
        for _ in range(n):
            if pos + 4 > size:
                raise self._short(pos, 4)
            (length,) = unpack(raw, pos)
            pos += 4
            if pos + length > size:
                raise self._short(pos, length)
            out.append(raw[pos : pos + length])
            pos += length
        self.pos = pos
        return out

    def scanned(self, code: int, pos: int, need: int) -> None:
        """Raise what a scan of ``ssm.basket.blocks`` found, as take()/count() would."""
        if code == SCAN_SHORT:
            raise self._short(pos, need)
        if code != SCAN_OK:
            raise FormatError(f"count {need} at {pos} exceeds the payload", where=self.where)
        self.pos = pos

    def blocks(self) -> BlockRun:
        code, pos, need, table = scan_blocks(self.data.obj, self.pos)
        self.scanned(code, pos, need)
        return BlockRun(table, 0, len(table.ttr))


def decode_records(payload: bytes, where: str = "records payload") -> list[bytes]:
    r = _Reader(payload, where)
    r.magic(b"R1")
    out = r.records()
    r.end()
    return out


def decode_edits(payload: bytes, where: str = "record edits payload") -> list[RecordEdit]:
    r = _Reader(payload, where)
    r.magic(b"E1")
    n = r.count(_EDIT.size + 4)
    edits: list[RecordEdit] = []
    last = 0
    for _ in range(n):
        start, stop = _EDIT.unpack(r.take(_EDIT.size))
        if stop < start or start < last:
            raise FormatError(f"edit [{start}, {stop}) out of order", where=where)
        last = stop
        edits.append(RecordEdit(start, stop, r.records()))
    r.end()
    return edits


def decode_blocks(payload: bytes, where: str = "blocks payload") -> list[Block]:
    r = _Reader(payload, where)
    r.magic(b"B1")
    out = r.blocks()
    r.end()
    return out


def decode_members(
    payload: bytes | np.ndarray, where: str = "members payload", size: int | None = None
) -> MemberList:
    """The entries of a members payload (``P1`` or ``P2``); ``payload`` may be a uint8
    array (a buffer the caller reuses): names and user data are copied out, the blocks'
    table refers to it.  ``size``: the length of the whole payload when ``payload`` is
    only its start, at least :func:`members_head_size` bytes of a ``P2`` one; the
    blocks' table then has no bytes (``payload`` None, ``raw`` empty) but the offsets
    are checked against ``size`` all the same."""
    r = _Reader(payload, where)
    whole = len(r.data) if size is None else size
    if bytes(r.data[:2]) == b"P2":
        r.magic(b"P2")
        n = r.count(4 + 4 + 4)
        head_end = MEMBERS_HEAD_SIZE + r.u32()
        if head_end > len(r.data) or head_end > whole:
            raise FormatError(
                f"head of {head_end - MEMBERS_HEAD_SIZE} bytes runs past the payload "
                f"({min(len(r.data), whole)} bytes)",
                where=where,
            )
        head = r.data.obj[:head_end]
        code, pos, need, rows, table = scan_members(head, r.pos, n, head_end, whole)
        if code == SCAN_EXTRA:
            raise FormatError(f"{need} bytes after the last block at {pos}", where=where)
        if code == SCAN_SHORT:
            part, ends = ("head", head_end) if pos < head_end else ("payload", whole)
            raise FormatError(f"{part} ends at {ends}, {need} bytes needed at {pos}", where=where)
        r.scanned(code, pos, need)
        if pos != head_end:
            raise FormatError(f"head ends at {pos}, not at {head_end}", where=where)
        if size is not None and size != len(r.data):
            table = table._replace(payload=None, raw=np.zeros(0, np.uint8))
        else:
            table = table._replace(payload=r.data.obj, raw=np.frombuffer(r.data.obj, np.uint8))
    else:
        if size is not None and size != len(r.data):
            raise FormatError("a P1 members payload is decoded whole", where=where)
        r.magic(b"P1")
        n = r.count(4 + 4 + 4)
        code, pos, need, rows, table = scan_members(r.data.obj, r.pos, n)
        r.scanned(code, pos, need)
        r.end()
    return MemberList(r.data.obj, rows, table, where)


class MemberList(ListView, Sequence[MemberImage]):
    """The entries of a members payload (:func:`decode_members`), read like a list of
    :class:`MemberImage`, which are made only when someone indexes or iterates it.
    The import's load reads the columns instead: ``entries`` (names, alias bits, TTR
    counts and user data as :class:`EntryColumns`, TTRs zero), and per entry its
    blocks ``lo .. lo+count-1`` of ``table`` and its alias ``target`` (entry index,
    ``X'FFFFFFFF'`` when unknown)."""

    noun = "members"

    def __init__(self, raw: bytes | np.ndarray, rows: np.ndarray, table: BlockTable, where: str):
        (name_at, name_len, flags, ttr_count, ud_at, ud_len, target, lo, count) = rows.T
        alias = (flags & 1).astype(bool)
        linked = alias & (target != _NO_TARGET)
        bad = linked & ((target >= len(rows)) | alias[np.minimum(target, len(rows) - 1)])
        view = np.frombuffer(raw, dtype=np.uint8)
        if bad.any():
            i = int(np.argmax(bad))
            name = bytes(view[name_at[i] : name_at[i] + name_len[i]]).decode("cp037")
            raise FormatError(f"alias {name} points at entry {int(target[i])}", where=where)
        self.entries = EntryColumns.gather(
            view, name_at, name_len, np.zeros(len(rows), np.int64), alias, ttr_count, ud_at,
            ud_len, where,
        )  # fmt: skip
        self.alias, self.target, self.lo, self.count = alias, target, lo, count
        self.table = table
        self._rows = rows  # names and user data are read from ``entries``: raw may be reused
        self._images: list[MemberImage] | None = None

    def _made(self) -> list[MemberImage]:
        if self._images is None:
            table, names, userdata = self.table, self.entries.names, self.entries.userdata
            out = []
            for i, (_at, name_len, flags, ttr_count, _ua, ud_len, _t, lo, count) in enumerate(
                self._rows.tolist()
            ):
                out.append(
                    MemberImage(
                        names[i, :name_len].tobytes().decode("cp037"),
                        bool(flags & 1),
                        ttr_count,
                        userdata[i, :ud_len].tobytes(),
                        None,
                        BlockRun(table, lo, lo + count),
                    )
                )
            for m, t in zip(out, self.target.tolist(), strict=True):
                if m.alias and t != _NO_TARGET:
                    m.alias_of = out[t].name
            self._images = out
        return self._images

    def aliases(self) -> list[tuple[str, str | None, bytes, int]]:
        """(name, its member's name or None, user data, TTR count) of every alias."""
        cols, out = self.entries, []
        counts = cols.ttr_counts()
        for i in np.flatnonzero(self.alias).tolist():
            entry, t = cols.entry(i), int(self.target[i])
            main = None if t == _NO_TARGET else cols.entry(t).name
            out.append((entry.name, main, entry.userdata, int(counts[i])))
        return out

    def retable(self, table: BlockTable) -> None:
        """Read the blocks through ``table`` (the same rows) from now on."""
        self.table = table
        for m in self._images or []:
            m.blocks.table = table

    def __len__(self) -> int:
        return len(self._rows)

    def __getitem__(self, i):
        return self._made()[i]

    def __iter__(self) -> Iterator[MemberImage]:
        return iter(self._made())


def decode_payload(kind: str, payload: bytes, where: str = "payload", size: int | None = None):
    """Decode a payload by its leading magic; ``kind`` checks that it fits the
    operation (FormatError otherwise).  ``size``: ``payload`` is only the start of a
    payload of that length, which only a ``P2`` members payload allows
    (:func:`decode_members`)."""
    magic = bytes(payload[:2])
    forms = {b"R1": "records", b"E1": "edits", b"B1": "blocks", b"P1": "members", b"P2": "members"}
    form = forms.get(magic)
    if form is None or form not in PAYLOAD_FORMS.get(kind, ()):
        raise FormatError(f"payload {magic!r} does not fit a {kind} operation", where=where)
    if form == "members":
        return decode_members(payload, where, size)
    if size is not None and size != len(payload):
        raise FormatError(f"a {form} payload is decoded whole", where=where)
    decoder = {"records": decode_records, "edits": decode_edits, "blocks": decode_blocks}[form]
    return decoder(payload, where)


_DW = struct.Struct(">HBB")  # BDW / RDW / SDW: length, flags, reserved
_SEG_NULL = 0x80
_SEG_CONTINUED = 0x02  # SDW code bit: a last (10) or middle (11) segment


def split_block(recfm: int, data: bytes, skip: int, where: str = "") -> tuple[bytes, bytes]:
    """Cut one data block where its first ``skip`` stream bytes end: ``(head, rest)``.

    Stream bytes are those of the fingerprint's content stream (fingerprint.md
    *Content digests*): F the data bytes; V a record's RDW length; VS a complete or
    first segment's SDW length (its record's length prefix and data), a middle or
    last segment's data; U 4 + the block's length.  A record group's ``skip`` is such
    a count, so this finds where a group's first record starts inside the block that
    holds it.  Both parts are blocks of the same RECFM (V formats: each with its own
    BDW, in the original's form), ``b""`` when empty; ``head`` ends on a record
    boundary (FormatError otherwise, or when the block is shorter than ``skip``)."""
    data = bytes(data)
    if skip <= 0:
        return b"", data
    if rf.is_fixed(recfm):
        if skip > len(data):
            raise FormatError(f"stream offset {skip} is past a {len(data)}-byte block", where=where)
        return data[:skip], data[skip:]
    if not rf.is_variable(recfm):  # U: a block is one record
        if skip != 4 + len(data):
            raise FormatError(f"stream offset {skip} inside a U block of {len(data)}", where=where)
        return data, b""
    large = len(data) >= 4 and bool(data[0] & 0x80)
    spanned = rf.is_spanned(recfm)
    pos, count = 4, 0
    while count < skip:
        if pos + 4 > len(data):
            raise FormatError(
                f"stream offset {skip} is past the block's {count} stream bytes", where=where
            )
        length, flags, _ = _DW.unpack_from(data, pos)
        if length < 4 or pos + length > len(data):
            raise FormatError(f"descriptor length {length} at offset {pos}", where=where)
        if not spanned or not flags & _SEG_NULL:
            count += length - 4 if spanned and flags & _SEG_CONTINUED else length
        pos += length
    if count != skip:
        raise FormatError(f"stream offset {skip} is not between records", where=where)

    def framed(body: bytes) -> bytes:
        if not body:
            return b""
        n = 4 + len(body)
        bdw = (n | 0x80000000).to_bytes(4, "big") if large else _DW.pack(n, 0, 0)
        return bdw + body

    return framed(data[4:pos]), framed(data[pos:])


def splice(old: Sequence[bytes], edits: Sequence[RecordEdit], offset: int = 0) -> list[bytes]:
    """Apply record edits to ``old``, which holds OLD records ``offset ..`` (an importer
    reads only from the first edit on: pass ``offset = edits[0].start``)."""
    out: list[bytes] = []
    pos = offset
    for e in edits:
        if e.start < pos or e.stop - offset > len(old):
            raise FormatError(
                f"edit [{e.start}, {e.stop}) does not fit records {offset}..{offset + len(old)}"
            )
        out.extend(old[pos - offset : e.start - offset])
        out.extend(e.records)
        pos = e.stop
    out.extend(old[pos - offset :])
    return out


__all__ = [
    "KINDS",
    "DATASET_KINDS",
    "MEMBER_KINDS",
    "PAYLOAD_FORMS",
    "Operation",
    "Block",
    "RecordEdit",
    "MemberImage",
    "BlockRun",
    "BlockTable",
    "run_of",
    "attribute_state",
    "attribute_state_raw",
    "dataset_state",
    "member_state",
    "member_state_raw",
    "member_state_of",
    "state_of",
    "system_state",
    "encode_records",
    "encode_edits",
    "encode_blocks",
    "encode_members",
    "members_head_size",
    "MEMBERS_HEAD_SIZE",
    "decode_records",
    "decode_edits",
    "decode_blocks",
    "decode_members",
    "decode_payload",
    "splice",
    "split_block",
]
