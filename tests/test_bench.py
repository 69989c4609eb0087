"""tools/bench keeps working: a ``--tiny`` run (one run of each side on tiny volumes)
writes every section's table.  Timing itself lives in tools/bench, never here."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tools"))

from benchlib.report import HEADER  # noqa: E402
from benchlib.sections import SECTIONS  # noqa: E402

PEERS = ("rsync", "sha256sum", "dasdpdsu", "dasdcopy")


@pytest.mark.skipif(
    any(shutil.which(p) is None for p in PEERS),
    reason=f"a peer program is not installed (needs {', '.join(PEERS)})",
)
def test_tiny_run_writes_every_section(tmp_path: Path) -> None:
    out = tmp_path / "BENCHMARKS.md"
    done = subprocess.run(
        [
            sys.executable,
            str(REPO / "tools" / "bench"),
            "--tiny",
            "--out",
            str(out),
            "--work",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    text = out.read_text()
    assert text.startswith("# Benchmarks\n")
    for header in ("## Machine", "## Headline", "## How to reproduce"):
        assert header in text
    for number, (_sid, title, _fill) in enumerate(SECTIONS, 1):
        assert f"## {number}. {title}\n" in text
    assert "Not measured" not in text
    assert text.count(HEADER) == len(SECTIONS)
    # the work folder is removed without --keep
    assert not any(tmp_path.glob("ssm-bench-*"))
