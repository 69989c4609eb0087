"""Compressed (CCKD) images: writing and reading vs Hercules ``dasdcopy``."""

from __future__ import annotations

import shutil
from pathlib import Path

from benchlib.context import Context, have
from benchlib.measure import BenchError, Sample, Side, alternate, run_program
from benchlib.report import Row, Section, size, timed
from benchlib.systems import image_bytes
from ssm.compare import compare
from ssm.fingerprint import fingerprint


def _remove_image(path: Path) -> None:
    """An image and its further pieces, if any."""
    stem, dot, ext = path.name.partition(".")
    for f in path.parent.glob(f"{stem}*{dot}{ext}"):
        f.unlink()


def cckd_section(ctx: Context, sec: Section) -> None:
    plan, lib = ctx.plan, ctx.lib
    if not have("dasdcopy"):
        sec.error = "Hercules dasdcopy is not installed"
        return
    plain = ctx.ws.system(plan.cckd_size)[0]
    nbytes = image_bytes([plain])
    folder = ctx.ws.scratch("cckd")
    ours_cckd, herc_cckd = folder / "ours.cckd", folder / "hercules.cckd"
    ours_plain, herc_plain = folder / "ours-plain.3390", folder / "hercules-plain.3390"
    sec.intro = [
        f"One plain {plan.cckd_size} image ({size(nbytes)}).  Write: *ours* "
        "`emulator.api.convert(plain, cckd, compress='zlib')` vs `dasdcopy -q -z plain "
        "cckd`.  Read: both turn the CCKD file dasdcopy wrote back into a plain image "
        "(`api.convert(cckd, plain)` vs `dasdcopy -q cckd plain`: the same work, every "
        "track decompressed and written), and *ours* also walks every track through "
        "`DasdImage.read_track` (no peer: dasdcopy has no read-only mode).  GB/s = plain "
        "image bytes / seconds.",
    ]
    progress = ctx.progress("cckd")
    st = alternate(
        [
            Side(
                "ours",
                lambda: lib.run("convert", src=str(plain), dst=str(ours_cckd), compress="zlib"),
                prepare=lambda: ours_cckd.unlink(missing_ok=True),
            ),
            Side(
                "dasdcopy",
                lambda: run_program(["dasdcopy", "-q", "-z", str(plain), str(herc_cckd)]),
                prepare=lambda: herc_cckd.unlink(missing_ok=True),
            ),
        ],
        plan.runs,
        progress,
    )
    ours_size, herc_size = ours_cckd.stat().st_size, herc_cckd.stat().st_size
    sec.rows += [
        Row(
            "write: plain → CCKD (zlib)",
            timed(st["ours"], nbytes),
            timed(st["dasdcopy"], nbytes),
            st["ours"].seconds / st["dasdcopy"].seconds,
            rss_ours=st["ours"].peak_rss,
            rss_peer=st["dasdcopy"].peak_rss,
            key="cckd-write",
        ),
        Row(
            "CCKD file size",
            size(ours_size),
            size(herc_size),
            ours_size / herc_size,
            key="cckd-bytes",
        ),
    ]

    def check(_sample: Sample) -> None:
        if not compare(fingerprint([plain]), fingerprint([ours_plain])).equal:
            raise BenchError("the plain image converted back differs from the original")

    st = alternate(
        [
            Side(
                "ours",
                lambda: lib.run("convert", src=str(herc_cckd), dst=str(ours_plain)),
                prepare=lambda: _remove_image(ours_plain),
                check=check,
            ),
            Side(
                "dasdcopy",
                lambda: run_program(["dasdcopy", "-q", str(herc_cckd), str(herc_plain)]),
                prepare=lambda: _remove_image(herc_plain),
            ),
            Side("walk", lambda: lib.run("walk", path=str(herc_cckd))),
        ],
        plan.runs,
        progress,
    )
    sec.rows += [
        Row(
            "read: CCKD → plain image",
            timed(st["ours"], nbytes),
            timed(st["dasdcopy"], nbytes),
            st["ours"].seconds / st["dasdcopy"].seconds,
            rss_ours=st["ours"].peak_rss,
            rss_peer=st["dasdcopy"].peak_rss,
            key="cckd-read",
        ),
        Row(
            "read: every track decompressed (read_track)",
            timed(st["walk"], nbytes),
            rss_ours=st["walk"].peak_rss,
            key="cckd-walk",
        ),
    ]
    sec.notes.append(
        "Checked on the first run: the plain image made back from dasdcopy's CCKD file "
        "fingerprints equal to the original."
    )
    shutil.rmtree(folder, ignore_errors=True)
