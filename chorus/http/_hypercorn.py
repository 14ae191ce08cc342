"""Hypercorn, as the API uses it: its settings, its logger, and its per-connection server.

The API accepts its own connections (`chorus.admission`) and hands each one
to `ClosingTCPServer`, hypercorn's per-connection server with the local fix
for hypercorn #330 (docs/upstream/hypercorn-330.md).
"""

from __future__ import annotations

import logging
from typing import Any

import structlog
import trio
from hypercorn.config import Config
from hypercorn.events import Closed, Event, Updated
from hypercorn.logging import Logger
from hypercorn.trio.tcp_server import TCPServer

_log = structlog.get_logger("chorus.http")


def hypercorn_config(graceful_timeout: float, idle_timeout: float) -> Config:
    """Hypercorn's settings for the API: plain HTTP, no access log, no `server` header.

    `graceful_timeout`: seconds requests in flight get to finish once stopping;
    `idle_timeout`: seconds a keep-alive connection may wait for its next request.
    """
    config = Config()
    config.accesslog = None  # per-route metrics and debug lines replace it
    config.logger_class = StructlogLogger
    config.include_server_header = False
    config.graceful_timeout = graceful_timeout
    config.keep_alive_timeout = idle_timeout
    return config


class ClosingTCPServer(TCPServer):
    """Hypercorn's per-connection server, whose connection bookkeeping cancellation cannot cut.

    Hypercorn 0.18 finishes a response's connection work from inside the
    app's last `send`: it hands the app `http.disconnect`, then either closes
    the connection (`Connection: close`, HTTP/1.0, an error) or arms the
    keep-alive idle timer. quart-trio answers `http.disconnect` by cancelling
    the request's tasks, the one running that `send` included, so the
    cancellation landed in `_close` (which awaits `send_eof()` before
    `aclose()`: the socket was never closed) or in arming the timer (the idle
    connection was never closed). Both are bounded, non-blocking work;
    shielded like hypercorn's own socket writes, they always complete.

    And once the client has closed its end, the idle timer is stopped:
    hypercorn's connection task waited for it, so a client that hung up an
    idle keep-alive connection left the socket open (and its descriptor
    spent) for the whole `keep_alive_timeout`.

    Remove once hypercorn ships the fixes (hypercorn #330;
    docs/upstream/hypercorn-330.md).
    """

    async def protocol_send(self, event: Event) -> None:
        if isinstance(event, Closed | Updated):
            with trio.CancelScope(shield=True):
                await super().protocol_send(event)
        else:
            await super().protocol_send(event)

    async def _read_data(self) -> None:
        try:
            await super()._read_data()
        finally:
            with trio.CancelScope(shield=True):
                await self.idle_task.stop()


class StructlogLogger(Logger):
    """Hypercorn's logger interface, written to structlog (its own handlers stay unused).

    Hypercorn's start-up lines go out at debug level; its errors (an
    exception escaping the app, a protocol failure) at error level.
    """

    def __init__(self, config: Config) -> None:
        # Deliberately not calling super(): it would install stdlib handlers.
        self.access_log_format = config.access_log_format
        self.access_logger = None
        self.error_logger = None

    async def access(self, request: Any, response: Any, request_time: float) -> None:
        return

    async def critical(self, message: str, *args: Any, **kwargs: Any) -> None:
        await self.log(logging.CRITICAL, message, *args, **kwargs)

    async def error(self, message: str, *args: Any, **kwargs: Any) -> None:
        await self.log(logging.ERROR, message, *args, **kwargs)

    async def warning(self, message: str, *args: Any, **kwargs: Any) -> None:
        await self.log(logging.WARNING, message, *args, **kwargs)

    async def info(self, message: str, *args: Any, **kwargs: Any) -> None:
        await self.log(logging.DEBUG, message, *args, **kwargs)

    async def debug(self, message: str, *args: Any, **kwargs: Any) -> None:
        await self.log(logging.DEBUG, message, *args, **kwargs)

    async def exception(self, message: str, *args: Any, **kwargs: Any) -> None:
        await self.log(logging.ERROR, message, *args, exc_info=True, **kwargs)

    async def log(self, level: int, message: str, *args: Any, **kwargs: Any) -> None:
        text = message % args if args else message
        _log.log(level, "http.server", detail=text, **kwargs)
