"""structlog set-up (readable console lines on a terminal, JSON lines otherwise), and redaction."""

from __future__ import annotations

import logging
import re
import sys
from typing import TextIO

import structlog

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}
_PASSWORD = re.compile(r"(://[^:/@]*:)[^/]*@")


def redact_url(url: str) -> str:
    """The URL with its password (if any) replaced by `***`, for messages and logs.

    Any scheme: database, Redis and object-store URLs all carry credentials this way.
    """
    return _PASSWORD.sub(r"\1***@", url)


def configure_logging(fmt: str = "auto", level: str = "info", stream: TextIO | None = None) -> None:
    """Route every structlog logger to `stream` (stderr) at `level` and above.

    `fmt` is "console", "json", or "auto" (console when `stream` is a terminal).
    Each line carries a timestamp, the level, the event name and its bound
    context (conn, room, user ids). Secrets are never passed to loggers.
    """
    stream = sys.stderr if stream is None else stream
    if fmt == "auto":
        fmt = "console" if stream.isatty() else "json"
    renderer: structlog.typing.Processor = (
        structlog.dev.ConsoleRenderer(colors=stream.isatty())
        if fmt == "console"
        else structlog.processors.JSONRenderer()
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS[level]),
        logger_factory=structlog.PrintLoggerFactory(stream),
        # Not cached: tests swap the configuration (structlog.testing.capture_logs).
        cache_logger_on_first_use=False,
    )


def silence_logging() -> None:
    """Drop every structlog line: for a program whose output is a person's screen."""
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL),
        logger_factory=structlog.ReturnLoggerFactory(),  # renders nothing anywhere
        cache_logger_on_first_use=False,
    )
