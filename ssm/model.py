"""The in-memory form of a fingerprint (docs/formats/fingerprint.md).

A :class:`Fingerprint` holds the volumes (a few :class:`VolumeFp` objects), the data
sets (a NumPy table plus :class:`DatasetFp` objects made from it) and the members and
record groups as NumPy structured arrays only, so a system with a million members
loads and compares without a million Python objects.

Access API (what ``ssm compare`` and ``ssm show`` use)::

    fp = fpfile.read("day1.ssmfp")            # or fingerprint.fingerprint(paths)
    fp.volumes                                # list[VolumeFp]
    fp.datasets                               # list[DatasetFp], sorted by (volume, dsname)
    fp.dataset_table                          # ndarray DATASET_DTYPE, row i <-> fp.datasets[i]
    fp.members                                # ndarray MEMBER_DTYPE, sorted by (ds, name)
    fp.groups                                 # ndarray GROUP_DTYPE, sorted by (ds, first)
    fp.extents                                # ndarray EXTENT_DTYPE, sorted by (ds, seq)
    fp.userdata                               # bytes: normalised user data of all members
    ds = fp.find("SYS1.PARMLIB")              # DatasetFp or None (first volume that has it)
    ds.members                                # list[MemberFp] (made on demand, small PDS)
    ds.member_rows                            # ndarray view: fp.members[ds.mstart:ds.mstart+ds.mcount]
    fp.member(ds, "IEASYS00")                 # MemberFp or None (binary search)
    fp.member_fp(i)                           # MemberFp of row i of fp.members
    fp.to_json()                              # dict for `ssm show --json`

Vectorised comparison: ``fp.members["ds"]`` indexes ``fp.datasets``; data sets are
matched between two fingerprints by ``dsname`` (and volser where it matters), then
member rows by ``name`` (8 EBCDIC bytes, blank padded: the ``S8`` column sorts in
directory order).  ``content`` (32 bytes) and ``attrs`` (16 bytes) are ``V`` columns;
compare them with ``a["content"] == b["content"]`` on aligned rows, or view them as
``u8`` pairs via :func:`digest_words`.  ``key_of_names`` gives a ``>u8`` view of the
names for ``np.searchsorted``-style merges.

Digests are raw bytes here; :func:`digest_text` gives the ``blake3:<hex>`` form.
The ``ttr``/``span`` member columns and ``ttr``/``skip`` group columns are placement
(where a member or group starts on its volume), kept only so ``--since`` can reuse
what did not move; they take part in no digest and must not be compared.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

FORMAT_VERSION = 1
ALGORITHM = "blake3"
CONTENT_SIZE = 32  # BLAKE3-256
ATTRS_SIZE = 16  # BLAKE3 truncated to 128 bits: a comparison key (attributes are stored too)
ZERO_DIGEST = bytes(CONTENT_SIZE)
#: VolumeFp.sig_kind: what a track signature hashes (docs/formats/fingerprint.md,
#: "Track signatures").  ``slot``, the kind of earlier files, is never reused.
SIG_SLOT = "slot-xxh3"
SIG_STORED = "stored"

# -- flags ----------------------------------------------------------------------------
#: DatasetFp.flags
DS_PDS = 0x0001  # partitioned: content digest is over the members
DS_GROUPED = 0x0002  # content digest is the digest of the group table (stream >= 1 MiB)
DS_TORN = 0x0004  # the image changed while it was read, twice: digests not trustworthy
DS_ERROR = 0x0008  # the content could not be read (damaged chain, bad descriptor ...)
DS_NO_EOF = 0x0020  # no EOF record before the end of the allocated tracks
DS_KEYED = 0x0040  # blocks have keys (stream carries them)

#: MemberFp.flags
M_ALIAS = 0x01  # an alias entry (C byte X'80')
M_ISPF = 0x02  # user data decodes as ISPF statistics
M_ERROR = 0x04  # its TTR or block chain is damaged: content digest is zero
M_LOADMOD = 0x08  # user data holds TTRs (load module)

# -- tables ---------------------------------------------------------------------------
#: One row per data set.  Dates are proleptic ordinals (date.toordinal()), 0 = none.
DATASET_DTYPE = np.dtype(
    [
        ("vol", "<u2"),  # index into Fingerprint.volumes
        ("dsname", "S44"),  # ASCII data set name (upper case, no padding)
        ("dsorg", "S4"),  # "PS", "PO", "POU", "DA", "VS", ...
        ("recfm", "S8"),  # "FB", "VBA", "U", ...
        ("dsorg_raw", "<u2"),  # DS1DSORG
        ("recfm_raw", "u1"),  # DS1RECFM
        ("keylen", "u1"),  # DS1KEYL
        ("lrecl", "<u4"),  # DS1LRECL
        ("blksize", "<u4"),  # DS1BLKL
        ("space_unit", "S5"),  # "TRK", "CYL", "BLK", "ABSTR"
        ("primary", "<u4"),  # from the first extent (informational)
        ("secondary", "<u4"),  # DS1SCAL3
        ("tracks", "<u4"),  # allocated tracks (all extents)
        ("used_tracks", "<u4"),  # from DS1LSTAR
        ("nextents", "u1"),
        ("created", "<i4"),
        ("expires", "<i4"),
        ("referenced", "<i4"),  # recorded, not in the attributes digest
        ("flags", "<u2"),  # DS_*
        ("records", "<u8"),  # logical records (PDS: members incl. aliases)
        ("size", "<u8"),  # stream bytes (PDS: sum over real members)
        ("tracks_read", "<u4"),  # relative tracks 0..n-1 the content was read from (--since)
        ("mstart", "<u4"),  # first row in Fingerprint.members
        ("mcount", "<u4"),
        ("gstart", "<u4"),  # first row in Fingerprint.groups
        ("gcount", "<u4"),
        ("content", f"V{CONTENT_SIZE}"),
        ("attrs", f"V{ATTRS_SIZE}"),
    ]
)

#: One row per directory entry (aliases included).
MEMBER_DTYPE = np.dtype(
    [
        ("ds", "<u4"),  # index into Fingerprint.datasets
        ("name", "S8"),  # EBCDIC directory name, blank padded (sorts as the directory)
        ("flags", "u1"),  # M_*
        ("ttrn", "u1"),  # TTRs in the user data (C byte bits 1-2)
        ("udlen", "u1"),  # user data length (bytes)
        ("pad", "u1"),
        ("udoff", "<u4"),  # offset in Fingerprint.userdata
        ("alias_of", "<i4"),  # row of the main member, -1 = none / not found
        ("records", "<u4"),
        ("size", "<u8"),  # stream bytes
        # Placement, for --since only (in no digest): TT << 8 | R of the first block,
        # and the tracks from TT to the one holding the member's EOF record (0: unknown).
        ("ttr", "<u4"),
        ("span", "<u4"),
        ("content", f"V{CONTENT_SIZE}"),
        ("attrs", f"V{ATTRS_SIZE}"),
    ]
)

#: One row per record group of a grouped sequential data set.
GROUP_DTYPE = np.dtype(
    [
        ("ds", "<u4"),
        ("first", "<u8"),  # index of the group's first logical record
        ("count", "<u8"),  # records in the group
        ("offset", "<u8"),  # offset of the group in the stream
        ("size", "<u8"),  # stream bytes of the group
        # Placement, for --since only (in no digest): the block holding the group's
        # first record (TT << 8 | R) and the stream bytes of that block before it.
        ("ttr", "<u4"),
        ("skip", "<u4"),
        ("digest", f"V{CONTENT_SIZE}"),
    ]
)

#: One row per extent (absolute tracks, inclusive).
EXTENT_DTYPE = np.dtype([("ds", "<u4"), ("seq", "<u2"), ("begin", "<u4"), ("end", "<u4")])


def digest_text(raw: bytes | np.void) -> str:
    """``blake3:<hex>`` form of a digest."""
    return f"{ALGORITHM}:{bytes(raw).hex()}"


def digest_words(column: np.ndarray) -> np.ndarray:
    """A ``V32``/``V16`` digest column as an (n, 4)/(n, 2) ``u8`` array (for vectorised
    equality: ``(digest_words(a) == digest_words(b)).all(axis=1)``)."""
    n = len(column)
    width = column.dtype.itemsize // 8
    return np.ascontiguousarray(column).view("<u8").reshape(n, width)


def key_of_names(names: np.ndarray) -> np.ndarray:
    """An ``S8`` name column as big-endian ``u8`` keys (same order as the bytes)."""
    return np.ascontiguousarray(names).view(">u8")


def ebcdic_name(raw: bytes) -> str:
    """8 directory bytes -> the member name (trailing blanks dropped)."""
    return bytes(raw).rstrip(b"\x40").rstrip(b"\x00").decode("cp037")


def ebcdic_names(column: np.ndarray) -> list[str]:
    """:func:`ebcdic_name` of every name in an ``S8`` column, decoded in one call (cp037
    maps only X'40' to a blank and only X'00' to NUL, so stripping after decoding is
    the same)."""
    text = np.ascontiguousarray(column, dtype="S8").tobytes().decode("cp037")
    return [
        text[k : k + 8].rstrip("\x00").rstrip(" ").rstrip("\x00") for k in range(0, len(text), 8)
    ]


def _date(ordinal: int) -> _dt.date | None:
    return _dt.date.fromordinal(int(ordinal)) if ordinal > 0 else None


def date_ordinal(value: _dt.date | None) -> int:
    return value.toordinal() if value is not None else 0


# -- objects --------------------------------------------------------------------------
@dataclass
class VolumeFp:
    """One volume: identity, geometry and the raw track signatures used by ``--since``.

    ``track_sigs[trk]`` (uint64, one per track of the volume) is 0 for a track that
    was not read.  ``sig_kind``: :data:`SIG_SLOT` (XXH3 of a plain image's track bytes
    up to the end marker) or :data:`SIG_STORED` (CCKD: XXH3 of the stored, compressed
    bytes, seeded with their length); signatures of other kinds are never compared.
    ``size``/``mtime_ns`` are the image's generation marker at the end of the run
    (several files for a split volume: the first file's values).
    """

    volser: str
    devtype: str
    cyls: int
    heads: int
    trksize: int
    kind: str  # "ckd", "cckd", "cckd64"
    path: str
    size: int = 0
    mtime_ns: int = 0
    sig_kind: str = SIG_SLOT
    track_sigs: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype="<u8"), repr=False)
    #: The image's change map then, ``{"epoch": hex, "generation": n}``, when it was
    #: trusted for the whole run (docs/formats/changes.md); else None.
    changes: dict | None = None

    @property
    def total_tracks(self) -> int:
        return self.cyls * self.heads

    def to_json(self) -> dict:
        return {
            "volser": self.volser,
            "devtype": self.devtype,
            "cyls": self.cyls,
            "heads": self.heads,
            "trksize": self.trksize,
            "kind": self.kind,
            "path": self.path,
            "size": self.size,
            "mtime_ns": self.mtime_ns,
            "sig_kind": self.sig_kind,
            "tracks_read": int(np.count_nonzero(self.track_sigs)),
            **({"changes": self.changes} if self.changes is not None else {}),
        }


@dataclass
class MemberFp:
    """One directory entry of a PDS (made on demand from a row of ``Fingerprint.members``)."""

    name: str
    content: bytes
    attrs: bytes
    userdata: bytes  # normalised: TTRs counted by the C byte zeroed
    ttr_count: int
    is_alias: bool
    alias_of: str | None
    records: int
    size: int
    flags: int

    @property
    def ispf(self):
        """ISPF statistics decoded from the user data, or None."""
        if not self.flags & M_ISPF:
            return None
        from emulator.pds.ispf import IspfStats

        try:
            return IspfStats.decode(self.userdata)
        except Exception:  # recorded bytes that no longer decode: show them raw
            return None

    @property
    def error(self) -> bool:
        return bool(self.flags & M_ERROR)

    def to_json(self) -> dict:
        stats = self.ispf
        return {
            "name": self.name,
            "content": digest_text(self.content),
            "attrs": digest_text(self.attrs),
            "userdata": self.userdata.hex().upper(),
            "ttr_count": self.ttr_count,
            "alias": self.is_alias,
            "alias_of": self.alias_of,
            "records": self.records,
            "size": self.size,
            "ispf": stats.as_dict() if stats is not None else None,
            "error": self.error,
        }


@dataclass
class Group:
    """One record group: records ``first .. first+count-1``, stream bytes ``offset ..``."""

    first: int
    count: int
    offset: int
    size: int
    digest: bytes

    def to_json(self) -> dict:
        return {
            "first": self.first,
            "count": self.count,
            "offset": self.offset,
            "size": self.size,
            "digest": digest_text(self.digest),
        }


@dataclass
class DatasetFp:
    """One data set.  Members and groups are rows of the fingerprint's tables."""

    index: int
    volser: str
    dsname: str
    dsorg: str
    recfm: str
    dsorg_raw: int
    recfm_raw: int
    lrecl: int
    blksize: int
    keylen: int
    space: tuple[str, int, int]  # (unit, primary, secondary)
    tracks: int
    used_tracks: int
    extents: list[tuple[int, int]]  # absolute (begin, end), inclusive
    created: _dt.date | None
    expires: _dt.date | None
    referenced: _dt.date | None
    flags: int
    records: int
    size: int
    tracks_read: int
    content: bytes
    attrs: bytes
    mstart: int = 0
    mcount: int = 0
    gstart: int = 0
    gcount: int = 0
    owner: Fingerprint | None = field(default=None, repr=False, compare=False)

    @property
    def is_pds(self) -> bool:
        return bool(self.flags & DS_PDS)

    @property
    def torn(self) -> bool:
        return bool(self.flags & DS_TORN)

    @property
    def error(self) -> bool:
        return bool(self.flags & DS_ERROR)

    @property
    def member_rows(self) -> np.ndarray:
        if self.owner is None:
            return np.zeros(0, dtype=MEMBER_DTYPE)
        return self.owner.members[self.mstart : self.mstart + self.mcount]

    @property
    def members(self) -> list[MemberFp]:
        if self.owner is None:
            return []
        return [self.owner.member_fp(i) for i in range(self.mstart, self.mstart + self.mcount)]

    @property
    def group_rows(self) -> np.ndarray:
        if self.owner is None:
            return np.zeros(0, dtype=GROUP_DTYPE)
        return self.owner.groups[self.gstart : self.gstart + self.gcount]

    @property
    def groups(self) -> list[Group]:
        return [
            Group(
                int(r["first"]),
                int(r["count"]),
                int(r["offset"]),
                int(r["size"]),
                bytes(r["digest"]),
            )
            for r in self.group_rows
        ]

    def to_json(self, members: bool = True) -> dict:
        out = {
            "volser": self.volser,
            "dsname": self.dsname,
            "dsorg": self.dsorg,
            "recfm": self.recfm,
            "lrecl": self.lrecl,
            "blksize": self.blksize,
            "keylen": self.keylen,
            "space": {"unit": self.space[0], "primary": self.space[1], "secondary": self.space[2]},
            "tracks": self.tracks,
            "used_tracks": self.used_tracks,
            "extents": [list(e) for e in self.extents],
            "created": self.created.isoformat() if self.created else None,
            "expires": self.expires.isoformat() if self.expires else None,
            "referenced": self.referenced.isoformat() if self.referenced else None,
            "records": self.records,
            "size": self.size,
            "content": digest_text(self.content),
            "attrs": digest_text(self.attrs),
            "torn": self.torn,
            "error": self.error,
            "grouped": bool(self.flags & DS_GROUPED),
        }
        if self.is_pds and members:
            out["members"] = [m.to_json() for m in self.members]
        if self.gcount:
            out["groups"] = [g.to_json() for g in self.groups]
        return out


@dataclass
class Fingerprint:
    """A whole fingerprint: see the module docstring for the access API."""

    version: int
    created: _dt.datetime
    tool: str
    volumes: list[VolumeFp]
    dataset_table: np.ndarray
    members: np.ndarray
    groups: np.ndarray
    extents: np.ndarray
    userdata: bytes
    algorithm: str = ALGORITHM
    #: How the fingerprint was made (not written to the file): data sets read, reused
    #: from --since, torn, bytes read, seconds...
    stats: dict = field(default_factory=dict, repr=False, compare=False)
    _datasets: list[DatasetFp] | None = field(default=None, repr=False)
    _by_name: dict[str, list[int]] | None = field(default=None, repr=False)

    # -- data sets ----------------------------------------------------------------
    @property
    def datasets(self) -> list[DatasetFp]:
        if self._datasets is None:
            self._datasets = [self._dataset_fp(i) for i in range(len(self.dataset_table))]
        return self._datasets

    def _dataset_fp(self, i: int) -> DatasetFp:
        r = self.dataset_table[i]
        lo, hi = np.searchsorted(self.extents["ds"], [i, i + 1]) if len(self.extents) else (0, 0)
        ext_rows = self.extents[lo:hi]
        return DatasetFp(
            index=i,
            volser=self.volumes[int(r["vol"])].volser,
            dsname=r["dsname"].decode("ascii"),
            dsorg=r["dsorg"].decode("ascii"),
            recfm=r["recfm"].decode("ascii"),
            dsorg_raw=int(r["dsorg_raw"]),
            recfm_raw=int(r["recfm_raw"]),
            lrecl=int(r["lrecl"]),
            blksize=int(r["blksize"]),
            keylen=int(r["keylen"]),
            space=(r["space_unit"].decode("ascii"), int(r["primary"]), int(r["secondary"])),
            tracks=int(r["tracks"]),
            used_tracks=int(r["used_tracks"]),
            extents=[(int(e["begin"]), int(e["end"])) for e in ext_rows],
            created=_date(r["created"]),
            expires=_date(r["expires"]),
            referenced=_date(r["referenced"]),
            flags=int(r["flags"]),
            records=int(r["records"]),
            size=int(r["size"]),
            tracks_read=int(r["tracks_read"]),
            content=bytes(r["content"]),
            attrs=bytes(r["attrs"]),
            mstart=int(r["mstart"]),
            mcount=int(r["mcount"]),
            gstart=int(r["gstart"]),
            gcount=int(r["gcount"]),
            owner=self,
        )

    def find(self, dsname: str, volser: str | None = None) -> DatasetFp | None:
        """The data set named ``dsname`` (on ``volser`` if given), or None."""
        if self._by_name is None:
            index: dict[str, list[int]] = {}
            for i, name in enumerate(self.dataset_table["dsname"].tolist()):
                index.setdefault(name.decode("ascii"), []).append(i)
            self._by_name = index
        for i in self._by_name.get(dsname.strip().upper(), []):
            ds = self.datasets[i]
            if volser is None or ds.volser == volser.upper():
                return ds
        return None

    # -- members ------------------------------------------------------------------
    def member_fp(self, row: int) -> MemberFp:
        r = self.members[row]
        off, n = int(r["udoff"]), int(r["udlen"])
        alias_row = int(r["alias_of"])
        flags = int(r["flags"])
        alias_of = None
        if flags & M_ALIAS and alias_row >= 0:
            alias_of = ebcdic_name(self.members[alias_row]["name"])
        return MemberFp(
            name=ebcdic_name(r["name"]),
            content=bytes(r["content"]),
            attrs=bytes(r["attrs"]),
            userdata=self.userdata[off : off + n],
            ttr_count=int(r["ttrn"]),
            is_alias=bool(flags & M_ALIAS),
            alias_of=alias_of,
            records=int(r["records"]),
            size=int(r["size"]),
            flags=flags,
        )

    def member(self, ds: DatasetFp, name: str) -> MemberFp | None:
        """The member ``name`` of ``ds`` (binary search on the sorted rows), or None."""
        raw = name.strip().upper().encode("cp037")[:8].ljust(8, b"\x40")
        rows = ds.member_rows["name"]
        i = int(np.searchsorted(rows, np.bytes_(raw)))
        if i < len(rows) and rows[i] == raw:
            return self.member_fp(ds.mstart + i)
        return None

    def iter_members(self, ds: DatasetFp) -> Iterator[MemberFp]:
        for i in range(ds.mstart, ds.mstart + ds.mcount):
            yield self.member_fp(i)

    # -- output -------------------------------------------------------------------
    def to_json(self, members: bool = True) -> dict:
        """The document ``ssm show --json`` prints (stable, sortable keys)."""
        return {
            "format": self.version,
            "algorithm": self.algorithm,
            "created": self.created.isoformat(),
            "tool": self.tool,
            "volumes": [v.to_json() for v in self.volumes],
            "datasets": [d.to_json(members) for d in self.datasets],
        }


def empty_tables() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(datasets, members, groups, extents) with no rows."""
    return (
        np.zeros(0, dtype=DATASET_DTYPE),
        np.zeros(0, dtype=MEMBER_DTYPE),
        np.zeros(0, dtype=GROUP_DTYPE),
        np.zeros(0, dtype=EXTENT_DTYPE),
    )


__all__ = [
    "FORMAT_VERSION",
    "ALGORITHM",
    "DATASET_DTYPE",
    "MEMBER_DTYPE",
    "GROUP_DTYPE",
    "EXTENT_DTYPE",
    "Fingerprint",
    "VolumeFp",
    "DatasetFp",
    "MemberFp",
    "Group",
    "digest_text",
    "digest_words",
    "key_of_names",
    "ebcdic_name",
    "ebcdic_names",
    "date_ordinal",
    "empty_tables",
    "DS_PDS",
    "DS_GROUPED",
    "DS_TORN",
    "DS_ERROR",
    "DS_NO_EOF",
    "DS_KEYED",
    "M_ALIAS",
    "M_ISPF",
    "M_ERROR",
    "M_LOADMOD",
]
