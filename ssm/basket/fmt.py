"""Write, read and verify change basket files (docs/formats/basket.md, "File layout").

    fmt.write_basket("day1.basket", header, operations, payloads, key=None)
    with fmt.read_basket("day1.basket", key=None) as basket:   # verifies the whole file
        basket.header, basket.operations, basket.payload(0), basket.size
    fmt.verify_basket("day1.basket")     # read_basket + every payload decoded

Reading verifies before it returns anything, in the order of basket.md *Integrity and
authentication*: magic and version first (the version decides the rest: versions 1 and
2 are read, 2 is written), the trailer's frame, every section header's bounds and
digest, every payload frame's bounds and digest, the trailer digest over the whole file,
the MAC when a key is given; only then are the header and manifest decoded and checked.
Damage raises ``IntegrityError`` (a digest or MAC differs) or ``FormatError``
(structure) naming the file and offset; nothing else escapes on bad input.
"""

from __future__ import annotations

import bz2
import hmac
import json
import lzma
import os
import stat
import struct
import tempfile
import zlib
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from hashlib import sha256
from typing import NamedTuple

import blake3
import numpy as np
import zstandard

from emulator.errors import FormatError, IntegrityError, UnsupportedError
from ssm.basket.ops import Operation, decode_payload

MAGIC = b"\x89SSMBK\r\n"
END_MAGIC = b"SSMBKEND"
#: The version written; every version up to it is read (basket.md "Versioning").
FORMAT_VERSION = 3
HEADER = struct.Struct("<8sHHI16s")  # magic, version, flags, nsections, reserved
SECTION = struct.Struct("<24sB7sQQ32s")  # name, codec, reserved, raw_len, stored_len, digest
FRAME = struct.Struct("<B7sQQ32s")  # codec, reserved, raw_len, stored_len, digest
TRAILER = struct.Struct("<8sQB7s32s32s")  # end magic, file length, auth, reserved, mac, digest
FLAG_SIGNED = 0x0001
AUTH_NONE = 0
AUTH_HMAC_SHA256 = 1
SECTIONS = ("header", "manifest", "payloads")

CODEC_STORED = 0
CODEC_ZLIB = 1
CODEC_BZ2 = 2
CODEC_LZMA = 3
CODEC_ZSTD = 4
CODEC_NAMES = {
    CODEC_STORED: "stored",
    CODEC_ZLIB: "zlib",
    CODEC_BZ2: "bz2",
    CODEC_LZMA: "lzma",
    CODEC_ZSTD: "zstd",
}
#: The frame codecs each format version allows (a reader of version 1 refuses codec 4).
FRAME_CODECS = {
    1: frozenset({CODEC_STORED, CODEC_ZLIB, CODEC_BZ2, CODEC_LZMA}),
    2: frozenset(CODEC_NAMES),
    3: frozenset(CODEC_NAMES),
}
#: Frame codec policies (basket.md "Compression"); "auto" is the default.
POLICIES = ("auto", "zstd", "zlib", "bz2", "lzma", "none")
SMALL_PAYLOAD = 64  # bytes: never worth a codec
BIG_PAYLOAD = 256 << 10  # payload bytes from which frames are compressed in threads
#: Level 3 is the knee on real member data: levels 1-2 are barely faster and 10-25 %
#: bigger, level 5 is 10 % smaller for three times the time (basket.md "Compression").
ZSTD_LEVEL = 3
MANIFEST_ZLIB_LEVEL = 6
#: A frame or section may not claim to inflate to more than this (bounds memory on a
#: crafted file whose digests are right).
MAX_RAW = 1 << 40
#: Nor to inflate to more than this many times its stored size: deflate's own limit
#: (1032:1), which the writer keeps to for every codec (bzip2 and xz can go far past it
#: on runs of one byte).  So a frame's decoded size is bounded by the file's size: a
#: small crafted basket cannot make a reader allocate gigabytes.
MAX_RATIO = 1032
_CHUNK = 16 << 20  # hashing granularity when checking (bounded memory views)


# -- compression ----------------------------------------------------------------------
def compress_payload(data: bytes, policy: str = "auto") -> tuple[int, bytes]:
    """(codec, stored bytes) for one payload under ``policy`` (deterministic)."""
    if policy not in POLICIES:
        raise ValueError(f"compression must be one of {POLICIES}, not {policy!r}")
    if policy == "none" or len(data) < SMALL_PAYLOAD:
        return CODEC_STORED, bytes(data)
    if policy in ("auto", "zstd"):
        codec, packed = CODEC_ZSTD, _zstd_compressor().compress(data)
    elif policy == "zlib":
        codec, packed = CODEC_ZLIB, zlib.compress(data, 6)
    elif policy == "bz2":
        codec, packed = CODEC_BZ2, bz2.compress(data, 9)
    else:
        codec, packed = CODEC_LZMA, lzma.compress(data, format=lzma.FORMAT_XZ, preset=6)
    if codec != CODEC_ZLIB and len(data) > MAX_RATIO * len(packed):
        codec, packed = CODEC_ZLIB, zlib.compress(data, 9)  # within MAX_RATIO
    if len(packed) >= len(data) or len(data) > MAX_RATIO * len(packed):
        return CODEC_STORED, bytes(data)
    return codec, packed


def _zstd_compressor() -> zstandard.ZstdCompressor:
    """A new compressor (one is not safe to share between threads, and costs a few
    microseconds).  Every parameter that shapes the output is fixed, so the same data
    gives the same bytes; the content size is written because a reader checks it against
    the frame's raw_len before it allocates; no checksum (the frame digest covers the
    stored bytes), no dictionary, no worker threads."""
    return zstandard.ZstdCompressor(
        level=ZSTD_LEVEL,
        write_checksum=False,
        write_content_size=True,
        write_dict_id=False,
        threads=0,
    )


def _inflates_too_far(codec: int, raw_len: int, stored_len: int) -> bool:
    """A length no basket writer makes: past MAX_RAW, or past MAX_RATIO of the stored
    bytes (docs/formats/basket.md "Integrity")."""
    return raw_len > MAX_RAW or (codec != CODEC_STORED and raw_len > MAX_RATIO * stored_len)


def _inflate(codec: int, stored: bytes, raw_len: int, where: str, path: str | None) -> bytes:
    """Decode ``stored`` to exactly ``raw_len`` bytes (bounded; FormatError otherwise)."""
    if codec == CODEC_STORED:
        out, rest, done = bytes(stored), b"", True
    else:
        try:
            if codec == CODEC_ZLIB:
                d = zlib.decompressobj()
                out = d.decompress(stored, raw_len + 1)
                rest, done = d.unconsumed_tail + d.unused_data, d.eof
            elif codec == CODEC_BZ2:
                d = bz2.BZ2Decompressor()
                out = d.decompress(stored, raw_len + 1)
                rest, done = d.unused_data, d.eof
            elif codec == CODEC_LZMA:
                d = lzma.LZMADecompressor(format=lzma.FORMAT_XZ)
                out = d.decompress(stored, raw_len + 1)
                rest, done = d.unused_data, d.eof
            elif codec == CODEC_ZSTD:
                _zstd_frame_says(stored, raw_len, where, path)
                out = zstandard.ZstdDecompressor().decompress(stored, allow_extra_data=False)
                rest, done = b"", True
            else:
                raise FormatError(f"unknown codec {codec}", path, where)
        except FormatError:
            raise
        except _DECODE_ERRORS as exc:
            raise FormatError(f"cannot decode: {exc}", path, where) from None
    _decoded_length(len(out), done and not rest, raw_len, where, path)
    return out


_DECODE_ERRORS = (zlib.error, OSError, EOFError, lzma.LZMAError, zstandard.ZstdError, ValueError)


def _zstd_frame_says(stored: bytes, raw_len: int, where: str, path: str | None) -> None:
    """decompress() allocates what a zstd frame header says: that must be ``raw_len``
    (a writer always writes it), whatever the header claims."""
    said = zstandard.get_frame_parameters(stored).content_size
    if said != raw_len:
        if said == zstandard.CONTENTSIZE_UNKNOWN:
            said = "an unknown number of"
        raise FormatError(f"zstd frame says it decodes to {said} bytes, not {raw_len}", path, where)
    if raw_len == 0:  # decompress() would return b"" without reading on
        raise FormatError("empty zstd frame (a writer stores it)", path, where)


def _decoded_length(got: int, ended: bool, raw_len: int, where: str, path: str | None) -> None:
    if got != raw_len or not ended:
        raise FormatError(
            f"decodes to {got}{'' if ended else '+'} bytes, not {raw_len}", path, where
        )


def _inflate_into(
    codec: int, stored: bytes, raw_len: int, out: np.ndarray, where: str, path: str | None
) -> np.ndarray:
    """:func:`_inflate` into ``out`` (uint8, at least ``raw_len`` long): a zstd frame
    is decoded there directly, others through :func:`_inflate`.  Returns the view."""
    view = out[:raw_len]
    if codec != CODEC_ZSTD:
        view[:] = np.frombuffer(_inflate(codec, stored, raw_len, where, path), dtype=np.uint8)
        return view
    try:
        _zstd_frame_says(stored, raw_len, where, path)
        with zstandard.ZstdDecompressor().stream_reader(stored) as reader:
            got = _zstd_fill(reader, memoryview(view))
            ended = not reader.read(1)
    except FormatError:
        raise
    except _DECODE_ERRORS as exc:
        raise FormatError(f"cannot decode: {exc}", path, where) from None
    _decoded_length(got, ended, raw_len, where, path)
    return view


def _zstd_fill(reader: zstandard.ZstdDecompressionReader, target: memoryview) -> int:
    """Decode from ``reader`` into ``target`` until it is full or the frame ends;
    returns the bytes decoded."""
    got = 0
    while got < len(target):
        n = reader.readinto(target[got:])
        if not n:
            break
        got += n
    return got


# -- writing --------------------------------------------------------------------------
def _json(obj) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode("utf-8")


def _section_head(name: str, codec: int, raw_len: int, stored_len: int, digest: bytes) -> bytes:
    return SECTION.pack(name.encode("ascii"), codec, bytes(7), raw_len, stored_len, digest)


def _frame(data: bytes, policy: str) -> tuple[bytes, bytes]:
    codec, stored = compress_payload(data, policy)
    return FRAME.pack(codec, bytes(7), len(data), len(stored), blake3.blake3(stored).digest()), (
        stored
    )


def write_basket(
    path: str | os.PathLike,
    header: dict,
    operations: Sequence[Operation],
    payloads: Sequence[bytes],
    key: bytes | None = None,
    *,
    compression: str = "auto",
    threads: int | None = None,
) -> int:
    """Write a basket atomically (temporary file in the same folder, fsync, rename);
    returns its size.  ``header`` is stored as given plus ``format``, ``compression``
    and ``counts`` (when absent); ``operations`` must be numbered 0.. in order and name
    payloads in range.  ``key``: sign with HMAC-SHA256.  The same inputs give the same
    bytes (``created`` in ``header`` is the only clock)."""
    if compression not in POLICIES:
        raise ValueError(f"compression must be one of {POLICIES}, not {compression!r}")
    for i, op in enumerate(operations):
        if op.seq != i:
            raise ValueError(f"operation {i} has seq {op.seq}")
        op.check(f"operation {i}")
        if op.payload is not None and not 0 <= op.payload < len(payloads):
            raise ValueError(f"operation {i} names payload {op.payload} of {len(payloads)}")

    head = dict(header)
    head["format"] = FORMAT_VERSION
    head.setdefault("compression", compression)
    if "counts" not in head:
        kinds: dict[str, int] = {}
        for op in operations:
            kinds[op.kind] = kinds.get(op.kind, 0) + 1
        head["counts"] = {
            "operations": kinds,
            "payloads": len(payloads),
            "payload_bytes": sum(len(p) for p in payloads),
            "content_bytes": sum(op.size for op in operations),
        }

    # Frames first (compression spreads over threads: the codecs release the GIL).
    total = sum(len(p) for p in payloads)
    workers = threads if threads is not None else min(4, os.cpu_count() or 1)
    if workers > 1 and total >= BIG_PAYLOAD and len(payloads) > 1:
        # Largest first, so one big payload does not finish last on its own.
        order = sorted(range(len(payloads)), key=lambda i: -len(payloads[i]))
        with ThreadPoolExecutor(max_workers=workers) as pool:
            done = list(pool.map(lambda i: _frame(payloads[i], compression), order))
        frames = [None] * len(payloads)
        for i, frame in zip(order, done, strict=True):
            frames[i] = frame
    else:
        frames = [_frame(p, compression) for p in payloads]

    header_raw = _json(head)
    manifest_raw = _json([op.to_json() for op in operations])
    manifest_stored = zlib.compress(manifest_raw, MANIFEST_ZLIB_LEVEL)
    frames_len = sum(len(fh) + len(st) for fh, st in frames)
    # The payloads section's digest covers its frame headers, each of which holds the
    # digest of its stored bytes (hashing the bytes a third time would add nothing).
    frames_digest = blake3.blake3(b"".join(fh for fh, _ in frames)).digest()
    pieces: list[bytes] = [
        HEADER.pack(MAGIC, FORMAT_VERSION, FLAG_SIGNED if key else 0, len(SECTIONS), bytes(16)),
        _section_head(
            "header",
            CODEC_STORED,
            len(header_raw),
            len(header_raw),
            blake3.blake3(header_raw).digest(),
        ),
        header_raw,
        _section_head(
            "manifest",
            CODEC_ZLIB,
            len(manifest_raw),
            len(manifest_stored),
            blake3.blake3(manifest_stored).digest(),
        ),
        manifest_stored,
        _section_head("payloads", CODEC_STORED, frames_len, frames_len, frames_digest),
    ]
    for fh, st in frames:
        pieces.append(fh)
        pieces.append(st)

    size = sum(len(p) for p in pieces) + TRAILER.size
    hasher = blake3.blake3(max_threads=blake3.blake3.AUTO) if size >= 64 << 20 else blake3.blake3()
    mac = hmac.new(bytes(key), digestmod=sha256) if key else None
    for p in pieces:
        hasher.update(p)
        if mac is not None:
            mac.update(p)
    auth = AUTH_HMAC_SHA256 if mac is not None else AUTH_NONE
    mac_bytes = mac.digest() if mac is not None else bytes(32)
    tail = TRAILER.pack(END_MAGIC, size, auth, bytes(7), mac_bytes, bytes(32))
    hasher.update(tail[:-32])
    tail = tail[:-32] + hasher.digest()

    target = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(target))
    fd, tmp = tempfile.mkstemp(prefix=".basket-", dir=folder)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # as open() would make it, not mkstemp's 0600
        with os.fdopen(fd, "wb") as out:
            for p in pieces:
                out.write(p)
            out.write(tail)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    try:  # the rename itself must survive a crash
        dfd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass
    return size


# -- reading --------------------------------------------------------------------------
class FrameInfo(NamedTuple):
    """Where payload ``i`` is: its frame header's offset and what the header says."""

    offset: int
    codec: int
    raw_len: int
    stored_len: int
    digest: bytes

    @property
    def data_offset(self) -> int:
        return self.offset + FRAME.size


@dataclass
class Basket:
    """A verified basket (see :func:`read_basket`).  Payloads are read on demand from
    the file, their frame digest checked again."""

    path: str
    version: int
    flags: int
    size: int
    header: dict
    operations: list[Operation]
    frames: list[FrameInfo]
    signed: bool
    authenticated: bool  # the MAC was checked with a key
    _file: _File | None = None

    @property
    def payload_count(self) -> int:
        return len(self.frames)

    @property
    def payload_bytes(self) -> int:
        return sum(f.raw_len for f in self.frames)

    def payload_info(self, i: int) -> FrameInfo:
        if not 0 <= i < len(self.frames):
            raise FormatError(f"no payload {i} (of {len(self.frames)})", self.path)
        return self.frames[i]

    def payload(self, i: int) -> bytes:
        """Payload ``i``, decoded (its frame digest is checked again: the file may have
        changed since it was verified)."""
        info = self.payload_info(i)
        where = f"payload {i} at offset {info.offset}"
        return _inflate(info.codec, self._stored(i, where), info.raw_len, where, self.path)

    def payload_into(self, i: int, out: np.ndarray) -> np.ndarray:
        """Payload ``i`` decoded into ``out`` (uint8, at least its raw length), as
        :meth:`payload` checks it; returns the view that holds it.  For a reader that
        decodes large payloads one after another: one buffer instead of fresh memory
        for each."""
        info = self.payload_info(i)
        where = f"payload {i} at offset {info.offset}"
        if len(out) < info.raw_len:
            raise FormatError(
                f"a {len(out)}-byte buffer for {info.raw_len} bytes", self.path, where
            )
        return _inflate_into(
            info.codec, self._stored(i, where), info.raw_len, out, where, self.path
        )

    def payload_head(
        self, i: int, n: int, extend: Callable[[bytes], int | None] | None = None
    ) -> bytes:
        """The first ``n`` bytes of payload ``i`` decoded (at most its raw length), its
        frame digest checked: a zstd frame is decoded only that far.  For a reader that
        needs a payload's head long before its bytes (basket.md ``members``).
        ``extend``: told those ``n`` bytes, says how many the head has in all (None:
        just those); decoding goes on to there in the same pass."""
        info = self.payload_info(i)
        where = f"payload {i} at offset {info.offset}"
        stored = self._stored(i, where)
        n = min(n, info.raw_len)
        if info.codec != CODEC_ZSTD:
            raw = _inflate(info.codec, stored, info.raw_len, where, self.path)
            more = extend(raw[:n]) if extend is not None else None
            return raw[: n if more is None else max(n, min(more, info.raw_len))]
        out = bytearray(n)
        try:
            _zstd_frame_says(stored, info.raw_len, where, self.path)
            with zstandard.ZstdDecompressor().stream_reader(stored) as reader:
                got = _zstd_fill(reader, memoryview(out))
                more = extend(bytes(out)) if extend is not None and got == n else None
                if more is not None and more > n:
                    out.extend(bytes(min(more, info.raw_len) - n))
                    got += _zstd_fill(reader, memoryview(out)[n:])
        except FormatError:
            raise
        except _DECODE_ERRORS as exc:
            raise FormatError(f"cannot decode: {exc}", self.path, where) from None
        if got != len(out):
            raise FormatError(f"decodes to {got} bytes, not {info.raw_len}", self.path, where)
        return bytes(out)

    def _stored(self, i: int, where: str) -> bytes:
        """The stored bytes of payload ``i``, their frame digest checked."""
        info = self.frames[i]
        if self._file is None:
            raise FormatError("basket is closed", self.path, where)
        stored = self._file[info.data_offset : info.data_offset + info.stored_len]
        if blake3.blake3(stored).digest() != info.digest:
            raise IntegrityError("payload digest differs (file changed?)", self.path, where)
        return stored

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> Basket:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def to_json(self) -> dict:
        """The document ``ssm show --json BASKET`` prints."""
        return {
            "path": self.path,
            "format": self.version,
            "size": self.size,
            "signed": self.signed,
            "authenticated": self.authenticated,
            "header": self.header,
            "payloads": [
                {
                    "codec": CODEC_NAMES.get(f.codec, str(f.codec)),
                    "raw": f.raw_len,
                    "stored": f.stored_len,
                }
                for f in self.frames
            ],
            "operations": [op.to_json() for op in self.operations],
        }


class _File:
    """Positioned reads of an open file, sliced like bytes (``f[a:b]``).  Not a memory
    map: a file truncated under a map kills the reader with SIGBUS, a short read here
    is a FormatError."""

    def __init__(self, path: str):
        self.path = path
        self.fd = -1
        self.fd = os.open(path, os.O_RDONLY)

    def __getitem__(self, part: slice) -> bytes:
        start, stop = part.start or 0, part.stop
        if stop <= start:
            return b""
        try:
            out = os.pread(self.fd, stop - start, start)
            while len(out) < stop - start:
                more = os.pread(self.fd, stop - start - len(out), start + len(out))
                if not more:
                    raise FormatError(
                        f"file ends at {start + len(out)} (changed while it was read?)",
                        self.path,
                        f"offset {start + len(out)}",
                    )
                out += more
        except OSError as exc:
            raise FormatError(
                f"cannot read: {exc.strerror}", self.path, f"offset {start}"
            ) from None
        return out

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __del__(self) -> None:
        self.close()


def is_basket(path: str | os.PathLike) -> bool:
    """True when the file starts with the basket magic (``ssm show`` dispatch)."""
    try:
        with open(path, "rb") as f:
            return f.read(len(MAGIC)) == MAGIC
    except OSError:
        return False


def _hash_range(buf, start: int, stop: int, hasher=None):
    h = hasher if hasher is not None else blake3.blake3()
    for pos in range(start, stop, _CHUNK):
        h.update(buf[pos : min(stop, pos + _CHUNK)])
    return h


def _trailer_digest_ok(buf, size: int) -> bool:
    if size < HEADER.size + TRAILER.size:
        return False
    want = buf[size - 32 : size]
    h = blake3.blake3(max_threads=blake3.blake3.AUTO)
    return _hash_range(buf, 0, size - 32, h).digest() == want


def read_basket(path: str | os.PathLike, key: bytes | None = None) -> Basket:
    """Open and verify a basket whole (module docstring); with ``key`` an unsigned or
    forged basket is refused (IntegrityError).  The result keeps the file open for
    :meth:`Basket.payload`: close it (or use ``with``)."""
    fpath = os.fspath(path)
    try:
        f = _File(fpath)
    except OSError as exc:
        raise FormatError(f"cannot open: {exc.strerror}", fpath) from None
    try:
        st = os.fstat(f.fd)
        if not stat.S_ISREG(st.st_mode):
            raise FormatError("not a regular file", fpath)
        basket = _verify(f, st.st_size, fpath, key)
    except BaseException:
        f.close()
        raise
    basket._file = f
    return basket


def _verify(buf, size: int, path: str, key: bytes | None) -> Basket:
    # 1. Magic and version, before anything else: the version decides the layout.
    if size < len(MAGIC) or buf[0 : len(MAGIC)] != MAGIC:
        raise FormatError("not a basket (bad magic)", path, "offset 0")
    if size < HEADER.size + TRAILER.size:
        raise FormatError(f"truncated: {size} bytes", path, f"offset {size}")
    magic, version, flags, nsections, reserved = HEADER.unpack(buf[0 : 0 + HEADER.size])
    if version not in FRAME_CODECS:
        if _trailer_digest_ok(buf, size):
            raise UnsupportedError(
                f"basket format {version} is not supported (this ssm reads up to {FORMAT_VERSION})",
                path,
                "offset 8",
            )
        raise FormatError(f"bad format version {version} (damaged file)", path, "offset 8")
    if flags & ~FLAG_SIGNED or nsections != len(SECTIONS) or any(reserved):
        raise FormatError(
            f"bad header: flags {flags:#06x}, {nsections} sections", path, "offset 10"
        )

    # 2. The trailer's frame: truncation or appended bytes show here.
    tpos = size - TRAILER.size
    end_magic, file_len, auth, treserved, mac_stored, digest = TRAILER.unpack(
        buf[tpos : tpos + TRAILER.size]
    )
    if end_magic != END_MAGIC:
        raise FormatError("no trailer at the end (truncated?)", path, f"offset {tpos}")
    if file_len != size:
        raise FormatError(
            f"trailer says {file_len} bytes, the file has {size} (truncated?)",
            path,
            f"offset {tpos + 8}",
        )
    if auth not in (AUTH_NONE, AUTH_HMAC_SHA256) or any(treserved):
        raise FormatError(f"bad authentication kind {auth}", path, f"offset {tpos + 16}")
    if bool(flags & FLAG_SIGNED) != (auth == AUTH_HMAC_SHA256):
        raise FormatError("header and trailer disagree on the signature", path, "offset 10")
    if auth == AUTH_NONE and any(mac_stored):
        raise FormatError("MAC present on an unsigned basket", path, f"offset {tpos + 24}")

    # 3. Sections: bounds, names, digests.
    pos = HEADER.size
    sections: dict[str, tuple] = {}  # name -> (offset, codec, raw, stored, digest)
    for want in SECTIONS:
        where = f"section {want!r} at offset {pos}"
        if pos + SECTION.size > tpos:
            raise FormatError("section header runs into the trailer", path, where)
        raw_name, codec, sreserved, raw_len, stored_len, sdigest = SECTION.unpack(
            buf[pos : pos + SECTION.size]
        )
        name = raw_name.rstrip(b"\x00")
        if name != want.encode("ascii") or any(sreserved):
            raise FormatError(f"expected section {want!r}, found {name!r}", path, where)
        start = pos + SECTION.size
        if stored_len > tpos - start:
            raise FormatError(f"section of {stored_len} bytes runs past the trailer", path, where)
        if codec not in (CODEC_STORED, CODEC_ZLIB) or _inflates_too_far(codec, raw_len, stored_len):
            raise FormatError(f"bad codec {codec} or length {raw_len}", path, where)
        if codec == CODEC_STORED and raw_len != stored_len:
            raise FormatError(f"stored section of {stored_len} bytes says {raw_len}", path, where)
        if want != "payloads":
            if _hash_range(buf, start, start + stored_len).digest() != sdigest:
                raise IntegrityError("section digest differs", path, where)
        sections[want] = (pos, codec, raw_len, stored_len, sdigest)
        pos = start + stored_len
    if pos != tpos:
        raise FormatError(
            f"{tpos - pos} bytes between the sections and the trailer", path, f"offset {pos}"
        )

    # 4. Payload frames: they must tile the payloads section; each digest checked.
    ppos, _codec, _raw, plen, pdigest = sections["payloads"]
    fpos = ppos + SECTION.size
    fend = fpos + plen
    frames: list[FrameInfo] = []
    heads = blake3.blake3()
    while fpos < fend:
        where = f"payload {len(frames)} at offset {fpos}"
        if fpos + FRAME.size > fend:
            raise FormatError("frame header runs past the payloads section", path, where)
        fcodec, freserved, raw_len, stored_len, fdigest = FRAME.unpack(
            buf[fpos : fpos + FRAME.size]
        )
        if (
            fcodec not in FRAME_CODECS[version]
            or any(freserved)
            or _inflates_too_far(fcodec, raw_len, stored_len)
        ):
            raise FormatError(f"bad frame: codec {fcodec}, length {raw_len}", path, where)
        if stored_len > fend - fpos - FRAME.size:
            raise FormatError(f"frame of {stored_len} bytes runs past its section", path, where)
        if fcodec == CODEC_STORED and raw_len != stored_len:
            raise FormatError(f"stored frame of {stored_len} bytes says {raw_len}", path, where)
        heads.update(buf[fpos : fpos + FRAME.size])
        start = fpos + FRAME.size
        if _hash_range(buf, start, start + stored_len).digest() != fdigest:
            raise IntegrityError("payload digest differs", path, where)
        frames.append(FrameInfo(fpos, fcodec, raw_len, stored_len, fdigest))
        fpos = start + stored_len
    if heads.digest() != pdigest:
        raise IntegrityError("section digest differs", path, f"section 'payloads' at offset {ppos}")

    # 5. The trailer digest over everything before it, then the MAC.
    h = blake3.blake3(max_threads=blake3.blake3.AUTO) if size >= 64 << 20 else blake3.blake3()
    if _hash_range(buf, 0, size - 32, h).digest() != digest:
        raise IntegrityError("trailer digest differs", path, f"offset {size - 32}")
    authenticated = False
    if key is not None:
        if auth != AUTH_HMAC_SHA256:
            raise IntegrityError(
                "basket is not signed; a key was given", path, f"offset {tpos + 16}"
            )
        mac = hmac.new(bytes(key), digestmod=sha256)
        _hash_range(buf, 0, tpos, mac)
        if not hmac.compare_digest(mac.digest(), mac_stored):
            raise IntegrityError(
                "signature does not match the key (forged or another key)",
                path,
                f"offset {tpos + 24}",
            )
        authenticated = True

    # 6. Decode the header and the manifest, and check them.
    hpos, hcodec, hraw, hstored, _ = sections["header"]
    where = f"section 'header' at offset {hpos}"
    start = hpos + SECTION.size
    header = _load_json(
        _inflate(hcodec, buf[start : start + hstored], hraw, where, path), where, path
    )
    if not isinstance(header, dict):
        raise FormatError("header is not a JSON object", path, where)
    if header.get("format") != version:
        raise FormatError(f"header says format {header.get('format')!r}", path, where)
    mpos, mcodec, mraw, mstored, _ = sections["manifest"]
    where = f"section 'manifest' at offset {mpos}"
    start = mpos + SECTION.size
    rows = _load_json(
        _inflate(mcodec, buf[start : start + mstored], mraw, where, path), where, path
    )
    if not isinstance(rows, list):
        raise FormatError("manifest is not a JSON list", path, where)
    operations = []
    for i, row in enumerate(rows):
        op = Operation.from_json(row, f"{where}: operation {i}", path)
        if op.seq != i:
            raise FormatError(f"operation {i} has seq {op.seq}", path, where)
        if op.payload is not None and op.payload >= len(frames):
            raise FormatError(
                f"operation {i} names payload {op.payload} of {len(frames)}", path, where
            )
        operations.append(op)
    return Basket(
        path=path,
        version=version,
        flags=flags,
        size=size,
        header=header,
        operations=operations,
        frames=frames,
        signed=auth == AUTH_HMAC_SHA256,
        authenticated=authenticated,
    )


def _load_json(raw: bytes, where: str, path: str):
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise FormatError(f"bad JSON: {exc}", path, where) from None


def verify_basket(path: str | os.PathLike, key: bytes | None = None) -> Basket:
    """:func:`read_basket`, then every payload decoded and checked against the kind of
    the operation that names it (what ``ssm verify`` and an importer run before writing
    anything).  The basket is returned open."""
    basket = read_basket(path, key)
    try:
        for op in basket.operations:
            if op.payload is not None:
                where = f"payload {op.payload} of operation {op.seq} ({op.target})"
                try:
                    decode_payload(op.kind, basket.payload(op.payload), where)
                except FormatError as exc:
                    raise exc.located(basket.path) from None
    except BaseException:
        basket.close()
        raise
    return basket


def load_key(path: str | os.PathLike) -> bytes:
    """A signing key: the file's bytes (``--key FILE``; any non-empty file)."""
    fpath = os.fspath(path)
    try:
        with open(fpath, "rb") as f:
            key = f.read()
    except OSError as exc:
        raise FormatError(f"cannot read key: {exc.strerror}", fpath) from None
    if not key:
        raise FormatError("key file is empty", fpath)
    return key


read_key = load_key


__all__ = [
    "MAGIC",
    "FORMAT_VERSION",
    "POLICIES",
    "Basket",
    "FrameInfo",
    "write_basket",
    "read_basket",
    "verify_basket",
    "is_basket",
    "load_key",
    "read_key",
    "compress_payload",
]
