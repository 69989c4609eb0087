"""Benchmark change baskets against rsync batches for the same day of change.

    python tools/bench_basket.py                       # size "small", 5 runs each
    python tools/bench_basket.py --size 1g --runs 7    # a 1.1 GB-per-volume system
    python tools/bench_basket.py --keep /tmp/bench     # keep the work folder

One system (``fixtures.generate.build_system``, ``--volumes`` volumes of ``--size``) is
built and fingerprinted (the baseline, ``base.ssmfp``); a copy gets one simulated day
of change (``fixtures.daysim.simulate_day``): production.  Then, alternately
(``--runs`` rounds; the side that goes first alternates between rounds):

* export: ``ssm.export.export(base=base.ssmfp, images=production)`` vs
  ``rsync -a --no-whole-file --inplace --only-write-batch=BATCH production/ replica/``
  where ``replica/`` is a copy of the baseline images (``--only-write-batch`` leaves it
  as it is; ``--no-whole-file`` because rsync copies whole files between local paths
  otherwise, and the delta is what a batch is for).
* import: ``ssm.apply.import_basket(basket, targets)`` onto a fresh copy of the
  baseline vs ``rsync -a --inplace --read-batch=BATCH copy/`` onto another fresh copy
  (the copies are made outside the timed part).

The library calls run in this process after one warm-up run (Numba's cache, imports),
as a service would run them; ``rsync`` runs as a program.  The first round's results
are checked: the ssm target fingerprints equal to production (``ssm.compare``), the
rsync target byte-identical to it.

Import throughput of new member data: a ``--full`` basket of the baseline's partitioned
data sets only (``--include`` of each PDS name) is imported onto empty volumes of the
same volsers and geometry, ``--runs`` times; throughput = the members' content bytes
(the basket's ``counts.content_bytes``) / import seconds.

Targets (issue 5): basket <= 1/2 the rsync batch; export and import each <= 1/4 of the
rsync batch creation time; new member data >= 200 MB/s.  Prints medians, ratios and
PASS/FAIL per target.  Timing lives here, never in unit tests.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from fixtures.daysim import simulate_day  # noqa: E402
from fixtures.generate import build_system, volsers  # noqa: E402
from ssm import fpfile  # noqa: E402
from ssm.apply import import_basket  # noqa: E402
from ssm.compare import compare  # noqa: E402
from ssm.drill import image_bytes, image_files  # noqa: E402
from ssm.export import export  # noqa: E402
from ssm.fingerprint import fingerprint  # noqa: E402

RSYNC_WRITE = ["-a", "--no-whole-file", "--inplace"]
RSYNC_READ = ["-a", "--inplace"]
#: rsync 3.x --read-batch waits forever when the batch lacks a file its destination
#: differs in (seen when a batch was written against a same-size file with an mtime in
#: the same second); never hang the benchmark on it.
RSYNC_TIMEOUT = 1800


def need_rsync() -> str:
    path = shutil.which("rsync")
    if path is None:
        sys.exit("rsync is not installed (apt-get install -y rsync)")
    return path


def fresh_copy(images: list[Path], folder: Path) -> list[Path]:
    """Copies of the images (every piece) with their modification times: a restored
    backup.  rsync's quick check compares size and mtime, so copies must keep them."""
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    out = []
    for p in images:
        for f in image_files(p):
            shutil.copy2(f, folder / f.name)
        out.append(folder / Path(p).name)
    return out


def age(images: list[Path], seconds: float) -> None:
    """Set the images' modification time ``seconds`` in the past (the month-start
    backup was taken days ago; production's images change after it)."""
    when = time.time() - seconds
    for p in images:
        for f in image_files(p):
            os.utime(f, (when, when))


def sha(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 24):
            h.update(chunk)
    return h.hexdigest()


def same_bytes(a: list[Path], b: list[Path]) -> bool:
    fa = [f for p in a for f in image_files(p)]
    fb = [f for p in b for f in image_files(p)]
    return len(fa) == len(fb) and all(sha(x) == sha(y) for x, y in zip(fa, fb, strict=True))


def timed(fn, *args, **kwargs):
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return time.perf_counter() - t0, out


def rsync_write(rsync: str, src: Path, dst: Path, batch: Path) -> float:
    for f in (batch, batch.with_name(batch.name + ".sh")):
        f.unlink(missing_ok=True)
    t0 = time.perf_counter()
    subprocess.run(
        [rsync, *RSYNC_WRITE, f"--only-write-batch={batch}", f"{src}/", f"{dst}/"],
        check=True,
        stdin=subprocess.DEVNULL,
        timeout=RSYNC_TIMEOUT,
    )
    return time.perf_counter() - t0


def rsync_read(rsync: str, batch: Path, dst: Path) -> float:
    t0 = time.perf_counter()
    subprocess.run(
        [rsync, *RSYNC_READ, f"--read-batch={batch}", f"{dst}/"],
        check=True,
        stdin=subprocess.DEVNULL,
        timeout=RSYNC_TIMEOUT,
    )
    return time.perf_counter() - t0


def result_field(result, name: str, default=None):
    if isinstance(result, dict):
        return result.get(name, default)
    return getattr(result, name, default)


def basket_counts(path: Path) -> dict:
    from ssm.basket.fmt import read_basket

    return dict(read_basket(path).header.get("counts") or {})


def mb(n: float) -> str:
    return f"{n / 1e6:.2f} MB"


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="small", help="fixtures.generate size: small (default), 1g")
    ap.add_argument("--volumes", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--rate", type=float, default=0.01, help="daysim rate (default 0.01)")
    ap.add_argument("--runs", type=int, default=5, help="rounds, at least 5 (default 5)")
    ap.add_argument("--keep", type=Path, help="work folder to keep (default: a temp folder)")
    ap.add_argument("--json", action="store_true", help="also print the numbers as JSON")
    args = ap.parse_args(argv)
    if args.runs < 5:
        ap.error("--runs must be at least 5 (medians of at least five runs)")
    rsync = need_rsync()
    version = subprocess.run([rsync, "--version"], capture_output=True, text=True).stdout
    work = args.keep or Path(tempfile.mkdtemp(prefix="bench-basket-"))
    if args.keep:
        if work.exists() and any(work.iterdir()):
            sys.exit(f"{work}: not empty")
        work.mkdir(parents=True, exist_ok=True)
    try:
        return run(args, rsync, version.splitlines()[0], work)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


def run(args, rsync: str, rsync_version: str, work: Path) -> int:
    print(f"{rsync_version}; {os.cpu_count()} CPUs; work folder {work}")
    t0 = time.perf_counter()
    baseline = build_system(work / "baseline", seed=args.seed, size=args.size, volumes=args.volumes)
    full = image_bytes(baseline)
    print(f"system: {args.volumes} volumes of size {args.size}, {mb(full)} of images "
          f"(built in {time.perf_counter() - t0:.1f} s)")  # fmt: skip
    age(baseline, 3 * 86400)
    base_fp = work / "base.ssmfp"
    fpfile.write(fingerprint(baseline), base_fp)
    production = fresh_copy(baseline, work / "production")
    log = simulate_day(production, seed=args.seed * 1000 + 1, rate=args.rate)
    members = sum(1 for e in log if e.member is not None)
    print(f"one day of change: {len(log)} objects ({members} members, "
          f"{len(log) - members} data sets)")  # fmt: skip
    prod_fp = fingerprint(production)
    replica = fresh_copy(baseline, work / "replica")  # rsync's destination for the batch
    basket = work / "day.basket"
    batch = work / "day.rsync-batch"

    # warm-up: imports, Numba's cache, the page cache
    export(basket, base=base_fp, images=production)
    import_basket(basket, [os.fspath(p) for p in fresh_copy(baseline, work / "target")])
    rsync_write(rsync, work / "production", work / "replica", batch)

    times: dict[str, list[float]] = {
        k: [] for k in ("export", "rsync-write", "import", "rsync-read")
    }
    basket_bytes = batch_bytes = 0

    def ssm_export(check: bool) -> None:
        basket.unlink(missing_ok=True)
        seconds, _ = timed(export, basket, base=base_fp, images=production)
        times["export"].append(seconds)

    def ssm_import(check: bool) -> None:
        targets = fresh_copy(baseline, work / "target")
        seconds, result = timed(import_basket, basket, [os.fspath(p) for p in targets])
        times["import"].append(seconds)
        if check:
            same = compare(prod_fp, fingerprint(targets)).equal
            if not same or not result_field(result, "verified", False):
                sys.exit("ssm import did not reproduce production")

    def rs_write(check: bool) -> None:
        times["rsync-write"].append(
            rsync_write(rsync, work / "production", work / "replica", batch)
        )

    def rs_read(check: bool) -> None:
        target = fresh_copy(baseline, work / "rsync-target")
        times["rsync-read"].append(rsync_read(rsync, batch, work / "rsync-target"))
        if check and not same_bytes(production, target):
            sys.exit("rsync --read-batch did not reproduce production")

    for round_ in range(args.runs):
        steps = [ssm_export, rs_write, ssm_import, rs_read]
        if round_ % 2:  # alternate which side goes first
            steps = [rs_write, ssm_export, rs_read, ssm_import]
        for step in steps:
            step(round_ == 0)
        basket_bytes = basket.stat().st_size
        batch_bytes = batch.stat().st_size
    if not same_bytes(baseline, replica):  # --only-write-batch must leave it alone
        sys.exit("rsync --only-write-batch changed its destination")

    med = {k: statistics.median(v) for k, v in times.items()}
    counts = basket_counts(basket)

    # import throughput of new member data: a --full basket of the PDSs onto empty volumes
    from emulator import api
    from emulator.volume import Volume

    pds_names = []
    for path in baseline:
        with api.open_volume(path) as vol:
            pds_names += [i.dsname for i in api.list_datasets(vol) if i.dsorg == "PO"]
    full_basket = work / "members.basket"
    export(full_basket, images=baseline, full=True, include=pds_names)
    fcounts = basket_counts(full_basket)
    member_bytes = int(fcounts.get("content_bytes") or 0)
    geometry = []
    for path in baseline:
        with api.open_volume(path) as vol:
            geometry.append((Path(path).name, vol.device.name, vol.volser, vol.cyls))
    thr_times = []
    for _ in range(args.runs):
        empty = work / "empty"
        if empty.exists():
            shutil.rmtree(empty)
        empty.mkdir()
        targets = []
        for name, dev, volser, cyls in geometry:
            Volume.create(empty / name, dev, volser, cyls=cyls).close()
            targets.append(os.fspath(empty / name))
        seconds, result = timed(import_basket, full_basket, targets)
        if not result_field(result, "verified", False):
            sys.exit("the --full member basket did not verify on empty volumes")
        thr_times.append(seconds)
    thr_seconds = statistics.median(thr_times)
    throughput = member_bytes / thr_seconds if thr_seconds else 0.0

    size_ratio = basket_bytes / batch_bytes if batch_bytes else float("inf")
    export_ratio = med["export"] / med["rsync-write"]
    import_ratio = med["import"] / med["rsync-write"]
    print()
    print(f"medians of {args.runs} alternating runs (seconds):")
    print(f"  {'':<28} {'ssm':>10} {'rsync':>10} {'ratio':>7}  target")
    print(f"  {'bytes (basket / batch)':<28} {mb(basket_bytes):>10} {mb(batch_bytes):>10} "
          f"{size_ratio:>7.3f}  <= 0.5   {verdict(size_ratio <= 0.5)}")  # fmt: skip
    print(f"  {'export / --only-write-batch':<28} {med['export']:>10.3f} "
          f"{med['rsync-write']:>10.3f} {export_ratio:>7.3f}  <= 0.25  "
          f"{verdict(export_ratio <= 0.25)}")  # fmt: skip
    print(f"  {'import / (batch creation)':<28} {med['import']:>10.3f} "
          f"{med['rsync-write']:>10.3f} {import_ratio:>7.3f}  <= 0.25  "
          f"{verdict(import_ratio <= 0.25)}")  # fmt: skip
    print(f"  {'import / --read-batch':<28} {med['import']:>10.3f} "
          f"{med['rsync-read']:>10.3f} {med['import'] / med['rsync-read']:>7.3f}  (information)")  # fmt: skip
    print(f"  basket: {basket_bytes / full:.4%} of the full-volume bytes; "
          f"operations {json.dumps({k: v for k, v in sorted(counts.items())})}")  # fmt: skip
    print(f"  new member data: {mb(member_bytes)} in {thr_seconds:.3f} s = "
          f"{throughput / 1e6:.0f} MB/s  (target >= 200 MB/s) {verdict(throughput >= 200e6)}")  # fmt: skip
    doc = {
        "size": args.size,
        "volumes": args.volumes,
        "runs": args.runs,
        "full_bytes": full,
        "basket_bytes": basket_bytes,
        "rsync_batch_bytes": batch_bytes,
        "seconds": {k: v for k, v in sorted(times.items())},
        "median": med,
        "ratios": {"size": size_ratio, "export": export_ratio, "import": import_ratio},
        "member_bytes": member_bytes,
        "member_import_seconds": thr_times,
        "member_throughput": throughput,
        "volsers": volsers(args.volumes),
    }
    if args.json:
        print(json.dumps(doc, indent=2, sort_keys=True))
    ok = size_ratio <= 0.5 and export_ratio <= 0.25 and import_ratio <= 0.25
    return 0 if ok and throughput >= 200e6 else 1


if __name__ == "__main__":
    sys.exit(main())
