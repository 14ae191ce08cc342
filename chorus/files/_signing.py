"""HMAC-signed, expiring URLs for files the node serves itself (the local backend).

A URL names a file and a variant; its query carries `exp` (Unix seconds),
`disp` (`inline` or `attachment`) and `sig`, an HMAC-SHA256 over all of them.
Everything that changes the response is signed, so a URL cannot be turned
into another file, variant, disposition or lifetime. Who may have a URL is
decided when it is issued (only to those allowed to read the message);
deleting the file stops delivery at once, since the node checks the file
record on every request, before and independently of the signature.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Mapping
from typing import cast

from ._delivery import Disposition

MIN_SECRET_BYTES = 32

_FIELD = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
_DISPOSITIONS = ("inline", "attachment")
_PURPOSE = b"chorus file url v1"


class UrlRefused(Exception):
    """The URL does not grant access; the HTTP answer is the same for every subclass."""


class InvalidSignature(UrlRefused):
    """The URL was not issued by this node's key, or was changed since (or is malformed)."""


class UrlExpired(UrlRefused):
    """The URL was genuine but its expiry time has passed."""


class UrlSigner:
    """Issues and checks file URLs with one secret key (at least 32 random bytes).

    Verification is constant-time in the signature (`hmac.compare_digest`) and
    checks the signature before the expiry, so `UrlExpired` is only ever said
    of URLs this key issued.
    """

    def __init__(self, secret: bytes) -> None:
        if len(secret) < MIN_SECRET_BYTES:
            raise ValueError(f"a URL signing secret needs at least {MIN_SECRET_BYTES} bytes")
        self._secret = secret

    def sign(
        self, file_id: str, variant: str, *, disposition: Disposition, expires_at: int
    ) -> dict[str, str]:
        """The query parameters that let anyone holding them fetch this file until `expires_at`.

        `file_id` and `variant` are generated names (letters, digits, `_.-`);
        anything else is a `ValueError`.
        """
        _check_field(file_id)
        _check_field(variant)
        if disposition not in _DISPOSITIONS:
            raise ValueError(f"invalid disposition {disposition!r}")
        exp = str(int(expires_at))
        return {
            "exp": exp,
            "disp": disposition,
            "sig": self._mac(file_id, variant, disposition, exp),
        }

    def verify(
        self, file_id: str, variant: str, query: Mapping[str, str], *, now: float
    ) -> Disposition:
        """Check a request's query for this file; return the disposition it was signed with.

        Raises `InvalidSignature` for a missing, malformed or wrong field, and
        `UrlExpired` when a genuine URL's `exp` is not after `now` (Unix seconds).
        """
        exp = query.get("exp", "")
        disposition = query.get("disp", "")
        signature = query.get("sig", "")
        if not (
            _FIELD.fullmatch(file_id)
            and _FIELD.fullmatch(variant)
            and exp.isascii()
            and exp.isdigit()
            and len(exp) <= 20
            and disposition in _DISPOSITIONS
        ):
            raise InvalidSignature("malformed file URL")
        expected = self._mac(file_id, variant, disposition, exp)
        if not hmac.compare_digest(expected.encode(), signature.encode("utf-8", "replace")):
            raise InvalidSignature("bad file URL signature")
        if int(exp) <= now:
            raise UrlExpired(f"file URL expired at {exp}")
        return cast(Disposition, disposition)

    def _mac(self, *fields: str) -> str:
        # Length-prefixed fields: no two different tuples share a message.
        message = _PURPOSE + b"".join(
            len(data).to_bytes(4, "big") + data for data in (f.encode() for f in fields)
        )
        digest = hmac.new(self._secret, message, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _check_field(value: str) -> None:
    if not _FIELD.fullmatch(value):
        raise ValueError(f"invalid file URL field {value!r}")
