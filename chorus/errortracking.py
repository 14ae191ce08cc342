"""Optional error tracking: what a node logs at level error also goes to Sentry.

Needs the `sentry` extra (`pip install 'chorus[sentry]'`, sentry-sdk) and a
`sentry_dsn`. Crashes of supervised children, HTTP 500s and every other
error-level log event become Sentry events: with their traceback when the
log event carries one (`exc_info`), else as a message naming the event and
its context. Sending happens in sentry-sdk's own thread: a slow or absent
Sentry never delays the node.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

import structlog

from chorus import __version__


class ErrorTrackingUnavailable(Exception):
    """`sentry_dsn` is set but sentry-sdk is not installed."""


def start_error_tracking(dsn: str) -> structlog.typing.Processor:
    """Initialise sentry-sdk for `dsn`; returns the log processor that reports errors.

    sentry-sdk's default integrations stay off: they would patch the logging,
    threading and asyncio machinery; the processor (and `report_unhandled`)
    is the one way in. Local variables are not sent, nor personal data.
    """
    try:
        import sentry_sdk
    except ImportError:
        raise ErrorTrackingUnavailable(
            "sentry_dsn is set but sentry-sdk is not installed: pip install 'chorus[sentry]'"
        ) from None
    sentry_sdk.init(
        dsn=dsn,
        release=f"chorus@{__version__}",
        default_integrations=False,
        # Frames' local variables can hold settings and tokens: never send them.
        include_local_variables=False,
    )
    return _report_errors


def report_unhandled(error: BaseException) -> None:
    """Report an error that ends the process (it is raised on, and printed, after)."""
    import sentry_sdk

    sentry_sdk.capture_exception(error)


def stop_error_tracking(timeout: float = 2.0) -> None:
    """Send what is queued (at most `timeout` seconds) and stop reporting."""
    import sentry_sdk

    client = sentry_sdk.get_client()
    if client.is_active():
        client.close(timeout=timeout)


def _report_errors(
    _logger: Any, method: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """A structlog processor: errors go to Sentry, every event goes on unchanged."""
    if method in ("error", "critical", "exception"):
        import sentry_sdk

        context = {key: str(value) for key, value in event.items() if key != "exc_info"}
        error = event.get("exc_info")
        with sentry_sdk.new_scope() as scope:
            scope.set_context("log", context)
            if isinstance(error, BaseException):
                sentry_sdk.capture_exception(error)
            elif error:
                sentry_sdk.capture_exception()
            else:
                summary = " ".join(f"{k}={v}" for k, v in context.items() if k != "event")
                sentry_sdk.capture_message(f"{event.get('event')}: {summary}", level="error")
    return event
