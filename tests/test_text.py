"""`chorus.text`: which names are refused, and how clients print other people's text."""

from __future__ import annotations

import re

from chorus.text import NAME_PATTERN, NOT_BLANK_PATTERN, name_problem, printable

BMP = [chr(code) for code in range(0x10000)]
"""Every control, separator, bidi control and whitespace character is in the BMP."""


def test_printable_shows_escapes_bidi_controls_and_line_breaks() -> None:
    assert printable("\x1b[2Jhi\u202e\nfake\r") == "<U+001B>[2Jhi<U+202E>↵fake↵"
    assert printable("a\nb", one_line=False) == "a\nb"
    assert printable("a\rb", one_line=False) == "a↵b"
    assert printable("plain text 👩\u200d💻") == "plain text 👩\u200d💻"


def test_names_with_controls_or_nothing_visible_have_a_problem() -> None:
    assert name_problem("Ada") is None
    assert name_problem("\x07bell") is not None
    assert name_problem("\u2028") is not None
    assert name_problem("\u200f") is not None
    assert name_problem("\u200b\u00ad") is not None


def test_the_name_pattern_refuses_exactly_the_characters_name_problem_refuses() -> None:
    # The pattern is what /openapi.json publishes for display and room names (issue 12).
    pattern = re.compile(NAME_PATTERN)
    for char in BMP:
        name = "a" + char  # something visible: only the character's own rule applies
        assert (pattern.fullmatch(name) is None) == (name_problem(name) is not None), hex(ord(char))


def test_the_not_blank_pattern_is_what_strip_leaves_non_empty() -> None:
    pattern = re.compile(NOT_BLANK_PATTERN)
    for char in BMP:
        if char != "\x00":
            assert (pattern.fullmatch(char) is None) == (not char.strip()), hex(ord(char))
    assert pattern.fullmatch(" \t\u3000x\u2028") is not None
    assert pattern.fullmatch("a\x00") is None
