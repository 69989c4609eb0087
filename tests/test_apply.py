"""ssm.apply: importing change baskets into a hot site (docs/import.md).

The scenario of every test: a generated production system (tiny), its copy as the
hot site, a simulated day of production change, the day's basket exported against the
morning fingerprint, imported into a copy of the hot site.  What the hot site holds is
checked with ``ssm.compare`` (no differences with production), with the basket's
system states, and with Hercules ``dasdls``/``dasdcat``/``dasdseq`` as the oracle.
"""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from conftest import members_p1, reseal_basket
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ssm.apply as apply_mod
from emulator import api
from emulator.dataset import io
from emulator.errors import ConflictError, EmulatorError, FormatError, IntegrityError, SpaceError
from emulator.pds import Pds
from emulator.volume import Volume
from fixtures.daysim import simulate_day
from fixtures.generate import build_system
from ssm import fpfile
from ssm.apply import BACKOUT_SUFFIX, INTENT_SUFFIX, import_basket, recover
from ssm.basket import fmt, ops
from ssm.basket.fmt import read_basket, write_basket
from ssm.compare import compare
from ssm.export import export
from ssm.fingerprint import fingerprint

REPO = Path(__file__).resolve().parent.parent


# -- the world: production, its morning copy, the day's basket -------------------------
@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("world")
    prod = build_system(root / "prod", seed=1, size="tiny")
    base = root / "base"
    base.mkdir()
    for p in prod:
        shutil.copyfile(p, base / p.name)
    base_fp = fingerprint(prod)
    fpfile.write(base_fp, root / "base.ssmfp")
    log = simulate_day(prod, seed=2)
    basket = root / "day1.basket"
    export(basket, base=root / "base.ssmfp", images=prod)
    with read_basket(basket) as b:
        header, operations = b.header, b.operations
    return SimpleNamespace(
        root=root,
        prod=prod,
        base=[base / p.name for p in prod],
        base_fp=base_fp,
        prod_fp=fingerprint(prod),
        log=log,
        basket=basket,
        header=header,
        operations=operations,
    )


def hot_site(world, tmp_path: Path, name: str = "hot") -> list[Path]:
    """A fresh copy of the morning's volumes (the hot site before the import)."""
    folder = tmp_path / name
    folder.mkdir()
    out = []
    for p in world.base:
        shutil.copyfile(p, folder / p.name)
        out.append(folder / p.name)
    return out


def sha256s(paths) -> list[str]:
    return [hashlib.sha256(Path(p).read_bytes()).hexdigest() for p in paths]


def state(paths) -> str:
    return ops.system_state(fingerprint(paths))


def differences(a, b) -> list:
    c = compare(a, b)
    return [*c.datasets, *c.members]


def leftovers(paths) -> list[str]:
    return [
        os.fspath(p) + suffix
        for p in paths
        for suffix in (INTENT_SUFFIX, BACKOUT_SUFFIX)
        if os.path.exists(os.fspath(p) + suffix)
    ]


def refused_untouched(basket, hot, error: type[Exception], match: str) -> None:
    """Importing ``basket`` raises ``error``, and the targets are as they were, with no
    intent or backout file left."""
    before = sha256s(hot)
    with pytest.raises(error, match=match):
        import_basket(basket, hot)
    assert sha256s(hot) == before
    assert leftovers(hot) == []


# -- the day's basket -----------------------------------------------------------------
def test_import_brings_hot_site_to_production(world, tmp_path):
    hot = hot_site(world, tmp_path)
    assert state(hot) == world.header["base"]["state"]
    result = import_basket(world.basket, hot)
    assert not result.refused and not result.conflicts
    assert result.applied == len(world.operations)
    assert result.verified and not result.mismatches
    assert result.bytes > 0
    assert set(result.volumes) == {"SYSRES", "USER01"}
    hot_fp = fingerprint(hot)
    assert differences(world.prod_fp, hot_fp) == []
    assert ops.system_state(hot_fp) == world.header["result"]["state"]
    # every kind of change of the day travelled (the generator's day does them all)
    kinds = {op.kind for op in world.operations}
    assert {"member.put", "member.delete", "member.rename", "alias.put", "alias.delete"} <= kinds
    assert {"dataset.create", "dataset.delete", "dataset.rename", "dataset.attributes"} <= kinds
    # consistent volumes: VTOC, free space, directories, load-module TTRs
    for p in hot:
        with api.open_volume(p) as vol:
            assert api.check(vol) == []
    # load modules: the TTRs in their user data name the same blocks as on production
    assert linked_blocks(hot[0], "SYS1.LINKLIB") == linked_blocks(world.prod[0], "SYS1.LINKLIB")
    assert leftovers(hot) == []


def linked_blocks(image, dsname: str) -> dict:
    """{member: [data of the block each user-data TTR names]} of a load library."""
    out = {}
    with api.open_volume(image) as vol:
        pds = Pds(vol, dsname)
        for entry in pds.members():
            if entry.alias or not entry.ttr_count:
                continue
            blocks = {(b.tt, b.r): b.data for b in pds.blocks_with_ttr(entry.name)}
            out[entry.name] = [blocks.get(ttr) for ttr in entry.user_ttrs if ttr != (0, 0)]
    assert out and all(all(b is not None for b in v) for v in out.values())
    return out


def test_hercules_reads_the_restored_volumes(world, tmp_path, hercules):
    hot = hot_site(world, tmp_path)
    assert import_basket(world.basket, hot).verified
    for prod_path, hot_path in zip(world.prod, hot, strict=True):
        assert sorted(hercules.dasdls(hot_path)) == sorted(hercules.dasdls(prod_path))
        with api.open_volume(prod_path) as vol:
            infos = vol.datasets()
        for info in infos:
            if info.is_pds and info.recfm[:1] in ("F", "U"):
                names = sorted(hercules.dasdcat_members(hot_path, info.dsname))
                assert names == sorted(hercules.dasdcat_members(prod_path, info.dsname))
                for name in names:
                    assert hercules.dasdcat_member(hot_path, info.dsname, name) == (
                        hercules.dasdcat_member(prod_path, info.dsname, name)
                    ), f"{info.dsname}({name})"
            elif not info.is_pds and info.recfm in ("F", "FB"):
                assert hercules.dasdseq(hot_path, info.dsname, tmp_path) == hercules.dasdseq(
                    prod_path, info.dsname, tmp_path
                ), info.dsname


def test_compressed_hot_site(tmp_path, hercules):
    prod = build_system(tmp_path / "prod", seed=4, size="tiny", compress="zlib")
    hot = []
    for p in prod:
        (tmp_path / "hot").mkdir(exist_ok=True)
        shutil.copyfile(p, tmp_path / "hot" / p.name)
        hot.append(tmp_path / "hot" / p.name)
    base = fingerprint(prod)
    simulate_day(prod, seed=9)
    basket = tmp_path / "day.basket"
    export(basket, base=base, images=prod)
    assert import_basket(basket, hot).verified
    assert differences(fingerprint(prod), fingerprint(hot)) == []
    for p in hot:
        ok, output = hercules.cckdcdsk(p)
        assert ok, output
        assert sorted(hercules.dasdls(p)) == sorted(hercules.dasdls(tmp_path / "prod" / p.name))


def test_opened_target_needs_the_override(tmp_path):
    """A compressed target whose header says an emulator has it open is refused,
    untouched; ignore_opened=True (ssm import --ignore-opened) writes it."""
    prod = build_system(tmp_path / "prod", seed=4, size="tiny", compress="zlib")
    (tmp_path / "hot").mkdir()
    hot = [Path(shutil.copyfile(p, tmp_path / "hot" / p.name)) for p in prod]
    base = fingerprint(prod)
    simulate_day(prod, seed=9)
    basket = tmp_path / "day.basket"
    export(basket, base=base, images=prod)
    for p in hot:  # the CCKD header's OPENED bit (cdh_opts X'80'), as Hercules sets it
        with open(p, "r+b") as fh:
            fh.seek(512 + 3)
            opts = fh.read(1)[0]
            fh.seek(512 + 3)
            fh.write(bytes([opts | 0x80]))
    before = sha256s(hot)
    with pytest.raises(ConflictError, match="OPENED bit"):
        import_basket(basket, hot)
    assert sha256s(hot) == before and leftovers(hot) == []
    assert import_basket(basket, hot, ignore_opened=True).verified
    assert differences(fingerprint(prod), fingerprint(hot)) == []


def test_days_of_baskets(tmp_path):
    """Three days: each evening the cumulative basket (against the month start) goes
    into a fresh copy of the month-start backup, and the day's own basket (against
    yesterday) into a hot site kept running; both equal production every evening."""
    import datetime as dt

    from fixtures.generate import DEFAULT_NOW

    prod = build_system(tmp_path / "prod", seed=3, size="tiny")
    backup = tmp_path / "backup"
    running = tmp_path / "running"
    for folder in (backup, running):
        folder.mkdir()
        for p in prod:
            shutil.copyfile(p, folder / p.name)
    month = fingerprint(prod)
    yesterday = month
    for day in (1, 2, 3):
        simulate_day(prod, seed=100 + day, rate=0.05, now=DEFAULT_NOW + dt.timedelta(days=day))
        today = fingerprint(prod)
        export(tmp_path / f"cum{day}.basket", base=month, images=prod)
        export(tmp_path / f"day{day}.basket", base=yesterday, images=prod)
        standby = tmp_path / f"standby{day}"
        standby.mkdir()
        for p in prod:
            shutil.copyfile(backup / p.name, standby / p.name)
        cumulative = import_basket(tmp_path / f"cum{day}.basket", [standby / p.name for p in prod])
        daily = import_basket(tmp_path / f"day{day}.basket", [running / p.name for p in prod])
        assert cumulative.verified and daily.verified
        assert differences(today, fingerprint([standby / p.name for p in prod])) == []
        assert differences(today, fingerprint([running / p.name for p in prod])) == []
        yesterday = today


def test_reimport_is_a_noop(world, tmp_path):
    hot = hot_site(world, tmp_path)
    import_basket(world.basket, hot)
    before = sha256s(hot)
    again = import_basket(world.basket, hot)
    assert again.already_applied and again.verified
    assert again.applied == 0 and again.skipped == len(world.operations)
    assert sha256s(hot) == before


def test_dry_run_writes_nothing(world, tmp_path):
    hot = hot_site(world, tmp_path)
    before = sha256s(hot)
    result = import_basket(world.basket, hot, dry_run=True)
    assert result.dry_run and result.applied == len(world.operations)  # would apply
    assert not result.verified and result.bytes == 0
    assert len(result.plan) == len(world.operations)
    assert all(line.startswith("pending") for line in result.plan)
    assert sha256s(hot) == before
    assert leftovers(hot) == []


def test_backout_restores_the_before_state(world, tmp_path):
    hot = hot_site(world, tmp_path)
    undo = tmp_path / "undo.basket"
    result = import_basket(world.basket, hot, backout=undo)
    assert result.backout == os.fspath(undo)
    back = import_basket(undo, hot)
    assert back.verified and not back.refused
    hot_fp = fingerprint(hot)
    assert differences(world.base_fp, hot_fp) == []
    assert ops.system_state(hot_fp) == world.header["base"]["state"]
    # and the day's basket applies again on the restored site
    assert import_basket(world.basket, hot).verified
    assert state(hot) == world.header["result"]["state"]


def empty_targets(world, folder: Path, volsers: list[str] | None = None) -> list[Path]:
    """Empty volumes with production's volsers (or ``volsers``) and geometry."""
    folder.mkdir()
    for i, p in enumerate(world.prod):
        with api.open_volume(p) as vol:
            dev, volser, cyls = vol.device.name, vol.volser, vol.cyls
        Volume.create(folder / p.name, dev, volsers[i] if volsers else volser, cyls=cyls).close()
    return [folder / p.name for p in world.prod]


def test_new_pdses_load_whole_onto_volumes_of_other_volsers(world, tmp_path):
    """The members payloads start inflating before placement, in the order of the
    basket's volsers; on targets of other volsers placement decides another order,
    which the loads follow."""
    full = tmp_path / "full.basket"
    export(full, images=world.prod, full=True)
    volsers = [f"HOT{i:03d}" for i in range(len(world.prod))]
    targets = empty_targets(world, tmp_path / "empty", volsers)
    result = import_basket(full, targets)
    assert result.verified and not result.mismatches
    assert result.volumes and set(result.volumes) <= set(volsers)
    assert differences(fingerprint(world.prod), fingerprint(targets)) == []


def test_a_basket_of_an_older_ssm_with_p1_members_imports(world, tmp_path):
    """Version 2 wrote members payloads interleaved (P1): the planning decodes them whole
    and the load inflates them again (basket.md "Payloads")."""
    full = tmp_path / "full.basket"
    export(full, images=world.prod, full=True)
    with read_basket(full) as b:
        header, operations = b.header, b.operations
        payloads = [b.payload(i) for i in range(b.payload_count)]
    p2 = [i for i, p in enumerate(payloads) if p[:2] == b"P2"]
    assert p2
    for i in p2:
        payloads[i] = members_p1(ops.decode_members(payloads[i]))
    older = tmp_path / "older.basket"
    write_basket(older, header, operations, payloads)
    targets = empty_targets(world, tmp_path / "empty")
    result = import_basket(older, targets)
    assert result.verified and not result.mismatches
    assert differences(fingerprint(world.prod), fingerprint(targets)) == []


def _last_zstd_block(frame: bytes) -> int:
    """Offset of the header of the last block of a zstd frame (RFC 8878 3.1.1)."""
    fhd = frame[4]
    single = (fhd >> 5) & 1
    pos = 5 + (0 if single else 1) + (0, 1, 2, 4)[fhd & 3] + (single, 2, 4, 8)[fhd >> 6]
    while pos + 3 <= len(frame):
        head = int.from_bytes(frame[pos : pos + 3], "little")
        if head & 1:
            return pos
        pos += 3 + (1 if (head >> 1) & 3 == 1 else head >> 3)
    raise AssertionError("no last block in the zstd frame")


def test_member_data_that_fails_to_inflate_at_load_rolls_the_import_back(tmp_path):
    """Planning inflates only a members payload's head (basket.md "Payloads"): a frame
    whose last block is damaged, under digests made for it, fails when its data set is
    loaded, once the import has begun (intent log and backout written, another PDS
    loaded): it is rolled back, the volume left as it was and nothing left beside it."""
    prod, hot = tmp_path / "prod.3390", tmp_path / "hot.3390"
    rnd = random.Random(3)
    with Volume.create(prod, "3390", "LATE01", cyls=30) as vol:
        for dsname, members in (("A.SRC", 3), ("B.DATA", 12)):
            vol.allocate(
                dsname,
                dsorg="PO",
                recfm="FB",
                lrecl=80,
                blksize=3120,
                space=("TRK", 60, 10),
                dirblks=5,
            )
            pds = Pds(vol, dsname)
            for i in range(members):  # 4 bits a byte: some 130 KB of zstd blocks
                text = bytes(rnd.choice(b"ABCDEFGHIJKLMNOP") for _ in range(80 * 400))
                pds.write(f"M{i}", [text[j : j + 80] for j in range(0, len(text), 80)])
    with Volume.open(prod) as vol:
        Volume.create(hot, "3390", "LATE01", cyls=vol.cyls).close()
    full = tmp_path / "full.basket"
    export(full, images=[prod], full=True)
    raw = bytearray(full.read_bytes())
    with read_basket(full) as b:
        (i,) = [op.payload for op in b.operations if op.dsname == "B.DATA"]
        assert b.operations[0].dsname == "A.SRC"  # loaded first
        frame = b.frames[i]
        assert frame.codec == fmt.CODEC_ZSTD
        head = ops.members_head_size(b.payload_head(i, ops.MEMBERS_HEAD_SIZE))
    stored = bytes(raw[frame.data_offset : frame.data_offset + frame.stored_len])
    last = _last_zstd_block(stored)
    assert last > head  # the head decodes from blocks before it
    raw[frame.data_offset + last] |= 0b110  # block type 3: reserved, a decoding error
    bad = tmp_path / "late-damage.basket"
    bad.write_bytes(reseal_basket(raw))
    with read_basket(bad) as b:
        assert len(b.payload_head(i, head)) == head
    before = sha256s([hot])
    with pytest.raises(FormatError, match="cannot decode"):
        import_basket(bad, [hot])
    assert sha256s([hot]) == before
    assert leftovers([hot]) == []


def test_signed_basket(world, tmp_path):
    key = b"hot-site key"
    signed = tmp_path / "signed.basket"
    export(signed, base=world.root / "base.ssmfp", images=world.prod, key=key)
    hot = hot_site(world, tmp_path)
    before = sha256s(hot)
    with pytest.raises(IntegrityError):
        import_basket(signed, hot, key=b"another key")
    with pytest.raises(IntegrityError):
        import_basket(world.basket, hot, key=key)  # unsigned
    assert sha256s(hot) == before
    assert import_basket(signed, hot, key=key).verified


# -- damage and drift -----------------------------------------------------------------
@pytest.fixture(scope="module")
def untouched(world, tmp_path_factory):
    hot = hot_site(world, tmp_path_factory.mktemp("untouched"))
    return hot, sha256s(hot)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_any_flipped_byte_is_refused_with_nothing_written(world, untouched, tmp_path, data):
    raw = bytearray(world.basket.read_bytes())
    pos = data.draw(st.integers(0, len(raw) - 1), label="offset")
    bit = data.draw(st.integers(0, 7), label="bit")
    raw[pos] ^= 1 << bit
    bad = tmp_path / f"flip-{pos}-{bit}.basket"
    bad.write_bytes(bytes(raw))
    hot, digests = untouched
    with pytest.raises((IntegrityError, FormatError)):
        import_basket(bad, hot)
    assert sha256s(hot) == digests
    assert leftovers(hot) == []


def drift(hot, dsname: str, member: str) -> None:
    """Change a member on the hot site behind the basket's back."""
    with api.open_system(hot, writable=True) as system:
        vol, _ = system.locate(dsname)
        pds = Pds(vol, dsname)
        records = pds.read(member)
        pds.write(member, [*records, records[0]], stats=None)


def replaced_member(world) -> ops.Operation:
    return next(
        op
        for op in world.operations
        if op.kind == "member.put" and op.before is not None and op.dsname.startswith("USER")
    )


def test_drifted_target_is_refused_and_left_as_it_was(world, tmp_path):
    hot = hot_site(world, tmp_path)
    op = replaced_member(world)
    drift(hot, op.dsname, op.member)
    before = sha256s(hot)
    result = import_basket(world.basket, hot)
    assert result.refused and result.applied == 0
    assert len(result.conflicts) == 1
    assert result.conflicts[0].startswith(f"{op.dsname}({op.member}): expected ")
    assert sha256s(hot) == before
    assert leftovers(hot) == []


def test_force_applies_over_drift_and_reports_it(world, tmp_path):
    hot = hot_site(world, tmp_path)
    op = replaced_member(world)
    drift(hot, op.dsname, op.member)
    drifted = fingerprint(hot)
    undo = tmp_path / "undo.basket"
    result = import_basket(world.basket, hot, force=True, backout=undo)
    assert not result.refused and result.verified
    assert len(result.forced) == 1 and op.member in result.forced[0]
    assert differences(world.prod_fp, fingerprint(hot)) == []
    # the backout holds what was really there, drift included
    assert import_basket(undo, hot).verified
    assert differences(drifted, fingerprint(hot)) == []


def test_force_cannot_create_over_another_data_set(world, tmp_path):
    hot = hot_site(world, tmp_path)
    create = next(op for op in world.operations if op.kind == "dataset.create")
    with api.open_volume(hot[-1], writable=True) as vol:
        vol.allocate(create.dsname, space=("TRK", 1, 0))
    before = sha256s(hot)
    result = import_basket(world.basket, hot, force=True)
    assert result.refused and any(c.startswith(create.dsname) for c in result.conflicts)
    assert sha256s(hot) == before


# -- atomicity across volumes ---------------------------------------------------------
class Crash(BaseException):
    """Stands for the process dying: nothing after it runs."""


def crash_after_first_volume(monkeypatch, *, die: bool) -> None:
    original = apply_mod._volume_committed
    calls = []

    def committed(intent, volser):
        original(intent, volser)
        calls.append(volser)
        if len(calls) == 1:  # once: the roll-back that follows must go through
            raise Crash(volser) if die else RuntimeError(f"I/O error after {volser}")

    monkeypatch.setattr(apply_mod, "_volume_committed", committed)
    if die:  # a dead process rolls nothing back
        monkeypatch.setattr(apply_mod, "_fail", lambda *a, **k: None)


def test_error_between_volumes_rolls_back_at_once(world, tmp_path, monkeypatch):
    hot = hot_site(world, tmp_path)
    crash_after_first_volume(monkeypatch, die=False)
    with pytest.raises(RuntimeError):
        import_basket(world.basket, hot)
    assert state(hot) == world.header["base"]["state"]
    assert leftovers(hot) == []


def test_crash_between_volumes_then_same_basket_finishes(world, tmp_path, monkeypatch):
    hot = hot_site(world, tmp_path)
    undo = tmp_path / "undo.basket"
    with monkeypatch.context() as mp:
        crash_after_first_volume(mp, die=True)
        with pytest.raises(Crash):
            import_basket(world.basket, hot)
    assert os.path.exists(os.fspath(hot[0]) + INTENT_SUFFIX)
    half = state(hot)
    assert half not in (world.header["base"]["state"], world.header["result"]["state"])
    result = import_basket(world.basket, hot, backout=undo)
    assert result.recovered and "finish" in result.recovered
    assert result.verified and 0 < result.applied < len(world.operations)
    assert state(hot) == world.header["result"]["state"]
    assert leftovers(hot) == []
    # the backout kept from the interrupted run restores the morning, whole
    assert import_basket(undo, hot).verified
    assert state(hot) == world.header["base"]["state"]


def test_crash_between_volumes_then_recover_rolls_back(world, tmp_path, monkeypatch):
    hot = hot_site(world, tmp_path)
    with monkeypatch.context() as mp:
        crash_after_first_volume(mp, die=True)
        with pytest.raises(Crash):
            import_basket(world.basket, hot)
    done = recover(hot)
    assert done and "rolled back" in done
    assert state(hot) == world.header["base"]["state"]
    assert leftovers(hot) == []
    assert recover(hot) is None


def test_crash_then_another_basket_rolls_back_first(world, tmp_path, monkeypatch):
    hot = hot_site(world, tmp_path)
    with monkeypatch.context() as mp:
        crash_after_first_volume(mp, die=True)
        with pytest.raises(Crash):
            import_basket(world.basket, hot)
    other = tmp_path / "signed.basket"  # the same changes, another basket (signed)
    export(other, base=world.root / "base.ssmfp", images=world.prod, key=b"k")
    result = import_basket(other, hot)
    assert "rolled back" in (result.recovered or "")
    assert result.verified and result.applied == len(world.operations)
    assert state(hot) == world.header["result"]["state"]
    assert leftovers(hot) == []


def test_unfinished_import_of_other_targets_is_refused(world, tmp_path, monkeypatch):
    hot = hot_site(world, tmp_path)
    with monkeypatch.context() as mp:
        crash_after_first_volume(mp, die=True)
        with pytest.raises(Crash):
            import_basket(world.basket, hot)
    with pytest.raises(ConflictError):
        import_basket(world.basket, hot[:1])


CHILD = """
import os, signal, sys
sys.path.insert(0, {repo!r})
import ssm.apply as A
from ssm.apply import import_basket
mode, basket, ready, *targets = sys.argv[1:]
if mode == "after-first":
    original = A._volume_committed
    def committed(intent, volser):
        original(intent, volser)
        os.kill(os.getpid(), signal.SIGKILL)
    A._volume_committed = committed
from ssm.fingerprint import fingerprint
fingerprint(targets)  # load the kernels: the kill lands in the import, not in imports
open(ready, "w").close()
import_basket(basket, targets)
"""


def run_child(world, hot, tmp_path, mode: str, delay: float | None) -> None:
    script = tmp_path / "child.py"
    script.write_text(CHILD.format(repo=os.fspath(REPO)))
    ready = tmp_path / f"ready-{time.monotonic_ns()}"
    proc = subprocess.Popen(
        [sys.executable, script, mode, world.basket, ready, *hot],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        if delay is not None:
            deadline = time.monotonic() + 60
            while not ready.exists() and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.002)
            time.sleep(delay)
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_sigkill_after_first_volume_then_finish(world, tmp_path):
    hot = hot_site(world, tmp_path)
    run_child(world, hot, tmp_path, "after-first", None)
    assert os.path.exists(os.fspath(hot[0]) + INTENT_SUFFIX)
    result = import_basket(world.basket, hot)
    assert result.verified and "finish" in (result.recovered or "")
    assert state(hot) == world.header["result"]["state"]


def test_sigkill_at_random_points_never_leaves_half_a_system(world, tmp_path):
    base, done = world.header["base"]["state"], world.header["result"]["state"]
    rng = random.Random(5)
    # spread over the import (its writes run from about 0.03 to 0.08 s after the
    # child is ready on a tiny system) and a little around it
    delays = [rng.uniform(0.0, 0.12) for _ in range(5)]
    for i, delay in enumerate(delays):
        hot = hot_site(world, tmp_path, f"hot{i}")
        run_child(world, hot, tmp_path, "plain", delay)
        interrupted = os.path.exists(os.fspath(hot[0]) + INTENT_SUFFIX)
        if not interrupted:
            assert state(hot) in (base, done), f"delay {delay:.3f}"
        if i % 2:  # half of them rolled back, the other half finished by the import
            assert (recover(hot) is not None) == interrupted
            if interrupted:
                assert state(hot) == base
        result = import_basket(world.basket, hot)
        assert result.verified, f"delay {delay:.3f}"
        assert state(hot) == done
        assert leftovers(hot) == []


def test_a_backout_left_without_its_intent_log_is_removed_by_the_next_run(world, tmp_path):
    # As a crash between removing a finished import's intent log and its backout (the
    # intent log's removal flushes the folder, so the window is real) leaves it.
    hot = hot_site(world, tmp_path)
    orphan = os.fspath(hot[0]) + BACKOUT_SUFFIX
    assert import_basket(world.basket, hot).verified
    shutil.copyfile(world.basket, orphan)
    assert import_basket(world.basket, hot, dry_run=True).already_applied
    assert leftovers(hot) == [orphan]  # a dry run writes nothing
    result = import_basket(world.basket, hot)
    assert result.already_applied and leftovers(hot) == []
    shutil.copyfile(world.basket, orphan)
    assert recover(hot) is None  # nothing to recover, but the orphan goes
    assert leftovers(hot) == []
    assert state(hot) == world.header["result"]["state"]


# -- space ----------------------------------------------------------------------------
def basket_of(path: Path, operations: list[ops.Operation], payloads: list[bytes]) -> Path:
    header = {"tool": "test", "created": "2026-11-02T00:00:00+00:00", "mode": "base"}
    write_basket(path, header, operations, payloads)
    return path


DIGEST = "blake3:" + "ab" * 32


def create_op(dsname: str, dcb: dict, space: dict) -> ops.Operation:
    """A basket's first operation: create ``dsname`` on USER01 from payload 0."""
    return ops.Operation(
        seq=0,
        kind="dataset.create",
        volser="USER01",
        dsname=dsname,
        dcb=dcb,
        space=space,
        after=DIGEST,
        payload=0,
    )


def test_no_room_on_any_volume_is_refused_before_writing(world, tmp_path):
    hot = hot_site(world, tmp_path)
    records = [bytes([i % 256]) * 80 for i in range(60_000)]  # 4.8 MB: more than a volume
    op = create_op(
        "USER.HUGE",
        {"dsorg": "PS", "recfm": "FB", "lrecl": 80, "blksize": 27920, "keylen": 0},
        {"unit": "TRK", "primary": 1, "secondary": 1, "dirblks": 0},
    )
    basket = basket_of(tmp_path / "huge.basket", [op], [ops.encode_records(records)])
    refused_untouched(basket, hot, SpaceError, "refused before writing")


def test_new_pds_with_an_alias_of_no_member_is_refused_and_rolled_back(world, tmp_path):
    """An alias whose member the payload does not hold (X'FFFFFFFF') cannot be stored:
    a clear error, and the targets as they were."""
    hot = hot_site(world, tmp_path)
    blocks = [ops.Block(0x000101, b"", b"x" * 80)]
    members = [
        ops.MemberImage("MAIN", False, 0, b"", None, blocks),
        ops.MemberImage("ORPHAN", True, 0, b"", None),
    ]
    op = create_op(
        "USER.ORPHAN.LOAD",
        {"dsorg": "PO", "recfm": "U", "lrecl": 0, "blksize": 6144, "keylen": 0},
        {"unit": "TRK", "primary": 2, "secondary": 1, "dirblks": 2},
    )
    basket = basket_of(tmp_path / "orphan.basket", [op], [ops.encode_members(members)])
    refused_untouched(basket, hot, EmulatorError, "ORPHAN: member None does not exist")


def small_directory(path: Path, volser: str) -> list[bytes]:
    """A volume with a PDS whose one directory block is nearly full."""
    text = [f"LINE {i}".ljust(80).encode("cp037") for i in range(30)]
    with Volume.create(path, "3390", volser, cyls=5) as vol:
        vol.allocate(
            "DIR.SRC",
            dsorg="PO",
            recfm="FB",
            lrecl=80,
            blksize=3120,
            space=("TRK", 2, 1),
            dirblks=1,
        )
        pds = Pds(vol, "DIR.SRC")
        for i in range(4):
            pds.write(f"OLD{i}", text, userid="HERC01")
        pds.alias("ALIAS0", "OLD0")
    return text


def test_full_directory_grows_as_iebcopy_would(tmp_path):
    hot = tmp_path / "hot.3390"
    text = small_directory(hot, "DIR001")
    prod = tmp_path / "prod.3390"
    shutil.copyfile(hot, prod)
    base = fingerprint([hot])
    with Volume.open(prod, writable=True) as vol:  # production's PDS got a bigger directory
        old = Pds(vol, "DIR.SRC")
        keep = [(e, old.read(e.name)) for e in old.members() if not e.alias]
        vol.scratch("DIR.SRC")
        vol.allocate(
            "DIR.SRC",
            dsorg="PO",
            recfm="FB",
            lrecl=80,
            blksize=3120,
            space=("TRK", 2, 1),
            dirblks=6,
        )
        pds = Pds(vol, "DIR.SRC")
        for entry, records in keep:
            pds.write(entry.name, records, userdata=entry.userdata)
        pds.alias("ALIAS0", "OLD0")
        for i in range(8):
            pds.write(f"NEW{i}", text, userid="HERC02")
    basket = tmp_path / "new.basket"
    export(basket, base=base, images=[prod])
    result = import_basket(basket, [hot])
    assert result.verified and result.applied == 8
    assert differences(fingerprint([prod]), fingerprint([hot])) == []
    with api.open_volume(hot) as vol:
        assert api.check(vol) == []
        assert sum(1 for _ in io.read_blocks(vol, vol.dataset("DIR.SRC"))) > 1


def test_full_directory_that_cannot_grow_is_refused_before_writing(tmp_path):
    hot = tmp_path / "hot.3390"
    text = small_directory(hot, "DIR002")
    with Volume.open(hot, writable=True) as vol:  # ALIAS0 now points at the old copy
        Pds(vol, "DIR.SRC").write("OLD0", text[:10], userid="HERC01")
    operations = [
        ops.Operation(
            seq=i,
            kind="member.put",
            volser="DIR002",
            dsname="DIR.SRC",
            member=f"NEW{i}",
            after=DIGEST,
            payload=0,
            userdata=bytes(30),
        )
        for i in range(20)
    ]
    block = ops.encode_blocks([ops.Block(0, b"", b"\x40" * 80)])
    basket = basket_of(tmp_path / "many.basket", operations, [block])
    before = sha256s([hot])
    with pytest.raises(SpaceError, match="directory full"):
        import_basket(basket, [hot])
    assert sha256s([hot]) == before
    assert leftovers([hot]) == []


# -- growth and large sequential data sets ---------------------------------------------
def log_record(i: int) -> bytes:
    """80 bytes of varied text, so that record groups are cut at their usual ~64 KiB."""
    h = hashlib.sha256(str(i).encode()).hexdigest()
    return f"{i:08d} LOG {h}{i % 1000:03d}".encode("cp037")


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    """One volume with a large FB log (record groups) and a small PDS; the day inserts
    records in the middle of the log, appends some, and adds members that outgrow the
    PDS's allocation."""
    root = tmp_path_factory.mktemp("big")
    prod = root / "prod.3390"
    with Volume.create(prod, "3390", "BIG001", cyls=40) as vol:
        info = vol.allocate("PROD.LOG", recfm="FB", lrecl=80, blksize=27920, space=("CYL", 3, 1))
        records = [log_record(i) for i in range(30_000)]
        io.write_records(vol, info, records)
        vol.allocate(
            "PROD.SRC",
            dsorg="PO",
            recfm="FB",
            lrecl=80,
            blksize=3120,
            space=("TRK", 2, 1),
            dirblks=10,
        )
    base = root / "base.3390"
    shutil.copyfile(prod, base)
    fpfile.write(fingerprint([prod]), root / "base.ssmfp")
    with Volume.open(prod, writable=True) as vol:
        info = vol.dataset("PROD.LOG")
        new = [f"INSERTED {i}".ljust(80).encode("cp037") for i in range(40)]
        more = [f"APPENDED {i}".ljust(80).encode("cp037") for i in range(25)]
        io.write_records(vol, info, records[:15_000] + new + records[15_000:] + more)
        pds = Pds(vol, "PROD.SRC")
        text = [f"LINE {i}".ljust(80).encode("cp037") for i in range(900)]
        pds.write_many([(f"MEM{i}", {"records": text, "stats": None}) for i in range(4)])
    basket = root / "big.basket"
    export(basket, base=root / "base.ssmfp", images=[prod])
    with read_basket(basket) as b:
        operations = b.operations
    return SimpleNamespace(
        prod=prod, base=base, basket=basket, operations=operations, size=len(records) * 80
    )


def test_record_ranges_and_pds_growth(big, tmp_path):
    hot = tmp_path / "hot.3390"
    shutil.copyfile(big.base, hot)
    log_op = next(op for op in big.operations if op.dsname == "PROD.LOG")
    assert log_op.kind == "dataset.records"
    # only the record groups around the changes travel (group granularity)
    assert sum(len(r) for e in _edits(big.basket, log_op) for r in e.records) < big.size // 4
    with api.open_volume(hot) as vol:
        extents_before = len(vol.dataset("PROD.SRC").extents)
        log = vol.dataset("PROD.LOG")
        # record 15000 is in block 42 (349 records a block), on relative track 21
        kept = [vol.read_track(vol.trk_of(log, tt)) for tt in range(21)]
    result = import_basket(big.basket, [hot])
    assert result.verified
    assert differences(fingerprint([big.prod]), fingerprint([hot])) == []
    with api.open_volume(hot) as vol:  # the tracks before the first edit were not rewritten
        log = vol.dataset("PROD.LOG")
        assert [vol.read_track(vol.trk_of(log, tt)) for tt in range(21)] == kept
    with api.open_volume(hot) as vol:
        assert len(vol.dataset("PROD.SRC").extents) > extents_before
        assert api.check(vol) == []
        prod_records = api.read_records(api.open_volume(big.prod), "PROD.LOG")
        assert io.read_records(vol, vol.dataset("PROD.LOG")) == prod_records


def _edits(basket: Path, op: ops.Operation) -> list[ops.RecordEdit]:
    with read_basket(basket) as b:
        return ops.decode_edits(b.payload(op.payload))


def test_record_edit_past_the_end_is_an_error_not_a_crash(big, tmp_path):
    hot = tmp_path / "hot.3390"
    shutil.copyfile(big.base, hot)
    fp = fingerprint([hot])
    op = ops.Operation(
        seq=0,
        kind="dataset.records",
        volser="BIG001",
        dsname="PROD.LOG",
        before=ops.state_of(fp, "PROD.LOG"),
        after=DIGEST,
        payload=0,
        records=(10**6, 10**6),
    )
    edits = ops.encode_edits([ops.RecordEdit(10**6, 10**6, [b"X" * 80])])
    basket = basket_of(tmp_path / "past.basket", [op], [edits])
    before = sha256s([hot])
    with pytest.raises(EmulatorError):
        import_basket(basket, [hot])
    assert sha256s([hot]) == before
    assert leftovers([hot]) == []


def test_blocking_of_rewritten_tail_follows_the_dcb(big, tmp_path):
    hot = tmp_path / "hot.3390"
    shutil.copyfile(big.base, hot)
    import_basket(big.basket, [hot])
    with api.open_volume(hot) as vol:
        info = vol.dataset("PROD.LOG")
        sizes = [len(b.data) for b in io.read_blocks(vol, info)]
    # full blocks of 349 records except where the kept part ends and at the very end
    assert sum(1 for n in sizes if n != 27920) <= 2


def test_pds_with_no_extent_left_is_compressed(tmp_path, monkeypatch):
    hot = tmp_path / "hot.3390"
    text = [f"LINE {i}".ljust(80).encode("cp037") for i in range(500)]
    with Volume.create(hot, "3390", "CMP001", cyls=5) as vol:
        vol.allocate(
            "CMP.SRC",
            dsorg="PO",
            recfm="FB",
            lrecl=80,
            blksize=3120,
            space=("TRK", 1, 1),
            dirblks=2,
        )
        pds = Pds(vol, "CMP.SRC")
        while len(vol.dataset("CMP.SRC").extents) < 16:  # saves leave dead copies behind
            pds.write("OLD", text, stats=None)
    prod = tmp_path / "prod.3390"
    shutil.copyfile(hot, prod)
    base = fingerprint([hot])
    big = [f"NEW {i}".ljust(80).encode("cp037") for i in range(1500)]
    with Volume.open(prod, writable=True) as vol:
        pds = Pds(vol, "CMP.SRC")
        pds.compress()
        pds.write("NEW", big, stats=None)
    basket = tmp_path / "new.basket"
    export(basket, base=base, images=[prod])
    compressed = []
    original = Pds.compress
    monkeypatch.setattr(
        Pds, "compress", lambda self: compressed.append(self.dsname) or original(self)
    )
    result = import_basket(basket, [hot])
    assert result.verified and result.applied == 1
    assert compressed == ["CMP.SRC"]
    assert differences(fingerprint([prod]), fingerprint([hot])) == []
    with api.open_volume(hot) as vol:
        assert len(vol.dataset("CMP.SRC").extents) == 16
        assert api.check(vol) == []


def test_one_import_at_a_time(world, tmp_path):
    hot = hot_site(world, tmp_path)
    with apply_mod._exclusive([os.fspath(p) for p in hot]):
        with pytest.raises(ConflictError, match="another ssm import"):
            import_basket(world.basket, hot)


# -- spanned records travel as record edits ---------------------------------------------
def smf_record(i: int) -> bytes:
    """A variable-length record of 100..12099 bytes: with BLKSIZE 4096 most of them span
    two to four blocks, and group cuts fall between segments of one block."""
    seed = hashlib.sha256(str(i).encode()).digest()
    return (seed * 400)[: 100 + (i * 7919) % 12000]


@pytest.fixture(scope="module")
def spanned(tmp_path_factory):
    """One volume with a VBS data set large enough for record groups (~2.4 MB); the day
    inserts records in its middle and appends more."""
    root = tmp_path_factory.mktemp("spanned")
    prod = root / "prod.3390"
    records = [smf_record(i) for i in range(400)]
    with Volume.create(prod, "3390", "SMF001", cyls=20) as vol:
        info = vol.allocate("PROD.SMF", recfm="VBS", lrecl="X", blksize=4096, space=("CYL", 4, 1))
        io.write_records(vol, info, records)
    base = root / "base.3390"
    shutil.copyfile(prod, base)
    base_fp = fingerprint([prod])
    assert base_fp.find("PROD.SMF").gcount > 10
    fpfile.write(base_fp, root / "base.ssmfp")
    inserted = [smf_record(10_000 + i) for i in range(7)]
    appended = [smf_record(20_000 + i) for i in range(12)]
    with Volume.open(prod, writable=True) as vol:
        io.write_records(
            vol, vol.dataset("PROD.SMF"), records[:250] + inserted + records[250:] + appended
        )
    basket = root / "smf.basket"
    export(basket, base=root / "base.ssmfp", images=[prod])
    with read_basket(basket) as b:
        operations = b.operations
    size = sum(len(r) for r in records)
    return SimpleNamespace(prod=prod, base=base, basket=basket, operations=operations, size=size)


def test_spanned_records_travel_and_apply_as_record_edits(spanned, tmp_path):
    (op,) = spanned.operations
    assert op.kind == "dataset.records"
    travelled = [r for e in _edits(spanned.basket, op) for r in e.records]
    # the groups around the insertion and the end travel, not the data set
    assert sum(len(r) for r in travelled) < spanned.size // 4
    assert smf_record(10_003) in travelled and smf_record(20_011) in travelled
    hot = tmp_path / "hot.3390"
    shutil.copyfile(spanned.base, hot)
    with api.open_volume(hot) as vol:
        info = vol.dataset("PROD.SMF")
        kept = [vol.read_track(vol.trk_of(info, tt)) for tt in range(10)]
    result = import_basket(spanned.basket, [hot], backout=tmp_path / "undo.basket")
    assert result.verified
    with api.open_volume(hot) as vol, api.open_volume(spanned.prod) as pv:
        info = vol.dataset("PROD.SMF")
        # the records before the first edited group stayed where they were
        assert [vol.read_track(vol.trk_of(info, tt)) for tt in range(10)] == kept
        assert io.read_records(vol, info) == io.read_records(pv, pv.dataset("PROD.SMF"))
        assert api.check(vol) == []
    # the backout holds only the records the edits replace, and restores the morning
    assert import_basket(tmp_path / "undo.basket", [hot]).verified
    assert differences(fingerprint([spanned.base]), fingerprint([hot])) == []


# -- limits: what a basket may touch ---------------------------------------------------
def test_exclude_refuses_the_basket_before_anything_is_written(world, tmp_path):
    hot = hot_site(world, tmp_path)
    before = sha256s(hot)
    sys1 = sorted({op.dsname for op in world.operations if op.dsname.startswith("SYS1.")})
    assert sys1  # the day changed system libraries
    result = import_basket(world.basket, hot, exclude=["SYS1.**"])
    assert result.refused and result.applied == 0 and not result.verified
    assert [line.split(":")[0] for line in result.outside] == sys1
    assert sha256s(hot) == before and leftovers(hot) == []
    # an include that leaves out the system libraries refuses the same data sets
    result = import_basket(world.basket, hot, include=["USER.**"])
    assert [line.split(":")[0] for line in result.outside] == sys1
    assert sha256s(hot) == before
    # limits that allow everything the basket touches let it through
    result = import_basket(world.basket, hot, include=["SYS1.**", "USER.**"], exclude=["X.**"])
    assert not result.outside and result.verified


def test_import_cli_limits_exit_1_and_list_the_data_sets(world, tmp_path, capsys):
    from ssm.cli import main

    hot = hot_site(world, tmp_path)
    before = sha256s(hot)
    args = ["import", os.fspath(world.basket), *map(os.fspath, hot), "--exclude", "SYS1.**"]
    assert main(args) == 1
    out = capsys.readouterr().out
    assert "REFUSED, nothing written" in out and "outside: SYS1." in out
    assert sha256s(hot) == before
    assert main(["import", os.fspath(world.basket), *map(os.fspath, hot), "--exclude", "A..B"]) == 2


def test_operation_on_a_volume_that_is_not_a_target_is_refused(world, tmp_path):
    with read_basket(world.basket) as b:
        operations = b.operations
        payloads = [b.payload(i) for i in range(b.payload_count)]
    moved = next(op for op in operations if op.kind == "member.put")
    moved.volser = "ELSE01"
    basket = tmp_path / "elsewhere.basket"
    write_basket(basket, world.header, operations, payloads)
    hot = hot_site(world, tmp_path)
    before = sha256s(hot)
    result = import_basket(basket, hot)
    assert result.refused
    assert result.outside == [f"{moved.dsname}: on volume ELSE01, which is not a target"]
    assert sha256s(hot) == before and leftovers(hot) == []


def test_writes_stay_inside_the_data_sets_the_manifest_names(world, tmp_path):
    hot = hot_site(world, tmp_path)
    names = {op.dsname for op in world.operations} | {
        op.new_name for op in world.operations if op.new_name and op.kind == "dataset.rename"
    }

    def tracks(paths) -> dict:
        """{(volser, track): bytes} and the tracks of the named data sets and VTOCs."""
        out, named = {}, set()
        for p in paths:
            with api.open_volume(p) as vol:
                first, last = vol.vtoc_extent
                named |= {(vol.volser, t) for t in range(first, last + 1)}
                for info in vol.datasets():
                    if info.dsname in names:
                        for e in info.extents:
                            named |= {(vol.volser, t) for t in range(e.begin, e.end + 1)}
                for t in range(vol.image.total_tracks):
                    out[(vol.volser, t)] = vol.image.read_track(t)
        return out, named

    before, named_before = tracks(hot)
    assert import_basket(world.basket, hot).verified
    after, named_after = tracks(hot)
    changed = {t for t in before if before[t] != after[t]}
    assert changed and changed <= named_before | named_after


def test_import_refuses_a_damaged_zstd_frame_before_writing(world, tmp_path):
    """A day's basket whose largest zstd frame decodes wrong (digests resealed):
    ``ssm import`` names the basket and the payload, and the target keeps its bytes."""
    hot = hot_site(world, tmp_path)
    path = tmp_path / "day.basket"
    with read_basket(world.basket) as b:
        zstd = [i for i, f in enumerate(b.frames) if f.codec == fmt.CODEC_ZSTD]
        assert zstd, "the day's payloads are compressed with zstd"
        victim = max(zstd, key=lambda i: b.frames[i].stored_len)
        info = b.frames[victim]
    data = bytearray(world.basket.read_bytes())
    middle = info.data_offset + info.stored_len // 2
    data[middle : middle + 4] = bytes(4) if any(data[middle : middle + 4]) else b"\xff" * 4
    path.write_bytes(reseal_basket(data))
    before = [p.read_bytes() for p in hot]
    with pytest.raises(FormatError) as exc:
        import_basket(path, hot)
    assert exc.value.path == str(path) and f"payload {victim} " in str(exc.value)
    assert [p.read_bytes() for p in hot] == before
    assert sorted(p.name for p in (tmp_path / "hot").iterdir()) == sorted(p.name for p in hot)
