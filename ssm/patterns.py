"""Data set name patterns: ``--include``, ``--exclude`` and ``--map FROM=TO``.

The rules are the ones DFSMSdss and ISPF 3.4 use for data set name filters:

* a pattern is a list of qualifiers separated by ``.``;
* ``*`` inside a qualifier matches zero or more characters of that one qualifier
  (a qualifier that is just ``*`` therefore matches exactly one whole qualifier);
* ``%`` matches exactly one character (never the ``.``);
* ``**`` standing alone as a qualifier matches zero or more whole qualifiers
  (``SYS1.**`` matches ``SYS1`` and ``SYS1.A.B``; ``**.LOAD`` matches ``LOAD``);
  ``**`` next to other characters in one qualifier (``SYS**``) is refused, as
  DFSMSdss refuses it;
* letters are compared in upper case; the other characters allowed are the ones a
  data set name may hold (``A-Z 0-9 @ # $ -`` and X'C0' ``{``).

A :class:`NameMap` (``--map 'SYS1.**=SYS7.**'``) pairs a data set named by FROM with
the name made by putting what each wildcard of FROM matched into the same wildcard of
TO, in order.  FROM and TO must use the same wildcards in the same order (``%`` in FROM
may become ``*`` in TO), so a map can also be run backwards, TO to FROM.

Patterns work on names only; they never see members.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from emulator.errors import EmulatorError

# Characters a data set name qualifier may hold (z/OS DFSMS "Using Data Sets", 3.2.1),
# plus the two wildcards.  X'C0' '{' is accepted by z/OS as a national character too.
_QUALIFIER_CHARS = re.compile(r"[A-Z0-9@#$\-{*%]+")
_ANY_QUALIFIER = r"[^.]+"


class PatternError(EmulatorError, ValueError):
    """Raised when a data set name pattern or a ``--map FROM=TO`` is malformed."""


@dataclass(frozen=True)
class _Token:
    """One wildcard of a pattern, in order: kind is ``*``, ``%`` or ``**``."""

    kind: str
    qualifier: int  # index of the qualifier holding it (for messages)


class DsnPattern:
    """One compiled data set name pattern; ``match(name)`` says whether it matches."""

    def __init__(self, text: str):
        self.text = text.strip().strip("'\"").upper()
        self.qualifiers = _split(self.text, text)
        self.wildcards = _wildcards(self.qualifiers)
        self.regex = re.compile(translate(self.text))

    def __repr__(self) -> str:
        return f"DsnPattern({self.text!r})"

    @property
    def literal(self) -> bool:
        """True when the pattern has no wildcard (it names one data set)."""
        return not self.wildcards

    def match(self, dsname: str) -> bool:
        return self.regex.fullmatch(dsname.upper()) is not None

    def captures(self, dsname: str) -> list[str] | None:
        """What each wildcard matched, in order; ``None`` when the name does not match.

        A ``**`` capture is the matched qualifiers joined by ``.`` (maybe empty)."""
        m = self.regex.fullmatch(dsname.upper())
        if m is None:
            return None
        out = []
        for token, value in zip(self.wildcards, m.groups(), strict=True):
            out.append(value.strip(".") if token.kind == "**" else value)
        return out

    def fill(self, captures: Sequence[str]) -> str:
        """Build a name from this pattern by putting ``captures`` into its wildcards."""
        it = iter(captures)
        quals: list[str] = []
        for q in self.qualifiers:
            if q == "**":
                part = next(it)
                if part:
                    quals.extend(part.split("."))
                continue
            text = []
            for ch in q:
                text.append(next(it) if ch in "*%" else ch)
            quals.append("".join(text))
        return ".".join(quals)


def _split(text: str, original: str) -> list[str]:
    if not text:
        raise PatternError(f"empty data set name pattern {original!r}")
    quals = text.split(".")
    for q in quals:
        if not q:
            raise PatternError(f"pattern {original!r} has an empty qualifier")
        if not _QUALIFIER_CHARS.fullmatch(q):
            bad = sorted({c for c in q if not _QUALIFIER_CHARS.fullmatch(c)})
            raise PatternError(f"pattern {original!r}: character {''.join(bad)!r} not allowed")
        if "**" in q and q != "**":
            raise PatternError(
                f"pattern {original!r}: '**' must be a qualifier on its own (as in A.**.B)"
            )
        if q != "**" and len(q.replace("*", "")) > 8:
            raise PatternError(f"pattern {original!r}: qualifier {q} is longer than 8")
    return quals


def _wildcards(quals: list[str]) -> list[_Token]:
    out = []
    for i, q in enumerate(quals):
        if q == "**":
            out.append(_Token("**", i))
        else:
            out.extend(_Token(ch, i) for ch in q if ch in "*%")
    return out


def translate(text: str) -> str:
    """The regular expression (for ``re.fullmatch``) equivalent to a name pattern.

    Every wildcard becomes one capturing group, in order.  ``**`` takes the ``.``
    next to it into its group, so that it can match zero qualifiers."""
    quals = _split(text.strip().strip("'\"").upper(), text)
    pieces: list[str] = []
    started = False  # a real qualifier has been written (so a '.' comes before the next)
    pending_any = False  # a '**' waiting for the next qualifier (or the end)
    for q in quals:
        if q == "**":
            if pending_any:  # '**.**' is the same as '**', but keeps its group
                pieces.append("()")
            pending_any = True
            continue
        body = "".join(
            "([^.]*)" if ch == "*" else "([^.])" if ch == "%" else re.escape(ch) for ch in q
        )
        if pending_any:
            if started:  # A.**.B: the group is '.X.Y' (or empty) between A and .B
                pieces.append(r"((?:\.[^.]+)*)\." + body)
            else:  # **.B: the group is 'X.Y.' (or empty) before B
                pieces.append(r"((?:[^.]+\.)*)" + body)
            pending_any = False
        else:
            pieces.append((r"\." if started else "") + body)
        started = True
    if pending_any:
        # A.**: the group is '.X.Y' or empty; a pattern of only '**' matches any name.
        pieces.append(r"((?:\.[^.]+)*)" if started else r"(" + _ANY_QUALIFIER + r"(?:\.[^.]+)*)")
    return "".join(pieces)


class NameMap:
    """``FROM=TO``: data set names matching FROM (on OLD) pair with TO (on NEW)."""

    def __init__(self, text: str):
        if text.count("=") != 1:
            raise PatternError(f"--map {text!r} is not FROM=TO")
        left, right = text.split("=")
        self.text = text
        self.source = DsnPattern(left)
        self.target = DsnPattern(right)
        a, b = self.source.wildcards, self.target.wildcards
        if len(a) != len(b) or any(
            not _compatible(x.kind, y.kind) for x, y in zip(a, b, strict=False)
        ):
            raise PatternError(
                f"--map {text!r}: TO must use the same wildcards as FROM, in the same order"
            )

    def __repr__(self) -> str:
        return f"NameMap({self.text!r})"

    def forward(self, dsname: str) -> str | None:
        """The NEW-side name for an OLD-side name, or ``None`` if FROM does not match."""
        caps = self.source.captures(dsname)
        return None if caps is None else self.target.fill(caps)

    def backward(self, dsname: str) -> str | None:
        """The OLD-side name for a NEW-side name, or ``None`` if TO does not match."""
        caps = self.target.captures(dsname)
        return None if caps is None else self.source.fill(caps)


def _compatible(source: str, target: str) -> bool:
    # '%' captures one character, which a '*' can take; a '*' capture may be longer
    # than the one character a '%' would hold, and '**' only pairs with '**'.
    return source == target or (source == "%" and target == "*")


class NameMaps:
    """An ordered list of ``--map`` rules: the first rule that matches a name wins."""

    def __init__(self, maps: Iterable[NameMap | str] = ()):
        self.maps = [m if isinstance(m, NameMap) else NameMap(m) for m in maps]

    def __bool__(self) -> bool:
        return bool(self.maps)

    def forward(self, dsname: str) -> str:
        for m in self.maps:
            out = m.forward(dsname)
            if out is not None:
                return out
        return dsname

    def backward(self, dsname: str) -> str:
        for m in self.maps:
            out = m.backward(dsname)
            if out is not None:
                return out
        return dsname


class DsnFilter:
    """``--include`` / ``--exclude``: a name passes when it matches some include (or no
    include was given) and matches no exclude."""

    def __init__(self, include: Iterable[str] = (), exclude: Iterable[str] = ()):
        self.include = [DsnPattern(p) for p in include]
        self.exclude = [DsnPattern(p) for p in exclude]

    def __bool__(self) -> bool:
        return bool(self.include or self.exclude)

    def passes(self, *names: str) -> bool:
        """True when any of ``names`` (one data set under its OLD and NEW names) is
        included and none of them is excluded."""
        if self.include and not any(p.match(n) for p in self.include for n in names):
            return False
        return not any(p.match(n) for p in self.exclude for n in names)


def matches(pattern: str, dsname: str) -> bool:
    """Convenience: does ``dsname`` match the data set name ``pattern``?"""
    return DsnPattern(pattern).match(dsname)


__all__ = [
    "PatternError",
    "DsnPattern",
    "DsnFilter",
    "NameMap",
    "NameMaps",
    "translate",
    "matches",
]
