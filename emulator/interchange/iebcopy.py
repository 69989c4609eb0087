"""The IEBCOPY utility: control statements, DD bindings, copy / unload / load /
compress, and a SYSPRINT-like listing (FORMATS.md 6 and 8; docs/iebcopy.md).

Control statements follow IBM's rules for utility statements (*z/OS DFSMSdfp
Utilities*, "Continuing utility control statements"): columns 1-71 hold the
statement, a non-blank column 72 continues it on the next record from column 16,
columns 73-80 are ignored; IEBCOPY also lets a statement break after any comma, the
next record going on from its first non-blank column (2 or later).  A name in column
1 is a label; ``*`` in column 1 is a comment.  Operations: ``COPY``/``C``,
``COPYGROUP``/``COPYGRP``, ``SELECT``/``S``, ``EXCLUDE``/``E`` (``ALTERMOD`` and
``COPYMOD`` are recognised and refused).  Operands: ``OUTDD=``/``O=``,
``INDD=``/``I=`` (``A``, ``(A,(B,R),C)``, or IBM's generated ``(A,R)``), ``LIST=NO``,
``MEMBER=``/``M=`` with ``NAME``, ``(NAME,NEWNAME)``, ``(NAME,,R)``,
``(NAME,NEWNAME,R)``.  Empty SYSIN means ``COPY OUTDD=SYSUT2,INDD=SYSUT1``, as
IEBCOPY generates it.

DD bindings: ``NAME=IMAGE:DSN`` (a partitioned data set on a volume image; several
images may be used) or ``NAME=FILE`` (an IEBCOPY unload file: input = load, output =
unload).  An INDD equal to the OUTDD (or naming the same data set) is compressed in
place.  Each step (a COPY and its SELECT/EXCLUDE statements) writing to an image is
one transaction: a step that fails leaves the output as it was.

Return codes (the highest of all steps): 0 everything done; 4 a member not replaced,
a selected member found in no input, an input with nothing to copy; 8 a control
statement error, an unbound or unusable DD, incompatible data sets (that step is
skipped, later steps still run); 12 a step that failed on the data (space, directory
full, damaged input: rolled back); 16 SYSIN could not be read.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from emulator.errors import ConflictError, EmulatorError, FormatError, NotFoundError
from emulator.interchange import unload as ul
from emulator.pds.directory import blocks_needed, validate_name

# -------------------------------------------------------------------------------
# Statements
# -------------------------------------------------------------------------------
STATEMENT_END = 71  # columns 1-71
CONT_COLUMN = 72
CONT_START = 16  # a column-72 continuation goes on in column 16

OPERATIONS = {
    "COPY": "COPY",
    "C": "COPY",
    "COPYGROUP": "COPYGROUP",
    "COPYGRP": "COPYGROUP",
    "SELECT": "SELECT",
    "S": "SELECT",
    "EXCLUDE": "EXCLUDE",
    "E": "EXCLUDE",
    "ALTERMOD": "ALTERMOD",
    "COPYMOD": "COPYMOD",
}
STEP_OPERATIONS = ("COPY", "COPYGROUP", "ALTERMOD", "COPYMOD")
KEYWORDS = {"OUTDD": "OUTDD", "O": "OUTDD", "INDD": "INDD", "I": "INDD", "LIST": "LIST"}
MEMBER_KEYWORDS = ("MEMBER", "M")


class StatementError(Exception):
    """A control statement that cannot be used; ``msgid`` is the listing message."""

    def __init__(self, message: str, msgid: str = "IEB118I"):
        super().__init__(message)
        self.msgid = msgid


@dataclass
class Statement:
    """One logical control statement: the records it came from, its label,
    operation (normalised) and raw operand text."""

    cards: list[str]
    label: str
    operation: str
    operands: str
    line: int


@dataclass(frozen=True)
class Indd:
    ddname: str
    replace: bool = False


@dataclass(frozen=True)
class Selection:
    name: str
    newname: str | None = None
    replace: bool = False


@dataclass
class Step:
    """A COPY (or COPYGROUP) and the SELECT / EXCLUDE statements after it."""

    statement: Statement
    kind: str
    outdd: str
    indds: list[Indd]
    list_members: bool = True
    selects: list[Selection] = field(default_factory=list)
    excludes: list[str] = field(default_factory=list)
    statements: list[Statement] = field(default_factory=list)
    error: StatementError | None = None


def read_cards(text: str) -> list[str]:
    """SYSIN text -> card images (tabs expanded, line ends dropped)."""
    return [line.expandtabs(8).rstrip("\r\n") for line in text.splitlines()]


def join_statements(cards: Sequence[str]) -> tuple[list[Statement], list[tuple[int, str]]]:
    """Cards -> logical statements (continuations joined) and card-level errors
    (1-based card number, message)."""
    statements: list[Statement] = []
    errors: list[tuple[int, str]] = []
    i = 0
    n = len(cards)
    while i < n:
        card = cards[i]
        body = card[:STATEMENT_END]
        if card.startswith("*") or not body.strip():
            i += 1
            continue
        first = i
        used = [card]
        text = body.rstrip()
        cont72 = len(card) >= CONT_COLUMN and card[CONT_COLUMN - 1] != " "
        bad = None
        while cont72 or text.endswith(","):
            i += 1
            if i >= n:
                bad = "the last statement is continued but no record follows"
                break
            nxt = cards[i]
            used.append(nxt)
            nbody = nxt[:STATEMENT_END]
            if cont72:
                if nbody[: CONT_START - 1].strip():
                    bad = f"continuation record {i + 1} is not blank in columns 1-15"
                    break
                piece = nbody[CONT_START - 1 :].strip()
                # Column-72 continuation may break anywhere, also inside a word.
                text = text + piece if not text.endswith(",") else text + piece
            else:
                if nbody[:1].strip():
                    bad = f"continuation record {i + 1} starts in column 1"
                    break
                text = text + nbody.strip()
            cont72 = len(nxt) >= CONT_COLUMN and nxt[CONT_COLUMN - 1] != " "
            text = text.rstrip()
        i += 1
        if bad:
            errors.append((first + 1, bad))
            statements.append(Statement(used, "", "?", bad, first + 1))
            continue
        label = ""
        rest = text
        if text[:1] != " ":
            parts = text.split(None, 1)
            label = parts[0]
            rest = parts[1] if len(parts) > 1 else ""
        parts = rest.split(None, 2)
        if not parts:
            errors.append((first + 1, f"label {label} without an operation"))
            statements.append(Statement(used, label, "?", "", first + 1))
            continue
        op = parts[0].upper()
        operands = parts[1] if len(parts) > 1 else ""
        statements.append(Statement(used, label, OPERATIONS.get(op, op), operands, first + 1))
    return statements, errors


def _split_top(text: str) -> list[str]:
    """Split at commas outside parentheses; StatementError on unbalanced ones."""
    items, depth, cur = [], 0, ""
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth < 0:
                raise StatementError(f"unbalanced parentheses in {text!r}")
        if ch == "," and depth == 0:
            items.append(cur)
            cur = ""
        else:
            cur += ch
    if depth:
        raise StatementError(f"unbalanced parentheses in {text!r}")
    items.append(cur)
    return items


def _unparen(text: str) -> tuple[bool, str]:
    if text.startswith("(") and text.endswith(")") and _balanced_outer(text):
        return True, text[1:-1]
    return False, text


def _balanced_outer(text: str) -> bool:
    depth = 0
    for pos, ch in enumerate(text):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0 and pos != len(text) - 1:
                return False
    return True


def _keywords(operands: str) -> list[tuple[str, str]]:
    if not operands:
        return []
    out = []
    for item in _split_top(operands):
        if "=" not in item:
            raise StatementError(f"operand {item!r} is not KEYWORD=value")
        key, value = item.split("=", 1)
        out.append((key.strip().upper(), value.strip()))
    return out


_DDNAME = re.compile(r"[A-Z@#$][A-Z0-9@#$]{0,7}")


def _ddname(text: str) -> str:
    name = text.strip().upper()
    if not _DDNAME.fullmatch(name):
        raise StatementError(f"{text!r} is not a valid DD name")
    return name


def parse_indd(value: str) -> list[Indd]:
    """``A`` / ``(A,B)`` / ``(A,(B,R))`` / IBM's generated ``(A,R)``."""
    paren, inner = _unparen(value)
    items = _split_top(inner) if paren else [value]
    out: list[Indd] = []
    for item in items:
        item = item.strip()
        if not item:
            raise StatementError(f"empty DD name in INDD={value}")
        sub_paren, sub = _unparen(item)
        if sub_paren:
            parts = [p.strip() for p in _split_top(sub)]
            if len(parts) == 1:
                out.append(Indd(_ddname(parts[0])))
            elif len(parts) == 2 and parts[1].upper() == "R":
                out.append(Indd(_ddname(parts[0]), True))
            else:
                raise StatementError(f"INDD entry {item} must be (ddname) or (ddname,R)")
        elif item.upper() == "R" and out and paren:
            out[-1] = Indd(out[-1].ddname, True)
        else:
            out.append(Indd(_ddname(item)))
    return out


def _member(text: str) -> str:
    try:
        return validate_name(text.strip())
    except FormatError:
        raise StatementError(f"{text.strip()!r} is not a valid member name", "IEB120I") from None


def parse_members(value: str, allow_rename: bool) -> list[Selection]:
    """MEMBER=NAME or MEMBER=(NAME,(NAME,NEW),(NAME,,R),(NAME,NEW,R))."""
    paren, inner = _unparen(value.strip())
    items = _split_top(inner) if paren else [value]
    out: list[Selection] = []
    for item in items:
        item = item.strip()
        if not item:
            raise StatementError(f"empty member name in MEMBER={value}")
        sub_paren, sub = _unparen(item)
        if not sub_paren:
            out.append(Selection(_member(item)))
            continue
        parts = [p.strip() for p in _split_top(sub)]
        if not 1 <= len(parts) <= 3:
            raise StatementError(f"member entry {item} has {len(parts)} parts (1-3 allowed)")
        name = _member(parts[0])
        new = _member(parts[1]) if len(parts) > 1 and parts[1] else None
        rep = False
        if len(parts) == 3:
            if parts[2].upper() != "R":
                raise StatementError(f"member entry {item}: third part must be R")
            rep = True
        if (new is not None or rep) and not allow_rename:
            raise StatementError(f"EXCLUDE takes member names only, not {item}")
        out.append(Selection(name, new, rep))
    return out


def build_steps(statements: Sequence[Statement]) -> list[Step]:
    """Group statements into steps and parse their operands; a statement error marks
    its step (or, before any COPY, becomes a step of its own)."""
    steps: list[Step] = []
    for st in statements:
        try:
            if st.operation == "?":
                raise StatementError(st.operands or "invalid control statement")
            if st.operation in STEP_OPERATIONS:
                steps.append(_parse_copy(st))
                continue
            if st.operation not in ("SELECT", "EXCLUDE"):
                raise StatementError(f"{st.operation} is not an IEBCOPY operation")
            if not steps:
                raise StatementError(f"{st.operation} before any COPY statement", "IEB118I")
            step = steps[-1]
            step.statements.append(st)
            if step.error:
                continue
            _add_selection(step, st)
        except StatementError as exc:
            if st.operation in STEP_OPERATIONS or not steps:
                bad = Step(st, st.operation, "", [], statements=[st], error=exc)
                steps.append(bad)
            elif steps[-1].error is None:
                steps[-1].error = exc
    return steps


def _parse_copy(st: Statement) -> Step:
    step = Step(st, st.operation, "", [], statements=[st])
    if st.operation in ("ALTERMOD", "COPYMOD"):
        step.error = StatementError(
            f"{st.operation} (load-module reblocking) is not supported", "IEB118I"
        )
        return step
    seen = set()
    for key, value in _keywords(st.operands):
        kw = KEYWORDS.get(key)
        if kw is None:
            raise StatementError(f"{key} is not an operand of {st.operation}")
        if kw in seen:
            raise StatementError(f"{kw} is given twice")
        seen.add(kw)
        if kw == "OUTDD":
            step.outdd = _ddname(value)
        elif kw == "INDD":
            step.indds = parse_indd(value)
        elif kw == "LIST":
            if value.upper() not in ("YES", "NO"):
                raise StatementError(f"LIST={value}: YES or NO")
            step.list_members = value.upper() == "YES"
    if not step.outdd:
        raise StatementError(f"{st.operation} needs OUTDD=")
    if not step.indds:
        raise StatementError(f"{st.operation} needs INDD=")
    return step


def _add_selection(step: Step, st: Statement) -> None:
    pairs = _keywords(st.operands)
    if len(pairs) != 1 or pairs[0][0] not in MEMBER_KEYWORDS:
        raise StatementError(f"{st.operation} takes one operand, MEMBER=")
    if st.operation == "SELECT":
        if step.excludes:
            raise StatementError("SELECT and EXCLUDE in the same COPY step", "IEB116I")
        sels = parse_members(pairs[0][1], allow_rename=True)
        if step.kind == "COPYGROUP" and any(s.newname for s in sels):
            raise StatementError("COPYGROUP does not rename members")
        names = {s.name for s in step.selects}
        targets = {s.newname or s.name for s in step.selects}
        for s in sels:
            if s.name in names:
                raise StatementError(f"member {s.name} is selected twice", "IEB120I")
            target = s.newname or s.name
            if target in targets:
                raise StatementError(f"two members would be copied as {target}", "IEB120I")
            names.add(s.name)
            targets.add(target)
            step.selects.append(s)
    else:
        if step.selects:
            raise StatementError("SELECT and EXCLUDE in the same COPY step", "IEB116I")
        for s in parse_members(pairs[0][1], allow_rename=False):
            if s.name in step.excludes:
                raise StatementError(f"member {s.name} is excluded twice", "IEB120I")
            step.excludes.append(s.name)


# -------------------------------------------------------------------------------
# DD bindings
# -------------------------------------------------------------------------------
@dataclass(frozen=True)
class DD:
    """A DD name bound to a PDS on an image (``image``, ``dsn``) or to a file."""

    name: str
    image: str | None = None
    dsn: str | None = None
    file: str | None = None

    @property
    def target(self) -> tuple:
        if self.file is not None:
            return ("file", os.path.abspath(self.file))
        return ("pds", os.path.abspath(self.image or ""), self.dsn)

    def describe(self) -> str:
        return self.file if self.file is not None else f"{self.image}:{self.dsn}"


def parse_dd(spec: str) -> DD:
    """``NAME=IMAGE:DSN`` or ``NAME=FILE``; FormatError on a malformed binding.

    The value is an image binding when the part after its last ``:`` is a data set
    name (the image must then exist); otherwise it names a file."""
    from emulator.volume.dscb import validate_dsname

    if "=" not in spec:
        raise FormatError(f"--dd {spec!r}: expected NAME=IMAGE:DSN or NAME=FILE")
    name, value = spec.split("=", 1)
    try:
        dd = _ddname(name)
    except StatementError as exc:
        raise FormatError(f"--dd {spec!r}: {exc}") from None
    if not value:
        raise FormatError(f"--dd {spec!r}: nothing bound to {dd}")
    if ":" in value:
        image, dsn = value.rsplit(":", 1)
        try:
            name = validate_dsname(dsn.strip("'\"").upper()) if image else None
        except FormatError:
            name = None  # not IMAGE:DSN: a file name that happens to hold a colon
        if name is not None:
            if not os.path.isfile(image):
                raise NotFoundError(f"--dd {spec!r}: no image file {image}")
            return DD(dd, image=image, dsn=name)
    return DD(dd, file=value)


# -------------------------------------------------------------------------------
# Listing
# -------------------------------------------------------------------------------
HEADER = " " * 40 + "IEBCOPY MESSAGES AND CONTROL STATEMENTS" + " " * 31 + "PAGE 0001"


def _msg(msgid: str, text: str) -> str:
    return f"{msgid}  {text}"


@dataclass
class Result:
    """A run's return code and listing lines."""

    rc: int
    lines: list[str]

    @property
    def listing(self) -> str:
        return "\n".join(self.lines) + "\n"


class _Run:
    def __init__(self, dds: dict[str, DD], unload_descriptors: bool, ignore_opened: bool):
        self.dds = dds
        self.ignore_opened = ignore_opened
        self.lines: list[str] = [HEADER, ""]
        self.rc = 0
        self.unload_descriptors = unload_descriptors
        self.volumes: dict[str, Any] = {}
        self.writable: set[str] = set()

    def say(self, msgid: str, text: str) -> None:
        self.lines.append(_msg(msgid, text))

    def severity(self, rc: int) -> None:
        self.rc = max(self.rc, rc)

    # -- resources ---------------------------------------------------------------
    def volume(self, dd: DD) -> Any:
        """The open volume of ``dd``'s image: one per image file, writable when any
        step writes to it."""
        from emulator.volume.volume import Volume

        key = os.path.realpath(dd.image)
        vol = self.volumes.get(key)
        if vol is None:
            vol = Volume.open(
                dd.image, writable=key in self.writable, ignore_opened=self.ignore_opened
            )
            self.volumes[key] = vol
        return vol

    def lock_outputs(self) -> None:
        """Open every output image before the first step, in the order of their real
        paths: two runs writing the same images then never each hold one writer lock
        and wait for the other's."""
        from emulator.volume.volume import Volume

        for key in sorted(self.writable):
            try:
                self.volumes[key] = Volume.open(
                    key, writable=True, ignore_opened=self.ignore_opened
                )
            except EmulatorError:
                pass  # reported by the first step that writes there (IEB1017E)

    def close(self) -> None:
        for vol in self.volumes.values():
            vol.close()
        self.volumes.clear()


def _dir_blocks(pds: Any) -> int:
    return pds.directory().blocks


def run(
    sysin: str,
    dds: Iterable[DD] | dict[str, DD],
    unload_descriptors: bool = True,
    *,
    ignore_opened: bool = False,
) -> Result:
    """Run IEBCOPY control statements ``sysin`` with the DD bindings ``dds``.

    Returns the return code and listing; errors in the data become listing messages
    and return codes, not exceptions.  ``unload_descriptors``: unload files get VS
    BDW/SDW descriptors (False: bare records, Hercules dasdload method VS).
    ``ignore_opened``: write compressed output images whose header says an emulator
    has them open (emulator.image.open_image)."""
    bound = dict(dds) if isinstance(dds, dict) else {d.name: d for d in dds}
    r = _Run(bound, unload_descriptors, ignore_opened)
    cards = read_cards(sysin)
    if not any(c[:STATEMENT_END].strip() and not c.startswith("*") for c in cards):
        cards = [" COPY OUTDD=SYSUT2,INDD=SYSUT1"]
        r.lines.append(" " * 20 + "(no control statements: COPY OUTDD=SYSUT2,INDD=SYSUT1)")
    statements, _ = join_statements(cards)
    steps = build_steps(statements)
    for s in steps:
        out = bound.get(s.outdd) if not s.error else None
        if out is not None and out.image is not None:
            r.writable.add(os.path.realpath(out.image))
    try:
        r.lock_outputs()
        for step in steps:
            for st in step.statements:
                for card in st.cards:
                    r.lines.append(" " * 20 + card[:80].rstrip())
            if step.error:
                r.say(step.error.msgid, f"CONTROL STATEMENT ERROR - {step.error}")
                r.severity(8)
                continue
            _run_step(r, step)
    finally:
        r.close()
    r.say("IEB147I", f"END OF JOB -{r.rc:02d} WAS HIGHEST SEVERITY CODE")
    return Result(r.rc, r.lines)


def _run_step(r: _Run, step: Step) -> None:
    out = r.dds.get(step.outdd)
    missing = [d for d in [step.outdd, *(i.ddname for i in step.indds)] if d not in r.dds]
    if missing:
        r.say("IEB127I", f"DDNAME {missing[0]} IS NOT BOUND (give --dd {missing[0]}=...)")
        r.severity(8)
        return
    if out.file is not None:
        _unload_step(r, step, out)
        return
    try:
        vol = r.volume(out)
    except EmulatorError as exc:
        r.say("IEB1017E", f"OUTDD={step.outdd} CANNOT BE OPENED: {exc}")
        r.severity(8)
        return
    try:
        with vol.transaction():
            _copy_step(r, step, out, vol)
    except _StepFailed:
        pass
    except EmulatorError as exc:
        r.say("IEB1017E", f"STEP ENDED, OUTPUT UNCHANGED: {exc}")
        # Incompatible or locked data sets are the job's fault (8); the rest is data.
        r.severity(8 if isinstance(exc, ConflictError) else 12)


class _StepFailed(Exception):
    """A step stopped after a message; its transaction is rolled back."""


def _copy_step(r: _Run, step: Step, out: DD, vol: Any) -> None:
    from emulator.pds.pds import Pds

    pds: Any = None
    try:
        info = vol.dataset(out.dsn)
        if not info.is_pds:
            r.say("IEB1017E", f"OUTDD={step.outdd} {out.dsn} IS NOT A PARTITIONED DATA SET")
            r.severity(8)
            raise _StepFailed
        pds = Pds(vol, out.dsn)
    except NotFoundError:
        pds = None
    remaining = {s.name: s for s in step.selects}
    group = step.kind == "COPYGROUP"
    for indd in step.indds:
        src_dd = r.dds[indd.ddname]
        if src_dd.target == out.target:
            if step.selects or step.excludes:
                r.say("IEB118I", "CONTROL STATEMENT ERROR - SELECT/EXCLUDE WITH COMPRESS")
                r.severity(8)
                raise _StepFailed
            if pds is None:
                raise NotFoundError(f"data set {out.dsn} not found", out.image)
            _compress(r, step, pds)
            continue
        if step.selects and not remaining:
            break
        source = _open_source(r, src_dd, indd.ddname)
        if source is None:
            continue
        picks, found = _picks(step, source, indd, remaining, group)
        for name in found:
            remaining.pop(name, None)
        if pds is None:
            ul.allocate_like(vol, out.dsn, source)
            pds = Pds(vol, out.dsn)
            r.lines.append(f"{' ' * 9}{out.dsn} ALLOCATED ON {vol.volser} FOR OUTDD={step.outdd}")
        kind = "LOADED" if src_dd.file is not None else "COPIED"
        if not picks:
            r.say("IEB177I", f"NO MEMBERS {kind} FROM INPUT DATA SET REFERENCED BY {indd.ddname}")
            r.severity(4)
            continue
        results = ul.copy_members(source, pds, picks, replace_all=indd.replace, group=group)
        _report(r, step, indd.ddname, kind, results)
    for name in remaining:
        r.say("IEB177I", f"{name:<8} WAS SELECTED BUT NOT FOUND IN ANY INPUT DATA SET")
        r.severity(4)
    if pds is not None:
        _space_report(r, step, pds)


def _open_source(r: _Run, dd: DD, ddname: str) -> ul.MemberSource | None:
    from emulator.pds.pds import Pds

    try:
        if dd.file is not None:
            return ul.UnloadSource(ul.read_unload_file(dd.file), ddname)
        vol = r.volume(dd)
        return ul.PdsSource(Pds(vol, dd.dsn), ddname)
    except EmulatorError as exc:
        r.say("IEB1017E", f"INDD={ddname} CANNOT BE READ: {exc}")
        r.severity(12 if isinstance(exc, FormatError) else 8)
        raise _StepFailed from None


def _picks(
    step: Step,
    source: ul.MemberSource,
    indd: Indd,
    remaining: dict[str, Selection],
    group: bool,
) -> tuple[list[ul.Pick], list[str]]:
    """The picks for one input and the selected names it satisfies."""
    names = [e.name for e in source.entries]
    if step.selects:
        found = [n for n in names if n in remaining]
        picks = [
            ul.Pick(n, remaining[n].newname, remaining[n].replace or indd.replace) for n in found
        ]
        return picks, found
    excluded = set(step.excludes)
    if group and excluded:
        groups = {}
        for e in source.entries:
            groups.setdefault(e.alias_of if e.alias else e.name, []).append(e.name)
        for members in groups.values():
            if excluded & set(members):
                excluded |= set(members)
    return [ul.Pick(n, None, indd.replace) for n in names if n not in excluded], []


def _report(r: _Run, step: Step, ddname: str, kind: str, results: list[ul.Copied]) -> None:
    r.say(
        "IEB167I", f"FOLLOWING MEMBER(S)  {kind}  FROM INPUT DATA SET REFERENCED BY {ddname:<8} -"
    )
    for c in results:
        if c.status in ("copied", "replaced"):
            if not step.list_members:
                continue
            text = f"{c.name:<8} HAS BEEN SUCCESSFULLY  {kind}"
            if c.renamed:
                text += f" AND RENAMED FROM {c.source}"
            if c.status == "replaced":
                r.say("IEB155I", text + " AND IS A REPLACED MEMBER")
            else:
                r.say("IEB154I", text)
        elif c.status == "not replaced":
            r.say("IEB175I", f"{c.name:<8} NOT {kind} - MEMBER EXISTS AND REPLACE NOT SPECIFIED")
            r.severity(4)
        else:
            r.say(
                "IEB175I",
                f"{c.name:<8} NOT {kind} - ALIAS OF {c.alias_of or '?'} WHICH WAS NOT {kind}",
            )
            r.severity(4)


def _space_report(r: _Run, step: Step, pds: Any) -> None:
    info = pds.info
    unused = max(0, info.tracks - (info.lstar[0] + 1))
    r.say(
        "IEB144I",
        f"THERE ARE {unused:07d} UNUSED TRACKS IN OUTPUT DATA SET REFERENCED BY {step.outdd}",
    )
    free = _dir_blocks(pds) - blocks_needed(pds.members())
    r.say("IEB149I", f"THERE ARE {max(free, 0):07d}  UNUSED DIRECTORY BLOCKS IN OUTPUT DIRECTORY")


def _compress(r: _Run, step: Step, pds: Any) -> None:
    before = {e.name: e.ttr for e in pds.members()}
    after = pds.compress()
    r.say("IEB1018I", f"COMPRESSING PDS OUTDD={step.outdd:<8} DSN={pds.dsname}")
    if step.list_members:
        for e in pds.members():
            moved = (
                "WAS MOVED"
                if after.get(e.name) != before.get(e.name)
                else ("WAS ALREADY IN PLACE AND NOT MOVED")
            )
            r.say("IEB152I", f"{e.name:<8} COMPRESSED - {moved}")


def _unload_step(r: _Run, step: Step, out: DD) -> None:
    from emulator.pds.pds import Pds

    if len(step.indds) != 1:
        r.say("IEB118I", "CONTROL STATEMENT ERROR - AN UNLOAD TAKES ONE INDD")
        r.severity(8)
        return
    indd = step.indds[0]
    src = r.dds[indd.ddname]
    if src.file is not None:
        r.say("IEB118I", f"CONTROL STATEMENT ERROR - INDD={indd.ddname} AND OUTDD ARE BOTH FILES")
        r.severity(8)
        return
    if any(s.newname for s in step.selects):
        r.say("IEB118I", "CONTROL STATEMENT ERROR - MEMBERS ARE NOT RENAMED WHEN UNLOADING")
        r.severity(8)
        return
    try:
        vol = r.volume(src)
        pds = Pds(vol, src.dsn)
        entries = pds.members()
        names = [e.name for e in entries]
        if step.selects:
            chosen = {s.name for s in step.selects} & set(names)
        else:
            chosen = set(names) - set(step.excludes)
        if step.kind == "COPYGROUP":
            mains = {(e.alias_of if e.alias else e.name) for e in entries if e.name in chosen}
            chosen |= {e.name for e in entries if (e.alias_of if e.alias else e.name) in mains}
        picked = [n for n in names if n in chosen]
        if not picked:
            r.say("IEB177I", f"NO MEMBERS UNLOADED FROM INPUT DATA SET REFERENCED BY {indd.ddname}")
            r.severity(4)
        records = ul.write_unload(vol, src.dsn, picked)
        ul.write_records_file(out.file, records, r.unload_descriptors)
    except EmulatorError as exc:
        r.say("IEB1017E", f"UNLOAD ENDED, NO FILE WRITTEN: {exc}")
        r.severity(12)
        return
    if picked:
        r.say(
            "IEB167I",
            f"FOLLOWING MEMBER(S)  UNLOADED  FROM INPUT DATA SET REFERENCED BY {indd.ddname:<8} -",
        )
        if step.list_members:
            for n in picked:
                r.say("IEB154I", f"{n:<8} HAS BEEN SUCCESSFULLY  UNLOADED")
    for s in step.selects:
        if s.name not in names:
            r.say("IEB177I", f"{s.name:<8} WAS SELECTED BUT NOT FOUND IN ANY INPUT DATA SET")
            r.severity(4)


def run_file(
    sysin_path: str,
    dds: Iterable[DD],
    unload_descriptors: bool = True,
    *,
    ignore_opened: bool = False,
) -> Result:
    """:func:`run` with SYSIN read from a file (``-`` is not handled here)."""
    try:
        with open(sysin_path, encoding="utf-8", errors="replace") as fh:
            text = fh.read()
    except OSError as exc:
        return Result(
            16,
            [
                HEADER,
                _msg("IEB1017E", f"SYSIN {sysin_path} CANNOT BE READ: {exc.strerror}"),
                _msg("IEB147I", "END OF JOB -16 WAS HIGHEST SEVERITY CODE"),
            ],
        )
    return run(text, dds, unload_descriptors, ignore_opened=ignore_opened)


__all__ = [
    "DD",
    "Result",
    "Statement",
    "Step",
    "Selection",
    "Indd",
    "StatementError",
    "parse_dd",
    "read_cards",
    "join_statements",
    "build_steps",
    "parse_indd",
    "parse_members",
    "run",
    "run_file",
]
