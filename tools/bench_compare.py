"""Time ``ssm compare`` on two synthetic fingerprints of a million members each.

    python tools/bench_compare.py [--members 1000000] [--per-pds 100] [--change 0.01]
                                  [--repeat 5] [--via-file]

Builds fingerprint OLD directly through the model's tables (ssm.model DATASET_DTYPE and
MEMBER_DTYPE, the bulk form ``fpfile.read`` returns): ``members / per-pds`` PDSs with
random names and digests.  NEW is a copy in which ``change`` of the members differ:
half of them content, a fifth attributes only, a tenth each deleted, added and renamed;
and of 100 sequential data sets 10 are changed, 10 deleted and 10 added.  ``--via-file`` writes both with
``ssm.fpfile.write`` and times reading them back too.

Prints the median of ``repeat`` runs of :func:`ssm.compare.compare`, the numbers of
entries found, and the peak memory (tracemalloc peak of one compare, and the process's
maximum resident size).  Asserts that the entries found are the ones planted.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import resource
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

from ssm import model
from ssm.compare import compare

EBCDIC_LETTERS = np.frombuffer("ABCDEFGHIJKLMNOPQRSTUVWXYZ".encode("cp037"), dtype=np.uint8)


def random_names(rng: np.random.Generator, n: int) -> np.ndarray:
    """n distinct 8-letter EBCDIC names as an S8 array, sorted (directory order)."""
    while True:
        raw = EBCDIC_LETTERS[rng.integers(0, 26, size=(n, 8))]
        names = np.unique(raw.view("S8").ravel())
        if len(names) == n:
            return names


def build_old(members: int, per_pds: int, seed: int) -> model.Fingerprint:
    rng = np.random.default_rng(seed)
    nds = max(1, members // per_pds)
    dt = np.zeros(nds, dtype=model.DATASET_DTYPE)
    dt["dsname"] = np.array(
        [f"PROD.APP{k // 1000:04d}.LIB{k % 1000:04d}" for k in range(nds)], "S44"
    )
    dt["dsorg"], dt["recfm"], dt["space_unit"] = b"PO", b"FB", b"TRK"
    dt["lrecl"], dt["blksize"], dt["tracks"], dt["secondary"] = 80, 27920, 150, 15
    dt["flags"] = model.DS_PDS
    counts = np.full(nds, members // nds, dtype=np.int64)
    counts[: members - counts.sum()] += 1
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    dt["mstart"], dt["mcount"] = starts, counts
    dt["content"] = np.frombuffer(rng.bytes(32 * nds), "V32")
    dt["attrs"] = np.frombuffer(rng.bytes(16 * nds), "V16")
    m = np.zeros(members, dtype=model.MEMBER_DTYPE)
    m["ds"] = np.repeat(np.arange(nds), counts)
    # Names sorted within each data set: one big sort of (ds, name) does it.
    names = EBCDIC_LETTERS[rng.integers(0, 26, size=(members, 8))].view("S8").ravel()
    order = np.lexsort((names.view(">u8").astype(np.uint64), m["ds"]))
    m["name"] = names[order]
    m["alias_of"] = -1
    m["size"] = rng.integers(80, 80_000, members)
    m["records"] = m["size"] // 80
    m["content"] = np.frombuffer(rng.bytes(32 * members), "V32")
    m["attrs"] = np.frombuffer(rng.bytes(16 * members), "V16")
    dt = np.concatenate([dt, _sequential(rng, [f"PROD.SEQ.D{k:04d}" for k in range(SEQ)])])
    return _fingerprint(dt, m, _dt.datetime(2024, 5, 1, 2, tzinfo=_dt.UTC))


#: Sequential data sets after the PDSs (their rows do not move any member's ``ds``).
SEQ = 100
SEQ_CHANGED = SEQ_DELETED = SEQ_ADDED = 10


def _sequential(rng: np.random.Generator, names: list[str]) -> np.ndarray:
    dt = np.zeros(len(names), dtype=model.DATASET_DTYPE)
    dt["dsname"] = np.array(names, "S44")
    dt["dsorg"], dt["recfm"], dt["space_unit"] = b"PS", b"FB", b"TRK"
    dt["lrecl"], dt["blksize"], dt["tracks"], dt["size"] = 80, 27920, 15, 80_000
    dt["content"] = np.frombuffer(rng.bytes(32 * len(names)), "V32")
    dt["attrs"] = np.frombuffer(rng.bytes(16 * len(names)), "V16")
    return dt


def _fingerprint(dt: np.ndarray, members: np.ndarray, created: _dt.datetime) -> model.Fingerprint:
    vol = model.VolumeFp("PROD01", "3390", 65520, 15, 56832, "ckd", "prod01.3390")
    vol.track_sigs = np.zeros(vol.total_tracks, dtype="<u8")
    return model.Fingerprint(
        version=model.FORMAT_VERSION,
        created=created,
        tool="bench_compare",
        volumes=[vol],
        dataset_table=dt,
        members=members,
        groups=np.zeros(0, dtype=model.GROUP_DTYPE),
        extents=np.zeros(0, dtype=model.EXTENT_DTYPE),
        userdata=b"",
    )


def build_new(old: model.Fingerprint, change: float, seed: int) -> tuple[model.Fingerprint, dict]:
    """A copy of ``old`` with ``change`` of its members altered; returns it and the plan."""
    rng = np.random.default_rng(seed + 1)
    m = old.members.copy()
    n = len(m)
    k = int(n * change)
    picks = rng.choice(n, size=k, replace=False)
    n_content, n_attrs = k // 2, k // 5
    n_del = n_ren = (k - n_content - n_attrs) // 3
    content = picks[:n_content]
    attrs = picks[n_content : n_content + n_attrs]
    deleted = picks[n_content + n_attrs : n_content + n_attrs + n_del]
    renamed = picks[n_content + n_attrs + n_del : n_content + n_attrs + n_del + n_ren]
    m["content"][content] = np.frombuffer(rng.bytes(32 * len(content)), "V32")
    m["attrs"][attrs] = np.frombuffer(rng.bytes(16 * len(attrs)), "V16")
    # Renamed: a new name (digits cannot collide with the all-letter names).
    new_names = m["name"][renamed].copy().view(np.uint8).reshape(-1, 8)
    new_names[:, 7] = np.frombuffer("7".encode("cp037"), np.uint8)[0]
    m["name"][renamed] = new_names.view("S8").ravel()
    # Added: copies of rows with a digit in the name and new content.
    n_add = k - n_content - n_attrs - n_del - n_ren
    src = rng.choice(np.setdiff1d(np.arange(n), picks), size=n_add, replace=False)
    added = m[src].copy()
    add_names = added["name"].copy().view(np.uint8).reshape(-1, 8)
    add_names[:, 7] = np.frombuffer("9".encode("cp037"), np.uint8)[0]
    added["name"] = add_names.view("S8").ravel()
    added["content"] = np.frombuffer(rng.bytes(32 * n_add), "V32")
    keep = np.ones(n, dtype=bool)
    keep[deleted] = False
    rows = np.concatenate([m[keep], added])
    order = np.lexsort((rows["name"].view(">u8").astype(np.uint64), rows["ds"]))
    rows = rows[order]
    npds = len(old.dataset_table) - SEQ
    dt = old.dataset_table[:npds].copy()
    counts = np.bincount(rows["ds"], minlength=len(dt))
    dt["mcount"] = counts
    dt["mstart"] = np.concatenate([[0], np.cumsum(counts)[:-1]])
    # The data set digests change wherever a member did (as the real PDS digest does).
    touched = np.unique(np.concatenate([m["ds"][picks], added["ds"]]))
    dt["content"][touched] = np.frombuffer(rng.bytes(32 * len(touched)), "V32")
    # Sequential data sets: some changed, some deleted, some added.
    seq = old.dataset_table[npds + SEQ_DELETED :].copy()
    seq["content"][:SEQ_CHANGED] = np.frombuffer(rng.bytes(32 * SEQ_CHANGED), "V32")
    fresh = _sequential(rng, [f"PROD.SEQ.N{k:04d}" for k in range(SEQ_ADDED)])
    seq = np.concatenate([seq, fresh])
    dt = np.concatenate([dt, seq[np.argsort(seq["dsname"], kind="stable")]])
    plan = {
        "changed": len(content),
        "attributes": len(attrs),
        "deleted": len(deleted),
        "renamed": len(renamed),
        "added": n_add,
    }
    return _fingerprint(dt, rows, old.created + _dt.timedelta(days=1)), plan


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--members", type=int, default=1_000_000)
    ap.add_argument("--per-pds", type=int, default=100)
    ap.add_argument("--change", type=float, default=0.01)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--via-file", action="store_true", help="write and read with ssm.fpfile")
    args = ap.parse_args()

    t = time.perf_counter()
    old = build_old(args.members, args.per_pds, args.seed)
    new, plan = build_new(old, args.change, args.seed)
    print(
        f"built {len(old.members):,} / {len(new.members):,} members in "
        f"{len(old.dataset_table):,} data sets: {time.perf_counter() - t:.2f} s"
    )
    if args.via_file:
        from ssm import fpfile

        with tempfile.TemporaryDirectory(prefix="bench-compare-") as tmp:
            paths = [Path(tmp) / "old.ssmfp", Path(tmp) / "new.ssmfp"]
            t = time.perf_counter()
            fpfile.write(old, paths[0])
            fpfile.write(new, paths[1])
            print(f"fpfile.write x2: {time.perf_counter() - t:.2f} s")
            t = time.perf_counter()
            old, new = fpfile.read(paths[0]), fpfile.read(paths[1])
            print(f"fpfile.read x2: {time.perf_counter() - t:.2f} s")

    times = []
    for _ in range(args.repeat):
        t = time.perf_counter()
        result = compare(old, new)
        times.append(time.perf_counter() - t)
    tracemalloc.start()
    compare(old, new)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    found = result.counts()["members"]
    found_ds = result.counts()["datasets"]
    print(
        f"compare: median {statistics.median(times):.3f} s of {args.repeat} (min {min(times):.3f} s)"
    )
    print("members: " + ", ".join(f"{n:,} {k}" for k, n in found.items()))
    print("data sets: " + ", ".join(f"{n:,} {k}" for k, n in found_ds.items()))
    print(
        f"peak memory: {peak / 2**20:.0f} MiB in compare (tracemalloc), "
        f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB max RSS"
    )
    planted_ds = {"added": SEQ_ADDED, "deleted": SEQ_DELETED, "changed": SEQ_CHANGED}
    planted_ds |= {"attributes": 0, "renamed": 0}
    if found != plan or found_ds != planted_ds:
        print(f"MISMATCH: planted {plan} and {planted_ds}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
