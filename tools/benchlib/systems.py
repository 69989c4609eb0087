"""The generated systems the benchmarks run on, and what is done to them between runs.

Systems come from :func:`fixtures.generate.build_system` (realistic volumes: PDS
libraries with ISPF statistics and load modules, logs, reports, SMF-like data) and are
built once per work folder (``Workspace.system``).  Everything else here is untimed
preparation: copies, ages, empty volumes, a day of log growth.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from emulator import api
from emulator.dataset import io
from emulator.errors import SpaceError
from emulator.geometry import parse_devtype
from emulator.image import open_image
from emulator.volume import Volume
from fixtures.generate import SIZES, build_system
from ssm.model import Fingerprint

GB = 1e9
HOUR = 3600.0
DAY = 86400.0


def image_files(path: str | os.PathLike) -> list[Path]:
    """Every file of one volume image (a plain image over 2 GB has several pieces)."""
    with open_image(path) as image:
        return [Path(f) for f in getattr(image, "files", [image.path])]


def files_of(paths: Iterable[str | os.PathLike]) -> list[Path]:
    return [f for p in paths for f in image_files(p)]


def image_bytes(paths: Iterable[str | os.PathLike]) -> int:
    """Bytes of the images' files: what sha256sum or rsync reads."""
    return sum(f.stat().st_size for f in files_of(paths))


def volume_bytes(size: str) -> int:
    """Bytes of one plain 3390 volume image of a generator size (for disk-space checks)."""
    spec = SIZES[size]
    cyls = parse_devtype(spec.model)[1] if spec.model else spec.cyls + 1
    return cyls * 15 * 56832 + 512


def copy_system(paths: Sequence[Path], folder: Path) -> list[Path]:
    """Copies of the images (every piece, with their modification times: rsync's quick
    check compares size and time) in a new ``folder``; returns the first pieces."""
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    out = []
    for path in paths:
        for f in image_files(path):
            shutil.copy2(f, folder / f.name)
        out.append(folder / Path(path).name)
    return out


def set_age(paths: Iterable[Path], seconds: float) -> None:
    """Set the images' modification time ``seconds`` in the past.  A backup was taken
    days ago; production's day ended hours ago; and the fingerprint re-checks images
    written in the last seconds, which no production image was."""
    when = time.time() - seconds
    for f in files_of(paths):
        os.utime(f, (when, when))


def empty_like(paths: Sequence[str | os.PathLike], folder: Path) -> list[Path]:
    """New empty volumes with the volsers and geometry of ``paths``, in the new or
    empty ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for path in paths:
        with api.open_volume(path) as vol:
            dev, volser, cyls = vol.device.name, vol.volser, vol.cyls
        target = folder / Path(path).name
        Volume.create(target, dev, volser, cyls=cyls).close()
        out.append(target)
    return out


def pds_names(paths: Sequence[Path]) -> list[str]:
    names = []
    for path in paths:
        with api.open_volume(path) as vol:
            names += [i.dsname for i in api.list_datasets(vol) if i.dsorg == "PO"]
    return names


def append_to_logs(path: Path, tracks: int) -> int:
    """A day of log growth: blocks appended at the end (at DS1LSTAR, through the
    emulator's block writer) of the largest FB sequential data sets, within their
    allocated space, until about ``tracks`` tracks were written.  Returns the tracks
    written (the fingerprints' signatures tell exactly which tracks changed)."""
    written = 0
    with api.open_volume(path, writable=True) as vol:
        infos = [i for i in vol.datasets() if i.dsorg == "PS" and i.recfm in ("FB", "FBA")]
        for info in sorted(infos, key=lambda i: (-i.used_tracks, i.dsname)):
            room = info.tracks - info.used_tracks - 1
            if written >= tracks or room <= 0 or info.lstar == (0, 0):
                continue
            if next(io.read_blocks(vol, info, start=info.lstar), None) is not None:
                continue  # DS1LSTAR is not at the EOF record: not a plain append
            tail = list(io.read_blocks(vol, info, start=(max(info.lstar[0] - 1, 0), 1)))
            if not tail:
                continue
            block = max(tail, key=lambda b: len(b.data)).data
            per_track = vol.device.records_per_track(info.keylen, len(block))
            take = min(tracks - written, room)
            try:
                io.write_blocks(vol, info, [(b"", block)] * (take * per_track), start=info.lstar)
            except SpaceError:
                continue
            written += take
    return written


def changed_tracks(old: Fingerprint, new: Fingerprint) -> tuple[int, int]:
    """(tracks the new fingerprint read whose signature differs from the old one's,
    tracks the new fingerprint read), over every volume."""
    changed = read = 0
    for a, b in zip(old.volumes, new.volumes, strict=True):
        sig_a, sig_b = np.asarray(a.track_sigs), np.asarray(b.track_sigs)
        data = sig_b != 0
        changed += int(((sig_a != sig_b) & data).sum())
        read += int(data.sum())
    return changed, read


class Workspace:
    """The work folder: built systems under ``systems/`` (kept with ``--keep`` and
    reused by the next run), and scratch folders for each section."""

    def __init__(self, root: Path, seed: int, say):
        self.root = root
        self.seed = seed
        self.say = say
        root.mkdir(parents=True, exist_ok=True)

    def system(self, size: str, volumes: int = 1) -> list[Path]:
        """The images of a generated system (built on first use)."""
        folder = self.root / "systems" / f"{size}-x{volumes}-seed{self.seed}"
        done = folder / "DONE"
        if not done.exists():
            shutil.rmtree(folder, ignore_errors=True)
            t0 = time.perf_counter()
            self.say(f"building {volumes} volume(s) of size {size} in {folder}")
            paths = build_system(folder, seed=self.seed, size=size, volumes=volumes)
            set_age(paths, 3 * DAY)
            done.write_text("\n".join(p.name for p in paths) + "\n")
            self.say(f"built in {time.perf_counter() - t0:.1f} s")
        return [folder / name for name in done.read_text().split()]

    def scratch(self, name: str) -> Path:
        folder = self.root / "scratch" / name
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        return folder

    def free_bytes(self) -> int:
        return shutil.disk_usage(self.root).free
