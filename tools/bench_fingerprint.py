"""Benchmark ``ssm fingerprint`` against sha256sum and XXH3 on the same image file.

    python tools/bench_fingerprint.py                 # builds (once) a 1.1 GB system
    python tools/bench_fingerprint.py --image X.3390  # or takes an image
    python tools/bench_fingerprint.py --runs 7 --size 1g --workers 2

The image comes from ``fixtures.generate.build_system(size="1g", volumes=1)`` (a
realistic 3390: PDS libraries with ISPF statistics and load modules, logs, reports,
SMF-like VBS data), cached in ``.fixtures-cache/bench-fingerprint-<size>-<seed>/``.
It is read once to warm the page cache, then sha256sum (the coreutils program),
SHA-256 through hashlib (OpenSSL, usually much faster than coreutils'), XXH3
(the python ``xxhash`` package over the file in 16 MiB pieces) and ``fingerprint()``
(the Python API, after one warm-up call so Numba's cache is loaded) run alternately,
``--runs`` times each.  Then ``--since``: a copy of the image gets one simulated day
of changes (``fixtures.daysim``; the share of tracks whose bytes changed is printed)
and ``fingerprint(since=old)`` alternates with a full ``fingerprint()`` of the copy.
Prints medians, ratios and GB/s (of the image file's size), the CPU seconds used per
wall second, and the peak memory (VmHWM: resident set, of which the image's mapped
pages are file-backed and reclaimable; RssAnon: the process's own memory).  Timing
lives here, never in unit tests.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import xxhash  # noqa: E402

from ssm import fingerprint as fpm  # noqa: E402
from ssm.fingerprint import fingerprint  # noqa: E402


def _status(field: str) -> int:
    """A field of /proc/self/status in bytes (0 when unavailable)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def build_image(size: str, seed: int) -> Path:
    from fixtures.generate import build_system

    folder = REPO / ".fixtures-cache" / f"bench-fingerprint-{size}-{seed}"
    done = folder / "DONE"
    if not done.exists():
        shutil.rmtree(folder, ignore_errors=True)
        print(f"building a {size} system in {folder} ...", flush=True)
        t0 = time.perf_counter()
        build_system(folder, seed=seed, size=size, volumes=1)
        done.write_text("ok\n")
        print(f"  built in {time.perf_counter() - t0:.1f} s", flush=True)
    return sorted(p for p in folder.iterdir() if p.name != "DONE")[0]


def files_of(image: Path) -> list[Path]:
    """The image's files (a split volume has several)."""
    stem, dot, ext = image.name.partition(".")
    pieces = (
        sorted(image.parent.glob(f"{stem[:-1]}[0-9A-R]{dot}{ext}")) if stem.endswith("_1") else []
    )
    return pieces or [image]


def warm(files: list[Path]) -> None:
    for f in files:
        with open(f, "rb") as fh:
            while fh.read(64 << 20):
                pass


def run_sha256sum(files: list[Path]) -> float:
    t0 = time.perf_counter()
    subprocess.run(["sha256sum", *map(str, files)], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def run_hashlib_sha256(files: list[Path]) -> float:
    """SHA-256 through Python's hashlib (OpenSSL): a faster SHA-256 than coreutils'."""
    t0 = time.perf_counter()
    for f in files:
        h = hashlib.sha256()
        with open(f, "rb", buffering=0) as fh:
            buf = bytearray(16 << 20)
            view = memoryview(buf)
            while n := fh.readinto(buf):
                h.update(view[:n])
        h.digest()
    return time.perf_counter() - t0


def run_xxh3(files: list[Path]) -> float:
    t0 = time.perf_counter()
    for f in files:
        h = xxhash.xxh3_64()
        with open(f, "rb", buffering=0) as fh:
            buf = bytearray(16 << 20)
            view = memoryview(buf)
            while n := fh.readinto(buf):
                h.update(view[:n])
        h.intdigest()
    return time.perf_counter() - t0


def timed(fn) -> tuple[float, float, object]:
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    out = fn()
    wall = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    return wall, cpu, out


def changed_tracks(old, new) -> tuple[int, int]:
    """(tracks whose signature changed, tracks read) between two fingerprints."""
    a, b = old.volumes[0].track_sigs, new.volumes[0].track_sigs
    read = (a != 0) | (b != 0)
    return int(((a != b) & read).sum()), int(read.sum())


class _Log:
    def __init__(self, entries: list):
        self.entries = entries


def append_logs(image: Path, fraction: float) -> _Log:
    """A day of log growth: blocks appended at the end (at DS1LSTAR, through the
    emulator's block writer) of the largest FB/VB sequential data sets until about
    ``fraction`` of the volume's used tracks are new or rewritten."""
    from emulator import api
    from emulator.dataset import io

    entries = []
    with api.open_volume(image, writable=True) as vol:
        infos = [i for i in vol.datasets() if not i.is_pds and i.recfm in ("FB", "VB")]
        used = sum(i.used_tracks for i in vol.datasets())
        budget = int(used * fraction)
        for info in sorted(infos, key=lambda i: -i.used_tracks):
            if budget <= 0:
                break
            last = list(io.read_blocks(vol, info, start=(max(info.lstar[0] - 1, 0), 1)))
            if not last or info.lstar == (0, 0):
                continue
            block = last[-1].data if info.recfm == "FB" else last[-1].data
            per_track = max(1, vol.device.records_per_track(info.keylen, len(block)))
            n = min(budget, max(1, info.used_tracks // 10)) * per_track
            with vol.transaction():
                io.write_blocks(vol, info, [(b"", block)] * n, start=info.lstar)
            entries.append((info.dsname, n))
            budget -= n // per_track + 1
    return _Log(entries)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--image", type=Path, help="an existing image (default: build one)")
    ap.add_argument("--size", default="1g", help="fixtures.generate size (default 1g)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--rate", type=float, default=0.05, help="daysim rate for --since")
    ap.add_argument("--append", type=float, default=0.0,
                    help="instead of daysim: append to logs, this share of the tracks")  # fmt: skip
    ap.add_argument("--no-since", action="store_true")
    args = ap.parse_args()

    image = args.image or build_image(args.size, args.seed)
    files = files_of(image)
    size = sum(f.stat().st_size for f in files)
    gb = size / 1e9
    print(f"image {image} ({len(files)} file(s), {size / 2**30:.2f} GiB), "
          f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}")  # fmt: skip
    warm(files)
    fingerprint([image], workers=args.workers)  # Numba cache, imports

    times: dict[str, list[float]] = {
        "sha256sum": [],
        "hashlib-sha256": [],
        "xxh3": [],
        "fingerprint": [],
    }
    cpus: list[float] = []
    fp = None
    for _ in range(args.runs):
        times["sha256sum"].append(run_sha256sum(files))
        times["hashlib-sha256"].append(run_hashlib_sha256(files))
        times["xxh3"].append(run_xxh3(files))
        wall, cpu, fp = timed(lambda: fingerprint([image], workers=args.workers))
        times["fingerprint"].append(wall)
        cpus.append(cpu / wall)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"\nmedians of {args.runs} alternating runs (image size {gb:.3f} GB):")
    for name, t in med.items():
        print(
            f"  {name:12s} {t:7.3f} s  {gb / t:6.2f} GB/s  x{t / med['sha256sum']:.2f} of sha256sum"
        )
    print(f"  fingerprint used {statistics.median(cpus):.2f} CPU-seconds per second "
          f"({fp.stats['workers']} workers), {fp.stats['read_bytes'] / 1e9:.3f} GB of streams")  # fmt: skip
    nds, nmem, ngrp = len(fp.dataset_table), len(fp.members), len(fp.groups)
    from ssm import fpfile

    fpsize = len(fpfile.dumps(fp))
    print(f"  fingerprint file {fpsize} bytes ({100 * fpsize / size:.3f} % of the image): "
          f"{nds} data sets, {nmem} members, {ngrp} record groups")  # fmt: skip

    if not args.no_since:
        copy_dir = image.parent.parent / (image.parent.name + "-day")
        shutil.rmtree(copy_dir, ignore_errors=True)
        copy_dir.mkdir()
        copies = []
        for f in files:
            shutil.copy(f, copy_dir / f.name)
            copies.append(copy_dir / f.name)
        target = copy_dir / image.name
        from fixtures.daysim import simulate_day

        if args.append:
            log = append_logs(target, args.append)
        else:
            log = simulate_day([target], seed=args.seed + 1, rate=args.rate)
        # An image written in the last seconds is read with extra checks (a writer may
        # be active); production-like timing waits until it is quiet.
        time.sleep(fpm.ACTIVE_WINDOW + 0.5)
        warm(copies)
        full_new = fingerprint([target], workers=args.workers)
        changed, read = changed_tracks(fp, full_new)
        what = f"appends ({args.append:.1%} of tracks)" if args.append else f"rate {args.rate}"
        print(f"\n--since after one simulated day ({what}: {len(log.entries)} changes, "
              f"{changed} of {read} tracks read changed = {100 * changed / max(read, 1):.2f} %):")  # fmt: skip
        st: dict[str, list[float]] = {"full": [], "since": []}
        inc = None
        for _ in range(args.runs):
            st["full"].append(timed(lambda: fingerprint([target], workers=args.workers))[0])
            wall, _cpu, inc = timed(lambda: fingerprint([target], since=fp, workers=args.workers))
            st["since"].append(wall)
        fixed = full_new.created
        same = fpfile.dumps(fingerprint([target], since=fp, created=fixed)) == fpfile.dumps(
            fingerprint([target], created=fixed)
        )
        fm, sm = statistics.median(st["full"]), statistics.median(st["since"])
        print(f"  full   {fm:7.3f} s  {gb / fm:6.2f} GB/s")
        print(f"  since  {sm:7.3f} s  x{sm / fm:.3f} of full; reused {inc.stats['reused']} of "
              f"{inc.stats['datasets']} data sets; byte-identical to a full run: {same}")  # fmt: skip
        shutil.rmtree(copy_dir, ignore_errors=True)

    print(f"\npeak memory: VmHWM {_status('VmHWM') / 2**20:.0f} MiB (resident, with the "
          f"image's mapped pages), RssAnon now {_status('RssAnon') / 2**20:.0f} MiB, "
          f"ru_maxrss {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")  # fmt: skip


if __name__ == "__main__":
    main()
