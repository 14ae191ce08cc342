"""Redaction of secrets before they reach messages and logs."""

from __future__ import annotations

import errno
import io

import structlog
from prometheus_client import REGISTRY

from chorus.logs import configure_logging, redact_url, write_line


def test_redact_url_hides_only_the_password() -> None:
    assert redact_url("postgresql://chorus:s3cr@t@db:5432/chorus") == (
        "postgresql://chorus:***@db:5432/chorus"
    )
    assert redact_url("redis://:s3cret@cache:6379/0") == "redis://:***@cache:6379/0"
    assert redact_url("postgresql://chorus@db/chorus") == "postgresql://chorus@db/chorus"
    assert redact_url("") == ""


class FullDisk(io.StringIO):
    """A destination whose every write fails as a full disk does."""

    def write(self, _text: str) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")


def failures() -> float:
    return REGISTRY.get_sample_value("chorus_log_write_failures_total") or 0.0


def test_a_log_line_that_cannot_be_written_is_dropped_and_counted() -> None:
    before = failures()
    configure_logging("json", "info", FullDisk())
    try:
        structlog.get_logger().info("lost.line")  # does not raise
        structlog.get_logger().debug("below.the.level")  # not written, not counted
    finally:
        structlog.reset_defaults()
    assert failures() == before + 1


def test_write_line_tells_whether_the_line_was_written() -> None:
    stream = io.StringIO()
    assert write_line(stream, "hello")
    assert stream.getvalue() == "hello\n"
    assert not write_line(FullDisk(), "lost")
