"""ssm export on generated systems (docs/formats/basket.md): the manifest covers exactly
the ChangeLog of a simulated day, ``--full`` covers every data set, payloads hold what
the images hold, large sequential data sets travel as record edits, and the digests are
the states of the OLD and NEW fingerprints."""

from __future__ import annotations

import datetime as _dt
import random
import shutil

import pytest

from emulator import api
from emulator.dataset import io
from emulator.errors import IntegrityError
from emulator.pds import Pds
from ssm import fpfile
from ssm.basket import fmt, ops
from ssm.export import export
from ssm.fingerprint import fingerprint

generate = pytest.importorskip("fixtures.generate")
daysim = pytest.importorskip("fixtures.daysim")

NOW = _dt.datetime(2026, 11, 3, 20, 0, tzinfo=_dt.UTC)


@pytest.fixture(scope="module")
def day(tmp_path_factory):
    """A tiny system: its month-start copy, base fingerprint, and one simulated day."""
    root = tmp_path_factory.mktemp("export")
    paths = generate.build_system(root / "prod", seed=11, size="tiny")
    (root / "start").mkdir()
    start = [shutil.copy(p, root / "start" / p.name) for p in paths]
    base = fingerprint(paths)
    fpfile.write(base, root / "base.ssmfp")
    log = daysim.simulate_day(paths, seed=5, rate=0.1)
    basket = root / "day.basket"
    result = export(basket, base=root / "base.ssmfp", images=paths, now=NOW)
    return {
        "root": root,
        "paths": paths,
        "start": start,
        "base": base,
        "log": log,
        "basket": basket,
        "result": result,
    }


def _log_view(op: ops.Operation) -> tuple:
    """An operation as a ChangeLog key (volser left out: placement is not content)."""
    if op.kind == "dataset.create":
        return (op.dsname, "", "added", "")
    if op.kind == "dataset.delete":
        return (op.dsname, "", "deleted", "")
    if op.kind == "dataset.rename":
        return (op.new_name, "", "renamed", op.dsname)
    if op.kind in ("dataset.content", "dataset.records"):
        return (op.dsname, "", "changed", "")
    if op.kind == "dataset.attributes":
        return (op.dsname, "", "attributes", "")
    if op.kind in ("member.delete", "alias.delete"):
        return (op.dsname, op.member, "deleted", "")
    if op.kind == "member.rename":
        return (op.dsname, op.new_name, "renamed", op.member)
    if op.kind == "member.userdata":
        return (op.dsname, op.member, "attributes", "")
    # member.put / alias.put: added, or changed / attributes (told apart below)
    return (op.dsname, op.member, "added" if op.before is None else "put", "")


#: ChangeLog change -> the operation kinds it may become.
EXPECTED = {
    ("added", False): {"dataset.create"},
    ("deleted", False): {"dataset.delete"},
    ("renamed", False): {"dataset.rename"},
    ("changed", False): {"dataset.content", "dataset.records"},
    ("attributes", False): {"dataset.attributes"},
    ("added", True): {"member.put", "alias.put"},
    ("deleted", True): {"member.delete", "alias.delete"},
    ("renamed", True): {"member.rename"},
    ("changed", True): {"member.put", "alias.put"},
    # text members: statistics only; load modules (TTRs in the user data): sent whole
    ("attributes", True): {"member.userdata", "member.put", "alias.put"},
}


def test_manifest_covers_exactly_the_changelog(day):
    with fmt.verify_basket(day["basket"]) as basket:
        operations = basket.operations
        assert basket.header["mode"] == "base"
    log = day["log"]
    assert len(log) >= 10
    got = {}
    for op in operations:
        view = _log_view(op)
        assert view not in got, f"two operations for one object: {view}"
        got[view] = op
    want = set()
    for e in log.entries:
        change = e.change
        key = (e.dsname, e.member or "", change, e.old_name or "")
        if e.member is not None and change in ("changed", "attributes"):
            op = got.get((e.dsname, e.member, "put", "")) or got.get(key)
            key = _log_view(op) if op is not None else key
        else:
            op = got.get(key)
        assert op is not None, f"no operation for {e}"
        assert op.kind in EXPECTED[(change, e.member is not None)], (e, op.kind)
        if e.member is not None and change == "attributes" and not op.ttr_count:
            assert op.kind in ("member.userdata", "alias.put"), (e, op.kind)
        want.add(key)
    assert set(got) == want, f"operations without a ChangeLog entry: {set(got) - want}"
    # every kind of change of the day shows up
    assert {e.change for e in log.entries} == {
        "added",
        "deleted",
        "changed",
        "attributes",
        "renamed",
    }
    assert [op.seq for op in operations] == list(range(len(operations)))


def test_digests_are_the_states_of_both_sides(day):
    base, new = day["base"], day["result"].fingerprint
    with fmt.read_basket(day["basket"]) as basket:
        assert basket.header["base"]["state"] == ops.system_state(base)
        assert basket.header["result"]["state"] == ops.system_state(new, side="new")
        assert basket.header["base"]["file"].startswith("blake3:")
        for op in basket.operations:
            member = op.member if op.is_member else None
            assert op.before == ops.state_of(base, op.dsname, member, op.kind), op
            if op.kind == "dataset.rename":
                assert op.after == ops.state_of(new, op.new_name), op
            elif op.kind == "member.rename":
                assert op.after == ops.state_of(new, op.dsname, op.new_name), op
            else:
                assert op.after == ops.state_of(new, op.dsname, member, op.kind), op


def test_payloads_hold_what_the_images_hold(day):
    with fmt.verify_basket(day["basket"]) as basket, api.open_system(day["paths"]) as system:
        checked = 0
        for op in basket.operations:
            if op.payload is None:
                continue
            decoded = ops.decode_payload(op.kind, basket.payload(op.payload))
            if op.kind == "member.put":
                vol, _ = system.locate(op.dsname)
                recs = api.read_records(vol, f"{op.dsname}({op.member})")
                info = vol.dataset(op.dsname)
                if info.recfm.startswith("F"):
                    assert b"".join(b.data for b in decoded) == b"".join(recs)
                else:
                    assert [b.data for b in decoded] == recs
                assert op.size == sum(len(b.data) + len(b.key) for b in decoded)
                assert all(b.ttr for b in decoded)
                checked += 1
            elif op.kind in ("dataset.create", "dataset.content") and op.dcb["dsorg"] == "PS":
                vol, _ = system.locate(op.dsname)
                assert decoded == api.read_records(vol, op.dsname)
                checked += 1
        assert checked >= 3


def test_from_to_gives_the_same_operations(day, tmp_path):
    out = tmp_path / "range.basket"
    result = export(out, from_images=day["start"], images=day["paths"], now=NOW)
    assert result.mode == "range"
    with fmt.read_basket(out) as a, fmt.read_basket(day["basket"]) as b:
        assert a.operations == b.operations
        assert a.header["result"] == {**b.header["result"]}
        assert a.header["base"]["state"] == b.header["base"]["state"]


def test_deterministic_and_signed(day, tmp_path):
    a, b = tmp_path / "a.basket", tmp_path / "b.basket"
    base = day["base"]
    export(a, base=base, images=day["paths"], now=NOW)
    export(b, base=base, images=day["paths"], now=NOW)
    assert a.read_bytes() == b.read_bytes()
    key = b"hot-site shared secret"
    result = export(a, base=base, images=day["paths"], now=NOW, key=key)
    assert result.signed
    with fmt.read_basket(a, key) as basket:
        assert basket.authenticated
    with pytest.raises(IntegrityError):
        fmt.read_basket(b, key)  # unsigned


def test_current_fingerprint_is_used_as_is(day, tmp_path):
    out = tmp_path / "c.basket"
    result = export(
        out, base=day["base"], images=day["paths"], now=NOW, current=day["result"].fingerprint
    )
    assert result.fingerprint is day["result"].fingerprint
    with fmt.read_basket(out) as a, fmt.read_basket(day["basket"]) as b:
        assert a.operations == b.operations


def test_full_covers_every_dataset(day, tmp_path):
    out = tmp_path / "full.basket"
    result = export(out, images=day["start"], full=True, now=NOW)
    base = day["base"]
    with fmt.verify_basket(out) as basket:
        assert basket.header["base"] is None
        assert basket.header["result"]["state"] == ops.system_state(base)
        creates = {op.dsname: op for op in basket.operations}
        assert {op.kind for op in basket.operations} == {"dataset.create"}
        assert sorted(creates) == sorted(ds.dsname for ds in base.datasets)
        for ds in base.datasets:
            op = creates[ds.dsname]
            assert op.before is None and op.after == ops.dataset_state(base, ds)
            assert op.dcb["recfm"] == ds.recfm and op.dcb["lrecl"] == ds.lrecl
            assert op.space["unit"] == ds.space[0] and op.space["tracks"] == ds.tracks
            payload = ops.decode_payload(op.kind, basket.payload(op.payload))
            if ds.is_pds:
                assert op.space["dirblks"] > 0
                assert [m.name for m in payload] == [m.name for m in ds.members]
                aliases = {m.name: m.alias_of for m in payload if m.alias}
                assert aliases == {m.name: m.alias_of for m in ds.members if m.is_alias}
                assert all(m.blocks for m in payload if not m.alias and m.name)
            else:
                assert len(payload) == ds.records
    assert result.counts == {"dataset.create": len(base.datasets)}


def test_include_exclude(day, tmp_path):
    out = tmp_path / "user.basket"
    result = export(
        out,
        base=day["base"],
        images=day["paths"],
        include=["USER.**"],
        exclude=["USER.JCL"],
        now=NOW,
    )
    with fmt.read_basket(out) as basket:
        names = {op.dsname for op in basket.operations}
        assert names and all(n.startswith("USER.") and n != "USER.JCL" for n in names)
        assert basket.header["filters"] == {
            "include": ["USER.**"],
            "exclude": ["USER.JCL"],
            "maps": [],
        }
        assert basket.header["result"]["state"] == ops.system_state(
            result.fingerprint, ["USER.**"], ["USER.JCL"], side="new"
        )


def test_no_change_no_operations(day, tmp_path):
    out = tmp_path / "none.basket"
    result = export(out, from_images=day["start"], images=day["start"], now=NOW)
    assert result.operations == 0 and result.payloads == 0
    with fmt.read_basket(out) as basket:
        assert basket.header["base"]["state"] == basket.header["result"]["state"]


# -- large sequential data sets: record edits -------------------------------------------
def _rec(rnd: random.Random, i: int, tag: bytes) -> bytes:
    return (b"%08d " % i + tag + bytes(rnd.randrange(65, 91) for _ in range(30))).ljust(80)


def test_large_sequential_travels_as_record_edits(tmp_path):
    rnd = random.Random(3)
    path = tmp_path / "big001.3390"
    old = [_rec(rnd, i, b"LOG ") for i in range(30000)]  # 2.4 MB: record groups
    oldv = [r.rstrip() * (1 + i % 3) for i, r in enumerate(old[:20000])]
    with api.create_volume(path, "3390", "BIG001", cyls=8) as vol:
        info = vol.allocate("BIG.LOG", recfm="FB", lrecl=80, blksize=27920, space=("CYL", 4, 1))
        io.write_records(vol, info, old)
        info = vol.allocate("BIG.VLOG", recfm="VB", lrecl=255, blksize=27998, space=("CYL", 2, 1))
        io.write_records(vol, info, oldv)
    base = fingerprint([path])
    assert all(ds.gcount > 10 for ds in base.datasets)
    new = old[:12000] + [_rec(rnd, i, b"INS ") for i in range(40)] + old[12000:]
    new += [_rec(rnd, i, b"APP ") for i in range(200)]
    newv = oldv + [b"appended %d" % i for i in range(300)]
    with api.open_volume(path, writable=True) as vol:
        io.write_records(vol, vol.dataset("BIG.LOG"), new)
        io.write_records(vol, vol.dataset("BIG.VLOG"), newv)
    out = tmp_path / "big.basket"
    result = export(out, base=base, images=[path], now=NOW)
    assert result.counts == {"dataset.records": 2}
    with fmt.verify_basket(out) as basket:
        for op in basket.operations:
            before, after = (old, new) if op.dsname == "BIG.LOG" else (oldv, newv)
            ds = base.find(op.dsname)
            edits = ops.decode_payload(op.kind, basket.payload(op.payload))
            assert basket.payload_info(op.payload).raw_len < ds.size // 4
            assert op.size < ds.size // 4
            assert ops.splice(before, edits) == after
            start = edits[0].start  # an importer reads only from the first edit on
            assert op.records[0] == start > 0
            assert ops.splice(before[start:], edits, start) == after[start:]
    assert result.bytes < base.find("BIG.LOG").size // 10


def test_small_system_day_uses_record_ranges(tmp_path):
    """A "small" generated system has grouped sequential data sets; a simulated day
    appends to or inserts into some of them: the edits rebuild the new records."""
    paths = generate.build_system(tmp_path / "sys", seed=5, size="small")
    (tmp_path / "start").mkdir()
    start = [shutil.copy(p, tmp_path / "start" / p.name) for p in paths]
    base = fingerprint(paths)
    daysim.simulate_day(paths, seed=4, rate=0.02)
    out = tmp_path / "small.basket"
    export(out, base=base, images=paths, now=NOW)
    with (
        fmt.verify_basket(out) as basket,
        api.open_system(paths) as system,
        api.open_system(start) as before,
    ):
        ranged = [op for op in basket.operations if op.kind == "dataset.records"]
        assert ranged
        for op in ranged:
            assert op.size < base.find(op.dsname).size
            old = api.read_records(before.locate(op.dsname)[0], op.dsname)
            now = api.read_records(system.locate(op.dsname)[0], op.dsname)
            edits = ops.decode_payload(op.kind, basket.payload(op.payload))
            assert ops.splice(old, edits) == now


def test_map_names_the_targets_data_sets(day, tmp_path):
    """Production renamed USER.JCL to USER.JCLNEW; ``--map USER.JCL=USER.JCLNEW`` pairs
    them, and the operations name the target's (OLD) data set."""
    (tmp_path / "prod").mkdir()
    prod = [shutil.copy(p, tmp_path / "prod" / p.name) for p in day["start"]]
    with api.open_system(prod, writable=True) as system:
        vol, _ = system.locate("USER.JCL")
        vol.rename("USER.JCL", "USER.JCLNEW")
        Pds(vol, "USER.JCLNEW").write(
            "NEWJOB", [b"//NEWJOB JOB".ljust(80)], now=_dt.datetime(2026, 11, 3, 9)
        )
    plain = export(tmp_path / "plain.basket", from_images=day["start"], images=prod, now=NOW)
    assert plain.counts == {"dataset.delete": 1, "dataset.create": 1}
    out = tmp_path / "map.basket"
    result = export(
        out, from_images=day["start"], images=prod, maps=["USER.JCL=USER.JCLNEW"], now=NOW
    )
    assert result.counts == {"member.put": 1}
    with fmt.read_basket(out) as basket:
        (op,) = basket.operations
        assert (op.dsname, op.member, op.before) == ("USER.JCL", "NEWJOB", None)
        assert basket.header["filters"]["maps"] == ["USER.JCL=USER.JCLNEW"]
