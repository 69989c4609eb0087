"""Helpers that run the Hercules 3.13 DASD utilities as an independent oracle.

What we write, Hercules must read identically; what Hercules writes, we must read.  The
tools' quirks and every difference the tests tolerate are collected in the "Tolerated
differences" section below, each with its reason, so no test carries its own exception.
Byte formats are in FORMATS.md (sections 1-2 images, 5 VTOC, 6 PDS, 10 code pages).
"""

from __future__ import annotations

import datetime
import itertools
import os
import re
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

import pytest

TOOLS = ("dasdinit", "dasdload", "dasdls", "dasdcat", "dasdseq", "dasdpdsu", "dasdcopy", "cckdcdsk")
TIMEOUT = 120  # seconds; every tool finishes in well under a second on test volumes

# A Hercules message line, e.g. "HHCDU024E Dataset NO.SUCH not found in VTOC".
HHC_LINE = re.compile(rb"HHC[A-Z]{2}\d{3}[A-Z] [^\n]*(\n|$)")
HHC_ERROR = re.compile(r"^HHC[A-Z]{2}\d{3}[ES] .*$", re.MULTILINE)
HHC_PROBLEM = re.compile(r"^HHC[A-Z]{2}\d{3}[EWS] .*$", re.MULTILINE)

# ---------------------------------------------------------------------------------------
# Tolerated differences (the only place they are allowed)
# ---------------------------------------------------------------------------------------

# dasdcat exits 1 even when it printed the member (dasdcat.c returns its "not finished"
# flag), so its exit code says nothing; errors are recognised by HHC...E lines instead.
DASDCAT_OK_CODES = (0, 1)

# dasdls, dasdseq, dasdpdsu, dasdinit and cckdcdsk exit 0 after most errors; an error shows
# only as an HHC...E line (or, for a few, a plain sentence) on stderr or stdout.  Warnings
# (HHC...W) are not errors for run(); cckdcdsk() counts them as findings.
PLAIN_ERROR_TEXTS = ("F4DSCB record not found", "getF4dscb erroneous", "only supports RECFM")

# When a compressed image's header has the OPENED bit (FORMATS.md 2.3), every tool prints
# "HHCCU600W ... forcing check level 1; file not closed" on *stdout* before the data.  Only
# such lines at the very start of the output are removed; data that happens to contain
# "HHC" later is left alone.

# dasdcat prints a member's blocks as they are on disk.  For RECFM F and U that is the
# records concatenated, which is what `dasd cat` prints; for RECFM V dasdcat includes the
# BDW and RDWs while `dasd cat` prints the records' data only.  Compare V members by
# records, not with dasdcat_member().
DASDCAT_PRINTS_V_DESCRIPTORS = True

# dasdcopy to a compressed image now and then dies of SIGSEGV after it has printed that all
# cylinders were written: a race in 3.13's compressed-file close, seen about once in 400
# copies with the other cores busy and never on an idle machine.  The half-made copy is
# removed and the copy run again; a second crash in a row is a real failure.
DASDCOPY_SIGNAL_RETRIES = 2

# dasdload TEXT uses its own built-in ASCII->EBCDIC table (FORMATS.md 10): 1047 brackets,
# but "|" becomes X'6A' where code page 1047 has X'4F'.  Text loaded by our loader with
# code page 1047 therefore differs from Hercules' in exactly that byte.
HERCULES_TEXT_TABLE_DIFFS = {ord("|"): (0x4F, 0x6A)}

# dasdload TEXT drops the last character of a final line that has no newline (it always
# chops the "line end").  Our loader keeps it; comparisons feed files ending in "\n".
HERCULES_TEXT_DROPS_LAST_CHAR_WITHOUT_NEWLINE = True

# dasdload stores tm_yday (counting from 0) as the day of DS1CREDT, so the creation dates
# it writes are one day early (SOURCES.md #18).
HERCULES_CREATED_DAY_SKEW = datetime.timedelta(days=1)

# Hercules 3.13 cannot open CCKD64 (CKD_C064) images at all ("HHCDU011E CKD header
# invalid"); they need Hercules 4.x.  Tests convert to CCKD or plain CKD to use the oracle.
HERCULES_READS_CCKD64 = False

# cckdcdsk only checks compressed images; on a plain CKD image it says "not a compressed
# dasd file", which is not a finding.
CCKDCDSK_NOT_COMPRESSED = "not a compressed dasd file"

# dasdseq -expert -abs reads the tracks it is given and then asks for the next one, so it
# always ends with "HHCDU007E Track n not found in extent table" (and "fbcopy convert_tt
# track n, rc -1"); that is its normal end, not an error.  Its exit code is the last
# internal return code, so dasdseq_abs() checks the output file instead.
DASDSEQ_ABS_END = re.compile(r"HHCDU007E Track \d+ not found in extent table")

# dasdload and our loader choose different track positions for data sets and the VTOC
# (dasdload puts the VTOC after the last data set unless a VTOC line says otherwise), so
# oracle comparisons are by names and contents, never by placement.


def hercules_text(ours: bytes) -> bytes:
    """Map bytes our TEXT loader wrote (code page 1047) to what dasdload TEXT writes."""
    table = bytes(range(256))
    for ours_byte, herc_byte in HERCULES_TEXT_TABLE_DIFFS.values():
        table = table[:ours_byte] + bytes([herc_byte]) + table[ours_byte + 1 :]
    return ours.translate(table)


# ---------------------------------------------------------------------------------------
# Running the tools
# ---------------------------------------------------------------------------------------


class OracleError(AssertionError):
    """A Hercules utility failed or reported an error; the message holds its output and
    `returncode` the exit code (negative for a signal, None when it timed out)."""

    returncode: int | None = None


def have_hercules() -> bool:
    """True when every Hercules 3.13 utility the tests use is on PATH."""
    return all(shutil.which(t) for t in TOOLS)


hercules_required = pytest.mark.skipif(
    not have_hercules(), reason="Hercules utilities not installed"
)


def run(
    tool: str, *args: str | os.PathLike, cwd: str | os.PathLike | None = None, ok_codes=(0,)
) -> subprocess.CompletedProcess:
    """Run a Hercules utility with bytes output; raise OracleError on a bad exit code or
    on an error message (see the tolerated differences above for why both are checked)."""
    argv = [tool, *(os.fspath(a) for a in args)]
    try:
        proc = subprocess.run(
            argv, cwd=cwd, capture_output=True, timeout=TIMEOUT, stdin=subprocess.DEVNULL
        )
    except subprocess.TimeoutExpired as exc:
        raise OracleError(f"{' '.join(argv)}: timed out after {TIMEOUT} s") from exc
    err = proc.stderr.decode("latin-1")
    out_head = _hhc_prefix(proc.stdout)[0].decode("latin-1")
    problem = HHC_ERROR.search(err) or HHC_ERROR.search(out_head)
    plain = [t for t in PLAIN_ERROR_TEXTS if t in err or t in proc.stdout.decode("latin-1")]
    if problem and tool == "cckdcdsk":
        problem = None  # cckdcdsk findings are returned by cckdcdsk(), not raised
    if proc.returncode not in ok_codes or problem or plain:
        failure = OracleError(
            f"{' '.join(argv)} exited {proc.returncode}\n"
            f"stdout: {proc.stdout[:2000].decode('latin-1')}\nstderr: {err[-2000:]}"
        )
        failure.returncode = proc.returncode
        raise failure
    return proc


def _hhc_prefix(data: bytes) -> tuple[bytes, bytes]:
    """Split leading HHC message lines from data: (messages, rest)."""
    pos = 0
    while m := HHC_LINE.match(data, pos):
        pos = m.end()
    return data[:pos], data[pos:]


def _strip_hhc(data: bytes) -> bytes:
    return _hhc_prefix(data)[1]


# ---------------------------------------------------------------------------------------
# One helper per question the tests ask
# ---------------------------------------------------------------------------------------


def dasdls(image: str | os.PathLike) -> list[str]:
    """Data set names on the volume, in VTOC order, as `dasdls` lists them.

    Output: a line "<image>: VOLSER=<volser>", then one line per data set with the name
    padded to 44 columns (plus an optional "Dsname ..." header line with -hdr)."""
    proc = run("dasdls", image)
    return [row["dsname"] for row in _parse_dasdls(proc.stdout, info=False)]


def dasdls_info(image: str | os.PathLike) -> list[dict]:
    """`dasdls -hdr -info` rows: dsname, created (YYDDD text), dsorg, recfm, lrecl,
    blksize, keylen, tracks, used_pct, extents, sec_unit, sec_qty."""
    proc = run("dasdls", "-hdr", "-info", image)
    return _parse_dasdls(proc.stdout, info=True)


# dasdls -info prints fixed-width columns under the header
#   "Dsname<pad to 44> CREDT ORG RECFM LRECL BLKSZ Key  Trks%Use#Ext 2ndry_alloc"
# (dasdls.c: " %5s", " %s%s", " %-5s", " %5d" or six blanks when LRECL is 0, " %5d",
# " %3d", then " %5d" tracks, " %3.0f" %used, " %3d" extents, " %3s%8d" unit and
# quantity).  A blank LRECL (RECFM U) makes a whitespace split read the wrong columns,
# so the fixed columns are cut at the positions of the header labels; the tail from
# "Trks" on is split on blanks because a track count over 99999 widens its column.
_DASDLS_FIXED = (
    ("created", "CREDT"),
    ("dsorg", "ORG"),
    ("recfm", "RECFM"),
    ("lrecl", "LRECL"),
    ("blksize", "BLKSZ"),
    ("keylen", "Key"),
)


def _dasdls_columns(header: str) -> list[tuple[str, int, int]]:
    """(key, start, end) of each fixed column: from the end of the previous header label
    to the end of its own (numbers are right-aligned under their label)."""
    cols = []
    pos = header.index("Dsname")
    prev_end = len(header.split(" CREDT")[0])  # the name column ends before " CREDT"
    cols.append(("dsname", pos, prev_end))
    for key, label in _DASDLS_FIXED:
        at = header.index(" " + label, prev_end) + 1
        end = at + len(label)
        cols.append((key, prev_end, end))
        prev_end = end
    return cols


def _dasdls_tail(text: str) -> dict:
    """Tracks, %used (blank when the data set has no space), extents, unit, quantity."""
    f = text.split()
    if len(f) == 4 or (len(f) == 3 and f[-1] == "ABSTR"):
        f.insert(1, "")  # %used left blank
    keys = ("tracks", "used_pct", "extents", "sec_unit", "sec_qty")
    return dict(zip(keys, f, strict=False))


def _parse_dasdls(stdout: bytes, info: bool) -> list[dict]:
    rows = []
    columns = None
    for line in _strip_hhc(stdout).decode("latin-1").splitlines():
        if line.startswith("Dsname"):
            columns = _dasdls_columns(line)
            continue
        if not line.strip() or "VOLSER=" in line:
            continue
        if not info:
            rows.append({"dsname": line.split()[0]})
            continue
        if columns is None:
            raise OracleError(f"dasdls -info printed a row before its header: {line!r}")
        row = {key: line[start:end].strip() for key, start, end in columns}
        row.update(_dasdls_tail(line[columns[-1][2] :]))
        row["lrecl"] = row["lrecl"] or "0"  # dasdls leaves LRECL 0 blank
        for k in ("lrecl", "blksize", "keylen", "tracks", "used_pct", "extents", "sec_qty"):
            if k in row and re.fullmatch(r"-?\d+", row[k]):
                row[k] = int(row[k])
            elif k == "used_pct" and row.get(k) == "":
                row[k] = None
        rows.append(row)
    return rows


def dasdcat_member(image: str | os.PathLike, dsn: str, member: str) -> bytes:
    """Raw bytes of a PDS member (its blocks concatenated, no conversion).

    dasdcat prints nothing, and no message, for a member that does not exist; callers
    that need to tell "empty" from "missing" check dasdcat_members() too."""
    proc = run("dasdcat", "-i", image, f"{dsn}/{member}", ok_codes=DASDCAT_OK_CODES)
    return _strip_hhc(proc.stdout)


def dasdcat_members(image: str | os.PathLike, dsn: str) -> list[str]:
    """Member names (aliases included) in directory order, upper case.

    `dasdcat DSN/?` prints them in lower case, one per line, the last without a newline."""
    proc = run("dasdcat", "-i", image, f"{dsn}/?", ok_codes=DASDCAT_OK_CODES)
    text = _strip_hhc(proc.stdout).decode("latin-1")
    return [n.strip().upper() for n in text.splitlines() if n.strip()]


def dasdcat_dataset(image: str | os.PathLike, dsn: str) -> bytes:
    """Raw bytes of a sequential data set (records concatenated).

    dasdcat 3.13 refuses non-PDS data sets ("HHCDT004E non-PDS-members not yet
    supported"), so this reads through dasdseq (RECFM=F/FB only)."""
    with tempfile.TemporaryDirectory(prefix="dasdseq-") as tmp:
        return dasdseq(image, dsn, Path(tmp))


_counter = itertools.count()


def _fresh_dir(tmp_path: str | os.PathLike, prefix: str) -> Path:
    d = Path(tmp_path) / f"{prefix}-{next(_counter)}"
    d.mkdir(parents=True)
    return d


def dasdseq(image: str | os.PathLike, dsn: str, tmp_path: str | os.PathLike) -> bytes:
    """Raw records of a DSORG=PS data set via dasdseq (binary; RECFM F/FB only).

    dasdseq writes a file named after the data set into its working directory, so it runs
    in a fresh directory under tmp_path."""
    cwd = _fresh_dir(tmp_path, "dasdseq")
    run("dasdseq", Path(image).resolve(), dsn, cwd=cwd)
    out = cwd / dsn
    if not out.exists():
        raise OracleError(f"dasdseq wrote no file for {dsn}: {sorted(os.listdir(cwd))}")
    return out.read_bytes()


def dasdseq_abs(
    image: str | os.PathLike, dsn: str, tmp_path: str | os.PathLike, tracks: int | None = None
) -> bytes:
    """The data of every block on a data set's first ``tracks`` tracks (all its tracks
    when None), read by ``dasdseq -expert -abs`` as raw blocks.

    dasdseq reads only RECFM=F/FB data sets by name; its expert mode reads absolute
    extents as FB with the LRECL given, so LRECL 1 returns each block's bytes unchanged,
    whatever the RECFM.  The extents come from the data set's DSCBs as our volume layer
    reads them (dasdseq prints them only for F/FB data sets); what is checked is the
    bytes Hercules finds there.  dasdseq ignores EOF records (it is meant for recovery),
    so callers give the track count up to the EOF.  See DASDSEQ_ABS_END for how it ends.
    """
    from emulator.volume import Volume

    with Volume.open(image) as vol:
        info = vol.dataset(dsn)
        heads = vol.heads
    groups: list[str] = []
    left = info.tracks if tracks is None else tracks
    if not 0 < left <= info.tracks:
        raise OracleError(f"{dsn} has {info.tracks} tracks; cannot read {left} of them")
    for ext in info.extents:
        if left <= 0:
            break
        take = min(left, ext.tracks)
        cyl, head = divmod(ext.begin, heads)
        groups += ["-abs", str(cyl), str(head), str(take)]
        left -= take
    cwd = _fresh_dir(tmp_path, "dasdseq-abs")
    argv = ["dasdseq", "-expert", os.fspath(Path(image).resolve()), "-lrecl", "1"]
    argv += ["-heads", str(heads), *groups, "RAW"]
    try:
        proc = subprocess.run(
            argv, cwd=cwd, capture_output=True, timeout=TIMEOUT, stdin=subprocess.DEVNULL
        )
    except subprocess.TimeoutExpired as exc:
        raise OracleError(f"{' '.join(argv)}: timed out after {TIMEOUT} s") from exc
    text = (proc.stdout + proc.stderr).decode("latin-1")
    errors = [m for m in HHC_ERROR.findall(text) if not DASDSEQ_ABS_END.match(m)]
    out = cwd / "RAW"
    if errors or not out.exists():
        raise OracleError(f"{' '.join(argv)} exited {proc.returncode}\n{text[-2000:]}")
    return out.read_bytes()


def dasdpdsu(image: str | os.PathLike, dsn: str, tmp_path: str | os.PathLike) -> dict[str, bytes]:
    """Every member (aliases included) unloaded by dasdpdsu: {NAME: raw bytes}.

    Without the "ascii" keyword dasdpdsu copies the members as binary EBCDIC into files
    "<name in lower case>.mac" in its working directory, so it runs in a fresh one."""
    cwd = _fresh_dir(tmp_path, "dasdpdsu")
    run("dasdpdsu", Path(image).resolve(), dsn, cwd=cwd)
    return {
        p.name[: -len(".mac")].upper(): p.read_bytes()
        for p in sorted(cwd.iterdir())
        if p.name.endswith(".mac")
    }


def cckdcdsk(image: str | os.PathLike, level: int = 3) -> tuple[bool, str]:
    """Check a compressed image read-only (cckdcdsk repairs in place without -ro).

    cckdcdsk always exits 0; a finding is an HHC...E or HHC...W line.  Returns (ok, output).
    A plain CKD image is reported ok (see CCKDCDSK_NOT_COMPRESSED)."""
    proc = run("cckdcdsk", f"-{level}", "-ro", image)
    output = (proc.stdout + proc.stderr).decode("latin-1")
    if CCKDCDSK_NOT_COMPRESSED in output:
        return True, output
    return HHC_PROBLEM.search(output) is None, output


def dasdinit(
    path: str | os.PathLike, devtype: str, volser: str | None, cyls: int | str, *flags: str
) -> Path:
    """Create an empty volume (VOL1 only, no VTOC) with dasdinit; flags e.g. "-z".

    A raw volume (flag "-r": no IPL records, no VOL1) takes no volume serial; pass
    ``volser=None`` (dasdinit would read a serial as the cylinder count)."""
    if "-r" in flags:
        if volser is not None:
            raise OracleError("dasdinit -r makes a raw volume, which has no volume serial")
        run("dasdinit", *flags, path, devtype, str(cyls))
    else:
        if volser is None:
            raise OracleError("dasdinit needs a volume serial unless -r is given")
        run("dasdinit", *flags, path, devtype, volser, str(cyls))
    return Path(path)


def dasdload(
    ctl_text: str, image: str | os.PathLike, tmp_path: str | os.PathLike, *flags: str
) -> Path:
    """Build a volume from control-file text with dasdload (message level 0).

    The control file is written to tmp_path and dasdload runs there, so file names in the
    control text are relative to tmp_path.  dasdload leaves a half-made image behind on
    failure; it is removed here so a failed oracle run cannot be mistaken for a result."""
    tmp = Path(tmp_path)
    ctl = tmp / f"oracle-{next(_counter)}.ctl"
    ctl.write_text(ctl_text)
    image = Path(image).resolve()
    try:
        run("dasdload", *flags, ctl, image, "0", cwd=tmp)
    except OracleError:
        image.unlink(missing_ok=True)
        raise
    return image


def dasdcopy(src: str | os.PathLike, dst: str | os.PathLike, *flags: str) -> Path:
    """Copy/convert an image with dasdcopy (flags e.g. "-z", "-bz2", "-0", "-o", "CKD").

    A copy killed by SIGSEGV is removed and run again (DASDCOPY_SIGNAL_RETRIES)."""
    dst = Path(dst)
    for attempt in range(DASDCOPY_SIGNAL_RETRIES + 1):
        try:
            run("dasdcopy", "-q", *flags, src, dst)
            return dst
        except OracleError as exc:
            dst.unlink(missing_ok=True)
            if exc.returncode != -signal.SIGSEGV or attempt == DASDCOPY_SIGNAL_RETRIES:
                raise
    return dst
