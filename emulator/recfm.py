"""The RECFM byte and its text form (FORMATS.md 7.1).

One place for the RECFM bits and their names, shared by the volume layer (DS1RECFM in
:class:`~emulator.volume.dscb.DatasetInfo`, allocation) and the data set layer
(blocking and deblocking), so both read and write the same spelling.

Text form: the format letter (F, V or U; nothing when the format bits are X'00'), then
T, B, S, A, M for the bits that are set, in that order.  The reserved bit X'01' is shown
as a ``(X'01')`` suffix instead of being dropped, so a listing never hides a byte that
differs.  Parsing is strict: the text must start with F, V or U (or be empty, meaning
X'00', as VSAM and some system data sets hold), each letter may appear once, A and M
exclude each other, and U records can be neither blocked nor spanned.
"""

from __future__ import annotations

from emulator.errors import FormatError

RECFM_F = 0x80
RECFM_V = 0x40
RECFM_U = 0xC0
RECFM_FORMAT = 0xC0
RECFM_T = 0x20  # track overflow (obsolete)
RECFM_B = 0x10
RECFM_S = 0x08  # F: standard; V: spanned
RECFM_A = 0x04  # ASA carriage control in byte 0
RECFM_M = 0x02  # machine carriage control in byte 0
RECFM_RESERVED = 0x01

#: LRECL=X (VS/VBS only): DS1LRECL X'8000', no limit on the logical record length
#: (FORMATS.md 7.2).
LRECL_X = 0x8000

_FORMAT_LETTER = {RECFM_F: "F", RECFM_V: "V", RECFM_U: "U", 0x00: ""}
_BIT_LETTERS = (("T", RECFM_T), ("B", RECFM_B), ("S", RECFM_S), ("A", RECFM_A), ("M", RECFM_M))
_RESERVED_TEXT = "(X'01')"


def recfm_text(raw: int) -> str:
    """DS1RECFM byte -> 'FB', 'VBS', 'U', 'FBA', 'FB(X'01')'; '' for X'00'."""
    text = _FORMAT_LETTER[raw & RECFM_FORMAT]
    for letter, bit in _BIT_LETTERS:
        if raw & bit:
            text += letter
    if raw & RECFM_RESERVED:
        text += _RESERVED_TEXT
    return text


def recfm_value(text: str) -> int:
    """'FB' -> X'90', 'VBS' -> X'58', 'U' -> X'C0', '' -> 0; FormatError otherwise.

    Letters after the first may come in any order ('FAB' = 'FBA'); lower case is
    accepted; a ``(X'01')`` suffix sets the reserved bit (what :func:`recfm_text` shows).
    """
    spec = text.strip().upper() if isinstance(text, str) else None
    if spec is None:
        raise FormatError(f"RECFM {text!r} is not text")
    value = 0
    if spec.endswith(_RESERVED_TEXT):
        spec, value = spec[: -len(_RESERVED_TEXT)], RECFM_RESERVED
    if not spec:
        return value
    first = {"F": RECFM_F, "V": RECFM_V, "U": RECFM_U}.get(spec[0])
    if first is None:
        raise FormatError(f"RECFM {text!r} must start with F, V or U")
    value |= first
    bits = dict(_BIT_LETTERS)
    for letter in spec[1:]:
        if letter not in bits or value & bits[letter]:
            raise FormatError(
                f"RECFM {text!r}: unexpected {letter!r} (F, V or U, then T, B, S, A or M once each)"
            )
        value |= bits[letter]
    if value & RECFM_A and value & RECFM_M:
        raise FormatError(f"RECFM {text!r}: A and M carriage control exclude each other")
    if first == RECFM_U and value & (RECFM_B | RECFM_S):
        raise FormatError(f"RECFM {text!r}: U records cannot be blocked or spanned")
    return value


__all__ = [
    "RECFM_F",
    "RECFM_V",
    "RECFM_U",
    "RECFM_FORMAT",
    "RECFM_T",
    "RECFM_B",
    "RECFM_S",
    "RECFM_A",
    "RECFM_M",
    "RECFM_RESERVED",
    "LRECL_X",
    "recfm_text",
    "recfm_value",
]
