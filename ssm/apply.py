"""Apply a change basket to a system of volume images (docs/import.md).

    from ssm.apply import import_basket, recover
    result = import_basket("day1.basket", ["sysres.3390", "user01.3390"],
                           backout="day1-undo.basket")
    result.applied, result.skipped, result.conflicts, result.verified
    recover(["sysres.3390", "user01.3390"])      # roll back an interrupted import

The basket format is docs/formats/basket.md; the operations, their state digests and
payload encodings come from :mod:`ssm.basket.ops`.  The order of work, the intent log
and the recovery rules are docs/import.md, which this module follows step by step:

1. ``read_basket`` verifies the whole file; every payload is decoded (kept in memory
   for the apply step).
2. The basket must stay inside the import's limits (``include``/``exclude`` and the
   target volumes; docs/import.md "Limits"), else it is refused whole.  An intent log
   beside a target (``<target>.ssm-intent``) means an earlier import was interrupted:
   the same basket rolls forward (the ordinary import below finds the volumes that
   committed *applied*), anything else rolls back with the stored backout.
3. The data sets the basket names are fingerprinted on the targets
   (:mod:`ssm.fingerprint`'s own job runner, restricted to those data sets) and every
   operation's status is decided: *pending* (the target has its ``before`` state),
   *applied* (already its ``after`` state) or *conflict*.
4. Placement, space and directory room are checked; the before data of every object
   that changes is read into the backout basket.
5. Backout basket, then intent log, are written and flushed; then each volume's
   operations run in one image transaction.
6. The touched data sets are fingerprinted again and every operation's ``after`` state
   is checked.

Only public names of the layers below are used: the PDS layer's directory calls
(``Pds.directory``, ``Pds.write_directory``, ``Pds.end_of_data``, ``Pds.blocks_of``)
let the member operations of one PDS share one in-memory directory, read once and
written once, and :func:`ssm.fingerprint.fingerprint` fingerprints only the data sets
a basket names (``datasets=``).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import fcntl
import json
import mmap
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace

import blake3
import numpy as np

from emulator import api
from emulator.dataset import io
from emulator.dataset import records as rf
from emulator.errors import (
    ConflictError,
    EmulatorError,
    FormatError,
    IntegrityError,
    NotFoundError,
    SpaceError,
    UnsupportedError,
)
from emulator.memory import scratch
from emulator.pds import DirEntry, Pds
from emulator.pds.directory import (
    NAME_LEN,
    EntryColumns,
    blocks_needed,
    name_to_bytes,
    validate_name,
)
from emulator.pds.pds import Directory, resolve_aliases
from emulator.volume import DatasetInfo, Volume
from ssm import model as m
from ssm.basket import ops
from ssm.basket.fmt import Basket, read_basket, write_basket
from ssm.basket.ops import MEMBER_KINDS, Operation
from ssm.patterns import DsnFilter

#: Beside the first target: the intent log and the backout basket of an import in progress.
INTENT_SUFFIX = ".ssm-intent"
BACKOUT_SUFFIX = ".ssm-backout"
INTENT_VERSION = 1
#: The backout is written before the first change, on the import's critical path, and
#: is usually read never: its payloads are stored as they are (compressing the before
#: images of a large deleted data set took longer than writing them).
BACKOUT_COMPRESSION = "none"
#: The R of a count field is one byte (FORMATS.md 1.2).
MAX_REC = 255
#: A data set has at most 16 extents on one volume (FORMATS.md 5.4).
MAX_EXTENTS = 16
#: A state no real digest equals: an object whose state the plan cannot know (a PDS
#: whose members earlier operations changed).
_UNKNOWN = "unknown"
_ABSENT = "absent"

#: Status of an operation on the target (docs/import.md "Terminology").
PENDING = "pending"
APPLIED = "applied"
CONFLICT = "conflict"
FORCED = "forced"


# -- results --------------------------------------------------------------------------
@dataclass
class ImportProgress:
    """Where an import is: handed to the ``progress`` callback."""

    phase: str  # "verify", "recover", "plan", "backout", "apply", "check", "done"
    done: int
    total: int
    volser: str = ""
    elapsed: float = 0.0
    message: str = ""


@dataclass
class ImportResult:
    """What an import did (or, with ``dry_run``, would do).

    ``applied``/``skipped``: operations applied now (with ``dry_run``: that would be
    applied) / found already applied;
    ``conflicts``: drifted objects (refused unless ``force``; with ``force`` the ones
    applied over are in ``forced``, and ``conflicts`` keeps only those that could not
    be); ``already_applied``: every operation was already applied (nothing written);
    ``verified``: every operation's object has its ``after`` state once done
    (``mismatches`` lists those that do not); ``recovered``: what was done about an
    interrupted earlier import; ``plan``: one line per operation; ``outside``: the data
    sets the basket would touch outside this import's limits (``include``/``exclude``,
    the target volumes), one line each, when that refused it.
    """

    basket: str
    targets: list[str]
    applied: int = 0
    skipped: int = 0
    conflicts: list[str] = field(default_factory=list)
    forced: list[str] = field(default_factory=list)
    outside: list[str] = field(default_factory=list)
    already_applied: bool = False
    verified: bool = False
    mismatches: list[str] = field(default_factory=list)
    dry_run: bool = False
    refused: bool = False
    recovered: str | None = None
    backout: str | None = None
    plan: list[str] = field(default_factory=list)
    volumes: dict[str, int] = field(default_factory=dict)  # volser -> operations applied
    seconds: float = 0.0
    bytes: int = 0

    @property
    def rate(self) -> float:
        """Content bytes written per second."""
        return self.bytes / self.seconds if self.seconds > 0 else 0.0

    def to_json(self) -> dict:
        return {
            "basket": self.basket,
            "targets": list(self.targets),
            "applied": self.applied,
            "skipped": self.skipped,
            "conflicts": list(self.conflicts),
            "forced": list(self.forced),
            "outside": list(self.outside),
            "already_applied": self.already_applied,
            "verified": self.verified,
            "mismatches": list(self.mismatches),
            "dry_run": self.dry_run,
            "refused": self.refused,
            "recovered": self.recovered,
            "backout": self.backout,
            "plan": list(self.plan),
            "volumes": dict(sorted(self.volumes.items())),
            "seconds": round(self.seconds, 6),
            "bytes": self.bytes,
        }


# -- the plan -------------------------------------------------------------------------
@dataclass
class _Step:
    """One operation and what the plan decided about it."""

    op: Operation
    status: str
    found: str | None = None  # the object's state on the target before the import
    message: str = ""  # conflict description
    volser: str | None = None  # the target volume it is applied on
    data: object = None  # decoded payload (records, edits, blocks, members)
    blocks: list | None = None  # PS create/content: the blocks to write
    primary: int = 0  # dataset.create: primary quantity (op's unit)
    dirblks: int = 0  # dataset.create PO: directory blocks
    rewrite: tuple | None = None  # sequential rewrite: (start TTR, blocks, tracks needed)

    @property
    def writes(self) -> bool:
        return self.status in (PENDING, FORCED)


class _States:
    """Object states on the target as the operations before the current one leave
    them: the fingerprint, overlaid with each planned operation's ``after``."""

    def __init__(self, fp: m.Fingerprint):
        self.fp = fp
        self.ds: dict[str, str | None] = {}
        self.attrs: dict[str, str | None] = {}
        self.members: dict[tuple[str, str], str | None] = {}
        self.origin: dict[str, str | None] = {}  # name -> name in the fingerprint

    def _fp_name(self, dsname: str) -> str | None:
        return self.origin.get(dsname, dsname)

    def dataset(self, dsname: str) -> str | None:
        if dsname in self.ds:
            return self.ds[dsname]
        return ops.state_of(self.fp, dsname)

    def attributes(self, dsname: str) -> str | None:
        if dsname in self.attrs:
            return self.attrs[dsname]
        if dsname in self.ds and self.ds[dsname] is None:
            return None
        name = self._fp_name(dsname)
        return None if name is None else ops.state_of(self.fp, name, None, "dataset.attributes")

    def member(self, dsname: str, member: str) -> str | None:
        key = (dsname, member)
        if key in self.members:
            return self.members[key]
        if dsname in self.ds and self.ds[dsname] is None:
            return None
        name = self._fp_name(dsname)
        return None if name is None else ops.state_of(self.fp, name, member)

    def exists(self, dsname: str) -> bool:
        return self.dataset(dsname) is not None

    def after(self, op: Operation) -> None:
        """Record what ``op`` leaves (applied or about to be)."""
        k = op.kind
        if k == "dataset.create":
            self.ds[op.dsname] = op.after
            self.attrs[op.dsname] = _UNKNOWN
            self.origin[op.dsname] = None
        elif k == "dataset.delete":
            self.ds[op.dsname] = None
            self.attrs[op.dsname] = None
        elif k == "dataset.rename":
            self.ds[op.new_name] = op.after
            self.attrs[op.new_name] = self.attributes(op.dsname)
            self.origin[op.new_name] = self._fp_name(op.dsname)
            self.ds[op.dsname] = None
            self.attrs[op.dsname] = None
        elif k in ("dataset.content", "dataset.records"):
            self.ds[op.dsname] = op.after
            self.attrs[op.dsname] = _UNKNOWN
        elif k == "dataset.attributes":
            self.attrs[op.dsname] = op.after
            self.ds[op.dsname] = _UNKNOWN
        elif k == "member.rename":
            self.members[(op.dsname, op.member)] = None
            self.members[(op.dsname, op.new_name)] = op.after
            self.ds[op.dsname] = _UNKNOWN if self.exists(op.dsname) else None
        else:
            self.members[(op.dsname, op.member)] = op.after
            self.ds[op.dsname] = _UNKNOWN if self.exists(op.dsname) else None


def _short(state: str | None) -> str:
    if state is None:
        return _ABSENT
    if state.startswith("blake3:"):
        return state[:19]
    return state


def _conflict(op: Operation, expected: str | None, found: str | None, why: str = "") -> str:
    text = f"{op.target}: expected {_short(expected)}, found {_short(found)} ({op.kind})"
    return f"{text}: {why}" if why else text


def _classify(op: Operation, st: _States) -> tuple[str, str | None, str, bool]:
    """(status, state found, conflict message, can be forced) of ``op``."""
    k = op.kind
    if k in MEMBER_KINDS and not st.exists(op.dsname):
        return CONFLICT, None, _conflict(op, op.before, None, "the data set does not exist"), False
    if k in ("dataset.rename", "member.rename"):
        if k == "dataset.rename":
            old, new = st.dataset(op.dsname), st.dataset(op.new_name)
        else:
            old, new = st.member(op.dsname, op.member), st.member(op.dsname, op.new_name)
        if old is None and new == op.after:
            return APPLIED, old, "", True
        if old == op.before and new is None:
            return PENDING, old, "", True
        if old is None:
            return CONFLICT, old, _conflict(op, op.before, old), False
        if new is not None:
            why = f"the new name {op.new_name} is taken"
            return CONFLICT, old, _conflict(op, op.before, old, why), False
        return CONFLICT, old, _conflict(op, op.before, old), True
    if k == "dataset.attributes":
        cur = st.attributes(op.dsname)
    elif k in MEMBER_KINDS:
        cur = st.member(op.dsname, op.member)
    else:
        cur = st.dataset(op.dsname)
    if cur == op.after:
        return APPLIED, cur, "", True
    if cur == op.before:
        return PENDING, cur, "", True
    if k == "alias.put" and st.member(op.dsname, op.alias_of or "") is None:
        why = f"its member {op.alias_of} does not exist"
        return CONFLICT, cur, _conflict(op, op.before, cur, why), False
    if k == "dataset.create" or k == "dataset.records":
        return CONFLICT, cur, _conflict(op, op.before, cur), False
    if cur is None and k not in ("member.put", "alias.put"):
        return CONFLICT, cur, _conflict(op, op.before, cur), False
    return CONFLICT, cur, _conflict(op, op.before, cur), True


# -- fingerprints of the targets ------------------------------------------------------
def _fingerprint(
    paths: Sequence[str],
    names: Iterable[str] | None,
    since: m.Fingerprint | None = None,
    exclusive: bool = False,
) -> m.Fingerprint:
    """A fingerprint of the data sets ``names`` (all when None) on the volumes ``paths``,
    made by :mod:`ssm.fingerprint`'s own job runner, so every digest is exactly what a
    full ``ssm fingerprint`` computes.  ``since``: an earlier one of the same volumes
    whose unchanged data sets and members are taken over (fingerprint.md ``--since``):
    after an import only what it wrote is read again.  ``exclusive``: this process holds
    every target's writer lock, so no other writer is watched for."""
    from ssm import fingerprint as fpm

    created = _dt.datetime.now(_dt.UTC).replace(microsecond=0)
    return fpm.fingerprint(paths, since=since, created=created, datasets=names, exclusive=exclusive)


# -- payloads and space ---------------------------------------------------------------
def _tracks_for(
    device, sizes: Iterable[tuple[int, int]] | tuple[np.ndarray, np.ndarray], used: int = 0,
    r: int = 0,
) -> int:  # fmt: skip
    """Tracks that records of (key length, data length), written one after another,
    take on ``device`` (its capacity formula), counting the track they start on, which
    already holds ``r`` records using ``used`` bytes.  ``sizes``: pairs, or a tuple of
    key-length and data-length arrays."""
    if isinstance(sizes, tuple):
        kl, dl = sizes
    else:
        pairs = np.array(list(sizes), dtype=np.int64).reshape(-1, 2)
        kl, dl = pairs[:, 0], pairs[:, 1]
    offsets, _recs, _used = device.place(kl, dl, used, r, MAX_REC)
    return 1 + (int(offsets[-1]) if len(offsets) else 0)


def _with_directory(dirblks: int, recs: _Records) -> tuple[np.ndarray, np.ndarray]:
    """Sizes of a new PDS's records: ``dirblks`` directory blocks, their EOF, then
    ``recs``."""
    key_len = np.concatenate([np.full(dirblks, 8), [0], recs.key_len])
    data_len = np.concatenate([np.full(dirblks, 256), [0], recs.data_len])
    return key_len, data_len


def _tracks_after_eof(vol: Volume, info: DatasetInfo, sizes: tuple[np.ndarray, np.ndarray]) -> int:
    """Relative tracks a data set needs when ``sizes`` are appended after its final EOF
    record (DS1LSTAR; DS1TRBAL says how full that track is)."""
    tt, r = info.lstar
    track_len = vol.device.track_len
    used = track_len - info.trbal if 0 <= info.trbal <= track_len else track_len
    if (tt, r) == (0, 0):
        used, r = track_len, MAX_REC  # unknown: start on a fresh track
    return tt + _tracks_for(vol.device, sizes, used, r)


def _units(tracks: int, unit: str, heads: int) -> int:
    return -(-tracks // heads) if unit == "CYL" else tracks


def _tracks_of_units(n: int, unit: str, heads: int) -> int:
    return n * heads if unit == "CYL" else n


def _dir_tracks(device, dirblks: int) -> int:
    return _tracks_for(device, [(8, 256)] * dirblks + [(0, 0)])


def _dcb_of(info: DatasetInfo) -> dict:
    return {
        "dsorg": info.dsorg,
        "recfm": info.recfm,
        "lrecl": info.lrecl,
        "blksize": info.blksize,
        "keylen": info.keylen,
    }


def _is_pds(dcb: dict | None) -> bool:
    return str((dcb or {}).get("dsorg", "PS")).upper().startswith("PO")


def _recfm_raw(dcb: dict) -> int:
    from emulator.volume import recfm_value

    value = dcb["recfm"]
    return recfm_value(value) if isinstance(value, str) else int(value)


def _blocks_payload(vol: Volume, info: DatasetInfo) -> tuple[int, bytes]:
    """(content bytes, ``blocks`` payload) of a sequential data set as it is: a backout
    keeps the blocks (and keys) as they are, with no deblocking and reblocking."""
    blocks = [ops.Block(0, b.key, b.data) for b in io.read_blocks(vol, info)]
    return sum(len(b.key) + len(b.data) for b in blocks), ops.encode_blocks(blocks)


def _blocks_of(dcb: dict, data: Sequence, where: str) -> list[tuple[bytes, bytes]]:
    """The blocks a ``dataset.create``/``dataset.content`` payload writes: a ``blocks``
    payload as it is (keys kept), a ``records`` payload blocked by ``dcb``."""
    if data and isinstance(data[0], ops.Block):
        return [(b.key, b.data) for b in data]
    return _block(dcb, data, where)


def _block(dcb: dict, records: Sequence[bytes], where: str) -> list[tuple[bytes, bytes]]:
    """Records blocked by ``dcb``, each block with a key of binary zeros when keyed."""
    try:
        blocks = rf.block(_recfm_raw(dcb), int(dcb["lrecl"]), int(dcb["blksize"]), records)
    except EmulatorError as exc:
        raise exc.located(where=where) from None
    key = bytes(int(dcb.get("keylen") or 0))
    return [(key, b) for b in blocks]


def _with_ttrs(userdata: bytes, source: bytes, count: int) -> bytes:
    """``userdata`` with the ``count`` TTRs the C byte counts (at 0, 4, 8) taken from
    ``source``: the values that are right on the target."""
    out = bytearray(userdata)
    for i in range(count):
        off = 4 * i
        if off + 3 <= len(out) and off + 3 <= len(source):
            out[off : off + 3] = source[off : off + 3]
    return bytes(out)


def _normal(userdata: bytes, count: int) -> bytes:
    return _with_ttrs(userdata, bytes(len(userdata)), count)


# -- directory edits ------------------------------------------------------------------
class _DirectoryEdit:
    """The directory of one PDS, read once, changed in memory by a run of member
    operations, and written once (``Pds.directory`` / ``Pds.write_directory``): an
    import touching many members of a large PDS parses and rebuilds its directory
    once, not once per operation.  The changes are those of ``Pds.delete``,
    ``Pds.rename`` and ``Pds.alias``, made on the in-memory entries."""

    def __init__(self, vol: Volume, dsname: str, directory: Directory | None = None):
        self.vol = vol
        self.pds = Pds(vol, dsname)
        self.where = f"{vol.volser}: {self.pds.dsname}"
        self.read(directory)

    def read(self, directory: Directory | None = None) -> None:
        """Take ``directory`` (read earlier, still current) or read it."""
        self.directory = directory if directory is not None else self.pds.directory()
        self._entries: dict[str, DirEntry] = {e.name: e for e in self.directory.entries}
        #: Entries added as columns (:meth:`add`), below those of ``_entries``.
        self.bulk: EntryColumns | None = None

    @property
    def entries(self) -> dict[str, DirEntry]:
        """Every entry by name (entries added as columns become objects here)."""
        if self.bulk is not None:
            bulk, self.bulk = self.bulk, None
            later = self._entries
            self._entries = {e.name: e for e in map(bulk.entry, range(len(bulk)))}
            self._entries.update(later)
        return self._entries

    def columns(self) -> EntryColumns:
        """Every entry as columns."""
        cols = EntryColumns.of(list(self._entries.values()))
        return cols if self.bulk is None else EntryColumns.join([self.bulk, cols])

    def add(self, entries: EntryColumns) -> None:
        """Add or replace ``entries`` (thousands of new members: kept as columns)."""
        if self.bulk is not None:
            self.entries  # noqa: B018  (the earlier ones become objects)
        if self._entries:
            added = set(entries.keys().tolist())
            for name in [
                n for n in self._entries if int.from_bytes(name_to_bytes(n), "big") in added
            ]:
                del self._entries[name]
        self.bulk = EntryColumns.join([entries])

    def _find(self, name: str | None) -> DirEntry | None:
        entry = self._entries.get(name) if name is not None else None
        if entry is None and name is not None and self.bulk is not None:
            row = self.bulk.find(name)
            entry = None if row is None else self.bulk.entry(row)
        return entry

    def write(self) -> None:
        if self.bulk is None:
            self.pds.write_directory(list(self._entries.values()), self.directory)
        else:
            self.pds.write_directory(self.columns(), self.directory)

    def get(self, name: str) -> DirEntry:
        entry = self.entries.get(name)
        if entry is None:
            raise NotFoundError(f"member {name} not found", self.vol.path, self.where)
        return entry

    def delete(self, name: str) -> None:
        """An alias removes itself; a main member itself and its aliases (as on MVS)."""
        target = self.entries.get(name)
        if target is None:
            return  # an earlier deletion took it along (a main member's alias)
        gone = {name}
        if not target.alias:
            resolved = resolve_aliases(list(self.entries.values()))
            gone |= {e.name for e in resolved if e.alias and e.alias_of == name}
        for n in gone:
            del self.entries[n]

    def rename(self, old: str, new: str, userdata: bytes | None, ttr_count: int) -> None:
        """Rename, keeping the user data (as STOW) unless the operation carries other."""
        entry = self.get(old)
        if new in self.entries:
            raise ConflictError(f"member {new} already exists", self.vol.path, self.where)
        del self.entries[old]
        entry = replace(entry, name=new, alias_of=None)
        if userdata is not None and _normal(userdata, ttr_count) != _normal(
            entry.userdata, entry.ttr_count
        ):
            entry = _with_userdata(entry, userdata, ttr_count)
        self.entries[new] = entry

    def set_userdata(self, name: str, userdata: bytes, ttr_count: int) -> None:
        self.entries[name] = _with_userdata(self.get(name), userdata, ttr_count)

    def put_alias(self, name: str, target: str, userdata: bytes, ttr_count: int) -> None:
        """Add or re-point an alias: its member's current TTR and counted TTRs."""
        main = self._find(target)
        if main is None:
            raise NotFoundError(
                f"alias {name}: member {target} does not exist", self.vol.path, self.where
            )
        self._entries[name] = DirEntry(
            name,
            main.ttr,
            alias=True,
            ttr_count=ttr_count,
            userdata=_with_ttrs(bytes(userdata), main.userdata, ttr_count),
            alias_of=target,
        )


def _op_where(op: Operation) -> str:
    return f"operation {op.seq} ({op.kind} {op.target})"


def _with_userdata(entry: DirEntry, userdata: bytes, ttr_count: int) -> DirEntry:
    """``entry`` with new user data whose counted TTRs keep the entry's values."""
    return replace(
        entry, userdata=_with_ttrs(bytes(userdata), entry.userdata, ttr_count), ttr_count=ttr_count
    )


# -- the import -----------------------------------------------------------------------
class _Run:
    """One import (or one roll-back) of one basket on an open target system."""

    def __init__(
        self,
        basket: Basket,
        system: api.System,
        paths: list[str],
        force: bool,
        progress: Callable[[ImportProgress], None] | None,
        t0: float,
    ):
        self.basket = basket
        self.system = system
        self.paths = paths
        self.force = force
        self.progress = progress
        self.t0 = t0
        self.steps: list[_Step] = []
        self.payloads: dict[int, object] = {}
        self.pds_payloads: set[int] = set()  # payloads of new PDSes (members payloads)
        #: Two buffers as large as the largest of those, for :class:`_Inflater`.
        self.buffers: list[np.ndarray] = [np.empty(0, np.uint8)] * 2
        self.warming: threading.Thread | None = None  # touching the buffers' pages
        #: Hands out members payloads while they are loaded (:func:`_apply_all`).
        self.inflater: _Inflater | None = None
        self.fp: m.Fingerprint | None = None
        #: (volser, PDS) -> its directory on the target before the import (read once)
        #: and the data set's DSCB fields when it was read
        self.directories: dict[tuple[str, str], Directory] = {}
        self.directory_infos: dict[tuple[str, str], DatasetInfo] = {}
        self.rebuild: dict[tuple[str, str], int] = {}  # (volser, PDS) -> directory blocks

    # -- helpers ----------------------------------------------------------------
    def report(self, phase: str, done: int, total: int, volser: str = "", message: str = ""):
        if self.progress is not None:
            elapsed = time.perf_counter() - self.t0
            self.progress(ImportProgress(phase, done, total, volser, elapsed, message))

    def volume(self, volser: str) -> Volume:
        return self.system.volume(volser)

    def decode(self) -> None:
        """Decode every payload once (a damaged one stops the import here).

        New members' bytes are not kept: only their block columns, which is what
        planning needs; the load inflates the payload (:class:`_PayloadBytes`).  Of a
        ``P2`` members payload only the head is inflated here (basket.md "Payloads"); a
        ``P1`` one is inflated whole, into an :class:`_Inflater`'s buffer: first
        touches of memory are what a fresh process pays most for (docs/import.md
        "Throughput"), and holding every payload, or taking new memory for each, made
        an import touch as much new memory as it had member data."""
        self.pds_payloads = {
            op.payload
            for op in self.basket.operations
            if op.payload is not None and op.kind == "dataset.create" and _is_pds(op.dcb)
        }
        order = [op.payload for op in self.basket.operations if op.payload in self.pds_payloads]
        size = max((self.basket.payload_info(i).raw_len for i in order), default=0)
        self.buffers = [scratch(size), scratch(size)]
        self.warming = _touch_pages(self.buffers)
        heads = {}  # members payload -> its P2 head (entries and block headers)
        for i in dict.fromkeys(order):
            head = self.basket.payload_head(i, ops.MEMBERS_HEAD_SIZE, ops.members_head_size)
            if ops.members_head_size(head) is not None:
                heads[i] = head
        whole = [i for i in order if i not in heads]
        with _Inflater(self.basket, whole, self.buffers, False, self.warming) as inflater:
            for op in self.basket.operations:
                if op.payload is None or op.payload in self.payloads:
                    continue
                where = f"payload {op.payload} of operation {op.seq} ({op.target})"
                length = None  # of the whole payload, when raw is only its head
                try:
                    if op.payload in heads:
                        raw = heads[op.payload]
                        length = self.basket.payload_info(op.payload).raw_len
                    elif op.payload in self.pds_payloads:
                        raw = inflater.take(op.payload)
                        if raw[:2].tobytes() != b"P1":
                            raw = raw.tobytes()  # not members: a decoder slicing bytes
                    else:
                        raw = self.basket.payload(op.payload)
                    decoded = ops.decode_payload(op.kind, raw, where, length)
                except FormatError as exc:
                    raise exc.located(self.basket.path) from None
                if isinstance(decoded, ops.MemberList):
                    decoded.retable(
                        decoded.table._replace(payload=None, raw=_PayloadBytes(self, op.payload))
                    )
                self.payloads[op.payload] = decoded

    def load_order(self, todo: list[_Step]) -> list[int]:
        """The members payloads of ``todo`` in the order :func:`_apply_all` loads them."""
        return self._by_volume(
            (s.op.payload, s.volser) for s in todo if s.op.kind == "dataset.create"
        )

    def likely_load_order(self) -> list[int]:
        """:meth:`load_order` before placement, which puts a new data set on the volume
        of its basket's volser when that has room (:meth:`choose_volume`): the same
        order unless a volume is short of room."""
        return self._by_volume(
            (op.payload, op.volser) for op in self.basket.operations if op.kind == "dataset.create"
        )

    def _by_volume(self, placed: Iterable[tuple[int | None, str | None]]) -> list[int]:
        """Members payloads of (payload, volser) pairs in target volume order."""
        by_vol: dict[str | None, list[int]] = {}
        for payload, volser in placed:
            if payload in self.pds_payloads:
                by_vol.setdefault(volser, []).append(payload)
        return [i for vol in self.system.volumes for i in by_vol.get(vol.volser, [])]

    def touched(self) -> set[str]:
        names = set()
        for op in self.basket.operations:
            names.add(op.dsname)
            if op.kind == "dataset.rename" and op.new_name:
                names.add(op.new_name)
        return names

    # -- status -----------------------------------------------------------------
    def classify(self) -> list[str]:
        """Decide every operation's status; returns the conflicts that refuse."""
        locked = all(vol.writable for vol in self.system.volumes)  # not a dry run
        self.fp = _fingerprint(self.paths, self.touched(), exclusive=locked)
        st = _States(self.fp)
        refusals = []
        for op in self.basket.operations:
            status, found, message, forceable = _classify(op, st)
            if status == CONFLICT and self.force and forceable:
                status = FORCED
            step = _Step(op, status, found, message)
            if op.payload is not None:
                step.data = self.payloads.get(op.payload)
            self.steps.append(step)
            if status == CONFLICT:
                refusals.append(message)
            else:
                st.after(op)
        return refusals

    # -- placement and space ----------------------------------------------------
    def locate(self, dsname: str) -> tuple[Volume, DatasetInfo]:
        return self.system.locate(dsname)

    def place(self) -> None:
        """Choose the volume of every step and check room (docs/import.md "Space")."""
        where: dict[str, str | None] = {}  # data set -> volser, as the steps leave it
        need: dict[str, int] = {vol.volser: 0 for vol in self.system.volumes}
        free = {
            vol.volser: sum(e - b + 1 for b, e in vol.free_extents()) for vol in self.system.volumes
        }

        def volser_of(dsname: str) -> str | None:
            if dsname in where:
                return where[dsname]
            try:
                vol, _ = self.locate(dsname)
            except NotFoundError:
                return None
            return vol.volser

        dir_entries: dict[str, dict[str, DirEntry]] = {}
        dir_size: dict[str, int] = {}
        pds_new: dict[tuple[str, str], list] = {}
        rewritten: set[str] = set()
        for step in self.steps:
            if not step.writes:
                continue
            op = step.op
            k = op.kind
            if k == "dataset.create":
                step.volser = self.choose_volume(step, need, free)
                where[op.dsname] = step.volser
                continue
            step.volser = volser_of(op.dsname)
            if step.volser is None:
                raise NotFoundError(f"data set {op.dsname} is on no target volume", where=op.target)
            vol = self.volume(step.volser)
            if k == "dataset.delete":
                where[op.dsname] = None
                need[step.volser] -= vol.dataset(op.dsname).tracks  # scratched first
            elif k == "dataset.rename":
                where[op.new_name] = step.volser
                where[op.dsname] = None
            elif k in ("dataset.content", "dataset.attributes", "dataset.records"):
                self.size_sequential(step, vol, need)
                if op.dsname in rewritten:
                    step.rewrite = None  # planned on what an earlier step changes: redo then
                rewritten.add(op.dsname)
            elif k in MEMBER_KINDS:
                key = op.dsname
                if key not in dir_entries:
                    before = self.directory(vol, key)
                    if before is None:
                        continue  # created by this basket: its members came with it
                    dir_entries[key] = dict(before)
                    dir_size[key] = self.directory_of(vol, key).blocks
                self.plan_directory(step, dir_entries[key])
                if k == "member.put":
                    pds_new.setdefault((step.volser, key), []).append(step)
        for dsname, entries in dir_entries.items():
            needed = blocks_needed(list(entries.values()))
            if needed > dir_size[dsname]:
                self.plan_rebuild(
                    self.volume(volser_of(dsname)), dsname, needed, dir_size[dsname], need
                )
        for steps in pds_new.values():
            self.size_pds(steps, need)
        for volser, tracks in need.items():
            if tracks > free[volser]:
                raise SpaceError(
                    f"the basket needs {tracks} more tracks on this volume, {free[volser]} are "
                    "free (refused before writing)",
                    self.volume(volser).path,
                    volser,
                )

    def directory(self, vol: Volume, dsname: str) -> dict[str, DirEntry] | None:
        """The directory entries of a PDS on the target as it is before the import
        (read once; None when the data set is not there)."""
        d = self.directory_of(vol, dsname)
        return None if d is None else {e.name: e for e in d.entries}

    def directory_of(self, vol: Volume, dsname: str) -> Directory | None:
        key = (vol.volser, dsname)
        if key not in self.directories:
            try:
                pds = Pds(vol, dsname)
                self.directory_infos[key] = pds.info
                self.directories[key] = pds.directory()
            except NotFoundError:
                return None
        return self.directories[key]

    def current_directory(self, vol: Volume, dsname: str) -> Directory | None:
        """The directory read while planning, if the data set is still as it was then
        (same DSCB fields: no rebuild, no earlier change): applying reuses it."""
        key = (vol.volser, dsname)
        d = self.directories.get(key)
        if d is None or vol.dataset(dsname) != self.directory_infos.get(key):
            return None
        return d

    def plan_rebuild(self, vol: Volume, dsname: str, needed: int, have: int, need: dict) -> None:
        """A directory too small for the basket's members: the PDS is copied, as IEBCOPY
        would, to a new one with a quarter more directory blocks than needed, which then
        takes its name.  Refused when an alias names no member of the PDS (a copy could
        not keep it)."""
        where = f"{vol.volser}: {dsname}"
        entries = self.directory(vol, dsname) or {}
        mains = {n for n, e in entries.items() if not e.alias}
        lost = [n for n, e in entries.items() if e.alias and e.alias_of not in mains]
        if lost:
            raise SpaceError(
                f"directory full: {have} blocks, the basket's members need {needed}, and the "
                f"PDS cannot be copied to a bigger one: alias {lost[0]} names no member "
                "(refused before writing)",
                vol.path,
                where,
            )
        info = vol.dataset(dsname)
        dirblks = needed + max(1, needed // 4)
        self.rebuild[(vol.volser, dsname)] = dirblks
        # the copy is made before the old one is scratched: at most its used tracks
        need[vol.volser] += info.used_tracks + _dir_tracks(vol.device, dirblks)

    def choose_volume(self, step: _Step, need: dict, free: dict) -> str:
        """Size a new data set and pick its volume: the basket's volser if that target
        has room, else the target with the most free tracks."""
        op = step.op
        dcb, space = op.dcb or {}, op.space or {}
        unit = str(space.get("unit", "TRK")).upper()
        if unit not in ("TRK", "CYL"):
            raise UnsupportedError(
                f"space unit {unit}: new data sets are allocated in TRK or CYL", where=op.target
            )
        dsorg = str(dcb.get("dsorg", "PS")).upper()
        if not (dsorg.startswith("PS") or dsorg.startswith("PO")):
            raise UnsupportedError(f"DSORG {dsorg}: only PS and PO are created", where=op.target)
        candidates = sorted(
            self.system.volumes,
            key=lambda v: (v.volser != op.volser, -(free[v.volser] - need[v.volser])),
        )
        for vol in candidates:
            tracks = self.size_create(step, vol)
            if need[vol.volser] + tracks <= free[vol.volser]:
                need[vol.volser] += tracks
                return vol.volser
        raise SpaceError(
            f"no target volume has room for {op.dsname} "
            f"({self.size_create(step, candidates[0])} tracks; refused before writing)",
            where=op.target,
        )

    def size_create(self, step: _Step, vol: Volume) -> int:
        """Tracks a new data set takes on ``vol``; sets the step's primary and dirblks."""
        op = step.op
        dcb, space = op.dcb or {}, op.space or {}
        unit = str(space.get("unit", "TRK")).upper()
        device = vol.device
        if _is_pds(dcb):
            members, aliases = _new_pds_members(step.data or [])
            needed = EntryColumns.join([members.entries, _alias_columns(aliases)]).blocks_needed()
            recs = members.records(with_bytes=False)
            dirblks = max(int(space.get("dirblks") or 0), needed, 1)
            tracks = _tracks_for(device, _with_directory(dirblks, recs))
            step.dirblks = dirblks
        else:
            if step.blocks is None:
                step.blocks = _blocks_of(dcb, step.data or [], op.target)
            tracks = _tracks_for(device, [(len(k), len(d)) for k, d in step.blocks] + [(0, 0)])
        primary = max(int(space.get("primary") or 1), _units(tracks, unit, vol.heads), 1)
        step.primary = primary
        return _tracks_of_units(primary, unit, vol.heads)

    def size_sequential(self, step: _Step, vol: Volume, need: dict) -> None:
        """Growth of a sequential data set rewritten by content, records or attributes."""
        op = step.op
        info = vol.dataset(op.dsname)
        dcb = op.dcb or _dcb_of(info)
        if op.kind == "dataset.attributes":
            space = op.space or {}
            if space.get("unit") and str(space["unit"]).upper() != info.space[0]:
                raise UnsupportedError(
                    f"changing the space unit from {info.space[0]} to {space['unit']}",
                    vol.path,
                    f"{vol.volser}: {op.dsname}",
                )
            if str(dcb.get("dsorg", info.dsorg)) != info.dsorg:
                raise UnsupportedError(
                    f"changing DSORG {info.dsorg} to {dcb.get('dsorg')}",
                    vol.path,
                    f"{vol.volser}: {op.dsname}",
                )
        if info.is_pds:
            if op.kind != "dataset.attributes":
                raise UnsupportedError(
                    f"{op.kind} on a partitioned data set", vol.path, f"{vol.volser}: {op.dsname}"
                )
            return
        step.rewrite = self.plan_rewrite(vol, step)
        if step.rewrite is None:
            return
        tracks = step.rewrite[2]
        grow = max(0, tracks - info.tracks)
        if grow:
            if len(info.extents) >= MAX_EXTENTS:
                raise SpaceError(
                    f"needs {grow} more tracks and has {MAX_EXTENTS} extents already "
                    "(refused before writing)",
                    vol.path,
                    f"{vol.volser}: {op.dsname}",
                )
            need[vol.volser] += grow

    def plan_directory(self, step: _Step, entries: dict[str, DirEntry]) -> None:
        """Follow a member operation in a copy of the directory (for its room)."""
        op = step.op
        k = op.kind
        if k in ("member.delete", "alias.delete"):
            gone = entries.pop(op.member, None)
            if gone is not None and not gone.alias:
                for name in [n for n, e in entries.items() if e.alias and e.alias_of == op.member]:
                    entries.pop(name)
        elif k == "member.rename":
            old = entries.pop(op.member, None)
            if old is not None:
                ud = old.userdata if op.userdata is None else op.userdata
                entries[op.new_name] = DirEntry(
                    op.new_name,
                    old.ttr,
                    old.alias,
                    op.ttr_count if op.userdata is not None else old.ttr_count,
                    ud,
                )
        elif k in ("member.put", "member.userdata", "alias.put"):
            ud = bytes(op.userdata or b"")
            entries[op.member] = DirEntry(op.member, (0, 0), k == "alias.put", op.ttr_count, ud)

    def size_pds(self, steps: list[_Step], need: dict) -> None:
        """Room for new member blocks after DS1LSTAR (the growth itself is computed
        again, exactly, when applying)."""
        vol = self.volume(steps[0].volser)
        info = vol.dataset(steps[0].op.dsname)
        recs = _records_of([ops.run_of(step.data or []) for step in steps], False)
        grow = max(0, _tracks_after_eof(vol, info, (recs.key_len, recs.data_len)) - info.tracks)
        if grow and len(info.extents) < MAX_EXTENTS:
            need[vol.volser] += grow

    # -- backout --------------------------------------------------------------------
    def build_backout(self) -> tuple[list[Operation], list[bytes]]:
        """The inverse operations, with the targets' data as it is now."""
        inv: list[tuple[tuple, Operation, bytes | None]] = []
        by_name: dict[tuple[str, str], bool] = {}
        for step in self.steps:
            if step.writes and step.op.kind == "alias.delete":
                by_name[(step.op.dsname, step.op.member)] = True
        for step in self.steps:
            if not step.writes:
                continue
            for order, op, payload in self.inverse(step, by_name):
                inv.append((order, op, payload))
        inv.sort(key=lambda t: t[0])
        operations, payloads = [], []
        for seq, (_order, op, payload) in enumerate(inv):
            op.seq = seq
            if payload is not None:
                op.payload = len(payloads)
                payloads.append(payload)
            operations.append(op)
        return operations, payloads

    def inverse(
        self, step: _Step, aliases_deleted: dict
    ) -> list[tuple[tuple, Operation, bytes | None]]:
        op = step.op
        k = op.kind
        vol = self.volume(step.volser)
        out: list[tuple[tuple, Operation, bytes | None]] = []

        def inv_op(kind: str, **kw) -> Operation:
            return Operation(seq=0, kind=kind, volser=vol.volser, **kw)

        def undo_of(kind: str, dsname: str, info, **kw) -> Operation:
            """An inverse that puts back the data set's DCB, space and digests."""
            dcb, space = _dcb_of(info), self.space_of(vol, info)
            return inv_op(
                kind, dsname=dsname, dcb=dcb, space=space, before=op.after, after=step.found, **kw
            )

        if k == "dataset.create":
            out.append(
                ((0, op.dsname), inv_op("dataset.delete", dsname=op.dsname, before=op.after), None)
            )
        elif k == "dataset.delete":
            create, payload = self.snapshot_dataset(vol, op.dsname, step.found)
            out.append(((2, op.dsname), create, payload))
        elif k == "dataset.rename":
            info = vol.dataset(op.dsname)
            out.append(
                (
                    (1, op.new_name),
                    undo_of("dataset.rename", op.new_name, info, new_name=op.dsname),
                    None,
                )
            )
        elif k == "dataset.content":
            info = vol.dataset(op.dsname)
            size, payload = _blocks_payload(vol, info)
            out.append(
                (
                    (3, op.dsname),
                    undo_of("dataset.content", op.dsname, info, size=size),
                    payload,
                )
            )
        elif k == "dataset.records":
            info = vol.dataset(op.dsname)
            edits: list[ops.RecordEdit] = step.data or []
            old = self.records_in(vol, info, [(e.start, e.stop) for e in edits])
            inverse, shift = [], 0
            for e in edits:
                start = e.start + shift
                inverse.append(
                    ops.RecordEdit(start, start + len(e.records), old[(e.start, e.stop)])
                )
                shift += len(e.records) - (e.stop - e.start)
            span = (inverse[0].start, inverse[-1].stop) if inverse else (0, 0)
            out.append(
                (
                    (3, op.dsname),
                    undo_of(
                        "dataset.records",
                        op.dsname,
                        info,
                        records=span,
                        new_records=op.records,
                        size=sum(len(r) for e in inverse for r in e.records),
                    ),
                    ops.encode_edits(inverse),
                )
            )
        elif k == "dataset.attributes":
            info = vol.dataset(op.dsname)
            out.append(
                (
                    (3, op.dsname),
                    undo_of("dataset.attributes", op.dsname, info),
                    None,
                )
            )
        else:
            out.extend(self.inverse_member(step, vol, aliases_deleted))
        return out

    def space_of(self, vol: Volume, info: DatasetInfo) -> dict:
        unit, primary, secondary = info.space
        return {
            "unit": unit,
            "primary": primary,
            "secondary": secondary,
            "dirblks": self.directory_of(vol, info.dsname).blocks if info.is_pds else 0,
        }

    def inverse_member(self, step: _Step, vol: Volume, aliases_deleted: dict):
        op = step.op
        k = op.kind
        pds = Pds(vol, op.dsname)
        entries = self.directory(vol, op.dsname) or {}
        # the export's order (basket.md "Operations"): aliases removed first, put last
        group = {"alias.delete": 0, "member.delete": 1, "member.rename": 2, "member.put": 3,
                 "member.userdata": 4, "alias.put": 5}  # fmt: skip

        def item(kind: str, member: str, **kw):
            return (
                (4, op.dsname, group[kind], member),
                Operation(
                    seq=0, kind=kind, volser=vol.volser, dsname=op.dsname, member=member, **kw
                ),
            )

        def restore(entry: DirEntry, before: str | None, after: str | None):
            """The operation that puts ``entry`` back as it is now."""
            if entry.alias and entry.alias_of and entry.alias_of in entries:
                order, o = item(
                    "alias.put",
                    entry.name,
                    before=before,
                    after=after,
                    alias_of=entry.alias_of,
                    userdata=entry.userdata,
                    ttr_count=entry.ttr_count,
                )
                return order, o, None
            blocks = [ops.Block((b.tt << 8) | b.r, b.key, b.data) for b in pds.blocks_of(entry)]
            order, o = item(
                "member.put",
                entry.name,
                before=before,
                after=after,
                userdata=entry.userdata,
                ttr_count=entry.ttr_count,
                size=sum(len(b.data) for b in blocks),
            )
            return order, o, ops.encode_blocks(blocks)

        cur = entries.get(op.member)
        out = []
        if k in ("member.put", "alias.put"):
            if cur is None:
                kind = "alias.delete" if k == "alias.put" else "member.delete"
                order, o = item(kind, op.member, before=op.after)
                out.append((order, o, None))
            else:
                out.append(restore(cur, op.after, step.found))
        elif k in ("member.delete", "alias.delete"):
            if cur is not None:
                out.append(restore(cur, None, step.found))
                if not cur.alias:
                    # its aliases go with it (Pds.delete, as on MVS): put back those the
                    # basket does not delete itself
                    for e in entries.values():
                        if (
                            e.alias
                            and e.alias_of == cur.name
                            and (op.dsname, e.name) not in aliases_deleted
                        ):
                            state = ops.state_of(self.fp, op.dsname, e.name)
                            out.append(restore(e, None, state))
        elif k == "member.rename":
            order, o = item(
                "member.rename",
                op.new_name,
                new_name=op.member,
                before=op.after,
                after=step.found,
                userdata=cur.userdata if cur is not None else None,
                ttr_count=cur.ttr_count if cur is not None else 0,
            )
            out.append((order, o, None))
        elif k == "member.userdata" and cur is not None:
            order, o = item(
                "member.userdata",
                op.member,
                before=op.after,
                after=step.found,
                userdata=cur.userdata,
                ttr_count=cur.ttr_count,
            )
            out.append((order, o, None))
        return out

    def snapshot_dataset(self, vol: Volume, dsname: str, state: str | None):
        """A ``dataset.create`` that makes the data set again as it is now."""
        info = vol.dataset(dsname)
        space = self.space_of(vol, info)
        create = Operation(
            seq=0,
            kind="dataset.create",
            volser=vol.volser,
            dsname=dsname,
            dcb=_dcb_of(info),
            space=space,
            before=None,
            after=state,
        )
        if not info.is_pds:
            create.size, payload = _blocks_payload(vol, info)
            return create, payload
        pds = Pds(vol, dsname)
        entries = self.directory_of(vol, dsname).entries
        mains = {e.name for e in entries if not e.alias}
        members = []
        for e in sorted(entries, key=lambda e: e.name_bytes):
            if e.alias:
                if e.alias_of not in mains:
                    continue  # an alias of no member here cannot be made again
                members.append(ops.MemberImage(e.name, True, e.ttr_count, e.userdata, e.alias_of))
                continue
            blocks = [ops.Block((b.tt << 8) | b.r, b.key, b.data) for b in pds.blocks_of(e)]
            create.size += sum(len(b.data) for b in blocks)
            members.append(ops.MemberImage(e.name, False, e.ttr_count, e.userdata, None, blocks))
        return create, ops.encode_members(members)

    # -- applying -----------------------------------------------------------------
    def apply_volume(self, vol: Volume, steps: list[_Step]) -> int:
        """Every step of one volume in one image transaction; returns bytes written.
        The member operations of one PDS (the manifest keeps them together) share one
        in-memory directory, written once."""
        written = 0
        with vol.transaction():
            for (volser, dsname), dirblks in sorted(self.rebuild.items()):
                if volser == vol.volser:
                    _rebuild_pds(vol, dsname, dirblks)
            i = 0
            while i < len(steps):
                op = steps[i].op
                if op.is_member:
                    j = i + 1
                    while (
                        j < len(steps) and steps[j].op.is_member and steps[j].op.dsname == op.dsname
                    ):
                        j += 1
                    written += self.apply_members(vol, steps[i:j])
                    i = j
                    continue
                try:
                    written += self.apply_one(vol, steps[i])
                except EmulatorError as exc:
                    raise exc.located(vol.path, _op_where(op)) from None
                i += 1
        return written

    def apply_one(self, vol: Volume, step: _Step) -> int:
        op = step.op
        k = op.kind
        if k == "dataset.create":
            return self.create(vol, step)
        if k == "dataset.delete":
            vol.scratch(op.dsname)
            return 0
        if k == "dataset.rename":
            vol.rename(op.dsname, op.new_name)
            if op.dcb:
                _set_dcb(vol, op.new_name, op.dcb)
            _set_secondary(vol, op.new_name, op.space)
            return 0
        if k in ("dataset.content", "dataset.records", "dataset.attributes"):
            if vol.dataset(op.dsname).is_pds:
                _set_dcb(vol, op.dsname, op.dcb or {})
                _set_secondary(vol, op.dsname, op.space)
                return 0
            return self.rewrite(vol, step)
        raise UnsupportedError(f"operation kind {k}", vol.path, op.target)  # pragma: no cover

    def apply_members(self, vol: Volume, steps: list[_Step]) -> int:
        """The member operations of one PDS, in manifest order, on one in-memory
        directory; consecutive puts are loaded in one pass (:func:`_load_members`)."""
        dsname = steps[0].op.dsname
        edit = _DirectoryEdit(vol, dsname, self.current_directory(vol, dsname))
        written = 0
        i = 0
        while i < len(steps):
            op = steps[i].op
            k = op.kind
            try:
                if k == "member.put":
                    j = i + 1
                    while j < len(steps) and steps[j].op.kind == "member.put":
                        j += 1
                    puts = [s.op for s in steps[i:j]]
                    members = _Members.of(
                        [op.member for op in puts],
                        [s.data or [] for s in steps[i:j]],
                        [op.userdata for op in puts],
                        [op.ttr_count for op in puts],
                    )
                    written += _load_members(edit, members, fit=lambda n: self.fit(vol, dsname, n))
                    i = j
                    continue
                if k in ("member.delete", "alias.delete"):
                    edit.delete(op.member)
                elif k == "member.rename":
                    new = validate_name(op.new_name or "", op.target)
                    edit.rename(op.member, new, op.userdata, op.ttr_count)
                elif k == "member.userdata":
                    edit.set_userdata(op.member, op.userdata or b"", op.ttr_count)
                elif k == "alias.put":
                    edit.put_alias(op.member, op.alias_of, op.userdata or b"", op.ttr_count)
                else:  # pragma: no cover
                    raise UnsupportedError(f"operation kind {k}", vol.path, op.target)
            except EmulatorError as exc:
                raise exc.located(vol.path, _op_where(op)) from None
            i += 1
        try:
            edit.write()
        except EmulatorError as exc:
            raise exc.located(vol.path, edit.where) from None
        self.directories.pop((vol.volser, dsname), None)  # no longer the one read before
        return written

    def fit(self, vol: Volume, dsname: str, tracks: int) -> DatasetInfo:
        """Make the data set at least ``tracks`` tracks big, in one new extent (a
        write path would add secondary extents one at a time, and may run out of the
        16 extents a data set can have)."""
        info = vol.dataset(dsname)
        if tracks <= info.tracks:
            return info
        if len(info.extents) >= MAX_EXTENTS:
            raise SpaceError(
                f"needs {tracks - info.tracks} more tracks and has {MAX_EXTENTS} extents",
                vol.path,
                f"{vol.volser}: {dsname}",
            )
        return vol.extend(dsname, tracks - info.tracks)

    def create(self, vol: Volume, step: _Step) -> int:
        op = step.op
        dcb, space = op.dcb or {}, op.space or {}
        unit = str(space.get("unit", "TRK")).upper()
        po = _is_pds(dcb)
        vol.allocate(
            op.dsname,
            dsorg=str(dcb.get("dsorg", "PS")),
            recfm=dcb.get("recfm", "FB"),
            lrecl=int(dcb.get("lrecl") or 0),
            blksize=int(dcb.get("blksize") or 0) or None,
            keylen=int(dcb.get("keylen") or 0),
            space=(
                unit,
                step.primary or int(space.get("primary") or 1),
                int(space.get("secondary") or 0),
            ),
            dirblks=step.dirblks if po else 0,
        )
        if not po:
            io.write_blocks(vol, vol.dataset(op.dsname), step.blocks or [])
            return sum(len(d) for _, d in step.blocks or [])
        members, aliases = _new_pds_members(step.data or [])
        edit = _DirectoryEdit(vol, op.dsname)
        written = _load_members(edit, members, aliases, fit=lambda n: self.fit(vol, op.dsname, n))
        edit.write()
        return written

    def plan_rewrite(self, vol: Volume, step: _Step) -> tuple | None:
        """How a sequential data set's content, records or attributes operation is
        written: ``(start TTR, blocks from there, relative tracks needed)``, exactly
        (the space plan adds it up), or None when only DSCB fields change.

        Record edits are written from the block that holds the first edited record:
        that block is found through the target fingerprint's record groups (each knows
        the block its first record is in) without reading what comes before, or by
        reading from the start for a data set without groups; the records before that
        block stay where they are (docs/import.md "Applying each kind")."""
        op = step.op
        info = vol.dataset(op.dsname)
        dcb = op.dcb or _dcb_of(info)
        recfm, lrecl = info.recfm_raw, info.lrecl
        if op.kind == "dataset.content":
            return self.whole(vol, _blocks_of(dcb, step.data or [], op.target))
        if op.kind == "dataset.attributes":
            if not any(
                str(dcb.get(k)) != str(_dcb_of(info)[k])
                for k in ("recfm", "lrecl", "blksize", "keylen")
            ):
                return None
            return self.whole(vol, _block(dcb, io.read_records(vol, info), op.target))
        edits: list[ops.RecordEdit] = step.data or []
        if not edits:
            return None
        if int(dcb.get("blksize") or info.blksize) != info.blksize:
            records = ops.splice(io.read_records(vol, info), edits)
            return self.whole(vol, _block(dcb, records, op.target))
        first = edits[0].start
        at, count, keep = self.seek(vol, info, first)
        where = f"{vol.volser} {op.dsname}"
        start, k0, last = None, count, None
        head: list[tuple[bytes, bytes]] = []
        tail: list[bytes] = []
        if rf.is_spanned(recfm):
            # A spanned record may run over many blocks: the blocks from the group's
            # block on are deblocked together; the segments of that block before the
            # group's first record stay as they are, in a block of their own.
            datas = []
            for blk in io.read_blocks(vol, info, start=at):
                data = blk.data
                if start is None:
                    start = (blk.tt, blk.r)
                    kept, data = ops.split_block(recfm, data, keep, where)
                    if kept:
                        head.append((b"", kept))
                datas.append(data)
            tail = rf.deblock(recfm, lrecl, [d for d in datas if d], where)
            count += len(tail)
        else:
            for blk in io.read_blocks(vol, info, start=at):
                recs = rf.deblock(recfm, lrecl, [blk.data])
                if start is None and count + len(recs) <= first:
                    count += len(recs)  # the whole block comes before the first edit
                    last = blk
                    continue
                if start is None:
                    start, k0 = (blk.tt, blk.r), count
                tail.extend(recs)
                count += len(recs)
        if start is None:  # the edits begin after the last record: append
            if first > count:
                raise FormatError(
                    f"record edit at {first} is past the {count} records", vol.path, op.target
                )
            k0 = count
            start = (last.tt, last.r + 1) if last is not None else at
            if start[1] > MAX_REC:
                start = (start[0] + 1, 1)
        blocks = head + _block(dcb, ops.splice(tail, edits, offset=k0), op.target)
        tt, r = start
        used = 0
        if r > 1:
            from emulator.track import parse_track

            for rec in parse_track(vol.read_track(vol.trk_of(info, tt))):
                if 0 < rec.rec < r:
                    used = vol.device.fits(used, len(rec.key), len(rec.data)) or used
        sizes = [(len(k), len(d)) for k, d in blocks] + [(0, 0)]
        return start, blocks, tt + _tracks_for(vol.device, sizes, used, r - 1)

    def whole(self, vol: Volume, blocks: list[tuple[bytes, bytes]]) -> tuple:
        sizes = [(len(k), len(d)) for k, d in blocks] + [(0, 0)]
        return (0, 1), blocks, _tracks_for(vol.device, sizes)

    def seek(self, vol: Volume, info: DatasetInfo, first: int) -> tuple[tuple[int, int], int, int]:
        """Where to rewrite a sequential data set from for an edit at record ``first``,
        from the record groups of the target fingerprint: ``(TTR of a block at or
        before the one holding record first, index of the first record rewritten from
        there, stream bytes at the start of that block to keep as they are)``.  Spanned
        records keep the segments before the group's first record (they may belong to
        a record begun blocks earlier); other formats start at the block's first
        record.  ``((0, 1), 0, 0)`` reads from the start."""
        ds = self.fp.find(info.dsname, vol.volser) if self.fp is not None else None
        if ds is None or not ds.gcount or info.keylen:
            return (0, 1), 0, 0
        rows = ds.group_rows
        i = int(np.searchsorted(rows["first"], first, side="right")) - 1
        if i < 0:
            return (0, 1), 0, 0
        g = rows[i]
        ttr, skip = int(g["ttr"]), int(g["skip"])
        start = (ttr >> 8, ttr & 0xFF)
        if rf.is_spanned(info.recfm_raw):
            return start, int(g["first"]), skip
        before = 0
        if skip:  # records of that block before the group's first one (stream bytes)
            blk = next(io.read_blocks(vol, info, start=start), None)
            if blk is None:
                return (0, 1), 0, 0
            variable = not rf.is_fixed(info.recfm_raw)
            pos = 0
            for rec in rf.deblock(info.recfm_raw, info.lrecl, [blk.data]):
                if pos >= skip:
                    break
                pos += len(rec) + (4 if variable else 0)
                before += 1
            if pos != skip:
                return (0, 1), 0, 0  # the groups do not fit this data set: read from the start
        return start, int(g["first"]) - before, 0

    def records_in(self, vol: Volume, info: DatasetInfo, spans: list[tuple[int, int]]) -> dict:
        """{(start, stop): records} of a sequential data set, read once from the block
        :meth:`seek` finds for the first span up to the last span."""
        out: dict[tuple[int, int], list[bytes]] = {s: [] for s in spans}
        wanted = [s for s in spans if s[1] > s[0]]
        if not wanted:
            return out
        first, end = min(s[0] for s in wanted), max(s[1] for s in wanted)
        recfm, lrecl = info.recfm_raw, info.lrecl
        where = f"{vol.volser} {info.dsname}"
        at, offset, keep = self.seek(vol, info, first)
        records: list[bytes] = []
        if rf.is_spanned(recfm):
            datas = [blk.data for blk in io.read_blocks(vol, info, start=at)]
            if datas:
                datas[0] = ops.split_block(recfm, datas[0], keep, where)[1]
            records = rf.deblock(recfm, lrecl, [d for d in datas if d], where)
        else:
            for blk in io.read_blocks(vol, info, start=at):
                records.extend(rf.deblock(recfm, lrecl, [blk.data], where))
                if offset + len(records) >= end:
                    break
        for s in wanted:
            out[s] = records[s[0] - offset : s[1] - offset]
        return out

    def rewrite(self, vol: Volume, step: _Step) -> int:
        """Apply a content, records or attributes operation of a sequential data set."""
        op = step.op
        plan = step.rewrite if step.rewrite is not None else self.plan_rewrite(vol, step)
        if op.dcb:
            _set_dcb(vol, op.dsname, op.dcb)
        _set_secondary(vol, op.dsname, op.space)
        if plan is None:
            return 0
        start, blocks, tracks = plan
        info = self.fit(vol, op.dsname, tracks)
        io.write_blocks(vol, info, blocks, start=start)
        return sum(len(d) for _, d in blocks)

    # -- checking the result ---------------------------------------------------------
    def check(self) -> list[str]:
        """Every operation's object against its ``after`` state (fingerprint again)."""
        names = set()
        for step in self.steps:
            if step.status != CONFLICT:
                names.add(step.op.dsname)
                if step.op.new_name and step.op.kind == "dataset.rename":
                    names.add(step.op.new_name)
        fp = _fingerprint(self.paths, names, since=self.fp, exclusive=True)  # after writing
        # Later operations on a name (a data set deleted and created again) decide:
        # check each object's final expected state only.
        final: dict[tuple, tuple[str | None, Operation]] = {}
        for step in self.steps:
            if step.status == CONFLICT:
                continue
            op = step.op
            if op.kind == "dataset.rename":
                final[("ds", op.dsname)] = (None, op)
                final[("ds", op.new_name)] = (op.after, op)
            elif op.kind == "member.rename":
                final[("m", op.dsname, op.member)] = (None, op)
                final[("m", op.dsname, op.new_name)] = (op.after, op)
            elif op.kind == "dataset.attributes":
                final[("a", op.dsname)] = (op.after, op)
            elif op.is_member:
                final[("m", op.dsname, op.member)] = (op.after, op)
            else:
                final[("ds", op.dsname)] = (op.after, op)
        out = []
        for key, (want, op) in final.items():
            if key[0] == "ds":
                got = ops.state_of(fp, key[1])
            elif key[0] == "a":
                got = ops.state_of(fp, key[1], None, "dataset.attributes")
            else:
                got = ops.state_of(fp, key[1], key[2])
            if got != want:
                name = key[1] if key[0] != "m" else f"{key[1]}({key[2]})"
                out.append(
                    f"{name}: expected {_short(want)}, found {_short(got)} (after {op.kind})"
                )
        return sorted(out)


@dataclass
class _Members:
    """Members to load (:func:`_load_members`), as columns: their directory entries
    (TTRs zero until placed) and their blocks, member i's being rows ``lo[i] ..
    lo[i] + count[i] - 1`` of ``tables`` put end to end, counted from 1 (as
    :func:`_records_from` takes them)."""

    entries: EntryColumns
    tables: list[ops.BlockTable]
    lo: np.ndarray
    count: np.ndarray

    @classmethod
    def of(
        cls,
        names: Sequence[str],
        blocks: Sequence[Sequence[ops.Block]],
        userdata: Sequence[bytes | None],
        ttr_counts: Sequence[int],
    ) -> _Members:
        """Members given one by one (user data None: none, and no user TTRs)."""
        runs = [ops.run_of(b) for b in blocks]
        tables, lo = _table_rows(runs)
        uds = [bytes(u or b"") for u in userdata]
        raw = np.frombuffer(b"".join(map(name_to_bytes, names)) + b"".join(uds), np.uint8)
        n = len(names)
        ud_len = np.fromiter(map(len, uds), dtype=np.int64, count=n)
        entries = EntryColumns.gather(
            raw,
            np.arange(n) * NAME_LEN,
            np.full(n, NAME_LEN),
            np.zeros(n, np.int64),
            np.zeros(n, bool),
            [c if u is not None else 0 for c, u in zip(ttr_counts, userdata, strict=True)],
            n * NAME_LEN + np.cumsum(ud_len) - ud_len,
            ud_len,
        )
        count = np.fromiter(map(len, runs), dtype=np.int64, count=n)
        return cls(entries, tables, lo, count)

    @classmethod
    def of_list(cls, members: ops.MemberList) -> _Members:
        """The main members of a decoded members payload (aliases left out)."""
        main = np.flatnonzero(~members.alias)
        return cls(members.entries.take(main), [members.table], 1 + members.lo[main],
                   members.count[main])  # fmt: skip

    def records(self, with_bytes: bool = True) -> _Records:
        return _records_from(self.tables, self.lo, self.count, with_bytes)


def _new_pds_members(
    images: Sequence[ops.MemberImage],
) -> tuple[_Members, list[tuple[str, str | None, bytes, int]]]:
    """The main members of a new PDS's ``members`` payload as columns, and its aliases
    (name, member, user data, TTR count)."""
    if isinstance(images, ops.MemberList):
        return _Members.of_list(images), images.aliases()
    main = [mi for mi in images if not mi.alias]
    members = _Members.of(
        [mi.name for mi in main],
        [mi.blocks for mi in main],
        [mi.userdata for mi in main],
        [mi.ttr_count for mi in main],
    )
    return members, [(mi.name, mi.alias_of, mi.userdata, mi.ttr_count) for mi in images if mi.alias]


def _alias_columns(aliases: Sequence[tuple[str, str | None, bytes, int]]) -> EntryColumns:
    """Directory entries of ``aliases`` (TTRs zero): what they take in a directory."""
    return EntryColumns.of(
        [DirEntry(name, (0, 0), True, count, userdata) for name, _t, userdata, count in aliases]
    )


def _relocatable(entries: EntryColumns, recs: _Records) -> np.ndarray:
    """Which members' source TTRs relocate their user data and note list: those that
    count user TTRs and whose blocks' TTRs are known (non-zero) and distinct."""
    first, end = recs.spans[:, 0], recs.spans[:, 1]
    count = end - first
    member = np.repeat(np.arange(len(first)), count)
    rows = np.arange(int(count.sum())) + np.repeat(first - (np.cumsum(count) - count), count)
    ttr = recs.ttr[rows]
    order = np.lexsort((ttr, member))
    m, t = member[order], ttr[order]
    repeated = np.zeros(len(first), dtype=bool)
    repeated[m[1:][(m[1:] == m[:-1]) & (t[1:] == t[:-1])]] = True
    unknown = np.zeros(len(first), dtype=bool)
    unknown[member[ttr == 0]] = True
    counted = entries.ttr_counts() > 0
    return counted & (count > 0) & ~repeated & ~unknown


@dataclass
class _Records:
    """What :func:`_load_members` writes, in order: every member's blocks, each run
    followed by an EOF record, as columns over one byte array ``src``; run i's blocks
    are positions ``spans[i][0] .. spans[i][1]-1``, its EOF record is at
    ``spans[i][1]``."""

    src: np.ndarray
    ttr: np.ndarray
    key_off: np.ndarray
    key_len: np.ndarray
    data_off: np.ndarray
    data_len: np.ndarray
    spans: np.ndarray


class _Inflater:
    """Members payloads for a reader that takes them one after another, in an order
    known beforehand, inflated into the run's two buffers (:attr:`_Run.buffers`)
    rather than new memory for each: first touches of memory are what a fresh process
    pays most for.  ``ahead``: a thread inflates the next payload (zstd lets go of the
    GIL) into the other buffer while the caller works on this one; without it only the
    first buffer is used (decode: the second buffer's first touches cost more than the
    overlap saved).  A payload's array is valid until the next :meth:`take`; one taken
    out of the expected order is inflated into new memory instead."""

    def __init__(
        self,
        basket: Basket,
        order: Sequence[int],
        buffers: list[np.ndarray],
        ahead: bool,
        ready: threading.Thread | None = None,
    ):
        self.basket, self.buffers, self.ready = basket, buffers, ready
        self.order = list(dict.fromkeys(order))
        self.pool = (
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="inflate") if ahead else None
        )
        self.position = 0  # in ``order``: the payload the next take() expects
        self.ahead = self._start(0)

    def _start(self, position: int) -> Future | None:
        if self.pool is None or position >= len(self.order):
            return None
        index, buffer = self.order[position], self.buffers[position % 2]
        return self.pool.submit(self._inflate, index, buffer)

    def _inflate(self, index: int, buffer: np.ndarray) -> np.ndarray:
        if self.ready is not None:
            self.ready.join()  # the buffers' pages are touched: no one writes them now
        return self.basket.payload_into(index, buffer)

    def take(self, index: int) -> np.ndarray:
        if self.position >= len(self.order) or self.order[self.position] != index:
            return np.frombuffer(self.basket.payload(index), dtype=np.uint8)
        if self.ahead is None:
            raw = self._inflate(index, self.buffers[0])
        else:
            raw = self.ahead.result()
        self.position += 1
        # Into the other buffer: it held the payload taken before this one.
        self.ahead = self._start(self.position)
        return raw

    def follow(self, order: Sequence[int]) -> _Inflater:
        """This inflater if nothing was taken yet and ``order`` is its order, else a
        new one for ``order`` on the same buffers (this one closed)."""
        if self.position == 0 and list(dict.fromkeys(order)) == self.order:
            return self
        self.close()
        return _Inflater(self.basket, order, self.buffers, self.pool is not None, self.ready)

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> _Inflater:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _touch_pages(buffers: list[np.ndarray]) -> threading.Thread:
    """A thread that writes a zero on every page of ``buffers``, started now: their
    first touches (about 0.8 ms per MB here) are paid while the basket is decoded and
    the targets opened, not by the first inflations, on which the load waited.  An
    inflation into them joins it first (numpy lets go of the GIL while it writes)."""

    def touch() -> None:
        for buffer in buffers:
            buffer[:: mmap.PAGESIZE] = 0

    thread = threading.Thread(target=touch, name="touch buffers", daemon=True)
    thread.start()
    return thread


class _PayloadBytes:
    """Stands for the bytes of a decoded ``members`` payload (``BlockTable.raw``) that
    the import does not keep: ``len()`` is theirs, :meth:`load` inflates the payload
    again (its frame digest checked again), through the run's :class:`_Inflater`.
    Anything else that reaches for the bytes fails loudly rather than reading nothing."""

    def __init__(self, run: _Run, index: int):
        self.run, self.index = run, index
        self.size = run.basket.payload_info(index).raw_len

    def __len__(self) -> int:
        return self.size

    def load(self) -> np.ndarray:
        if self.run.inflater is None:
            return np.frombuffer(self.run.basket.payload(self.index), dtype=np.uint8)
        return self.run.inflater.take(self.index)


def _table_rows(runs: Sequence[ops.BlockRun]) -> tuple[list[ops.BlockTable], np.ndarray]:
    """The tables ``runs`` come from (one per payload) and where each run starts in
    them put end to end, counted from 1 (:func:`_records_from`)."""
    tables: dict[int, ops.BlockTable] = {}
    for run in runs:
        tables.setdefault(id(run.table), run.table)
    tabs = list(tables.values())
    first_row = dict(
        zip(tables, np.cumsum([0] + [len(t.ttr) for t in tabs]).tolist(), strict=False)
    )
    lo = np.array([1 + first_row[id(run.table)] + run.lo for run in runs], dtype=np.int64)
    return tabs, lo


def _records_of(runs: Sequence[ops.BlockRun], with_bytes: bool = True) -> _Records:
    """The records of ``runs`` (each followed by its EOF record) as one :class:`_Records`:
    the tables they come from (one payload each) are put end to end.  ``with_bytes``
    False: the columns only (``src`` empty), for planning."""
    tabs, lo = _table_rows(runs)
    count = np.array([len(run) for run in runs], dtype=np.int64)
    return _records_from(tabs, lo, count, with_bytes)


def _records_from(
    tabs: Sequence[ops.BlockTable], lo: np.ndarray, count: np.ndarray, with_bytes: bool = True
) -> _Records:
    """:func:`_records_of` of runs given as rows ``lo[i] .. lo[i] + count[i] - 1`` of
    ``tabs`` put end to end, counted from 1."""
    byte_base = np.cumsum([0] + [len(t.raw) for t in tabs])[:-1]
    columns = {
        name: np.concatenate([np.zeros(1, dtype=np.int64)] + [getattr(t, name) for t in tabs])
        for name in ("ttr", "key_len", "data_len")
    }
    for name in ("key_off", "data_off"):  # offsets into the joined bytes
        columns[name] = np.concatenate(
            [np.zeros(1, dtype=np.int64)]
            + [getattr(t, name) + base for t, base in zip(tabs, byte_base, strict=True)]
        )
    if not with_bytes:
        src = np.zeros(0, dtype=np.uint8)
    else:

        def raw(t: ops.BlockTable) -> np.ndarray:
            return t.raw.load() if isinstance(t.raw, _PayloadBytes) else t.raw

        if len(tabs) == 1:
            src = raw(tabs[0])
        else:  # each copied out before the next load reuses the buffer
            src = np.concatenate([np.array(raw(t)) for t in tabs] or [np.zeros(0, np.uint8)])
    # Row 0 of every column is a zero row (the EOF records); table rows follow from 1.
    first = np.cumsum(count + 1) - (count + 1)  # where each run starts in the sequence
    total = int((count + 1).sum())
    row = np.repeat(lo - first, count + 1) + np.arange(total)
    row[first + count] = 0
    return _Records(
        src,
        columns["ttr"][row],
        columns["key_off"][row],
        columns["key_len"][row],
        columns["data_off"][row],
        columns["data_len"][row],
        np.stack([first, first + count], axis=1),
    )


def _load_members(
    edit: _DirectoryEdit,
    members: _Members,
    aliases: Sequence[tuple[str, str, bytes, int]] = (),
    fit: Callable[[int], DatasetInfo] | None = None,
) -> int:
    """Add or replace ``members`` (and then ``aliases``: name, member, user data, TTR
    count) in one pass, as IEBCOPY loads a PDS: the blocks of every member, each run
    followed by its EOF record, are placed one after another from the data set's final
    EOF (FORMATS.md 6.5, 7.3), whole tracks are built once and staged in the caller's
    transaction, user-data TTRs and note lists are relocated, and DS1LSTAR/DS1TRBAL are
    written once.  The new entries go into ``edit``, whose owner writes the directory.
    Returns the bytes of member data written.

    ``fit(tracks)`` makes the data set that big (it is called with the relative tracks
    the placement needs); when the data set cannot grow because it has 16 extents, the
    PDS is compressed first, as IEBCOPY would, and the placement done again.

    ``Pds.write_many`` does the same member by member (one ``io.write_blocks`` and one
    DSCB update each); this pass is what makes the import of new member data fast: the
    placement (``Device.place``) and the track images (``build_tracks``) are computed
    over columns of every record at once, with Python work per load module only.
    Aliases of replaced members keep pointing at the old copy, as on MVS.
    """
    from emulator.kernels.tracks import build_tracks
    from emulator.layouts.ckd import EOT_MARKER
    from emulator.pds.directory import note_list_ref, relocate_userdata, ttr_bytes, ttr_from
    from emulator.track import build_track, parse_track

    vol, pds, where = edit.vol, edit.pds, edit.where
    device = vol.device
    recs = members.records()
    added = _alias_columns(aliases)
    for attempt in (0, 1):
        info = pds.info
        needed = EntryColumns.join([edit.columns(), members.entries, added]).blocks_needed()
        if needed > edit.directory.blocks:
            raise SpaceError(
                f"directory full: {edit.directory.blocks} blocks, need {needed}", vol.path, where
            )

        # Pass 1: where every record goes.
        tt, r = pds.end_of_data(edit.directory)
        kept = [(rec.key, rec.data) for rec in parse_track(vol.read_track(vol.trk_of(info, tt)), where=where) if rec.rec <= r]  # fmt: skip
        if len(kept) != r:
            raise FormatError(
                f"the final EOF is R{r} but the track holds {len(kept)} records before it",
                vol.path,
                where,
            )
        used = 0
        for key, data in kept:
            used = device.fits(used, len(key), len(data)) or used
        try:
            toff, recno, last_used = device.place(recs.key_len, recs.data_len, used, r, MAX_REC)
        except FormatError as exc:
            raise exc.located(vol.path, where) from None
        last_tt = tt + (int(toff[-1]) if len(toff) else 0)
        if last_tt < info.tracks:
            break
        if attempt == 0 and len(info.extents) >= MAX_EXTENTS:
            # as IEBCOPY: the space of replaced and deleted members comes back
            edit.write()
            pds.compress()
            edit.read()
            continue
        if fit is None:
            raise SpaceError(f"needs {last_tt + 1} tracks, has {info.tracks}", vol.path, where)
        info = fit(last_tt + 1)
        break

    # Pass 2: relocate user data and note lists (load modules), then build the tracks.
    new_tt = tt + toff
    first = recs.spans[:, 0]
    placed = members.entries
    placed = EntryColumns(placed.names, (new_tt[first] << 8) | recno[first], placed.c,
                          placed.userdata.copy())  # fmt: skip
    patches: list[tuple[int, bytes]] = []  # (record position, patched note list data)
    for i in np.flatnonzero(_relocatable(placed, recs)).tolist():
        s, e = recs.spans[i].tolist()
        entry = placed.entry(i)
        ttrs = list(zip(new_tt[s:e].tolist(), recno[s:e].tolist(), strict=True))
        old = [(t >> 8, t & 0xFF) for t in recs.ttr[s:e].tolist()]
        mapping = dict(zip(old, ttrs, strict=True))
        userdata = relocate_userdata(entry, mapping)
        placed.userdata[i, : len(userdata)] = np.frombuffer(userdata, dtype=np.uint8)
        ref = note_list_ref(replace(entry, userdata=userdata))
        if ref is not None and ref[0] in ttrs:
            pos = s + ttrs.index(ref[0])
            start = int(recs.data_off[pos])
            patched = bytearray(recs.src[start : start + int(recs.data_len[pos])].tobytes())
            for j in range(min(ref[1], len(patched) // 4)):
                was = ttr_from(bytes(patched[4 * j : 4 * j + 3]))
                if was in mapping:
                    patched[4 * j : 4 * j + 3] = ttr_bytes(mapping[was])
            patches.append((pos, bytes(patched)))
    trks = [vol.trk_of(info, rel) for rel in range(tt, last_tt + 1)]
    cyl, head = np.divmod(np.array(trks, dtype=np.int64), vol.heads)
    prefix = build_track(int(cyl[0]), int(head[0]), kept)[: -len(EOT_MARKER)]
    try:
        slots, lengths, data_at = build_tracks(
            cyl, head, toff, recno, recs.src, recs.key_off, recs.key_len, recs.data_off,
            recs.data_len, vol.image.trksize, prefix,
        )  # fmt: skip
    except FormatError as exc:
        raise exc.located(vol.path, where) from None
    for pos, patched in patches:
        at = int(data_at[pos])
        slots[int(toff[pos]), at : at + len(patched)] = np.frombuffer(patched, dtype=np.uint8)
    with vol.transaction():
        vol.write_slots(trks, slots, lengths.tolist())
        if len(members.count):
            vol.update(
                pds.dsname, lstar=(last_tt, int(recno[-1])), trbal=device.track_balance(last_used)
            )
    edit.add(placed)
    for name, target, userdata, count in aliases:
        edit.put_alias(name, target, userdata, count)
    return int(recs.data_len.sum())


def _rebuild_pds(vol: Volume, dsname: str, dirblks: int) -> None:
    """Copy a PDS to a new one with ``dirblks`` directory blocks, as IEBCOPY copies a
    PDS (members compacted, user-data TTRs and note lists relocated, aliases kept),
    scratch the old one and give the copy its name; the DCB, the space request and the
    dates stay.  Runs inside the caller's transaction."""
    pds = Pds(vol, dsname)
    info = pds.info
    entries = pds.directory().entries
    main = [e for e in entries if not e.alias]
    members = _Members.of(
        [e.name for e in main],
        [[ops.Block(b.tt << 8 | b.r, b.key, b.data) for b in pds.blocks_of(e)] for e in main],
        [e.userdata for e in main],
        [e.ttr_count for e in main],
    )
    aliases = [(e.name, e.alias_of, e.userdata, e.ttr_count) for e in entries if e.alias]
    unit, primary, secondary = info.space
    recs = members.records()
    tracks = _tracks_for(vol.device, _with_directory(dirblks, recs))
    temp = next(
        name
        for name in (f"SSMTEMP.X{n:07X}" for n in range(os.getpid() & 0xFFFF, 1 << 28, 7919))
        if name not in {i.dsname for i in vol.datasets()}
    )
    vol.allocate(
        temp,
        dsorg=info.dsorg,
        recfm=info.recfm_raw,
        lrecl=info.lrecl,
        blksize=info.blksize,
        keylen=info.keylen,
        space=(unit, max(primary, _units(tracks, unit, vol.heads)), secondary),
        dirblks=dirblks,
        created=info.created,
        expires=info.expires,
    )
    edit = _DirectoryEdit(vol, temp)
    _load_members(edit, members, aliases)
    edit.write()
    vol.scratch(dsname)
    vol.rename(temp, dsname)


def _set_dcb(vol: Volume, dsname: str, dcb: dict) -> None:
    """Set the DCB fields that differ (F1 DSCB)."""
    info = vol.dataset(dsname)
    cur = _dcb_of(info)
    fields = {}
    for key in ("dsorg", "recfm", "lrecl", "blksize", "keylen"):
        if key in dcb and dcb[key] is not None and str(dcb[key]) != str(cur[key]):
            fields[key] = dcb[key]
    if fields:
        vol.update(dsname, **fields)


def _set_secondary(vol: Volume, dsname: str, space: dict | None) -> None:
    """Set the secondary quantity (DS1SCAL3) when the operation carries one that differs."""
    if space and space.get("secondary") is not None:
        if int(space["secondary"]) != vol.dataset(dsname).space[2]:
            vol.update(dsname, secondary=int(space["secondary"]))


# -- intent log -----------------------------------------------------------------------
def _fsync_dir(path: str) -> None:
    try:
        fd = os.open(os.path.dirname(os.path.abspath(path)) or ".", os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _write_atomic(path: str, data: bytes) -> None:
    """Temporary file in the same folder, fsync, rename, fsync of the folder."""
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".ssm-", dir=folder)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _fsync_dir(path)


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        return
    _fsync_dir(path)


def _file_digest(path: str) -> str:
    h = blake3.blake3()
    with open(path, "rb") as f:
        while chunk := f.read(16 << 20):
            h.update(chunk)
    return m.digest_text(h.digest())


def basket_id(path: str | os.PathLike) -> str:
    """A basket's identity: its trailer digest (the last 32 bytes: BLAKE3 of everything
    before them, basket.md "File layout")."""
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        size = f.tell()
        f.seek(max(0, size - 32))
        return m.digest_text(f.read(32))


@dataclass
class Intent:
    """An intent log: an import in progress (docs/import.md "Recovery")."""

    path: str
    basket: str
    basket_id: str
    targets: list[dict]  # [{"path", "volser"}]
    backout: str
    backout_digest: str
    force: bool = False
    state: str = "applying"
    done: list[str] = field(default_factory=list)
    started: str = ""

    def to_json(self) -> dict:
        return {
            "intent": "ssm-import",
            "version": INTENT_VERSION,
            "basket": {"path": self.basket, "id": self.basket_id},
            "targets": self.targets,
            "backout": {"path": self.backout, "digest": self.backout_digest},
            "force": self.force,
            "state": self.state,
            "done": list(self.done),
            "started": self.started,
        }

    def save(self) -> None:
        body = self.to_json()
        raw = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
        body["check"] = m.digest_text(blake3.blake3(raw).digest())
        _write_atomic(self.path, json.dumps(body, sort_keys=True, indent=1).encode() + b"\n")

    @classmethod
    def load(cls, path: str) -> Intent:
        try:
            with open(path, "rb") as f:
                body = json.loads(f.read().decode("utf-8"))
            check = body.pop("check")
            raw = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
            if m.digest_text(blake3.blake3(raw).digest()) != check:
                raise IntegrityError("intent log digest differs (damaged)", path)
            if body.get("intent") != "ssm-import" or body.get("version") != INTENT_VERSION:
                raise FormatError("not an ssm import intent log of a known version", path)
            return cls(
                path=path,
                basket=body["basket"]["path"],
                basket_id=body["basket"]["id"],
                targets=list(body["targets"]),
                backout=body["backout"]["path"],
                backout_digest=body["backout"]["digest"],
                force=bool(body.get("force")),
                state=str(body.get("state", "applying")),
                done=list(body.get("done", [])),
                started=str(body.get("started", "")),
            )
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise IntegrityError(f"cannot read the intent log: {exc}", path) from None

    def remove(self) -> None:
        """Intent log first, then the backout it names (docs/import.md invariants)."""
        _remove(self.path)
        _remove(self.backout)


def _find_intent(paths: Sequence[str]) -> Intent | None:
    found = [p + INTENT_SUFFIX for p in paths if os.path.exists(p + INTENT_SUFFIX)]
    if not found:
        return None
    if len(found) > 1:
        raise ConflictError(
            f"{len(found)} intent logs among the targets ({', '.join(found)}): remove the "
            "stale ones by hand"
        )
    return Intent.load(found[0])


def _drop_orphan_backouts(paths: Sequence[str]) -> None:
    """Remove backout stores beside the targets when no intent log is there (docs/
    import.md "Recovery"): written by an import stopped before its intent log was saved,
    or left by one stopped between removing its intent log and its backout.  Neither
    can ever be used: a backout is only read through the intent log that names it."""
    for path in paths:
        _remove(path + BACKOUT_SUFFIX)


def _check_targets(intent: Intent, system: api.System) -> None:
    want = sorted(t["volser"] for t in intent.targets)
    have = sorted(v.volser for v in system.volumes)
    if want != have:
        raise ConflictError(
            f"an interrupted import of volumes {' '.join(want)} must be finished or rolled "
            f"back first; run it again with exactly those targets",
            intent.path,
        )


# -- limits -------------------------------------------------------------------------
def _outside(basket: Basket, system: api.System, limits: DsnFilter) -> list[str]:
    """What the basket would touch outside this import's limits (docs/import.md
    "Limits"), one line per data set: a name (either name of a rename) that the
    include/exclude rules refuse, or an object on a volume that is not a target.  A
    new data set's volser only says where it would rather go (*Placement*)."""
    volsers = {v.volser for v in system.volumes}
    why: dict[str, str] = {}
    for op in basket.operations:
        names = [op.dsname]
        if op.kind == "dataset.rename" and op.new_name:
            names.append(op.new_name)
        for name in names:
            if limits and not limits.passes(name):
                why.setdefault(name, "outside the import's --include/--exclude")
        if op.kind != "dataset.create" and op.volser not in volsers:
            why.setdefault(op.dsname, f"on volume {op.volser}, which is not a target")
    return [f"{name}: {reason}" for name, reason in sorted(why.items())]


# -- public entry points --------------------------------------------------------------
def _open(paths: Sequence[str], writable: bool, ignore_opened: bool = False) -> api.System:
    """The targets; a volume's flush to disk overlaps the next volume's work, and
    :func:`_finished` waits for every flush before the intent log goes."""
    return api.open_system(
        paths, writable=writable, ignore_opened=ignore_opened, background_flush=True
    )


def _finished(intent: Intent, system: api.System) -> None:
    """The import (or roll-back) is whole: once every volume is on disk, the intent
    log goes (a crash before that rolls the import back; docs/import.md "Recovery")."""
    system.sync()
    intent.remove()


@contextlib.contextmanager
def _exclusive(paths: Sequence[str]) -> Iterator[None]:
    """One import (or recovery) at a time: an exclusive ``flock`` on the folder of
    every target, taken in a fixed order, held for the whole run."""
    folders = sorted({os.path.dirname(os.path.realpath(p)) for p in paths})
    fds: list[int] = []
    try:
        for folder in folders:
            fd = os.open(folder, os.O_RDONLY)
            fds.append(fd)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise ConflictError(
                    "another ssm import is running on volumes here", folder
                ) from None
        yield
    finally:
        for fd in fds:
            os.close(fd)  # closing releases the lock


def _rollback(
    intent: Intent,
    system: api.System,
    paths: list[str],
    progress,
    t0: float,
) -> str:
    """Restore the before state of an interrupted import with its stored backout."""
    if not os.path.exists(intent.backout):
        raise IntegrityError("the intent log names a backout basket that is missing", intent.path)
    if _file_digest(intent.backout) != intent.backout_digest:
        raise IntegrityError(
            "the stored backout basket differs from the intent log", intent.backout
        )
    with read_basket(intent.backout) as backout:
        run = _Run(backout, system, paths, intent.force, progress, t0)
        run.decode()
        refusals = run.classify()
        if refusals:
            raise ConflictError(
                "cannot roll back: the targets changed since the interrupted import: "
                + "; ".join(refusals[:5]),
                intent.path,
            )
        todo = [s for s in run.steps if s.writes]
        if todo:
            run.place()
            intent.state = "rolling back"
            intent.save()
            _apply_all(run, todo, None)
        mismatches = run.check()
        if mismatches and not intent.force:
            raise IntegrityError(
                "roll-back did not restore: " + "; ".join(mismatches[:5]), intent.path
            )
    _finished(intent, system)
    return f"rolled back an interrupted import of {os.path.basename(intent.basket)} ({len(todo)} operations)"


def _volume_committed(intent: Intent | None, volser: str) -> None:
    """A volume committed.  Noted in memory only: the intent log is not rewritten (two
    more flushes per volume), since recovery tells the volumes that committed by the
    status of their operations, never by this list (docs/import.md "Recovery")."""
    if intent is not None:
        intent.done.append(volser)


@contextlib.contextmanager
def _inflating(run: _Run, order: list[int]) -> Iterator[None]:
    """An :class:`_Inflater` for the members payloads in ``order``, for the length of
    the block.  One already running (the caller's, or one started early on a likely
    order) is kept when it follows ``order``, else replaced, and left to its owner.
    The import starts one before it decides the statuses, on the order placement will
    most likely give, so that the first payload (whose inflation also pays for the
    first touches of its buffer) inflates on the other core while the plan is made."""
    if run.inflater is not None:
        run.inflater = run.inflater.follow(order)
        yield
        return
    run.inflater = _Inflater(run.basket, order, run.buffers, True, run.warming)
    try:
        yield
    finally:
        run.inflater.close()
        run.inflater = None


def _apply_all(run: _Run, todo: list[_Step], intent: Intent | None) -> dict[str, int]:
    """Apply volume by volume in target order; returns {volser: bytes}."""
    out: dict[str, int] = {}
    by_vol: dict[str, list[_Step]] = {}
    for step in todo:
        by_vol.setdefault(step.volser, []).append(step)
    total = len(by_vol)
    done = 0
    with _inflating(run, run.load_order(todo)):
        for vol in run.system.volumes:
            steps = by_vol.get(vol.volser)
            if not steps:
                continue
            run.report("apply", done, total, vol.volser, f"{len(steps)} operations")
            out[vol.volser] = run.apply_volume(vol, steps)
            _volume_committed(intent, vol.volser)
            done += 1
    return out


def recover(
    targets: Sequence[str | os.PathLike],
    *,
    progress: Callable[[ImportProgress], None] | None = None,
    ignore_opened: bool = False,
) -> str | None:
    """Roll back an interrupted import on ``targets`` (docs/import.md "Recovery");
    returns what was done, or None when there was nothing to recover.
    ``ignore_opened``: as for :func:`import_basket`."""
    t0 = time.perf_counter()
    paths = [os.fspath(p) for p in targets]
    with _exclusive(paths):
        intent = _find_intent(paths)
        if intent is None:
            _drop_orphan_backouts(paths)
            return None
        with _open(paths, writable=True, ignore_opened=ignore_opened) as system:
            _check_targets(intent, system)
            return _rollback(intent, system, paths, progress, t0)


def import_basket(
    basket_path: str | os.PathLike,
    targets: Sequence[str | os.PathLike],
    *,
    dry_run: bool = False,
    backout: str | os.PathLike | None = None,
    force: bool = False,
    key: bytes | None = None,
    progress: Callable[[ImportProgress], None] | None = None,
    include: Iterable[str] = (),
    exclude: Iterable[str] = (),
    ignore_opened: bool = False,
) -> ImportResult:
    """Apply the basket at ``basket_path`` to the volume images ``targets`` (one
    system), following docs/import.md.  ``dry_run``: plan and report, write nothing;
    ``backout``: write the basket that restores the before state there; ``force``:
    apply over drifted objects where possible; ``key``: refuse a basket not signed with
    it; ``include``/``exclude``: data set name patterns (``ssm.patterns``) limiting
    what the basket may touch, e.g. ``exclude=["SYS1.**"]``; ``ignore_opened``: write
    compressed targets whose header says an emulator has them open (OPENED bit;
    docs/RELIABILITY.md).  Refusals for drift or
    for the limits come back in the result (``refused`` with ``conflicts`` or
    ``outside``), nothing written; damage, space and other errors raise
    :class:`emulator.errors.EmulatorError`."""
    t0 = time.perf_counter()
    path = os.fspath(basket_path)
    paths = [os.fspath(p) for p in targets]
    if not paths:
        raise FormatError("no target volumes given")
    limits = DsnFilter(include, exclude)  # a malformed pattern stops here
    with _exclusive(paths):
        return _import(
            path, paths, dry_run, backout, force, key, progress, t0, limits, ignore_opened
        )


def _import(
    path, paths, dry_run, backout, force, key, progress, t0, limits, ignore_opened
) -> ImportResult:
    """:func:`import_basket` under the import lock (docs/import.md "Order of work")."""
    result = ImportResult(basket=path, targets=paths, dry_run=dry_run)
    with read_basket(path, key) as basket:
        run = _Run(basket, None, paths, force, progress, t0)  # type: ignore[arg-type]
        run.report("verify", 0, 1, message=path)
        run.decode()
        this_id = basket_id(path)
        intent = _find_intent(paths)
        if intent is None and not dry_run:
            _drop_orphan_backouts(paths)
        with (
            _open(paths, writable=not dry_run, ignore_opened=ignore_opened) as system,
            contextlib.ExitStack() as early,
        ):
            run.system = system
            if intent is not None:
                _check_targets(intent, system)
            result.outside = _outside(basket, system, limits)
            if result.outside:
                result.refused = True
                result.seconds = time.perf_counter() - t0
                return result
            finishing = False
            if intent is not None:
                if intent.basket_id == this_id:
                    finishing = True
                    result.recovered = "finishing an interrupted import of this basket"
                elif dry_run:
                    result.recovered = (
                        "an interrupted import of another basket would be rolled back first"
                    )
                else:
                    run.report("recover", 0, 1, message=intent.path)
                    result.recovered = _rollback(intent, system, paths, progress, t0)
                    intent = None
            run.report("plan", 0, 1)
            if not dry_run:
                early.enter_context(_inflating(run, run.likely_load_order()))
            refusals = run.classify()
            _fill_plan(result, run)
            if refusals:
                result.conflicts = refusals
                result.refused = True
                result.seconds = time.perf_counter() - t0
                return result
            todo = [s for s in run.steps if s.writes]
            if not todo:
                result.already_applied = not finishing
                result.verified = True
                if finishing and not dry_run:
                    if backout is not None:
                        _copy(intent.backout, os.fspath(backout))
                        result.backout = os.fspath(backout)
                    _finished(intent, system)
                    result.recovered = "finished an interrupted import (every volume had committed)"
                result.seconds = time.perf_counter() - t0
                return result
            run.place()
            if dry_run:
                result.applied = len(todo)  # would be applied
                result.volumes = _per_volume(todo)
                result.seconds = time.perf_counter() - t0
                return result
            with _inflating(run, run.load_order(todo)):
                if not finishing:
                    run.report("backout", 0, 1)
                    operations, payloads = run.build_backout()
                    first = paths[0]
                    store = first + BACKOUT_SUFFIX
                    write_basket(
                        store,
                        _backout_header(basket, path, this_id, system),
                        operations,
                        payloads,
                        compression=BACKOUT_COMPRESSION,
                    )
                    intent = Intent(
                        path=first + INTENT_SUFFIX,
                        basket=os.path.abspath(path),
                        basket_id=this_id,
                        targets=[
                            {"path": os.path.abspath(p), "volser": v.volser}
                            for p, v in zip(paths, system.volumes, strict=True)
                        ],
                        backout=os.path.abspath(store),
                        backout_digest=_file_digest(store),
                        force=force,
                        started=_dt.datetime.now(_dt.UTC).replace(microsecond=0).isoformat(),
                    )
                    intent.save()
                try:
                    written = _apply_all(run, todo, intent)
                except BaseException as exc:
                    _fail(exc, intent, system, paths, progress, t0)
                    raise
            result.volumes = _per_volume(todo)
            result.bytes = sum(written.values())
            result.applied = len(todo)
            run.report("check", 0, 1)
            result.mismatches = run.check()
            result.verified = not result.mismatches
            if backout is not None:
                _copy(intent.backout, os.fspath(backout))
                result.backout = os.fspath(backout)
            _finished(intent, system)
            if finishing:
                result.recovered = "finished an interrupted import of this basket"
    result.seconds = time.perf_counter() - t0
    run.report("done", 1, 1, message=f"{result.applied} operations")
    return result


def _fail(exc: BaseException, intent: Intent, system, paths, progress, t0) -> None:
    """An error while applying: roll back at once (docs/import.md "Recovery")."""
    try:
        _rollback(intent, system, paths, progress, t0)
    except BaseException as again:
        if isinstance(exc, EmulatorError):
            exc.message += (
                f" (roll-back failed too: {again}; the intent log {intent.path} stays, "
                "run the import or recover again)"
            )
            exc.args = (str(exc),)


def _per_volume(steps: list[_Step]) -> dict[str, int]:
    out: dict[str, int] = {}
    for step in steps:
        out[step.volser] = out.get(step.volser, 0) + 1
    return out


def _fill_plan(result: ImportResult, run: _Run) -> None:
    for step in run.steps:
        op = step.op
        name = op.target if op.kind.endswith("rename") is False else f"{op.target} -> {op.result}"
        result.plan.append(f"{step.status:8} {op.seq:5} {op.kind:18} {name}")
        if step.status == APPLIED:
            result.skipped += 1
        elif step.status == FORCED:
            result.forced.append(step.message)


def _copy(src: str, dst: str) -> None:
    with open(src, "rb") as f:
        data = f.read()
    _write_atomic(dst, data)


def _backout_header(basket: Basket, path: str, this_id: str, system: api.System) -> dict:
    from ssm.fingerprint import tool_version

    now = _dt.datetime.now(_dt.UTC).replace(microsecond=0).isoformat()
    volsers = [v.volser for v in system.volumes]
    side = {"state": None, "volsers": volsers, "created": now, "file": None}
    return {
        "tool": tool_version(),
        "created": now,
        "mode": "backout",
        "source": {
            "volumes": [
                {"volser": v.volser, "devtype": v.device.name, "cyls": v.cyls}
                for v in system.volumes
            ]
        },
        "base": dict(side),
        "result": dict(side),
        "filters": basket.header.get("filters", {"include": [], "exclude": [], "maps": []}),
        "backout_of": {"basket": os.path.abspath(path), "id": this_id},
    }


__all__ = [
    "ImportResult",
    "ImportProgress",
    "Intent",
    "import_basket",
    "recover",
    "basket_id",
    "INTENT_SUFFIX",
    "BACKOUT_SUFFIX",
]
