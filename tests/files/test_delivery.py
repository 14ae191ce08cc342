"""Delivery headers: inline only for safe raster images, names quoted so no name breaks a header."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from werkzeug.http import parse_options_header

from chorus.files import (
    INLINE_SAFE,
    SANDBOX_POLICY,
    content_disposition,
    delivery_headers,
    disposition_for,
)


@pytest.mark.parametrize(
    "content_type", ["image/jpeg", "image/png", "image/gif", "image/webp", "IMAGE/PNG; x=1"]
)
def test_safe_raster_images_are_inline(content_type: str) -> None:
    assert disposition_for(content_type) == "inline"
    assert content_disposition("cat.png", content_type).startswith("inline; ")


@pytest.mark.parametrize(
    "content_type",
    [
        "image/svg+xml",
        "text/html",
        "application/pdf",
        "text/plain",
        "application/octet-stream",
        "image/bmp",
        "image/png-but-not",
        "",
    ],
)
def test_everything_else_is_an_attachment(content_type: str) -> None:
    assert disposition_for(content_type) == "attachment"
    assert content_disposition("x", content_type).startswith("attachment; ")


def test_a_download_link_forces_attachment_and_inline_cannot_be_forced() -> None:
    assert content_disposition("a.png", "image/png", disposition="attachment").startswith(
        "attachment; "
    )
    assert content_disposition("a.html", "text/html", disposition="inline").startswith(
        "attachment; "
    )
    assert {"image/jpeg", "image/png", "image/gif", "image/webp"} == INLINE_SAFE


@pytest.mark.parametrize(
    ("name", "fallback", "decoded"),
    [
        ("report.pdf", "report.pdf", "report.pdf"),
        ('a "quoted" name.pdf', "a _quoted_ name.pdf", 'a "quoted" name.pdf'),
        ("x\r\nSet-Cookie: a=b.pdf", "xSet-Cookie: a=b.pdf", "xSet-Cookie: a=b.pdf"),
        ("naïve résumé.pdf", "na_ve r_sum_.pdf", "naïve résumé.pdf"),
        ("日本語.txt", "___.txt", "日本語.txt"),
        ("a;b=c, d.txt", "a;b=c, d.txt", "a;b=c, d.txt"),
        ("100%25.txt", "100_25.txt", "100%25.txt"),
        ("back\\slash.txt", "back_slash.txt", "back_slash.txt"),
        ("../../etc/passwd", ".._.._etc_passwd", ".._.._etc_passwd"),
        ("\x00\x1b\x7f", "file", "file"),
        ("   ", "file", "file"),
        ("emoji 🎉.png", "emoji _.png", "emoji 🎉.png"),
    ],
)
def test_hostile_names_are_quoted(name: str, fallback: str, decoded: str) -> None:
    value = content_disposition(name, "application/pdf")
    assert value.isascii()
    assert value.isprintable()
    assert f'filename="{fallback}"' in value
    kind, options = parse_options_header(value)  # what a browser-grade parser sees
    assert kind == "attachment"
    assert options["filename"] == decoded


@settings(deadline=None)  # a loaded CI machine is no failure
@given(st.text())
def test_any_name_gives_one_printable_ascii_header_that_decodes_to_it(name: str) -> None:
    value = content_disposition(name, "image/png")
    assert value.isascii()
    assert value.isprintable()
    kind, options = parse_options_header(value)
    assert kind == "inline"
    assert set(options) == {"filename"}
    assert options["filename"]


def test_the_node_delivers_with_nosniff_and_a_sandbox() -> None:
    headers = delivery_headers("page.html", "text/html; charset=utf-8")
    assert headers == {
        "Content-Type": "text/html; charset=utf-8",
        "Content-Disposition": "attachment; filename=\"page.html\"; filename*=UTF-8''page.html",
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": SANDBOX_POLICY,
    }
    assert "sandbox" in SANDBOX_POLICY
    assert "default-src 'none'" in SANDBOX_POLICY
