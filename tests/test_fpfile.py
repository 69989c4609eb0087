"""The fingerprint file (docs/formats/fingerprint.md): round trip, deterministic bytes,
versioning, and damage always reported as FormatError naming the offset."""

from __future__ import annotations

import datetime as dt
import struct

import blake3
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emulator import api
from emulator.errors import FormatError, UnsupportedError
from ssm import fpfile
from ssm import model as m
from ssm.fingerprint import fingerprint

WHEN = dt.datetime(2026, 11, 2, 12, 0, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    """A small volume with a PDS (ISPF statistics, an alias), FB and VB data sets."""
    path = tmp_path_factory.mktemp("fpfile") / "f.3390"
    with api.create_volume(path, "3390", "FPF001", cyls=10) as vol:
        fb = api.Dcb(recfm="FB", lrecl=80, blksize=3120)
        for i in range(6):
            lines = [f"MEMBER {i} LINE {n}".ljust(80).encode("cp037") for n in range(20 * i + 1)]
            api.write(vol, f"LIB.SRC(MEM{i})", lines, dcb=fb, space=("TRK", 10, 2), dirblks=3)
        from emulator.pds.pds import Pds

        Pds(vol, "LIB.SRC").alias("SYNONYM", "MEM2")
        api.write(
            vol, "SEQ.FB", [b"%079d\x40" % n for n in range(500)], dcb=fb, space=("TRK", 3, 1)
        )
        vb = api.Dcb(recfm="VB", lrecl=255, blksize=6144)
        api.write(
            vol, "SEQ.VB", [b"v" * (n % 200 + 1) for n in range(400)], dcb=vb, space=("TRK", 3, 1)
        )
    return path


@pytest.fixture(scope="module")
def fp(image):
    return fingerprint([image], created=WHEN)


@pytest.fixture(scope="module")
def data(fp):
    return fpfile.dumps(fp)


def test_round_trip_keeps_everything(fp, data, tmp_path):
    path = tmp_path / "x.ssmfp"
    fpfile.write(fp, path)
    assert path.read_bytes() == data
    back = fpfile.read(path)
    assert back.version == m.FORMAT_VERSION and back.created == WHEN and back.tool == fp.tool
    assert np.array_equal(back.dataset_table, fp.dataset_table)
    assert np.array_equal(back.members, fp.members)
    assert np.array_equal(back.groups, fp.groups)
    assert np.array_equal(back.extents, fp.extents)
    assert back.userdata == fp.userdata
    for a, b in zip(back.volumes, fp.volumes, strict=True):
        assert np.array_equal(a.track_sigs, b.track_sigs)
        assert a.to_json() == b.to_json()
    assert back.to_json() == fp.to_json()
    lib = back.find("LIB.SRC")
    syn = back.member(lib, "SYNONYM")
    assert syn.is_alias and syn.alias_of == "MEM2"
    assert syn.content == back.member(lib, "MEM2").content
    assert back.member(lib, "MEM0").ispf.userid == "IBMUSER"


def test_same_inputs_and_clock_give_the_same_bytes(image, data):
    assert fpfile.dumps(fingerprint([image], created=WHEN)) == data
    assert fpfile.dumps(fingerprint([image], created=WHEN, workers=1)) == data
    later = fpfile.dumps(fingerprint([image], created=WHEN + dt.timedelta(seconds=1)))
    assert later != data


def test_layout_matches_the_document(data):
    magic, version, flags, nsect, reserved = struct.unpack_from("<8sHHI16s", data, 0)
    assert magic == b"\x89SSMFP\r\n" and version == 1 and flags == 0 and reserved == bytes(16)
    end_magic, size, digest = struct.unpack_from("<8sQ32s", data, len(data) - 48)
    assert end_magic == b"SSMFPEND" and size == len(data)
    assert digest == blake3.blake3(data[:-48]).digest()
    names = []
    off = 32
    for _ in range(nsect):
        name, codec, _res, raw_len, stored_len, sdigest = struct.unpack_from(
            "<24sB7sQQ32s", data, off
        )
        payload = data[off + 80 : off + 80 + stored_len]
        assert blake3.blake3(payload).digest() == sdigest
        names.append(name.rstrip(b"\0").decode())
        if name.startswith(b"meta"):
            assert codec == 0 and payload.startswith(b'{"algorithm":"blake3"')
        if b".digests" in name:
            assert codec == 0  # digests do not compress: stored as they are
        off += 80 + stored_len
    assert off == len(data) - 48
    assert names[:3] == ["meta", "volumes", "tracks.0"]
    assert {"datasets", "datasets.digests", "members", "members.digests", "userdata"} <= set(names)


def test_damage_is_a_format_error_with_an_offset(data):
    for cut in (0, 10, 40, len(data) // 2, len(data) - 1):
        with pytest.raises(FormatError):
            fpfile.loads(data[:cut], "cut.ssmfp")
    with pytest.raises(FormatError) as err:
        fpfile.loads(data[:200] + bytes([data[200] ^ 1]) + data[201:], "flip.ssmfp")
    assert "flip.ssmfp" in str(err.value) and "offset" in str(err.value)
    with pytest.raises(FormatError):
        fpfile.loads(b"not a fingerprint at all" * 10, "junk")


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    flips=st.lists(st.tuples(st.integers(0, 10**9), st.integers(1, 255)), min_size=1, max_size=4)
)
def test_any_byte_flip_is_detected(data, flips):
    buf = bytearray(data)
    for pos, xor in flips:
        buf[pos % len(buf)] ^= xor
    if bytes(buf) == data:
        return
    with pytest.raises(FormatError):
        fpfile.loads(bytes(buf), "flipped.ssmfp")


def test_newer_version_is_refused_before_anything_else(data):
    body = bytearray(data[:-48])
    body[8:10] = struct.pack("<H", 2)
    newer = bytes(body) + struct.pack(
        "<8sQ32s", b"SSMFPEND", len(body) + 48, blake3.blake3(bytes(body)).digest()
    )
    with pytest.raises(UnsupportedError, match="version 2"):
        fpfile.loads(newer, "newer.ssmfp")


def test_unknown_sections_are_ignored(data):
    nsect = struct.unpack_from("<I", data, 12)[0]
    extra = b"later-feature"
    sect = (
        struct.pack(
            "<24sB7sQQ32s",
            b"x.future",
            0,
            bytes(7),
            len(extra),
            len(extra),
            blake3.blake3(extra).digest(),
        )
        + extra
    )
    body = bytearray(data[:-48]) + sect
    body[12:16] = struct.pack("<I", nsect + 1)
    body = bytes(body)
    newer = body + struct.pack("<8sQ32s", b"SSMFPEND", len(body) + 48, blake3.blake3(body).digest())
    assert fpfile.loads(newer).to_json() == fpfile.loads(data).to_json()


def test_a_million_members_load_as_arrays(tmp_path):
    """The file holds large member tables compactly and loads them without one Python
    object per member (timing lives in tools/bench)."""
    n = 200_000
    ds, mem, grp, ext = m.empty_tables()
    ds = np.zeros(2, dtype=m.DATASET_DTYPE)
    ds["dsname"] = [b"A.LIB", b"B.LIB"]
    ds["dsorg"] = b"PO"
    ds["flags"] = m.DS_PDS
    ds["mstart"] = [0, n // 2]
    ds["mcount"] = n // 2
    mem = np.zeros(n, dtype=m.MEMBER_DTYPE)
    mem["ds"] = np.repeat([0, 1], n // 2)
    idx = np.arange(n) % (n // 2)
    mem["name"] = [f"M{i:07d}".encode("cp037") for i in idx.tolist()]
    rng = np.random.default_rng(0)
    mem["content"] = rng.integers(0, 256, (n, 32), dtype=np.uint8).view("V32").ravel()
    mem["attrs"] = rng.integers(0, 256, (n, 16), dtype=np.uint8).view("V16").ravel()
    mem["alias_of"] = -1
    vol = m.VolumeFp(
        "BIG001", "3390", 1, 15, 56832, "ckd", "big.3390", track_sigs=np.zeros(15, "<u8")
    )
    fp = m.Fingerprint(1, WHEN, "test", [vol], ds, mem, grp, ext, b"")
    path = tmp_path / "big.ssmfp"
    fpfile.write(fp, path)
    size = path.stat().st_size
    assert size < n * (32 + 16 + 20)  # digests stored raw, the rest compressed
    back = fpfile.read(path)
    assert np.array_equal(back.members, mem)
    assert back._datasets is None  # nothing materialised yet
    assert back.member(back.datasets[1], f"M{n // 2 - 1:07d}") is not None
