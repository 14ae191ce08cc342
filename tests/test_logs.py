"""Redaction of secrets before they reach messages and logs."""

from __future__ import annotations

from chorus.logs import redact_url


def test_redact_url_hides_only_the_password() -> None:
    assert redact_url("postgresql://chorus:s3cr@t@db:5432/chorus") == (
        "postgresql://chorus:***@db:5432/chorus"
    )
    assert redact_url("redis://:s3cret@cache:6379/0") == "redis://:***@cache:6379/0"
    assert redact_url("postgresql://chorus@db/chorus") == "postgresql://chorus@db/chorus"
    assert redact_url("") == ""
