"""An independent check of S3 presigned URLs (AWS Signature Version 4, query form).

moto serves presigned URLs without checking them, so the tests check what S3
would: the signature over the method, path, every query parameter and the
host, and the expiry. Written from AWS's published algorithm, not botocore's
code, so it can disagree with it.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl, quote, urlsplit


class PresignRefused(Exception):
    """What S3 would answer with 403."""


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode(), hashlib.sha256).digest()


def check_presigned_get(url: str, *, secret_access_key: str, now: datetime) -> None:
    """Raise `PresignRefused` unless `url` is a valid, unexpired presigned GET at `now`."""
    parts = urlsplit(url)
    params = dict(parse_qsl(parts.query, keep_blank_values=True, strict_parsing=True))
    signature = params.pop("X-Amz-Signature", "")
    if (
        params.get("X-Amz-Algorithm") != "AWS4-HMAC-SHA256"
        or params.get("X-Amz-SignedHeaders") != "host"
    ):
        raise PresignRefused("not a SigV4 query signature over the host header")
    query = "&".join(
        f"{quote(name, safe='-_.~')}={quote(value, safe='-_.~')}"
        for name, value in sorted(params.items())
    )
    request = "\n".join(
        ["GET", parts.path, query, f"host:{parts.netloc}\n", "host", "UNSIGNED-PAYLOAD"]
    )
    stamp = params["X-Amz-Date"]
    scope = params["X-Amz-Credential"].split("/", 1)[1]
    day, region, service, _ = scope.split("/")
    to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", stamp, scope, hashlib.sha256(request.encode()).hexdigest()]
    )
    key = _hmac(f"AWS4{secret_access_key}".encode(), day)
    for part in (region, service, "aws4_request"):
        key = _hmac(key, part)
    if not hmac.compare_digest(
        hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest(), signature
    ):
        raise PresignRefused("SignatureDoesNotMatch")
    signed_at = datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    if now > signed_at + timedelta(seconds=int(params["X-Amz-Expires"])):
        raise PresignRefused("Request has expired")
