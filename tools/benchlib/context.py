"""Plans (what a full, ``--quick`` or ``--tiny`` run measures) and the context every
section gets."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from benchlib.measure import LibraryRunner
from benchlib.systems import Workspace, volume_bytes


@dataclass(frozen=True)
class Plan:
    name: str  # "full", "quick", "tiny"
    runs: int  # runs of each side (medians of these)
    fp_sizes: tuple[str, ...]  # images fingerprinted against the peers
    cold: bool  # also measure with an empty page cache (when permitted)
    since_size: str
    compare_members: int
    basket: tuple[str, int]  # size and volumes of the system a day of change is carried for
    cckd_size: str
    scaling: tuple[str, int]  # size and volumes fingerprinted on 1 and 2 cores
    sizes: tuple[str, ...]  # image sizes for the growth of time with size
    since_share: float = 0.01  # share of the data tracks a day of log growth changes
    day_rate: float = 0.001  # fixtures.daysim rate for the "one simulated day" row
    basket_rate: float = 0.01  # fixtures.daysim rate of the day a basket carries
    reduced: dict[str, str] = field(default_factory=dict)  # section id -> what is reduced
    notes: tuple[str, ...] = ()  # about the whole run (disk space, peers)

    def disk_bytes(self) -> int:
        """Bytes of images this plan has on the disk at most: every system it builds
        (kept until the end) and the largest section's copies and outputs."""
        one = {(s, 1) for s in (*self.fp_sizes, *self.sizes, self.since_size, self.cckd_size)}
        systems = {("tiny", 1), self.basket, self.scaling} | one
        built = sum(volume_bytes(size) * vols for size, vols in systems)
        scratch = {
            "since": volume_bytes(self.since_size),  # one changed copy at a time
            "basket": 3
            * volume_bytes(self.basket[0])
            * self.basket[1],  # production, replica, target
            "cckd": 2.5 * volume_bytes(self.cckd_size),  # two CCKD files, a plain output at a time
        }
        return int(built + max(scratch.values()))


FULL = Plan(
    name="full",
    runs=5,
    fp_sizes=("1g", "3390-9"),
    cold=True,
    since_size="3390-9",
    compare_members=1_000_000,
    basket=("1g", 3),
    cckd_size="1g",
    scaling=("1g", 3),
    sizes=("1g", "3390-3", "3390-9"),
)

QUICK = Plan(
    name="quick",
    runs=5,
    fp_sizes=("1g",),
    cold=True,
    since_size="1g",
    compare_members=1_000_000,
    basket=("small", 3),
    cckd_size="small",
    scaling=("small", 3),
    sizes=("tiny", "small", "1g"),
    reduced={
        "fingerprint": "a 1 GB image only (the full run adds a 3390-9).",
        "since": "on a 1 GB image (the full run: a 3390-9).",
        "basket": "3 volumes of 20 MB (the full run: 3 volumes of 1.1 GB).",
        "cckd": "a 20 MB image (the full run: 1.1 GB).",
        "scaling": "3 volumes of 20 MB (the full run: 3 volumes of 1.1 GB).",
        "sizes": "3.4 MB, 20 MB and 1.1 GB images (the full run: 1.1, 2.8 and 8.5 GB).",
    },
)

TINY = Plan(
    name="tiny",
    runs=1,
    fp_sizes=("tiny",),
    cold=False,
    since_size="tiny",
    compare_members=10_000,
    basket=("tiny", 2),
    cckd_size="tiny",
    scaling=("tiny", 2),
    sizes=("tiny",),
    reduced={
        s: "`--tiny`: one run of each side on 3.4 MB volumes (a check that the suite runs)."
        for s in ("fingerprint", "since", "compare", "basket", "cckd", "scaling", "sizes")
    },
)


def fit_to_disk(plan: Plan, free: int) -> Plan:
    """The plan without the 3390-9 when it does not fit on the disk (said in the notes)."""
    need = plan.disk_bytes()
    if need <= free * 0.9 or "3390-9" not in (*plan.fp_sizes, plan.since_size, *plan.sizes):
        return plan
    note = (
        f"A full 3390-9 does not fit here: this plan needs {need / 1e9:.0f} GB of images, "
        f"the work folder's disk has {free / 1e9:.0f} GB free; the 3390-9 measures are left "
        "out (a 3390-3 stands in where a third size is needed)."
    )
    smaller = replace(
        plan,
        fp_sizes=tuple(s for s in plan.fp_sizes if s != "3390-9"),
        since_size="1g" if plan.since_size == "3390-9" else plan.since_size,
        sizes=("small", "1g", "3390-3") if "3390-9" in plan.sizes else plan.sizes,
        notes=(*plan.notes, note),
    )
    return fit_to_disk(smaller, free) if smaller.disk_bytes() > free * 0.9 else smaller


@dataclass
class Context:
    plan: Plan
    ws: Workspace
    lib: LibraryRunner
    say: Callable[[str], None]
    cold_reason: str | None  # why cold-cache runs are not measured (None: they are)

    def progress(self, section: str) -> Callable[[str], None]:
        return lambda text: self.say(f"[{section}] {text}")


def have(program: str) -> bool:
    return shutil.which(program) is not None
