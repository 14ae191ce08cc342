"""What a file really is: its content type sniffed from the bytes, checked against an allow-list.

The client's declared type is never trusted: the type stored and served is the
sniffed one, and a declaration that contradicts it is refused (a disguised
file). Binary formats are recognised by `filetype` (magic numbers in the first
8 KiB); anything else is plain text only if the whole file is UTF-8 without
NUL, and text that a browser would sniff as HTML or XML (SVG included) is
classified as such, so it is refused even when sent as `text/plain`.

`check_type` is blocking (it reads the file): run it with `trio.to_thread.run_sync`.
"""

from __future__ import annotations

import codecs
from collections.abc import Set
from pathlib import Path
from typing import Final

import attrs
import filetype

from chorus.files._reasons import Rejection
from chorus.metrics import FILE_REJECTIONS

SNIFF_BYTES: Final = 8192
"""How much of the head the binary signatures look at (what `filetype` reads)."""

NO_CLAIM: Final = "application/octet-stream"
"""A declared type that claims nothing (what browsers send when they do not know)."""

TEXT: Final = "text/plain"
HTML: Final = "text/html"
XML: Final = "application/xml"
SVG: Final = "image/svg+xml"

INLINE_SAFE: Final = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
"""Types a browser may show inline: raster images only (after `process_image`).

Everything else is served as an attachment (`Content-Disposition: attachment`).
"""

ALLOWED: Final = INLINE_SAFE | frozenset(
    {
        TEXT,
        "application/pdf",
        "application/zip",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        "application/vnd.oasis.opendocument.text",
        "application/vnd.oasis.opendocument.spreadsheet",
        "application/vnd.oasis.opendocument.presentation",
    }
)
"""The default allow-list: raster images, PDF, plain text, zip and office documents.

Never executables, HTML, XML or SVG (script runs in them when opened), nor
anything unrecognised.
"""

# Other names clients use for an allowed type (normalised before comparing).
_ALIASES: Final = {
    "image/jpg": "image/jpeg",
    "image/pjpeg": "image/jpeg",
    "image/x-png": "image/png",
    "image/apng": "image/png",  # an animated PNG is a PNG (Pillow opens it as one)
    "application/x-zip-compressed": "application/zip",
    "application/x-pdf": "application/pdf",
}
# Declarations that fit a file sniffed as plain text (browsers name text by its extension).
_TEXT_DECLARATIONS: Final = frozenset(
    {TEXT, "text/markdown", "text/x-markdown", "text/csv", "text/tab-separated-values",
     "application/json"}
)  # fmt: skip
# WHATWG MIME Sniffing, "rules for identifying an unknown MIME type": a browser that
# sniffs treats text starting (after whitespace) with one of these tags, then a space
# or `>`, as HTML, and `<!--` too. Other `<?` and `<!` starts are XML (SVG's doctype).
_HTML_TAGS: Final = tuple(
    f"<{tag}".encode()
    for tag in ("!doctype html", "html", "head", "script", "iframe", "h1", "div", "font",
                "table", "a", "style", "title", "b", "body", "br", "p")
)  # fmt: skip
_TAG_ENDS: Final = (b"", b" ", b">")
_BOM: Final = codecs.BOM_UTF8


@attrs.frozen
class TypeVerdict:
    """The outcome of `check_type`.

    `content_type` is always the sniffed type (store and serve that one, never the
    declared one); `rejection` is None when the file may be kept.
    """

    content_type: str
    rejection: Rejection | None = None

    @property
    def accepted(self) -> bool:
        return self.rejection is None


def normalize(content_type: str) -> str:
    """`content_type` lower-cased, without parameters (`; charset=...`), aliases resolved."""
    bare = content_type.split(";", 1)[0].strip().lower()
    return _ALIASES.get(bare, bare)


def inline_safe(content_type: str) -> bool:
    """True when a file of this (sniffed) type may be shown inline in a browser."""
    return normalize(content_type) in INLINE_SAFE


def _markup(head: bytes) -> str | None:
    """HTML, SVG or XML when a browser could treat this text as markup, else None."""
    start = head.removeprefix(_BOM).lstrip(b" \t\n\r\f").lower()
    if not start.startswith(b"<"):
        return None
    if b"<svg" in start:
        return SVG
    if start.startswith(b"<!--") or any(
        start.startswith(tag) and start[len(tag) : len(tag) + 1] in _TAG_ENDS for tag in _HTML_TAGS
    ):
        return HTML
    if start.startswith((b"<?", b"<!")):  # a declaration, doctype or CDATA: XML of some kind
        return XML
    return None


def _utf8_text(head: bytes, *, final: bool) -> bool:
    """True when `head` is UTF-8 without NUL (a sequence cut at the end is fine unless `final`)."""
    if b"\0" in head:
        return False
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=final)
    except UnicodeDecodeError:
        return False
    return True


def sniff(head: bytes, *, complete: bool = False) -> str:
    """The content type of a file that starts with `head` (its first `SNIFF_BYTES` or more).

    `complete` says `head` is the whole file (so a cut UTF-8 sequence at its end
    is an error). Unrecognised binary data is `application/octet-stream`. Text
    is judged on `head` only: `check_type` reads the rest.
    """
    guessed: str | None = filetype.guess_mime(head[:SNIFF_BYTES])
    if guessed is not None:
        return normalize(guessed)
    if not _utf8_text(head, final=complete):
        return NO_CLAIM
    return _markup(head[:SNIFF_BYTES]) or TEXT


def _rest_is_text(path: Path, chunk_size: int = 1 << 16) -> bool:
    """True when the whole file is UTF-8 without NUL (read in bounded chunks)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    with path.open("rb") as file:
        while chunk := file.read(chunk_size):
            if b"\0" in chunk:
                return False
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError:
                return False
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def _declaration_fits(declared: str, sniffed: str) -> bool:
    claim = normalize(declared)
    if claim in ("", NO_CLAIM):
        return True
    if sniffed == TEXT:
        return claim in _TEXT_DECLARATIONS
    return claim == sniffed


def _refuse(content_type: str, reason: Rejection) -> TypeVerdict:
    FILE_REJECTIONS.labels(reason.value).inc()
    return TypeVerdict(content_type, reason)


def check_type(path: Path, declared: str, *, allowed: Set[str] = ALLOWED) -> TypeVerdict:
    """Sniff the file at `path` and judge it against `allowed` and the `declared` type.

    Blocking (reads the file in bounded chunks; never the whole file at once).
    Refusals, in this order: `empty` (zero bytes), `type_not_allowed` (the
    sniffed type is not in `allowed`), `type_mismatch` (`declared` names another
    type; empty or `application/octet-stream` claims nothing). Each refusal is
    counted in `chorus_file_rejections_total`.
    """
    with path.open("rb") as file:
        head = file.read(SNIFF_BYTES + 1)
    if not head:
        return _refuse(NO_CLAIM, Rejection.EMPTY)
    sniffed = sniff(head, complete=len(head) <= SNIFF_BYTES)
    if sniffed == TEXT and len(head) > SNIFF_BYTES and not _rest_is_text(path):
        sniffed = NO_CLAIM
    if sniffed not in allowed:
        return _refuse(sniffed, Rejection.TYPE_NOT_ALLOWED)
    if not _declaration_fits(declared, sniffed):
        return _refuse(sniffed, Rejection.TYPE_MISMATCH)
    return TypeVerdict(sniffed)
