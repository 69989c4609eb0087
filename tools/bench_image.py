"""Rough timings of the image layer: write, read and walk a volume.

    python tools/bench_image.py [--cyls 100] [--compress zlib|bzip2|none]

Builds a throw-away 3390 volume in a temporary folder (every track two half-track
records of text-like data), then times: writing it as CCKD, reading every track back,
converting it to a plain image, and walking every count field of the plain image with
the Numba kernel over an ``np.memmap``.  Prints one line per step; asserts nothing.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

import numpy as np

from emulator.geometry import device
from emulator.image import convert_image, create_image, open_image
from emulator.kernels.tracks import walk_slots
from emulator.track import build_track


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cyls", type=int, default=100)
    ap.add_argument("--compress", default="zlib", choices=["zlib", "bzip2", "none"])
    args = ap.parse_args()
    rnd = random.Random(1)
    words = [rnd.randbytes(6).hex().encode() for _ in range(300)]
    with tempfile.TemporaryDirectory(prefix="bench-image-") as tmp:
        cckd = Path(tmp) / "bench.cckd"
        start = time.perf_counter()
        with create_image(cckd, device("3390"), args.cyls, compress=args.compress) as im:
            with im.transaction():
                for trk in range(im.total_tracks):
                    data = b" ".join(rnd.choices(words, k=3500))[:27998]
                    im.write_track(trk, build_track(*divmod(trk, 15), [(b"", data)] * 2))
            tracks = im.total_tracks
        report("write", start, tracks, cckd.stat().st_size)
        start = time.perf_counter()
        with open_image(cckd) as im:
            total = sum(len(im.read_track(t)) for t in range(tracks))
        report("read", start, tracks, total)
        plain = Path(tmp) / "bench.3390"
        start = time.perf_counter()
        convert_image(cckd, plain)
        report("convert to plain", start, tracks, plain.stat().st_size)
        mm = np.memmap(plain, dtype=np.uint8, mode="r")
        walk_slots(mm, device("3390").trksize, start=512, end=512 + device("3390").trksize)
        start = time.perf_counter()
        starts, *_rest, err = walk_slots(mm, device("3390").trksize, start=512)
        report(f"kernel walk ({int(starts[-1])} records)", start, tracks, len(mm))


def report(step: str, start: float, tracks: int, nbytes: int) -> None:
    took = time.perf_counter() - start
    print(f"{step:32s} {tracks:6d} tracks {nbytes / 1e6:8.1f} MB {took:7.2f} s")


if __name__ == "__main__":
    main()
