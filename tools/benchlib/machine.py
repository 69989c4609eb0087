"""What machine and which programs the benchmarks ran on; installing missing peers."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
from importlib import metadata
from pathlib import Path

#: Peer programs that Debian packages provide: program -> package.
PEER_PACKAGES = {
    "xdelta3": "xdelta3",
    "xxhsum": "xxhash",
    "b3sum": "b3sum",
    "rsync": "rsync",
    "time": "time",
}


def _first_line(cmd: list[str]) -> str:
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "not installed"
    text = (done.stdout or done.stderr).strip()
    return text.splitlines()[0].strip() if text else "unknown"


def _installed_version(program: str, flag: str) -> str:
    return _first_line([program, flag]) if shutil.which(program) else "not installed"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 2**20:.1f} GiB"
    except OSError:
        pass
    return "unknown"


def _os_name() -> str:
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip('"')
    except OSError:
        pass
    return platform.system()


def _disk(folder: Path) -> str:
    """The file system and device the work folder is on."""
    folder = folder.resolve()
    best = ("", "?", "?")
    try:
        for line in Path("/proc/mounts").read_text().splitlines():
            dev, mnt, fstype = line.split()[:3]
            if (folder == Path(mnt) or Path(mnt) in folder.parents) and len(mnt) > len(best[0]):
                best = (mnt, dev, fstype)
    except OSError:
        pass
    mnt, dev, fstype = best
    kind = ""
    name = Path(dev).name.rstrip("0123456789") if dev.startswith("/dev/") else ""
    rotational = Path(f"/sys/block/{name}/queue/rotational")
    if name and rotational.exists():
        kind = ", rotational" if rotational.read_text().strip() == "1" else ", not rotational"
    usage = shutil.disk_usage(folder)
    return (
        f"{dev} ({fstype}{kind}) at {mnt}: {usage.total / 1e9:.0f} GB, "
        f"{usage.free / 1e9:.0f} GB free at the start"
    )


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def describe(work: Path, cores: int) -> list[tuple[str, str]]:
    load = os.getloadavg()
    return [
        ("CPU", f"{_cpu_model()}, {cores} cores"),
        ("memory", _memory()),
        ("system", f"{_os_name()}, Linux {platform.release()}"),
        ("disk", _disk(work)),
        ("load at start", f"{load[0]:.2f} (1 min), {load[1]:.2f} (5 min)"),
        (
            "Python",
            f"{platform.python_version()}; numpy {_version('numpy')}, numba "
            f"{_version('numba')}, blake3 {_version('blake3')}, xxhash {_version('xxhash')}, "
            f"zstandard {_version('zstandard')}",
        ),
        ("Hercules", _first_line(["hercules", "--version"])),
        ("sha256sum", _first_line(["sha256sum", "--version"])),
        ("rsync", _first_line(["rsync", "--version"])),
        ("xdelta3", _first_line(["xdelta3", "-V"])),
        ("xxhsum", _installed_version("xxhsum", "-V")),
        ("b3sum", _installed_version("b3sum", "--version")),
    ]


def install_peers(say) -> list[str]:
    """Install missing peer programs from the distribution when running as root.
    Returns notes on what could not be installed."""
    missing = [p for p in PEER_PACKAGES if shutil.which(p) is None]
    if not missing:
        return []
    packages = sorted({PEER_PACKAGES[p] for p in missing})
    if os.geteuid() != 0:
        return [f"not installed, and not root to install them: {', '.join(packages)}"]
    say(f"installing {', '.join(packages)}")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    install = ["apt-get", "install", "-y", "-q", *packages]
    for step in ([install], [["apt-get", "update", "-q"], install]):
        ok = all(
            subprocess.run(cmd, env=env, capture_output=True, check=False).returncode == 0
            for cmd in step
        )
        if ok:
            break
    still = [p for p in missing if shutil.which(p) is None]
    return [f"could not be installed (apt-get): {', '.join(still)}"] if still else []
