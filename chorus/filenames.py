"""A file's original name, reduced to safe display metadata (for the server and the SDK).

Files are stored under generated ids; the name a client sent is only shown
(and offered as the download name). `display_name` guarantees the result:

- is one path component: no `/`, no `\\`, never `.` or `..`, never empty;
- holds no control characters, NUL, line breaks, bidi controls or zero-width
  spaces (the rules of `chorus.text`), nor lone surrogates, and at least one
  visible character;
- is NFC-normalised, with runs of whitespace collapsed to one space and no
  leading or trailing spaces or dots;
- is at most `MAX_LENGTH` characters, keeping a short extension when cut.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Final

from chorus.text import BIDI_CONTROLS, ZERO_WIDTH_SPACES, is_control, name_problem

MAX_LENGTH: Final = 255
"""Longest display name, in characters (what most file systems allow, in bytes, per name)."""

FALLBACK: Final = "file"
"""The name shown when nothing of the original is left."""

_MAX_EXTENSION: Final = 16
"""Longest suffix kept whole when a name is cut (`.jpeg`, `.tar.gz` parts, `.docx`)."""

_SEPARATORS: Final = re.compile(r"[/\\]")
_TRIM: Final = " ."
# A cut inside an emoji sequence must not leave a joiner (format character) dangling.
_DANGLING: Final = "Cf"


def _visible(char: str) -> str:
    """`char` as kept in a name: whitespace becomes a space, hidden characters vanish."""
    if char.isspace():
        return " "
    if is_control(char) or char in BIDI_CONTROLS or char in ZERO_WIDTH_SPACES:
        return ""
    if unicodedata.category(char) == "Cs":  # a lone surrogate cannot be encoded
        return ""
    return char


def _cut(name: str, max_length: int) -> str:
    """`name` shortened to `max_length` characters, its extension kept when short."""
    stem, dot, extension = name.rpartition(".")
    if not dot or not stem or len(extension) > _MAX_EXTENSION or len(extension) >= max_length - 1:
        stem, dot, extension = name, "", ""
    room = max_length - len(dot) - len(extension)
    stem = stem[:room]
    while stem and unicodedata.category(stem[-1]) == _DANGLING:
        stem = stem[:-1]
    return stem.rstrip(_TRIM) + dot + extension


def display_name(raw: str, *, max_length: int = MAX_LENGTH) -> str:
    """The original file name `raw` as safe display metadata (see the module's guarantees).

    Only the last path component is kept (both separators count, so a Windows
    path gives its file name too). Never raises; returns `FALLBACK` when
    nothing visible is left (`chorus.text.name_problem`'s rule).
    """
    name = _SEPARATORS.split(unicodedata.normalize("NFC", raw))[-1]
    name = "".join(_visible(char) for char in name)
    name = " ".join(name.split()).strip(_TRIM)
    if len(name) > max_length:
        name = _cut(name, max_length).strip(_TRIM)
    # Left: nothing, or only invisible characters (soft hyphens, marks): `chorus.text` says.
    return name if name and name_problem(name) is None else FALLBACK
