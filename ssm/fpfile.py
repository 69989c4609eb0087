"""Write and read fingerprint files (docs/formats/fingerprint.md, "File layout").

    fpfile.write(fp, "day1.ssmfp")     # atomic: temporary file, fsync, rename
    fp = fpfile.read("day1.ssmfp")     # FormatError on any damage, naming the offset

``dumps``/``loads`` do the same on bytes.  The same fingerprint and the same clock
give the same bytes.  Reading checks, in this order: magic and version, every
section header's bounds, every section digest, the trailer digest; only then are the
payloads inflated (each bounded by its declared length) and decoded.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import struct
import tempfile
import zlib

import blake3
import numpy as np

from emulator.errors import FormatError, UnsupportedError
from ssm import model as m

MAGIC = b"\x89SSMFP\r\n"
END_MAGIC = b"SSMFPEND"
HEADER = struct.Struct("<8sHHI16s")  # magic, version, flags, nsections, reserved
SECTION = struct.Struct("<24sB7sQQ32s")  # name, codec, reserved, raw_len, stored_len, digest
TRAILER = struct.Struct("<8sQ32s")  # end magic, file length, digest
CODEC_STORED = 0
CODEC_ZLIB = 1
ZLIB_LEVEL = 6
DIGEST_SUFFIX = ".digests"

#: Tables and their dtypes; digest columns (``V`` fields) go to "<name>.digests".
TABLES = {
    "datasets": m.DATASET_DTYPE,
    "extents": m.EXTENT_DTYPE,
    "members": m.MEMBER_DTYPE,
    "groups": m.GROUP_DTYPE,
}


def _digest_fields(dtype: np.dtype) -> list[str]:
    return [n for n in dtype.names if dtype[n].kind == "V"]


def _plain_fields(dtype: np.dtype) -> list[str]:
    return [n for n in dtype.names if dtype[n].kind != "V"]


def _columns(arr: np.ndarray, names: list[str]) -> bytes:
    """Column-major bytes of the named fields."""
    return b"".join(np.ascontiguousarray(arr[n]).tobytes() for n in names)


def _uncolumn(out: np.ndarray, names: list[str], payload: bytes, where: str, path) -> None:
    n = len(out)
    width = sum(out.dtype[f].itemsize for f in names)
    if len(payload) != n * width:
        raise FormatError(
            f"{where}: {len(payload)} bytes for {n} rows of {width} bytes", path, where
        )
    off = 0
    for f in names:
        dt = out.dtype[f]
        out[f] = np.frombuffer(payload, dtype=dt, count=n, offset=off)
        off += n * dt.itemsize


# -- writing --------------------------------------------------------------------------
def _section(name: str, payload: bytes, compress: bool) -> bytes:
    stored, codec = payload, CODEC_STORED
    if compress and payload:
        packed = zlib.compress(payload, ZLIB_LEVEL)
        if len(packed) < len(payload):
            stored, codec = packed, CODEC_ZLIB
    raw_name = name.encode("ascii")
    if len(raw_name) > 24:
        raise ValueError(f"section name {name!r} is longer than 24 bytes")
    head = SECTION.pack(
        raw_name, codec, bytes(7), len(payload), len(stored), blake3.blake3(stored).digest()
    )
    return head + stored


def _json(obj) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def dumps(fp: m.Fingerprint) -> bytes:
    """The file's bytes (deterministic for the same fingerprint)."""
    vol_json = []
    for v in fp.volumes:
        d = v.to_json()
        d.pop("tracks_read", None)
        vol_json.append(d)
    meta = {
        "format": m.FORMAT_VERSION,
        "algorithm": fp.algorithm,
        "created": fp.created.isoformat(),
        "tool": fp.tool,
        "volumes": len(fp.volumes),
        "datasets": len(fp.dataset_table),
        "members": len(fp.members),
        "groups": len(fp.groups),
        "extents": len(fp.extents),
    }
    sections = [_section("meta", _json(meta), False), _section("volumes", _json(vol_json), True)]
    for i, v in enumerate(fp.volumes):
        sigs = np.ascontiguousarray(v.track_sigs, dtype="<u8").tobytes()
        sections.append(_section(f"tracks.{i}", sigs, True))
    tables = {
        "datasets": fp.dataset_table,
        "extents": fp.extents,
        "members": fp.members,
        "groups": fp.groups,
    }
    for name, dtype in TABLES.items():
        arr = tables[name]
        if arr.dtype != dtype:
            arr = arr.astype(dtype)
        sections.append(_section(name, _columns(arr, _plain_fields(dtype)), True))
        digests = _digest_fields(dtype)
        if digests:
            sections.append(_section(name + DIGEST_SUFFIX, _columns(arr, digests), False))
    sections.append(_section("userdata", fp.userdata, True))
    body = HEADER.pack(MAGIC, m.FORMAT_VERSION, 0, len(sections), bytes(16)) + b"".join(sections)
    size = len(body) + TRAILER.size
    return body + TRAILER.pack(END_MAGIC, size, blake3.blake3(body).digest())


def write(fp: m.Fingerprint, path: str | os.PathLike) -> None:
    """Write ``fp`` to ``path`` atomically (a reader never sees half a file)."""
    path = os.fspath(path)
    data = dumps(fp)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".ssmfp-", dir=folder)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # as open() would make it, not mkstemp's 0600
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


# -- reading --------------------------------------------------------------------------
def _bad(message: str, path, offset: int) -> FormatError:
    return FormatError(message, path, f"offset {offset}")


def _trailer_ok(data: bytes) -> bool:
    if len(data) < HEADER.size + TRAILER.size:
        return False
    end_magic, size, digest = TRAILER.unpack_from(data, len(data) - TRAILER.size)
    body = memoryview(data)[: len(data) - TRAILER.size]
    return end_magic == END_MAGIC and size == len(data) and blake3.blake3(body).digest() == digest


def _split(data: bytes, path) -> dict[str, tuple[int, int, int, int]]:
    """Check framing and digests; returns name -> (codec, raw_len, offset, stored_len)."""
    if len(data) < HEADER.size + TRAILER.size:
        raise _bad(f"file is {len(data)} bytes, too short for a fingerprint", path, 0)
    magic, version, flags, nsect, reserved = HEADER.unpack_from(data, 0)
    if magic != MAGIC:
        raise _bad("not a fingerprint file (bad magic)", path, 0)
    if version != m.FORMAT_VERSION:
        if _trailer_ok(data):
            raise UnsupportedError(
                f"fingerprint format version {version}; this ssm reads version {m.FORMAT_VERSION}",
                path,
                "offset 8",
            )
        raise _bad(f"fingerprint format version {version} (damaged file?)", path, 8)
    if flags != 0 or reserved != bytes(16):
        raise _bad("header flags or reserved bytes are not zero", path, 10)
    end = len(data) - TRAILER.size
    sections: dict[str, tuple[int, int, int, int]] = {}
    off = HEADER.size
    mv = memoryview(data)
    for _ in range(nsect):
        if off + SECTION.size > end:
            raise _bad(f"section header runs past the trailer at {end}", path, off)
        raw_name, codec, res, raw_len, stored_len, digest = SECTION.unpack_from(data, off)
        start = off + SECTION.size
        if stored_len > end - start:
            raise _bad(f"section of {stored_len} bytes runs past the trailer", path, off)
        try:
            name = raw_name.rstrip(b"\0").decode("ascii")
        except UnicodeDecodeError:
            raise _bad("section name is not ASCII", path, off) from None
        if codec not in (CODEC_STORED, CODEC_ZLIB) or res != bytes(7):
            raise _bad(f"section {name!r}: unknown codec {codec}", path, off + 24)
        if codec == CODEC_STORED and raw_len != stored_len:
            raise _bad(f"section {name!r}: stored section with two lengths", path, off + 32)
        if blake3.blake3(mv[start : start + stored_len]).digest() != digest:
            raise _bad(f"section {name!r}: digest mismatch (damaged data)", path, start)
        if name in sections:
            raise _bad(f"section {name!r} appears twice", path, off)
        sections[name] = (codec, raw_len, start, stored_len)
        off = start + stored_len
    if off != end:
        raise _bad(f"{end - off} unexplained bytes before the trailer", path, off)
    end_magic, size, digest = TRAILER.unpack_from(data, end)
    if end_magic != END_MAGIC:
        raise _bad("trailer magic missing", path, end)
    if size != len(data):
        raise _bad(f"trailer says {size} bytes, the file has {len(data)}", path, end + 8)
    if blake3.blake3(mv[:end]).digest() != digest:
        raise _bad("trailer digest mismatch (damaged header)", path, end + 16)
    return sections


def _changes_of(value, path) -> dict | None:
    """A volume's ``changes`` entry (docs/formats/changes.md), checked."""
    if value is None:
        return None
    epoch, generation = value["epoch"], value["generation"]
    if not isinstance(epoch, str) or not isinstance(generation, int) or generation < 1:
        raise FormatError(f"volumes section: changes {value!r}", path)
    bytes.fromhex(epoch)  # ValueError: reported as a bad volumes section
    return {"epoch": epoch, "generation": generation}


def _payload(data: bytes, sections: dict, name: str, path) -> bytes | memoryview:
    """A section's payload: a view into ``data`` when stored, else inflated bytes."""
    if name not in sections:
        raise FormatError(f"section {name!r} is missing", path)
    codec, raw_len, start, stored_len = sections[name]
    stored = memoryview(data)[start : start + stored_len]
    if codec == CODEC_STORED:
        return stored
    dec = zlib.decompressobj()
    try:
        out = dec.decompress(stored, raw_len + 1)
    except zlib.error as exc:
        raise _bad(f"section {name!r}: {exc}", path, start) from None
    if len(out) != raw_len or not dec.eof:
        raise _bad(f"section {name!r}: inflates to the wrong length", path, start)
    return out


def _json_payload(data, sections, name, path):
    raw = bytes(_payload(data, sections, name, path))
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise _bad(f"section {name!r}: bad JSON: {exc}", path, sections[name][2]) from None


def _table(data, sections, name, dtype, rows: int, path) -> np.ndarray:
    parts = [(name, _plain_fields(dtype))]
    if _digest_fields(dtype):
        parts.append((name + DIGEST_SUFFIX, _digest_fields(dtype)))
    for part, fields in parts:  # sizes first: a damaged row count allocates nothing
        width = sum(dtype[f].itemsize for f in fields)
        if part in sections and sections[part][1] != rows * width:
            raise _bad(
                f"section {part!r}: {sections[part][1]} bytes for {rows} rows of {width} bytes",
                path,
                sections[part][2],
            )
    out = np.empty(rows, dtype=dtype)  # every byte is filled: plain and digest columns
    for part, fields in parts:
        _uncolumn(out, fields, _payload(data, sections, part, path), part, path)
    return out


def loads(data: bytes, path: str | os.PathLike | None = None) -> m.Fingerprint:
    """Decode a fingerprint; FormatError (file and offset) on any damage."""
    data = bytes(data)
    sections = _split(data, path)
    meta = _json_payload(data, sections, "meta", path)
    vols = _json_payload(data, sections, "volumes", path)
    try:
        counts = {k: meta[k] for k in ("datasets", "members", "groups", "extents")}
        if not all(type(n) is int and n >= 0 for n in counts.values()):
            raise FormatError(f"meta section: row counts {counts} are not whole numbers", path)
        created = _dt.datetime.fromisoformat(meta["created"])
        tool, algorithm = str(meta["tool"]), str(meta["algorithm"])
        version = int(meta["format"])
        volumes = []
        for i, v in enumerate(vols):
            sig_raw = _payload(data, sections, f"tracks.{i}", path)
            total = int(v["cyls"]) * int(v["heads"])
            if len(sig_raw) != 8 * total:
                raise FormatError(f"tracks.{i}: {len(sig_raw)} bytes for {total} tracks", path)
            volumes.append(
                m.VolumeFp(
                    volser=str(v["volser"]),
                    devtype=str(v["devtype"]),
                    cyls=int(v["cyls"]),
                    heads=int(v["heads"]),
                    trksize=int(v["trksize"]),
                    kind=str(v["kind"]),
                    path=str(v["path"]),
                    size=int(v["size"]),
                    mtime_ns=int(v["mtime_ns"]),
                    sig_kind=str(v["sig_kind"]),
                    track_sigs=np.frombuffer(sig_raw, dtype="<u8").copy(),
                    changes=_changes_of(v.get("changes"), path),
                )
            )
    except (KeyError, TypeError, ValueError, OverflowError) as exc:
        if isinstance(exc, FormatError):
            raise
        raise FormatError(f"meta or volumes section: {exc!r}", path) from None
    if algorithm != m.ALGORITHM:
        raise UnsupportedError(f"digest algorithm {algorithm!r}", path)
    tables = {
        name: _table(data, sections, name, dtype, counts[name], path)
        for name, dtype in TABLES.items()
    }
    userdata = bytes(_payload(data, sections, "userdata", path))
    fp = m.Fingerprint(
        version=version,
        created=created,
        tool=tool,
        volumes=volumes,
        dataset_table=tables["datasets"],
        members=tables["members"],
        groups=tables["groups"],
        extents=tables["extents"],
        userdata=userdata,
        algorithm=algorithm,
    )
    _check_refs(fp, path)
    return fp


def _check_refs(fp: m.Fingerprint, path) -> None:
    """Cross-references must stay inside the tables (no IndexError later)."""
    ds, mem, grp, ext = fp.dataset_table, fp.members, fp.groups, fp.extents
    nds = len(ds)
    if len(ds) and (ds["vol"] >= len(fp.volumes)).any():
        raise FormatError("a data set names a volume that is not there", path)
    if len(ds):
        if ((ds["mstart"].astype(np.int64) + ds["mcount"]) > len(mem)).any():
            raise FormatError("a data set's member rows run past the member table", path)
        if ((ds["gstart"].astype(np.int64) + ds["gcount"]) > len(grp)).any():
            raise FormatError("a data set's group rows run past the group table", path)
    for name, table in (("members", mem), ("groups", grp), ("extents", ext)):
        if len(table) and (table["ds"] >= nds).any():
            raise FormatError(f"{name} table names a data set that is not there", path)
        if len(table) > 1 and (np.diff(table["ds"].astype(np.int64)) < 0).any():
            raise FormatError(f"{name} table is not sorted by data set", path)
    if len(mem):
        if ((mem["udoff"].astype(np.int64) + mem["udlen"]) > len(fp.userdata)).any():
            raise FormatError("member user data runs past the user data section", path)
        alias = mem["alias_of"]
        if ((alias < -1) | (alias >= len(mem))).any():
            raise FormatError("an alias names a member row that is not there", path)
    for name in ("dsname", "dsorg", "recfm", "space_unit"):
        if (np.ascontiguousarray(ds[name]).view(np.uint8) >= 0x80).any():
            raise FormatError("a data set name or attribute is not ASCII", path)
    last_day = _dt.date.max.toordinal()
    for name in ("created", "expires", "referenced"):  # proleptic ordinals, 0 = none
        if len(ds) and ((ds[name] < 0) | (ds[name] > last_day)).any():
            raise FormatError(f"a data set's {name} date is not a date", path)


def read(path: str | os.PathLike) -> m.Fingerprint:
    """Read a fingerprint file (FormatError naming the file and offset if damaged)."""
    path = os.fspath(path)
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except FileNotFoundError:
        from emulator.errors import NotFoundError

        raise NotFoundError("no such fingerprint file", path) from None
    return loads(data, path)


__all__ = ["read", "write", "dumps", "loads", "MAGIC"]
