"""ssm export: write a change basket (docs/formats/basket.md) for what changed.

    from ssm.export import export
    export("day1.basket", base="month.ssmfp", images=paths)          # cumulative since base
    export("x.basket", from_images=old_paths, images=new_paths)       # between two dumps
    export("full.basket", images=paths, full=True)                    # every data set

What changed is decided by fingerprints and :func:`ssm.compare.compare` (its semantics,
filters and ``--map``); the images are read only for the objects that go in the basket
(basket.md *Invariants*), through the emulator's public API: ``emulator.api`` to open
the system, ``emulator.pds.Pds`` for directories, ``emulator.dataset.io`` for blocks and
records.  Large sequential data sets with record groups travel as record edits found by
matching the group digests of both sides (``difflib``'s matching on the digest lists),
and only the new side's changed groups are read, starting at the block that holds each
group's first record (the fingerprint records it).

Each object gets one operation whose ``before`` is its state on the OLD side and
``after`` its state on the NEW side (:mod:`ssm.basket.ops`); the order is the one
basket.md *Operations* gives.
"""

from __future__ import annotations

import datetime as _dt
import difflib
import os
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import blake3
import numpy as np

from emulator import api
from emulator.dataset import io
from emulator.dataset import records as rf
from emulator.errors import ConflictError, FormatError
from emulator.pds import DirEntry, Pds
from ssm import dumps, fpfile
from ssm.basket import fmt
from ssm.basket import ops as bo
from ssm.compare import DatasetChange, MemberChange, compare
from ssm.fingerprint import fingerprint, tool_version
from ssm.model import (
    DS_ERROR,
    DS_GROUPED,
    DS_KEYED,
    DS_TORN,
    DatasetFp,
    Fingerprint,
    empty_tables,
)
from ssm.patterns import NameMaps

#: Order of data set operations in the manifest (basket.md *Operations*).
_DS_ORDER = {
    "dataset.delete": 0,
    "dataset.rename": 1,
    "dataset.create": 2,
    "dataset.content": 3,
    "dataset.records": 3,
    "dataset.attributes": 3,
}
#: Order of member operations within one data set.
_MEMBER_ORDER = {
    "alias.delete": 0,
    "member.delete": 1,
    "member.rename": 2,
    "member.put": 3,
    "member.userdata": 4,
    "alias.put": 5,
}


@dataclass
class ExportResult:
    """What :func:`export` wrote: counts by operation kind, sizes, and timings."""

    path: str
    mode: str  # "base", "range", "full"
    operations: int = 0
    counts: dict = field(default_factory=dict)  # kind -> operations
    payloads: int = 0
    payload_bytes: int = 0  # payloads before compression
    content_bytes: int = 0  # record/block bytes the operations write
    bytes: int = 0  # the basket file
    seconds: float = 0.0
    fingerprint_seconds: float = 0.0
    read_seconds: float = 0.0
    write_seconds: float = 0.0
    base_state: str | None = None
    result_state: str = ""
    signed: bool = False
    #: The NEW side's fingerprint (the hot site's expected state once imported).
    fingerprint: Fingerprint | None = field(default=None, repr=False)

    def to_json(self) -> dict:
        return {
            "path": self.path,
            "mode": self.mode,
            "operations": self.operations,
            "counts": dict(sorted(self.counts.items())),
            "payloads": self.payloads,
            "payload_bytes": self.payload_bytes,
            "content_bytes": self.content_bytes,
            "bytes": self.bytes,
            "seconds": round(self.seconds, 3),
            "fingerprint_seconds": round(self.fingerprint_seconds, 3),
            "read_seconds": round(self.read_seconds, 3),
            "write_seconds": round(self.write_seconds, 3),
            "base_state": self.base_state,
            "result_state": self.result_state,
            "signed": self.signed,
        }


def empty_fingerprint(created: _dt.datetime | None = None) -> Fingerprint:
    """A fingerprint of a system with nothing on it (the OLD side of ``--full``)."""
    ds, mem, grp, ext = empty_tables()
    return Fingerprint(
        version=1,
        created=created or _dt.datetime.now(_dt.UTC),
        tool=tool_version(),
        volumes=[],
        dataset_table=ds,
        members=mem,
        groups=grp,
        extents=ext,
        userdata=b"",
    )


def _file_digest(path: str | os.PathLike) -> str:
    h = blake3.blake3()
    with open(path, "rb") as f:
        while chunk := f.read(16 << 20):
            h.update(chunk)
    return "blake3:" + h.hexdigest()


def _utc(now: _dt.datetime | None) -> _dt.datetime:
    when = now or _dt.datetime.now(_dt.UTC)
    if when.tzinfo is None:
        when = when.replace(tzinfo=_dt.UTC)
    return when.astimezone(_dt.UTC).replace(microsecond=0)


def export(
    out: str | os.PathLike,
    *,
    base: str | os.PathLike | Fingerprint | None = None,
    images: Iterable[str | os.PathLike] = (),
    from_images: Iterable[str | os.PathLike] = (),
    full: bool = False,
    include: Iterable[str] = (),
    exclude: Iterable[str] = (),
    maps: Iterable[str] = (),
    key: bytes | None = None,
    now: _dt.datetime | None = None,
    compression: str = "auto",
    progress: Callable[[str], None] | None = None,
    current: str | os.PathLike | Fingerprint | None = None,
) -> ExportResult:
    """Write the basket ``out`` bringing the OLD side to the NEW side (module
    docstring): exactly one of ``base`` (with ``images``), ``from_images`` (with
    ``images``, the NEW dumps) or ``full`` (with ``images``).  ``key`` signs it
    (HMAC-SHA256); ``now`` is the basket's and the new fingerprint's timestamp (the
    same images and ``now`` give the same bytes).  Refuses (ConflictError) when an
    object to export was read torn or is damaged on the NEW side.

    ``current``: a fingerprint of ``images`` made just before (object or file), used
    instead of fingerprinting them again (the evening's fingerprint of the drill).  It
    must describe the images as they are: the importer's after-digest check refuses a
    basket made from a stale one."""
    t0 = time.perf_counter()
    images = [os.fspath(p) for p in images]
    from_images = [os.fspath(p) for p in from_images]
    include, exclude, maps = list(include), list(exclude), list(maps)
    given = [base is not None, bool(from_images), bool(full)]
    if sum(given) != 1:
        raise ValueError("give exactly one of base=, from_images= or full=True")
    if not images:
        raise ValueError("images= (the NEW side's volume images) is empty")
    if full and not all(dumps.is_image(p) for p in images):
        # XMIT, unload and tape dumps: staged onto scratch volumes (ssm/dumps.py)
        with tempfile.TemporaryDirectory(prefix="ssm-dumps-") as tmp:
            staged = dumps.stage(images, tmp)
            return export(
                out, images=staged, full=True, include=include, exclude=exclude,
                maps=maps, key=key, now=now, compression=compression, progress=progress,
            )  # fmt: skip
    created = _utc(now)
    say = progress or (lambda text: None)

    base_file = None

    def new_side(since: Fingerprint | None) -> Fingerprint:
        if current is not None:
            return current if isinstance(current, Fingerprint) else fpfile.read(current)
        say("fingerprinting the images")
        return fingerprint(images, since=since, created=created)

    if base is not None:
        mode = "base"
        if isinstance(base, Fingerprint):
            old_fp = base
        else:
            base_file = _file_digest(base)
            old_fp = fpfile.read(base)
        new_fp = new_side(old_fp)
    elif from_images:
        mode = "range"
        say("fingerprinting the old images")
        old_fp = fingerprint(from_images, created=created)
        new_fp = new_side(old_fp)
    else:
        mode = "full"
        old_fp = empty_fingerprint(created)
        new_fp = new_side(None)
    t_fp = time.perf_counter()

    say("comparing")
    result = compare(old_fp, new_fp, include, exclude, maps)
    builder = _Builder(old_fp, new_fp, NameMaps(maps), images)
    try:
        builder.refuse_unreadable(result.datasets)
        say(f"reading {len(result.datasets)} data set and {len(result.members)} member changes")
        builder.build(result.datasets, result.members)
    finally:
        builder.close()
    t_read = time.perf_counter()

    header = {
        "tool": tool_version(),
        "created": created.isoformat(),
        "mode": mode,
        "source": {
            "volumes": [
                {"volser": v.volser, "devtype": v.devtype, "cyls": v.cyls} for v in new_fp.volumes
            ]
        },
        "base": None
        if mode == "full"
        else {
            "state": bo.system_state(old_fp, include, exclude, maps, side="old"),
            "volsers": [v.volser for v in old_fp.volumes],
            "created": old_fp.created.isoformat(),
            "file": base_file,
        },
        "result": {
            "state": bo.system_state(new_fp, include, exclude, maps, side="new"),
            "volsers": [v.volser for v in new_fp.volumes],
            "created": new_fp.created.isoformat(),
            "file": None,
        },
        "filters": {"include": include, "exclude": exclude, "maps": maps},
    }
    operations = builder.operations()
    say(f"writing {len(operations)} operations")
    size = fmt.write_basket(out, header, operations, builder.payloads, key, compression=compression)
    t_end = time.perf_counter()

    counts: dict[str, int] = {}
    for op in operations:
        counts[op.kind] = counts.get(op.kind, 0) + 1
    return ExportResult(
        path=os.fspath(out),
        mode=mode,
        operations=len(operations),
        counts=counts,
        payloads=len(builder.payloads),
        payload_bytes=sum(len(p) for p in builder.payloads),
        content_bytes=sum(op.size for op in operations),
        bytes=size,
        seconds=t_end - t0,
        fingerprint_seconds=t_fp - t0,
        read_seconds=t_read - t_fp,
        write_seconds=t_end - t_read,
        base_state=header["base"]["state"] if header["base"] else None,
        result_state=header["result"]["state"],
        signed=bool(key),
        fingerprint=new_fp,
    )


# -- building operations --------------------------------------------------------------
def _dcb(ds: DatasetFp) -> dict:
    return {
        "dsorg": ds.dsorg,
        "recfm": ds.recfm,
        "lrecl": ds.lrecl,
        "blksize": ds.blksize,
        "keylen": ds.keylen,
    }


class _Builder:
    """Turns compare's entries into operations and payloads, reading the NEW images."""

    def __init__(self, old: Fingerprint, new: Fingerprint, maps: NameMaps, images: list[str]):
        self.old, self.new, self.maps, self.images = old, new, maps, images
        self.ds_ops: list[tuple[tuple, bo.Operation]] = []
        self.member_ops: list[tuple[tuple, bo.Operation]] = []
        self.payloads: list[bytes] = []
        self._payload_index: dict[bytes, int] = {}
        #: NEW volumes by volser, opened on first need (unchanged volumes stay shut).
        self._volumes: dict = {}
        self._paths = {v.volser: v.path for v in new.volumes}
        #: (volser, dsname) -> (volume, DatasetInfo, {member name: DirEntry}) on NEW
        self._directories: dict = {}
        self._infos: dict = {}

    def close(self) -> None:
        while self._volumes:
            _, vol = self._volumes.popitem()
            vol.close()

    def _volume(self, volser: str):
        vol = self._volumes.get(volser)
        if vol is None:
            path = self._paths.get(volser)
            candidates = [path] if path and os.path.exists(path) else []
            candidates += [p for p in self.images if p != path]
            for candidate in candidates:
                opened = api.open_volume(candidate)
                if opened.volser == volser:
                    vol = opened
                    break
                opened.close()
            if vol is None:
                raise ConflictError(f"volume {volser} is not among the images")
            self._volumes[volser] = vol
        return vol

    def _open(self, ds: DatasetFp):
        key = (ds.volser, ds.dsname)
        if key not in self._infos:
            vol = self._volume(ds.volser)
            self._infos[key] = (vol, vol.dataset(ds.dsname))
        return self._infos[key]

    def payload(self, data: bytes) -> int:
        """Index of ``data`` among the payloads (identical payloads are stored once)."""
        digest = blake3.blake3(data).digest()
        index = self._payload_index.get(digest)
        if index is None:
            index = len(self.payloads)
            self.payloads.append(data)
            self._payload_index[digest] = index
        return index

    # -- finding the data sets of an entry ------------------------------------------
    def _old_ds(self, name: str, volser: str | None) -> DatasetFp:
        ds = self.old.find(name, volser) or self.old.find(name)
        if ds is None:  # compare's entries name data sets of its inputs
            raise FormatError(f"{name} is not in the old fingerprint", where=volser or "")
        return ds

    def _new_ds(self, name: str, volser: str | None) -> DatasetFp:
        ds = self.new.find(name, volser) or self.new.find(name)
        if ds is None:
            raise FormatError(f"{name} is not in the new fingerprint", where=volser or "")
        return ds

    def _old_of(self, e: DatasetChange) -> DatasetFp:
        return self._old_ds(e.old_dsname or e.dsname, e.old_volser or e.volser)

    def refuse_unreadable(self, entries: list[DatasetChange]) -> None:
        bad = []
        for e in entries:
            if e.change == "deleted":
                continue
            ds = self._new_ds(e.dsname, e.volser)
            if ds.flags & (DS_TORN | DS_ERROR):
                bad.append(f"{ds.dsname} on {ds.volser} ({'torn' if ds.torn else 'damaged'})")
        if bad:
            raise ConflictError(
                "cannot export what was not read whole (export again once the writer "
                "has finished, or exclude them): " + ", ".join(bad)
            )

    # -- data sets ------------------------------------------------------------------
    def build(self, datasets: list[DatasetChange], members: list[MemberChange]) -> None:
        for e in datasets:
            self.dataset(e)
        for m in members:
            self.member(m)

    def _add_ds(self, op: bo.Operation) -> None:
        self.ds_ops.append(((_DS_ORDER[op.kind], op.dsname, op.volser), op))

    def dataset(self, e: DatasetChange) -> None:
        if e.change == "deleted":
            old = self._old_of(e)
            self._add_ds(
                bo.Operation(
                    seq=0,
                    kind="dataset.delete",
                    volser=old.volser,
                    dsname=old.dsname,
                    before=bo.dataset_state(self.old, old),
                )
            )
            return
        new = self._new_ds(e.dsname, e.volser)
        target_name = self.maps.backward(new.dsname)
        if e.change == "added":
            self._create(new, target_name, None)
            return
        old = self._old_of(e)
        if e.change == "renamed":
            self._add_ds(
                bo.Operation(
                    seq=0,
                    kind="dataset.rename",
                    volser=old.volser,
                    dsname=old.dsname,
                    new_name=target_name,
                    dcb=_dcb(new),
                    space=self._space(new),  # a rename may change the secondary too
                    before=bo.dataset_state(self.old, old),
                    after=bo.dataset_state(self.new, new),
                )
            )
        elif e.change == "attributes":
            self._add_ds(
                bo.Operation(
                    seq=0,
                    kind="dataset.attributes",
                    volser=old.volser,
                    dsname=old.dsname,
                    dcb=_dcb(new),
                    space=self._space(new),
                    before=bo.attribute_state(self.old, old),
                    after=bo.attribute_state(self.new, new),
                )
            )
        elif new.is_pds or old.is_pds:
            # DSORG changed (or a damaged PDS on the OLD side): replaced whole.
            self._create(new, old.dsname, old)
        else:
            self._content(old, new)

    def _space(self, ds: DatasetFp, dirblks: int = 0) -> dict:
        unit, primary, secondary = ds.space
        return {
            "unit": unit,
            "primary": primary,
            "secondary": secondary,
            "dirblks": dirblks,
            "tracks": ds.tracks,
        }

    def _create(self, new: DatasetFp, name: str, replaces: DatasetFp | None) -> None:
        vol, info = self._open(new)
        dirblks = 0
        if new.is_pds:
            pds = Pds(vol, new.dsname)
            # The directory is the data set's first blocks up to its EOF record.
            dirblks = sum(1 for _ in io.read_blocks(vol, info))
            images = self._members_of(vol, info, pds)
            data = bo.encode_members(images)
            size = sum(len(b.key) + len(b.data) for m in images for b in m.blocks)
        elif new.flags & DS_KEYED or new.dsorg != "PS":
            blocks = [bo.Block(b.tt << 8 | b.r, b.key, b.data) for b in io.read_blocks(vol, info)]
            data = bo.encode_blocks(blocks)
            size = sum(len(b.key) + len(b.data) for b in blocks)
        else:
            records = io.read_records(vol, info)
            data = encode_records(records)
            size = sum(len(r) for r in records)
        self._add_ds(
            bo.Operation(
                seq=0,
                kind="dataset.create",
                volser=replaces.volser if replaces is not None else new.volser,
                dsname=name,
                dcb=_dcb(new),
                space=self._space(new, dirblks),
                before=bo.dataset_state(self.old, replaces) if replaces is not None else None,
                after=bo.dataset_state(self.new, new),
                payload=self.payload(data),
                size=size,
            )
        )

    def _members_of(self, vol, info, pds: Pds) -> list[bo.MemberImage]:
        out = []
        for entry in pds.members():
            blocks = [] if entry.alias else self._member_blocks(vol, info, entry.ttr)
            out.append(
                bo.MemberImage(
                    name=entry.name,
                    alias=entry.alias,
                    ttr_count=entry.ttr_count,
                    userdata=bytes(entry.userdata),
                    alias_of=entry.alias_of,
                    blocks=blocks,
                )
            )
        return out

    @staticmethod
    def _member_blocks(vol, info, ttr: tuple[int, int]) -> list[bo.Block]:
        # A member runs from its TTR to the next EOF record: what read_blocks yields.
        return [bo.Block(b.tt << 8 | b.r, b.key, b.data) for b in io.read_blocks(vol, info, ttr)]

    def _content(self, old: DatasetFp, new: DatasetFp) -> None:
        op = bo.Operation(
            seq=0,
            kind="dataset.content",
            volser=old.volser,
            dsname=old.dsname,
            dcb=_dcb(new),
            # The after-state covers the secondary quantity, so a day that both
            # appends records and changes it must carry the new space as well.
            space=self._space(new),
            before=bo.dataset_state(self.old, old),
            after=bo.dataset_state(self.new, new),
        )
        edits = self._edits(old, new)
        vol, info = self._open(new)
        if edits is not None:
            op.kind = "dataset.records"
            read = []
            size = 0
            for old_range, new_range in edits:
                records = self._read_range(vol, info, new, *new_range)
                size += sum(len(r) for r in records)
                read.append(bo.RecordEdit(old_range[0], old_range[1], records))
            op.records = (edits[0][0][0], edits[-1][0][1])
            op.new_records = (edits[0][1][0], edits[-1][1][1])
            op.payload = self.payload(bo.encode_edits(read))
            op.size = size
        elif new.flags & DS_KEYED or new.dsorg != "PS":
            blocks = [bo.Block(b.tt << 8 | b.r, b.key, b.data) for b in io.read_blocks(vol, info)]
            op.payload = self.payload(bo.encode_blocks(blocks))
            op.size = sum(len(b.key) + len(b.data) for b in blocks)
        else:
            records = io.read_records(vol, info)
            start = self._appended(old, new, info, records)
            if start is not None:
                # Appended to: the OLD content is the prefix of the NEW (a log).
                op.kind = "dataset.records"
                op.records = (start, start)
                op.new_records = (start, len(records))
                tail = records[start:]
                op.payload = self.payload(bo.encode_edits([bo.RecordEdit(start, start, tail)]))
                op.size = sum(len(r) for r in tail)
            else:
                op.payload = self.payload(encode_records(records))
                op.size = sum(len(r) for r in records)
        self._add_ds(op)

    @staticmethod
    def _appended(old: DatasetFp, new: DatasetFp, info, records: list[bytes]) -> int | None:
        """OLD's record count when NEW's first records are exactly OLD's stream (records
        were only appended), else None.  Only OLD data sets without groups qualify: their
        content digest is the digest of their stream (fingerprint.md *Content digests*),
        so a prefix of NEW's stream with the same digest is OLD's content."""
        if old.flags & (DS_GROUPED | DS_KEYED | DS_TORN | DS_ERROR) or new.flags & DS_KEYED:
            return None
        if (old.recfm, old.lrecl, old.keylen) != (new.recfm, new.lrecl, new.keylen):
            return None
        n = old.records
        if n == 0 or n >= len(records):
            return None
        h = blake3.blake3()
        if rf.is_fixed(info.recfm_raw):
            head = records[:n]
            size = sum(map(len, head))
            h.update(b"".join(head))
        else:  # V, U: each record with its 4-byte big-endian length
            size = 0
            for r in records[:n]:
                h.update(len(r).to_bytes(4, "big"))
                h.update(r)
                size += 4 + len(r)
        if size != old.size or h.digest() != old.content:
            return None
        return n

    def _edits(
        self, old: DatasetFp, new: DatasetFp
    ) -> list[tuple[tuple[int, int], tuple[int, int]]] | None:
        """Record edits ``((old start, old stop), (new start, new stop))`` from the two
        group tables, or None when the data set must travel whole."""
        if not (old.flags & new.flags & DS_GROUPED) or old.flags & (DS_TORN | DS_ERROR):
            return None
        if (old.recfm, old.lrecl, old.keylen) != (new.recfm, new.lrecl, new.keylen):
            return None
        if new.keylen or new.dsorg != "PS":
            return None  # keyed blocks travel as blocks
        og, ng = old.group_rows, new.group_rows
        if not len(og) or not len(ng):
            return None
        a = [bytes(d) for d in og["digest"]]
        b = [bytes(d) for d in ng["digest"]]
        o_first = np.append(og["first"].astype(np.int64), old.records)
        n_first = np.append(ng["first"].astype(np.int64), new.records)
        matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
        edits = []
        for tag, i1, i2, j1, j2 in matcher.get_opcodes():
            if tag == "equal":
                continue
            edits.append(
                (
                    (int(o_first[i1]), int(o_first[i2])),
                    (int(n_first[j1]), int(n_first[j2])),
                )
            )
        if not edits:
            return None  # equal groups, different digest: trust neither, send it whole
        changed = sum(n1 - n0 for _, (n0, n1) in edits)
        if changed >= new.records:
            return None
        return edits

    def _read_range(self, vol, info, ds: DatasetFp, start: int, stop: int) -> list[bytes]:
        """NEW records ``[start, stop)``, both group boundaries: read from the block
        holding the group that starts at ``start`` up to the block holding the one
        that starts at ``stop`` (the fingerprint recorded each group's block and the
        stream bytes of that block before it), cut at those stream offsets, so a
        spanned record is read whole however its segments fall on blocks."""
        if stop <= start:
            return []
        where = f"{vol.volser} {ds.dsname}"
        first_ttr, first_skip = self._group_start(vol, ds, start)
        last = self._group_start(vol, ds, stop) if stop < ds.records else None
        datas: list[bytes] = []
        for blk in io.read_blocks(vol, info, (first_ttr >> 8, first_ttr & 0xFF)):
            data = blk.data
            at_end = last is not None and (blk.tt << 8 | blk.r) == last[0]
            if at_end:
                data, _ = bo.split_block(info.recfm_raw, data, last[1], where)
            if not datas:
                _, data = bo.split_block(info.recfm_raw, data, first_skip, where)
            datas.append(data)
            if at_end:
                break
        try:
            records = rf.deblock(info.recfm_raw, info.lrecl, [d for d in datas if d], where)
        except FormatError as exc:
            raise exc.located(vol.path) from None
        if len(records) != stop - start:
            raise FormatError(f"records {start}..{stop}: {len(records)} read", vol.path, where)
        return records

    @staticmethod
    def _group_start(vol, ds: DatasetFp, record: int) -> tuple[int, int]:
        """(TTR key of the block holding the group that starts at ``record``, stream
        bytes of that block before it)."""
        rows = ds.group_rows
        k = int(np.searchsorted(rows["first"], record))
        if k >= len(rows) or int(rows["first"][k]) != record:
            raise FormatError(
                f"record {record} does not start a group", vol.path, f"{vol.volser} {ds.dsname}"
            )
        return int(rows["ttr"][k]), int(rows["skip"][k])

    # -- members --------------------------------------------------------------------
    def member(self, m: MemberChange) -> None:
        old_ds = self.old.find(m.old_dsname or m.dsname)
        new_ds = self.new.find(m.dsname, m.volser) or self.new.find(m.dsname)
        if old_ds is None or new_ds is None:
            raise FormatError(f"{m.dsname}({m.member}): data set missing from a fingerprint")
        dsname, volser = old_ds.dsname, old_ds.volser
        old_name = m.old_member or m.member
        old_m = self.old.member(old_ds, old_name) if m.change != "added" else None
        new_m = self.new.member(new_ds, m.member) if m.change != "deleted" else None
        before = bo.member_state(old_m.content, old_m.attrs) if old_m is not None else None
        after = bo.member_state(new_m.content, new_m.attrs) if new_m is not None else None

        def add(kind: str, name: str, **kw) -> None:
            op = bo.Operation(seq=0, kind=kind, volser=volser, dsname=dsname, member=name, **kw)
            self.member_ops.append(((dsname, volser, _MEMBER_ORDER[kind], name), op))

        if m.change == "deleted":
            kind = "alias.delete" if old_m.is_alias else "member.delete"
            add(kind, old_name, before=before)
            return
        entry, blocks = self._entry(new_ds, m.member, want_blocks=not new_m.is_alias)
        userdata = dict(userdata=bytes(entry.userdata), ttr_count=entry.ttr_count)
        if m.change == "renamed":
            if new_m.is_alias or old_m.is_alias or (entry.ttr_count and old_m.attrs != new_m.attrs):
                # An alias, or a load module whose user data changed too: the TTRs in
                # it are relative to the source's blocks, so it is sent whole.
                add("alias.delete" if old_m.is_alias else "member.delete", old_name, before=before)
                self._put(add, new_ds, m.member, new_m, entry, blocks, None, after, userdata)
                return
            add(
                "member.rename", old_name, new_name=m.member, before=before, after=after, **userdata
            )
            return
        if new_m.is_alias:
            self._put(add, new_ds, m.member, new_m, entry, blocks, before, after, userdata)
            return
        if (
            m.change == "attributes"
            and old_m is not None
            and not old_m.is_alias
            and not entry.ttr_count
            and not old_m.ttr_count
        ):
            add("member.userdata", m.member, before=before, after=after, **userdata)
            return
        self._put(add, new_ds, m.member, new_m, entry, blocks, before, after, userdata)

    def _put(self, add, new_ds, name, new_m, entry, blocks, before, after, userdata) -> None:
        if new_m.is_alias:
            target = entry.alias_of or new_m.alias_of
            if not target:
                raise FormatError(f"alias {name} of {new_ds.dsname}: its member is not known")
            add("alias.put", name, before=before, after=after, alias_of=target, **userdata)
            return
        if blocks is None:
            _, blocks = self._entry(new_ds, name, want_blocks=True)
        size = sum(len(b.key) + len(b.data) for b in blocks)
        add(
            "member.put",
            name,
            before=before,
            after=after,
            payload=self.payload(bo.encode_blocks(blocks)),
            size=size,
            **userdata,
        )

    def _entry(self, ds: DatasetFp, name: str, want_blocks: bool):
        """The directory entry of member ``name`` on the NEW images and its blocks.

        A member without TTRs in its user data (text members, ISPF statistics) is
        taken from the fingerprint just made: its user data is stored as is and its
        first block's TTR is recorded, so its directory need not be read again.  Load
        modules need the TTRs of their user data as they are on the volume."""
        fm = self.new.member(ds, name)
        if fm is not None and fm.ttr_count == 0 and not fm.error:
            row = self.new.members[ds.mstart + self._member_row(ds, name)]
            ttr = int(row["ttr"])
            entry = DirEntry(
                fm.name,
                (ttr >> 8, ttr & 0xFF),
                alias=fm.is_alias,
                userdata=fm.userdata,
                alias_of=fm.alias_of,
            )
        else:
            key = (ds.volser, ds.dsname)
            if key not in self._directories:
                vol, _info = self._open(ds)
                self._directories[key] = {e.name: e for e in Pds(vol, ds.dsname).members()}
            entry = self._directories[key].get(name)
            if entry is None:
                raise ConflictError(
                    f"member {name} is gone from {ds.dsname} on {ds.volser} (changed since "
                    "it was fingerprinted?)"
                )
        if not want_blocks:
            return entry, None
        vol, info = self._open(ds)
        return entry, self._member_blocks(vol, info, entry.ttr)

    @staticmethod
    def _member_row(ds: DatasetFp, name: str) -> int:
        raw = name.encode("cp037").ljust(8, b"\x40")
        return int(np.searchsorted(ds.member_rows["name"], np.bytes_(raw)))

    # -- the manifest ---------------------------------------------------------------
    def operations(self) -> list[bo.Operation]:
        ordered = [op for _, op in sorted(self.ds_ops, key=lambda t: t[0])]
        ordered += [op for _, op in sorted(self.member_ops, key=lambda t: t[0])]
        for i, op in enumerate(ordered):
            op.seq = i
        return ordered


def encode_records(records: list[bytes]) -> bytes:
    """:func:`ssm.basket.ops.encode_records`, vectorised when every record has one
    length (FB data sets: millions of records)."""
    n = len(records)
    if n > 64:
        lengths = set(map(len, records[:64]))
        if len(lengths) == 1:
            width = lengths.pop()
            joined = b"".join(records)
            if len(joined) == n * width:
                arr = np.empty((n, 4 + width), dtype=np.uint8)
                arr[:, :4] = np.frombuffer(width.to_bytes(4, "little"), dtype=np.uint8)
                arr[:, 4:] = np.frombuffer(joined, dtype=np.uint8).reshape(n, width)
                return b"R1\x00\x00" + n.to_bytes(4, "little") + arr.tobytes()
    return bo.encode_records(records)


__all__ = ["ExportResult", "export", "empty_fingerprint", "encode_records"]
