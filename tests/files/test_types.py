"""The content type is sniffed from the bytes and judged against an allow-list (issue #13)."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from chorus.files import ALLOWED, INLINE_SAFE, Rejection, check_type, inline_safe
from tests.clamdserver import EICAR
from tests.files.samples import SVG_WITH_SCRIPT, eicar_zip, executable, image_bytes, write


def rejections(reason: Rejection) -> float:
    value = REGISTRY.get_sample_value("chorus_file_rejections_total", {"reason": reason.value})
    return value or 0.0


@pytest.mark.parametrize(
    ("image_format", "content_type"),
    [("JPEG", "image/jpeg"), ("PNG", "image/png"), ("GIF", "image/gif"), ("WEBP", "image/webp")],
)
def test_raster_images_are_allowed_and_inline_safe(
    tmp_path: Path, image_format: str, content_type: str
) -> None:
    path = write(tmp_path / "picture", image_bytes((8, 8), image_format))
    verdict = check_type(path, content_type)
    assert verdict.accepted
    assert verdict.content_type == content_type
    assert inline_safe(verdict.content_type)


def test_a_zip_is_allowed_but_not_inline(tmp_path: Path) -> None:
    verdict = check_type(eicar_zip(tmp_path / "a.zip"), "application/zip")
    assert verdict.accepted  # the virus scan, not the type check, finds what is inside
    assert verdict.content_type == "application/zip"
    assert not inline_safe(verdict.content_type)


def test_a_pdf_is_allowed_but_not_inline(tmp_path: Path) -> None:
    path = write(tmp_path / "doc.pdf", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj <<>> endobj\n")
    verdict = check_type(path, "application/pdf")
    assert verdict.accepted
    assert not inline_safe(verdict.content_type)


def test_an_executable_named_png_is_refused(tmp_path: Path) -> None:
    before = rejections(Rejection.TYPE_NOT_ALLOWED)
    verdict = check_type(executable(tmp_path / "cat.png"), "image/png")
    assert verdict.rejection is Rejection.TYPE_NOT_ALLOWED
    assert verdict.content_type == "application/x-executable"
    assert rejections(Rejection.TYPE_NOT_ALLOWED) == before + 1


def test_a_windows_executable_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "setup.exe", b"MZ\x90\x00" + b"\0" * 200)
    assert check_type(path, "application/octet-stream").rejection is Rejection.TYPE_NOT_ALLOWED


@pytest.mark.parametrize("declared", ["image/svg+xml", "text/plain", "application/octet-stream"])
def test_an_svg_with_a_script_is_refused_whatever_it_claims(tmp_path: Path, declared: str) -> None:
    verdict = check_type(write(tmp_path / "logo.svg", SVG_WITH_SCRIPT), declared)
    assert verdict.rejection is Rejection.TYPE_NOT_ALLOWED
    assert verdict.content_type == "image/svg+xml"


@pytest.mark.parametrize(
    "markup",
    [
        b"<!DOCTYPE html><html><script>alert(1)</script></html>",
        b"\xef\xbb\xbf  \n<HTML>",
        b"<script>alert(document.cookie)</script>",
        b"<!-- comment --><p>hi</p>",
        b"<p>paragraph</p>",
        b"<iframe src=x>",
    ],
)
def test_text_a_browser_would_sniff_as_html_is_refused(tmp_path: Path, markup: bytes) -> None:
    verdict = check_type(write(tmp_path / "note.txt", markup), "text/plain")
    assert verdict.rejection is Rejection.TYPE_NOT_ALLOWED
    assert verdict.content_type == "text/html"


@pytest.mark.parametrize(
    "xml",
    [
        b'<?xml version="1.0"?><rss></rss>',
        # An SVG whose `<svg` comes after the sniffed head is still not plain text.
        b'<!DOCTYPE svg [<!ENTITY pad "' + b"x" * 9000 + b'">]><svg><script/></svg>',
    ],
)
def test_xml_is_refused(tmp_path: Path, xml: bytes) -> None:
    verdict = check_type(write(tmp_path / "feed.xml", xml), "")
    assert verdict.content_type == "application/xml"
    assert verdict.rejection is Rejection.TYPE_NOT_ALLOWED


@pytest.mark.parametrize(
    "text",
    [b"hello <b>world</b>", b"<pre-formatted> is not a tag we know", b"\xc3\xa9t\xc3\xa9\n", EICAR],
)
def test_plain_text_is_allowed(tmp_path: Path, text: bytes) -> None:
    verdict = check_type(write(tmp_path / "notes.txt", text), "text/plain; charset=utf-8")
    assert verdict.accepted
    assert verdict.content_type == "text/plain"
    assert not inline_safe(verdict.content_type)


@pytest.mark.parametrize("declared", ["text/markdown", "text/csv", "application/json", ""])
def test_text_may_be_declared_as_any_text_format(tmp_path: Path, declared: str) -> None:
    assert check_type(write(tmp_path / "data", b"a,b\n1,2\n"), declared).accepted


def test_text_declared_as_an_image_is_a_mismatch(tmp_path: Path) -> None:
    verdict = check_type(write(tmp_path / "x.png", b"just words"), "image/png")
    assert verdict.rejection is Rejection.TYPE_MISMATCH


def test_a_utf8_character_cut_by_the_sniffed_head_is_still_text(tmp_path: Path) -> None:
    # 8191 ASCII bytes, then "é" (2 bytes) straddling the 8 KiB head, then more text.
    path = write(tmp_path / "long.txt", b"a" * 8191 + "é".encode() + b"b" * 100)
    assert check_type(path, "text/plain").accepted


@pytest.mark.parametrize("tail", [b"\0", b"\xff\xfe", b"\xc3"])
def test_binary_after_the_head_is_not_text(tmp_path: Path, tail: bytes) -> None:
    # The head looks like text; the rest is read too, in chunks, and is not.
    path = write(tmp_path / "sneaky.txt", b"a" * 20_000 + tail + b"b" * 10)
    verdict = check_type(path, "text/plain")
    assert verdict.rejection is Rejection.TYPE_NOT_ALLOWED
    assert verdict.content_type == "application/octet-stream"


def test_a_short_file_ending_in_a_cut_character_is_not_text(tmp_path: Path) -> None:
    path = write(tmp_path / "cut.txt", b"abc\xc3")
    assert check_type(path, "text/plain").rejection is Rejection.TYPE_NOT_ALLOWED


def test_a_zero_byte_file_is_refused_as_empty(tmp_path: Path) -> None:
    before = rejections(Rejection.EMPTY)
    verdict = check_type(write(tmp_path / "empty.png", b""), "image/png")
    assert verdict.rejection is Rejection.EMPTY
    assert rejections(Rejection.EMPTY) == before + 1


def test_a_declared_type_that_does_not_match_is_refused(tmp_path: Path) -> None:
    png = write(tmp_path / "photo.jpg", image_bytes((8, 8), "PNG"))
    verdict = check_type(png, "image/jpeg")
    assert verdict.rejection is Rejection.TYPE_MISMATCH
    assert verdict.content_type == "image/png"


@pytest.mark.parametrize(
    "declared", ["application/octet-stream", "", "IMAGE/PNG", "image/png; name=x", "image/x-png"]
)
def test_no_claim_case_parameters_and_aliases_match(tmp_path: Path, declared: str) -> None:
    png = write(tmp_path / "photo", image_bytes((8, 8), "PNG"))
    assert check_type(png, declared).accepted


def test_jpg_is_an_alias_of_jpeg(tmp_path: Path) -> None:
    jpeg = write(tmp_path / "photo", image_bytes((8, 8), "JPEG"))
    assert check_type(jpeg, "image/jpg").accepted


def test_an_allow_list_can_be_narrowed(tmp_path: Path) -> None:
    path = write(tmp_path / "doc.txt", b"words")
    assert check_type(path, "text/plain", allowed=INLINE_SAFE).rejection is (
        Rejection.TYPE_NOT_ALLOWED
    )


def test_unknown_binary_is_octet_stream_and_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "blob", bytes(range(256)) * 4)
    verdict = check_type(path, "")
    assert verdict.content_type == "application/octet-stream"
    assert verdict.rejection is Rejection.TYPE_NOT_ALLOWED


def test_the_allow_list_holds_no_markup_or_executable() -> None:
    assert not ALLOWED & {"text/html", "image/svg+xml", "application/xml", "text/xml"}
    assert not {t for t in ALLOWED if "executable" in t or "msdownload" in t}
    assert INLINE_SAFE <= ALLOWED
