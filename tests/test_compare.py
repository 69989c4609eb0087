"""ssm.compare: every change kind on hand-built fingerprints, then end to end.

Hand-built fingerprints come from :func:`build_fp`, which fills the model's tables
(ssm.model DATASET_DTYPE, MEMBER_DTYPE, GROUP_DTYPE) directly, the way the bulk
constructors do; digests there are SHA-256 of the given bytes (compare only tests
digests for equality, so the algorithm does not matter).  The end-to-end tests build a
tiny system with fixtures.generate, fingerprint it, simulate a day with
fixtures.daysim, fingerprint again and check that the comparison equals the day's
ChangeLog exactly.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
from dataclasses import dataclass, field

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emulator.errors import ConflictError
from ssm import model
from ssm.compare import compare, format_report
from ssm.patterns import PatternError

T0 = _dt.datetime(2024, 5, 1, 2, 0, tzinfo=_dt.UTC)


# -- hand-built fingerprints ----------------------------------------------------------
def digest(data: bytes, size: int = 32) -> bytes:
    return hashlib.sha256(data).digest()[:size]


@dataclass
class M:
    """A member for :func:`build_fp`: name, content bytes, user data, alias target."""

    name: str
    content: bytes = b""
    userdata: bytes = b""
    alias_of: str | None = None
    error: bool = False


@dataclass
class D:
    """A data set for :func:`build_fp`."""

    dsname: str
    volser: str = "VOL001"
    dsorg: str = "PO"
    content: bytes = b""  # sequential data sets
    members: list[M] = field(default_factory=list)
    groups: list[tuple[int, bytes]] | None = None  # (record count, bytes) per group
    recfm: str = "FB"
    lrecl: int = 80
    blksize: int = 3120
    tracks: int = 15
    secondary: int = 5
    created: int = 738000
    torn: bool = False
    extents: list[tuple[int, int]] = field(default_factory=list)  # absolute (begin, end)


def build_fp(datasets: list[D], created: _dt.datetime = T0) -> model.Fingerprint:
    """A Fingerprint with the given data sets (sorted as the model wants)."""
    vols = sorted({d.volser for d in datasets})
    datasets = sorted(datasets, key=lambda d: (vols.index(d.volser), d.dsname))
    dt = np.zeros(len(datasets), dtype=model.DATASET_DTYPE)
    member_rows, group_rows, extent_rows = [], [], []
    for i, d in enumerate(datasets):
        extent_rows += [(i, seq, b, e) for seq, (b, e) in enumerate(d.extents)]
        r = dt[i]
        r["vol"] = vols.index(d.volser)
        r["dsname"] = d.dsname.encode()
        r["dsorg"] = d.dsorg.encode()
        r["recfm"] = d.recfm.encode()
        r["lrecl"], r["blksize"], r["tracks"] = d.lrecl, d.blksize, d.tracks
        r["space_unit"], r["secondary"], r["created"] = b"TRK", d.secondary, d.created
        flags = model.DS_TORN if d.torn else 0
        attrs = f"{d.dsorg}|{d.recfm}|{d.lrecl}|{d.blksize}|{d.tracks}|{d.secondary}|{d.created}"
        if d.dsorg == "PO":
            flags |= model.DS_PDS
            r["mstart"], r["mcount"] = len(member_rows), len(d.members)
            by_name = {m.name: m for m in d.members}
            names = sorted(d.members, key=lambda m: m.name.encode("cp037").ljust(8, b"\x40"))
            rows_of = {m.name: len(member_rows) + k for k, m in enumerate(names)}
            pds_content = b""
            pds_attrs = attrs.encode()
            for m in names:
                base = by_name[m.alias_of] if m.alias_of else m
                mrow = np.zeros(1, dtype=model.MEMBER_DTYPE)[0]
                mrow["ds"] = i
                mrow["name"] = m.name.encode("cp037").ljust(8, b"\x40")
                mrow["flags"] = (model.M_ALIAS if m.alias_of else 0) | (
                    model.M_ERROR if m.error else 0
                )
                mrow["alias_of"] = rows_of[m.alias_of] if m.alias_of else -1
                mrow["size"] = len(base.content)
                mrow["records"] = len(base.content) // 80
                mrow["content"] = np.void(digest(base.content))
                mattrs = digest(
                    b"%d|%s|%s" % (bool(m.alias_of), m.userdata, (m.alias_of or "").encode()), 16
                )
                mrow["attrs"] = np.void(mattrs)
                member_rows.append((mrow, m.userdata))
                pds_content += m.name.encode() + digest(base.content)
                pds_attrs += mattrs
            r["content"] = np.void(digest(pds_content))
            r["attrs"] = np.void(digest(pds_attrs, 16))
            r["size"] = sum(len(m.content) for m in d.members if not m.alias_of)
        else:
            r["size"] = len(d.content) if d.groups is None else sum(len(b) for _, b in d.groups)
            if d.groups is not None:
                r["gstart"], r["gcount"] = len(group_rows), len(d.groups)
                first = offset = 0
                table = b""
                for count, data in d.groups:
                    g = np.zeros(1, dtype=model.GROUP_DTYPE)[0]
                    g["ds"], g["first"], g["count"] = i, first, count
                    g["offset"], g["size"] = offset, len(data)
                    g["digest"] = np.void(digest(data))
                    group_rows.append(g)
                    table += digest(data)
                    first += count
                    offset += len(data)
                flags |= model.DS_GROUPED
                r["records"] = first
                r["content"] = np.void(digest(table))
            else:
                r["content"] = np.void(digest(d.content))
                r["records"] = len(d.content) // 80
            r["attrs"] = np.void(digest(attrs.encode(), 16))
        r["flags"] = flags
    members = np.zeros(len(member_rows), dtype=model.MEMBER_DTYPE)
    userdata = b""
    for k, (mrow, ud) in enumerate(member_rows):
        members[k] = mrow
        members[k]["udoff"], members[k]["udlen"] = len(userdata), len(ud)
        userdata += ud
    groups = np.zeros(len(group_rows), dtype=model.GROUP_DTYPE)
    for k, g in enumerate(group_rows):
        groups[k] = g
    volumes = [
        model.VolumeFp(
            volser=v,
            devtype="3390",
            cyls=10,
            heads=15,
            trksize=56832,
            kind="ckd",
            path=f"{v}.3390",
            track_sigs=np.zeros(150, dtype="<u8"),
        )
        for v in vols
    ]
    return model.Fingerprint(
        version=model.FORMAT_VERSION,
        created=created,
        tool="test",
        volumes=volumes,
        dataset_table=dt,
        members=members,
        groups=groups,
        extents=np.array(extent_rows, dtype=model.EXTENT_DTYPE),
        userdata=userdata,
    )


def text(n: int, seed: str = "x") -> bytes:
    return b"".join(f"{seed} line {k}".ljust(80).encode() for k in range(n))


def base_system() -> list[D]:
    return [
        D(
            "SYS1.PARMLIB",
            members=[
                M("IEASYS00", text(5, "ieasys"), b"\x01\x00"),
                M("LNKLST00", text(3, "lnklst"), b"\x01\x00"),
                M("PROGA0", text(4, "proga")),
                M("ALIAS1", alias_of="PROGA0"),
            ],
        ),
        D("USER.CNTL", "VOL002", members=[M("JOB1", text(2, "job1")), M("JOB2", text(2, "job2"))]),
        D("USER.DATA", "VOL002", dsorg="PS", content=text(10, "data")),
        D("USER.EMPTY", "VOL002", dsorg="PS", content=b""),
    ]


def changes(result) -> tuple[set, set]:
    ds = {(e.dsname, e.change) for e in result.datasets}
    mem = {(e.dsname, e.member, e.change) for e in result.members}
    return ds, mem


def mutate(datasets: list[D], dsname: str):
    return next(d for d in datasets if d.dsname == dsname)


# -- every change kind ----------------------------------------------------------------
def test_identical_is_equal():
    old, new = build_fp(base_system()), build_fp(base_system())
    result = compare(old, new)
    assert result.equal
    assert result.compared_datasets == 4 and result.compared_members == 6
    assert result.counts()["members"]["changed"] == 0
    assert "No differences" in format_report(result)[-1]


def test_same_content_elsewhere_is_equal():
    """Placement is not content: other volsers, extents and table order."""
    moved = base_system()
    for d in moved:
        d.volser = "NEWVOL" if d.volser == "VOL001" else "AAAVOL"
    assert compare(build_fp(base_system()), build_fp(moved)).equal


def test_member_changes_each_kind():
    new = base_system()
    parm = mutate(new, "SYS1.PARMLIB")
    parm.members = [
        M("IEASYS00", text(6, "ieasys"), b"\x01\x00"),  # content changed
        M("LNKLST00", text(3, "lnklst"), b"\x01\x01"),  # attributes (user data) only
        M("PROGB0", text(4, "proga")),  # PROGA0 renamed (same content)
        M("ALIAS1", alias_of="PROGB0"),  # its alias now points at the new name
        M("NEWMEM", text(1, "new")),  # added
    ]
    cntl = mutate(new, "USER.CNTL")
    cntl.members = [M("JOB1", text(2, "job1"))]  # JOB2 deleted
    result = compare(build_fp(base_system()), build_fp(new))
    ds, mem = changes(result)
    assert ds == set()
    assert mem == {
        ("SYS1.PARMLIB", "IEASYS00", "changed"),
        ("SYS1.PARMLIB", "LNKLST00", "attributes"),
        ("SYS1.PARMLIB", "PROGB0", "renamed"),
        ("SYS1.PARMLIB", "ALIAS1", "attributes"),
        ("SYS1.PARMLIB", "NEWMEM", "added"),
        ("USER.CNTL", "JOB2", "deleted"),
    }
    by = {(m.member, m.change): m for m in result.members}
    assert by["PROGB0", "renamed"].old_member == "PROGA0"
    assert by["LNKLST00", "attributes"].attributes == ("userdata",)
    assert by["ALIAS1", "attributes"].alias_of == "PROGB0"
    assert "alias_of" in by["ALIAS1", "attributes"].attributes
    assert by["JOB2", "deleted"].volser == "VOL002"
    assert not result.equal
    assert result.counts()["members"] == {
        "added": 1,
        "deleted": 1,
        "changed": 1,
        "attributes": 2,
        "renamed": 1,
    }


def test_alias_added_and_deleted():
    new = base_system()
    parm = mutate(new, "SYS1.PARMLIB")
    parm.members = [m for m in parm.members if m.name != "ALIAS1"]
    parm.members.append(M("ALIAS2", alias_of="IEASYS00"))
    result = compare(build_fp(base_system()), build_fp(new))
    got = {(m.member, m.change, m.alias_of) for m in result.members}
    # An alias is never paired with a real member or an alias of other content.
    assert got == {("ALIAS1", "deleted", "PROGA0"), ("ALIAS2", "added", "IEASYS00")}


def test_rename_pairing_is_deterministic():
    same = text(3, "same")
    old = [D("A.PDS", members=[M("OLD1", same), M("OLD2", same), M("OLD3", same)])]
    new = [D("A.PDS", members=[M("NEW2", same), M("NEW1", same)])]
    result = compare(build_fp(old), build_fp(new))
    got = sorted((m.change, m.member, m.old_member) for m in result.members)
    assert got == [
        ("deleted", "OLD3", None),
        ("renamed", "NEW1", "OLD1"),
        ("renamed", "NEW2", "OLD2"),
    ]


def test_empty_and_damaged_members_never_pair_as_renames():
    old = [D("A.PDS", members=[M("E1", b""), M("BAD1", text(1), error=True)])]
    new = [D("A.PDS", members=[M("E2", b""), M("BAD2", text(1), error=True)])]
    result = compare(build_fp(old), build_fp(new))
    assert sorted((m.member, m.change) for m in result.members) == [
        ("BAD1", "deleted"),
        ("BAD2", "added"),
        ("E1", "deleted"),
        ("E2", "added"),
    ]


def test_members_are_not_paired_across_data_sets():
    same = text(2, "moved")
    old = [D("A.PDS", members=[M("X", same)]), D("B.PDS", members=[])]
    new = [D("A.PDS", members=[]), D("B.PDS", members=[M("X", same)])]
    _, mem = changes(compare(build_fp(old), build_fp(new)))
    assert mem == {("A.PDS", "X", "deleted"), ("B.PDS", "X", "added")}


def test_dataset_changes_each_kind():
    new = base_system()
    mutate(new, "USER.DATA").content = text(11, "data")  # changed
    mutate(new, "USER.EMPTY").blksize = 800  # attributes only
    cntl = mutate(new, "USER.CNTL")
    cntl.dsname = "USER.CNTL.NEW"  # renamed (same members, same content)
    new.append(D("USER.ADDED", dsorg="PS", content=text(1, "added")))  # added
    new = [d for d in new if d.dsname != "SYS1.PARMLIB"]  # deleted
    result = compare(build_fp(base_system()), build_fp(new))
    ds, mem = changes(result)
    assert ds == {
        ("USER.DATA", "changed"),
        ("USER.EMPTY", "attributes"),
        ("USER.CNTL.NEW", "renamed"),
        ("USER.ADDED", "added"),
        ("SYS1.PARMLIB", "deleted"),
    }
    # A data set added or deleted is one entry, not one per member.
    assert mem == set()
    by = {e.dsname: e for e in result.datasets}
    assert by["USER.CNTL.NEW"].old_dsname == "USER.CNTL"
    assert by["USER.EMPTY"].attributes == ("blksize",)
    assert by["USER.DATA"].records is None  # not grouped: the data set is the unit


def test_dataset_renamed_across_volumes():
    old = [D("A.DATA", "VOL001", dsorg="PS", content=text(3, "a"))]
    new = [D("B.DATA", "VOL002", dsorg="PS", content=text(3, "a"))]
    (e,) = compare(build_fp(old), build_fp(new)).datasets
    assert (e.change, e.dsname, e.old_dsname, e.volser, e.old_volser) == (
        "renamed",
        "B.DATA",
        "A.DATA",
        "VOL002",
        "VOL001",
    )


def test_empty_datasets_pair_only_on_the_same_tracks():
    old = [D("A.EMPTY", dsorg="PS", extents=[(30, 44)])]
    new = [D("B.EMPTY", dsorg="PS", extents=[(45, 59)])]
    ds, _ = changes(compare(build_fp(old), build_fp(new)))
    assert ds == {("A.EMPTY", "deleted"), ("B.EMPTY", "added")}
    # The very same tracks on the same volume, created the same day: renamed.
    new = [D("B.EMPTY", dsorg="PS", extents=[(30, 44)])]
    (e,) = compare(build_fp(old), build_fp(new)).datasets
    assert (e.change, e.dsname, e.old_dsname) == ("renamed", "B.EMPTY", "A.EMPTY")
    new = [D("B.EMPTY", "VOL002", dsorg="PS", extents=[(30, 44)])]
    ds, _ = changes(compare(build_fp(old), build_fp(new)))
    assert ds == {("A.EMPTY", "deleted"), ("B.EMPTY", "added")}


def test_pds_attribute_change_without_member_changes():
    new = base_system()
    mutate(new, "USER.CNTL").secondary = 30
    result = compare(build_fp(base_system()), build_fp(new))
    assert [(e.dsname, e.change, e.attributes) for e in result.datasets] == [
        ("USER.CNTL", "attributes", ("secondary",))
    ]
    assert result.members == []


def test_growth_and_dates_are_not_changes():
    """Allocated tracks (extents added as data grows) and DSCB dates are bookkeeping."""
    new = base_system()
    mutate(new, "USER.CNTL").tracks = 30
    mutate(new, "USER.DATA").tracks = 45
    mutate(new, "USER.EMPTY").created = 739000
    assert compare(build_fp(base_system()), build_fp(new)).equal


def test_member_attributes_do_not_make_a_dataset_entry():
    new = base_system()
    mutate(new, "USER.CNTL").members[0].userdata = b"\x02"
    result = compare(build_fp(base_system()), build_fp(new))
    assert result.datasets == []
    assert [(m.member, m.change) for m in result.members] == [("JOB1", "attributes")]


def test_ps_to_pds_is_a_changed_dataset():
    old = [D("A.X", dsorg="PS", content=text(2))]
    new = [D("A.X", dsorg="PO", members=[M("A", text(2))])]
    result = compare(build_fp(old), build_fp(new))
    assert [(e.dsname, e.change) for e in result.datasets] == [("A.X", "changed")]
    assert "dsorg" in result.datasets[0].attributes
    assert result.members == []


def test_torn_dataset_is_changed_and_members_skipped():
    new = base_system()
    parm = mutate(new, "SYS1.PARMLIB")
    parm.torn = True
    parm.members[0].content = text(9)
    result = compare(build_fp(base_system()), build_fp(new))
    (e,) = result.datasets
    assert (e.dsname, e.change, e.torn) == ("SYS1.PARMLIB", "changed", True)
    assert result.members == []


def test_grouped_sequential_record_ranges():
    groups = [(100, text(100, f"g{k}")) for k in range(6)]
    changed = list(groups)
    changed[1] = (100, text(100, "changed1"))
    changed[2] = (100, text(100, "changed2"))
    changed[5] = (100, text(100, "changed5"))
    old = [D("BIG.LOG", dsorg="PS", groups=groups)]
    new = [D("BIG.LOG", dsorg="PS", groups=changed)]
    (e,) = compare(build_fp(old), build_fp(new)).datasets
    assert e.change == "changed"
    # Half-open [start, stop) record ranges of the groups that differ.
    assert e.records == ((100, 300), (500, 600))
    assert e.old_records == ((100, 300), (500, 600))
    # Records inserted at the front: later groups realign, only the new group differs.
    inserted = [(50, text(50, "front"))] + groups
    (e,) = compare(build_fp(old), build_fp([D("BIG.LOG", dsorg="PS", groups=inserted)])).datasets
    assert e.records == ((0, 50),) and e.old_records == ()


def test_duplicate_names_pair_by_volser():
    old = [
        D("DUP.DATA", "VOL001", dsorg="PS", content=text(1, "one")),
        D("DUP.DATA", "VOL002", dsorg="PS", content=text(1, "two")),
    ]
    new = [
        D("DUP.DATA", "VOL002", dsorg="PS", content=text(1, "two")),
        D("DUP.DATA", "VOL001", dsorg="PS", content=text(1, "ONE")),
    ]
    result = compare(build_fp(old), build_fp(new))
    assert [(e.dsname, e.volser, e.change) for e in result.datasets] == [
        ("DUP.DATA", "VOL001", "changed")
    ]


# -- filters and maps -----------------------------------------------------------------
def test_include_exclude():
    new = base_system()
    mutate(new, "USER.DATA").content = text(11, "data")
    mutate(new, "SYS1.PARMLIB").members[0].content = text(1)
    old_fp, new_fp = build_fp(base_system()), build_fp(new)
    ds, mem = changes(compare(old_fp, new_fp, include=["USER.**"]))
    assert ds == {("USER.DATA", "changed")} and mem == set()
    ds, mem = changes(compare(old_fp, new_fp, exclude=["USER.D*"]))
    assert ds == set() and mem == {("SYS1.PARMLIB", "IEASYS00", "changed")}
    assert compare(old_fp, new_fp, include=["SYS1.*"], exclude=["**.PARMLIB"]).equal
    with pytest.raises(PatternError):
        compare(old_fp, new_fp, include=["SYS1**"])


def test_map_pairs_renamed_environments():
    old = [
        D("SYS1.PARMLIB", members=[M("A", text(1, "a")), M("B", text(1, "b"))]),
        D("SYS1.PROCLIB", members=[M("P", text(1, "p"))]),
    ]
    new = [
        D("SYS7.PARMLIB", members=[M("A", text(1, "a")), M("B", text(1, "B"))]),
        D("SYS7.PROCLIB", members=[M("P", text(1, "p"))]),
    ]
    old_fp, new_fp = build_fp(old), build_fp(new)
    plain = compare(old_fp, new_fp)
    assert {e.change for e in plain.datasets} == {"renamed", "deleted", "added"}
    mapped = compare(old_fp, new_fp, maps=["SYS1.**=SYS7.**"])
    assert mapped.datasets == []
    (m,) = mapped.members
    assert (m.dsname, m.member, m.change, m.old_dsname) == (
        "SYS7.PARMLIB",
        "B",
        "changed",
        "SYS1.PARMLIB",
    )
    # Filters see both names of a mapped pair.
    assert compare(old_fp, new_fp, maps=["SYS1.**=SYS7.**"], include=["SYS1.PARMLIB"]).members
    assert compare(old_fp, new_fp, maps=["SYS1.**=SYS7.**"], exclude=["SYS7.PARM*"]).equal


def test_map_collision_is_refused():
    old = [D("SYS1.X", dsorg="PS", content=text(1)), D("SYS7.X", dsorg="PS", content=text(1))]
    with pytest.raises(ConflictError, match="SYS1.X and SYS7.X"):
        compare(build_fp(old), build_fp(old), maps=["SYS1.**=SYS7.**"])


# -- report formats -------------------------------------------------------------------
def test_json_and_report_shapes():
    new = base_system()
    mutate(new, "USER.DATA").content = text(11, "data")
    mutate(new, "USER.CNTL").members.append(M("JOB3", text(1, "job3")))
    result = compare(build_fp(base_system()), build_fp(new), old_label="d1", new_label="d2")
    doc = result.to_json()
    assert set(doc) >= {"datasets", "members", "counts", "equal", "old", "new"}
    assert doc["equal"] is False
    (d,) = doc["datasets"]
    assert d["dsname"] == "USER.DATA" and d["change"] == "changed" and d["volser"] == "VOL002"
    (m,) = doc["members"]
    assert (m["dsname"], m["member"], m["change"]) == ("USER.CNTL", "JOB3", "added")
    lines = format_report(result)
    assert lines[0].startswith("OLD: d1") and lines[1].startswith("NEW: d2")
    counts_at = next(i for i, line in enumerate(lines) if line.startswith("Data sets:"))
    assert "1 changed" in lines[counts_at] and "1 added" in lines[counts_at + 1]
    # Counts come first, then the details.
    detail = next(i for i, line in enumerate(lines) if "USER.CNTL(JOB3)" in line)
    assert detail > counts_at + 1


def test_empty_members_pair_by_user_data():
    stats = b"\x01\x02ISPF-STATS"
    old = [D("A.PDS", members=[M("E1", b"", stats)])]
    new = [D("A.PDS", members=[M("E2", b"", stats)])]
    (m,) = compare(build_fp(old), build_fp(new)).members
    assert (m.change, m.member, m.old_member) == ("renamed", "E2", "E1")


# -- property: the vectorised merge against a plain Python reference -------------------
NAMES = st.sampled_from(["A", "B", "C", "D", "E", "F", "G", "H", "$X", "@Y", "Z9"])
member_sets = st.dictionaries(
    NAMES,
    st.tuples(st.sampled_from([b"1", b"2", b"3", b"4"]), st.sampled_from([b"", b"u1", b"u2"])),
    max_size=9,
)


def reference(old: dict, new: dict) -> set[tuple]:
    """(dsname, member, change, old member) computed the plain way."""
    out = set()
    for ds in sorted(set(old) & set(new)):
        a, b = old[ds], new[ds]
        for name in set(a) & set(b):
            if a[name][0] != b[name][0]:
                out.add((ds, name, "changed", None))
            elif a[name][1] != b[name][1]:
                out.add((ds, name, "attributes", None))
        gone = sorted(set(a) - set(b), key=lambda n: n.encode("cp037"))
        came = sorted(set(b) - set(a), key=lambda n: n.encode("cp037"))
        for digest in {a[n][0] for n in gone}:
            olds = sorted(n for n in gone if a[n][0] == digest)
            news = sorted(n for n in came if b[n][0] == digest)
            for o, n in zip(olds, news, strict=False):
                out.add((ds, n, "renamed", o))
                gone.remove(o)
                came.remove(n)
        out |= {(ds, n, "deleted", None) for n in gone}
        out |= {(ds, n, "added", None) for n in came}
    return out


@settings(max_examples=150, deadline=None)
@given(
    st.dictionaries(st.sampled_from(["P.ONE", "P.TWO", "P.THREE"]), member_sets, min_size=1),
    st.dictionaries(st.sampled_from(["P.ONE", "P.TWO", "P.THREE"]), member_sets, min_size=1),
)
def test_members_match_reference(old, new):
    def system(spec):
        return [
            D(ds, members=[M(n, text(3, c.decode()), ud) for n, (c, ud) in members.items()])
            for ds, members in spec.items()
        ]

    result = compare(build_fp(system(old)), build_fp(system(new)))
    got = {(m.dsname, m.member, m.change, m.old_member) for m in result.members}
    assert got == reference(old, new)
    assert {e.dsname for e in result.datasets if e.change in ("added", "deleted", "renamed")} <= (
        set(old) ^ set(new)
    )
    assert result.equal == (old == new)


# -- end to end: generated system, a simulated day, the ChangeLog as ground truth ------
def project(doc: dict) -> set[tuple]:
    """`ssm compare --json` entries as ChangeLog keys (volser, dsname, member, change,
    old name)."""
    out = set()
    for e in doc["datasets"]:
        out.add((e["volser"], e["dsname"], "", e["change"], e["old_dsname"] or ""))
    for e in doc["members"]:
        out.add((e["volser"], e["dsname"], e["member"], e["change"], e["old_member"] or ""))
    return out


def assert_matches_changelog(result, log) -> dict:
    doc = result.to_json()
    got, want = project(doc), log.keys()
    assert got == want, f"missing {sorted(want - got)}; extra {sorted(got - want)}"
    # Record ranges (group granularity) cover every record range of the ground truth.
    ranges = {e["dsname"]: e["records"] for e in doc["datasets"] if e["records"] is not None}
    for entry in log.entries:
        if entry.records and entry.dsname in ranges:
            for start, stop in entry.records:
                assert any(a <= start and stop <= b for a, b in ranges[entry.dsname]), (
                    entry.dsname,
                    (start, stop),
                    ranges[entry.dsname],
                )
    return doc


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A tiny generated system and its fingerprint (shared: copy before changing)."""
    generate = pytest.importorskip("fixtures.generate")
    from ssm.fingerprint import fingerprint

    folder = tmp_path_factory.mktemp("tiny-system")
    paths = generate.build_system(folder, seed=7, size="tiny")
    return paths, fingerprint(paths)


def copy_system(paths, folder) -> list:
    import shutil

    folder.mkdir(parents=True, exist_ok=True)
    return [shutil.copy(p, folder / p.name) for p in paths]


@pytest.mark.parametrize("seed, rate", [(3, 0.05), (8, 0.2)])
def test_day_equals_changelog(tiny, tmp_path, seed, rate):
    daysim = pytest.importorskip("fixtures.daysim")
    from ssm.fingerprint import fingerprint

    paths0, fp0 = tiny
    paths = copy_system(paths0, tmp_path / "sys")
    log = daysim.simulate_day(paths, seed=seed, rate=rate)
    assert len(log) > 5
    fp1 = fingerprint(paths)
    result = compare(fp0, fp1)
    assert_matches_changelog(result, log)
    # --since reuses unchanged data sets and must not change the answer.
    fp1b = fingerprint(paths, since=fp0)
    assert project(compare(fp0, fp1b).to_json()) == log.keys()
    assert compare(fp1, fp1b).equal


def test_large_sequential_ranges(tmp_path):
    """A "small" system has data sets of more than 1 MiB: their record ranges."""
    generate = pytest.importorskip("fixtures.generate")
    daysim = pytest.importorskip("fixtures.daysim")
    from ssm.fingerprint import fingerprint

    paths = generate.build_system(tmp_path, seed=5, size="small")
    fp0 = fingerprint(paths)
    log = daysim.simulate_day(paths, seed=4, rate=0.02)
    doc = assert_matches_changelog(compare(fp0, fingerprint(paths)), log)
    with_ranges = [e for e in doc["datasets"] if e["records"]]
    assert with_ranges, "no grouped data set changed"
    for e in with_ranges:
        assert all(0 <= a < b for a, b in e["records"])


def test_relaid_out_copy_compares_equal(tiny, tmp_path):
    """The same content on differently laid-out volumes: CCKD instead of plain, every
    PDS member rewritten in another order (new TTRs) and the PDS compressed."""
    from emulator import api
    from emulator.errors import SpaceError
    from emulator.pds import Pds
    from ssm.fingerprint import fingerprint

    paths0, fp0 = tiny
    copies = []
    for p in paths0:
        copies.append(tmp_path / (p.stem + ".cckd"))
        api.convert(p, copies[-1], compress="zlib")
    moved = 0
    for path in copies:
        with api.open_volume(path, writable=True) as vol:
            for info in vol.datasets():
                if not info.dsorg.startswith("PO"):
                    continue
                pds = Pds(vol, info.dsname)
                entries = pds.members()
                aliased = {e.alias_of for e in entries if e.alias}
                before = {e.name: e.ttr for e in entries}
                for e in sorted(entries, key=lambda e: e.name, reverse=True):
                    if e.alias or e.name in aliased:
                        continue
                    blocks = pds.blocks_with_ttr(e.name)
                    kw = dict(
                        blocks=[(b.key, b.data) for b in blocks],
                        userdata=e.userdata,
                        ttr_count=e.ttr_count,
                        old_ttrs=[(b.tt, b.r) for b in blocks],
                    )
                    try:
                        pds.write(e.name, **kw)
                    except SpaceError:  # no room to append: squeeze, then write
                        pds.compress()
                        pds.write(e.name, **kw)
                pds.compress()
                moved += sum(1 for e in pds.members() if before[e.name] != e.ttr)
    assert moved > 10
    fp1 = fingerprint(copies)
    assert [v.kind for v in fp1.volumes] != [v.kind for v in fp0.volumes]
    result = compare(fp0, fp1)
    assert result.equal, (result.datasets, result.members)
    assert result.compared_members == len(fp0.members)


def test_members_out_of_order_are_still_matched():
    """The merge relies on OLD's rows being sorted; rows out of order are sorted first."""
    fp = build_fp(base_system())
    ds = fp.find("USER.CNTL")
    rows = fp.members[ds.mstart : ds.mstart + ds.mcount]
    rows[:] = rows[::-1].copy()
    assert compare(fp, build_fp(base_system())).equal
    new = base_system()
    mutate(new, "USER.CNTL").members[1].content = text(5)
    assert [(m.member, m.change) for m in compare(fp, build_fp(new)).members] == [
        ("JOB2", "changed")
    ]
