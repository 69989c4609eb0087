"""EBCDIC text: the code pages users name, and record <-> line conversion.

Python has cp037, cp500 and cp1140; the ``ebcdic`` package adds cp1047 (FORMATS.md 10).
Records carry no newline bytes, so text is converted record by record.
"""

from __future__ import annotations

import codecs

import ebcdic  # noqa: F401  (registers cp1047 and friends with the codecs module)

from emulator.errors import FormatError, NotFoundError

DEFAULT = "1047"
SUPPORTED = ("1047", "037", "500", "1140", "273", "1148")


def codec_name(codepage: str | int = DEFAULT) -> str:
    """'1047', 'IBM-1047', 'cp1047', 37 -> the Python codec name ('cp1047', 'cp037')."""
    text = str(codepage).lower().replace("ibm-", "").replace("ibm", "").replace("cp", "")
    text = text.lstrip("0") or "0"
    name = f"cp{int(text):03d}" if text.isdigit() else f"cp{text}"
    try:
        codecs.lookup(name)
    except LookupError:
        raise NotFoundError(
            f"unknown code page {codepage!r} (known: {', '.join(SUPPORTED)})"
        ) from None
    return name


def decode(data: bytes, codepage: str | int = DEFAULT) -> str:
    """EBCDIC bytes -> str; every byte maps to a character, so this never fails."""
    return data.decode(codec_name(codepage))


def encode(text: str, codepage: str | int = DEFAULT, where: str = "") -> bytes:
    """str -> EBCDIC bytes; a character the code page lacks is a FormatError."""
    try:
        return text.encode(codec_name(codepage))
    except UnicodeEncodeError as exc:
        bad = text[exc.start]
        raise FormatError(
            f"character {bad!r} (U+{ord(bad):04X}) at column {exc.start + 1} has no code point in "
            f"code page {codepage}",
            where=where,
        ) from None


def blank_pad(text: str, length: int, codepage: str | int = DEFAULT) -> bytes:
    """Encode a name or label and pad it with EBCDIC blanks (X'40') to ``length``."""
    data = encode(text, codepage)
    if len(data) > length:
        raise FormatError(f"{text!r} is longer than {length} characters")
    return data + b"\x40" * (length - len(data))


def unpad(data: bytes, codepage: str | int = DEFAULT) -> str:
    """Decode a blank- or NUL-padded EBCDIC name."""
    return decode(data, codepage).rstrip(" \x00")


__all__ = ["DEFAULT", "SUPPORTED", "codec_name", "decode", "encode", "blank_pad", "unpad"]
