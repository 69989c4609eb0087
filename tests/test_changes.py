"""Change maps (docs/formats/changes.md): what each commit of a plain image wrote, and
``fingerprint --since`` reading only those tracks.  A map must never make a fingerprint
wrong: any write it did not see leaves it untrusted."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from emulator import api
from emulator.image import changes
from emulator.pds.pds import Pds
from emulator.volume import Volume
from ssm import fingerprint as fpm
from ssm import fpfile
from ssm.fingerprint import fingerprint

WHEN = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def system(tmp_path_factory) -> list[Path]:
    from fixtures.generate import build_system

    return build_system(tmp_path_factory.mktemp("system"), seed=5, size="tiny", volumes=2)


def _production(system: list[Path], folder: Path) -> list[Path]:
    """A copy of ``system`` as production leaves it: last written through the emulator
    (so each image has a map), longer ago than the fingerprint's re-check window."""
    from fixtures.daysim import simulate_day

    folder.mkdir(parents=True)
    paths = [Path(shutil.copy(p, folder / p.name)) for p in system]
    simulate_day(paths, seed=1, rate=0.05)
    time.sleep(fpm.ACTIVE_WINDOW)
    return paths


def _signed(monkeypatch) -> list[int]:
    """Counts the tracks whose signatures are computed from their bytes."""
    counted = [0]
    real = fpm._Source._slot_sigs

    def counting(self, tracks):
        counted[0] += len(tracks)
        return real(self, tracks)

    monkeypatch.setattr(fpm._Source, "_slot_sigs", counting)
    return counted


def _mapped_volume(tmp_path: Path) -> tuple[str, str, int]:
    """A new volume written through the emulator: (path, its map's epoch, generation)."""
    path = str(tmp_path / "v.3390")
    Volume.create(path, "3390", "CHG001", cyls=10).close()
    with api.open_volume(path, writable=True) as vol:
        vol.allocate("A.ONE", space=("TRK", 5, 0))
    epoch, gen = changes.state([path])
    return path, epoch, gen


def test_map_follows_commits_and_distrusts_foreign_writes(tmp_path):
    path, epoch, gen = _mapped_volume(tmp_path)
    with api.open_volume(path, writable=True) as vol:
        info = vol.allocate("A.TWO", space=("TRK", 3, 0))
        api.write(vol, "A.TWO", [b"x" * 80] * 10)
    later = changes.changed_since([path], epoch, gen)
    first = info.extents[0].begin
    assert first in later.tolist() and changes.state([path]) == (epoch, gen + 2)
    assert changes.changed_since([path], epoch, gen + 2).tolist() == []
    assert changes.changed_since([path], "00" * 16, gen) is None  # another epoch
    # A write the map did not see: untrusted, and the next commit starts a new epoch.
    with open(path, "r+b") as fh:
        fh.seek(os.path.getsize(path) - 100)
        fh.write(b"\x01")
    assert changes.state([path]) is None
    assert changes.changed_since([path], epoch, gen) is None
    with api.open_volume(path, writable=True) as vol:
        vol.allocate("A.THREE", space=("TRK", 1, 0))
    new_epoch, new_gen = changes.state([path])
    assert new_epoch != epoch and new_gen == 1
    assert changes.changed_since([path], epoch, gen) is None


def test_torn_last_record_makes_the_map_untrusted(tmp_path):
    path, epoch, gen = _mapped_volume(tmp_path)
    with api.open_volume(path, writable=True) as vol:
        vol.allocate("A.TWO", space=("TRK", 5, 0))
    mpath = changes.map_path(path)
    data = Path(mpath).read_bytes()
    Path(mpath).write_bytes(data[:-3])  # a crash while the last record was appended
    assert changes.state([path]) is None
    assert changes.changed_since([path], epoch, gen) is None
    with api.open_volume(path, writable=True) as vol:  # the next commit starts over
        vol.allocate("A.THREE", space=("TRK", 1, 0))
    assert changes.state([path]) is not None


def test_since_with_a_map_reads_only_written_tracks(system, tmp_path, monkeypatch):
    paths = _production(system, tmp_path / "prod")
    base = fingerprint(paths, created=WHEN)
    assert all(v.changes for v in base.volumes)
    fpfile.write(base, tmp_path / "base.ssmfp")
    again = fpfile.read(tmp_path / "base.ssmfp")
    assert [v.changes for v in again.volumes] == [v.changes for v in base.volumes]
    with api.open_volume(paths[1], writable=True) as vol:  # one member edited
        pds = next(d for d in vol.datasets() if d.is_pds and d.recfm.startswith("F"))
        name = Pds(vol, pds.dsname).members()[0].name
        api.write(vol, f"{pds.dsname}({name})", [b"\xc1" * 80] * 30)
    time.sleep(fpm.ACTIVE_WINDOW)
    full = fingerprint(paths, created=WHEN)
    signed = _signed(monkeypatch)
    inc = fingerprint(paths, since=tmp_path / "base.ssmfp", created=WHEN)
    with_map = signed[0]
    assert fpfile.dumps(inc) == fpfile.dumps(full)
    # The same run without the map's help (as after a write it did not see).
    for vf in base.volumes:
        vf.changes = None
    signed[0] = 0
    plain = fingerprint(paths, since=base, created=WHEN)
    assert fpfile.dumps(plain) == fpfile.dumps(full)
    used = int(sum(np.count_nonzero(v.track_sigs) for v in full.volumes))
    assert signed[0] >= used // 2  # every track a reused data set was read from
    assert with_map <= 8 < signed[0]  # the member's tracks, the VTOC's and the directory's


def test_since_sees_a_write_the_map_did_not(system, tmp_path):
    """A member's bytes changed in place by another program (same size, same tracks):
    the map is not trusted, so --since reads and finds the change."""
    paths = _production(system, tmp_path / "prod")
    base = fingerprint(paths, created=WHEN)
    with api.open_volume(paths[1]) as vol:
        pds = next(d for d in vol.datasets() if d.is_pds and d.recfm.startswith("F"))
        member = Pds(vol, pds.dsname).members()[0]
        trk = vol.trk_of(pds, member.ttr[0])
        image = vol.image.read_track(trk)
        offset = 512 + trk * vol.image.trksize  # the CKD file header is 512 bytes
    at = image.rindex(b"\xff" * 8) - 1  # the last data byte of the track's last record
    with open(paths[1], "r+b") as fh:
        fh.seek(offset + at)
        fh.write(bytes([image[at] ^ 0xFF]))
    full = fingerprint(paths, created=WHEN)
    inc = fingerprint(paths, since=base, created=WHEN)
    assert fpfile.dumps(inc) == fpfile.dumps(full)
    old = {(d.dsname, d.content) for d in base.datasets}
    assert (pds.dsname, full.find(pds.dsname).content) not in old
