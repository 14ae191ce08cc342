"""Free text from users, shown to other users: what a name may hold, and how clients print it.

A display name is shown next to every message, so it must not be able to
move the cursor, recolour a terminal, reverse the text around it (bidi
overrides) or look empty. Message bodies may hold anything but NUL (the
protocol's rule), so clients neutralise them when printing instead.
"""

from __future__ import annotations

import unicodedata
from typing import Final

BIDI_CONTROLS: Final = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)
"""Characters that reorder the text around them (embeddings, overrides, isolates, marks)."""

ZERO_WIDTH_SPACES: Final = frozenset("\u180e\u200b\u2060\ufeff")
"""Invisible characters that join or separate nothing a reader can see.

(Mongolian vowel separator, zero-width space, word joiner, BOM.) The zero-width
joiner and non-joiner are not here: emoji sequences and several scripts need them.
"""

_LINE_BREAKS: Final = frozenset("\n\r\u0085\u2028\u2029")

_REFUSED_CLASS: Final = (
    "\\u0000-\\u001f\\u007f-\\u009f\\u2028\\u2029"  # Cc, Zl, Zp
    "\\u061c\\u200e\\u200f\\u202a-\\u202e\\u2066-\\u2069"  # BIDI_CONTROLS
)
NAME_PATTERN: Final = f"^[^{_REFUSED_CLASS}]*$"
"""The characters `name_problem` refuses, as a JSON Schema (ECMA-262) pattern.

Its other rule, `VISIBLE_RULE`, is left to the description: stating it needs
the Unicode categories Zs, Cf, Mn and Me, which few pattern engines know
(`\\p{Mn}`) and which would take hundreds of ranges to spell out.
"""
VISIBLE_RULE: Final = "at least one visible character"

WHITESPACE_CLASS: Final = (
    "\\u0009-\\u000d\\u001c-\\u0020\\u0085\\u00a0\\u1680\\u2000-\\u200a"
    "\\u2028\\u2029\\u202f\\u205f\\u3000"
)
"""The characters Python's `str.isspace` (and `str.strip`) counts as whitespace, as the body
of a regex character class (ECMA-262's `\\s` differs: it has U+FEFF, not U+001C-U+001F)."""
NOT_BLANK_PATTERN: Final = f"^[^\\u0000]*[^\\u0000{WHITESPACE_CLASS}][^\\u0000]*$"
"""A JSON Schema pattern for text that `str.strip` leaves non-empty (and without NUL)."""


def is_control(char: str) -> bool:
    """True for control characters (ASCII and C1) and line and paragraph separators."""
    return unicodedata.category(char) in ("Cc", "Zl", "Zp")


def name_problem(name: str) -> str | None:
    """Why `name` cannot be a display name, or None when it can.

    Refused: control characters (ASCII and C1: escapes, CR, LF, tab...), line
    and paragraph separators, bidi controls, and names with nothing visible
    (only spaces, zero-width and combining characters). Emoji sequences with
    joiners, variation selectors and tags are fine.
    """
    for char in name:
        if is_control(char):
            return f"no control characters or line breaks (found U+{ord(char):04X})"
        if char in BIDI_CONTROLS:
            return f"no bidi control characters (found U+{ord(char):04X})"
    if all(unicodedata.category(char) in ("Zs", "Cf", "Mn", "Me") for char in name):
        return VISIBLE_RULE
    return None


def printable(text: str, *, one_line: bool = True) -> str:
    """`text` safe to print on a terminal: controls and bidi controls shown as `<U+XXXX>`.

    With `one_line`, line breaks are shown as `↵`, so other people's text
    cannot start a line that looks like the client's own; without it, `\\n`
    is kept (for the client's own multi-line output).
    """
    if text.isprintable() and not (set(text) & BIDI_CONTROLS):
        return text  # the common case, checked in C
    out = []
    for char in text:
        if char in _LINE_BREAKS:
            out.append("↵" if one_line or char != "\n" else char)
        elif char in BIDI_CONTROLS or unicodedata.category(char) == "Cc":
            out.append(f"<U+{ord(char):04X}>")
        else:
            out.append(char)
    return "".join(out)
