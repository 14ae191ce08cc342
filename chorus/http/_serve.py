"""`serve_http`: the API on hypercorn's trio connection server, behind the node's admission."""

from __future__ import annotations

import socket
import ssl
from typing import cast

import attrs
import structlog
import trio
from hypercorn.config import Config
from hypercorn.trio.lifespan import Lifespan
from hypercorn.trio.worker_context import WorkerContext
from hypercorn.typing import (
    AppWrapper,
    ASGIFramework,
    ConnectionState,
    LifespanState,
)
from hypercorn.utils import wrap_app

from chorus.admission import Listener, Ticket, accept_clients, open_listener
from chorus.services import Services

from ._app import create_app
from ._cors import with_cors, with_hsts
from ._forwarded import forwarded_client
from ._hypercorn import ClosingTCPServer, hypercorn_config
from ._webapp import content_security_policy, image_sources, load_files, with_web_app

_log = structlog.get_logger("chorus.http")
BACKLOG = 1024
"""Connections the kernel queues before the API accepts them."""


@attrs.define(eq=False)
class HttpServer:
    """A running API server, as `serve_http` signals it: where it listens, and a graceful stop."""

    address: tuple[str, int]
    """The bound `(host, port)`."""
    _stopping: trio.Event = attrs.field(factory=trio.Event)

    def request_stop(self) -> None:
        """Stop accepting and let requests in flight finish; `serve_http` then returns.

        Requests still running after `settings.shutdown_grace` seconds are cancelled.
        """
        self._stopping.set()

    async def wait_stop_requested(self) -> None:
        await self._stopping.wait()


async def serve_http(
    services: Services,
    *,
    task_status: trio.TaskStatus[HttpServer] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve the API (and the web client at `/`) on `settings.http_host:http_port`
    (port 0: a free port).

    Signals readiness, once the socket listens, with an `HttpServer`. Every
    connection is accepted through `services.admission` (refused ones get a
    503 at once), then served by hypercorn's per-connection server as
    hypercorn's own `serve` would. `request_stop()` closes the listening
    socket and idle keep-alive connections at once, lets requests in flight
    finish for up to `settings.shutdown_grace` seconds, then returns (so a
    supervisor stopping it gives it that grace). Cancellation ends
    everything at once.
    """
    settings = services.settings
    config = hypercorn_config(settings.shutdown_grace, settings.http_idle_timeout)
    images = image_sources(settings)

    def policy() -> str:
        return content_security_policy(services.gateway_urls, images)

    api = cast(ASGIFramework, create_app(services))
    files = await trio.to_thread.run_sync(load_files)  # read once, off the event loop
    asgi = with_cors(with_web_app(api, files, policy), settings.allowed_origins)
    if services.tls is not None:
        asgi = with_hsts(asgi)
    app = wrap_app(
        forwarded_client(asgi, services.admission.proxies), config.wsgi_max_body_size, "asgi"
    )
    tls = services.tls.context if services.tls is not None else None
    lifespan_state: LifespanState = {}
    lifespan = Lifespan(app, config, lifespan_state)
    with open_listener(settings.http_host, settings.http_port, BACKLOG) as sock:
        async with trio.open_nursery() as lifespan_nursery:
            await lifespan_nursery.start(lifespan.handle_lifespan)
            await lifespan.wait_for_startup()
            server = HttpServer(sock.getsockname()[:2])
            context = WorkerContext(None)
            state = ConnectionState(lifespan_state.copy())
            async with trio.open_nursery() as connections:

                async def admitted(
                    client: socket.socket, _peer: tuple[str, int], ticket: Ticket
                ) -> None:
                    connections.start_soon(
                        _serve_connection, app, config, context, state, client, ticket, tls
                    )

                try:
                    async with trio.open_nursery() as accepting:
                        accepting.start_soon(
                            accept_clients, sock, Listener.HTTP, services.admission, admitted
                        )
                        _log.info("http.listening", host=server.address[0], port=server.address[1])
                        task_status.started(server)
                        await server.wait_stop_requested()
                        accepting.cancel_scope.cancel()
                finally:
                    trio.lowlevel.notify_closing(sock)
                    sock.close()
                    # Idle keep-alive connections close now; requests in flight get the grace.
                    await context.terminated.set()
                    connections.cancel_scope.deadline = (
                        trio.current_time() + config.graceful_timeout
                    )
            await lifespan.wait_for_shutdown()
            lifespan_nursery.cancel_scope.cancel()


async def _serve_connection(
    app: AppWrapper,
    config: Config,
    context: WorkerContext,
    state: ConnectionState,
    sock: socket.socket,
    ticket: Ticket,
    tls: ssl.SSLContext | None,
) -> None:
    """Serve one admitted connection with hypercorn; its socket closes and its ticket is freed.

    With `tls`, the connection is wrapped in TLS first (hypercorn does the
    handshake, bounded by its `ssl_handshake_timeout`).
    """
    try:
        stream: trio.SocketStream | trio.SSLStream[trio.SocketStream]
        stream = trio.SocketStream(trio.socket.from_stdlib_socket(sock))
        if tls is not None:
            stream = trio.SSLStream(stream, tls, server_side=True, https_compatible=True)
        await ClosingTCPServer(app, config, context, state, stream).run()  # type: ignore[arg-type]
    finally:
        sock.close()
        ticket.release()
