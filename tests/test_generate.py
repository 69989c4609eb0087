"""Generated systems (fixtures.generate) and simulated days (fixtures.daysim).

* determinism: same seed and clock -> byte-identical images; another seed -> other bytes;
* the volumes are clean by ``dasd check`` and by Hercules (dasdls lists every data set,
  dasdcat/dasdseq print the same bytes we read, cckdcdsk accepts compressed images);
* what is on them is what fixtures.generate promises (FORMATS.md 5-7: RECFMs, ISPF
  statistics, load-module user data with a counted TTR, aliases, several extents, free
  space);
* the ChangeLog of a simulated day equals a reference comparison of everything the API
  shows before and after the day, written here from the documented semantics.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from emulator import api
from emulator.dataset import io
from emulator.errors import ConflictError
from emulator.pds import Pds
from emulator.pds.directory import user_ttr_offsets

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # fixtures/ is not an installed package: run from anywhere
    sys.path.insert(0, str(REPO))

from fixtures.daysim import CHANGES, ChangeLog, simulate_day  # noqa: E402
from fixtures.generate import DEFAULT_NOW, SIZES, build_system  # noqa: E402


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> list[Path]:
    """A tiny two-volume system, built once; tests that write copy it first."""
    return build_system(tmp_path_factory.mktemp("tiny"), seed=1, size="tiny")


def copy_system(paths: list[Path], folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    return [Path(shutil.copy(p, folder / p.name)) for p in paths]


# -- a reference comparison, straight from the ChangeLog semantics --------------------
def masked_userdata(entry) -> bytes:
    """User data with the C-byte-counted TTRs zeroed: those are placement."""
    data = bytearray(entry.userdata)
    for off in user_ttr_offsets(entry):
        data[off : off + 3] = bytes(3)
    return bytes(data)


def snapshot(paths: list[Path]) -> dict:
    """{(volser, dsname): (attributes, content)}; content of a PDS is
    {member: (records, user data)}, of a sequential data set its records."""
    out = {}
    with api.open_system(paths) as system:
        for vol, info in system.datasets():
            attrs = (info.dsorg, info.recfm, info.lrecl, info.blksize, info.keylen, info.space)
            if info.is_pds:
                pds = Pds(vol, info.dsname)
                members = {
                    e.name: (tuple(pds.read(e.name)), masked_userdata(e)) for e in pds.members()
                }
                out[vol.volser, info.dsname] = (attrs, members)
            else:
                out[vol.volser, info.dsname] = (attrs, tuple(io.read_records(vol, info)))
    return out


def content_of(value) -> object:
    attrs, body = value
    if isinstance(body, dict):  # a PDS: members' records (user data is not content)
        return tuple(sorted((name, recs) for name, (recs, _) in body.items()))
    return body


def pair_up(old: dict, new: dict, same) -> tuple[list, list, list]:
    """(renamed (old, new), deleted, added) between two name -> value maps."""
    gone = sorted(old.keys() - new.keys())
    came = sorted(new.keys() - old.keys())
    renamed = []
    for name in list(came):
        twins = [g for g in gone if same(old[g], new[name])]
        if len(twins) == 1:
            renamed.append((twins[0], name))
            gone.remove(twins[0])
            came.remove(name)
    return renamed, gone, came


def reference_diff(before: dict, after: dict) -> tuple[set, dict]:
    """The ChangeLog keys and record ranges that a correct compare must find."""
    keys: set = set()
    ranges: dict = {}
    for volser in sorted({v for v, _ in before} | {v for v, _ in after}):
        old = {ds: val for (v, ds), val in before.items() if v == volser}
        new = {ds: val for (v, ds), val in after.items() if v == volser}
        renamed, gone, came = pair_up(old, new, lambda a, b: content_of(a) == content_of(b))
        keys |= {(volser, n, "", "renamed", o) for o, n in renamed}
        keys |= {(volser, d, "", "deleted", "") for d in gone}
        keys |= {(volser, d, "", "added", "") for d in came}
        for ds in sorted(old.keys() & new.keys()):
            (a_attrs, a_body), (b_attrs, b_body) = old[ds], new[ds]
            if isinstance(a_body, dict):
                if a_attrs != b_attrs:
                    keys.add((volser, ds, "", "attributes", ""))
                m_ren, m_gone, m_came = pair_up(a_body, b_body, lambda a, b: a[0] == b[0])
                keys |= {(volser, ds, n, "renamed", o) for o, n in m_ren}
                keys |= {(volser, ds, m, "deleted", "") for m in m_gone}
                keys |= {(volser, ds, m, "added", "") for m in m_came}
                for m in sorted(a_body.keys() & b_body.keys()):
                    if a_body[m][0] != b_body[m][0]:
                        keys.add((volser, ds, m, "changed", ""))
                    elif a_body[m][1] != b_body[m][1]:
                        keys.add((volser, ds, m, "attributes", ""))
            elif a_body != b_body:
                keys.add((volser, ds, "", "changed", ""))
                ops = difflib.SequenceMatcher(None, a_body, b_body, autojunk=False).get_opcodes()
                assert {op for op, *_ in ops} <= {"equal", "insert"}, f"{ds}: {ops}"
                ranges[volser, ds] = tuple((j1, j2) for op, _, _, j1, j2 in ops if op == "insert")
            elif a_attrs != b_attrs:
                keys.add((volser, ds, "", "attributes", ""))
    return keys, ranges


# -- building ---------------------------------------------------------------------------
def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path, tiny):
    again = build_system(tmp_path / "again", seed=1, size="tiny")
    other = build_system(tmp_path / "other", seed=2, size="tiny")
    later = build_system(tmp_path / "later", seed=1, size="tiny", now=DEFAULT_NOW.replace(day=2))
    assert [p.name for p in again] == [p.name for p in tiny] == ["sysres.3390", "user01.3390"]
    for a, b, c, d in zip(tiny, again, other, later, strict=True):
        assert sha256(a) == sha256(b)
        assert sha256(a) != sha256(c)
        assert sha256(a) != sha256(d)  # dates come from the clock, and only from it


def test_tiny_system_holds_what_is_promised(tiny):
    for path in tiny:
        assert 1 << 20 <= path.stat().st_size <= 3 << 20
    with api.open_system(tiny) as system:
        res, user = system.volumes
        assert (res.volser, user.volser) == ("SYSRES", "USER01")
        infos = {i.dsname: i for _, i in system.datasets()}
        for name in ("SYS1.PARMLIB", "SYS1.PROCLIB", "USER.JCL", "USER.COBOL", "USER.REXX"):
            assert (infos[name].dsorg, infos[name].recfm, infos[name].lrecl) == ("PO", "FB", 80)
        link = infos["SYS1.LINKLIB"]
        assert (link.dsorg, link.recfm, link.blksize) == ("PO", "U", 32760)
        assert infos["USER.LOADLIB"].blksize == 6144
        assert infos["USER.APPLOG"].recfm == "VB"
        assert any(i.recfm == "FBA" and i.lrecl == 133 for i in infos.values())
        assert any(i.recfm == "VBS" for i in infos.values())
        assert any(i.recfm == "FB" and i.blksize == 27920 and not i.is_pds for i in infos.values())
        assert sum(len(i.extents) > 1 for i in infos.values()) >= 2

        # load modules: 24 (or 26, with SSI) bytes of user data, one counted TTR that is
        # a block of the member, aliases that resolve to their main member
        members = Pds(res, "SYS1.LINKLIB").members()
        mains = [e for e in members if not e.alias]
        assert any(e.alias and e.alias_of in {m.name for m in mains} for e in members)
        for e in mains:
            assert e.ttr_count == 1 and len(e.userdata) in (24, 26)
            blocks = Pds(res, "SYS1.LINKLIB").blocks_with_ttr(e.name)
            assert e.user_ttrs[0] in {(b.tt, b.r) for b in blocks}
            assert blocks[0].data[0] == 0x20  # CESD record first

        # text members: ISPF statistics on most of them, none in the future
        entries = Pds(user, "USER.JCL").members()
        stats = [e.ispf for e in entries if e.ispf is not None]
        assert len(stats) >= len(entries) // 2
        assert all(s.changed < DEFAULT_NOW and s.current > 0 for s in stats)
        first = api.read_text(user, f"USER.JCL({entries[0].name})")[0]
        assert first.startswith(f"//{entries[0].name}") and " JOB " in first

        for vol in system.volumes:
            assert api.check(vol) == []
            free = sum(e - b + 1 for b, e in vol.free_extents())
            data = vol.image.total_tracks - 1 - (vol.vtoc_extent[1] - vol.vtoc_extent[0] + 1)
            assert 0.05 <= free / data <= 0.35, (vol.volser, free, data)


def test_hercules_reads_what_we_wrote(tiny, hercules, tmp_path):
    with api.open_system(tiny) as system:
        for path, vol in zip(tiny, system.volumes, strict=True):
            names = [i.dsname for i in vol.datasets()]
            assert hercules.dasdls(path) == names
            for info in vol.datasets():
                if info.is_pds:
                    entries = Pds(vol, info.dsname).members()
                    assert hercules.dasdcat_members(path, info.dsname) == [e.name for e in entries]
                    for e in entries[:3] + [x for x in entries if x.alias][:2]:
                        want = api.read_bytes(vol, f"{info.dsname}({e.name})")
                        assert hercules.dasdcat_member(path, info.dsname, e.name) == want
                elif info.recfm in ("FB", "FBA"):
                    assert hercules.dasdseq(path, info.dsname, tmp_path) == api.read_bytes(
                        vol, info.dsname
                    )


def test_compressed_system_is_the_same_system(tmp_path, tiny, hercules):
    packed = build_system(tmp_path, seed=1, size="tiny", compress="zlib")
    assert [p.name for p in packed] == ["sysres.cckd", "user01.cckd"]
    for plain, cckd in zip(tiny, packed, strict=True):
        ok, output = hercules.cckdcdsk(cckd)
        assert ok, output
        assert hercules.dasdls(cckd) == hercules.dasdls(plain)
    assert snapshot(packed) == snapshot(tiny)


def test_ssm_generate_cli(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "ssm", "generate", str(tmp_path), "--seed", "3"]
        + ["--size", "tiny", "--volumes", "3", "--days", "1"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert proc.returncode == 0, proc.stderr
    listed = [
        line.split()[1] for line in proc.stdout.splitlines() if line.startswith(("SYSRES", "USER"))
    ]
    assert [Path(p).name for p in listed] == ["sysres.3390", "user01.3390", "user02.3390"]
    assert "built in" in proc.stdout
    assert (tmp_path / "changes-day1.json").stat().st_size > 0
    with api.open_volume(tmp_path / "user02.3390") as vol:
        assert vol.dataset("PROD.JCL").is_pds  # the second user volume has its own HLQ
    again = subprocess.run(
        [sys.executable, "-m", "ssm", "generate", str(tmp_path), "--size", "tiny"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert again.returncode == 2 and "already exists" in again.stderr
    assert len(again.stderr.strip().splitlines()) == 1


def test_existing_images_are_never_touched(tmp_path):
    (tmp_path / "user01.3390").write_bytes(b"precious")
    with pytest.raises(ConflictError, match="already exists"):
        build_system(tmp_path, size="tiny")
    assert (tmp_path / "user01.3390").read_bytes() == b"precious"
    assert not (tmp_path / "sysres.3390").exists()


def test_unknown_size_is_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown size"):
        build_system(tmp_path, size="huge")
    with pytest.raises(ValueError, match="needs a 3390"):
        build_system(tmp_path, size="3390-3", devtype="3380")


# -- a simulated day ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def one_day(tiny, tmp_path_factory):
    paths = copy_system(tiny, tmp_path_factory.mktemp("day"))
    before = snapshot(paths)
    log = simulate_day(paths, seed=5)
    return paths, before, snapshot(paths), log


def test_changelog_is_what_the_api_shows(one_day):
    paths, before, after, log = one_day
    keys, ranges = reference_diff(before, after)
    assert log.keys() == keys
    logged = {(e.volser, e.dsname): e.records for e in log if e.records is not None}
    assert logged == ranges
    # every kind of change happens, at member and at data set level
    assert {e.change for e in log} == set(CHANGES)
    assert {e.change for e in log if e.member is None} >= {
        "added",
        "deleted",
        "changed",
        "attributes",
        "renamed",
    }
    assert {e.change for e in log if e.member is not None} == set(CHANGES)
    assert not log.skipped


def test_day_leaves_clean_volumes_that_hercules_reads(one_day, hercules):
    paths, _, after, log = one_day
    with api.open_system(paths) as system:
        for path, vol in zip(paths, system.volumes, strict=True):
            assert api.check(vol) == []
            assert hercules.dasdls(path) == [i.dsname for i in vol.datasets()]
        for e in log:
            if e.member is not None and e.change in ("added", "changed", "renamed"):
                vol = system.volume(e.volser)
                assert hercules.dasdcat_member(vol.path, e.dsname, e.member) == api.read_bytes(
                    vol, f"{e.dsname}({e.member})"
                )


def test_changes_look_like_what_ispf_and_the_linkage_editor_do(one_day):
    paths, before, after, log = one_day
    day = log.now.date()
    with api.open_system(paths) as system:
        for e in log:
            vol = system.volume(e.volser)
            if e.member is None or e.change == "deleted":
                continue
            pds = Pds(vol, e.dsname)
            entry = pds.member(e.member)
            if e.change == "renamed":
                old_recs, old_ud = before[e.volser, e.dsname][1][e.old_name]
                assert tuple(pds.read(e.member)) == old_recs
                assert masked_userdata(entry) == old_ud  # renamed as STOW does: same user data
                assert e.old_name not in pds
            elif e.change in ("changed", "attributes") and entry.ispf is not None:
                old_ud = before[e.volser, e.dsname][1][e.member][1]
                stats = entry.ispf
                assert stats.changed.date() == day
                if old_ud:
                    from emulator.pds import IspfStats

                    old = IspfStats.decode(old_ud)
                    assert stats.mod == min(old.mod + 1, 99)
                    assert stats.created == old.created
            elif e.change == "changed":  # a relinked load module
                assert entry.ttr_count == 1
                assert entry.user_ttrs[0] in {(b.tt, b.r) for b in pds.blocks_with_ttr(e.member)}
        deleted = [e for e in log if e.change == "deleted" and e.member]
        for e in deleted:
            assert e.member not in Pds(system.volume(e.volser), e.dsname)
        assert log.now == DEFAULT_NOW.replace(day=2)


def test_day_is_deterministic_and_logs_round_trip(tiny, one_day, tmp_path):
    paths = copy_system(tiny, tmp_path / "again")
    log = simulate_day(paths, seed=5)
    assert log.to_json() == one_day[3].to_json()
    for a, b in zip(paths, one_day[0], strict=True):
        assert sha256(a) == sha256(b)
    back = ChangeLog.from_json(log.to_json())
    assert back.keys() == log.keys() and back.entries == log.entries
    assert json.loads(log.to_json())["entries"][0].keys() >= {"volser", "change", "records"}


def test_second_day_and_a_higher_rate(one_day, tmp_path):
    paths = copy_system(one_day[0], tmp_path / "day2")
    before = snapshot(paths)
    log = simulate_day(paths, seed=6, rate=0.2, now=DEFAULT_NOW.replace(day=3))
    keys, ranges = reference_diff(before, snapshot(paths))
    assert log.keys() == keys
    assert {(e.volser, e.dsname): e.records for e in log if e.records is not None} == ranges
    assert len(log) > len(one_day[3])
    with api.open_system(paths) as system:
        assert all(api.check(vol) == [] for vol in system.volumes)


def test_cli_sizes_are_the_generators():
    from ssm.cli import SYSTEM_SIZES

    assert list(SYSTEM_SIZES) == list(SIZES)
