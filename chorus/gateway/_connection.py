"""One WebSocket connection: handshake, the inbound reader loop, and closing.

The connection's task only reads; everything it writes (handshake answer,
pongs, replies, broadcasts, the close frame) goes through its `Outbox`, so
per-connection byte order holds and no send ever waits.
"""

from __future__ import annotations

import math
import re
import socket
import ssl
from collections.abc import Callable, Sequence
from typing import Protocol
from urllib.parse import urlsplit

import structlog
import trio
import wsproto
from wsproto.events import AcceptConnection, RejectConnection, RejectData, Request
from wsproto.utilities import RemoteProtocolError

from chorus.admission import TrustedProxies
from chorus.deadlines import Deadlines, Entry
from chorus.metrics import CONNECTION_CLOSES, FRAMES_OUT_DIRECT
from chorus.protocol import MAX_FRAME_BYTES, CloseCode, select_subprotocol

from ._frames import Close, Event, InboundFrames, Ping, Violation
from ._outbox import Flusher, Outbox
from ._wire import close_frame, pong_frame, text_frame

_log = structlog.get_logger("chorus.gateway")

CLOSE_TIMEOUT = 5.0
"""Seconds we wait for the client's close frame after sending ours."""
_RECV_BYTES = 65536
READ_BUDGET = 16
"""Messages handled in a row before the reader lets other tasks run: one read can hold
thousands of small frames, and handling one need not wait for anything."""
_HEAD_END = re.compile(rb"\r?\n\r?\n")
"""The end of an HTTP request head (the first empty line; h11 accepts bare LF too)."""
PROBE_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
"""Plain `GET`s the gateway answers itself, so a load balancer can check the port it routes to
(and Prometheus can scrape a gateway-only node, which has no HTTP API)."""


def probe_path(head: bytes) -> str | None:
    """The path of a complete `GET <probe path> HTTP/1.x` request head, else None."""
    if b"\r\n\r\n" not in head:
        return None
    method, _, rest = head.partition(b"\r\n")[0].partition(b" ")
    target, _, version = rest.partition(b" ")
    path = urlsplit(target.decode("latin-1")).path
    if method != b"GET" or not version.startswith(b"HTTP/1.") or path not in PROBE_PATHS:
        return None
    return path


class Handler(Protocol):
    """The chat logic behind one connection (see `chorus.actors`)."""

    async def on_text(self, text: str) -> None:
        """One complete text message; the next is not read until this returns."""

    def on_ping(self) -> bool:
        """A WebSocket ping came in; True to answer it with a pong (it counts like a message)."""

    async def on_disconnect(self) -> None:
        """The connection is gone; called once, after the last `on_text`, with a short deadline."""


NewHandler = Callable[["Connection"], Handler]


class Connection:
    """An accepted client socket, seen by the chat logic after the handshake.

    `send` and `close` never wait. The inbound side closes the connection by
    itself on EOF, on RFC 6455 violations (with the matching close code), on
    binary or oversized messages, and when its deadline passes.
    """

    def __init__(
        self,
        conn_id: str,
        sock: socket.socket,
        peer: tuple[str, int],
        flusher: Flusher,
        deadlines: Deadlines,
        *,
        max_outbox_bytes: int,
        proxies: TrustedProxies,
    ) -> None:
        self.id = conn_id
        self.remote = f"{peer[0]}:{peer[1]}"
        """The client: `host:port` of the TCP peer, or (behind a trusted proxy, once the
        upgrade request is read) the address its `X-Forwarded-For` names."""
        self.address = peer[0]
        """The client's IP address alone (what per-address limits are keyed on): the TCP
        peer's, or behind a trusted proxy the one its `X-Forwarded-For` names."""
        self._peer = peer
        self._proxies = proxies
        self._sock = sock
        self._ws = wsproto.WSConnection(wsproto.ConnectionType.SERVER)
        """The upgrade handshake (HTTP), dropped once it succeeds."""
        self._frames: InboundFrames | None = None
        """The WebSocket frame parser, from a successful handshake on."""
        self._head = bytearray()
        """The request's bytes until the handshake is decided (a probe is read from them)."""
        self.probe: str | None = None
        """Set by `handshake` when the request was a health probe (one of `PROBE_PATHS`)."""
        self.probe_authorization: str | None = None
        """The probe's `Authorization` header, if it had one (`/metrics` may require it)."""
        self.outbox = Outbox(
            sock,
            flusher,
            limit=max_outbox_bytes,
            on_overflow=self._overflowed,
            on_broken=self._broken,
        )
        self.send_frame: Callable[[bytes], bool] = self.outbox.offer_bytes
        """Queue frames built once by `text_frame` for many connections (a broadcast: a
        `bytes` object, kept by reference); False if the connection is closing. The
        outbox's own method: one call per recipient."""
        self.close_code: int | None = None
        self._deadlines = deadlines
        self.deadline_entry: Entry | None = None
        """For `deadlines`: this connection's live entry in its heap."""
        self._deadline = math.inf
        self._deadline_code = int(CloseCode.POLICY_VIOLATION)
        self._sliding: float | None = None
        self._waiting = False
        """True while `_receive` waits for the socket (the deadline may interrupt it)."""
        self._move_deadline(trio.current_time() + CLOSE_TIMEOUT)
        self._proxy: str | None = None
        """The trusted proxy the client came through, if any (for the log)."""
        self.user: str | None = None
        """The user signed in on this connection, once the chat logic knows (for the log)."""

    @property
    def log(self) -> structlog.typing.FilteringBoundLogger:
        """A logger bound to this connection (made when used: an idle connection keeps none)."""
        log: structlog.typing.FilteringBoundLogger = _log.bind(conn=self.id, remote=self.remote)
        if self._proxy is not None:
            log = log.bind(proxy=self._proxy)
        return log if self.user is None else log.bind(user=self.user)

    # -- called by the chat logic -----------------------------------------------------

    def send(self, payload: bytes) -> bool:
        """Queue one JSON text message; False if the connection is closing."""
        FRAMES_OUT_DIRECT.inc()
        return self.outbox.offer_bytes(text_frame(payload))

    def close(self, code: int, reason: str = "") -> None:
        """Start the closing handshake with `code`; later calls are ignored."""
        if self.close_code is not None:
            return
        self.close_code = code
        CONNECTION_CLOSES.labels(str(code)).inc()
        self.log.info("connection.closing", code=code, reason=reason)
        self.outbox.finish(close_frame(code, reason))
        self._sliding = None
        self._move_deadline(trio.current_time() + CLOSE_TIMEOUT)

    def request_stop(self) -> None:
        """Supervisor shutdown: tell the client to reconnect (1001 going away)."""
        self.close(CloseCode.GOING_AWAY, "server shutting down")

    def request_reconnect(self, reason: str) -> None:
        """Drain: close an open WebSocket with 4007 `RECONNECT` and `reason` (its delay hint).

        A connection still in its handshake is left alone: a draining gateway
        refuses its upgrade (503) anyway.
        """
        if self._frames is not None:
            self.close(CloseCode.RECONNECT, reason)

    def set_deadline(self, seconds: float, code: int, *, sliding: bool) -> None:
        """Close with `code` if no message arrives within `seconds`.

        With `sliding`, every message received restarts the countdown
        (heartbeats); otherwise the deadline is fixed (authentication).
        """
        if self.close_code is None:
            self._deadline_code = code
            self._sliding = seconds if sliding else None
            self._move_deadline(trio.current_time() + seconds)

    def _move_deadline(self, deadline: float) -> None:
        self._deadline = deadline
        self._deadlines.watch(self, deadline)

    def deadline_reached(self, now: float) -> float:
        """For `deadlines`: interrupt the socket wait if the deadline passed (the
        wait raises `trio.ClosedResourceError`; `_receive` then sees the time), else
        return the later deadline to be called back at."""
        if now < self._deadline:
            return self._deadline
        if self._waiting:
            trio.lowlevel.notify_closing(self._sock)
        return math.inf

    # -- the connection's own task ----------------------------------------------------

    async def handshake(
        self, *, allowed_origins: Sequence[str], timeout: float, draining: trio.Event | None = None
    ) -> bool:
        """Answer the HTTP upgrade; True if the WebSocket is open.

        False with `probe` set when the request was a plain `GET` of one of
        `PROBE_PATHS`: the caller answers it with `respond`. Once `draining`
        is set, upgrades are refused with 503 (the client tries another gateway).
        """
        self._move_deadline(trio.current_time() + timeout)
        while True:
            data = await self._receive()
            if not data:
                return False
            self._head += data
            try:
                self._ws.receive_data(data)
                request = next((e for e in self._ws.events() if isinstance(e, Request)), None)
            except RemoteProtocolError:
                self.probe = probe_path(bytes(self._head))
                self.probe_authorization = _head_header(bytes(self._head), b"authorization")
                if self.probe is None:
                    self._reject(400, "malformed WebSocket upgrade request")
                return False
            if request is not None:
                head_end = _HEAD_END.search(self._head)
                # Frames a client sent right behind its request (before our answer).
                early = bytes(self._head[head_end.end() :]) if head_end is not None else b""
                del self._head
                if draining is not None and draining.is_set():
                    self._reject(503, "this node is shutting down: connect to another gateway")
                    return False
                return self._admit(request, allowed_origins, early)

    def respond(
        self, status: int, reason: str, body: bytes, content_type: str = "application/json"
    ) -> None:
        """Answer a probe with `body` and close (the outbox finishes with it)."""
        self.outbox.finish(
            b"HTTP/1.1 %d %s\r\ncontent-type: %s\r\ncontent-length: %d\r\n"
            b"cache-control: no-store\r\nconnection: close\r\n\r\n%s"
            % (status, reason.encode(), content_type.encode(), len(body), body)
        )

    def _admit(self, request: Request, allowed_origins: Sequence[str], early: bytes) -> bool:
        if self._proxies.trusts(self._peer[0]):
            forwarded = _headers(request, b"x-forwarded-for")
            self.remote = self._proxies.client_address(self._peer[0], forwarded)
            self.address = self.remote
            self._proxy = self._peer[0]
        if urlsplit(request.target).path != "/":
            self._reject(404, "the gateway listens on /")
            return False
        origin = _header(request, b"origin")
        if origin is not None and not _origin_allowed(origin, allowed_origins):
            self.log.warning("connection.origin_refused", origin=origin)
            self._reject(403, "origin not allowed")
            return False
        subprotocol = select_subprotocol(request.subprotocols)
        if subprotocol is None:
            self._reject(400, "offer the WebSocket subprotocol chorus.v1")
            return False
        self.outbox.offer(self._ws.send(AcceptConnection(subprotocol=subprotocol)))
        # wsproto's HTTP state would cost every idle connection a few KiB: drop it.
        del self._ws
        self._frames = InboundFrames(MAX_FRAME_BYTES)
        if early:
            self._frames.receive_data(early)
        return True

    def _reject(self, status: int, reason: str) -> None:
        body = reason.encode()
        headers = [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]
        try:
            head = self._ws.send(
                RejectConnection(status_code=status, headers=headers, has_body=True)
            )
            self.outbox.finish(head + self._ws.send(RejectData(data=body)))
        except wsproto.utilities.LocalProtocolError:
            # The request was too broken for wsproto to answer it: answer by hand.
            self.outbox.finish(
                b"HTTP/1.1 %d %s\r\ncontent-length: %d\r\nconnection: close\r\n\r\n%s"
                % (status, reason.encode(), len(body), body)
            )

    async def serve(self, handler: Handler) -> None:
        """Read messages and pass complete text messages to `handler` until closed.

        Fair to other connections: it lets other tasks run after at most
        `READ_BUDGET` WebSocket messages, however many one read brought in.
        """
        frames = self._frames
        if frames is None:
            raise RuntimeError("serve() needs a successful handshake()")
        handled = 0
        event: Event | None = None
        try:
            while True:
                # Frames first: some may have come in with the upgrade request.
                for event in frames.events():
                    handled += 1
                    if handled % READ_BUDGET == 0:
                        await trio.lowlevel.checkpoint()
                    if isinstance(event, str):
                        if self.close_code is None:
                            await handler.on_text(event)
                    elif isinstance(event, Ping):
                        if handler.on_ping():
                            self.outbox.offer(pong_frame(event.payload))
                    elif isinstance(event, Close):
                        code = CloseCode.NORMAL if event.code is None else event.code
                        self.close(code, event.reason)
                        return
                # Neither the last message nor the bytes it came in are held while the
                # connection waits: an idle connection would keep both.
                event = None
                data = await self._receive()
                if not data:
                    return
                if self._sliding is not None:
                    self._deadline = trio.current_time() + self._sliding
                frames.receive_data(data)
                del data
        except Violation as violation:
            self.close(violation.code, violation.reason)
        # Read and drop what the client still sends until it closes (or the close
        # deadline passes): closing a socket with unread bytes resets the connection,
        # and the client could lose our close frame.
        while await self._receive():
            pass

    async def _receive(self) -> bytes:
        """The next bytes from the socket; b"" on EOF, error or passed deadline."""
        # No cancel scope per read (it would cost one per message): `deadlines` calls
        # `deadline_reached`, which interrupts the wait; the deadline only ever cuts the
        # wait, never the handler's work between reads.
        while True:
            if trio.current_time() >= self._deadline:
                if self.close_code is not None:
                    return b""  # the client never answered our close frame
                self.close(self._deadline_code, "timeout")
                continue
            try:
                # TLS may hold decrypted bytes the socket no longer signals.
                if not (isinstance(self._sock, ssl.SSLSocket) and self._sock.pending()):
                    self._waiting = True
                    try:
                        await trio.lowlevel.wait_readable(self._sock)
                    finally:
                        self._waiting = False
                return self._sock.recv(_RECV_BYTES)
            except trio.ClosedResourceError:
                continue  # interrupted by `deadline_reached`: the socket is still open
            except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
                continue
            except OSError:
                return b""

    def _overflowed(self) -> None:
        # The close frame goes after the backlog (cutting the buffer could cut a
        # frame in half); a client that reads nothing at all is dropped when the
        # close deadline passes.
        self.log.warning("connection.slow_consumer", pending=self.outbox.pending)
        self.close(CloseCode.SLOW_CONSUMER, "too slow: resume to catch up")

    def _broken(self) -> None:
        if self.close_code is None:
            self.close_code = int(CloseCode.GOING_AWAY)
        self._move_deadline(trio.current_time())


def _head_header(head: bytes, name: bytes) -> str | None:
    """The first `name` header (lower case) of a raw request head, else None."""
    for line in head.partition(b"\r\n\r\n")[0].split(b"\r\n")[1:]:
        key, sep, value = line.partition(b":")
        if sep and key.strip().lower() == name:
            return value.strip().decode("latin-1")
    return None


def _header(request: Request, name: bytes) -> str | None:
    return next(iter(_headers(request, name)), None)


def _headers(request: Request, name: bytes) -> list[str]:
    """Every value of header `name` (lowercase), in the order received."""
    return [value.decode("latin-1") for key, value in request.extra_headers if key.lower() == name]


def _origin_allowed(origin: str, allowed: Sequence[str]) -> bool:
    return "*" in allowed or origin.rstrip("/") in (entry.rstrip("/") for entry in allowed)
