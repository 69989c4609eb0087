"""Compare two fingerprints: what was added, deleted, changed, renamed between them.

Reads two :class:`ssm.model.Fingerprint` objects (docs/formats/fingerprint.md,
"Content digests" and "Attributes digests") and returns a :class:`Comparison`: a list
of data set entries and a list of member entries, each with one ``change``.

Semantics
=========

Pairing data sets
    A data set on OLD pairs with the data set of the same name on NEW; the volser does
    not matter (a data set moved to another volume is the same data set; placement is
    not content).  When one name is on several volumes of one side (uncataloged
    copies), those copies pair by volser, and if one copy is left on each side they
    pair with each other.  ``--map FROM=TO`` (:class:`ssm.patterns.NameMaps`) renames
    OLD's data sets before pairing: OLD ``FROM`` pairs with NEW ``TO``.  A map that
    makes two different OLD data sets take one name is refused (ConflictError).

Filters
    ``--include``/``--exclude`` (:class:`ssm.patterns.DsnFilter`) choose data sets by
    name before anything is compared.  A data set is looked at under both its names:
    its OLD and its NEW name for a pair, its own name and its name through the map
    (forwards for OLD, backwards for NEW) for the others.  It is kept when one of
    these names is included (or no ``--include`` was given) and none is excluded.

The change of one entry (exactly one per data set or member)
    ``added``      on NEW only (and not the target of a rename).
    ``deleted``    on OLD only (and not the source of a rename).
    ``changed``    on both sides and the content digests differ.  Content is the
                   logical records (RECFM U: the blocks; keys included), never their
                   placement or blocking.
    ``attributes`` on both sides, content identical, attributes differ.  For a data
                   set: DSORG, RECFM, LRECL, BLKSIZE, KEYLEN, space unit and secondary
                   quantity, compared field by field (``DATASET_ATTRIBUTES``).  For a
                   member: its attributes digest, i.e. its directory user data (ISPF
                   statistics, load module attributes; TTRs normalised), the alias flag
                   and the alias target.  ``attributes`` lists the names of the fields
                   that differ.
    ``renamed``    a deletion and an addition with the same content digest: for
                   members within one data set pair, for data sets anywhere in the
                   system.  The entry carries both names (``old_member`` /
                   ``old_dsname``) and replaces the delete and add entries; it also
                   lists any attributes that differ.  When several candidates share a
                   digest they pair in name order (the first deleted name with the first
                   added name, and so on), so the result is deterministic.  An alias
                   pairs only with an alias, a real member with a real member.  Torn or
                   damaged objects never pair.  Empty objects (no records) have no
                   content to be known by: an empty member pairs only with one carrying
                   identical, non-empty user data (ISPF statistics hold the time and
                   user of the save), an empty data set only with one occupying the very
                   same extents on the same volume with the same creation date.

Never a change by themselves: placement (volser, extents, TTRs, DSCB positions, the
TTRs counted in a directory entry's C byte), DS1LSTAR/DS1TRBAL, the allocated and used
tracks, the dates in the DSCB (created, expires, last referenced) and free space.  The
fingerprint's data set attributes digest covers some of these (tracks, dates), so data
set attributes are compared by the columns above, never by that digest.

Members
    Members are compared only between two paired partitioned data sets.  A data set
    added, deleted or renamed is one data set entry, never an entry per member; a PDS
    whose members changed has member entries, and a data set entry only when its own
    attributes changed (a member's ISPF statistics are the member's attributes, not the
    data set's).  A data set that turned from sequential to partitioned (or back) is a
    ``changed`` data set entry without member entries.  Aliases are directory entries
    like members: an alias added, deleted or pointed elsewhere is a member entry
    (``alias_of`` names its member); renaming a member makes its aliases
    ``attributes`` entries, as their target name changed.

Large sequential data sets
    A sequential data set whose stream reached 1 MiB has record groups (content-defined
    runs of records, each with its digest).  Its ``changed`` entry lists ``records``:
    the half-open ranges ``[start, stop)`` of 0-based record numbers on NEW covered by
    NEW groups whose digest is not among OLD's, touching ranges merged; and
    ``old_records``: the same for OLD's groups missing on NEW (records deleted or
    rewritten).  Ranges have group granularity: they cover every inserted or rewritten
    record and may cover some unchanged records around them.  A data set without
    groups on NEW has ``records`` None (the whole data set is the unit).

Torn or unreadable data sets
    A paired data set flagged torn or damaged on either side cannot be trusted, so it
    is reported ``changed`` with ``torn``/``error`` set and its members are not compared.

This is the ChangeLog semantics of ``fixtures/daysim.py`` (the ground truth the tests
compare with), except that ``records`` has group granularity and only large data sets
have it.

The hot path is vectorised (docs/internals.md; ARCHITECTURE "Bulk work is vectorised"):
members are matched by vectorised binary searches on (data set pair, member name) and
digests compared as ``u8`` words; only entries that differ become Python objects.
"""

from __future__ import annotations

import datetime as _dt
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from emulator.errors import ConflictError
from ssm.model import (
    DS_ERROR,
    DS_PDS,
    DS_TORN,
    M_ALIAS,
    M_ERROR,
    Fingerprint,
    digest_words,
    ebcdic_names,
)
from ssm.patterns import DsnFilter, NameMaps

CHANGES = ("added", "deleted", "changed", "attributes", "renamed")

#: Data set table columns that are its attributes, with the names the report uses.
#: Left out, as placement or bookkeeping rather than attributes: the allocated and used
#: tracks and extents (they change as data grows), the primary quantity (the DSCB does
#: not record it; the table's value comes from the first extent), the dates (creation,
#: expiry, last reference) and the volser.
DATASET_ATTRIBUTES = (
    ("dsorg", "dsorg"),
    ("recfm", "recfm"),
    ("lrecl", "lrecl"),
    ("blksize", "blksize"),
    ("keylen", "keylen"),
    ("space_unit", "space_unit"),
    ("secondary", "secondary"),
)


# -- result objects -------------------------------------------------------------------
@dataclass(frozen=True)
class DatasetChange:
    """One data set that differs.  ``dsname``/``volser`` name it on NEW (on OLD when
    deleted); ``old_dsname``/``old_volser`` name it on OLD when they differ."""

    dsname: str
    change: str
    volser: str
    dsorg: str = ""
    old_dsname: str | None = None
    old_volser: str | None = None
    attributes: tuple[str, ...] = ()
    records: tuple[tuple[int, int], ...] | None = None
    old_records: tuple[tuple[int, int], ...] | None = None
    torn: bool = False
    error: bool = False

    @property
    def sort_key(self) -> tuple:
        return (self.dsname, self.volser, self.change)

    def to_json(self) -> dict:
        return {
            "dsname": self.dsname,
            "change": self.change,
            "volser": self.volser,
            "dsorg": self.dsorg,
            "old_dsname": self.old_dsname,
            "old_volser": self.old_volser,
            "attributes": list(self.attributes),
            "records": None if self.records is None else [list(r) for r in self.records],
            "old_records": (
                None if self.old_records is None else [list(r) for r in self.old_records]
            ),
            "torn": self.torn,
            "error": self.error,
        }


@dataclass(frozen=True)
class MemberChange:
    """One member (or alias) that differs, in the data set pair named by ``dsname``
    (NEW's name; ``old_dsname`` is OLD's when ``--map`` paired different names)."""

    dsname: str
    member: str
    change: str
    volser: str
    old_member: str | None = None
    old_dsname: str | None = None
    alias_of: str | None = None
    attributes: tuple[str, ...] = ()

    @property
    def sort_key(self) -> tuple:
        return (self.dsname, self.member, self.change)

    def to_json(self) -> dict:
        return {
            "dsname": self.dsname,
            "member": self.member,
            "change": self.change,
            "volser": self.volser,
            "old_member": self.old_member,
            "old_dsname": self.old_dsname,
            "alias_of": self.alias_of,
            "attributes": list(self.attributes),
        }


@dataclass
class Side:
    """What a report says about one of the two fingerprints."""

    label: str
    created: _dt.datetime
    volumes: list[str]
    datasets: int
    members: int

    def to_json(self) -> dict:
        return {
            "label": self.label,
            "created": self.created.isoformat(),
            "volumes": self.volumes,
            "datasets": self.datasets,
            "members": self.members,
        }


@dataclass
class Comparison:
    """The result of :func:`compare`: entries sorted by name."""

    old: Side
    new: Side
    datasets: list[DatasetChange] = field(default_factory=list)
    members: list[MemberChange] = field(default_factory=list)
    compared_datasets: int = 0  # data set pairs looked at (after filters)
    compared_members: int = 0  # member pairs looked at

    @property
    def equal(self) -> bool:
        return not self.datasets and not self.members

    def counts(self) -> dict[str, dict[str, int]]:
        """``{"datasets": {change: n}, "members": {change: n}}`` with every change."""
        out = {}
        for label, entries in (("datasets", self.datasets), ("members", self.members)):
            c = Counter(e.change for e in entries)
            out[label] = {k: c.get(k, 0) for k in CHANGES}
        return out

    def to_json(self) -> dict:
        return {
            "equal": self.equal,
            "old": self.old.to_json(),
            "new": self.new.to_json(),
            "counts": self.counts(),
            "compared": {"datasets": self.compared_datasets, "members": self.compared_members},
            "datasets": [e.to_json() for e in self.datasets],
            "members": [e.to_json() for e in self.members],
        }


# -- pairing data sets ----------------------------------------------------------------
def _names(fp: Fingerprint) -> list[str]:
    return [n.decode("ascii") for n in fp.dataset_table["dsname"].tolist()]


def _volsers(fp: Fingerprint) -> list[str]:
    vols = [v.volser for v in fp.volumes]
    return [vols[int(i)] for i in fp.dataset_table["vol"].tolist()]


def _pair_datasets(
    old_names: list[str],
    old_vols: list[str],
    new_names: list[str],
    new_vols: list[str],
    maps: NameMaps,
) -> tuple[list[tuple[int, int]], list[int], list[int]]:
    """(pairs of row indices, OLD rows unpaired, NEW rows unpaired), by (mapped) name."""
    old_by: dict[str, list[int]] = defaultdict(list)
    origin: dict[str, str] = {}
    for i, name in enumerate(old_names):
        key = maps.forward(name) if maps else name
        first = origin.setdefault(key, name)
        if first != name:
            raise ConflictError(
                f"--map pairs both {first} and {name} on OLD with {key} on NEW; "
                "narrow the map or exclude one of them"
            )
        old_by[key].append(i)
    new_by: dict[str, list[int]] = defaultdict(list)
    for i, name in enumerate(new_names):
        new_by[name].append(i)
    pairs: list[tuple[int, int]] = []
    old_left: list[int] = []
    for key, olds in old_by.items():
        news = new_by.pop(key, [])
        if len(olds) == 1 and len(news) == 1:
            pairs.append((olds[0], news[0]))
            continue
        # The same name on several volumes: pair copies on the same volser first.
        by_vol = {new_vols[j]: j for j in news}
        rest_old = []
        for i in olds:
            j = by_vol.pop(old_vols[i], None)
            if j is None:
                rest_old.append(i)
            else:
                pairs.append((i, j))
        rest_new = sorted(by_vol.values())
        if len(rest_old) == 1 and len(rest_new) == 1:
            pairs.append((rest_old[0], rest_new[0]))
        else:
            old_left.extend(rest_old)
            new_by.setdefault(key, []).extend(rest_new)
    new_left = sorted(j for js in new_by.values() for j in js)
    return pairs, sorted(old_left), new_left


# -- helpers --------------------------------------------------------------------------
def _words_equal(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise equality of two digest columns (``V32``/``V16``) of the same length."""
    if len(a) == 0:
        return np.zeros(0, dtype=bool)
    return (digest_words(a) == digest_words(b)).all(axis=1)


def _merge_ranges(ranges: Iterable[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    """Half-open ranges sorted, with touching or overlapping ones merged."""
    out: list[list[int]] = []
    for start, stop in sorted(ranges):
        if out and start <= out[-1][1]:
            out[-1][1] = max(out[-1][1], stop)
        else:
            out.append([start, stop])
    return tuple((a, b) for a, b in out)


def _unmatched_groups(rows: np.ndarray, other: np.ndarray) -> tuple[tuple[int, int], ...]:
    """Record ranges of ``rows`` whose digests are not among ``other``'s (as a multiset)."""
    pool = Counter(bytes(d) for d in other["digest"])
    ranges = []
    for first, count, digest in zip(
        rows["first"].tolist(), rows["count"].tolist(), rows["digest"], strict=True
    ):
        key = bytes(digest)
        if pool[key] > 0:
            pool[key] -= 1
        elif count:
            ranges.append((first, first + count))
    return _merge_ranges(ranges)


def _dataset_attr_diff(old: Fingerprint, i: int, new: Fingerprint, j: int) -> tuple[str, ...]:
    a, b = old.dataset_table[i], new.dataset_table[j]
    return tuple(label for col, label in DATASET_ATTRIBUTES if a[col] != b[col])


def _member_attr_diffs(
    old: Fingerprint, rows_o: np.ndarray, new: Fingerprint, rows_n: np.ndarray
) -> list[tuple[str, ...]]:
    """For each pair of member rows: the names of the attributes that differ."""
    a, b = old.members[rows_o], new.members[rows_n]
    alias = (((a["flags"] ^ b["flags"]) & M_ALIAS) != 0).tolist()
    ttrn = (a["ttrn"] != b["ttrn"]).tolist()
    out = []
    for k, (i, j, alias_a, alias_b) in enumerate(
        zip(rows_o.tolist(), rows_n.tolist(), _alias_names(old, rows_o),
            _alias_names(new, rows_n), strict=True)
    ):  # fmt: skip
        diff = []
        if alias[k]:
            diff.append("alias")
        if alias_a != alias_b:
            diff.append("alias_of")
        if ttrn[k]:
            diff.append("ttr_count")
        if _userdata(old, a[k]) != _userdata(new, b[k]):
            both = old.member_fp(i).ispf is not None and new.member_fp(j).ispf is not None
            diff.append("ispf" if both else "userdata")
        out.append(tuple(diff))
    return out


def _userdata(fp: Fingerprint, row: np.void) -> bytes:
    off = int(row["udoff"])
    return fp.userdata[off : off + int(row["udlen"])]


def _member_names(fp: Fingerprint, rows: np.ndarray) -> list[str]:
    """The names of member ``rows`` as text."""
    return ebcdic_names(fp.members["name"][rows])


def _alias_names(fp: Fingerprint, rows: np.ndarray) -> list[str | None]:
    """For each of member ``rows``: the name of the member it is an alias of, or None."""
    r = fp.members[rows]
    target = r["alias_of"].astype(np.int64)
    real = ((r["flags"] & M_ALIAS) != 0) & (target >= 0)
    out: list[str | None] = [None] * len(rows)
    for k, name in zip(np.flatnonzero(real).tolist(), _member_names(fp, target[real]), strict=True):
        out[k] = name
    return out


def _match(
    opairs: np.ndarray,
    onames: np.ndarray,
    npairs: np.ndarray,
    nnames: np.ndarray,
    orow: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Find each NEW (pair, name) among OLD's: ``(at, hit, orow)``, OLD's keys and
    ``orow`` sorted by (pair, name) first if they are not (members come sorted by data
    set row, then name, and pairs are numbered in OLD's row order).

    A 16-byte key does not fit an integer, and NumPy searches 16-byte strings slowly,
    so the search has two integer steps: ``hi`` = pair (< 2^32: a row of a ``u4``
    column) and the name's first 4 bytes, OLD's runs of equal ``hi`` numbered 0, 1, ...;
    then run number and the name's last 4 bytes."""
    shift, low = np.uint64(32), np.uint64(0xFFFFFFFF)
    oname = np.ascontiguousarray(onames, dtype="S8").view(">u8").astype(np.uint64)
    nname = np.ascontiguousarray(nnames, dtype="S8").view(">u8").astype(np.uint64)
    if len(opairs) > 1:
        grows = opairs[1:] > opairs[:-1]
        same = opairs[1:] == opairs[:-1]
        if not bool(np.all(grows | (same & (oname[1:] >= oname[:-1])))):
            order = np.lexsort((oname, opairs))
            opairs, oname, orow = opairs[order], oname[order], orow[order]
    ohi = (opairs.astype(np.uint64) << shift) | (oname >> shift)
    if not len(ohi):
        return np.zeros(len(nname), dtype=np.int64), np.zeros(len(nname), dtype=bool), orow
    first = np.ones(len(ohi), dtype=bool)
    first[1:] = ohi[1:] != ohi[:-1]
    heads = ohi[first]
    okey = ((np.cumsum(first) - 1).astype(np.uint64) << shift) | (oname & low)
    nhi = (npairs.astype(np.uint64) << shift) | (nname >> shift)
    run = np.minimum(np.searchsorted(heads, nhi), len(heads) - 1)
    nkey = (run.astype(np.uint64) << shift) | (nname & low)
    at = np.searchsorted(okey, nkey)
    hit = (heads[run] == nhi) & (okey[np.minimum(at, len(okey) - 1)] == nkey)
    return at, hit, orow


def _side(fp: Fingerprint, label: str) -> Side:
    return Side(
        label=label,
        created=fp.created,
        volumes=[v.volser for v in fp.volumes],
        datasets=len(fp.dataset_table),
        members=len(fp.members),
    )


_NO_RENAME = object()


def _pair_renames(
    deleted: Sequence[tuple[object, str, int]], added: Sequence[tuple[object, str, int]]
) -> list[tuple[int, int]]:
    """Pair (key, name, row) deletions with additions of the same key, in name order.

    ``key`` groups candidates (content digest plus scope); ``_NO_RENAME`` keys
    never pair.  Returns (deleted row, added row) pairs."""
    by_key: dict[object, list[tuple[str, int]]] = defaultdict(list)
    for key, name, row in deleted:
        if key is not _NO_RENAME:
            by_key[key].append((name, row))
    pairs = []
    adds: dict[object, list[tuple[str, int]]] = defaultdict(list)
    for key, name, row in added:
        if key is not _NO_RENAME and key in by_key:
            adds[key].append((name, row))
    for key, news in adds.items():
        olds = sorted(by_key[key])
        for (_, orow), (_, nrow) in zip(olds, sorted(news), strict=False):
            pairs.append((orow, nrow))
    return pairs


# -- the comparison -------------------------------------------------------------------
def compare(
    old: Fingerprint,
    new: Fingerprint,
    include: Iterable[str] = (),
    exclude: Iterable[str] = (),
    maps: Iterable[str] = (),
    old_label: str = "OLD",
    new_label: str = "NEW",
) -> Comparison:
    """Compare fingerprint ``old`` with ``new`` (semantics: the module docstring).

    ``include``/``exclude`` are data set name patterns, ``maps`` ``FROM=TO`` rules
    (:mod:`ssm.patterns`; PatternError for a bad one).  The labels name the two sides
    in the report (usually the file names)."""
    flt = DsnFilter(include, exclude)
    name_maps = NameMaps(maps)
    result = Comparison(old=_side(old, old_label), new=_side(new, new_label))

    old_names, new_names = _names(old), _names(new)
    old_vols, new_vols = _volsers(old), _volsers(new)
    pairs, old_only, new_only = _pair_datasets(old_names, old_vols, new_names, new_vols, name_maps)
    if flt:
        pairs = [(i, j) for i, j in pairs if flt.passes(old_names[i], new_names[j])]
        old_only = [
            i for i in old_only if flt.passes(old_names[i], name_maps.forward(old_names[i]))
        ]
        new_only = [
            j for j in new_only if flt.passes(new_names[j], name_maps.backward(new_names[j]))
        ]
    result.compared_datasets = len(pairs)

    ot, nt = old.dataset_table, new.dataset_table
    ds_entries: list[DatasetChange] = []
    pds_pairs: list[tuple[int, int]] = []

    # -- paired data sets, vectorised over the pairs ----------------------------------
    if pairs:
        pi = np.fromiter((p[0] for p in pairs), dtype=np.int64, count=len(pairs))
        pj = np.fromiter((p[1] for p in pairs), dtype=np.int64, count=len(pairs))
        oflags, nflags = ot["flags"][pi], nt["flags"][pj]
        bad = ((oflags | nflags) & (DS_TORN | DS_ERROR)) != 0
        both_pds = ((oflags & DS_PDS) != 0) & ((nflags & DS_PDS) != 0)
        same_content = _words_equal(ot["content"][pi], nt["content"][pj])
        same_attrs = np.ones(len(pairs), dtype=bool)
        for col, _ in DATASET_ATTRIBUTES:
            same_attrs &= ot[col][pi] == nt[col][pj]
        content_changed = bad | (~same_content & ~both_pds)
        for k in np.flatnonzero(content_changed | ~same_attrs).tolist():
            i, j = pairs[k]
            ds_entries.append(_paired_entry(old, i, new, j, bool(content_changed[k])))
        good_pds = both_pds & ~bad
        pds_pairs = [pairs[k] for k in np.flatnonzero(good_pds).tolist()]

    # -- data sets on one side only, and renames among them ---------------------------
    def ds_key(fp: Fingerprint, row: int, vols: list[str]):
        r = fp.dataset_table[row]
        if int(r["flags"]) & (DS_TORN | DS_ERROR):
            return _NO_RENAME
        if int(r["size"]) == 0:
            # No content to know it by: only the very same tracks under a new name.
            extents = _extents(fp, row)
            if not extents:
                return _NO_RENAME
            return ("empty", vols[row], extents, int(r["created"]))
        return bytes(r["content"])

    renamed = _pair_renames(
        [(ds_key(old, i, old_vols), f"{old_names[i]} {old_vols[i]}", i) for i in old_only],
        [(ds_key(new, j, new_vols), f"{new_names[j]} {new_vols[j]}", j) for j in new_only],
    )
    gone = {i for i, _ in renamed}
    came = {j for _, j in renamed}
    for i, j in renamed:
        ds_entries.append(
            DatasetChange(
                dsname=new_names[j],
                change="renamed",
                volser=new_vols[j],
                dsorg=nt["dsorg"][j].decode("ascii"),
                old_dsname=old_names[i],
                old_volser=old_vols[i] if old_vols[i] != new_vols[j] else None,
                attributes=_dataset_attr_diff(old, i, new, j),
            )
        )
    for i in old_only:
        if i not in gone:
            ds_entries.append(
                DatasetChange(
                    old_names[i], "deleted", old_vols[i], dsorg=ot["dsorg"][i].decode("ascii")
                )
            )
    for j in new_only:
        if j not in came:
            ds_entries.append(
                DatasetChange(
                    new_names[j], "added", new_vols[j], dsorg=nt["dsorg"][j].decode("ascii")
                )
            )
    result.datasets = sorted(ds_entries, key=lambda e: e.sort_key)

    # -- members of paired partitioned data sets --------------------------------------
    members, compared = _compare_members(old, new, pds_pairs, old_names, new_names, new_vols)
    result.members = members
    result.compared_members = compared
    return result


def _extents(fp: Fingerprint, row: int) -> tuple[tuple[int, int], ...]:
    """(begin, end) absolute tracks of data set ``row``, from the extents table."""
    ext = fp.extents
    if not len(ext):
        return ()
    lo, hi = np.searchsorted(ext["ds"], [row, row + 1])
    return tuple(zip(ext["begin"][lo:hi].tolist(), ext["end"][lo:hi].tolist(), strict=True))


def _group_rows(fp: Fingerprint, row: int) -> np.ndarray:
    r = fp.dataset_table[row]
    start = int(r["gstart"])
    return fp.groups[start : start + int(r["gcount"])]


def _paired_entry(
    old: Fingerprint, i: int, new: Fingerprint, j: int, content_changed: bool
) -> DatasetChange:
    # Straight from the table rows: DatasetFp objects would be made for every data set.
    a, b = old.dataset_table[i], new.dataset_table[j]
    aflags, bflags = int(a["flags"]), int(b["flags"])
    torn = bool((aflags | bflags) & DS_TORN)
    error = bool((aflags | bflags) & DS_ERROR)
    records = old_records = None
    if content_changed and not (torn or error) and int(b["gcount"]):
        agroups, bgroups = _group_rows(old, i), _group_rows(new, j)
        records = _unmatched_groups(bgroups, agroups)
        old_records = _unmatched_groups(agroups, bgroups)
    old_name, new_name = a["dsname"].decode("ascii"), b["dsname"].decode("ascii")
    old_vol = old.volumes[int(a["vol"])].volser
    new_vol = new.volumes[int(b["vol"])].volser
    return DatasetChange(
        dsname=new_name,
        change="changed" if content_changed else "attributes",
        volser=new_vol,
        dsorg=b["dsorg"].decode("ascii"),
        old_dsname=old_name if old_name != new_name else None,
        old_volser=old_vol if old_vol != new_vol else None,
        attributes=_dataset_attr_diff(old, i, new, j),
        records=records,
        old_records=old_records,
        torn=torn,
        error=error,
    )


def _compare_members(
    old: Fingerprint,
    new: Fingerprint,
    pds_pairs: list[tuple[int, int]],
    old_names: list[str],
    new_names: list[str],
    new_vols: list[str],
) -> tuple[list[MemberChange], int]:
    """Member entries of the paired PDSs (the vectorised hot path) and the number of
    member pairs compared."""
    if not pds_pairs:
        return [], 0
    pds_pairs = sorted(pds_pairs)  # numbered in OLD's row order: OLD's keys come sorted
    npairs = len(pds_pairs)
    # Each side's data set row -> pair number (or -1: not compared).
    old_pair = np.full(len(old.dataset_table), -1, dtype=np.int64)
    new_pair = np.full(len(new.dataset_table), -1, dtype=np.int64)
    old_pair[[p[0] for p in pds_pairs]] = np.arange(npairs)
    new_pair[[p[1] for p in pds_pairs]] = np.arange(npairs)

    om, nm = old.members, new.members
    opk = old_pair[om["ds"]] if len(om) else np.zeros(0, dtype=np.int64)
    npk = new_pair[nm["ds"]] if len(nm) else np.zeros(0, dtype=np.int64)
    orow = np.flatnonzero(opk >= 0)
    nrow = np.flatnonzero(npk >= 0)

    at, hit, orow = _match(opk[orow], om["name"][orow], npk[nrow], nm["name"][nrow], orow)
    mo = orow[at[hit]]  # matched OLD member rows
    mn = nrow[hit]  # matched NEW member rows
    lone_old = np.ones(len(orow), dtype=bool)
    lone_old[at[hit]] = False
    del_rows = np.sort(orow[lone_old])
    add_rows = nrow[~hit]

    same_content = _words_equal(om["content"][mo], nm["content"][mn])
    same_attrs = _words_equal(om["attrs"][mo], nm["attrs"][mn])
    changed_k = np.flatnonzero(~same_content)
    attrs_k = np.flatnonzero(same_content & ~same_attrs)

    entries: list[MemberChange] = []
    # Text for the rows that differ only, decoded in bulk.
    where = []  # pair -> (NEW dsname, OLD dsname when it differs, NEW volser)
    for i, j in pds_pairs:
        where.append((new_names[j], old_names[i] if old_names[i] != new_names[j] else None,
                      new_vols[j]))  # fmt: skip

    def pair_of(fp_pair: np.ndarray, members: np.ndarray, rows: np.ndarray) -> list[int]:
        return fp_pair[members["ds"][rows]].tolist()

    for kind, ks in (("changed", changed_k), ("attributes", attrs_k)):
        rows_o, rows_n = mo[ks], mn[ks]
        attr_diffs = iter(
            _member_attr_diffs(old, rows_o[~same_attrs[ks]], new, rows_n[~same_attrs[ks]])
        )
        for pair, name, alias_of, same in zip(
            pair_of(old_pair, om, rows_o), _member_names(new, rows_n), _alias_names(new, rows_n),
            same_attrs[ks].tolist(), strict=True,
        ):  # fmt: skip
            dsname, olds, vol = where[pair]
            attrs = () if same else next(attr_diffs)
            entries.append(
                MemberChange(dsname, name, kind, vol, old_dsname=olds, alias_of=alias_of,
                             attributes=attrs)
            )  # fmt: skip

    # Renames: a deletion and an addition in the same pair with the same content.
    def member_keys(fp: Fingerprint, side_pair: np.ndarray, rows: np.ndarray) -> list:
        r = fp.members[rows]
        keys = []
        for pair, flags, size, udlen, content, attrs in zip(
            side_pair[r["ds"]].tolist(), r["flags"].tolist(), r["size"].tolist(),
            r["udlen"].tolist(), r["content"].tolist(), r["attrs"].tolist(), strict=True,
        ):  # fmt: skip
            if flags & M_ERROR:
                keys.append(_NO_RENAME)
            elif size == 0:
                # An empty member is known only by its user data (ISPF statistics carry
                # the time and user of the last save); without any, it never pairs.
                keys.append((pair, bool(flags & M_ALIAS), "empty", attrs) if udlen else _NO_RENAME)
            else:
                keys.append((pair, bool(flags & M_ALIAS), content))
        return keys

    del_names = _member_names(old, del_rows)
    add_names = _member_names(new, add_rows)
    del_list, add_list = del_rows.tolist(), add_rows.tolist()
    renamed = _pair_renames(
        list(zip(member_keys(old, old_pair, del_rows), del_names, del_list, strict=True)),
        list(zip(member_keys(new, new_pair, add_rows), add_names, add_list, strict=True)),
    )
    old_name_of = dict(zip(del_list, del_names, strict=True))
    new_name_of = dict(zip(add_list, add_names, strict=True))
    gone = {i for i, _ in renamed}
    came = {j for _, j in renamed}
    ren_o = np.array([i for i, _ in renamed], dtype=np.int64)
    ren_n = np.array([j for _, j in renamed], dtype=np.int64)
    for (i, j), pair, alias_of, attrs in zip(
        renamed, pair_of(new_pair, nm, ren_n), _alias_names(new, ren_n),
        _member_attr_diffs(old, ren_o, new, ren_n), strict=True,
    ):  # fmt: skip
        dsname, olds, vol = where[pair]
        entries.append(
            MemberChange(dsname, new_name_of[j], "renamed", vol, old_member=old_name_of[i],
                         old_dsname=olds, alias_of=alias_of, attributes=attrs)
        )  # fmt: skip
    for change, fp, side_pair, members, rows, names, done in (
        ("deleted", old, old_pair, om, del_rows, del_names, gone),
        ("added", new, new_pair, nm, add_rows, add_names, came),
    ):
        for row, pair, name, alias_of in zip(
            rows.tolist(),
            pair_of(side_pair, members, rows),
            names,
            _alias_names(fp, rows),
            strict=True,
        ):
            if row not in done:
                dsname, olds, vol = where[pair]
                entries.append(
                    MemberChange(dsname, name, change, vol, old_dsname=olds, alias_of=alias_of)
                )
    entries.sort(key=lambda e: e.sort_key)
    return entries, len(mo)


# -- the human report -----------------------------------------------------------------
def _ranges_text(ranges: Sequence[tuple[int, int]], limit: int = 6) -> str:
    parts = [f"{a}" if b == a + 1 else f"{a}-{b - 1}" for a, b in ranges[:limit]]
    if len(ranges) > limit:
        parts.append(f"... ({len(ranges) - limit} more)")
    return ", ".join(parts)


def _count_line(label: str, counts: dict[str, int]) -> str:
    return f"{label:<11}" + ", ".join(f"{counts[k]} {k}" for k in CHANGES)


def format_report(result: Comparison) -> list[str]:
    """The human report: both sides, the counts, then one line per entry."""
    lines = []
    for tag, side in (("OLD", result.old), ("NEW", result.new)):
        lines.append(
            f"{tag}: {side.label}  created {side.created.isoformat()}  "
            f"volumes {' '.join(side.volumes) or '-'}  "
            f"{side.datasets} data sets, {side.members} members"
        )
    counts = result.counts()
    lines.append("")
    lines.append(_count_line("Data sets:", counts["datasets"]))
    lines.append(_count_line("Members:", counts["members"]))
    if result.equal:
        lines.append("")
        lines.append(
            f"No differences ({result.compared_datasets} data sets and "
            f"{result.compared_members} members compared)."
        )
        return lines
    if result.datasets:
        lines.append("")
        lines.append(f"{'Change':<11} {'Data set':<44} {'Volser':<6} Details")
        for e in result.datasets:
            lines.append(
                f"{e.change:<11} {e.dsname:<44} {e.volser:<6} {dataset_details(e)}".rstrip()
            )
    if result.members:
        lines.append("")
        lines.append(f"{'Change':<11} {'Data set(member)':<54} Details")
        for m in result.members:
            name = f"{m.dsname}({m.member})"
            lines.append(f"{m.change:<11} {name:<54} {member_details(m)}".rstrip())
    return lines


def dataset_details(e: DatasetChange) -> str:
    """The details column of a data set entry in the human report."""
    bits = []
    if e.old_dsname:
        bits.append(f"from {e.old_dsname}")
    if e.old_volser:
        bits.append(f"was on {e.old_volser}")
    if e.torn:
        bits.append("torn read")
    if e.error:
        bits.append("unreadable")
    if e.attributes:
        bits.append("attributes: " + ",".join(e.attributes))
    if e.records:
        bits.append("records " + _ranges_text(e.records))
    if e.old_records:
        bits.append("old records " + _ranges_text(e.old_records))
    return "; ".join(bits)


def member_details(m: MemberChange) -> str:
    """The details column of a member entry in the human report."""
    bits = []
    if m.old_member:
        bits.append(f"from {m.old_member}")
    if m.old_dsname:
        bits.append(f"in {m.old_dsname} on OLD")
    if m.alias_of:
        bits.append(f"alias of {m.alias_of}")
    if m.attributes:
        bits.append("attributes: " + ",".join(m.attributes))
    return "; ".join(bits)


__all__ = [
    "CHANGES",
    "DatasetChange",
    "MemberChange",
    "Side",
    "Comparison",
    "compare",
    "format_report",
    "dataset_details",
    "member_details",
]
