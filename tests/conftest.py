"""Shared fixtures: the third-party sample folder and the Hercules oracle."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
REAL_FIXTURES = REPO.parent / "shared" / "fixtures" / "real"

# tests/oracle.py is imported as a plain module by the test files ("from oracle import ...").
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

import oracle  # noqa: E402


@pytest.fixture(scope="session")
def real_fixtures() -> Path:
    """The read-only folder of real third-party samples (never copied into the project)."""
    if not REAL_FIXTURES.is_dir():
        pytest.skip("third-party fixtures folder ../shared/fixtures/real is absent")
    return REAL_FIXTURES


@pytest.fixture(scope="session")
def hercules():
    """The oracle helper module; skips the test when the Hercules utilities are absent."""
    if not oracle.have_hercules():
        pytest.skip("Hercules utilities not installed")
    return oracle


@pytest.fixture(scope="session")
def fixture_volumes() -> dict[str, Path]:
    """Test volumes built by tools/make_fixtures.py (cached in .fixtures-cache/):
    {"ours.3390", "ours.cckd", "ours-bz2.cckd", and with Hercules "herc.3390",
    "herc.cckd", "dasdinit.3390"} -> path.  Shared by all tests: copy before writing."""
    return load_tool("make_fixtures").build()


def load_tool(name: str):
    """tools/<name>.py imported as the module ``name`` (tools are scripts, not a package)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, REPO / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def killtest():
    """tools/killtest.py, the SIGKILL harness the kill and lock tests drive."""
    return load_tool("killtest")


class Crash(Exception):
    """Stands for the process dying part-way through a commit."""


def crash_commit(monkeypatch, image_writes: int | None) -> None:
    """Make the journal module's image handles fail with :class:`Crash` after
    ``image_writes`` writes, or (None) at their first fsync, once every write is done:
    a crash inside a commit."""
    from emulator.image import journal

    real_open = open
    real_fsync = os.fsync
    image_fds: set[int] = set()
    count = {"writes": 0}

    class Handle:
        def __init__(self, fh):
            self._fh = fh
            image_fds.add(fh.fileno())

        def write(self, data):
            if image_writes is not None and count["writes"] >= image_writes:
                self._fh.flush()
                raise Crash("crash")
            count["writes"] += 1
            return self._fh.write(data)

        def __getattr__(self, name):
            return getattr(self._fh, name)

    def fake_open(name, mode="r", *args, **kwargs):
        fh = real_open(name, mode, *args, **kwargs)
        return Handle(fh) if "+" in mode else fh

    def fake_fsync(fd):
        if fd in image_fds:
            raise Crash("power lost")
        real_fsync(fd)

    monkeypatch.setattr(journal, "open", fake_open, raising=False)
    monkeypatch.setattr(journal.os, "fsync", fake_fsync)


def reseal_basket(data: bytearray) -> bytes:
    """A basket's bytes with every digest recomputed (what anyone without the key can
    do): damage then reaches the decoders instead of stopping at a digest."""
    import blake3

    from ssm.basket import fmt

    pos = fmt.HEADER.size
    for _ in fmt.SECTIONS:
        name, codec, _r, raw_len, stored_len, _d = fmt.SECTION.unpack_from(data, pos)
        start = pos + fmt.SECTION.size
        if name.rstrip(b"\x00") == b"payloads":
            heads = blake3.blake3()
            f = start
            while f < start + stored_len:
                fc, fr, fraw, flen, _fd = fmt.FRAME.unpack_from(data, f)
                fd = blake3.blake3(bytes(data[f + fmt.FRAME.size : f + fmt.FRAME.size + flen]))
                fmt.FRAME.pack_into(data, f, fc, fr, fraw, flen, fd.digest())
                heads.update(bytes(data[f : f + fmt.FRAME.size]))
                f += fmt.FRAME.size + flen
            digest = heads.digest()
        else:
            digest = blake3.blake3(bytes(data[start : start + stored_len])).digest()
        fmt.SECTION.pack_into(data, pos, name, codec, _r, raw_len, stored_len, digest)
        pos = start + stored_len
    data[-32:] = blake3.blake3(bytes(data[:-32])).digest()
    return bytes(data)


def members_p1(members) -> bytes:
    """A ``members`` payload in the form version 1 and 2 writers made (basket.md
    ``members (P1)``): each entry followed by its blocks."""
    import struct

    index = {m.name: i for i, m in enumerate(members)}
    out = [b"P1\x00\x00", struct.pack("<I", len(members))]
    for m in members:
        name = m.name.encode("cp037")
        target = index.get(m.alias_of, 0xFFFFFFFF) if m.alias else 0xFFFFFFFF
        out.append(bytes([len(name)]) + name + bytes([int(m.alias), m.ttr_count, len(m.userdata)]))
        out += [m.userdata, struct.pack("<II", target, len(m.blocks))]
        for b in m.blocks:
            out += [struct.pack("<IBBHI", b.ttr, len(b.key), 0, 0, len(b.data)), b.key, b.data]
    return b"".join(out)
