"""Fingerprint sections: against the peers, ``--since``, 1 vs 2 cores, image sizes."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchlib.context import Context, have
from benchlib.measure import BenchError, Sample, Side, alternate, drop_caches, run_program
from benchlib.report import Row, Section, memory, rate, size, timed
from benchlib.systems import (
    append_to_logs,
    changed_tracks,
    copy_system,
    files_of,
    image_bytes,
    pds_names,
)
from fixtures.daysim import simulate_day
from ssm import fpfile
from ssm.fingerprint import ACTIVE_WINDOW, fingerprint

GB = 1e9
#: Issue 3 targets.
SHA_RATIO = 0.5
ONE_CORE = 4e9  # bytes per second on one worker, after start-up
BOTH_CORES = 1.5  # CPU seconds per wall second with two workers
PEAK = 1e9  # bytes, fingerprinting a 3390-9
SINCE_RATIO = 0.10


def label(size_name: str, nbytes: int) -> str:
    return f"{size_name} ({size(nbytes)})"


def warm_page_cache(files: list[Path]) -> None:
    for f in files:
        with open(f, "rb", buffering=0) as fh:
            while fh.read(64 << 20):
                pass


def _dasdpdsu_script(image: Path, names: list[str]) -> str:
    """Unload every member of every PDS (each PDS into its own folder: member names
    repeat across libraries), then sha256sum every file.  A PDS dasdpdsu cannot unload
    does not stop the others."""
    lines = []
    for n, dsname in enumerate(names):
        lines.append(
            f"mkdir -p p{n} && (cd p{n} && dasdpdsu {shlex.quote(str(image))} "
            f"{shlex.quote(dsname)} >/dev/null 2>&1 || true)"
        )
    lines.append("find . -type f -print0 | sort -z | xargs -0 -r sha256sum >/dev/null")
    return "\n".join(lines)


def _dasdpdsu_probe(image: Path, names: list[str], folder: Path) -> tuple[list[str], int, int]:
    """(PDSs dasdpdsu refuses, member files written, bytes written), run once untimed."""
    failed = []
    for n, dsname in enumerate(names):
        sub = folder / f"p{n}"
        sub.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(
            ["dasdpdsu", str(image), dsname], cwd=sub, capture_output=True, check=False
        )
        if done.returncode != 0:
            failed.append(dsname)
    files = [f for f in folder.rglob("*") if f.is_file()]
    return failed, len(files), sum(f.stat().st_size for f in files)


#: The peer's unloaded member files go to memory when a RAM file system is there:
#: only the peer writes files, so this can only favour it.
RAM_FOLDER = Path("/dev/shm")


def unload_folder(name: str) -> Path:
    parent = RAM_FOLDER if RAM_FOLDER.is_dir() and os.access(RAM_FOLDER, os.W_OK) else None
    return Path(tempfile.mkdtemp(prefix=f"ssm-bench-{name}-", dir=parent))


def fingerprint_section(ctx: Context, sec: Section) -> None:
    plan = ctx.plan
    xxh3_name = "xxhsum -H3" if have("xxhsum") else "XXH3-128 (Python xxhash over a memory map)"
    b3_name = "b3sum --num-threads 1" if have("b3sum") else "Python blake3 over a memory map"
    sec.intro = [
        "*ours*: `ssm.fingerprint.fingerprint([image])` (2 workers unless said), and the "
        "whole `ssm fingerprint -o FILE IMAGE` command.  Peers: `sha256sum` of the image "
        f"files; one XXH3 pass over them ({xxh3_name}), the practical ceiling of any "
        "reader of every byte; Hercules `dasdpdsu` unloading every member of every PDS "
        "(one folder each, on a RAM file system when there is one), then `sha256sum` of "
        "the member files.  The one-worker rows compare with BLAKE3 of every byte of the "
        f"image files on one thread ({b3_name}): the hash the fingerprint must take of "
        "every data byte, alone.  GB/s = image file "
        "bytes / seconds.  Warm: the image read once before; cold: the page cache "
        "dropped before every run of every side.",
    ]
    for size_name in plan.fp_sizes:
        scratch = ctx.ws.scratch(f"fingerprint-{size_name}")
        unload = unload_folder(size_name)
        try:
            _measure_image(ctx, sec, size_name, scratch, unload)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
            shutil.rmtree(unload, ignore_errors=True)


def _measure_image(ctx: Context, sec: Section, size_name: str, scratch: Path, unload: Path) -> None:
    """The rows of one image: warm against every peer, then cold."""
    plan, lib = ctx.plan, ctx.lib
    progress = ctx.progress("fingerprint")
    image = ctx.ws.system(size_name)[0]
    files = files_of([image])
    nbytes = image_bytes([image])
    name = label(size_name, nbytes)
    out = scratch / "out.ssmfp"
    names = pds_names([image])
    failed, nfiles, unloaded = _dasdpdsu_probe(image, names, unload / "probe")
    shutil.rmtree(unload / "probe")

    def clear_unload() -> None:
        shutil.rmtree(unload, ignore_errors=True)
        unload.mkdir()

    script = _dasdpdsu_script(image, names)

    def xxh3() -> Sample:
        if have("xxhsum"):
            return run_program(["xxhsum", "-H3", *map(str, files)])
        return lib.run("xxh3", files=[str(f) for f in files])

    def blake3_one_thread() -> Sample:
        if have("b3sum"):
            return run_program(["b3sum", "--num-threads", "1", *map(str, files)])
        return lib.run("blake3", files=[str(f) for f in files])

    command = [sys.executable, "-m", "ssm", "fingerprint", "-o", str(out), str(image)]
    ours = Side("ours", lambda: lib.run("fingerprint", paths=[str(image)]))
    one = Side("one", lambda: lib.run("fingerprint", paths=[str(image)], workers=1))
    cmd = Side("command", lambda: run_program(command), prepare=lambda: out.unlink(missing_ok=True))
    sha = Side("sha256sum", lambda: run_program(["sha256sum", *map(str, files)]))
    xxs = Side("xxh3", xxh3)
    b3 = Side("blake3", blake3_one_thread)
    pdsu = Side("dasdpdsu", lambda: run_program(script, cwd=unload), prepare=clear_unload)
    warm_page_cache(files)
    st = alternate([ours, one, cmd, sha, xxs, b3, pdsu], plan.runs, progress)
    tracks = st["ours"].info.get("tracks_read", 0), st["ours"].info.get("tracks", 0)
    o = st["ours"]
    sec.rows += [
        Row(
            f"{name} warm: fingerprint vs sha256sum",
            timed(o, nbytes),
            timed(st["sha256sum"], nbytes),
            o.seconds / st["sha256sum"].seconds,
            f"≤ {SHA_RATIO}",
            o.seconds / st["sha256sum"].seconds <= SHA_RATIO,
            o.peak_rss,
            st["sha256sum"].peak_rss,
            key=f"fp-{size_name}-sha",
        ),
        Row(
            f"{name} warm: fingerprint vs one XXH3 pass (ceiling)",
            timed(o, nbytes),
            timed(st["xxh3"], nbytes),
            o.seconds / st["xxh3"].seconds,
            rss_ours=o.peak_rss,
            rss_peer=st["xxh3"].peak_rss,
            key=f"fp-{size_name}-xxh3",
        ),
        Row(
            f"{name} warm: fingerprint vs dasdpdsu every PDS + sha256sum",
            timed(o, nbytes),
            timed(st["dasdpdsu"]),
            o.seconds / st["dasdpdsu"].seconds,
            rss_ours=o.peak_rss,
            rss_peer=st["dasdpdsu"].peak_rss,
            key=f"fp-{size_name}-dasdpdsu",
        ),
        Row(
            f"{name} warm: `ssm fingerprint` command (start-up included) vs sha256sum",
            timed(st["command"], nbytes),
            timed(st["sha256sum"], nbytes),
            st["command"].seconds / st["sha256sum"].seconds,
            f"≤ {SHA_RATIO}",
            st["command"].seconds / st["sha256sum"].seconds <= SHA_RATIO,
            st["command"].peak_rss,
            st["sha256sum"].peak_rss,
            key=f"fp-{size_name}-command",
        ),
        Row(
            f"{name} warm: one worker, after start-up, vs BLAKE3 of every byte on one thread",
            timed(st["one"], nbytes),
            timed(st["blake3"], nbytes),
            st["one"].seconds / st["blake3"].seconds,
            target=f"≥ {ONE_CORE / GB:.0f} GB/s",
            met=nbytes / st["one"].seconds >= ONE_CORE,
            rss_ours=st["one"].peak_rss,
            rss_peer=st["blake3"].peak_rss,
            key=f"fp-{size_name}-one",
        ),
        Row(
            f"{name} warm: cores used (CPU s per wall s, 2 workers)",
            f"{o.cores:.2f}",
            target=f"≥ {BOTH_CORES} (both cores)",
            met=o.cores >= BOTH_CORES,
            key=f"fp-{size_name}-cores",
        ),
        Row(
            f"{name}: peak memory of the fingerprint",
            memory(max(o.peak_rss, st["one"].peak_rss)),
            target="< 1 GB (3390-9)",
            met=max(o.peak_rss, st["one"].peak_rss) < PEAK,
            rss_ours=max(o.peak_rss, st["one"].peak_rss),
            key=f"fp-{size_name}-memory",
        ),
    ]
    if tracks[1]:
        share = tracks[0] / tracks[1]
        alone = st["blake3"].seconds * share
        sec.notes.append(
            f"{name}, one worker: BLAKE3 alone of the {share:.0%} of the tracks the "
            f"fingerprint reads would take about {alone:.3f} s on one thread (the BLAKE3 "
            f"time scaled by that share), {nbytes / alone / GB:.2f} GB/s of image bytes; "
            f"the one-worker target is {nbytes / ONE_CORE:.3f} s, and the fingerprint also "
            "walks every track, copies the records into a stream and takes an XXH3 "
            "signature of each track."
        )
    sec.notes.append(
        f"{name}: the fingerprint read {tracks[0]} of {tracks[1]} tracks (the rest are "
        f"free space); {o.info.get('datasets', 0)} data sets, "
        f"{o.info.get('members', 0)} members.  dasdpdsu wrote {nfiles} member files "
        f"({size(unloaded)}) from {len(names) - len(failed)} of {len(names)} PDSs"
        + (
            f"; it stops on {', '.join(failed)} (it takes only 80-byte records: RECFM U "
            "load libraries are refused), whose time is counted up to the refusal."
            if failed
            else "."
        )
    )
    if not plan.cold:
        return
    if ctx.cold_reason:
        sec.notes.append(f"{name} cold: not measurable here ({ctx.cold_reason}).")
        return

    def cold(side: Side, before=None) -> Side:
        def prepare() -> None:
            if before:
                before()
            drop_caches()

        return Side(side.name, side.run, prepare=prepare)

    st = alternate(
        [cold(ours), cold(sha), cold(xxs), cold(pdsu, clear_unload)], plan.runs, progress
    )
    o = st["ours"]
    for peer, what in (
        ("sha256sum", "sha256sum"),
        ("xxh3", "one XXH3 pass"),
        ("dasdpdsu", "dasdpdsu every PDS + sha256sum"),
    ):
        r = o.seconds / st[peer].seconds
        target = f"≤ {SHA_RATIO}" if peer == "sha256sum" else "-"
        sec.rows.append(
            Row(
                f"{name} cold: fingerprint vs {what}",
                timed(o, nbytes),
                timed(st[peer], nbytes if peer != "dasdpdsu" else None),
                r,
                target,
                r <= SHA_RATIO if peer == "sha256sum" else None,
                o.peak_rss,
                st[peer].peak_rss,
                key=f"fp-{size_name}-cold-{peer}",
            )
        )


def since_section(ctx: Context, sec: Section) -> None:
    plan, lib = ctx.plan, ctx.lib
    original = ctx.ws.system(plan.since_size)[0]
    nbytes = image_bytes([original])
    folder = ctx.ws.scratch("since")
    sec.intro = [
        f"One {label(plan.since_size, nbytes)} image, a copy of which is production: "
        "last written through the emulator (so it has a change map, "
        "docs/formats/changes.md), fingerprinted (OLD), changed, and then fingerprinted "
        "again.  *Ours*: `fingerprint([image], since=OLD)` (OLD read from its file); the "
        "peer: a full `fingerprint([image])` of the same changed image.  The second row "
        "of each case is `--since` without the map's help, as after a change made by "
        "another program (Hercules): every track a reused data set lives on is read.  "
        "Changed tracks are counted from the two fingerprints' track signatures, over "
        "the tracks that hold data.  The images are left to age past the fingerprint's "
        "re-check window by waiting: setting their times back would be a write the "
        "map did not see.",
    ]
    share = plan.since_share
    cases = [
        (
            "appends",
            f"{share:.0%} of the data tracks appended to the largest logs",
            lambda p, data_tracks: append_to_logs(p, max(1, round(share * data_tracks))),
            True,
        ),
        (
            "day",
            f"one simulated day (fixtures.daysim, rate {plan.day_rate})",
            lambda p, _n: simulate_day([p], seed=ctx.ws.seed + 1, rate=plan.day_rate),
            False,
        ),
    ]
    progress = ctx.progress("since")
    for case, what, change, targeted in cases:
        image = copy_system([original], folder / case)[0]
        # production's last write of the day before (a tiny image may have no log room)
        if not append_to_logs(image, 1):
            simulate_day([image], seed=ctx.ws.seed, rate=plan.day_rate)
        time.sleep(ACTIVE_WINDOW)
        base_fp = folder / case / "base.ssmfp"
        lib.run("fingerprint", paths=[str(image)], out=str(base_fp))
        base = fpfile.read(base_fp)
        if not all(v.changes for v in base.volumes):
            raise BenchError(f"since/{case}: the fingerprint recorded no change map")
        blind = folder / case / "base-without-map.ssmfp"
        for v in base.volumes:
            v.changes = None
        fpfile.write(base, blind)
        data_tracks = sum(int(np.count_nonzero(v.track_sigs)) for v in base.volumes)
        change(image, data_tracks)
        time.sleep(ACTIVE_WINDOW)
        full_fp = fingerprint([image])
        changed, read = changed_tracks(base, full_fp)
        same = all(
            fpfile.dumps(fingerprint([image], since=old, created=full_fp.created))
            == fpfile.dumps(full_fp)
            for old in (base_fp, blind)
        )
        st = alternate(
            [
                Side(
                    "since",
                    lambda i=image, b=base_fp: lib.run("fingerprint", paths=[str(i)], since=str(b)),
                ),
                Side(
                    "since-blind",
                    lambda i=image, b=blind: lib.run("fingerprint", paths=[str(i)], since=str(b)),
                ),
                Side("full", lambda i=image: lib.run("fingerprint", paths=[str(i)])),
            ],
            plan.runs,
            progress,
        )
        r = st["since"].seconds / st["full"].seconds
        rb = st["since-blind"].seconds / st["full"].seconds
        sec.rows += [
            Row(
                f"{what}: {changed} of {read} tracks changed ({changed / max(read, 1):.2%})",
                timed(st["since"]),
                timed(st["full"], nbytes),
                r,
                f"≤ {SINCE_RATIO}" if targeted else "-",
                r <= SINCE_RATIO if targeted else None,
                st["since"].peak_rss,
                st["full"].peak_rss,
                key=f"since-{case}",
            ),
            Row(
                f"{what}: without the change map (changes made by another program)",
                timed(st["since-blind"]),
                timed(st["full"], nbytes),
                rb,
                rss_ours=st["since-blind"].peak_rss,
                rss_peer=st["full"].peak_rss,
                key=f"since-{case}-blind",
            ),
        ]
        reused = st["since"].info.get("stats", {})
        sec.notes.append(
            f"{what}: `--since` took over {reused.get('reused', '?')} of "
            f"{reused.get('datasets', '?')} data sets whole; its result, with and without "
            "the map, is "
            + (
                "byte-identical to the full fingerprint's."
                if same
                else "**not** identical to the full fingerprint's."
            )
        )
        shutil.rmtree(folder / case)
    shutil.rmtree(folder, ignore_errors=True)


def scaling_section(ctx: Context, sec: Section) -> None:
    plan, lib = ctx.plan, ctx.lib
    size_name, volumes = plan.scaling
    paths = ctx.ws.system(size_name, volumes)
    nbytes = image_bytes(paths)
    sec.intro = [
        f"A system of {volumes} volumes of size {size_name} ({size(nbytes)} in all), "
        "fingerprinted together: `fingerprint(paths, workers=2)` (*ours*) vs "
        "`workers=1` (the peer).  Warm page cache.",
    ]
    warm_page_cache(files_of(paths))
    args = {"paths": [str(p) for p in paths]}
    st = alternate(
        [
            Side("two", lambda: lib.run("fingerprint", workers=2, **args)),
            Side("one", lambda: lib.run("fingerprint", workers=1, **args)),
        ],
        plan.runs,
        ctx.progress("scaling"),
    )
    two, one = st["two"], st["one"]
    sec.rows = [
        Row(
            f"{volumes} volumes: 2 workers vs 1 worker",
            timed(two, nbytes),
            timed(one, nbytes),
            two.seconds / one.seconds,
            rss_ours=two.peak_rss,
            rss_peer=one.peak_rss,
            key="scaling-ratio",
        ),
        Row(
            f"{volumes} volumes: speed-up of 2 workers",
            f"{one.seconds / two.seconds:.2f} ×",
            key="scaling-speedup",
        ),
        Row(
            f"{volumes} volumes: cores used (CPU s per wall s)",
            f"{two.cores:.2f}",
            f"{one.cores:.2f}",
            target=f"≥ {BOTH_CORES} (both cores)",
            met=two.cores >= BOTH_CORES,
            key="scaling-cores",
        ),
    ]


def sizes_section(ctx: Context, sec: Section) -> None:
    plan, lib = ctx.plan, ctx.lib
    images = [(s, ctx.ws.system(s)[0]) for s in dict.fromkeys(plan.sizes)]
    sizes_b = [image_bytes([p]) for _, p in images]
    sec.intro = [
        "`fingerprint([image])` (2 workers, warm page cache) of one generated volume of "
        "each size, the sizes run alternately.  A straight line is the goal: the cost "
        "of each further GB (the slope between two sizes) must not grow with size.",
    ]
    for _, p in images:
        warm_page_cache(files_of([p]))
    sides = [Side(s, lambda p=p: lib.run("fingerprint", paths=[str(p)])) for s, p in images]
    st = alternate(sides, plan.runs, ctx.progress("sizes"))
    times = [st[s].seconds for s, _ in images]
    for (s, _), nb in zip(images, sizes_b, strict=True):
        sec.rows.append(
            Row(
                f"{label(s, nb)}",
                timed(st[s], nb),
                rss_ours=st[s].peak_rss,
                key=f"size-{s}",
            )
        )
    x, y = np.array(sizes_b, float) / GB, np.array(times)
    if len(x) >= 2:
        slopes = np.diff(y) / np.diff(x)
        for k, sl in enumerate(slopes):
            a, b = images[k][0], images[k + 1][0]
            sec.rows.append(Row(f"slope {a} → {b}", f"{sl:.3f} s per GB"))
        grows = float(slopes[-1] / slopes[0]) if slopes[0] > 0 else float("inf")
        sec.rows.append(
            Row(
                "last slope / first slope",
                f"{grows:.2f}",
                ratio=grows,
                target="≤ 1.25 (a straight line or better)",
                met=grows <= 1.25,
                key="sizes-linear",
            )
        )
        if len(x) >= 3:
            b1, b0 = np.polyfit(x, y, 1)
            fit = b0 + b1 * x
            r2 = 1 - float(((y - fit) ** 2).sum() / max(((y - y.mean()) ** 2).sum(), 1e-30))
            sec.notes.append(
                f"Least-squares line: {b0:.3f} s + {b1:.3f} s per GB (R² {r2:.4f}); at the "
                f"largest size {rate(sizes_b[-1], times[-1])}."
            )
    sec.notes.append(
        "Per-run overhead (opening the image, reading the VTOC, the thread pool) is the "
        "intercept; small images are dominated by it, so their GB/s is lower."
    )
