"""Original file names become safe display metadata, never a path (issue #13)."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chorus.files import display_name
from chorus.text import BIDI_CONTROLS, ZERO_WIDTH_SPACES, name_problem


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("holiday.jpg", "holiday.jpg"),
        ("../../etc/passwd", "passwd"),
        ("..\\..\\Windows\\System32\\cmd.exe", "cmd.exe"),
        ("C:\\Users\\ann\\report.pdf", "report.pdf"),
        ("/var/tmp/", "file"),
        ("..", "file"),
        (".", "file"),
        ("", "file"),
        ("     ", "file"),
        ("\u200b\u2060\ufeff", "file"),
        ("\u00ad\u0301.", "file"),  # a soft hyphen and an accent: nothing visible
        ("invoice.pdf\0.exe", "invoice.pdf.exe"),
        ("\x00\x01\x1b[31mred\x1b[0m.txt", "[31mred[0m.txt"),
        ("line\nbreak\r\n.txt", "line break .txt"),
        ("tab\there.txt", "tab here.txt"),
        ("  many    spaces  .txt ", "many spaces .txt"),
        # The right-to-left override would show "invoice\u202egpj.exe" as "invoiceexe.jpg".
        ("invoice\u202egpj.exe", "invoicegpj.exe"),
        ("\u2066isolated\u2069\u200e.png", "isolated.png"),
        ("zero\u200bwidth.png", "zerowidth.png"),
        (".bashrc", "bashrc"),
        ("trailing dots...", "trailing dots"),
        ("Cafe\u0301.txt", "Caf\u00e9.txt"),  # NFC: one code point for é
        ("👩‍👩‍👧 family 🇫🇷.png", "👩‍👩‍👧 family 🇫🇷.png"),  # joiners in emoji kept
        ("\ud800lone.txt", "lone.txt"),
    ],
)
def test_hostile_names_are_shown_safely(raw: str, shown: str) -> None:
    assert display_name(raw) == shown


def test_a_thousand_characters_are_cut_keeping_the_extension() -> None:
    name = display_name("a" * 1000 + ".png")
    assert len(name) == 255
    assert name == "a" * 251 + ".png"


def test_a_long_name_without_a_short_extension_is_cut_plainly() -> None:
    assert display_name("b" * 1000) == "b" * 255
    assert display_name("c." + "d" * 1000) == ("c." + "d" * 1000)[:255]


def test_a_cut_leaves_no_joiner_dangling() -> None:
    # The cut falls right after the zero-width joiner of an emoji sequence.
    assert display_name("x" * 7 + "👩\u200d👧", max_length=9) == "x" * 7 + "👩"
    # A combining mark stays with its letter (q with an acute has no precomposed form).
    assert display_name("x" * 9 + "q\u0301" + "yy", max_length=11) == "x" * 9 + "q\u0301"


@given(st.text(max_size=400))
def test_any_name_gives_one_bounded_visible_component(raw: str) -> None:
    name = display_name(raw)
    assert 0 < len(name) <= 255
    assert "/" not in name
    assert "\\" not in name
    assert name not in (".", "..")
    assert name == name.strip(" .")
    assert not set(name) & (BIDI_CONTROLS | ZERO_WIDTH_SPACES)
    assert unicodedata.is_normalized("NFC", name) or len(name) == 255
    assert "  " not in name
    name.encode()  # no lone surrogate
    assert name_problem(name) is None
