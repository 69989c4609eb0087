"""The library calls the benchmarks measure, each run in a forked child of the server.

Each job takes JSON-able arguments, does the one thing measured (imports are done by
the server beforehand) and returns a small JSON-able dict about what it did.
"""

from __future__ import annotations

import mmap
import os
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path

import blake3
import numpy as np
import xxhash

from benchlib.systems import empty_like
from emulator import api
from emulator.image import open_image
from ssm import fpfile
from ssm.apply import import_basket
from ssm.compare import compare
from ssm.export import export
from ssm.fingerprint import fingerprint

#: Bytes hashed per update: a pass streams through the mapped file.
HASH_CHUNK = 16 << 20


def fingerprint_job(
    paths: Sequence[str],
    workers: int | None = None,
    since: str | None = None,
    out: str | None = None,
) -> dict:
    fp = fingerprint(paths, since=since, workers=workers)
    if out:
        fpfile.write(fp, out)
    return {
        "stats": fp.stats,
        "members": len(fp.members),
        "datasets": len(fp.dataset_table),
        "tracks_read": sum(int(np.count_nonzero(v.track_sigs)) for v in fp.volumes),
        "tracks": sum(len(v.track_sigs) for v in fp.volumes),
    }


def compare_job(old: str, new: str) -> dict:
    """What ``ssm compare OLD NEW`` does before printing: read both files, compare."""
    result = compare(fpfile.read(old), fpfile.read(new))
    return {"counts": result.counts()}


def export_job(
    out: str,
    images: Sequence[str],
    base: str | None = None,
    full: bool = False,
    include: Sequence[str] = (),
) -> dict:
    result = export(out, base=base, images=images, full=full, include=include)
    return {"bytes": result.bytes, "counts": result.counts, "content_bytes": result.content_bytes}


def import_job(basket: str, targets: Sequence[str]) -> dict:
    result = import_basket(basket, targets)
    return {"verified": result.verified, "applied": result.applied, "refused": result.refused}


def convert_job(src: str, dst: str, compress: str | None = None) -> dict:
    api.convert(src, dst, compress=compress)
    return {}


def walk_job(path: str) -> dict:
    """Every track of an image through the emulator's track reader (decompressed)."""
    total = 0
    with open_image(path) as image:
        for trk in range(image.total_tracks):
            total += len(image.read_track(trk))
    return {"track_bytes": total}


def _mapped_digests(files: Sequence[str], new: Callable) -> list[str]:
    """Each file's digest by a hasher from ``new()`` fed its memory map in chunks."""
    digests = []
    for name in files:
        h = new()
        with open(name, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            view = memoryview(mm)
            for pos in range(0, len(mm), HASH_CHUNK):
                h.update(view[pos : pos + HASH_CHUNK])
            view.release()
        digests.append(h.hexdigest())
    return digests


def xxh3_job(files: Sequence[str]) -> dict:
    """One XXH3-128 pass over the files (Python ``xxhash`` over a memory map)."""
    return {"digests": _mapped_digests(files, xxhash.xxh3_128)}


def blake3_job(files: Sequence[str]) -> dict:
    """BLAKE3 of every byte of the files on one thread (Python ``blake3``)."""
    return {"digests": _mapped_digests(files, blake3.blake3)}


JOBS: dict[str, Callable[..., dict]] = {
    "fingerprint": fingerprint_job,
    "compare": compare_job,
    "export": export_job,
    "import": import_job,
    "convert": convert_job,
    "walk": walk_job,
    "xxh3": xxh3_job,
    "blake3": blake3_job,
}


def warm(images: Sequence[str], scratch: str) -> None:
    """Run every job once on small images so that Numba's cache is loaded (and every
    module imported) before the server forks its first measured child."""
    folder = Path(scratch) / "warm"
    shutil.rmtree(folder, ignore_errors=True)
    (folder / "target").mkdir(parents=True)
    paths = [os.fspath(p) for p in images]
    fingerprint_job(paths, out=str(folder / "base.ssmfp"))
    cckd = str(folder / "warm.cckd")
    convert_job(paths[0], cckd, compress="zlib")
    fingerprint_job([cckd])
    walk_job(cckd)
    convert_job(cckd, str(folder / "warm.3390"))
    export_job(str(folder / "full.basket"), paths, full=True)
    import_job(str(folder / "full.basket"), [str(p) for p in empty_like(paths, folder / "target")])
    compare_job(str(folder / "base.ssmfp"), str(folder / "base.ssmfp"))
    xxh3_job(paths)
    shutil.rmtree(folder, ignore_errors=True)
