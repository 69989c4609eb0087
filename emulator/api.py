"""The public facade: data set access that feels like the mainframe.

    from emulator import api
    with api.open_volume("work.3390", writable=True) as vol:
        with api.open_dataset(vol, "SYS1.PARMLIB(IEASYS00)", "w", codepage="1047") as out:
            out.write("CLPA,")
        for line in api.read_text(vol, "SYS1.PARMLIB(IEASYS00)"):
            print(line)

    with api.open_system(["res.3390", "work.cckd"]) as system:
        for vol, info in system.datasets():
            ...

A data set is named as ``DSN`` or ``DSN(MEMBER)``; quotes around it are accepted.
Text goes through a code page (default 1047); bytes are the logical records.
Every write is one transaction on the image.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from emulator.codepage import DEFAULT as DEFAULT_CODEPAGE
from emulator.errors import ConflictError, EmulatorError, FormatError, NotFoundError
from emulator.volume.dscb import DatasetInfo, validate_dsname
from emulator.volume.volume import Volume


def parse_dsn(text: str) -> tuple[str, str | None]:
    """``'SYS1.MACLIB(GETMAIN)'`` -> ``("SYS1.MACLIB", "GETMAIN")``; validates both names."""
    from emulator.pds.directory import validate_name

    raw = text.strip()
    if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "'\"":
        raw = raw[1:-1]
    member = None
    match = re.fullmatch(r"([^()]+)\(([^()]*)\)", raw)
    if match:
        raw, member = match.group(1), validate_name(match.group(2))
    return validate_dsname(raw), member


def open_volume(
    path: str | os.PathLike,
    writable: bool = False,
    *,
    ignore_opened: bool = False,
    lock_wait: float | None = None,
) -> Volume:
    """Open one volume image (plain, split, CCKD or CCKD64).

    A writable open holds the image's writer lock until ``close()``: another writer
    is waited for up to ``lock_wait`` seconds (default ``$DASD_LOCK_WAIT`` or 5), then
    refused (ConflictError); readers are never blocked.  ``ignore_opened``: write a
    compressed image whose header says an emulator has it open (docs/RELIABILITY.md).
    """
    return Volume.open(path, writable, ignore_opened=ignore_opened, lock_wait=lock_wait)


def create_volume(
    path: str | os.PathLike,
    devtype: str,
    volser: str,
    cyls: int | None = None,
    compress: str | None = None,
    cckd64: bool = False,
) -> Volume:
    """Create and initialise a volume (IPL records, VOL1, VTOC with F4 and F5)."""
    return Volume.create(path, devtype, volser, cyls=cyls, compress=compress, cckd64=cckd64)


class System:
    """A set of volumes opened together: a production system or a hot site."""

    def __init__(self, volumes: list[Volume]):
        self.volumes = volumes
        seen: dict[str, str] = {}
        for vol in volumes:
            if vol.volser in seen:
                raise ConflictError(
                    f"volser {vol.volser} is on both {seen[vol.volser]} and {vol.path}"
                )
            seen[vol.volser] = vol.path

    def volume(self, volser: str) -> Volume:
        for vol in self.volumes:
            if vol.volser == volser.upper():
                return vol
        raise NotFoundError(f"no volume {volser.upper()} in this system")

    def datasets(self) -> Iterator[tuple[Volume, DatasetInfo]]:
        for vol in self.volumes:
            for info in vol.datasets():
                yield vol, info

    def locate(self, dsn_text: str) -> tuple[Volume, DatasetInfo]:
        """The volume holding a data set (the catalog's job on a real system)."""
        dsname, _ = parse_dsn(dsn_text)
        for vol in self.volumes:
            try:
                return vol, vol.dataset(dsname)
            except NotFoundError:
                continue
        raise NotFoundError(f"data set {dsname} is on none of the {len(self.volumes)} volumes")

    def open(self, dsn_text: str, mode: str = "r", codepage: str | None = None) -> DatasetFile:
        vol, _ = self.locate(dsn_text)
        return open_dataset(vol, dsn_text, mode, codepage)

    def sync(self) -> None:
        """Wait until every volume's commits are on disk (``background_flush``)."""
        for vol in self.volumes:
            vol.sync()

    def close(self) -> None:
        for vol in self.volumes:
            vol.close()

    def __enter__(self) -> System:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_system(
    paths: Iterable[str | os.PathLike],
    writable: bool = False,
    *,
    ignore_opened: bool = False,
    lock_wait: float | None = None,
    background_flush: bool = False,
) -> System:
    """Open several volume images as one system; closes what it opened on failure.

    Options as for :func:`open_volume`.  ``background_flush``: a commit returns once
    its bytes are written and a thread flushes them to disk, so one volume's flush
    overlaps the next volume's work; :meth:`System.sync` (or closing) waits for them
    (``emulator.image.journal``: until then a crash rolls the commit back).  Writer
    locks are taken in the order of the images' real paths (``System.volumes`` keeps
    the order given), so two writers of overlapping systems never wait for each other
    in a circle.
    """
    given = [os.fspath(p) for p in paths]
    order = sorted(range(len(given)), key=lambda i: os.path.realpath(given[i]))
    opened: dict[int, Volume] = {}
    try:
        for i in order:
            opened[i] = open_volume(
                given[i], writable, ignore_opened=ignore_opened, lock_wait=lock_wait
            )
            opened[i].image.background_flush = background_flush
        return System([opened[i] for i in range(len(given))])
    except BaseException:
        for vol in opened.values():
            vol.close()
        raise


# -- reading ------------------------------------------------------------------------
def _pds(vol: Volume, dsname: str):
    from emulator.pds.pds import Pds

    return Pds(vol, dsname)


def read_records(vol: Volume, dsn_text: str) -> list[bytes]:
    """Logical records of a sequential data set or of a member (data only, no RDW)."""
    from emulator.dataset import io

    dsname, member = parse_dsn(dsn_text)
    info = vol.dataset(dsname)
    if member is not None:
        if info.dsorg_raw & 0x0200 == 0:
            raise FormatError(
                f"{dsname} is not partitioned (DSORG {info.dsorg or '?'})", vol.path, vol.volser
            )
        return _pds(vol, dsname).read(member)
    if info.dsorg_raw & 0x0200:
        raise FormatError(
            f"{dsname} is partitioned: name a member, as {dsname}(MEMBER)", vol.path, vol.volser
        )
    return io.read_records(vol, info)


def read_bytes(vol: Volume, dsn_text: str) -> bytes:
    """The logical records' bytes concatenated, as Hercules ``dasdcat`` prints them."""
    return b"".join(read_records(vol, dsn_text))


def read_text(vol: Volume, dsn_text: str, codepage: str = DEFAULT_CODEPAGE) -> list[str]:
    """One str per logical record, decoded from EBCDIC (trailing blanks of F records dropped)."""
    from emulator.dataset.records import records_to_lines

    dsname, _ = parse_dsn(dsn_text)
    recfm = vol.dataset(dsname).recfm_raw
    return records_to_lines(read_records(vol, dsn_text), codepage, recfm=recfm)


# -- writing ------------------------------------------------------------------------
@dataclass(frozen=True)
class Dcb:
    """Data control block attributes for a new data set."""

    dsorg: str = "PS"
    recfm: str = "FB"
    lrecl: int = 80
    blksize: int | None = None
    keylen: int = 0


def _to_records(
    info: DatasetInfo, data: Iterable[bytes] | Iterable[str], text: bool, codepage: str
) -> list[bytes]:
    if text:
        from emulator.dataset.records import lines_to_records

        return lines_to_records(list(data), info.recfm_raw, info.lrecl, codepage)
    return [bytes(r) for r in data]


def _dataset_for_write(
    vol: Volume,
    dsname: str,
    member: str | None,
    dcb: Dcb | None,
    space: tuple[str, int, int] | None,
    dirblks: int,
) -> DatasetInfo:
    """The data set a write goes to, allocated from ``dcb`` and ``space`` when missing."""
    try:
        return vol.dataset(dsname)
    except NotFoundError:
        if dcb is None or space is None:
            raise NotFoundError(
                f"data set {dsname} does not exist; give DCB and space attributes to allocate it",
                vol.path,
                vol.volser,
            ) from None
    dsorg = "PO" if member is not None else dcb.dsorg
    return vol.allocate(
        dsname,
        dsorg=dsorg,
        recfm=dcb.recfm,
        lrecl=dcb.lrecl,
        blksize=dcb.blksize,
        keylen=dcb.keylen,
        space=space,
        dirblks=dirblks or (5 if dsorg == "PO" else 0),
    )


def write(
    vol: Volume,
    dsn_text: str,
    data: Iterable[bytes] | Iterable[str],
    text: bool = False,
    codepage: str = DEFAULT_CODEPAGE,
    dcb: Dcb | None = None,
    space: tuple[str, int, int] | None = None,
    dirblks: int = 0,
    userid: str = "IBMUSER",
) -> DatasetInfo:
    """Replace a sequential data set's content, or add/replace a member.

    A data set that does not exist is allocated only when ``dcb`` and ``space`` are
    given; otherwise NotFoundError.
    """
    from emulator.dataset import io

    dsname, member = parse_dsn(dsn_text)
    with vol.transaction():
        info = _dataset_for_write(vol, dsname, member, dcb, space, dirblks)
        records = _to_records(info, data, text, codepage)
        if member is not None:
            if info.dsorg_raw & 0x0200 == 0:
                raise FormatError(
                    f"{dsname} is not partitioned; cannot write member {member}",
                    vol.path,
                    vol.volser,
                )
            _pds(vol, dsname).write(member, records, userid=userid)
        else:
            if info.dsorg_raw & 0x0200:
                raise FormatError(f"{dsname} is partitioned: name a member", vol.path, vol.volser)
            io.write_records(vol, info, records)
    return vol.dataset(dsname)


def write_bytes(
    vol: Volume,
    dsn_text: str,
    data: bytes,
    dcb: Dcb | None = None,
    space: tuple[str, int, int] | None = None,
    dirblks: int = 0,
    userid: str = "IBMUSER",
) -> DatasetInfo:
    """Replace a data set's or member's content with a byte stream cut into records.

    The stream is cut by the RECFM of the data set (of the new one, from ``dcb``, when
    it is allocated here as :func:`write` does), as
    :func:`emulator.dataset.records.split_bytes` does it: F/FB/FBS into LRECL-byte
    records with the last padded with X'00' (what Hercules ``dasdload`` SEQ does), V/VB
    into records of LRECL-4 data bytes (LRECL=X: 32752), U into BLKSIZE-byte blocks.
    Empty data leaves an empty data set (or member).  One transaction.
    """
    from emulator.dataset.records import split_bytes

    dsname, member = parse_dsn(dsn_text)
    with vol.transaction():
        info = _dataset_for_write(vol, dsname, member, dcb, space, dirblks)
        records = split_bytes(info.recfm_raw, info.lrecl, info.blksize, data)
        return write(vol, dsn_text, records, dcb=dcb, space=space, dirblks=dirblks, userid=userid)


class DatasetFile:
    """A data set or member opened for reading or writing records.

    Reading yields records (bytes, or str with a code page).  Writing collects records
    and replaces the content at ``close()`` in one transaction; an exception inside
    the ``with`` block writes nothing.
    """

    def __init__(self, vol: Volume, dsn_text: str, mode: str, codepage: str | None):
        if mode not in ("r", "w", "rb", "wb"):
            raise ValueError(f"mode must be 'r' or 'w' (optionally with 'b'), not {mode!r}")
        self.vol = vol
        self.name = dsn_text
        self.mode = mode[0]
        self.codepage = None if "b" in mode else codepage
        self._records: list = []
        self._closed = False
        if self.mode == "r":
            self._records = (
                read_text(vol, dsn_text, self.codepage)
                if self.codepage
                else read_records(vol, dsn_text)
            )
        else:
            parse_dsn(dsn_text)

    def __iter__(self) -> Iterator:
        if self.mode != "r":
            raise ConflictError(f"{self.name} is open for writing")
        return iter(self._records)

    def read(self) -> list:
        return list(self)

    def write(self, record: bytes | str) -> None:
        if self.mode != "w" or self._closed:
            raise ConflictError(f"{self.name} is not open for writing")
        self._records.append(record)

    def writelines(self, records: Iterable[bytes | str]) -> None:
        for rec in records:
            self.write(rec)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self.mode == "w":
            write(
                self.vol,
                self.name,
                self._records,
                text=self.codepage is not None,
                codepage=self.codepage or DEFAULT_CODEPAGE,
            )

    def __enter__(self) -> DatasetFile:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self._closed = True  # an exception inside the block writes nothing
            return
        self.close()


def open_dataset(
    vol: Volume, dsn_text: str, mode: str = "r", codepage: str | None = None
) -> DatasetFile:
    """Open ``DSN`` or ``DSN(MEMBER)``: mode 'r'/'w' with a code page for text, 'rb'/'wb' for bytes."""
    if codepage is None and "b" not in mode:
        codepage = DEFAULT_CODEPAGE
    return DatasetFile(vol, dsn_text, mode, codepage)


# -- listing and housekeeping -------------------------------------------------------
def list_datasets(vol: Volume) -> list[DatasetInfo]:
    return vol.datasets()


def list_members(vol: Volume, dsn: str) -> list[dict]:
    """Members with TTR, user data and ISPF statistics, as plain dicts (JSON-ready)."""
    dsname, _ = parse_dsn(dsn)
    out = []
    for entry in _pds(vol, dsname).members():
        stats = entry.ispf
        out.append(
            {
                "name": entry.name,
                "alias_of": entry.alias_of,
                "ttr": f"{entry.ttr[0]:04X}{entry.ttr[1]:02X}",
                "userdata": entry.userdata.hex().upper(),
                "ispf": stats.as_dict() if stats is not None else None,
            }
        )
    return out


def allocate(
    vol: Volume,
    dsn: str,
    dsorg: str = "PS",
    recfm: str = "FB",
    lrecl: int = 80,
    blksize: int | None = None,
    space: tuple[str, int, int] = ("TRK", 1, 1),
    dirblks: int = 0,
    keylen: int = 0,
) -> DatasetInfo:
    dsname, member = parse_dsn(dsn)
    if member is not None:
        raise FormatError(f"allocate a data set, not a member ({dsn})")
    return vol.allocate(
        dsname,
        dsorg=dsorg,
        recfm=recfm,
        lrecl=lrecl,
        blksize=blksize,
        keylen=keylen,
        space=space,
        dirblks=dirblks,
    )


def remove(vol: Volume, dsn_text: str) -> None:
    """Scratch a data set, or delete a member (and its aliases) from a PDS."""
    dsname, member = parse_dsn(dsn_text)
    if member is None:
        vol.scratch(dsname)
    else:
        _pds(vol, dsname).delete(member)


def rename(vol: Volume, old: str, new: str) -> None:
    """Rename a data set (``OLD NEW``) or a member (``DSN(OLD) NEW`` or ``DSN(OLD) DSN(NEW)``)."""
    dsname, member = parse_dsn(old)
    if member is None:
        new_dsn, new_member = parse_dsn(new)
        if new_member is not None:
            raise FormatError("rename a data set to a data set name, not a member")
        vol.rename(dsname, new_dsn)
        return
    target = new.strip().strip("'\"").upper()
    if "(" in target:
        new_dsn, new_member = parse_dsn(target)
        if new_dsn != dsname:
            raise FormatError("a member can only be renamed within its own data set")
    else:
        _, new_member = parse_dsn(f"{dsname}({target})")
    _pds(vol, dsname).rename(member, new_member)


def check(vol: Volume) -> list[str]:
    """Findings of a consistency check of VTOC, free space, extents and directories."""
    findings = list(vol.check())
    for info in vol.datasets():
        if info.dsorg_raw & 0x0200 and info.used_tracks:
            try:
                findings.extend(_pds(vol, info.dsname).check())
            except EmulatorError as exc:  # a damaged directory is a finding, not a crash
                findings.append(str(exc))
    return findings


def convert(
    src: str | os.PathLike,
    dst: str | os.PathLike,
    compress: str | None = None,
    cckd64: bool = False,
) -> None:
    """Copy an image between plain, CCKD and CCKD64 forms (all tracks, all-or-nothing)."""
    from emulator.image import convert_image

    convert_image(os.fspath(src), os.fspath(dst), compress=compress, cckd64=cckd64)


__all__ = [
    "parse_dsn",
    "open_volume",
    "create_volume",
    "open_system",
    "System",
    "open_dataset",
    "DatasetFile",
    "Dcb",
    "read_records",
    "read_bytes",
    "read_text",
    "write",
    "write_bytes",
    "list_datasets",
    "list_members",
    "allocate",
    "remove",
    "rename",
    "check",
    "convert",
]
