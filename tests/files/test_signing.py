"""Local file URLs: HMAC-signed, expiring, bound to everything that shapes the response."""

from __future__ import annotations

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chorus.files import InvalidSignature, UrlExpired, UrlRefused, UrlSigner

SECRET = os.urandom(32)
NOW = 1_800_000_000
SIGNER = UrlSigner(SECRET)


def issued(**overrides: str) -> dict[str, str]:
    query = SIGNER.sign("f_123", "original", disposition="attachment", expires_at=NOW + 300)
    return query | overrides


def last_character_changed(signature: str) -> str:
    """`signature` with another last character (the key is random: so is that character)."""
    return signature[:-1] + ("B" if signature.endswith("A") else "A")


def test_a_url_is_valid_until_its_expiry_with_its_disposition() -> None:
    assert SIGNER.verify("f_123", "original", issued(), now=NOW) == "attachment"
    assert SIGNER.verify("f_123", "original", issued(), now=NOW + 299.999) == "attachment"
    inline = SIGNER.sign("f_123", "320", disposition="inline", expires_at=NOW + 1)
    assert SIGNER.verify("f_123", "320", inline, now=NOW) == "inline"


@pytest.mark.parametrize("now", [NOW + 300, NOW + 301, NOW + 10**9])
def test_an_expired_url_is_refused_as_expired(now: float) -> None:
    with pytest.raises(UrlExpired):
        SIGNER.verify("f_123", "original", issued(), now=now)


@pytest.mark.parametrize(
    ("file_id", "variant", "query"),
    [
        ("f_124", "original", issued()),  # another file
        ("f_123", "320", issued()),  # another variant
        ("f_123", "original", issued(exp=str(NOW + 301))),  # a longer life
        ("f_123", "original", issued(disp="inline")),  # shown instead of downloaded
        ("f_123", "original", issued(sig=last_character_changed(issued()["sig"]))),
        ("f_123", "original", issued(sig=issued()["sig"][:-1])),
        ("f_123", "original", issued(sig="")),
    ],
)
def test_a_changed_url_is_refused(file_id: str, variant: str, query: dict[str, str]) -> None:
    with pytest.raises(InvalidSignature):
        SIGNER.verify(file_id, variant, query, now=NOW)


def test_an_expired_url_that_was_also_changed_is_refused_for_its_signature() -> None:
    # Expiry is only said of genuine URLs.
    with pytest.raises(InvalidSignature):
        SIGNER.verify("f_123", "original", issued(exp=str(NOW - 1)), now=NOW)


def test_a_url_signed_with_another_key_is_refused() -> None:
    other = UrlSigner(os.urandom(32)).sign(
        "f_123", "original", disposition="attachment", expires_at=NOW + 300
    )
    with pytest.raises(InvalidSignature):
        SIGNER.verify("f_123", "original", other, now=NOW)


@pytest.mark.parametrize(
    "query",
    [
        {},
        {"exp": str(NOW + 300), "disp": "attachment"},
        issued(exp="-1"),
        issued(exp="1e9"),
        issued(exp="\uff11\uff12\uff13"),  # fullwidth digits: isdigit() yet not ASCII
        issued(exp="9" * 21),
        issued(disp="download"),
        issued(sig="é" * 43),
    ],
)
def test_a_malformed_url_is_refused(query: dict[str, str]) -> None:
    with pytest.raises(InvalidSignature):
        SIGNER.verify("f_123", "original", query, now=NOW)


@pytest.mark.parametrize(("file_id", "variant"), [("../x", "original"), ("f_1", ""), ("f/1", "a")])
def test_only_generated_names_are_signed_or_accepted(file_id: str, variant: str) -> None:
    with pytest.raises(ValueError, match="invalid file URL field"):
        SIGNER.sign(file_id, variant, disposition="inline", expires_at=NOW)
    with pytest.raises(InvalidSignature):
        SIGNER.verify(file_id, variant, issued(), now=NOW)


def test_a_short_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 32 bytes"):
        UrlSigner(b"x" * 31)


def test_every_error_is_a_refusal() -> None:
    assert issubclass(InvalidSignature, UrlRefused)
    assert issubclass(UrlExpired, UrlRefused)


fields = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,20}", fullmatch=True)


@settings(deadline=None)  # a loaded CI machine is no failure
@given(file_id=fields, variant=fields, other_id=fields, other_variant=fields)
def test_a_url_opens_its_own_file_and_variant_only(
    file_id: str, variant: str, other_id: str, other_variant: str
) -> None:
    query = SIGNER.sign(file_id, variant, disposition="inline", expires_at=NOW + 1)
    assert SIGNER.verify(file_id, variant, query, now=NOW) == "inline"
    if (other_id, other_variant) != (file_id, variant):
        with pytest.raises(InvalidSignature):
            SIGNER.verify(other_id, other_variant, query, now=NOW)
