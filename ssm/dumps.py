"""Dumps as export sources: XMIT files, IEBCOPY unload files and tapes.

``ssm export --full`` turns an existing dump into a basket so it can seed the hot-site
loop.  A source that is not a volume image is staged onto a scratch 3390 volume (one
per dump file, in a temporary folder) through the emulator's interchange readers, and
that volume is exported like any image:

* an XMIT file: every data set it transmits (TSO RECEIVE; message files are skipped);
* an IEBCOPY unload file: one PDS named ``DUMP.<file stem>`` (an unload does not carry
  its data set's name);
* a tape (AWS/HET): every data set on it, under its HDR1 name: unloads become PDSes,
  XMIT files on tape are received, other files become sequential data sets with the
  DCB of their HDR2 label.

The volser of a scratch volume is ``DUMPnn``; the importer places new data sets by
volser or free space (docs/import.md).
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

from emulator import api
from emulator.errors import EmulatorError, FormatError
from emulator.image import read_header

TRACK_BYTES = 40_000  # a conservative payload per 3390 track for sizing scratch volumes


def is_image(path: str | os.PathLike) -> bool:
    """True when ``path`` starts with a Hercules CKD device header."""
    try:
        read_header(os.fspath(path))
    except EmulatorError:
        return False
    return True


def stage(paths: list[str], folder: str) -> list[str]:
    """Image paths for ``paths``: images as they are, dumps staged onto new volumes."""
    out: list[str] = []
    for n, path in enumerate(paths, start=1):
        if is_image(path):
            out.append(path)
            continue
        out.append(_stage_one(path, os.path.join(folder, f"dump{n:02d}.3390"), f"DUMP{n:02d}"))
    return out


def _scratch_volume(image: str, volser: str, source_bytes: int):
    tracks = 3 * source_bytes // TRACK_BYTES + 200
    cyls = min(65520, max(10, -(-tracks // 15)))
    return api.create_volume(image, "3390", volser, cyls=cyls)


def _stage_one(path: str, image: str, volser: str) -> str:
    from emulator.interchange import tape, unload, xmit

    data_size = os.path.getsize(path)
    with open(path, "rb") as fh:
        head = fh.read(16)
    kind = _sniff(head)
    if kind is None:
        raise FormatError("not a volume image, an XMIT file, an IEBCOPY unload or a tape", path)
    with _scratch_volume(image, volser, data_size) as vol:
        if kind == "xmit":
            _receive(xmit, path, vol, None)
        elif kind == "unload":
            unload.load_unload(vol, _dump_name(path), unload.read_unload_file(path))
        else:
            _stage_tape(path, vol, tape, unload, xmit)
    return image


def _sniff(head: bytes) -> str | None:
    if len(head) >= 8 and head[1] in (0xE0, 0xC0) and head[2:8] == "INMR01".encode("cp037"):
        return "xmit"
    # COPYR1's eye-catcher: after the flag byte, behind no, an SDW, or a BDW+SDW
    if any(head[at : at + 3] == b"\xca\x6d\x0f" for at in (1, 5, 9)):
        return "unload"
    if len(head) >= 6:
        return "tape"  # read_tape decides, with a clear error if it is not one
    return None


def _stage_tape(path: str, vol, tape, unload, xmit) -> None:
    used: set[str] = set()
    with tempfile.TemporaryDirectory(prefix="ssm-tape-") as tmp:
        for info in tape.tape_ls(path):
            number, dsname = info["number"], info.get("dsname") or ""
            out = os.path.join(tmp, f"file{number}")
            got = tape.tape_get(path, number, out)
            name = _dsname(dsname, path, number)
            if name in used:  # two tape files under one HDR1 name (e.g. both "MVSDDT")
                name = f"{_dump_name(path)}.F{number:04d}"
            used.add(name)
            if got["kind"] == tape.KIND_UNLOAD:
                unload.load_unload(vol, name, unload.read_unload_file(out))
            elif got["kind"] == tape.KIND_XMIT:
                _receive(xmit, out, vol, name)
            elif got["kind"] == tape.KIND_SEQUENTIAL:
                dcb = api.Dcb(
                    dsorg="PS",
                    recfm=info.get("recfm") or "U",
                    lrecl=int(info.get("lrecl") or 0),
                    blksize=int(info.get("blksize") or 32760),
                )
                tracks = 2 * os.path.getsize(out) // TRACK_BYTES + 2
                api.write_bytes(
                    vol, name, Path(out).read_bytes(), dcb=dcb, space=("TRK", tracks, 15)
                )


def _receive(xmit, path: str, vol, name: str | None) -> None:
    """TSO RECEIVE.  A transmission of one data set is stored under ``name`` when given
    (its tape label name: the same library may also be on the tape as an unload), else
    under its INMDSNAM, else under ``DUMP.<file stem>``."""
    files = xmit.read_xmit(path).datasets
    if len(files) != 1:
        xmit.receive(path, vol)
        return
    xmit.receive(path, vol, dsname=name or (None if files[0].dsname else _dump_name(path)))


def _dump_name(path: str) -> str:
    stem = re.sub(r"[^A-Z0-9]", "", Path(path).stem.upper())[:8] or "UNLOAD"
    if not stem[0].isalpha():
        stem = "U" + stem[:7]
    return f"DUMP.{stem}"


def _dsname(label_name: str, path: str, number: int) -> str:
    name = label_name.strip().upper()
    try:
        return api.parse_dsn(name)[0] if name else f"{_dump_name(path)}.F{number:04d}"
    except EmulatorError:
        return f"{_dump_name(path)}.F{number:04d}"
