"""`serve_http`: the API on hypercorn's trio worker, logging through structlog."""

from __future__ import annotations

import functools
import logging
from typing import Any, cast

import attrs
import structlog
import trio
from hypercorn.config import Config
from hypercorn.logging import Logger
from hypercorn.trio import serve
from hypercorn.typing import (
    ASGIFramework,
    ASGIReceiveCallable,
    ASGISendCallable,
    ASGISendEvent,
    Scope,
)

from chorus.services import Services

from ._app import create_app

_log = structlog.get_logger("chorus.http")


@attrs.define(eq=False)
class HttpServer:
    """A running API server, as `serve_http` signals it: where it listens, and a graceful stop."""

    address: tuple[str, int]
    """The bound `(host, port)`."""
    _stopping: trio.Event

    def request_stop(self) -> None:
        """Stop accepting and let requests in flight finish; `serve_http` then returns.

        Requests still running after `settings.shutdown_grace` seconds are cancelled.
        """
        self._stopping.set()


async def serve_http(
    services: Services,
    *,
    task_status: trio.TaskStatus[HttpServer] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve the API on `settings.http_host:http_port` (port 0: a free port).

    Signals readiness, once the socket listens, with an `HttpServer`. Its
    `request_stop()` closes the listening socket and idle keep-alive
    connections at once, lets requests in flight finish for up to
    `settings.shutdown_grace` seconds, then returns (so a supervisor stopping
    it gives it that grace). Cancellation ends everything at once.
    """
    settings = services.settings
    config = hypercorn_config(
        settings.http_host,
        settings.http_port,
        settings.shutdown_grace,
        settings.http_idle_timeout,
    )
    app = closing_completes(cast(ASGIFramework, create_app(services)))
    stopping = trio.Event()
    run = functools.partial(serve, app, config, mode="asgi", shutdown_trigger=stopping.wait)
    async with trio.open_nursery() as nursery:
        binds: list[str] = await nursery.start(run)
        server = HttpServer(bound_address(binds[0]), stopping)
        _log.info("http.listening", host=server.address[0], port=server.address[1])
        task_status.started(server)


def closing_completes(app: ASGIFramework) -> ASGIFramework:
    """`app` with each of its `send` calls shielded from the app's own cancellation.

    quart-trio cancels a request's tasks once it sees `http.disconnect`, which
    hypercorn hands it from inside the app's last `send`, just before closing
    the socket; the cancellation then lands in that close, and the connection
    stayed open until the client closed it (or a stopping server's grace
    ended). Hypercorn shields its own socket writes, so no write becomes any
    harder to cancel.
    """

    async def shielded_app(
        scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        async def shielded_send(message: ASGISendEvent) -> None:
            with trio.CancelScope(shield=True):
                await send(message)

        await app(scope, receive, shielded_send)

    return shielded_app


def hypercorn_config(host: str, port: int, graceful_timeout: float, idle_timeout: float) -> Config:
    """Hypercorn's settings for the API: one plain-HTTP listener, no access log.

    `graceful_timeout`: seconds requests in flight get to finish once stopping;
    `idle_timeout`: seconds a keep-alive connection may wait for its next request.
    """
    config = Config()
    # An IPv6 literal needs brackets so that hypercorn splits host and port right.
    config.bind = [f"[{host}]:{port}" if ":" in host else f"{host}:{port}"]
    config.accesslog = None  # per-route metrics and debug lines replace it
    config.logger_class = StructlogLogger
    config.include_server_header = False
    config.graceful_timeout = graceful_timeout
    config.keep_alive_timeout = idle_timeout
    return config


def bound_address(bind: str) -> tuple[str, int]:
    """`("127.0.0.1", 8080)` from hypercorn's `"http://127.0.0.1:8080"` (or `"http://[::1]:8080"`)."""
    _scheme, _, rest = bind.partition("://")
    host, _, port = rest.rpartition(":")
    return host.removeprefix("[").removesuffix("]"), int(port)


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
