"""The audit trail across a series of fingerprints (``ssm log FP...``).

Each fingerprint is a picture of the system at its creation time (the ``created`` of
its meta section, docs/formats/fingerprint.md "Sections").  The fingerprints are put in
order of creation time and each one is compared with the one before it
(:func:`ssm.compare.compare`, same semantics and filters); the changes found are
dated with the *later* fingerprint's creation time: "changed by the time of this
fingerprint", the day of a nightly run.  Day ``date`` is that time's calendar date in
UTC.

Only two fingerprints are in memory at a time: they are loaded through callables, in
the order given; only when that order is not chronological are they loaded a second
time, sorted.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from emulator.errors import FormatError
from ssm.compare import Comparison, compare, dataset_details, member_details
from ssm.model import Fingerprint

Loader = Callable[[], Fingerprint]


@dataclass
class Day:
    """The changes between two consecutive fingerprints, dated by the later one."""

    old_label: str
    new_label: str
    old_created: _dt.datetime
    created: _dt.datetime
    comparison: Comparison

    @property
    def date(self) -> _dt.date:
        when = self.created
        if when.tzinfo is not None:
            when = when.astimezone(_dt.UTC)
        return when.date()

    def to_json(self) -> dict:
        doc = self.comparison.to_json()
        return {
            "date": self.date.isoformat(),
            "created": self.created.isoformat(),
            "from": self.old_label,
            "to": self.new_label,
            "from_created": self.old_created.isoformat(),
            "counts": doc["counts"],
            "datasets": doc["datasets"],
            "members": doc["members"],
        }


@dataclass
class AuditLog:
    """The fingerprints in time order and the changes between each and the next."""

    fingerprints: list[tuple[str, _dt.datetime]] = field(default_factory=list)
    days: list[Day] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return any(not d.comparison.equal for d in self.days)

    def to_json(self) -> dict:
        return {
            "fingerprints": [
                {"label": label, "created": created.isoformat()}
                for label, created in self.fingerprints
            ],
            "days": [d.to_json() for d in self.days],
        }


def audit_log(
    sources: Sequence[tuple[str, Loader]],
    include: Iterable[str] = (),
    exclude: Iterable[str] = (),
    maps: Iterable[str] = (),
    progress: Callable[[int, int, str], None] | None = None,
) -> AuditLog:
    """Compare each fingerprint of ``sources`` ((label, loader) pairs) with the one
    before it in creation-time order.  ``progress(done, total, label)`` is called after
    each load.  Needs at least two fingerprints (FormatError otherwise)."""
    if len(sources) < 2:
        raise FormatError(f"a log needs at least two fingerprints, got {len(sources)}")
    include, exclude, maps = list(include), list(exclude), list(maps)
    result = AuditLog()
    created: dict[int, _dt.datetime] = {}
    in_order = _run(sources, range(len(sources)), result, created, include, exclude, maps, progress)
    if not in_order:
        # Not chronological: sort by creation time (ties keep the order given) and run
        # again; the first pass recorded every creation time.
        order = sorted(range(len(sources)), key=lambda k: (_utc(created[k]), k))
        result = AuditLog()
        _run(sources, order, result, created, include, exclude, maps, progress)
    return result


def _utc(when: _dt.datetime) -> _dt.datetime:
    return when.astimezone(_dt.UTC) if when.tzinfo else when.replace(tzinfo=_dt.UTC)


def _run(sources, order, result, created, include, exclude, maps, progress) -> bool:
    """One pass over ``order``; returns False (and stops comparing) at the first
    fingerprint older than the one before it."""
    prev: tuple[str, Fingerprint] | None = None
    in_order = True
    total = len(order)
    for done, k in enumerate(order, 1):
        label, load = sources[k]
        fp = load()
        created[k] = fp.created
        if progress is not None:
            progress(done, total, label)
        result.fingerprints.append((label, fp.created))
        if prev is not None and in_order:
            if _utc(fp.created) < _utc(prev[1].created):
                in_order = False
            else:
                comparison = compare(
                    prev[1],
                    fp,
                    include=include,
                    exclude=exclude,
                    maps=maps,
                    old_label=prev[0],
                    new_label=label,
                )
                result.days.append(Day(prev[0], label, prev[1].created, fp.created, comparison))
        prev = (label, fp)
    return in_order


LOG_HEADER = f"{'Date':<10}  {'Change':<10}  {'Data set(member)':<54}  Details"


def format_log(log: AuditLog) -> list[str]:
    """The human table: the fingerprints, then one row per change, by day."""
    lines = [f"{created.isoformat()}  {label}" for label, created in log.fingerprints]
    lines.append("")
    lines.append(LOG_HEADER)
    for day in log.days:
        date = day.date.isoformat()
        c = day.comparison
        if c.equal:
            lines.append(f"{date:<10}  {'-':<10}  (no changes since {day.old_label})")
            continue
        for e in c.datasets:
            lines.append(
                f"{date:<10}  {e.change:<10}  {e.dsname:<54}  {dataset_details(e)}".rstrip()
            )
        for m in c.members:
            name = f"{m.dsname}({m.member})"
            lines.append(f"{date:<10}  {m.change:<10}  {name:<54}  {member_details(m)}".rstrip())
    return lines


__all__ = ["Day", "AuditLog", "audit_log", "format_log", "LOG_HEADER"]
