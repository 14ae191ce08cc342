"""`serve_http`: the API on hypercorn's trio worker, logging through structlog."""

from __future__ import annotations

import functools
import logging
from typing import Any, cast

import structlog
import trio
from hypercorn.config import Config
from hypercorn.logging import Logger
from hypercorn.trio import serve
from hypercorn.typing import ASGIFramework

from chorus.services import Services

from ._app import create_app

_log = structlog.get_logger("chorus.http")


async def serve_http(
    services: Services,
    *,
    task_status: trio.TaskStatus[tuple[str, int]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve the API on `settings.http_host:http_port` (port 0: a free port) until cancelled.

    Signals readiness, once the socket listens, with the bound `(host, port)`.
    Cancellation stops accepting connections and ends the requests in flight.
    """
    config = hypercorn_config(services.settings.http_host, services.settings.http_port)
    app = cast(ASGIFramework, create_app(services))
    async with trio.open_nursery() as nursery:
        binds: list[str] = await nursery.start(functools.partial(serve, app, config, mode="asgi"))
        address = bound_address(binds[0])
        _log.info("http.listening", host=address[0], port=address[1])
        task_status.started(address)


def hypercorn_config(host: str, port: int) -> Config:
    """Hypercorn's settings for the API: one plain-HTTP listener, no access log."""
    config = Config()
    # An IPv6 literal needs brackets so that hypercorn splits host and port right.
    config.bind = [f"[{host}]:{port}" if ":" in host else f"{host}:{port}"]
    config.accesslog = None  # per-route metrics and debug lines replace it
    config.logger_class = StructlogLogger
    config.include_server_header = False
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
