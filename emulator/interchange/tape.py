"""Emulated tapes: read AWS and HET files, their standard labels, and extract data sets.

Format: docs/tape.md (chunk headers from Hercules ``hetlib.h``, labels from ``sllib.h``;
layouts in :mod:`emulator.layouts.tape`).  IEBCOPY unloads found on tape follow
FORMATS.md 8.1-8.2; XMIT files stored on tape follow FORMATS.md 9.1.

Reading happens in two passes over the whole file, which is held in memory:

1. *Chunks to blocks*: every 6-byte chunk header is checked against the file (the
   previous-length field must repeat the previous chunk's length, lengths may not run
   past the end, BOR/EOR must pair up, compression flags must agree within a block) and
   compressed blocks are inflated with a hard limit of :data:`MAX_BLOCK` bytes, so a
   damaged or hostile file cannot make us allocate more than that per block.  The walk
   only moves forward and every chunk moves it on by at least 6 bytes, so it ends.
2. *Blocks to data sets*: tape marks cut the blocks into physical files; an IBM
   standard-label (SL) tape is VOL1 + HDR1/HDR2, data, EOF1/EOF2 and so on, an
   unlabelled (NL) tape is just runs of blocks.  Two tape marks in a row end the tape.

Public: :func:`read_tape` / :func:`parse_tape` -> :class:`Tape` (with :class:`TapeFile` items),
:func:`tape_info`, :func:`tape_ls`, :func:`tape_get` (:func:`file_bytes` says what it
writes), and :func:`build_tape` / :func:`write_tape` (AWS or HET files from blocks and
tape marks; used by the tests and for handing tapes to Hercules).
"""

from __future__ import annotations

import bz2
import datetime
import os
import tempfile
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from emulator import codepage
from emulator.errors import FormatError, NotFoundError, UnsupportedError
from emulator.layouts import parse_at
from emulator.layouts import tape as L
from emulator.recfm import recfm_value

#: What :func:`tape_get` can write: ``auto`` chooses by content (see there), ``raw``
#: writes the data blocks concatenated, as Hercules ``hetget`` does without ``-u``.
FORMS = ("auto", "raw")

KIND_UNLOAD = "iebcopy-unload"
KIND_XMIT = "xmit"
KIND_SEQUENTIAL = "sequential"
KIND_EMPTY = "empty"

# COPYR1 eye-catcher (FORMATS.md 8.2) and the first NETDATA segment (FORMATS.md 9.1).
_COPYR1_HDRID = b"\xca\x6d\x0f"
_INMR01 = codepage.encode("INMR01")
_XMIT_CONTROL_FLAGS = 0xE0  # first and last segment of a control record

# Compiled twin of the chunk header: parsed once per chunk, the one hot path here.
_CHUNK = L.ChunkHeader.compile()


# -- the objects read_tape returns --------------------------------------------------------
@dataclass
class TapeFile:
    """One data set on the tape (SL: between its HDR and EOF label groups; NL: one run).

    ``labels`` maps label ids ('HDR1', 'HDR2', 'EOF1', 'EOF2', 'UHL1', ...) to their
    decoded fields (each with its 80-character ``text``).  ``problems`` lists what makes
    the data set unusable (the tape ends inside it, the EOF1 block count disagrees);
    ``continued`` is set when the trailer is EOV (the data set goes on on another tape).
    """

    number: int
    labels: dict
    dsname: str
    recfm: str
    lrecl: int | None
    blksize: int | None
    blocks: list[bytes]
    physical: int = 0  # 1-based physical file holding the data (as hetmap counts)
    offset: int = 0  # file offset of the first data chunk
    created: datetime.date | None = None
    expires: datetime.date | None = None
    job: str = ""
    step: str = ""
    problems: list[str] = field(default_factory=list)
    continued: bool = False

    @property
    def nbytes(self) -> int:
        return sum(len(b) for b in self.blocks)

    @property
    def kind(self) -> str:
        return content_kind(self.blocks)


@dataclass
class Tape:
    """A whole tape file: its format, volume labels and data sets."""

    path: str
    format: str  # "AWS" (nothing compressed) or "HET"
    compression: list[str]  # methods seen: "zlib", "bzip2"
    label_type: str  # "SL" or "NL"
    volser: str
    owner: str
    vol_labels: dict
    files: list[TapeFile]
    blocks: int  # data blocks, labels included (hetmap's summary count)
    tapemarks: int
    physical_files: int

    def file(self, number: int) -> TapeFile:
        """Data set ``number`` (1-based); NotFoundError when the tape has no such file."""
        for tf in self.files:
            if tf.number == number:
                return tf
        have = f"1..{len(self.files)}" if self.files else "none"
        raise NotFoundError(f"no data set {number} on the tape (data sets: {have})", self.path)


@dataclass
class _Phys:
    """A physical file: the blocks between two tape marks."""

    number: int
    blocks: list[bytes] = field(default_factory=list)
    offsets: list[int] = field(default_factory=list)
    closed: bool = False  # ended by a tape mark (not by the end of the file)


# -- pass 1: chunks to blocks ---------------------------------------------------------------
def _inflate(method: str, raw: bytes, path: str, where: str, nblock: int) -> bytes:
    """Decompress one block, never producing more than MAX_BLOCK bytes."""
    limit = L.MAX_BLOCK + 1
    try:
        if method == "bzip2":
            dec = bz2.BZ2Decompressor()
            out = dec.decompress(raw, max_length=limit)
        else:
            dec = zlib.decompressobj()
            out = dec.decompress(raw, limit)
    except (OSError, EOFError, ValueError, zlib.error) as exc:
        raise FormatError(
            f"block {nblock}: {method} data is damaged ({exc})", path, where
        ) from None
    if len(out) > L.MAX_BLOCK:
        raise FormatError(
            f"block {nblock}: {method} data inflates to more than {L.MAX_BLOCK} bytes",
            path,
            where,
        )
    if not dec.eof:
        raise FormatError(f"block {nblock}: {method} stream is incomplete", path, where)
    if dec.unused_data:
        raise FormatError(
            f"block {nblock}: {len(dec.unused_data)} bytes follow the end of the {method} stream",
            path,
            where,
        )
    return out


def _compression(flags1: int, flags2: int) -> str | None:
    method = flags1 & L.FLAGS1_COMPRESS
    if method == L.FLAGS1_ZLIB:
        return "zlib"
    if method == L.FLAGS1_BZLIB:
        return "bzip2"
    if flags2 & L.FLAGS2_ZLIB_BUSTECH:
        return "zlib"
    return None


def _read_chunks(data: bytes, path: str) -> tuple[list[_Phys], int, int, set[str]]:
    """Walk the chunk chain -> (physical files, data blocks, tape marks, methods seen)."""
    size = len(data)
    if size == 0:
        raise FormatError("empty file: not an AWS or HET tape", path)
    phys = [_Phys(1)]
    methods: set[str] = set()
    pos = 0
    prev_clen = 0
    nblock = 0  # data blocks finished so far
    marks = 0
    parts: list[bytes] | None = None  # chunks of the block being assembled
    block_start = 0
    first = (0, 0)  # flags of the block's first chunk
    total = 0
    while pos < size:
        where = f"offset {pos}"
        if size - pos < L.CHUNK_HEADER_SIZE:
            raise FormatError(
                f"truncated chunk header: {size - pos} bytes left, {L.CHUNK_HEADER_SIZE} needed",
                path,
                where,
            )
        hdr = parse_at(_CHUNK, data, pos, where=where, path=path)
        clen, plen, flags1, flags2 = hdr.clen, hdr.plen, hdr.flags1, hdr.flags2
        if plen != prev_clen:
            if pos == 0:
                raise FormatError(
                    f"not an AWS or HET tape: the first chunk header gives a previous "
                    f"length of {plen}, not 0",
                    path,
                    where,
                )
            raise FormatError(
                f"chunk header gives the previous chunk {plen} bytes, it had {prev_clen}",
                path,
                where,
            )
        if flags1 & L.FLAGS1_UNDEFINED or flags2 & L.FLAGS2_UNDEFINED:
            raise FormatError(
                f"chunk header has undefined flag bits (flags X'{flags1:02X}{flags2:02X}')",
                path,
                where,
            )
        if flags1 & L.FLAGS1_TAPEMARK:
            if parts is not None:
                raise FormatError(
                    f"tape mark inside block {nblock + 1} (its last chunk has no end-of-record flag)",
                    path,
                    where,
                )
            if clen:
                raise FormatError(f"tape mark with {clen} data bytes", path, where)
            marks += 1
            phys[-1].closed = True
            phys.append(_Phys(phys[-1].number + 1))
            pos += L.CHUNK_HEADER_SIZE
            prev_clen = 0
            continue
        start = pos + L.CHUNK_HEADER_SIZE
        if clen > size - start:
            raise FormatError(
                f"chunk header gives {clen} data bytes, only {size - start} are left in the file",
                path,
                where,
            )
        flags = (flags1 & L.FLAGS1_COMPRESS, flags2 & L.FLAGS2_ZLIB_BUSTECH)
        if parts is None:
            if not flags1 & L.FLAGS1_BOR:
                raise FormatError(
                    f"chunk without a begin-of-record flag starts block {nblock + 1}", path, where
                )
            if flags[0] == L.FLAGS1_COMPRESS:
                raise FormatError(f"block {nblock + 1}: unknown compression method 3", path, where)
            if flags[0] and flags[1]:
                raise FormatError(
                    f"block {nblock + 1}: both HET and Bus-Tech compression flags are set",
                    path,
                    where,
                )
            parts, block_start, first, total = [], pos, flags, 0
        else:
            if flags1 & L.FLAGS1_BOR:
                raise FormatError(
                    f"block {nblock + 1}: a new block starts before this one ended "
                    "(no end-of-record chunk)",
                    path,
                    where,
                )
            if flags != first:
                raise FormatError(
                    f"block {nblock + 1}: compression flags differ between its chunks", path, where
                )
        total += clen
        if total > L.MAX_BLOCK:
            raise FormatError(
                f"block {nblock + 1} is longer than {L.MAX_BLOCK} bytes",
                path,
                f"offset {block_start}",
            )
        parts.append(data[start : start + clen])
        pos = start + clen
        prev_clen = clen
        if flags1 & L.FLAGS1_EOR:
            nblock += 1
            block = b"".join(parts)
            parts = None
            method = _compression(*first)
            if method is not None:
                methods.add(method)
                block = _inflate(method, block, path, f"offset {block_start}", nblock)
            if not block:
                raise FormatError(f"block {nblock} is empty", path, f"offset {block_start}")
            phys[-1].blocks.append(block)
            phys[-1].offsets.append(block_start)
    if parts is not None:
        raise FormatError(
            f"the file ends inside block {nblock + 1} (no end-of-record chunk)",
            path,
            f"offset {block_start}",
        )
    if not phys[-1].blocks and not phys[-1].closed:
        phys.pop()  # nothing after the last tape mark
    return phys, nblock, marks, methods


# -- labels ---------------------------------------------------------------------------------
def _text(raw: bytes) -> str:
    return codepage.decode(raw)


def _digits(text: str) -> bool:
    # str.isdigit() also accepts '²' and other non-ASCII digits, which int() refuses.
    return text.isascii() and text.isdigit()


def _num(raw: bytes) -> int | None:
    text = _text(raw).strip()
    return int(text) if _digits(text) else None


def tape_date(raw: bytes) -> datetime.date | None:
    """A label date 'cyyddd' -> date; None for no date (zeros, blanks) or not a date.

    c is blank for 19xx, '0' for 20xx, '1' for 21xx.  MVS 3.8j writes a blank century
    whatever the year (SOURCES.md: " 21068" on a 2021 tape), so a blank with yy < 70 is
    read as 20yy, as :mod:`emulator.dates` does for DSCB dates.
    """
    text = _text(raw)
    if len(text) != 6 or not _digits(text[1:]):
        return None
    century, yy, ddd = text[0], int(text[1:3]), int(text[3:])
    if ddd == 0:
        return None
    if century == " ":
        year = 2000 + yy if yy < 70 else 1900 + yy
    elif century in "01":
        year = 2000 + 100 * int(century) + yy
    else:
        return None
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    if ddd > (366 if leap else 365):
        # 99366 is the "never expires" value some systems write; show it as 99365 does.
        return datetime.date(year, 12, 31) if ddd == 366 and yy == 99 else None
    return datetime.date(year, 1, 1) + datetime.timedelta(days=ddd - 1)


def _recfm(letter: str, blkattr: str, ctrl: str) -> str:
    """HDR2 record format, block attribute and control character -> 'FB', 'VBS', 'FBA'."""
    if letter not in ("F", "V", "U"):
        return letter.strip()
    text = letter
    if letter != "U":
        text += "B" if blkattr in ("B", "R") else ""
        text += "S" if blkattr in ("S", "R") else ""
    text += ctrl if ctrl in ("A", "M") else ""
    return text


def decode_label(block: bytes, path: str = "", where: str = "") -> tuple[str, dict]:
    """One 80-byte label block -> (label id, decoded fields including ``text``)."""
    labid = _text(block[:4])
    fields: dict = {"text": _text(block).rstrip()}
    kind = labid[:3]
    if labid == "VOL1":
        lab = parse_at(L.Vol1, block, where=where, path=path)
        fields.update(
            volser=_text(lab.volser).strip(),
            access=_text(lab.access).strip(),
            owner=_text(lab.owner).strip(),
        )
    elif kind in ("HDR", "EOF", "EOV") and labid[3:] == "1":
        lab = parse_at(L.Ds1, block, where=where, path=path)
        low, high = _num(lab.blklo), _num(lab.blkhi)
        count = None if low is None else low + 1_000_000 * (high or 0)
        fields.update(
            dsname=_text(lab.dsid).strip(),
            volser=_text(lab.volser).strip(),
            volume_seq=_num(lab.volseq),
            file_seq=_num(lab.dsseq),
            generation=_text(lab.genno).strip(),
            version=_text(lab.verno).strip(),
            created=tape_date(lab.crtdt),
            expires=tape_date(lab.expdt),
            security=_text(lab.dssec).strip(),
            block_count=count,
            block_count_high=high,
            system_code=_text(lab.syscd).strip(),
        )
    elif kind in ("HDR", "EOF", "EOV") and labid[3:] == "2":
        lab = parse_at(L.Ds2, block, where=where, path=path)
        jobid = _text(lab.jobid)
        job, _, step = jobid.partition("/")
        fields.update(
            recfm=_recfm(_text(lab.recfm), _text(lab.blkattr), _text(lab.ctrl)),
            blksize=_num(lab.lblkln) or _num(lab.blksize),
            lrecl=_num(lab.lrecl),
            density=_text(lab.den).strip(),
            position=_text(lab.dspos).strip(),
            job=job.strip(),
            step=step.strip(),
            technique=_text(lab.trtch).strip(),
            control=_text(lab.ctrl).strip(),
            block_attribute=_text(lab.blkattr).strip(),
            device_serial=_text(lab.devser).strip(),
            checkpoint=_text(lab.ckptid).strip(),
        )
    return labid, fields


def _label_group(p: _Phys, path: str) -> list[tuple[str, dict]]:
    out = []
    for block, off in zip(p.blocks, p.offsets, strict=True):
        if len(block) != L.LABEL_SIZE:
            raise FormatError(
                f"physical file {p.number}: a label block has {len(block)} bytes, not "
                f"{L.LABEL_SIZE} (the tape's labels are damaged)",
                path,
                f"offset {off}",
            )
        out.append(decode_label(block, path, f"offset {off}"))
    return out


# -- pass 2: blocks to data sets --------------------------------------------------------------
def _is_sl(phys: list[_Phys], path: str) -> bool:
    if not phys or not phys[0].blocks:
        return False
    first = phys[0].blocks[0]
    if len(first) == L.LABEL_SIZE and first[:4] == L.LABID_VOL1_ASCII:
        raise UnsupportedError("ISO/ANSI (ASCII) labelled tapes are not supported", path)
    return len(first) == L.LABEL_SIZE and first[:4] == L.LABID_VOL1


def _nl_files(phys: list[_Phys]) -> list[TapeFile]:
    files = []
    for p in phys:
        if not p.blocks:
            break  # a tape mark right after another one: the logical end of the tape
        tf = TapeFile(len(files) + 1, {}, "", "", None, None, p.blocks, p.number, p.offsets[0])
        if not p.closed:
            tf.problems.append("the tape ends inside the file (no tape mark after its data)")
        files.append(tf)
    return files


def _sl_files(phys: list[_Phys], path: str) -> tuple[dict, list[TapeFile]]:
    group = _label_group(phys[0], path)
    vol_labels: dict = {}
    while group and group[0][0][:3] in ("VOL", "UVL"):  # volume and user volume labels
        labid, fields = group.pop(0)
        vol_labels[labid] = fields
    files: list[TapeFile] = []
    i = 0  # index in phys of the current header label group
    while True:
        if not group:
            if i == 0 and len(phys) > 1 and phys[1].blocks:
                raise FormatError("VOL1 is not followed by HDR1", path, "physical file 1")
            break  # two tape marks in a row (or only a VOL1): the end of the tape
        if group[0][0] != "HDR1":
            raise FormatError(
                f"expected HDR1, found {group[0][0]!r}", path, f"physical file {phys[i].number}"
            )
        if i + 1 >= len(phys):
            break  # header labels and no data file: a freshly initialised tape
        header = dict(group)
        data = phys[i + 1]
        hdr1, hdr2 = header["HDR1"], header.get("HDR2", {})
        tf = TapeFile(
            number=len(files) + 1,
            labels=header,
            dsname=hdr1["dsname"],
            recfm=hdr2.get("recfm", ""),
            lrecl=hdr2.get("lrecl"),
            blksize=hdr2.get("blksize"),
            blocks=data.blocks,
            physical=data.number,
            offset=data.offsets[0] if data.offsets else 0,
            created=hdr1["created"],
            expires=hdr1["expires"],
            job=hdr2.get("job", ""),
            step=hdr2.get("step", ""),
        )
        files.append(tf)
        if not data.closed:
            tf.problems.append("the tape ends inside the data set (no tape mark after its data)")
            break
        if i + 2 >= len(phys):
            tf.problems.append("the tape ends after the data set's data (no EOF1 label)")
            break
        trailer = _label_group(phys[i + 2], path)
        if not trailer or trailer[0][0] not in ("EOF1", "EOV1"):
            found = repr(trailer[0][0]) if trailer else "a tape mark"
            raise FormatError(
                f"data set {tf.number} {tf.dsname}: expected EOF1 or EOV1, found {found}",
                path,
                f"physical file {phys[i + 2].number}",
            )
        for labid, fields in trailer:
            tf.labels.setdefault(labid, fields)
        end1 = trailer[0][1]
        if trailer[0][0] == "EOV1":
            tf.continued = True
            tf.problems.append("the data set continues on another volume (EOV1)")
        # Without the high-order digits the count is kept modulo 1,000,000.
        held = len(data.blocks)
        if end1["block_count_high"] is None:
            held %= 1_000_000
        if end1["block_count"] is None:
            tf.problems.append(f"{trailer[0][0]} block count is not a number")
        elif end1["block_count"] != held:
            tf.problems.append(
                f"{trailer[0][0]} gives {end1['block_count']} blocks, the tape holds "
                f"{len(data.blocks)}"
            )
        if end1["dsname"] != tf.dsname:
            tf.problems.append(f"{trailer[0][0]} names {end1['dsname']!r}, HDR1 {tf.dsname!r}")
        if tf.continued or not phys[i + 2].closed:
            break
        i += 3
        if i >= len(phys):
            break
        group = _label_group(phys[i], path)
    return vol_labels, files


def read_tape(path: str | os.PathLike) -> Tape:
    """Read an AWS or HET file: every block (decompressed), the labels and the data sets."""
    path = os.fspath(path)
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise NotFoundError(f"cannot read the tape file: {exc.strerror or exc}", path) from None
    return parse_tape(data, path)


def parse_tape(data: bytes, path: str | os.PathLike | None = None) -> Tape:
    """:func:`read_tape` on bytes already in memory (``path`` only names them in errors)."""
    path = os.fspath(path) if path is not None else ""
    phys, nblocks, marks, methods = _read_chunks(data, path)
    if _is_sl(phys, path):
        vol_labels, files = _sl_files(phys, path)
        label_type = "SL"
    else:
        vol_labels, files, label_type = {}, _nl_files(phys), "NL"
    vol1 = vol_labels.get("VOL1", {})
    return Tape(
        path=path,
        format="HET" if methods else "AWS",
        compression=sorted(methods),
        label_type=label_type,
        volser=vol1.get("volser", ""),
        owner=vol1.get("owner", ""),
        vol_labels=vol_labels,
        files=files,
        blocks=nblocks,
        tapemarks=marks,
        physical_files=len(phys),
    )


# -- content -----------------------------------------------------------------------------
def _bdw_length(block: bytes) -> int:
    """Block length from a BDW; bit 0 set means the 31-bit large-block form."""
    if block[0] & 0x80:
        return int.from_bytes(block[:4], "big") & 0x7FFFFFFF
    return int.from_bytes(block[:2], "big")


def _looks_like_unload(block: bytes) -> bool:
    # BDW + SDW + COPYR1: the BDW covers the block, the SDW's segment code sits in the
    # low two bits of its third byte, and COPYR1 carries X'CA6D0F' at its offset 1.
    return (
        len(block) >= 12
        and block[9:12] == _COPYR1_HDRID
        and _bdw_length(block) == len(block)
        and int.from_bytes(block[4:6], "big") >= 8
        and block[6] & 0xFC == 0
        and block[7] == 0
    )


def _looks_like_xmit(block: bytes) -> bool:
    return len(block) >= 8 and block[1] == _XMIT_CONTROL_FLAGS and block[2:8] == _INMR01


def content_kind(blocks: list[bytes]) -> str:
    """What a data file holds, judged by its first block (see :func:`tape_get`)."""
    if not blocks:
        return KIND_EMPTY
    if _looks_like_unload(blocks[0]):
        return KIND_UNLOAD
    if _looks_like_xmit(blocks[0]):
        return KIND_XMIT
    return KIND_SEQUENTIAL


def _unloaded_dcb(block: bytes) -> dict | None:
    """The unloaded PDS's DCB from COPYR1 (FORMATS.md 8.2), for listings; None if unreadable."""
    from emulator.layouts.iebcopy import Copyr1Old
    from emulator.recfm import recfm_text

    try:
        r1 = parse_at(Copyr1Old, block, 8)
    except FormatError:
        return None
    return {
        "recfm": recfm_text(r1.ds1recfm),
        "lrecl": r1.ds1lrecl,
        "blksize": r1.ds1blkl,
        "dsorg_raw": r1.ds1dsorg,
    }


# -- listing -------------------------------------------------------------------------------
def _file_dict(tape: Tape, tf: TapeFile) -> dict:
    kind = tf.kind
    out = {
        "number": tf.number,
        "dsname": tf.dsname,
        "recfm": tf.recfm,
        "lrecl": tf.lrecl,
        "blksize": tf.blksize,
        "blocks": len(tf.blocks),
        "bytes": tf.nbytes,
        "created": tf.created.isoformat() if tf.created else None,
        "expires": tf.expires.isoformat() if tf.expires else None,
        "kind": kind,
        "job": tf.job,
        "step": tf.step,
        "physical": tf.physical,
        "offset": tf.offset,
        "volser": tf.labels.get("HDR1", {}).get("volser", tape.volser),
        "problems": list(tf.problems),
        "labels": {k: _jsonable(v) for k, v in tf.labels.items()},
    }
    if kind == KIND_UNLOAD:
        out["unloaded"] = _unloaded_dcb(tf.blocks[0])
    return out


def _jsonable(fields: dict) -> dict:
    return {k: v.isoformat() if isinstance(v, datetime.date) else v for k, v in fields.items()}


def tape_info(path: str | os.PathLike) -> dict:
    """The tape and its data sets as plain JSON-ready values (what ``dasd tape ls`` prints)."""
    return tape_summary(read_tape(path))


def tape_summary(tape: Tape) -> dict:
    """:func:`tape_info` for a tape already read."""
    return {
        "path": tape.path,
        "format": tape.format,
        "compression": tape.compression,
        "label_type": tape.label_type,
        "volser": tape.volser,
        "owner": tape.owner,
        "vol_labels": {k: _jsonable(v) for k, v in tape.vol_labels.items()},
        "blocks": tape.blocks,
        "tapemarks": tape.tapemarks,
        "physical_files": tape.physical_files,
        "files": [_file_dict(tape, tf) for tf in tape.files],
    }


def tape_ls(path: str | os.PathLike) -> list[dict]:
    """One dict per data set: number, dsname, recfm, lrecl, blksize, blocks, bytes,
    created, expires, kind, job, step, physical, offset, volser, problems, labels (and
    ``unloaded``, the PDS's DCB, for IEBCOPY unloads)."""
    return tape_info(path)["files"]


# -- extraction ----------------------------------------------------------------------------
def _check_bdws(tf: TapeFile, path: str) -> None:
    for n, block in enumerate(tf.blocks, 1):
        if len(block) < 8 or _bdw_length(block) != len(block):
            got = _bdw_length(block) if len(block) >= 4 else None
            raise FormatError(
                f"block {n} of {len(block)} bytes has BDW length {got}",
                path,
                f"data set {tf.number} {tf.dsname}".strip(),
            )


def _sequential_bytes(tf: TapeFile, path: str) -> tuple[bytes, int | None]:
    """F/U (or no DCB): blocks concatenated.  V: the records, each with its RDW."""
    if not tf.recfm.startswith("V"):
        return b"".join(tf.blocks), None
    from emulator.dataset.records import deblock

    where = f"data set {tf.number} {tf.dsname}"
    try:
        raw = recfm_value(tf.recfm)
    except FormatError as exc:
        raise exc.located(path, where) from None
    try:
        records = deblock(raw, tf.lrecl or 0, tf.blocks, where=where)
    except FormatError as exc:
        raise exc.located(path) from None
    out = bytearray()
    for n, rec in enumerate(records, 1):
        if len(rec) + 4 > 0x7FFF:
            raise UnsupportedError(
                f"record {n} has {len(rec)} bytes: too long for an RDW (LRECL=X)", path, where
            )
        out += (len(rec) + 4).to_bytes(2, "big") + b"\x00\x00" + rec
    return bytes(out), len(records)


def file_bytes(tf: TapeFile, form: str = "auto", path: str = "") -> tuple[bytes, int | None]:
    """What :func:`tape_get` writes for ``tf``: (bytes, number of records for RECFM V).

    Refuses (and nothing is written) a data set the tape does not hold whole.
    """
    if form not in FORMS:
        raise NotFoundError(f"unknown form {form!r} (known: {', '.join(FORMS)})")
    where = f"data set {tf.number} {tf.dsname}".strip()
    if tf.continued:
        raise UnsupportedError(
            "the data set continues on another volume (EOV1); multi-volume data sets are "
            "not supported",
            path,
            where,
        )
    if tf.problems:
        raise FormatError("; ".join(tf.problems), path, where)
    kind = tf.kind
    if form == "raw" or kind in (KIND_XMIT, KIND_EMPTY):
        return b"".join(tf.blocks), None
    if kind == KIND_UNLOAD:
        _check_bdws(tf, path)
        return b"".join(tf.blocks), None
    return _sequential_bytes(tf, path)


def _write_atomic(out_path: str, data: bytes) -> None:
    """Write to a temporary name in the target's folder, then rename over the target."""
    folder = os.path.dirname(os.path.abspath(out_path))
    try:
        fd, tmp = tempfile.mkstemp(
            dir=folder, prefix=f".{os.path.basename(out_path)}.", suffix=".tmp"
        )
    except OSError as exc:
        # Name the file the user asked for, not the temporary one.
        raise OSError(exc.errno, exc.strerror, out_path) from None
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        # mkstemp makes the file private; give it the mode a plain open() would.
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, 0o666 & ~mask)
        os.replace(tmp, out_path)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        if isinstance(exc, OSError):
            raise OSError(exc.errno, exc.strerror, out_path) from None
        raise


def tape_get(
    path: str | os.PathLike, n: int, out_path: str | os.PathLike, form: str = "auto"
) -> dict:
    """Extract data set ``n`` (1-based) into ``out_path``; returns what was written.

    ``form="auto"`` chooses by content:

    * an IEBCOPY unload (each block BDW + SDW + data, COPYR1 first): the blocks as they
      are, BDWs and SDWs kept -- a standalone unload file (kind ``iebcopy-unload``);
    * an XMIT file stored on tape (FB 80, INMR01 first): the records, i.e. the ``.xmi``
      file (kind ``xmit``);
    * anything else (kind ``sequential``): RECFM F and U blocks concatenated; RECFM V
      records each with its RDW (BDWs dropped, spanned segments joined).

    ``form="raw"`` writes the blocks concatenated whatever they hold.  A data set the
    tape does not hold whole (see :attr:`TapeFile.problems`) is refused and nothing is
    written.
    """
    if form not in FORMS:
        raise NotFoundError(f"unknown form {form!r} (known: {', '.join(FORMS)})")
    path = os.fspath(path)
    out_path = os.fspath(out_path)
    tape = read_tape(path)
    tf = tape.file(n)
    data, records = file_bytes(tf, form, path)
    kind = tf.kind
    _write_atomic(out_path, data)
    result = {
        "number": tf.number,
        "dsname": tf.dsname,
        "kind": kind,
        "form": form,
        "out": out_path,
        "bytes": len(data),
        "blocks": len(tf.blocks),
        "recfm": tf.recfm,
        "lrecl": tf.lrecl,
        "blksize": tf.blksize,
        "volser": tape.volser,
    }
    if records is not None:
        result["records"] = records
    if kind == KIND_UNLOAD:
        result["unloaded"] = _unloaded_dcb(tf.blocks[0])
    return result


# -- writing ---------------------------------------------------------------------------------
def build_tape(
    items: Iterable[bytes | None], compress: str | None = None, chunksize: int = L.MAX_CHUNK
) -> bytes:
    """AWS/HET bytes for ``items`` (a block's bytes, or None for a tape mark).

    ``compress`` None or "none" writes plain AWS chunks; "zlib" or "bzip2" compresses
    each block (stored plain when that does not make it smaller, as Hercules does).
    Blocks longer than ``chunksize`` are cut into several chunks (BOR ... EOR).
    """
    if compress not in (None, "none", "zlib", "bzip2"):
        raise NotFoundError(f"unknown compression {compress!r} (none, zlib, bzip2)")
    if not 1 <= chunksize <= L.MAX_CHUNK:
        raise FormatError(f"chunk size {chunksize} is not in 1..{L.MAX_CHUNK}")
    out = bytearray()
    prev = 0
    for n, item in enumerate(items, 1):
        if item is None:
            out += _CHUNK.build(dict(clen=0, plen=prev, flags1=L.FLAGS1_TAPEMARK, flags2=0))
            prev = 0
            continue
        if not 1 <= len(item) <= L.MAX_BLOCK:
            raise FormatError(
                f"item {n}: a block must have 1..{L.MAX_BLOCK} bytes, not {len(item)}"
            )
        payload, method = bytes(item), 0
        if compress == "zlib":
            packed, method = zlib.compress(payload, 6), L.FLAGS1_ZLIB
        elif compress == "bzip2":
            packed, method = bz2.compress(payload, 9), L.FLAGS1_BZLIB
        if method and len(packed) < len(payload):
            payload = packed
        else:
            method = 0
        pieces = [payload[i : i + chunksize] for i in range(0, len(payload), chunksize)]
        for k, piece in enumerate(pieces):
            flags1 = method
            flags1 |= L.FLAGS1_BOR if k == 0 else 0
            flags1 |= L.FLAGS1_EOR if k == len(pieces) - 1 else 0
            out += _CHUNK.build(dict(clen=len(piece), plen=prev, flags1=flags1, flags2=0))
            out += piece
            prev = len(piece)
    return bytes(out)


def write_tape(
    path: str | os.PathLike,
    items: Iterable[bytes | None],
    compress: str | None = None,
    chunksize: int = L.MAX_CHUNK,
) -> int:
    """Write :func:`build_tape` output to ``path`` (temp name, then rename); returns its size."""
    data = build_tape(items, compress, chunksize)
    _write_atomic(os.fspath(path), data)
    return len(data)


__all__ = [
    "FORMS",
    "Tape",
    "TapeFile",
    "read_tape",
    "parse_tape",
    "file_bytes",
    "tape_info",
    "tape_summary",
    "tape_ls",
    "tape_get",
    "tape_date",
    "decode_label",
    "content_kind",
    "build_tape",
    "write_tape",
]
