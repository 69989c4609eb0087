"""Data set name patterns (ssm.patterns): the DFSMSdss/ISPF `*`, `%`, `**` rules.

The property tests check the regular expression translation against a reference
matcher written here independently: a recursive walk over qualifiers, `**` trying every
number of qualifiers and `*`/`%` matched inside one qualifier.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ssm.patterns import DsnFilter, DsnPattern, NameMap, NameMaps, PatternError, matches


# -- the reference --------------------------------------------------------------------
def _qualifier_matches(pat: str, qual: str) -> bool:
    """`*` = zero or more characters, `%` = exactly one, others literal (one qualifier)."""
    if not pat:
        return not qual
    head = pat[0]
    if head == "*":
        return any(_qualifier_matches(pat[1:], qual[i:]) for i in range(len(qual) + 1))
    if not qual:
        return False
    if head == "%" or head == qual[0]:
        return _qualifier_matches(pat[1:], qual[1:])
    return False


def reference_match(pattern: str, name: str) -> bool:
    pats, quals = pattern.split("."), name.split(".")

    def walk(i: int, j: int) -> bool:
        if i == len(pats):
            return j == len(quals)
        if pats[i] == "**":
            return any(walk(i + 1, k) for k in range(j, len(quals) + 1))
        return j < len(quals) and _qualifier_matches(pats[i], quals[j]) and walk(i + 1, j + 1)

    return walk(0, 0)


# -- strategies -----------------------------------------------------------------------
# A small alphabet so that random patterns and names actually match each other often.
FIRST = "ABS$"
REST = "ABS1$-"
qualifier = st.builds(
    lambda a, b: a + b, st.sampled_from(FIRST), st.text(alphabet=REST, max_size=3)
)
dsname = st.lists(qualifier, min_size=1, max_size=5).map(".".join)

pattern_qualifier = st.one_of(
    st.just("**"),
    st.just("*"),
    st.text(alphabet=FIRST + REST + "*%", min_size=1, max_size=4).filter(lambda q: "**" not in q),
)
pattern = st.lists(pattern_qualifier, min_size=1, max_size=5).map(".".join)


@settings(max_examples=600, deadline=None)
@given(pattern, dsname)
def test_translation_agrees_with_reference(pat, name):
    assert DsnPattern(pat).match(name) == reference_match(pat, name), (pat, name)


@settings(max_examples=300, deadline=None)
@given(st.lists(qualifier, min_size=1, max_size=5), st.data())
def test_generalised_name_matches(quals, data):
    """A pattern made from a name by replacing parts with wildcards always matches it."""
    pats = []
    for q in quals:
        choice = data.draw(st.sampled_from(["keep", "star", "pct", "prefix", "dstar"]))
        if choice == "star":
            pats.append("*")
        elif choice == "pct":
            pats.append("%" * len(q))
        elif choice == "prefix":
            pats.append(q[:1] + "*")
        elif choice == "dstar":
            pats.append("**")
        else:
            pats.append(q)
    assert DsnPattern(".".join(pats)).match(".".join(quals))


@settings(max_examples=300, deadline=None)
@given(pattern, dsname)
def test_map_round_trip(pat, name):
    """A map FROM=FROM' (same wildcards, other literals) is reversible on what it maps."""
    m = NameMap(f"{pat}=X.{pat}")
    mapped = m.forward(name)
    if not reference_match(pat, name):
        assert mapped is None
        return
    assert mapped is not None and mapped.startswith("X.")
    # The name built from the captures is one the target pattern matches, and mapping
    # it back gives a name the source pattern matches again.
    assert m.target.match(mapped)
    back = m.backward(mapped)
    assert back is not None and m.source.match(back)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(["*", "**", "%%", "SYS1"]), min_size=1, max_size=4), dsname)
def test_map_whole_qualifier_round_trip(pats, name):
    """With whole-qualifier wildcards a map and its reverse are exact inverses."""
    pat = ".".join(pats)
    m = NameMap(f"{pat}=NEW.{pat}")
    mapped = m.forward(name)
    if mapped is not None:
        assert mapped == "NEW." + name
        assert m.backward(mapped) == name


# -- the rules, by example ------------------------------------------------------------
@pytest.mark.parametrize(
    "pat, name, expected",
    [
        ("SYS1.**", "SYS1", True),
        ("SYS1.**", "SYS1.LINKLIB", True),
        ("SYS1.**", "SYS1.A.B.C", True),
        ("SYS1.**", "SYS10.LINKLIB", False),
        ("**", "ANY.NAME.AT.ALL", True),
        ("**.LOAD", "LOAD", True),
        ("**.LOAD", "USER.TEST.LOAD", True),
        ("**.LOAD", "USER.LOADX", False),
        ("A.**.B", "A.B", True),
        ("A.**.B", "A.X.Y.B", True),
        ("A.**.B", "A.X.Y.C", False),
        ("SYS1.*", "SYS1.PARMLIB", True),
        ("SYS1.*", "SYS1", False),
        ("SYS1.*", "SYS1.A.B", False),
        ("SYS1.*LIB", "SYS1.LINKLIB", True),
        ("SYS1.*LIB", "SYS1.LIB", True),
        ("SYS%.LINKLIB", "SYS1.LINKLIB", True),
        ("SYS%.LINKLIB", "SYS.LINKLIB", False),
        ("SYS%.LINKLIB", "SYS12.LINKLIB", False),
        ("USER.*.CNTL", "USER.ABC.CNTL", True),
        ("USER.*.CNTL", "USER.A.B.CNTL", False),
        ("sys1.**", "SYS1.X", True),
        ("'SYS1.PARMLIB'", "SYS1.PARMLIB", True),
    ],
)
def test_rules(pat, name, expected):
    assert matches(pat, name) is expected
    assert reference_match(pat.strip("'").upper(), name) is expected


@pytest.mark.parametrize(
    "bad", ["", "A..B", "A.B**", "**A", "A.B(C)", "A.B C", "ABCDEFGHI.X", "A=B"]
)
def test_bad_patterns_raise_pattern_error(bad):
    with pytest.raises(PatternError):
        DsnPattern(bad)


def test_long_qualifier_counts_characters_not_stars():
    assert DsnPattern("ABCDEFGH*").match("ABCDEFGH")


@pytest.mark.parametrize(
    "rule, name, expected",
    [
        ("SYS1.**=SYS7.**", "SYS1.LINKLIB", "SYS7.LINKLIB"),
        ("SYS1.**=SYS7.**", "SYS1", "SYS7"),
        ("SYS1.**=SYS7.**", "SYS1.A.B", "SYS7.A.B"),
        ("SYS1.**=SYS7.**", "SYS2.LINKLIB", None),
        ("**.TEST.*=**.PROD.*", "APP.TEST.LOAD", "APP.PROD.LOAD"),
        ("USER%.*LIB=USERS%.OLD*", "USER1.MACLIB", "USERS1.OLDMAC"),
        ("A.B=C.D", "A.B", "C.D"),
        ("SYS%.X=SYS*.X", "SYS1.X", "SYS1.X"),
    ],
)
def test_map_forward(rule, name, expected):
    assert NameMap(rule).forward(name) == expected


def test_map_backward_and_first_rule_wins():
    maps = NameMaps(["SYS1.**=SYS7.**", "SYS1.PROCLIB=OTHER.PROCLIB", "TEST.*=PROD.*"])
    assert maps.forward("SYS1.PROCLIB") == "SYS7.PROCLIB"
    assert maps.forward("TEST.LOAD") == "PROD.LOAD"
    assert maps.forward("UNMAPPED.NAME") == "UNMAPPED.NAME"
    assert maps.backward("SYS7.A.B") == "SYS1.A.B"
    assert maps.backward("PROD.LOAD") == "TEST.LOAD"
    assert maps.backward("OTHER.PROCLIB") == "SYS1.PROCLIB"
    assert not NameMaps([])


@pytest.mark.parametrize(
    "bad",
    ["SYS1.**", "A=B=C", "SYS1.**=SYS7.*", "A.*=B.%", "A.*.**=B.**.*", "A.**=B", "A.B=**"],
)
def test_bad_maps(bad):
    with pytest.raises(PatternError, match="map|pattern"):
        NameMap(bad)


def test_filter_include_exclude():
    f = DsnFilter(include=["SYS1.**", "USER.*"], exclude=["SYS1.*LIB"])
    assert f.passes("SYS1.PARMLIB") is False
    assert f.passes("SYS1.PARMLIB.X") is True
    assert f.passes("USER.CNTL") is True
    assert f.passes("OTHER.CNTL") is False
    # One data set under two names (OLD and NEW with --map): any include, no exclude.
    assert f.passes("OTHER.CNTL", "USER.CNTL") is True
    assert f.passes("USER.CNTL", "SYS1.MACLIB") is False
    assert DsnFilter().passes("ANYTHING") and not DsnFilter()


def test_translate_is_a_plain_regex():
    from ssm.patterns import translate

    assert re.fullmatch(translate("A.**.B"), "A.X.B")
    assert translate("A.%") == r"A\.([^.])"
