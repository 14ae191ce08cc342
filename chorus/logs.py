"""structlog set-up (readable console lines on a terminal, JSON lines otherwise), and redaction."""

from __future__ import annotations

import io
import logging
import re
import sys
import threading
from typing import TextIO

import structlog

from chorus.metrics import LOG_WRITE_FAILURES

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}
_PASSWORD = re.compile(r"(://[^:/@]*:)[^/]*@")
# Text streams are not thread-safe, and worker threads (trio.to_thread) may log too.
_WRITE_LOCK = threading.Lock()


def redact_url(url: str) -> str:
    """The URL with its password (if any) replaced by `***`, for messages and logs.

    Any scheme: database, Redis and object-store URLs all carry credentials this way.
    """
    return _PASSWORD.sub(r"\1***@", url)


def write_line(stream: TextIO, line: str) -> bool:
    """Write `line` and a newline to `stream` and flush it; False if that failed.

    Never raises `OSError` (ENOSPC, EIO, EPIPE...): the line is dropped and counted
    in `chorus_log_write_failures_total`, because a full log disk must not stop a
    node (issue #12). Safe to call from several threads.
    """
    try:
        with _WRITE_LOCK:
            stream.write(line + "\n")
            stream.flush()
    except OSError:
        LOG_WRITE_FAILURES.inc()
        return False
    return True


def unbuffered(stream: TextIO) -> TextIO:
    """`stream`'s file descriptor, each write passed straight to it.

    A failed write then loses that text only. A buffered stream keeps the bytes it
    could not write and fails again at every later flush, down to the one at exit
    (status 120). A stream without a descriptor (a test's StringIO) is returned as is.
    """
    try:
        fd = stream.fileno()
    except (OSError, ValueError):  # io.UnsupportedOperation is both
        return stream
    raw = io.FileIO(fd, "w", closefd=False)
    return io.TextIOWrapper(raw, encoding=stream.encoding, errors=stream.errors, write_through=True)


class _LineLogger:
    """A structlog logger that writes each rendered event with `write_line`: it never raises."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def msg(self, message: str) -> None:
        write_line(self._stream, message)

    # structlog calls the method named after the level.
    log = debug = info = warn = warning = err = error = exception = critical = fatal = msg


def configure_logging(
    fmt: str = "auto",
    level: str = "info",
    stream: TextIO | None = None,
    *,
    report: structlog.typing.Processor | None = None,
) -> None:
    """Route every structlog logger to `stream` (stderr) at `level` and above.

    `fmt` is "console", "json", or "auto" (console when `stream` is a terminal).
    Each line carries a timestamp, the level, the event name and its bound
    context (conn, room, user ids). Secrets are never passed to loggers. A line
    that cannot be written is dropped and counted, never raised (`write_line`).
    `report` sees each event first (error tracking: `chorus.errortracking`).
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
            *([report] if report is not None else []),
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS[level]),
        logger_factory=lambda *_args: _LineLogger(stream),
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
