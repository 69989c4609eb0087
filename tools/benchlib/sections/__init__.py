"""The sections of BENCHMARKS.md, in order: (id, title, function filling the Section)."""

from __future__ import annotations

from collections.abc import Callable

from benchlib.context import Context
from benchlib.report import Section
from benchlib.sections.basket import basket_section
from benchlib.sections.cckd import cckd_section
from benchlib.sections.compare import compare_section
from benchlib.sections.fingerprint import (
    fingerprint_section,
    scaling_section,
    since_section,
    sizes_section,
)

SECTIONS: list[tuple[str, str, Callable[[Context, Section], None]]] = [
    (
        "fingerprint",
        "Fingerprint of a volume image vs sha256sum, one XXH3 pass, and dasdpdsu",
        fingerprint_section,
    ),
    ("since", "Incremental fingerprint (`--since`) vs a full one", since_section),
    ("compare", "`ssm compare` of two big fingerprints", compare_section),
    ("basket", "Export and import of one day vs rsync batches and xdelta3", basket_section),
    ("cckd", "Compressed images: write and read vs Hercules dasdcopy", cckd_section),
    ("scaling", "Fingerprinting several volumes on 1 vs 2 cores", scaling_section),
    ("sizes", "How fingerprint time grows with image size", sizes_section),
]
