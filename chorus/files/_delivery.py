"""The response headers a stored file is delivered with, by the node or by S3.

One rule for every backend: a file is shown `inline` only when it is a safe
raster image (JPEG, PNG, GIF, WebP); anything else is an `attachment`, so a
browser never renders an uploaded document (HTML, SVG, PDF, ...) in a page.
The download name is quoted per RFC 6266 / RFC 8187 (`filename*=UTF-8''…`)
with an ASCII fallback, so no name (quotes, CR/LF, `;`, non-ASCII) can break
the header or smuggle another one.
"""

from __future__ import annotations

import re
from typing import Literal
from urllib.parse import quote

from ._types import inline_safe

Disposition = Literal["inline", "attachment"]

SANDBOX_POLICY = "default-src 'none'; style-src 'unsafe-inline'; sandbox"
"""The Content-Security-Policy of a delivered file: no script, no plugin, no fetch."""

# RFC 8187 attr-char, less the alphanumerics that `quote` always keeps.
_ATTR_CHAR_PUNCTUATION = "!#$&+-.^_`|~"
# What may stand in the quoted-string fallback: printable ASCII less `"`, `\`
# and `%` (some browsers percent-decode the fallback).
_UNSAFE_IN_FALLBACK = re.compile(r'[^\x20-\x7e]|["\\%]')
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def disposition_for(content_type: str) -> Disposition:
    """`inline` for the safe raster image types (`INLINE_SAFE`), `attachment` for the rest."""
    return "inline" if inline_safe(content_type) else "attachment"


def content_disposition(
    display_name: str, content_type: str, *, disposition: Disposition | None = None
) -> str:
    """The Content-Disposition value for a file named `display_name` of `content_type`.

    `disposition` forces `attachment` (a download link); asking for `inline`
    on a type that is not a safe image still gives `attachment`. The result
    is pure printable ASCII whatever the name; its length grows with the
    name's (up to 9 bytes a character), so names are bounded upstream (the
    stored display name).
    """
    kind = disposition_for(content_type)
    if disposition == "attachment":
        kind = "attachment"
    name = _CONTROL.sub("", display_name).replace("/", "_").replace("\\", "_").strip()
    if not name:
        name = "file"
    fallback = _UNSAFE_IN_FALLBACK.sub("_", name)
    encoded = quote(name, safe=_ATTR_CHAR_PUNCTUATION, encoding="utf-8")
    return f"{kind}; filename=\"{fallback}\"; filename*=UTF-8''{encoded}"


def delivery_headers(
    display_name: str, content_type: str, *, disposition: Disposition | None = None
) -> dict[str, str]:
    """Every security-relevant header of a file response served by the node.

    Content-Type as stored (the type was checked at upload), the
    Content-Disposition rule above, `nosniff` so the browser keeps that type,
    and a sandboxing CSP in case a document is opened anyway.
    """
    return {
        "Content-Type": content_type,
        "Content-Disposition": content_disposition(
            display_name, content_type, disposition=disposition
        ),
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": SANDBOX_POLICY,
    }
