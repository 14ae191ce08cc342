"""`chorus.text`: which names are refused, and how clients print other people's text."""

from __future__ import annotations

from chorus.text import name_problem, printable


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
