"""``ssm drill``: a month of hot-site synchronisation on an embedded production system.

    from ssm.drill import drill
    report = drill(size="tiny", days=3)          # a temporary folder, removed at the end
    print("\\n".join(report.lines()))
    assert report.ok

What it does, with every step through the public library calls (no shortcuts):

1. **Production.**  :func:`fixtures.generate.build_system` builds a realistic system of
   ``volumes`` volume images (SYSRES: SYS1.PARMLIB/PROCLIB text members with ISPF
   statistics, SYS1.LINKLIB load modules with aliases; USER01..: JCL, COBOL, REXX,
   load libraries, large FB and VB logs, reports and SMF data).
2. **Month-start backup.**  The images are copied, file by file, to the hot site's
   ``backup/`` folder: a full-volume dump is exactly that.  Production is fingerprinted
   (:func:`ssm.fingerprint.fingerprint`): the month-start *baseline*.
3. **Each day.**  :func:`fixtures.daysim.simulate_day` changes production (members
   edited, added, deleted, renamed; load modules relinked, aliases added and removed;
   data sets created, scratched, renamed; logs appended; records inserted in the middle
   of a large data set; a reblock and a space change).  In the evening production is
   fingerprinted, and the *cumulative* basket (everything changed since the baseline,
   :func:`ssm.export.export` with ``base=baseline``) is written: the only thing that
   travels.  At the hot site the standby volumes are rebuilt from the untouched backup
   and that one basket is imported (:func:`ssm.apply.import_basket`); the standby is
   fingerprinted and compared with production's evening fingerprint
   (:func:`ssm.compare.compare`: it must find no differences).
4. **Disaster** (after the last day).  Into a fresh folder: the month-start backup is
   restored and the latest cumulative basket imported; the result is compared with
   production at that point (no differences allowed), checked as a volume
   (:func:`emulator.api.check`: VTOC, free space, extents, directories), and the basket
   is imported a second time, which must be a no-op that says so.

Why the standby is rebuilt from the backup each evening.  A cumulative basket's
before-digests describe the month-start state: that is what lets it alone bring the
backup up to date on the day of a disaster.  Imported on top of yesterday's standby, an
object changed yesterday *and* today would be neither in its before state nor in its
after state, and import would rightly refuse it as drift.  So the backup stays
untouched, and each evening's rehearsal is the disaster path itself: backup + latest
basket.  Only the basket crosses the wire; rebuilding the standby is a local copy,
reported apart from the import time.

The folder (``folder``, or a temporary one removed at the end):

    production/             the production volumes (changed in place each day)
    fingerprints/           month-start.ssmfp, dayNN.ssmfp (production), standby-dayNN.ssmfp
    hotsite/backup/         the month-start full-volume backup (never written after day 0)
    hotsite/baskets/        dayNN.basket: the cumulative baskets as they arrived
    hotsite/standby/        the standby volumes: backup + the latest basket
    disaster/               the restore after the disaster

Basket format: docs/formats/basket.md; fingerprints: docs/formats/fingerprint.md.
"""

from __future__ import annotations

import datetime as _dt
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from emulator.errors import ConflictError, EmulatorError
from emulator.image.ckd import SEQ_CHARS, piece_name

#: How each evening's standby and the disaster restore are made (printed in the report).
SCHEME = (
    "The hot site keeps the month-start full-volume backup untouched.  Each evening only "
    "the cumulative basket (every change since the month-start fingerprint) travels; the "
    "standby volumes are rebuilt from the backup and that one basket is imported, so every "
    "evening rehearses the disaster path.  (A cumulative basket's before-digests describe "
    "the month-start state; imported over yesterday's standby it would meet drift.)"
)

#: Evening of each day, when the basket is exported (the basket header's time).
EVENING = _dt.time(20, 0)


@dataclass
class DayReport:
    """One simulated day: what production changed, what travelled, and the rehearsal."""

    day: int
    date: _dt.date
    #: This day's changes (the simulator's ground truth): objects by kind.
    members_changed: int
    datasets_changed: int
    #: Everything since the month start (compare of baseline and this evening).
    cumulative_members: int
    cumulative_datasets: int
    basket: str
    basket_bytes: int
    full_bytes: int
    operations: int
    fingerprint_seconds: float
    export_seconds: float
    restore_seconds: float  # local copy of the backup into the standby folder
    import_seconds: float
    verify_seconds: float
    applied: int
    conflicts: list[str]
    mismatches: list[str]  # objects the import left short of their after state
    import_verified: bool
    differences: int  # compare(production evening, standby): entries found (-1: not run)
    verified: bool
    error: str | None = None  # what stopped the import, if anything

    @property
    def ratio(self) -> float:
        """Basket bytes as a share of the full-volume bytes."""
        return self.basket_bytes / self.full_bytes if self.full_bytes else 0.0

    def to_json(self) -> dict:
        return {
            "day": self.day,
            "date": self.date.isoformat(),
            "members_changed": self.members_changed,
            "datasets_changed": self.datasets_changed,
            "cumulative_members": self.cumulative_members,
            "cumulative_datasets": self.cumulative_datasets,
            "basket": self.basket,
            "basket_bytes": self.basket_bytes,
            "full_bytes": self.full_bytes,
            "ratio": round(self.ratio, 6),
            "operations": self.operations,
            "fingerprint_seconds": round(self.fingerprint_seconds, 4),
            "export_seconds": round(self.export_seconds, 4),
            "restore_seconds": round(self.restore_seconds, 4),
            "import_seconds": round(self.import_seconds, 4),
            "verify_seconds": round(self.verify_seconds, 4),
            "applied": self.applied,
            "conflicts": list(self.conflicts),
            "mismatches": list(self.mismatches),
            "import_verified": self.import_verified,
            "differences": self.differences,
            "error": self.error,
            "verified": self.verified,
        }


@dataclass
class DisasterReport:
    """The restore after the disaster: backup + the latest cumulative basket."""

    after_day: int
    basket: str
    folder: str
    restore_seconds: float
    import_seconds: float
    import_verified: bool
    conflicts: list[str]
    differences: list[str]  # compare(production at that point, restored): report lines
    check_findings: list[str]  # emulator.api.check on every restored volume
    reimport_noop: bool  # the second import said "already applied" and changed nothing
    mismatches: list[str] = field(default_factory=list)  # objects not in their after state
    error: str | None = None  # what stopped the restore, if anything

    @property
    def verified(self) -> bool:
        return (
            self.error is None
            and self.import_verified
            and not self.conflicts
            and not self.mismatches
            and not self.differences
            and not self.check_findings
            and self.reimport_noop
        )

    def to_json(self) -> dict:
        return {
            "after_day": self.after_day,
            "basket": self.basket,
            "folder": self.folder,
            "restore_seconds": round(self.restore_seconds, 4),
            "import_seconds": round(self.import_seconds, 4),
            "import_verified": self.import_verified,
            "conflicts": list(self.conflicts),
            "mismatches": list(self.mismatches),
            "differences": list(self.differences),
            "check_findings": list(self.check_findings),
            "reimport_noop": self.reimport_noop,
            "error": self.error,
            "verified": self.verified,
        }


@dataclass
class DrillReport:
    """The readiness report: one :class:`DayReport` per day and the disaster restore."""

    folder: str
    kept: bool
    size: str
    days: int
    seed: int
    volumes: list[str]
    full_bytes: int
    build_seconds: float
    backup_seconds: float
    day_reports: list[DayReport] = field(default_factory=list)
    disaster: DisasterReport | None = None
    scheme: str = SCHEME

    @property
    def ok(self) -> bool:
        """True when the disaster restore verified (and so did every evening)."""
        return (
            self.disaster is not None
            and self.disaster.verified
            and all(d.verified for d in self.day_reports)
        )

    def to_json(self) -> dict:
        return {
            "folder": self.folder,
            "kept": self.kept,
            "size": self.size,
            "days": self.days,
            "seed": self.seed,
            "volumes": list(self.volumes),
            "full_bytes": self.full_bytes,
            "build_seconds": round(self.build_seconds, 4),
            "backup_seconds": round(self.backup_seconds, 4),
            "scheme": self.scheme,
            "day_reports": [d.to_json() for d in self.day_reports],
            "disaster": self.disaster.to_json() if self.disaster else None,
            "ok": self.ok,
        }

    def lines(self) -> list[str]:
        """The readiness report as text lines."""
        out = [
            f"Production: {len(self.volumes)} volumes ({', '.join(self.volumes)}), size "
            f"{self.size}, seed {self.seed}: {_size(self.full_bytes)} of volume images "
            f"(built in {self.build_seconds:.1f} s, backed up in {self.backup_seconds:.1f} s)",
        ]
        out += _wrap(self.scheme, 88)
        out.append("")
        out.append(
            f"{'Day':>3} {'Date':<10} {'Members':>7} {'DSets':>5} {'Cum.M':>5} {'Cum.D':>5} "
            f"{'Ops':>5} {'Basket':>10} {'of full':>7} {'Export':>7} {'Import':>7} Verified"
        )
        for d in self.day_reports:
            verdict = "yes" if d.verified else "NO"
            if d.error:
                verdict += f" ({d.error})"
            elif d.conflicts:
                verdict += f" ({len(d.conflicts)} conflicts)"
            elif d.differences:
                verdict += f" ({d.differences} differences)"
            elif not d.import_verified:
                verdict += f" ({len(d.mismatches)} after-digests differ)"
            out.append(
                f"{d.day:>3} {d.date.isoformat():<10} {d.members_changed:>7} "
                f"{d.datasets_changed:>5} {d.cumulative_members:>5} "
                f"{d.cumulative_datasets:>5} {d.operations:>5} {_size(d.basket_bytes):>10} "
                f"{100 * d.ratio:>6.2f}% {d.export_seconds:>6.2f}s {d.import_seconds:>6.2f}s "
                f"{verdict}"
            )
        out += _wrap(
            "Members/DSets: objects changed that day; Cum.M/Cum.D: changed since the month "
            "start (what the basket carries); 'of full': basket bytes / full-volume bytes; "
            "Import: the basket applied to the standby rebuilt from the backup.",
            88,
        )
        out.append("")
        dis = self.disaster
        if dis is None:
            out.append("Disaster: not reached.")
        else:
            out.append(
                f"Disaster after day {dis.after_day}: month-start backup restored in "
                f"{dis.restore_seconds:.2f} s, {os.path.basename(dis.basket)} imported in "
                f"{dis.import_seconds:.2f} s."
            )
            if dis.error:
                out.append(f"  restore failed: {dis.error}")
            out.append(
                "  compare with production: "
                + ("no differences" if not dis.differences else f"{len(dis.differences)} lines")
            )
            out += [f"    {line}" for line in dis.differences[:20]]
            out.append(
                "  import after-digests: " + ("verified" if dis.import_verified else "NOT verified")
            )
            out += [f"    mismatch: {m}" for m in dis.mismatches[:20]]
            if dis.conflicts:
                out.append(f"  conflicts: {len(dis.conflicts)}")
                out += [f"    {c}" for c in dis.conflicts[:20]]
            out.append(
                "  volume check: "
                + ("clean" if not dis.check_findings else f"{len(dis.check_findings)} findings")
            )
            out += [f"    {f}" for f in dis.check_findings[:20]]
            out.append(
                "  second import: "
                + ("already applied, nothing changed" if dis.reimport_noop else "NOT a no-op")
            )
        out.append("")
        out.append(
            "READY: the hot site can be brought to production's state from the backup and "
            "one basket."
            if self.ok
            else "NOT READY: see the lines above."
        )
        if self.kept:
            out.append(f"Folder kept: {self.folder}")
        return out


def _wrap(text: str, width: int) -> list[str]:
    lines, line = [], ""
    for word in text.split():
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    if line:
        lines.append(line)
    return lines


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"  # pragma: no cover


# -- files ----------------------------------------------------------------------------
def image_files(path: str | os.PathLike) -> list[Path]:
    """The files of one volume image: the image and, for a plain image over 2 GB that
    Hercules splits, its further pieces (``name_1.ext``...; when ``path`` is itself
    ``name_1.ext``, the pieces after it), in order."""
    path = Path(path)
    files = [path]
    for seq in range(1, len(SEQ_CHARS) + 1):
        piece = Path(piece_name(str(path), seq))
        if piece in files:
            continue
        if not piece.exists():
            break
        files.append(piece)
    return files


def image_bytes(paths: list[Path]) -> int:
    """Bytes of the volume images (every piece): what a full-volume backup moves."""
    return sum(f.stat().st_size for p in paths for f in image_files(p))


def copy_images(paths: list[Path], folder: Path) -> list[Path]:
    """Copy volume images (every piece) into ``folder``; returns the new first pieces.

    Plain file copies: a full-volume dump of an image is its bytes."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for p in paths:
        for f in image_files(p):
            shutil.copyfile(f, folder / f.name)
        out.append(folder / Path(p).name)
    return out


def _clear(folder: Path) -> None:
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)


# -- the drill ------------------------------------------------------------------------
Progress = Callable[[str], None]


def drill(
    folder: str | os.PathLike | None = None,
    size: str = "tiny",
    days: int = 3,
    seed: int = 1,
    volumes: int = 2,
    progress: Progress | None = None,
    *,
    rate: float = 0.01,
) -> DrillReport:
    """Run the month drill (see the module docstring); returns the readiness report.

    ``folder``: where everything goes (kept; it must be empty or absent), or None for a
    temporary folder removed at the end.  ``size``: a :data:`fixtures.generate.SIZES`
    name.  ``progress`` is called with a short text before each step.  ``rate``: the
    share of members a day edits (:func:`fixtures.daysim.simulate_day`).

    Errors of the set-up (bad size, folder not empty) raise; a day whose import is
    refused or does not verify is recorded in the report, and the drill goes on to the
    disaster, whose result decides :attr:`DrillReport.ok`.
    """
    from fixtures.generate import SIZES, USER_HLQS

    if size not in SIZES:
        raise ValueError(f"unknown size {size!r} (known: {', '.join(SIZES)})")
    if days < 1:
        raise ValueError(f"days must be at least 1, not {days}")
    if not 1 <= volumes <= 1 + len(USER_HLQS):
        raise ValueError(f"volumes must be 1..{1 + len(USER_HLQS)}, not {volumes}")
    kept = folder is not None
    if kept:
        root = Path(folder)
        if root.exists() and (not root.is_dir() or any(root.iterdir())):
            raise ConflictError("drill folder must be empty or absent", root)
        root.mkdir(parents=True, exist_ok=True)
    else:
        root = Path(tempfile.mkdtemp(prefix="ssm-drill-"))
    try:
        return _Drill(root, size, days, seed, volumes, progress, rate, kept).run()
    finally:
        if not kept:
            shutil.rmtree(root, ignore_errors=True)


class _Drill:
    def __init__(self, root, size, days, seed, volumes, progress, rate, kept):
        self.root = root
        self.size, self.days, self.seed, self.volumes = size, days, seed, volumes
        self.rate = rate
        self.kept = kept
        self._progress = progress
        self.prod_dir = root / "production"
        self.fp_dir = root / "fingerprints"
        self.backup_dir = root / "hotsite" / "backup"
        self.basket_dir = root / "hotsite" / "baskets"
        self.standby_dir = root / "hotsite" / "standby"
        self.disaster_dir = root / "disaster"

    def say(self, text: str) -> None:
        if self._progress is not None:
            self._progress(text)

    def run(self) -> DrillReport:
        from fixtures.generate import DEFAULT_NOW, build_system, volsers
        from ssm import fpfile
        from ssm.fingerprint import fingerprint

        self.say(f"building production: {self.volumes} volumes, size {self.size}")
        t0 = time.perf_counter()
        production = build_system(
            self.prod_dir, seed=self.seed, size=self.size, volumes=self.volumes
        )
        build_seconds = time.perf_counter() - t0
        full = image_bytes(production)

        self.say("month-start full-volume backup to the hot site")
        t0 = time.perf_counter()
        backup = copy_images(production, self.backup_dir)
        backup_seconds = time.perf_counter() - t0

        self.say("fingerprinting production: the month-start baseline")
        self.fp_dir.mkdir(parents=True, exist_ok=True)
        self.basket_dir.mkdir(parents=True, exist_ok=True)
        baseline = fingerprint(production)
        baseline_path = self.fp_dir / "month-start.ssmfp"
        fpfile.write(baseline, baseline_path)

        report = DrillReport(
            folder=str(self.root),
            kept=self.kept,
            size=self.size,
            days=self.days,
            seed=self.seed,
            volumes=volsers(self.volumes),
            full_bytes=full,
            build_seconds=build_seconds,
            backup_seconds=backup_seconds,
        )
        previous = baseline
        evening_fp = baseline
        latest_basket: Path | None = None
        for n in range(1, self.days + 1):
            date = (DEFAULT_NOW + _dt.timedelta(days=n)).date()
            day, evening_fp = self.one_day(
                n, date, production, backup, baseline, baseline_path, previous, full
            )
            previous = evening_fp
            latest_basket = Path(day.basket)
            report.day_reports.append(day)
        report.disaster = self.disaster(backup, latest_basket, evening_fp)
        self.say("done")
        return report

    def one_day(self, n, date, production, backup, baseline, baseline_path, previous, full):
        from fixtures.daysim import simulate_day
        from ssm import fpfile
        from ssm.compare import compare
        from ssm.export import export
        from ssm.fingerprint import fingerprint

        tag = f"day {n}/{self.days}"
        self.say(f"{tag}: production at work")
        start = _dt.datetime.combine(date, _dt.time(0, 0))
        log = simulate_day(production, seed=self.seed * 1000 + n, rate=self.rate, now=start)
        members = sum(1 for e in log if e.member is not None)
        datasets = len(log) - members

        self.say(f"{tag}: evening fingerprint of production")
        t0 = time.perf_counter()
        evening_fp = fingerprint(production, since=previous)
        fp_seconds = time.perf_counter() - t0
        fpfile.write(evening_fp, self.fp_dir / f"day{n:02d}.ssmfp")
        since_start = compare(baseline, evening_fp)
        counts = since_start.counts()
        cum_members = sum(counts["members"].values())
        cum_datasets = sum(counts["datasets"].values())

        self.say(f"{tag}: exporting the cumulative basket")
        basket = self.basket_dir / f"day{n:02d}.basket"
        t0 = time.perf_counter()
        exported = export(
            basket, base=baseline_path, images=production, now=_dt.datetime.combine(date, EVENING)
        )
        export_seconds = time.perf_counter() - t0
        operations = exported.operations

        self.say(f"{tag}: rebuilding the standby from the backup")
        t0 = time.perf_counter()
        _clear(self.standby_dir)
        standby = copy_images(backup, self.standby_dir)
        restore_seconds = time.perf_counter() - t0

        self.say(f"{tag}: importing {basket.name} at the hot site")
        applied, conflicts, import_verified, import_seconds = 0, [], False, 0.0
        mismatches: list[str] = []
        differences = -1
        verify_seconds = 0.0
        error = None
        try:
            t0 = time.perf_counter()
            result = _import(basket, standby)
            import_seconds = time.perf_counter() - t0
            applied = result.applied
            conflicts = list(result.conflicts)
            mismatches = list(result.mismatches)
            import_verified = result.verified
            self.say(f"{tag}: verifying the standby against production")
            t0 = time.perf_counter()
            standby_fp = fingerprint(standby)
            fpfile.write(standby_fp, self.fp_dir / f"standby-day{n:02d}.ssmfp")
            diff = compare(evening_fp, standby_fp, old_label="production", new_label="standby")
            differences = len(diff.datasets) + len(diff.members)
            verify_seconds = time.perf_counter() - t0
        except EmulatorError as exc:  # refused (space, damage...): recorded, the month goes on
            error = str(exc)
        day = DayReport(
            day=n,
            date=date,
            members_changed=members,
            datasets_changed=datasets,
            cumulative_members=cum_members,
            cumulative_datasets=cum_datasets,
            basket=str(basket),
            basket_bytes=basket.stat().st_size,
            full_bytes=full,
            operations=operations,
            fingerprint_seconds=fp_seconds,
            export_seconds=export_seconds,
            restore_seconds=restore_seconds,
            import_seconds=import_seconds,
            verify_seconds=verify_seconds,
            applied=applied,
            conflicts=conflicts,
            mismatches=mismatches,
            import_verified=import_verified,
            differences=differences,
            error=error,
            verified=error is None and import_verified and not conflicts and differences == 0,
        )
        return day, evening_fp

    def disaster(self, backup, basket: Path, production_fp) -> DisasterReport:
        from emulator import api
        from ssm.compare import compare, format_report
        from ssm.fingerprint import fingerprint

        self.say("disaster: restoring the month-start backup")
        t0 = time.perf_counter()
        _clear(self.disaster_dir)
        restored = copy_images(backup, self.disaster_dir)
        restore_seconds = time.perf_counter() - t0
        rep = DisasterReport(
            after_day=self.days,
            basket=str(basket),
            folder=str(self.disaster_dir),
            restore_seconds=restore_seconds,
            import_seconds=0.0,
            import_verified=False,
            conflicts=[],
            differences=[],
            check_findings=[],
            reimport_noop=False,
        )
        try:
            self.say(f"disaster: importing {basket.name}")
            t0 = time.perf_counter()
            result = _import(basket, restored)
            rep.import_seconds = time.perf_counter() - t0
            rep.import_verified = result.verified
            rep.conflicts = list(result.conflicts)
            rep.mismatches = list(result.mismatches)

            self.say("disaster: comparing the restored volumes with production")
            restored_fp = fingerprint(restored)
            diff = compare(production_fp, restored_fp, old_label="production", new_label="restored")
            if not diff.equal:
                rep.differences = format_report(diff)
            for path in restored:
                with api.open_volume(path) as vol:
                    rep.check_findings += api.check(vol)

            self.say("disaster: importing the same basket again")
            before = [_digest_files(p) for p in restored]
            again = _import(basket, restored)
            after = [_digest_files(p) for p in restored]
            rep.reimport_noop = again.already_applied and before == after
        except EmulatorError as exc:
            rep.error = str(exc)
        return rep


def _import(basket: Path, targets: list[Path]):
    from ssm.apply import import_basket

    return import_basket(basket, [os.fspath(t) for t in targets])


def _digest_files(path: Path) -> list[tuple[str, str]]:
    """BLAKE3 of each file of an image (to prove a no-op import wrote nothing)."""
    import blake3

    out = []
    for f in image_files(path):
        h = blake3.blake3()
        with open(f, "rb") as fh:
            while chunk := fh.read(1 << 22):
                h.update(chunk)
        out.append((f.name, h.hexdigest()))
    return out


__all__ = [
    "drill",
    "DrillReport",
    "DayReport",
    "DisasterReport",
    "SCHEME",
    "image_files",
    "image_bytes",
    "copy_images",
]
