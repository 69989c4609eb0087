"""Build the test volumes into .fixtures-cache/<hash>/ and print their paths.

    python tools/make_fixtures.py          # prints "name<TAB>path" per volume

The same control file (CONTROL below) is loaded by Hercules 3.13 ``dasdload`` (the
oracle) and by our ``emulator.dasdload``, in plain and compressed forms.  Images are
never committed; they are rebuilt whenever this script or the emulator's sources
change (both feed the cache key).  Without the Hercules utilities only our volumes
are built.  Volumes: see VOLUMES.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CACHE = REPO / ".fixtures-cache"

TEXT = "".join(f"//LINE{n:03d} EXEC PGM=IEFBR14  [{n}] {{x}} ~ \\\n" for n in range(1, 201))
BINARY = bytes(range(256)) * 64 + b"odd tail"
CONTROL = """\
# Test volume built by tools/make_fixtures.py
FIXV01 3390 10
FIX.TEXT.FB    TEXT  text.txt  trk 2 1 0 ps fb 80 3120
FIX.TEXT.F     TEXT  text.txt  trk 20 1 0 ps f 80 80
FIX.SEQ.FB     SEQ   data.bin  trk 2 1 0 ps fb 80 27920
FIX.EMPTY.PS   EMPTY trk 1 0 0 ps fb 80 3120
FIX.EMPTY.PO   EMPTY trk 10 5 10 po fb 80 3120
"""
VOLUMES = {
    "ours.3390": "our dasdload, plain CKD",
    "ours.cckd": "our dasdload, CCKD zlib",
    "ours-bz2.cckd": "our dasdload, CCKD bzip2",
    "herc.3390": "Hercules dasdload, plain CKD",
    "herc.cckd": "Hercules dasdload -z, CCKD zlib",
    "dasdinit.3390": "Hercules dasdinit, 3390 5 cyls (VOL1, no VTOC)",
}


def cache_key() -> str:
    """sha256 over this script and the emulator package sources (first 16 hex digits)."""
    h = hashlib.sha256(Path(__file__).read_bytes())
    for src in sorted((REPO / "emulator").rglob("*.py")):
        h.update(src.relative_to(REPO).as_posix().encode())
        h.update(src.read_bytes())
    return h.hexdigest()[:16]


def _run(*argv: str, cwd: Path) -> None:
    proc = subprocess.run(argv, cwd=cwd, capture_output=True, timeout=120)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {proc.returncode}: {proc.stderr[-500:]!r}")


def _build(work: Path) -> None:
    sys.path.insert(0, str(REPO))
    from emulator import dasdload

    (work / "text.txt").write_text(TEXT)
    (work / "data.bin").write_bytes(BINARY)
    (work / "fix.ctl").write_text(CONTROL)
    for name, compress in (("ours.3390", None), ("ours.cckd", "zlib"), ("ours-bz2.cckd", "bzip2")):
        dasdload.load(work / "fix.ctl", work / name, compress=compress).close()
    if shutil.which("dasdload"):
        _run("dasdload", "fix.ctl", "herc.3390", "0", cwd=work)
        _run("dasdload", "-z", "fix.ctl", "herc.cckd", "0", cwd=work)
        _run("dasdinit", "dasdinit.3390", "3390", "INIT01", "5", cwd=work)


def build(cache: Path = CACHE) -> dict[str, Path]:
    """Build (once per cache key) and return {volume name: path} for what exists."""
    target = cache / cache_key()
    if not target.is_dir():
        cache.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix="building-", dir=cache))
        try:
            _build(work)
            try:
                os.rename(work, target)  # atomic: a concurrent builder may have won
            except OSError:
                shutil.rmtree(work, ignore_errors=True)
        except BaseException:
            shutil.rmtree(work, ignore_errors=True)
            raise
    return {name: target / name for name in VOLUMES if (target / name).exists()}


def main() -> int:
    for name, path in build().items():
        print(f"{name}\t{path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
