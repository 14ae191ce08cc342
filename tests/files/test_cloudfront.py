"""CloudFront signed URLs, verified as CloudFront does: canned policy, RSA-SHA1, its base64."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta, timezone
from urllib.parse import parse_qs, urlsplit

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from chorus.files import CdnUrlSigner

KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
PEM = KEY.private_bytes(
    serialization.Encoding.PEM,
    serialization.PrivateFormat.PKCS8,
    serialization.NoEncryption(),
)
EXPIRES = datetime(2031, 5, 17, 12, 0, 0, tzinfo=UTC)


def cloudfront_b64decode(text: str) -> bytes:
    """CloudFront's URL-safe base64: `-` for `+`, `_` for `=`, `~` for `/`."""
    return base64.b64decode(text.replace("-", "+").replace("_", "=").replace("~", "/"))


def check_signed_url(url: str, public_key: rsa.RSAPublicKey, *, key_id: str) -> int:
    """What CloudFront checks of a canned-policy URL; returns the expiry (epoch seconds)."""
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    assert query["Key-Pair-Id"] == [key_id]
    expires = int(query["Expires"][0])
    resource = f"{parts.scheme}://{parts.netloc}{parts.path}"
    policy = json.dumps(
        {
            "Statement": [
                {"Resource": resource, "Condition": {"DateLessThan": {"AWS:EpochTime": expires}}}
            ]
        },
        separators=(",", ":"),
    )
    signature = cloudfront_b64decode(query["Signature"][0])
    public_key.verify(signature, policy.encode(), padding.PKCS1v15(), hashes.SHA1())
    return expires


def test_a_signed_url_carries_a_valid_signature_and_its_expiry() -> None:
    signer = CdnUrlSigner("cdn.example.com", "K2JCJMDEHXQW5F", PEM)
    url = signer.signed_url("chorus/files/f_1/original", expires_at=EXPIRES)
    assert url.startswith("https://cdn.example.com/chorus/files/f_1/original?")
    expiry = check_signed_url(url, KEY.public_key(), key_id="K2JCJMDEHXQW5F")
    assert expiry == int(EXPIRES.timestamp())


def test_the_expiry_is_the_same_instant_in_any_time_zone() -> None:
    signer = CdnUrlSigner("cdn.example.com", "K1", PEM)
    paris = EXPIRES.astimezone(timezone(timedelta(hours=2)))
    url = signer.signed_url("chorus/files/f_1/original", expires_at=paris)
    assert check_signed_url(url, KEY.public_key(), key_id="K1") == int(EXPIRES.timestamp())


@pytest.mark.parametrize(
    ("original", "tampered"),
    [("f_1/original", "f_2/original"), ("Expires=19", "Expires=29"), ("cdn.", "evil.")],
)
def test_a_changed_url_fails_verification(original: str, tampered: str) -> None:
    url = CdnUrlSigner("cdn.example.com", "K1", PEM).signed_url(
        "chorus/files/f_1/original", expires_at=EXPIRES
    )
    changed = url.replace(original, tampered)
    assert changed != url
    with pytest.raises(InvalidSignature):
        check_signed_url(changed, KEY.public_key(), key_id="K1")


def test_another_key_does_not_verify() -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    url = CdnUrlSigner("cdn.example.com", "K1", PEM).signed_url("a", expires_at=EXPIRES)
    with pytest.raises(InvalidSignature):
        check_signed_url(url, other.public_key(), key_id="K1")


def test_keys_that_cloudfront_cannot_use_are_refused_at_once() -> None:
    ec_pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    with pytest.raises(ValueError, match="RSA"):
        CdnUrlSigner("cdn.example.com", "K1", ec_pem)
    with pytest.raises(ValueError):  # noqa: PT011 (cryptography's own message)
        CdnUrlSigner("cdn.example.com", "K1", b"not a key")


@pytest.mark.parametrize("domain", ["", "https://cdn.example.com", "cdn.example.com/x", "a b"])
def test_a_domain_is_a_host_name(domain: str) -> None:
    with pytest.raises(ValueError, match="host name"):
        CdnUrlSigner(domain, "K1", PEM)


def test_a_naive_expiry_is_refused() -> None:
    signer = CdnUrlSigner("cdn.example.com", "K1", PEM)
    with pytest.raises(ValueError, match="timezone-aware"):
        signer.signed_url("a", expires_at=datetime(2031, 1, 1))
