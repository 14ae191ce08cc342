"""The WebSocket gateway: a listening socket, the flusher and one task per connection."""

from __future__ import annotations

import functools
import hmac
import random
import socket
import ssl
from collections.abc import Awaitable, Callable, Sequence

import attrs
import prometheus_client
import structlog
import trio

from chorus.admission import (
    Admission,
    ConnectionLimits,
    Listener,
    Ticket,
    accept_clients,
    open_listener,
)
from chorus.deadlines import Deadlines
from chorus.protocol import reconnect_reason
from chorus.supervisors import ChildSpec, Restart, Strategy, Supervisor

from ._connection import CLOSE_TIMEOUT, Connection, NewHandler
from ._outbox import Flusher

_log = structlog.get_logger("chorus.gateway")
DISCONNECT_TIMEOUT = 2.0
"""Seconds a handler gets to clean up after its connection ends (even at shutdown)."""
PROBE_TIMEOUT = 2.0
"""Seconds `GET /readyz` waits for the node's readiness check before answering 503."""

Readiness = Callable[[], Awaitable[bool]]
"""Whether the node can serve its clients now (store reachable, not stopping)."""


async def always_ready() -> bool:
    """The readiness of a gateway that depends on nothing else."""
    return True


@attrs.frozen(kw_only=True)
class GatewayConfig:
    """What the gateway needs from the node's settings."""

    host: str = "127.0.0.1"
    port: int = 8081
    allowed_origins: Sequence[str] = ()
    handshake_timeout: float = 10.0
    max_outbox_bytes: int = 1 << 20
    backlog: int = 1024
    reconnect_window: float = 0.0
    """On `drain`, each client is told to reconnect after a random delay in [0, this) s."""
    tls: ssl.SSLContext | None = None
    """Serve `wss://` (and the probes over TLS) with this context; None: plain."""
    metrics_token: str = ""
    """Bearer token `GET /metrics` requires (the node's `metrics_token`); empty: none."""


class Gateway:
    """Accepts WebSocket clients on `host:port`; each socket runs as a temporary child.

    `supervisor()` returns its tree (rest_for_one: flusher, connections,
    listener): a flusher crash restarts everything after it, because every
    connection's outbox depends on it; a listener crash only restarts the
    listener. Stopping the tree closes the listening socket first and tells
    every client still connected to reconnect (1001) before connections are
    stopped; a node drains it first (`drain`: 4007 with a delay hint).

    Every socket is accepted through `admission` (the node's, shared with
    the HTTP API; by default one of its own with default limits): refused
    ones get an HTTP 503 before any handshake.
    """

    def __init__(
        self,
        config: GatewayConfig,
        new_handler: NewHandler,
        ready: Readiness = always_ready,
        *,
        admission: Admission | None = None,
    ) -> None:
        self.config = config
        self._new_handler = new_handler
        self._ready = ready
        self._admission = admission if admission is not None else Admission(ConnectionLimits())
        self._flusher = Flusher()
        self._deadlines = Deadlines()
        # one_for_one of temporary children: a connection's end concerns no other.
        self._connections = Supervisor("connections")
        self._live: dict[str, Connection] = {}
        self._accepted = 0
        self._draining = trio.Event()
        self.address: tuple[str, int] | None = None
        """The bound (host, port) once listening (port 0 picks a free one)."""
        self._page_origins: tuple[str, ...] = ()

    def supervisor(self) -> Supervisor:
        children = [
            ChildSpec(id="flusher", start=self._flusher.run),
            ChildSpec(id="deadlines", start=self._deadlines.run),
            ChildSpec(id="connections", start=self._connections.run, shutdown=float("inf")),
            ChildSpec(id="listener", start=self._listen),
        ]
        return Supervisor("gateway", children, strategy=Strategy.REST_FOR_ONE)

    def trust_origins(self, origins: Sequence[str]) -> None:
        """Accept browsers from `origins` too (beyond `config.allowed_origins`), from now on.

        The node passes the origins its own web client is served from, known once
        its HTTP listener is bound.
        """
        self._page_origins = tuple(origins)

    def drain(self) -> None:
        """Refuse new WebSockets (503) from now on and send every open one elsewhere.

        A stopping node calls it first. Each open WebSocket is closed at once
        with 4007 `RECONNECT` and a delay hint (`reconnect_reason`): a random
        delay in [0, `reconnect_window`) seconds, so the clients of a drained
        node come back to the others spread over that window instead of all at
        once. Clients that were sending resend what was not acknowledged (same
        client ids); the stores already under way finish, as the node's actors
        stop only after the connections.
        """
        self._draining.set()
        for conn in list(self._live.values()):
            self._send_elsewhere(conn)

    def _send_elsewhere(self, conn: Connection) -> None:
        delay_ms = int(random.uniform(0, self.config.reconnect_window) * 1000)
        conn.request_reconnect(reconnect_reason(delay_ms))

    @property
    def connections(self) -> list[Connection]:
        """Live connections (handshake done or not)."""
        return list(self._live.values())

    async def _listen(self, *, task_status: trio.TaskStatus[tuple[str, int]]) -> None:
        config = self.config
        listener = open_listener(config.host, config.port, config.backlog)
        self.address = listener.getsockname()[:2]
        _log.info("gateway.listening", host=self.address[0], port=self.address[1])
        try:
            task_status.started(self.address)
            await accept_clients(listener, Listener.GATEWAY, self._admission, self._start)
        finally:
            trio.lowlevel.notify_closing(listener)
            listener.close()
            for conn in list(self._live.values()):
                conn.request_stop()

    async def _start(self, client: socket.socket, peer: tuple[str, int], ticket: Ticket) -> None:
        self._accepted += 1
        conn_id = f"conn:{self._accepted}"
        try:
            client.setblocking(False)
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            start = functools.partial(self._run_connection, conn_id, client, peer, ticket)
            spec = ChildSpec(
                id=conn_id,
                start=start,
                restart=Restart.TEMPORARY,
                shutdown=CLOSE_TIMEOUT,
                kind="connection",  # one metrics series for all connections, not one each
            )
            await self._connections.start_child(spec)
        except BaseException:
            if conn_id not in self._live:  # it never started: nobody else closes it
                client.close()
                ticket.release()
            raise

    async def _run_connection(
        self,
        conn_id: str,
        sock: socket.socket,
        peer: tuple[str, int],
        ticket: Ticket,
        *,
        task_status: trio.TaskStatus[Connection],
    ) -> None:
        config = self.config
        try:
            if config.tls is not None:
                # The wrapped socket owns the descriptor from here on (closed below); its
                # handshake comes after `started`, so the listener never waits for it.
                sock = config.tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
            conn = Connection(
                conn_id,
                sock,
                peer,
                self._flusher,
                self._deadlines,
                max_outbox_bytes=config.max_outbox_bytes,
                proxies=self._admission.proxies,
            )
            self._live[conn_id] = conn
            task_status.started(conn)
            if isinstance(sock, ssl.SSLSocket) and not await _tls_handshake(
                sock, config.handshake_timeout
            ):
                return
            opened = await conn.handshake(
                allowed_origins=(*config.allowed_origins, *self._page_origins),
                timeout=config.handshake_timeout,
                draining=self._draining,
            )
            if opened:
                if self._draining.is_set():  # upgraded just before `drain` looked
                    self._send_elsewhere(conn)
                # Served here, not in a helper: an idle connection's task is its frames.
                handler = self._new_handler(conn)
                try:
                    await conn.serve(handler)
                finally:
                    with trio.move_on_after(DISCONNECT_TIMEOUT, shield=True):
                        await handler.on_disconnect()
            elif conn.probe is not None:
                await self._answer_probe(conn, conn.probe)
            with trio.move_on_after(CLOSE_TIMEOUT):
                await conn.outbox.drained()
        finally:
            if (gone := self._live.pop(conn_id, None)) is not None:
                # Else the timer's heap would hold it (and its buffers) until its deadline.
                self._deadlines.forget(gone)
            trio.lowlevel.notify_closing(sock)
            sock.close()
            ticket.release()

    async def _answer_probe(self, conn: Connection, path: str) -> None:
        """`/healthz`: 200 while the gateway accepts; `/readyz`: 200 once `ready` says so, else 503.

        Both answer on the port clients connect to, so a load balancer checks
        exactly what it routes to (and a gateway-only node, without the HTTP
        API, has probes too).
        """
        if path == "/healthz":
            conn.respond(200, "OK", b'{"status":"ok"}')
            return
        if path == "/metrics":
            await self._answer_metrics(conn)
            return
        ready = False
        with trio.move_on_after(PROBE_TIMEOUT):
            ready = await self._ready()
        if ready:
            conn.respond(200, "OK", b'{"status":"ready"}')
        else:
            conn.respond(503, "Service Unavailable", b'{"status":"unavailable"}')

    async def _answer_metrics(self, conn: Connection) -> None:
        """`/metrics` as the HTTP API serves it (same token rule), for gateway-only nodes.

        Rendered in a worker thread, like the HTTP API's: a large exposition
        would otherwise stall every connection of the gateway.
        """
        token = self.config.metrics_token
        if token:
            scheme, _, sent = (conn.probe_authorization or "").partition(" ")
            # Constant time: how long a refusal takes tells nothing about the token.
            if scheme.lower() != "bearer" or not hmac.compare_digest(
                sent.strip().encode(), token.encode()
            ):
                conn.respond(401, "Unauthorized", b'{"status":"unauthorized"}')
                return
        exposition = await trio.to_thread.run_sync(prometheus_client.generate_latest)
        conn.respond(200, "OK", exposition, prometheus_client.CONTENT_TYPE_LATEST)


async def _tls_handshake(tls: ssl.SSLSocket, timeout: float) -> bool:
    """Do the TLS handshake of a non-blocking socket; False if it failed or timed out."""
    with trio.move_on_after(timeout):
        while True:
            try:
                tls.do_handshake()
                return True
            except ssl.SSLWantReadError:
                await trio.lowlevel.wait_readable(tls)
            except ssl.SSLWantWriteError:
                await trio.lowlevel.wait_writable(tls)
            except OSError as exc:  # ssl.SSLError included: not a TLS client, bad version...
                _log.debug("gateway.tls_handshake_failed", error=str(exc))
                return False
    return False
