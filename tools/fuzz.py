"""Structure-aware mutation fuzzing of every reader of untrusted input.

    python tools/fuzz.py --target all --execs 20000 --seed 1 --workers 2
    python tools/fuzz.py --target xmit --execs 500 --markdown
    python tools/fuzz.py --replay tests/fuzz_corpus
    python tools/fuzz.py --basket-flips

Each target starts from inputs the project writes itself (volumes made through
``Volume.create``/``allocate``/``Pds``, plain, CCKD zlib/bzip2/none and CCKD64; XMIT files
from ``transmit``; IEBCOPY unloads from ``write_unload``; AWS/HET tapes from
``build_tape``; a fingerprint file from ``ssm.fpfile``; a basket from ``ssm.export``).
Execution ``i`` of a target derives its mutations from ``(seed, target, i)`` alone, so
within a run any input can be made again from its number (the seed inputs carry the
dates and times they were made, so another day's run differs a little; every finding
is kept as bytes).  Mutations aim at the known structure:
header fields, L1/L2 entries, track headers and count fields, DSCB fields and chain
pointers (DS1PTRDS, F3/F5/F7 chains, DS4EFPTR, VOL1's VTOC pointer), directory-block
byte counts and entries, XMIT segment lengths and text units, unload BDW/SDW lengths and
block prefixes, tape chunk headers and labels; plus flips, random bytes, truncation,
extension, insertion and splicing.  A fingerprint file or basket is also *resealed*
after the mutation of a decoded section (JSON numbers, table bytes, payload frames):
its digests are right again, so the reader goes past them, as a crafted file would.

The consumer of each target does what a user would: open and read everything (every
data set and member, ``dasd check``, a fingerprint), ``dasd receive``, load an unload,
read every tape file in every form, ``ssm show``/``compare`` a fingerprint file,
``ssm verify``/``show``/``import`` a basket.  Outcomes:

* ``ok``, ``error`` (an :class:`~emulator.errors.EmulatorError`: the contract);
* ``crash``: any other exception (signature: type and innermost project frame), or
  the worker process dying (a signal);
* ``hang``: more than ``--timeout`` seconds (5) on one small input, or the worker not
  answering at all (a compiled loop) for ``HARD_TIMEOUT`` seconds;
* ``oversize``: a MemoryError, or resident memory growing by more than 256 MiB
  (each worker runs under an address-space limit);
* ``written``: a receive, load or import that failed but changed its target image.

New crash signatures are minimised (mutations dropped while the signature stays) and
saved with ``--save DIR`` as ``DIR/<target>/<hash>.bin`` (``.bin.gz`` for large images)
and a ``.txt`` saying what went wrong; ``tests/test_fuzz.py`` replays them.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as _dt
import gzip
import hashlib
import json
import multiprocessing as mp
import os
import random
import re
import resource
import shutil
import signal
import struct
import sys
import tempfile
import time
import traceback
import tracemalloc
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import construct as cs  # noqa: E402

from emulator.errors import EmulatorError  # noqa: E402

TIMEOUT = 5.0  # seconds for one execution on a small input
HARD_TIMEOUT = 30.0  # seconds without an answer: a loop that never returns to Python
RSS_LIMIT = 256 << 20  # resident growth in one execution that counts as oversize
ADDRESS_HEADROOM = 512 << 20  # address space a worker may add to its warmed-up size
NOW = _dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=_dt.UTC)
PROJECT_DIRS = ("emulator", "ssm")
OUTCOMES = ("ok", "error", "crash", "hang", "oversize", "written")
BAD = ("crash", "hang", "oversize", "written")


# -- inputs and their structure ---------------------------------------------------------
class Field(NamedTuple):
    """A field of a seed input that mutations aim at."""

    offset: int
    width: int
    order: str  # ">" big-endian, "<" little-endian, "c" character data
    label: str
    pointer: bool = False  # holds a CCHHR (a chain or VTOC pointer)


@dataclasses.dataclass
class Seed:
    name: str
    data: bytes
    fields: list[Field]
    pointers: list[bytes] = dataclasses.field(default_factory=list)  # CCHHRs of DSCBs
    sections: list[tuple[str, bytes]] | None = None  # decoded sections (resealable files)


def struct_fields(layout: cs.Construct, base: int, order: str, prefix: str) -> list[Field]:
    """Every leaf of a fixed-size Construct declaration as a Field (nested Structs and
    Arrays walked; a CCHHR sub-struct is also one pointer field)."""
    out: list[Field] = []
    pos = base
    for sub in getattr(layout, "subcons", []):
        size = sub.sizeof()
        name = f"{prefix}.{sub.name}" if sub.name else prefix
        inner = sub.subcon if isinstance(sub, cs.Renamed) else sub
        if isinstance(inner, cs.Struct):
            if [s.name for s in inner.subcons] == ["cyl", "head", "rec"]:
                out.append(Field(pos, 5, ">", name, pointer=True))
            out += struct_fields(inner, pos, order, name)
        elif isinstance(inner, cs.Array):
            width = inner.subcon.sizeof()
            for k in range(inner.count):
                out += struct_fields(inner.subcon, pos + k * width, order, f"{name}[{k}]")
        elif isinstance(inner, cs.Bytes) and size > 8:
            out.append(Field(pos, size, "c", name))
        else:
            out.append(Field(pos, size, order, name))
        pos += size
    return out


def _dscb_layout(fmtid: int):
    from emulator.layouts import vtoc as V

    return {0xF1: V.Format1, 0xF8: V.Format1, 0xF3: V.Format3, 0xF4: V.Format4}.get(
        fmtid, {0xF5: V.Format5, 0xF7: V.Format7}.get(fmtid)
    )


def track_fields(data: bytes, start: int, end: int, trk: str) -> tuple[list[Field], list[bytes]]:
    """Fields of one track image at ``data[start:end]``: home address, count fields,
    and inside known records the DSCB, VOL1 and directory-block fields.  Returns the
    fields and the CCHHRs of the DSCBs found (pointer values for chain mutations)."""
    from emulator.layouts import pds as P
    from emulator.layouts import vtoc as V

    fields = [Field(start + 1, 2, ">", f"{trk} HA.cyl"), Field(start + 3, 2, ">", f"{trk} HA.head")]
    pointers: list[bytes] = []
    pos = start + 5
    for _ in range(256):  # bounded: a track holds at most 255 records and R0
        if pos + 8 > end or data[pos : pos + 8] == b"\xff" * 8:
            break
        cyl, head, rec, kl, dl = struct.unpack_from(">HHBBH", data, pos)
        where = f"{trk} R{rec}"
        fields += [
            Field(pos, 5, ">", f"{where} count.cchhr"),
            Field(pos + 5, 1, ">", f"{where} count.keylen"),
            Field(pos + 6, 2, ">", f"{where} count.datalen"),
        ]
        key, body = pos + 8, pos + 8 + kl
        if kl == 44 and dl == 96:
            layout = _dscb_layout(data[key + 44])
            if layout is not None:
                pointers.append(struct.pack(">HHB", cyl, head, rec))
                fields += struct_fields(layout, key, ">", f"{where} F{data[key + 44] & 15}")
        elif kl == 4 and data[key : key + 4] == b"\xe5\xd6\xd3\xf1":  # 'VOL1'
            fields += struct_fields(V.Vol1, body, ">", f"{where} VOL1")
        elif kl == P.DIRBLK_KEYLEN and dl == P.DIRBLK_DATALEN:
            fields.append(Field(body, 2, ">", f"{where} dirblock.used"))
            used = int.from_bytes(data[body : body + 2], "big")
            epos = body + 2
            while epos + 12 <= body + min(used, 256):
                fields += struct_fields(P.DirEntry, epos, ">", f"{where} entry")
                epos += 12 + 2 * (data[epos + 11] & 0x1F)
        elif dl >= 8 and rec > 0:
            fields += [
                Field(body, 2, ">", f"{where} BDW/RDW"),
                Field(body + 4, 2, ">", f"{where} RDW"),
            ]
        pos = body + dl
    return fields, pointers


def ckd_seed(name: str, data: bytes) -> Seed:
    """A plain CKD image: device header and every non-empty track slot."""
    from emulator.layouts import ckd as K

    fields = struct_fields(K.DeviceHeader, 0, "<", "devhdr")
    pointers: list[bytes] = []
    trksize = int.from_bytes(data[12:16], "little")
    heads = int.from_bytes(data[8:12], "little")
    for slot in range((len(data) - K.DEVHDR_SIZE) // trksize):
        start = K.DEVHDR_SIZE + slot * trksize
        if data[start + 21 : start + 29] == b"\xff" * 8 and data[start + 13] == 0:
            continue  # an empty track: HA, R0, end of track
        f, p = track_fields(data, start, start + trksize, f"track {divmod(slot, heads)}")
        fields += f
        pointers += p
    return Seed(name, data, fields, pointers)


def cckd_seed(name: str, data: bytes) -> Seed:
    """A CCKD or CCKD64 image: headers, L1 and L2 entries, free space, track headers,
    and the insides of tracks stored uncompressed."""
    from emulator.layouts import ckd as K

    cckd64 = data[:8] in (b"CKD_C064", b"CKD_S064")
    fields = struct_fields(K.DeviceHeader, 0, "<", "devhdr")
    cdh = K.cdh_layout(cckd64, False)
    fields += struct_fields(cdh, K.DEVHDR_SIZE, "<", "cdh")
    head = cdh.parse(data[K.DEVHDR_SIZE : K.DEVHDR_SIZE + K.CDH_SIZE])
    l1w = K.l1_entry_size(cckd64)
    l2 = K.l2_layout(cckd64, False)
    pointers: list[bytes] = []
    for i in range(head.num_L1tab):
        pos = K.L1_POS + i * l1w
        fields.append(Field(pos, l1w, "<", f"L1[{i}]"))
        l2pos = int.from_bytes(data[pos : pos + l1w], "little")
        if l2pos in (0, (1 << (8 * l1w)) - 1) or l2pos + 256 * l2.sizeof() > len(data):
            continue
        for j in range(K.L2_ENTRIES):
            epos = l2pos + j * l2.sizeof()
            entry = l2.parse(data[epos : epos + l2.sizeof()])
            if entry.trkoff == 0 and entry.len == 0:
                continue
            fields += struct_fields(l2, epos, "<", f"L2[{i}][{j}]")
            off, length = entry.trkoff, entry.len
            if off + 5 > len(data) or length < 5:
                continue
            trk = f"track {i * 256 + j}"
            fields += struct_fields(K.CompressedTrackHeader, off, ">", f"{trk} header")
            if data[off] == K.COMPRESS_NONE:
                f, p = track_fields(data, off, off + length, trk)
                fields += f
                pointers += p
    if head.free_off and head.free_off + 16 <= len(data):
        fields.append(Field(head.free_off, 8 if cckd64 else 4, "<", "free[0].off"))
        fields.append(
            Field(head.free_off + (8 if cckd64 else 4), 8 if cckd64 else 4, "<", "free[0].len")
        )
    return Seed(name, data, fields, pointers)


def xmit_seed(name: str, data: bytes) -> Seed:
    """Segment headers, and in control records every text unit's key, count and lengths."""
    from emulator.layouts import xmit as X

    fields: list[Field] = []
    pos = 0
    record: list[tuple[int, int]] = []  # (file offset, length) of the pieces of a record
    while pos + 2 <= len(data):
        seglen, flags = data[pos], data[pos + 1]
        fields += [Field(pos, 1, ">", "segment.length"), Field(pos + 1, 1, ">", "segment.flags")]
        if seglen < 2:
            break
        if flags & X.SEG_FIRST:
            record = []
        record.append((pos + 2, seglen - 2))
        if flags & X.SEG_LAST and flags & X.SEG_CONTROL:
            fields += _text_unit_fields(data, record)
        pos += seglen
    return Seed(name, data, fields)


def _text_unit_fields(data: bytes, pieces: list[tuple[int, int]]) -> list[Field]:
    """Text-unit fields of one control record (its bytes may span segments)."""
    where = [o + k for o, n in pieces for k in range(n)]  # record offset -> file offset
    rec = bytes(data[i] for i in where)
    out: list[Field] = []

    def add(rpos: int, width: int, label: str) -> None:
        if rpos + width <= len(where) and where[rpos + width - 1] == where[rpos] + width - 1:
            out.append(Field(where[rpos], width, ">", label))

    pos = 10 if rec[:6] == b"\xc9\xd5\xd4\xd9\xf0\xf2" else 6  # INMR02 has a file number
    while pos + 4 <= len(rec):
        key = int.from_bytes(rec[pos : pos + 2], "big")
        count = int.from_bytes(rec[pos + 2 : pos + 4], "big")
        add(pos, 2, f"tu {key:04X}.key")
        add(pos + 2, 2, f"tu {key:04X}.count")
        pos += 4
        for _ in range(min(count, 64)):
            if pos + 2 > len(rec):
                break
            add(pos, 2, f"tu {key:04X}.length")
            pos += 2 + int.from_bytes(rec[pos : pos + 2], "big")
    return out


def unload_seed(name: str, data: bytes, descriptors: bool) -> Seed:
    """BDW/SDW lengths (VS form), COPYR1 fields, and every record's first 12 bytes (the
    block prefix: extent, CCHHR, key length, data length)."""
    from emulator.layouts import iebcopy as I

    fields: list[Field] = []
    records: list[int] = []
    if descriptors:
        pos = 0
        while pos + 4 <= len(data):
            blen = int.from_bytes(data[pos : pos + 2], "big")
            fields.append(Field(pos, 2, ">", "BDW"))
            spos = pos + 4
            while spos + 4 <= min(pos + blen, len(data)):
                fields += [Field(spos, 2, ">", "SDW.length"), Field(spos + 2, 1, ">", "SDW.flags")]
                if data[spos + 2] & 0x02 == 0:  # first or only segment: a record starts
                    records.append(spos + 4)
                slen = int.from_bytes(data[spos : spos + 2], "big")
                if slen < 4:
                    break
                spos += slen
            if blen < 4:
                break
            pos += blen
    else:
        records = [0, I.COPYR1_SIZE, I.COPYR1_SIZE + I.COPYR2_SIZE]
    if records:
        fields += struct_fields(I.Copyr1, records[0], ">", "COPYR1")
    for rpos in records[2:]:
        fields += struct_fields(I.BlockPrefix, rpos, ">", "prefix")
    return Seed(name, data, fields)


def tape_seed(name: str, data: bytes) -> Seed:
    """Chunk headers and the numeric fields of 80-byte labels."""
    from emulator.layouts import tape as L

    fields: list[Field] = []
    pos = 0
    while pos + 6 <= len(data):
        fields += struct_fields(L.ChunkHeader, pos, "<", "chunk")
        clen = int.from_bytes(data[pos : pos + 2], "little")
        if clen == 80 and data[pos + 4] & L.FLAGS1_COMPRESS == 0:
            layout = {b"\xe5\xd6\xd3": L.Vol1}.get(data[pos + 6 : pos + 9], L.Ds1)
            if data[pos + 9] == 0xF2:  # HDR2/EOF2
                layout = L.Ds2
            fields += struct_fields(layout, pos + 6, "c", "label")
        pos += 6 + clen
    return Seed(name, data, fields)


# -- resealable files: fingerprint files and baskets -------------------------------------
def fp_sections(data: bytes) -> list[tuple[str, bytes]]:
    """(name, decoded payload) of every section of a fingerprint file."""
    from ssm import fpfile

    out = []
    pos = fpfile.HEADER.size
    for _ in range(fpfile.HEADER.unpack_from(data, 0)[3]):
        raw_name, codec, _r, raw_len, stored_len, _d = fpfile.SECTION.unpack_from(data, pos)
        stored = data[pos + fpfile.SECTION.size : pos + fpfile.SECTION.size + stored_len]
        out.append((raw_name.rstrip(b"\0").decode(), zlib.decompress(stored) if codec else stored))
        pos += fpfile.SECTION.size + stored_len
    return out


def fp_seal(sections: list[tuple[str, bytes]]) -> bytes:
    """A fingerprint file holding ``sections``, every digest right."""
    import blake3

    from ssm import fpfile
    from ssm import model as m

    body = fpfile.HEADER.pack(fpfile.MAGIC, m.FORMAT_VERSION, 0, len(sections), bytes(16))
    for name, payload in sections:
        packed = zlib.compress(payload, 6)
        codec, stored = (1, packed) if len(packed) < len(payload) else (0, payload)
        digest = blake3.blake3(stored).digest()
        body += fpfile.SECTION.pack(
            name.encode(), codec, bytes(7), len(payload), len(stored), digest
        )
        body += stored
    size = len(body) + fpfile.TRAILER.size
    return body + fpfile.TRAILER.pack(fpfile.END_MAGIC, size, blake3.blake3(body).digest())


def basket_sections(data: bytes) -> list[tuple[str, bytes]]:
    """("header", json), ("manifest", json), then ("frame <codec>", payload) for each
    payload of a basket."""
    from ssm.basket import fmt

    out = []
    pos = fmt.HEADER.size
    for _ in fmt.SECTIONS:
        raw_name, codec, _r, raw_len, stored_len, _d = fmt.SECTION.unpack_from(data, pos)
        start = pos + fmt.SECTION.size
        name = raw_name.rstrip(b"\0").decode()
        if name == "payloads":
            fpos = start
            while fpos < start + stored_len:
                fcodec, _fr, fraw, fstored, _fd = fmt.FRAME.unpack_from(data, fpos)
                stored = data[fpos + fmt.FRAME.size : fpos + fmt.FRAME.size + fstored]
                out.append((f"frame {fcodec}", fmt._inflate(fcodec, stored, fraw, "", None)))
                fpos += fmt.FRAME.size + fstored
        else:
            stored = data[start : start + stored_len]
            out.append((name, zlib.decompress(stored) if codec else stored))
        pos = start + stored_len
    return out


def basket_seal(sections: list[tuple[str, bytes]]) -> bytes:
    """An unsigned basket holding ``sections`` (as :func:`basket_sections` gives them),
    every digest and length right."""
    import blake3

    from ssm.basket import fmt

    head = dict(sections)
    frames = b""
    heads = b""
    for name, payload in sections[2:]:
        # reseal each frame with the codec it had, so mutations reach every decoder
        policy = {"frame 0": "none", f"frame {fmt.CODEC_ZSTD}": "zstd"}.get(name, "zlib")
        codec, stored = fmt.compress_payload(payload, policy)
        fh = fmt.FRAME.pack(
            codec, bytes(7), len(payload), len(stored), blake3.blake3(stored).digest()
        )
        heads += fh
        frames += fh + stored
    manifest = zlib.compress(head["manifest"], 6)

    def section(name: str, codec: int, raw: int, stored: bytes, digest: bytes) -> bytes:
        return fmt.SECTION.pack(name.encode(), codec, bytes(7), raw, len(stored), digest) + stored

    body = fmt.HEADER.pack(fmt.MAGIC, fmt.FORMAT_VERSION, 0, 3, bytes(16))
    body += section(
        "header", 0, len(head["header"]), head["header"], blake3.blake3(head["header"]).digest()
    )
    body += section(
        "manifest", 1, len(head["manifest"]), manifest, blake3.blake3(manifest).digest()
    )
    body += section("payloads", 0, len(frames), frames, blake3.blake3(heads).digest())
    size = len(body) + fmt.TRAILER.size
    tail = fmt.TRAILER.pack(fmt.END_MAGIC, size, 0, bytes(7), bytes(32), bytes(32))
    return body + tail[:-32] + blake3.blake3(body + tail[:-32]).digest()


# -- mutation ------------------------------------------------------------------------------
INTERESTING = (
    0,
    1,
    2,
    3,
    4,
    5,
    7,
    8,
    0x10,
    0x3F,
    0x40,
    0x7F,
    0x80,
    0xFF,
    0x100,
    0x7FFF,
    0x8000,
    0xFFFF,
)


class Mutation(NamedTuple):
    """One change: replace ``data[start:stop]`` by ``new`` (the description says why)."""

    start: int
    stop: int
    new: bytes
    text: str


def _value_bytes(value: int, width: int, order: str) -> bytes:
    value &= (1 << (8 * width)) - 1
    return value.to_bytes(width, "little" if order == "<" else "big")


def field_mutation(rng: random.Random, seed: Seed, data: bytes) -> Mutation:
    f = rng.choice(seed.fields)
    if f.offset + f.width > len(data):
        return Mutation(0, 0, b"", "field past the end: no change")
    old = data[f.offset : f.offset + f.width]
    if f.pointer and seed.pointers and rng.random() < 0.6:
        new = rng.choice(seed.pointers)  # a chain into itself or another DSCB: cycles
        why = "pointer to a DSCB"
    elif f.order == "c":
        k = rng.randrange(f.width)
        new = (
            old[:k]
            + bytes([rng.choice((0x40, 0xF0, 0xF9, 0x00, 0xFF, rng.randrange(256)))])
            + old[k + 1 :]
        )
        why = "character"
    else:
        cur = int.from_bytes(old, "little" if f.order == "<" else "big")
        top = (1 << (8 * f.width)) - 1
        choice = rng.randrange(8)
        others = {
            3: lambda: top - rng.randrange(3),
            4: lambda: cur + rng.choice((-2, -1, 1, 2)),
            5: lambda: cur * 2 + rng.randrange(2),
            6: lambda: cur ^ (1 << rng.randrange(8 * f.width)),
            7: lambda: rng.getrandbits(8 * f.width),
        }
        value = rng.choice(INTERESTING) if choice < 3 else others[choice]()
        new = _value_bytes(value, f.width, f.order)
        why = f"{int.from_bytes(old, 'little' if f.order == '<' else 'big')} -> {value & top}"
    return Mutation(f.offset, f.offset + f.width, new, f"{f.label} at {f.offset}: {why}")


def _near_field(rng: random.Random, seed: Seed, size: int) -> int:
    if seed.fields and rng.random() < 0.7:
        f = rng.choice(seed.fields)
        return min(size - 1, max(0, f.offset + rng.randrange(-4, f.width + 4)))
    return rng.randrange(size)


def byte_mutation(rng: random.Random, seed: Seed, data: bytes) -> Mutation:
    size = len(data)
    if size == 0:
        return Mutation(0, 0, bytes([rng.randrange(256)]), "one byte into an empty input")
    kind = rng.randrange(7)
    pos = _near_field(rng, seed, size)
    if kind == 0:
        bit = 1 << rng.randrange(8)
        return Mutation(pos, pos + 1, bytes([data[pos] ^ bit]), f"bit {bit:#04x} flipped at {pos}")
    if kind == 1:
        n = min(rng.choice((1, 2, 4, 8, 16)), size - pos)
        return Mutation(pos, pos + n, rng.randbytes(n), f"{n} random bytes at {pos}")
    if kind == 2:
        cut = pos if rng.random() < 0.7 else rng.randrange(size)
        return Mutation(cut, size, b"", f"truncated at {cut}")
    if kind == 3:
        extra = rng.choice((1, 7, 64, 512, 4096))
        tail = rng.randbytes(extra) if rng.random() < 0.5 else bytes(extra)
        return Mutation(size, size, tail, f"{extra} bytes appended")
    if kind == 4:
        n = rng.choice((1, 2, 4, 80, 256))
        return Mutation(pos, pos, rng.randbytes(n), f"{n} bytes inserted at {pos}")
    if kind == 5:
        n = min(rng.choice((1, 2, 4, 80, 256)), size - pos)
        return Mutation(pos, pos + n, b"", f"{n} bytes deleted at {pos}")
    src = rng.randrange(size)
    n = min(rng.choice((2, 8, 44, 140, 256)), size - src, size - pos)
    return Mutation(pos, pos + n, data[src : src + n], f"{n} bytes copied from {src} to {pos}")


def apply_mutations(data: bytes, muts: list[Mutation]) -> bytes:
    out = bytearray(data)
    for mu in muts:
        start, stop = min(mu.start, len(out)), min(mu.stop, len(out))
        out[start:stop] = mu.new
    return bytes(out)


_NUMBER = re.compile(rb"-?\d+")
_JSON_VALUES = (
    b"-1",
    b"0",
    b"1",
    b"65536",
    b"2147483648",
    b"4294967296",
    b"1000000000000",
    b"18446744073709551616",
    b"null",
    b'"x"',
    b"[]",
    b"{}",
    b"1e308",
    b"1e999",
    b"1.5",
    b"true",
)


def section_mutation(
    rng: random.Random, sections: list[tuple[str, bytes]]
) -> tuple[int, bytes, str]:
    """A change to one decoded section: a JSON number or value, or bytes of a table."""
    index = rng.randrange(len(sections))
    name, payload = sections[index]
    numbers = list(_NUMBER.finditer(payload)) if payload[:1] in (b"{", b"[") else []
    if numbers and rng.random() < 0.7:
        mt = rng.choice(numbers)
        new = rng.choice(_JSON_VALUES)
        text = f"section {name}: {mt.group().decode()} at {mt.start()} -> {new.decode()}"
        return index, payload[: mt.start()] + new + payload[mt.end() :], text
    seed = Seed(
        name,
        payload,
        [Field(p, 4, rng.choice("<>"), "u32") for p in range(0, max(1, len(payload) - 3), 4)],
    )
    muts = [
        field_mutation(rng, seed, payload)
        if rng.random() < 0.5
        else byte_mutation(rng, seed, payload)
    ]
    return index, apply_mutations(payload, muts), f"section {name}: {muts[0].text}"


# -- targets -------------------------------------------------------------------------------
@dataclasses.dataclass
class Context:
    """What the consumers need besides the input: files made once per worker."""

    workdir: Path
    target_volume: bytes  # an empty volume to receive and load into
    basket_target: bytes  # the volume a basket applies to
    fingerprint: bytes  # the fingerprint file the fpfile seed was made from


class Target(NamedTuple):
    name: str
    suffix: str
    consume: Callable[[Path, Context], None]
    resealable: bool = False


def _read_volume(path: Path) -> None:
    from emulator import api

    vol = api.open_volume(path)
    try:
        for info in vol.datasets():
            if info.dsorg_raw & 0x0200:
                for member in api.list_members(vol, info.dsname):
                    api.read_records(vol, f"{info.dsname}({member['name']})")
            elif info.dsorg_raw & 0x4000:
                api.read_records(vol, info.dsname)
        api.check(vol)
    finally:
        vol.close()


def consume_volume(path: Path, ctx: Context) -> None:
    """Open, list, read every data set and member, check, fingerprint; then on a copy
    add a member and a data set in one transaction (refused: the copy unchanged)."""
    from emulator import api
    from ssm.fingerprint import fingerprint

    _read_volume(path)
    fingerprint([path], workers=1, created=NOW)

    def write(target: Path) -> None:
        with api.open_volume(target, writable=True) as vol, vol.transaction():
            api.write(vol, "FUZZ.PDS(ADDED)", [b"\xc1" * 80] * 30)
            dcb, space = api.Dcb("PS", "FB", 80, 800), ("TRK", 1, 1)
            api.write(vol, "FUZZ.ADDED", [b"\xc2" * 80] * 30, dcb=dcb, space=space)

    _into_target(path, path.read_bytes(), write, _read_volume)


def _write_old(path: Path, data: bytes) -> None:
    """Write a file dated an hour ago: a fingerprint reads a just-written image twice,
    a delay apart, to catch a writer at work (docs/formats/fingerprint.md)."""
    path.write_bytes(data)
    past = time.time() - 3600
    os.utime(path, (past, past))


class Written(Exception):
    """A failed receive, load or import changed its target image."""


def _into_target(path: Path, image: bytes, write: Callable[[Path], None], read=None) -> None:
    """Run ``write`` on a fresh copy of ``image``: if it fails the copy must be as it
    was.  ``read`` then reads what was written."""
    target = path.with_suffix(".target")
    _write_old(target, image)
    try:
        try:
            write(target)
        except EmulatorError:
            if target.read_bytes() != image:
                raise Written(
                    f"the target image changed although {path.suffix} was refused"
                ) from None
            raise
        if read is not None:
            read(target)
    finally:
        for junk in (target, Path(f"{target}.journal")):
            junk.unlink(missing_ok=True)


def consume_xmit(path: Path, ctx: Context) -> None:
    """`dasd receive` into an empty volume, then read what was received."""
    from emulator import api
    from emulator.interchange import xmit

    xmit.read_xmit(path)

    def receive(target: Path) -> None:
        with api.open_volume(target, writable=True) as vol:
            xmit.receive(path, vol, on_message=lambda lines: None)

    _into_target(path, ctx.target_volume, receive, _read_volume)


def consume_unload(path: Path, ctx: Context) -> None:
    """Read an unload (every member's blocks), then load it into a new PDS."""
    from emulator import api
    from emulator.interchange import unload as ul

    unload = ul.parse_unload_bytes(path.read_bytes(), str(path))
    for entry in unload.members:
        unload.blocks(entry)

    def load(target: Path) -> None:
        with api.open_volume(target, writable=True) as vol:
            ul.load_unload(vol, "FUZZ.LOADED", unload)

    _into_target(path, ctx.target_volume, load, _read_volume)


def consume_tape(path: Path, ctx: Context) -> None:
    """List a tape, read every file in every form, parse the unloads and XMITs on it."""
    from emulator.interchange import tape as T
    from emulator.interchange import unload as ul
    from emulator.interchange import xmit

    tape = T.read_tape(path)
    T.tape_summary(tape)
    for tf in tape.files:
        for form in T.FORMS:
            try:
                data, _ = T.file_bytes(tf, form, str(path))
            except EmulatorError:
                continue
            if form == "auto" and tf.kind == "unload":
                ul.parse_unload_bytes(data, str(path))
            elif form == "auto" and tf.kind == "xmit":
                xmit.read_xmit(data, where=f"file {tf.number}")


def consume_fpfile(path: Path, ctx: Context) -> None:
    """`ssm show` and `ssm compare` both ways against the original."""
    from ssm import fpfile
    from ssm.compare import compare, format_report

    fp = fpfile.read(path)
    fp.to_json(members=True)
    original = fpfile.loads(ctx.fingerprint)
    format_report(compare(original, fp))
    format_report(compare(fp, original))


def consume_basket(path: Path, ctx: Context) -> None:
    """`ssm verify`, `ssm show --json`, `ssm import --dry-run`, then `ssm import` on a
    copy of the target (a failed import must leave it as it was)."""
    from ssm.apply import import_basket
    from ssm.basket import fmt

    with fmt.verify_basket(path) as basket:
        json.dumps(basket.to_json(), default=str)

    def dry(target: Path) -> None:
        import_basket(path, [target], dry_run=True)
        if target.read_bytes() != ctx.basket_target:
            raise Written("import --dry-run changed the target")

    _into_target(path, ctx.basket_target, dry)
    _into_target(path, ctx.basket_target, lambda t: import_basket(path, [t]))


TARGETS = {
    t.name: t
    for t in (
        Target("ckd", ".ckd", consume_volume),
        Target("cckd", ".cckd", consume_volume),
        Target("cckd-raw", ".cckd", consume_volume),
        Target("cckd64", ".cckd64", consume_volume),
        Target("xmit", ".xmi", consume_xmit),
        Target("unload", ".unload", consume_unload),
        Target("tape", ".het", consume_tape),
        Target("fpfile", ".ssmfp", consume_fpfile, resealable=True),
        Target("basket", ".basket", consume_basket, resealable=True),
    )
}


# -- seeds -----------------------------------------------------------------------------
def _fill_volume(vol) -> None:
    """Data sets that reach every reader: a PDS with members and an alias, a PS with
    five extents (an F3 DSCB), VB and U data sets."""
    from emulator import api, codepage
    from emulator.pds.pds import Pds

    with vol.transaction():
        vol.allocate(
            "FUZZ.PDS",
            dsorg="PO",
            recfm="FB",
            lrecl=80,
            blksize=800,
            space=("TRK", 2, 1),
            dirblks=3,
        )
        for i in range(5):
            lines = [
                codepage.encode(f"LINE {j} OF MEMBER {i}".ljust(80)) for j in range(20 * i + 1)
            ]
            api.write(vol, f"FUZZ.PDS(MEM{i})", lines)
        Pds(vol, "FUZZ.PDS").alias("ALIAS1", "MEM2")
        vol.allocate(
            "FUZZ.SEQ", dsorg="PS", recfm="FB", lrecl=80, blksize=3200, space=("TRK", 1, 1)
        )
        for _ in range(4):
            vol.extend("FUZZ.SEQ", 1)
        api.write(vol, "FUZZ.SEQ", [codepage.encode(f"REC {j}".ljust(80)) for j in range(200)])
        vol.allocate(
            "FUZZ.VB", dsorg="PS", recfm="VB", lrecl=255, blksize=1000, space=("TRK", 1, 1)
        )
        api.write(vol, "FUZZ.VB", [b"\xc1" * (j % 200 + 1) for j in range(40)])
        vol.allocate("FUZZ.U", dsorg="PS", recfm="U", lrecl=0, blksize=6000, space=("TRK", 1, 0))
        api.write(vol, "FUZZ.U", [bytes(range(256)) * (j % 20 + 1) for j in range(5)])


def _volume(path: Path, fill: bool = True, **kw) -> bytes:
    from emulator.volume.volume import Volume

    vol = Volume.create(path, "3390", "FUZZ01", **kw)
    try:
        if fill:
            _fill_volume(vol)
    finally:
        vol.close()
    return path.read_bytes()


def _label(layout, **values: str) -> bytes:
    from emulator import codepage

    return layout.build(
        {s.name: codepage.blank_pad(values.get(s.name, ""), s.sizeof()) for s in layout.subcons}
    )


def _labelled_tape(
    files: list[tuple[str, str, int, int, str, list[bytes]]], compress: str | None
) -> bytes:
    """A standard-label tape: files of (dsname, RECFM letter, BLKSIZE, LRECL, block
    attribute, blocks), written by the project's tape writer."""
    from emulator.interchange import tape as T
    from emulator.layouts import tape as L

    items: list[bytes | None] = [_label(L.Vol1, labid="VOL1", volser="FUZZ01", owner="FUZZ")]
    for seq, (dsn, recfm, blksize, lrecl, attr, blocks) in enumerate(files, 1):
        for kind in ("HDR", "EOF"):
            count = f"{len(blocks) if kind == 'EOF' else 0:06d}"
            items.append(
                _label(
                    L.Ds1,
                    labid=f"{kind}1",
                    dsid=dsn[-17:],
                    volser="FUZZ01",
                    volseq="0001",
                    dsseq=f"{seq:04d}",
                    crtdt="026002",
                    expdt=" 99365",
                    dssec="0",
                    blklo=count,
                    syscd="IBM OS/VS 370",
                )
            )
            items.append(
                _label(
                    L.Ds2,
                    labid=f"{kind}2",
                    recfm=recfm,
                    blksize=f"{blksize:05d}",
                    lrecl=f"{lrecl:05d}",
                    den="4",
                    dspos="0",
                    jobid="FUZZJOB /STEP1",
                    blkattr=attr,
                )
            )
            items.append(None)
            if kind == "HDR":
                items += list(blocks) + [None]
    return T.build_tape(items + [None], compress=compress, chunksize=700)


def build_seeds(workdir: Path) -> tuple[dict[str, list[Seed]], Context]:
    """Every target's seed inputs and the consumers' context, made by the project."""
    from emulator import api, codepage
    from emulator.dataset import records as rf
    from emulator.interchange import unload as ul
    from emulator.interchange import xmit
    from ssm import fpfile
    from ssm.export import export
    from ssm.fingerprint import fingerprint

    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    seeds: dict[str, list[Seed]] = {}
    plain = _volume(workdir / "plain.ckd", cyls=1)
    seeds["ckd"] = [ckd_seed("plain 3390 1 cylinder", plain)]
    seeds["cckd"] = [
        cckd_seed("CCKD zlib", _volume(workdir / "z.cckd", cyls=1, compress="zlib")),
        cckd_seed("CCKD bzip2", _volume(workdir / "b.cckd", cyls=1, compress="bzip2")),
    ]
    seeds["cckd-raw"] = [
        cckd_seed("CCKD uncompressed", _volume(workdir / "n.cckd", cyls=1, compress="none")),
        cckd_seed(
            "CCKD uncompressed 4400 cylinders (F7 DSCBs)",
            _volume(workdir / "f7.cckd", cyls=4400, compress="none"),
        ),
    ]
    seeds["cckd64"] = [
        cckd_seed(
            "CCKD64 zlib", _volume(workdir / "z.cckd64", cyls=1, compress="zlib", cckd64=True)
        ),
        cckd_seed(
            "CCKD64 uncompressed",
            _volume(workdir / "n.cckd64", cyls=1, compress="none", cckd64=True),
        ),
    ]

    source = workdir / "z.cckd"
    with api.open_volume(source) as vol:
        xmit.transmit(vol, "FUZZ.PDS", workdir / "pds.xmi", now=NOW, message=["HELLO", "FROM FUZZ"])
        xmit.transmit(vol, "FUZZ.SEQ", workdir / "seq.xmi", now=NOW)
        xmit.transmit(vol, "FUZZ.VB", workdir / "vb.xmi", now=NOW)
        records = ul.write_unload(vol, "FUZZ.PDS")
        seq = api.read_records(vol, "FUZZ.SEQ")
    seeds["xmit"] = [
        xmit_seed(n, (workdir / n).read_bytes()) for n in ("pds.xmi", "seq.xmi", "vb.xmi")
    ]
    ul.write_records_file(workdir / "vs.unload", records, descriptors=True)
    ul.write_records_file(workdir / "raw.unload", records, descriptors=False)
    seeds["unload"] = [
        unload_seed("unload VS (BDW/SDW)", (workdir / "vs.unload").read_bytes(), True),
        unload_seed("unload records", (workdir / "raw.unload").read_bytes(), False),
    ]

    lrecl = ul.unload_lrecl(records)
    unload_blocks = rf.block(ul.UNLOAD_RECFM, lrecl, lrecl + 4, records)
    fb_blocks = rf.block(rf.recfm_value("FB"), 80, 800, seq)
    xmi = (workdir / "seq.xmi").read_bytes()
    xmi += bytes(-len(xmi) % 80)  # whole 80-byte records, as an XMIT data set holds it
    xmi_blocks = [xmi[i : i + 3120] for i in range(0, len(xmi), 3120)]
    files = [
        ("FUZZ.PDS.UNLOAD", "V", lrecl + 4, lrecl, "S", unload_blocks),
        ("FUZZ.SEQ", "F", 800, 80, "B", fb_blocks),
        ("FUZZ.XMIT", "F", 3120, 80, "B", xmi_blocks),
    ]
    seeds["tape"] = [
        tape_seed(f"SL tape {c or 'AWS'}", _labelled_tape(files, c))
        for c in (None, "zlib", "bzip2")
    ]

    fp = fingerprint([source], workers=1, created=NOW)
    fp_bytes = fpfile.dumps(fp)
    seeds["fpfile"] = [
        Seed("fingerprint of the zlib volume", fp_bytes, [], sections=fp_sections(fp_bytes))
    ]

    base_image = workdir / "basket-target.cckd"
    shutil.copy(source, base_image)
    fpfile.write(fingerprint([base_image], workers=1, created=NOW), workdir / "base.ssmfp")
    changed = workdir / "basket-new.cckd"
    shutil.copy(source, changed)
    with api.open_volume(changed, writable=True) as vol:
        api.write(vol, "FUZZ.PDS(MEM1)", [codepage.encode("CHANGED".ljust(80))] * 7)
        api.write(vol, "FUZZ.PDS(NEWMEM)", [codepage.encode("NEW".ljust(80))] * 3)
        api.remove(vol, "FUZZ.PDS(MEM3)")
        api.write(vol, "FUZZ.SEQ", seq + [codepage.encode("APPENDED".ljust(80))] * 5)
        api.remove(vol, "FUZZ.U")
        api.write(
            vol,
            "FUZZ.NEW",
            [b"\xc2" * 80] * 4,
            dcb=api.Dcb("PS", "FB", 80, 800),
            space=("TRK", 1, 1),
        )
    basket = workdir / "seed.basket"
    export(basket, base=workdir / "base.ssmfp", images=[changed], now=NOW)
    data = basket.read_bytes()
    seeds["basket"] = [Seed("basket of six changes", data, [], sections=basket_sections(data))]

    ctx = Context(
        workdir=workdir,
        target_volume=_volume(workdir / "empty.cckd", fill=False, cyls=3, compress="zlib"),
        basket_target=base_image.read_bytes(),
        fingerprint=fp_bytes,
    )
    return seeds, ctx


# -- one execution -------------------------------------------------------------------------
class Hang(BaseException):
    """Raised by the alarm inside an execution that ran past its time."""


class Input(NamedTuple):
    seed: Seed
    muts: list[Mutation]
    resealed: list[tuple[int, bytes, str]]  # section changes (resealable files)

    def data(self) -> bytes:
        return make_bytes(self.seed, self.muts, self.resealed)

    def describe(self) -> list[str]:
        return (
            [f"seed: {self.seed.name}"]
            + [t for _, _, t in self.resealed]
            + [m.text for m in self.muts]
        )


def make_bytes(seed: Seed, muts: list[Mutation], resealed: list[tuple[int, bytes, str]]) -> bytes:
    data = seed.data
    if resealed:
        sections = list(seed.sections or [])
        for index, payload, _ in resealed:
            sections[index] = (sections[index][0], payload)
        data = (fp_seal if seed.name.startswith("fingerprint") else basket_seal)(sections)
    return apply_mutations(data, muts)


def make_input(seeds: list[Seed], target: Target, run_seed: int, index: int) -> Input:
    """Execution ``index``'s input: chosen and mutated from ``(run_seed, target, index)``."""
    rng = random.Random(f"{run_seed}:{target.name}:{index}")
    seed = rng.choice(seeds)
    resealed: list[tuple[int, bytes, str]] = []
    muts: list[Mutation] = []
    if target.resealable and rng.random() < 0.7:
        sections = list(seed.sections or [])
        for _ in range(rng.choice((1, 1, 2))):
            i, payload, text = section_mutation(rng, sections)
            sections[i] = (sections[i][0], payload)
            resealed.append((i, payload, text))
        return Input(seed, muts, resealed)
    data = seed.data
    for _ in range(rng.choice((1, 1, 1, 2, 2, 3, 4, 8))):
        mu = (
            field_mutation(rng, seed, data)
            if seed.fields and rng.random() < 0.6
            else byte_mutation(rng, seed, data)
        )
        muts.append(mu)
        data = apply_mutations(data, [mu])
    return Input(seed, muts, resealed)


def _signature(exc: BaseException) -> str:
    """Exception type and the innermost frame in the project's code."""
    frames = traceback.extract_tb(exc.__traceback__)
    place = "?"
    for fr in reversed(frames):
        rel = os.path.relpath(fr.filename, REPO)
        if rel.split(os.sep)[0] in PROJECT_DIRS:
            place = f"{rel}:{fr.name}"
            break
    return f"{type(exc).__name__} at {place}"


def run_one(
    target: Target, data: bytes, ctx: Context, timeout: float = TIMEOUT, trace: bool = False
) -> tuple[str, str, str]:
    """(outcome, signature, detail) of one execution on ``data``.  ``trace``: measure
    the peak of Python and NumPy allocations instead of the resident size (slower; for
    a process without the workers' address-space limit, where a large zero-filled
    allocation would pass)."""
    folder = Path(tempfile.mkdtemp(prefix="x-", dir=ctx.workdir))
    path = folder / f"input{target.suffix}"
    _write_old(path, data)
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss << 10
    if trace:
        tracemalloc.start()
    signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        target.consume(path, ctx)
        outcome, sig, detail = "ok", "", ""
    except EmulatorError as exc:
        # an error that names no file is allowed, but reported: messages should say where
        unlocated = "unlocated " if exc.path is None else ""
        outcome, sig, detail = "error", unlocated + _signature(exc), str(exc)
    except Hang as exc:
        outcome, sig, detail = (
            "hang",
            _signature(exc).replace("Hang", "hang"),
            traceback.format_exc(),
        )
    except MemoryError as exc:
        outcome, sig, detail = "oversize", _signature(exc), traceback.format_exc()
    except Written as exc:
        outcome, sig, detail = "written", _signature(exc), str(exc)
    except Exception as exc:  # noqa: BLE001 - every other exception is the finding
        outcome, sig, detail = "crash", _signature(exc), traceback.format_exc()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        peak = tracemalloc.get_traced_memory()[1] if trace else 0
        tracemalloc.stop()
        shutil.rmtree(folder, ignore_errors=True)
    if outcome in ("ok", "error") and peak > RSS_LIMIT:
        return "oversize", f"allocated {peak >> 20} MiB", detail
    # Without ``trace`` the process's peak resident size stands in (a worker runs
    # nothing else; in a shared process a first use of other code moves it too).
    grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss << 10) - rss0
    if outcome in ("ok", "error") and not trace and grown > RSS_LIMIT:
        outcome, sig, detail = "oversize", f"resident memory grew {grown >> 20} MiB", detail
    return outcome, sig, detail


def minimise(target: Target, inp: Input, ctx: Context, outcome: str, sig: str) -> Input:
    """Drop mutations one at a time while the same outcome and signature remain."""
    for attr in ("muts", "resealed"):
        k = 0
        while k < len(getattr(inp, attr)) and len(inp.muts) + len(inp.resealed) > 1:
            fewer = inp._replace(**{attr: getattr(inp, attr)[:k] + getattr(inp, attr)[k + 1 :]})
            if run_one(target, fewer.data(), ctx)[:2] == (outcome, sig):
                inp = fewer
            else:
                k += 1
    return inp


# -- workers -------------------------------------------------------------------------------
def _on_alarm(signum, frame) -> None:
    raise Hang("execution ran past its time")


def _worker_setup(workdir: Path) -> tuple[dict[str, list[Seed]], Context]:
    signal.signal(signal.SIGALRM, _on_alarm)
    seeds, ctx = build_seeds(workdir)
    for name, target in TARGETS.items():  # compile and warm every path before the limit
        run_one(target, seeds[name][0].data, ctx)
    with open("/proc/self/statm") as fh:
        vm = int(fh.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    resource.setrlimit(resource.RLIMIT_AS, (vm + ADDRESS_HEADROOM, resource.RLIM_INFINITY))
    return seeds, ctx


def worker_main(wid: int, jobs, results, current, workdir: str) -> None:
    """Run executions handed out as (target, run seed, first, stop, step)."""
    seeds, ctx = _worker_setup(Path(workdir))
    results.put(("ready", wid))
    seen: set[tuple[str, str, str]] = set()
    while True:
        job = jobs.get()
        if job is None:
            return
        name, run_seed, first, stop, step = job
        target = TARGETS[name]
        counts: Counter = Counter()
        for index in range(first, stop, step):
            current[wid * 2] = index
            current[wid * 2 + 1] = time.time()
            inp = make_input(seeds[name], target, run_seed, index)
            outcome, sig, detail = run_one(target, inp.data(), ctx)
            counts[outcome] += 1
            if outcome in BAD and (name, outcome, sig) not in seen:
                seen.add((name, outcome, sig))
                current[wid * 2 + 1] = 0.0  # minimising: runs of its own, each under the alarm
                small = minimise(target, inp, ctx, outcome, sig)
                results.put(
                    (
                        "found",
                        name,
                        index,
                        outcome,
                        sig,
                        detail,
                        small.describe(),
                        small.data(),
                        context_of(name, ctx),
                    )
                )
            if outcome == "error" and sig.startswith("unlocated") and (name, sig) not in seen:
                seen.add((name, sig))
                results.put(("unlocated", name, sig, detail))
        current[wid * 2 + 1] = 0.0
        results.put(("done", wid, name, dict(counts)))


@dataclasses.dataclass
class Finding:
    target: str
    outcome: str
    signature: str
    index: int
    detail: str
    steps: list[str]
    data: bytes
    context: bytes | None = None  # see CONTEXT_FIELDS


#: Targets whose consumer reads more than the input: the context that goes with a
#: saved input (a basket's before digests name the target it was made for).
CONTEXT_FIELDS = {"basket": "basket_target", "fpfile": "fingerprint"}


def context_of(name: str, ctx: Context) -> bytes | None:
    field = CONTEXT_FIELDS.get(name)
    return getattr(ctx, field) if field else None


def context_for(name: str, path: Path, ctx: Context) -> Context:
    """``ctx`` with the context saved beside the input ``path``, when there is one."""
    saved = path.with_name(path.name.split(".")[0] + ".context.gz")
    if name not in CONTEXT_FIELDS or not saved.is_file():
        return ctx
    return dataclasses.replace(ctx, **{CONTEXT_FIELDS[name]: gzip.decompress(saved.read_bytes())})


def save_finding(root: Path, f: Finding) -> Path:
    """``root/<target>/<hash>.bin`` (gzip for inputs over 64 KiB) and a ``.txt``."""
    folder = root / f.target
    folder.mkdir(parents=True, exist_ok=True)
    key = hashlib.sha256(f"{f.target}|{f.outcome}|{f.signature}".encode()).hexdigest()[:16]
    data = gzip.compress(f.data, mtime=0) if len(f.data) > 65536 else f.data
    path = folder / (key + (".bin.gz" if len(f.data) > 65536 else ".bin"))
    path.write_bytes(data)
    if f.context is not None:
        path.with_name(key + ".context.gz").write_bytes(gzip.compress(f.context, mtime=0))
    lines = [
        f"target: {f.target}",
        f"outcome: {f.outcome}",
        f"signature: {f.signature}",
        f"found at execution {f.index}; the input is the seed with these changes:",
        *[f"  {s}" for s in f.steps],
        "what went wrong:",
        *[f"  {line}" for line in f.detail.replace(f"{REPO}/", "").strip().splitlines()[-12:]],
    ]
    path.with_name(key + ".txt").write_text("\n".join(lines) + "\n")
    return path


def fuzz(
    targets: list[str],
    execs: int,
    run_seed: int,
    workers: int,
    save: Path | None,
    batch: int = 200,
    quiet: bool = False,
) -> dict:
    """Run ``execs`` executions of each target on ``workers`` processes; returns the
    counts per target and the findings."""
    os.environ.setdefault("MALLOC_ARENA_MAX", "2")  # fewer reserved arenas under RLIMIT_AS
    spawn = mp.get_context("spawn")
    workdir = Path(tempfile.mkdtemp(prefix="fuzz-", dir=scratch_dir()))
    results = spawn.Queue()
    current = spawn.Array("d", 2 * workers, lock=False)
    procs: list = [None] * workers
    queues: list = [None] * workers
    seeds_for_parent: dict[str, list[Seed]] | None = None
    parent_ctx: Context | None = None

    def start(wid: int) -> None:
        queues[wid] = spawn.Queue()
        current[wid * 2 + 1] = 0.0
        procs[wid] = spawn.Process(
            target=worker_main,
            args=(wid, queues[wid], results, current, str(workdir / f"w{wid}")),
            daemon=True,
        )
        procs[wid].start()

    pending = [
        (name, lo, min(lo + batch, execs)) for name in targets for lo in range(0, execs, batch)
    ]
    counts: dict[str, Counter] = {name: Counter() for name in targets}
    findings: dict[tuple[str, str, str], Finding] = {}
    busy: dict[int, tuple] = {}
    unlocated: dict[tuple[str, str], str] = {}
    t0 = time.time()
    try:
        for wid in range(workers):
            start(wid)
        ready = 0
        while ready < workers:
            msg = results.get()
            ready += msg[0] == "ready"
        while pending or busy:
            for wid in range(workers):
                if wid not in busy and pending:
                    name, lo, hi = pending.pop(0)
                    job = (name, run_seed, lo, hi, 1)
                    busy[wid] = job
                    queues[wid].put(job)
            try:
                msg = results.get(timeout=0.5)
            except Exception:  # noqa: BLE001 - queue.Empty: time to look at the workers
                msg = None
            if msg and msg[0] == "done":
                _, wid, name, got = msg
                counts[name].update(got)
                busy.pop(wid, None)
                if not quiet:
                    done = sum(sum(c.values()) for c in counts.values())
                    print(
                        f"\r{done} executions, {done / max(time.time() - t0, 1e-9):.0f}/s, "
                        f"{len(findings)} findings",
                        end="",
                        file=sys.stderr,
                        flush=True,
                    )
            elif msg and msg[0] == "unlocated":
                unlocated.setdefault((msg[1], msg[2]), msg[3])
            elif msg and msg[0] == "found":
                _, name, index, outcome, sig, detail, steps, data, context = msg
                key = (name, outcome, sig)
                if key not in findings:
                    findings[key] = Finding(name, outcome, sig, index, detail, steps, data, context)
                    if save is not None:
                        save_finding(save, findings[key])
            for wid in range(workers):
                proc, job = procs[wid], busy.get(wid)
                started = current[wid * 2 + 1]
                dead = not proc.is_alive()
                stuck = started and time.time() - started > HARD_TIMEOUT
                if job is None or not (dead or stuck):
                    continue
                index = int(current[wid * 2])
                name = job[0]
                if stuck:
                    proc.kill()
                proc.join()
                outcome = "hang" if stuck else "crash"
                sig = (
                    "no answer (compiled loop?)" if stuck else f"worker died (exit {proc.exitcode})"
                )
                if seeds_for_parent is None:
                    seeds_for_parent, parent_ctx = build_seeds(workdir / "parent")
                inp = make_input(seeds_for_parent[name], TARGETS[name], run_seed, index)
                counts[name][outcome] += 1
                key = (name, outcome, sig)
                if key not in findings:
                    findings[key] = Finding(
                        name,
                        outcome,
                        sig,
                        index,
                        sig,
                        inp.describe(),
                        inp.data(),
                        context_of(name, parent_ctx),
                    )
                    if save is not None:
                        save_finding(save, findings[key])
                # the slice's other executions go back to the queue (their counts died
                # with the worker)
                busy.pop(wid)
                for lo, hi in ((job[2], index), (index + 1, job[3])):
                    if lo < hi:
                        pending.insert(0, (name, lo, hi))
                start(wid)
                while True:
                    msg = results.get()
                    if msg[0] == "ready":
                        break
                    if msg[0] == "done":
                        counts[msg[2]].update(msg[3])
    finally:
        for wid in range(workers):
            if procs[wid] is not None and procs[wid].is_alive():
                queues[wid].put(None)
                procs[wid].join(5)
                if procs[wid].is_alive():
                    procs[wid].kill()
        shutil.rmtree(workdir, ignore_errors=True)
    seconds = time.time() - t0
    if not quiet:
        print(file=sys.stderr)
    return {
        "counts": counts,
        "findings": list(findings.values()),
        "seconds": seconds,
        "unlocated": unlocated,
    }


def scratch_dir() -> str | None:
    """A memory file system when there is one: every execution writes its input, and
    imports fsync their journals."""
    return "/dev/shm" if os.access("/dev/shm", os.W_OK) else None


# -- replay, basket flips, reports ---------------------------------------------------------
def corpus_files(root: Path) -> Iterator[tuple[str, Path]]:
    """(target, input file) of every saved input under ``root``."""
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and p.name in TARGETS):
        for path in sorted(folder.iterdir()):
            if path.name.endswith((".bin", ".bin.gz")):
                yield folder.name, path


def corpus_bytes(path: Path) -> bytes:
    data = path.read_bytes()
    return gzip.decompress(data) if path.name.endswith(".gz") else data


def replay(root: Path, workdir: Path) -> list[tuple[str, Path, str, str, str]]:
    """Run every saved input through its target: (target, file, outcome, signature, detail)."""
    signal.signal(signal.SIGALRM, _on_alarm)
    _, ctx = build_seeds(workdir)
    return [
        (
            name,
            path,
            *run_one(TARGETS[name], corpus_bytes(path), context_for(name, path, ctx), trace=True),
        )
        for name, path in corpus_files(root)
    ]


def basket_flips(data: bytes, image: bytes, workdir: Path) -> dict:
    """Flip every byte of the basket ``data`` (made by ``ssm export``) and import each
    damaged copy into a copy of its target ``image``: every flip must be refused with
    the project's error before anything is written (the target keeps its bytes)."""
    from ssm.apply import import_basket

    path, target = workdir / "flip.basket", workdir / "flip-target.cckd"
    flipped = detected = 0
    missed: list[int] = []
    for pos in range(len(data)):
        damaged = bytearray(data)
        damaged[pos] ^= 0xFF if pos % 2 else 0x01
        path.write_bytes(bytes(damaged))
        target.write_bytes(image)
        flipped += 1
        try:
            import_basket(path, [target])
            refused = False
        except EmulatorError:
            refused = True
        Path(f"{target}.journal").unlink(missing_ok=True)
        if refused and target.read_bytes() == image:
            detected += 1
        else:
            missed.append(pos)
    return {"size": len(data), "flipped": flipped, "detected": detected, "missed": missed}


def counts_table(result: dict, markdown: bool) -> list[str]:
    rows = []
    findings = result["findings"]
    total = Counter()
    for name, c in result["counts"].items():
        total.update(c)
        rows.append(
            [
                name,
                sum(c.values()),
                *[c.get(o, 0) for o in OUTCOMES],
                len({f.signature for f in findings if f.target == name}),
            ]
        )
    rows.append(["all", sum(total.values()), *[total.get(o, 0) for o in OUTCOMES], len(findings)])
    head = ["target", "executions", *OUTCOMES, "distinct findings"]
    if markdown:
        return ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)] + [
            "| " + " | ".join(str(x) for x in row) + " |" for row in rows
        ]
    return [" ".join(f"{h:>10}" for h in head)] + [
        " ".join(f"{x!s:>10}" for x in row) for row in rows
    ]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--target", default="all", help=f"all or a comma list of {', '.join(TARGETS)}")
    p.add_argument("--execs", type=int, default=1000, help="executions per target")
    p.add_argument(
        "--seed", type=int, default=1, help="run seed (execution i is the same for the same seed)"
    )
    p.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    p.add_argument("--save", type=Path, help="save new findings here (e.g. tests/fuzz_corpus)")
    p.add_argument("--markdown", action="store_true", help="print the counts as a Markdown table")
    p.add_argument("--json", action="store_true", help="print the counts as JSON")
    p.add_argument("--replay", type=Path, metavar="DIR", help="run every saved input under DIR")
    p.add_argument(
        "--basket-flips", action="store_true", help="flip every byte of a basket and import it"
    )
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="fuzz-", dir=scratch_dir()) as tmp:
        if args.replay:
            bad = 0
            for name, path, outcome, sig, detail in replay(args.replay, Path(tmp)):
                bad += outcome in BAD
                print(f"{outcome:>8} {name:<8} {path.name}: {sig or detail}"[:200])
            return 1 if bad else 0
        if args.basket_flips:
            t0 = time.time()
            seeds, ctx = build_seeds(Path(tmp) / "seeds")
            r = basket_flips(seeds["basket"][0].data, ctx.basket_target, Path(tmp))
            print(
                f"basket of {r['size']} bytes: {r['flipped']} byte positions flipped, "
                f"{r['detected']} refused before anything was written, missed {r['missed']} "
                f"({time.time() - t0:.0f} s)"
            )
            return 0 if not r["missed"] else 1
    names = list(TARGETS) if args.target == "all" else [n.strip() for n in args.target.split(",")]
    unknown = [n for n in names if n not in TARGETS]
    if unknown:
        p.error(f"unknown target {', '.join(unknown)} (choose from {', '.join(TARGETS)})")
    result = fuzz(names, args.execs, args.seed, args.workers, args.save)
    total = sum(sum(c.values()) for c in result["counts"].values())
    print(
        f"{total} executions in {result['seconds']:.0f} s ({total / result['seconds']:.0f}/s) "
        f"on {args.workers} workers, seed {args.seed}"
    )
    if args.json:
        doc = {name: dict(c) for name, c in result["counts"].items()}
        doc["findings"] = [
            dataclasses.asdict(f) | {"data": len(f.data)} for f in result["findings"]
        ]
        print(json.dumps(doc, indent=2, sort_keys=True))
    else:
        print("\n".join(counts_table(result, args.markdown)))
    for f in result["findings"]:
        print(
            f"{f.outcome}: {f.target}: {f.signature} (execution {f.index}: {'; '.join(f.steps)})"[
                :400
            ]
        )
    for (name, sig), detail in sorted(result["unlocated"].items()):
        print(f"note: {name}: error without a file name: {sig}: {detail}"[:300])
    return 1 if result["findings"] else 0


if __name__ == "__main__":
    sys.exit(main())
