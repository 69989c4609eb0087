"""Two synthetic fingerprints of a million members, for timing ``ssm compare``.

OLD is built directly through the model's tables (``ssm.model`` DATASET_DTYPE and
MEMBER_DTYPE, the bulk form ``fpfile.read`` returns): ``members / per_pds`` PDSs with
random names and digests, and SEQ sequential data sets.  NEW is a copy in which
``change`` of the members differ: half of them content, a fifth attributes only, the
rest deleted, added and renamed in equal parts; and of the sequential data sets
SEQ_CHANGED are changed, SEQ_DELETED deleted and SEQ_ADDED added.  ``build_new``
returns the plan, which a comparison must find exactly.
"""

from __future__ import annotations

import datetime as _dt

import numpy as np

from ssm import model

EBCDIC_LETTERS = np.frombuffer("ABCDEFGHIJKLMNOPQRSTUVWXYZ".encode("cp037"), dtype=np.uint8)


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
        tool="tools/bench",
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


def planted_datasets() -> dict[str, int]:
    """The data set changes ``build_new`` makes, as ``CompareResult.counts()`` counts them."""
    return {
        "added": SEQ_ADDED,
        "deleted": SEQ_DELETED,
        "changed": SEQ_CHANGED,
        "attributes": 0,
        "renamed": 0,
    }
