"""Build a volume from a Hercules ``dasdload`` control file.

The control file (Hercules documentation ``hercload.html``, "dasdload"; behaviour
checked against Hercules 3.13 ``dasdload``) is ASCII text:

* comment lines start with ``#`` or ``*``; blank lines are skipped;
* the first statement is the volume: ``volser devtype[-model] [cyls [ipltext]]``
  (cyls ``*`` or ``0`` or omitted: the model's size);
* then one statement per data set:
  ``dsname method [file] [units [pri [sec [dir [dsorg [recfm [lrecl [blksize [keylen]]]]]]]]]``
  where units is ``TRK`` or ``CYL`` (default ``TRK 1 0 0``; a unit without a primary
  quantity means "1, or as many as the data needs"), and missing DCB values are 0.

Methods: ``SEQ file`` copies a binary file into F/FB records (the last record padded
with X'00', as dasdload does); ``TEXT file`` turns each line (LF or CRLF) into one
EBCDIC record through a code page, blank-padded to LRECL for F; ``EMPTY`` allocates
(an EOF for PS, an empty directory for PO); ``dummy VTOC TRK n`` gives the VTOC's size.
``XMIT file`` loads the PDS a TSO XMIT file carries (its IEBCOPY unload, FORMATS.md 8
and 9), ``XMSEQ file`` the sequential data set one carries, and ``VS file`` a PDS from
a binary IEBCOPY unload (records back to back, as dasdload reads it; with BDWs and
RDWs too).  For these three the DCB comes from the file, as in dasdload (the XMIT's
IEBCOPY INMR02, or COPYR1), the directory gets the blocks the file asks for (or the
control file's, if more), and the primary space is raised to what the data needs.
``DIP`` and ``CVOL`` (OS/360 system data sets) and IPL text are not supported.

Differences from Hercules, on purpose: the whole file is parsed and every input file
read before the image is created, and any error deletes the half-made image (dasdload
leaves it); names and attributes are validated (dasdload accepts duplicates and
malformed names); a data set that outgrows its primary space gets secondary extents
(dasdload stops); TEXT keeps the last character of a final line without a newline
(dasdload drops it) and uses a real code page (1047 by default) where dasdload uses its
own table (FORMATS.md 10); data sets are placed by our allocator, so track positions
and the VTOC position differ: the VTOC always starts at track 0/1 (dasdload puts it after
the last data set), with the size a ``VTOC`` line gives (TRK n, or CYL n = n × heads
tracks) or else the volume layer's default.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emulator import codepage as cp
from emulator.errors import (
    ConflictError,
    EmulatorError,
    FormatError,
    NotFoundError,
    UnsupportedError,
)

UNLOAD_METHODS = ("XMIT", "XMSEQ", "VS")  # TSO XMIT files and IEBCOPY unloads
NOT_SUPPORTED = ("DIP", "CVOL")  # OS/360 system data set initialisers
FILE_METHODS = ("SEQ", "TEXT") + UNLOAD_METHODS
METHODS = FILE_METHODS + ("EMPTY", "VTOC") + NOT_SUPPORTED
DSORGS = ("PS", "PO", "DA", "IS")
_VOLSER_RE = re.compile(r"^[A-Z0-9@#$]{1,6}$")
_MAX_INPUT = 1 << 31  # bytes; a larger input file cannot fit any volume we create


@dataclass
class VolumeStmt:
    """The volume statement."""

    volser: str
    devtype: str  # "3390" or "3390-3"
    cyls: int | None  # None: the model's size
    line: int


@dataclass
class DatasetStmt:
    """One data set statement, values as written (defaults filled in)."""

    dsname: str
    method: str
    file: str | None
    unit: str = "TRK"
    primary: int | None = 1  # None: "as many as the data needs, at least 1"
    secondary: int = 0
    dirblks: int = 0
    dsorg: str | None = None
    recfm: str | None = None
    lrecl: int = 0
    blksize: int = 0
    keylen: int = 0
    line: int = 0


@dataclass
class ControlFile:
    """A parsed control file: the volume, the data sets in order, the VTOC size."""

    volume: VolumeStmt
    datasets: list[DatasetStmt] = field(default_factory=list)
    vtoc_tracks: int | None = None
    path: str | None = None
    vtoc_line: int = 0  # the VTOC statement's line, for errors about its size


def _int(text: str, what: str, path, where: str) -> int:
    if not re.fullmatch(r"\d{1,9}", text):
        raise FormatError(f"{what} must be a whole number, not {text!r}", path, where)
    return int(text)


def parse(text: str, path: str | os.PathLike | None = None) -> ControlFile:
    """Parse control-file text; every error names the file and the line."""
    from emulator.volume.dscb import validate_dsname

    volume: VolumeStmt | None = None
    datasets: list[DatasetStmt] = []
    vtoc_tracks: int | None = None
    vtoc_line = 0
    seen: dict[str, int] = {}
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line[0] in "#*":
            continue
        where = f"line {n}"
        tok = line.split()
        if volume is None:
            volume = _parse_volume(tok, path, where, n)
            continue
        if len(tok) < 2:
            raise FormatError(f"expected 'dsname method ...', got {line!r}", path, where)
        method = tok[1].upper()
        if method not in METHODS:
            raise FormatError(
                f"unknown method {tok[1]!r} (known: {', '.join(METHODS)})", path, where
            )
        if method == "VTOC":
            vtoc_tracks = _parse_vtoc(tok[2:], path, where)
            vtoc_line = n
            continue
        if method in NOT_SUPPORTED:
            raise UnsupportedError(f"method {method} is not supported", path, where)
        if "(" in tok[0]:
            raise FormatError(f"{tok[0]}: name a data set, not a member", path, where)
        try:
            dsname = validate_dsname(tok[0])
        except FormatError as exc:
            raise exc.located(path, where) from None
        if dsname in seen:
            raise ConflictError(f"{dsname} is already defined on line {seen[dsname]}", path, where)
        seen[dsname] = n
        rest = tok[2:]
        file = None
        if method in FILE_METHODS:
            if not rest:
                raise FormatError(f"method {method} needs an input file name", path, where)
            file, rest = rest[0], rest[1:]
        stmt = DatasetStmt(dsname, method, file, line=n)
        _parse_attributes(stmt, rest, path, where)
        datasets.append(stmt)
    if volume is None:
        raise FormatError("no volume statement ('volser devtype [cyls]')", path, "line 1")
    return ControlFile(volume, datasets, vtoc_tracks, os.fspath(path) if path else None, vtoc_line)


def _parse_volume(tok: list[str], path, where: str, n: int) -> VolumeStmt:
    from emulator.geometry import parse_devtype

    if len(tok) < 2:
        raise FormatError("volume statement needs 'volser devtype[-model] [cyls]'", path, where)
    volser = tok[0].upper()
    if not _VOLSER_RE.match(volser):
        raise FormatError(
            f"volume serial {tok[0]!r} must be 1-6 characters A-Z 0-9 @ # $", path, where
        )
    try:
        parse_devtype(tok[1])
    except EmulatorError as exc:
        raise exc.located(path, where) from None
    cyls = None
    if len(tok) > 2 and tok[2] != "*":
        cyls = _int(tok[2], "cylinders", path, where) or None
    if len(tok) > 3:
        raise UnsupportedError(f"IPL text ({tok[3]}) is not supported", path, where)
    return VolumeStmt(volser, tok[1].upper(), cyls, n)


def _parse_vtoc(rest: list[str], path, where: str) -> int | None:
    if not rest:
        return None
    unit = rest[0].upper()
    if unit not in ("TRK", "CYL"):
        raise FormatError(f"allocation unit must be TRK or CYL, not {rest[0]!r}", path, where)
    if len(rest) < 2:
        return None
    qty = _int(rest[1], "VTOC size", path, where)
    if qty == 0:
        raise FormatError("VTOC size must be at least 1", path, where)
    return qty if unit == "TRK" else -qty  # negative: cylinders, resolved with the device


def _parse_attributes(stmt: DatasetStmt, rest: list[str], path, where: str) -> None:
    """units pri sec dir dsorg recfm lrecl blksize keylen, each optional from the right."""
    from emulator.recfm import recfm_value

    if not rest:
        return
    stmt.unit = rest[0].upper()
    if stmt.unit not in ("TRK", "CYL"):
        raise FormatError(f"allocation unit must be TRK or CYL, not {rest[0]!r}", path, where)
    stmt.primary = _int(rest[1], "primary quantity", path, where) if len(rest) > 1 else None
    if stmt.primary == 0:
        raise FormatError("primary quantity must be at least 1", path, where)
    if len(rest) > 2:
        stmt.secondary = _int(rest[2], "secondary quantity", path, where)
    if len(rest) > 3:
        stmt.dirblks = _int(rest[3], "directory blocks", path, where)
    if len(rest) > 4:
        stmt.dsorg = rest[4].upper()
        if stmt.dsorg not in DSORGS:
            raise FormatError(
                f"DSORG must be one of {', '.join(DSORGS)}, not {rest[4]!r}", path, where
            )
    if len(rest) > 5:
        stmt.recfm = rest[5].upper()
        try:
            recfm_value(stmt.recfm)
        except FormatError as exc:
            raise exc.located(path, where) from None
    if len(rest) > 6:
        stmt.lrecl = _int(rest[6], "LRECL", path, where)
    if len(rest) > 7:
        stmt.blksize = _int(rest[7], "BLKSIZE", path, where)
    if len(rest) > 8:
        stmt.keylen = _int(rest[8], "key length", path, where)
        if stmt.keylen > 255:
            raise FormatError(f"key length {stmt.keylen} is more than 255", path, where)
    if len(rest) > 9:
        raise FormatError(f"unexpected {' '.join(rest[9:])!r} after the key length", path, where)
    if stmt.dsorg in ("DA", "IS"):
        raise UnsupportedError(f"DSORG {stmt.dsorg} is not supported", path, where)
    if stmt.method in UNLOAD_METHODS:
        return  # the DCB and directory come from the file (dirblks only adds blocks)
    if stmt.dsorg == "PO" and stmt.dirblks == 0:
        raise FormatError("a PO data set needs directory blocks (4th number)", path, where)
    if stmt.dsorg != "PO" and stmt.dirblks:
        raise FormatError(f"directory blocks given for DSORG {stmt.dsorg or 'PS'}", path, where)


# -- building records ------------------------------------------------------------------
def _resolve(name: str, ctl_dir: Path) -> Path:
    """An input file name: relative to the control file's folder, else to the cwd (where
    dasdload looks)."""
    p = Path(name)
    if p.is_absolute():
        return p
    beside = ctl_dir / p
    return beside if beside.exists() else p


def _read_file(p: Path, path, where: str) -> bytes:
    try:
        size = p.stat().st_size
        if size > _MAX_INPUT:
            raise FormatError(f"{p}: {size} bytes is too large for a volume", path, where)
        return p.read_bytes()
    except FileNotFoundError:
        raise NotFoundError(f"input file {p} not found", path, where) from None
    except IsADirectoryError:
        raise FormatError(f"input file {p} is a directory", path, where) from None
    except OSError as exc:
        raise FormatError(f"cannot read input file {p}: {exc.strerror}", path, where) from None


def text_lines(text: str) -> list[str]:
    """Lines of a text file: LF or CRLF ends a line, as in dasdload (nothing else does,
    unlike str.splitlines); a final line without a newline still counts."""
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def records_for(stmt: DatasetStmt, data: bytes, codepage: str, path, where: str) -> list[bytes]:
    """The logical records a SEQ or TEXT statement loads (FORMATS.md 7)."""
    from emulator.dataset.records import lines_to_records
    from emulator.recfm import recfm_value

    recfm = stmt.recfm or ""
    if stmt.method == "SEQ":
        # dasdload: "dsorg must be PS or DA, recfm must be F or FB"
        if stmt.dsorg != "PS":
            raise FormatError(f"SEQ needs DSORG PS, not {stmt.dsorg or 'none'}", path, where)
        if recfm not in ("F", "FB", "FS", "FBS"):
            raise FormatError(f"SEQ needs RECFM F or FB, not {recfm or 'none'}", path, where)
        if stmt.lrecl <= 0:
            raise FormatError("SEQ needs an LRECL", path, where)
        if len(data) % stmt.lrecl:
            data += bytes(stmt.lrecl - len(data) % stmt.lrecl)
        return [data[i : i + stmt.lrecl] for i in range(0, len(data), stmt.lrecl)]
    # TEXT
    if stmt.dsorg not in (None, "PS"):
        raise FormatError(f"TEXT loads a sequential data set, not DSORG {stmt.dsorg}", path, where)
    if not recfm:
        raise FormatError("TEXT needs a RECFM", path, where)
    code = recfm_value(recfm)
    if recfm[0] == "F" and stmt.lrecl <= 0:
        raise FormatError("TEXT with fixed records needs an LRECL", path, where)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise FormatError(f"input is not UTF-8 text (line {line})", path, where) from None
    lines = text_lines(text)
    if recfm[0] == "U":
        # A zero-length block is an EOF mark on DASD, so an empty line becomes one blank.
        lines = [ln or " " for ln in lines]
    try:
        return lines_to_records(lines, code, stmt.lrecl, codepage)
    except FormatError as exc:
        raise exc.located(path, f"{where}: {stmt.file}") from None


def _tracks_needed(dev, stmt: DatasetStmt, records: list[bytes]) -> int:
    """Tracks the records need when blocked (for a unit given without a quantity)."""
    from emulator.dataset.records import block
    from emulator.recfm import recfm_value

    if not records or not stmt.recfm:
        return 1
    blocks = block(recfm_value(stmt.recfm), stmt.lrecl, stmt.blksize or stmt.lrecl, records)
    used, tracks = 0, 1
    for b in blocks:
        nxt = dev.fits(used, stmt.keylen, len(b))
        if nxt is None:
            tracks += 1
            nxt = dev.fits(0, stmt.keylen, len(b)) or 0
        used = nxt
    return tracks + 1  # room for the EOF record


# -- loading ---------------------------------------------------------------------------
def load(
    ctl_path: str | os.PathLike,
    image_path: str | os.PathLike,
    compress: str | None = None,
    cckd64: bool = False,
    codepage: str = cp.DEFAULT,
):
    """Create ``image_path`` and load the data sets ``ctl_path`` describes.

    Returns the open (writable) Volume.  Nothing is written unless the whole control
    file parses and every input file reads; on any later error the half-made image is
    deleted and the error re-raised with the control file line."""
    from emulator.dataset import io
    from emulator.geometry import parse_devtype
    from emulator.volume import Volume
    from emulator.volume.volume import vtoc_size

    ctl_path = Path(ctl_path)
    try:
        text = ctl_path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise NotFoundError("no such control file", ctl_path) from None
    except IsADirectoryError:
        raise FormatError("is a directory, not a control file", ctl_path) from None
    except UnicodeDecodeError as exc:
        raise FormatError(f"not a text file (byte {exc.start})", ctl_path) from None
    except OSError as exc:
        raise FormatError(f"cannot read: {exc.strerror}", ctl_path) from None
    ctl = parse(text, ctl_path)
    cp.codec_name(codepage)  # an unknown code page fails before anything is written
    dev, model_cyls = parse_devtype(ctl.volume.devtype)

    # Read and convert every input first: a missing file or a bad line writes nothing.
    plans: list[tuple[DatasetStmt, list[bytes] | None, Any]] = []
    for stmt in ctl.datasets:
        where = f"line {stmt.line}: {stmt.dsname}"
        records = None
        source = None
        if stmt.method in FILE_METHODS:
            file = _resolve(stmt.file, ctl_path.parent)
            data = _read_file(file, ctl_path, where)
            if stmt.method in UNLOAD_METHODS:
                source = _unload_source(stmt, data, file, ctl_path, where)
            else:
                records = records_for(stmt, data, codepage, ctl_path, where)
        plans.append((stmt, records, source))

    image_path = Path(image_path)
    if image_path.exists():
        raise ConflictError("already exists; dasd load creates a new image", image_path)
    vtoc_tracks = None
    if ctl.vtoc_tracks is not None:  # negative: cylinders (see _parse_vtoc)
        vtoc_tracks = ctl.vtoc_tracks if ctl.vtoc_tracks > 0 else -ctl.vtoc_tracks * dev.heads
        try:  # a VTOC that does not fit is the VTOC line's fault
            vtoc_size(dev, ctl.volume.cyls or model_cyls, vtoc_tracks)
        except EmulatorError as exc:
            raise exc.located(ctl_path, f"line {ctl.vtoc_line}") from None
    vol = None
    current = f"line {ctl.volume.line}"
    try:
        vol = Volume.create(
            image_path,
            ctl.volume.devtype,
            ctl.volume.volser,
            cyls=ctl.volume.cyls,
            compress=compress,
            cckd64=cckd64,
            vtoc_tracks=vtoc_tracks,
        )
        # One transaction: the tracks reach the file together (and journal once).
        with vol.transaction():
            for stmt, records, source in plans:
                current = f"line {stmt.line}"
                if source is not None:
                    _load_unload_stmt(vol, stmt, source)
                    continue
                primary = stmt.primary
                if primary is None:  # unit without quantity: as much as the data needs
                    need = _tracks_needed(dev, stmt, records or [])
                    primary = need if stmt.unit == "TRK" else max(1, math.ceil(need / dev.heads))
                info = vol.allocate(
                    stmt.dsname,
                    dsorg=stmt.dsorg or "PS",
                    recfm=stmt.recfm or ("FB" if stmt.lrecl else "U"),
                    lrecl=stmt.lrecl,
                    blksize=stmt.blksize or None,
                    keylen=stmt.keylen,
                    space=(stmt.unit, primary, stmt.secondary),
                    dirblks=stmt.dirblks,
                )
                if records:
                    io.write_records(vol, info, records)
    except BaseException as exc:
        if vol is not None:
            try:
                vol.close()
            except Exception:  # noqa: BLE001 - the first error is the one to report
                pass
        _remove_image(image_path)
        if isinstance(exc, EmulatorError):
            # Report against the control file line: that is what the user edits.
            exc.path = os.fspath(ctl_path)
            exc.where = f"{current}: {exc.where}" if exc.where else current
            exc.args = (str(exc),)
            raise exc from None
        raise
    return vol


def _unload_source(stmt: DatasetStmt, data: bytes, file: Path, ctl_path, where: str):
    """Read the XMIT file or unload of an XMIT/XMSEQ/VS statement before anything is
    written: ("pds", unload, XmitFile or None) or ("seq", None, XmitFile).  An error
    names the control file line and the input file's place."""
    from emulator.interchange import unload as ul
    from emulator.interchange import xmit

    try:
        if stmt.method == "VS":
            return ("pds", ul.parse_unload_bytes(data, os.fspath(file)), None)
        tx = xmit.read_xmit(data)
        tx.path = os.fspath(file)
        if stmt.method == "XMIT":
            pdses = [f for f in tx.files if f.kind == "pds"]
            if len(pdses) != 1:
                what = (
                    "no IEBCOPY unload (XMSEQ loads a sequential data set)"
                    if not pdses
                    else (f"{len(pdses)} PDSes; one statement loads one")
                )
                raise FormatError(f"the XMIT file holds {what}")
            return ("pds", xmit.read_pds(pdses[0]), pdses[0])
        # A transmission of only a message is loaded as that message (it is a
        # sequential file); next to a PDS it is not what XMSEQ asks for.
        seqs = [f for f in tx.files if f.kind == "sequential"] or (
            tx.messages if not tx.datasets else []
        )
        if len(seqs) != 1:
            what = (
                "a PDS (load it with XMIT)"
                if any(f.kind == "pds" for f in tx.files)
                else "no data set"
            )
            if len(seqs) > 1:
                what = f"{len(seqs)} sequential data sets; one statement loads one"
            raise FormatError(f"the XMIT file holds {what}")
        return ("seq", None, seqs[0])
    except EmulatorError as exc:
        inner = ": ".join(p for p in (file.name, exc.where, exc.message) if p)
        raise type(exc)(inner, ctl_path, where) from None


def _load_unload_stmt(vol, stmt: DatasetStmt, source) -> None:
    """Allocate and load one XMIT/XMSEQ/VS data set (inside the load's transaction)."""
    from emulator.interchange import xmit

    kind, unload, xfile = source
    space = (stmt.unit, stmt.primary, stmt.secondary)
    if kind == "seq":
        xmit.store_sequential(vol, stmt.dsname, xfile, space=space)
        return
    dcb = xmit.xmit_dcb(xfile) if xfile is not None else None
    dirblks = max(stmt.dirblks, xfile.dirblks if xfile is not None else 0)
    xmit.store_pds(vol, stmt.dsname, unload, dcb, dirblks, space=space)


def _remove_image(image_path: Path) -> None:
    """Delete a half-made image, its undo journal and change map (nothing else: other
    files that share its name prefix belong to the user)."""
    from emulator.image import side_files

    for p in (image_path, *map(Path, side_files(os.fspath(image_path)))):
        try:
            p.unlink()
        except OSError:
            pass


__all__ = ["ControlFile", "DatasetStmt", "VolumeStmt", "load", "parse", "records_for", "text_lines"]
