"""One swarm worker: a trio loop driving its share of the bots over raw sockets.

Every bot is a non-blocking stdlib socket watched with `trio.lowlevel`
readiness waits (no stream objects, no per-frame task wake-ups). Sends follow
a schedule fixed in advance (open loop): a message's latency is measured from
the time it was *scheduled*, so a sender that falls behind shows up as latency
instead of hiding it (no coordinated omission).
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import random
import resource
import select
import socket
import ssl
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit

import attrs
import httpx
import orjson
import trio

from chorus.protocol import SUBPROTOCOL, CloseCode, ErrorCode, reconnect_delay

from ._histogram import encode_histogram, new_histogram
from ._limits import raise_open_files_limit
from ._provision import BotAccount
from ._wire import (
    OP_CLOSE,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    FrameReader,
    WireError,
    check_handshake_response,
    client_frame,
    handshake_request,
)

Emit = Callable[[dict[str, Any]], None]

_TYPE_AT = len(b'{"type":"')
_ROOM = b'"room":"'
_SEQ = b'"seq":'
_BODY = b'"body":"'
_REF = b'"ref":"'
_HEARTBEAT = b'"heartbeat_interval_ms":'
_SEND_ACK = b'"message":{'
_BACKOFF_BASE = 0.1
_BACKOFF_CAP = 2.0
"""After a lost connection or a failed connect (not churn), a bot waits a uniform
random time in [0, min(cap, base * 2**attempt)] (full jitter), then tries the next gateway."""
_WOULD_BLOCK = (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError)
"""A non-blocking send or receive that must wait (TLS adds its own two cases)."""
_RETRYABLE = frozenset({ErrorCode.UNAVAILABLE, ErrorCode.RATE_LIMITED, ErrorCode.INTERNAL})
"""Error codes after which a send is tried again (as the SDK does)."""
_PAGE = 100
"""Events per HTTP page when catching up after `too_far` (the API's maximum)."""
_CATCH_UP_TIMEOUT = 10.0


class GoSignal:
    """Holds the shared start time (monotonic seconds; 0 until the parent sets it)."""

    value: float = 0.0


T = TypeVar("T")

SendOrder = Literal["interleaved", "grouped"]
"""Who sends next: `interleaved` goes round the rooms, so consecutive sends hit different
rooms (as real traffic does); `grouped` goes through the senders in bot order, so a room's
members send one after another (bursts per room, which flatter the server's batching)."""


@attrs.frozen(kw_only=True)
class WorkerPlan:
    """Everything one worker needs; pickled to a spawned process."""

    worker: int
    run_id: str
    gateways: tuple[str, ...]
    bots: tuple[BotAccount, ...]
    apis: tuple[str, ...] = ()
    """HTTP API base URLs (`http://host:port`) to catch up from after `too_far`, the
    n-th serving the same node as the n-th gateway where they pair up; none: no catch-up."""
    senders: frozenset[int]
    """Global indexes of the bots that send (the others only read)."""
    rate: float
    """Messages per second this worker sends in total."""
    size: int
    ramp_up: float
    duration: float
    drain: float = 5.0
    reconnect_rate: float = 0.0
    """Reconnects per second this worker forces (churn); 0 for none."""
    typing_rate: float = 0.0
    """Typing signals per second this worker sends; 0 for none."""
    presence_rate: float = 0.0
    """Presence changes (idle <-> online) per second this worker sends; 0 for none."""
    storm_at: float | None = None
    """Seconds after sending starts when every connected bot drops its socket at once
    (a reconnect storm); None for none."""
    tick: float = 1.0
    latency_every: int = 1
    """Only bots whose index is a multiple of this measure latency (a sample)."""
    order: SendOrder = "interleaved"


class RoomOrder:
    """Per-receiver, per-room order check: every seq once, in order."""

    __slots__ = ("buffer", "first", "joined_at", "last", "missing")

    def __init__(self) -> None:
        self.last = -1
        self.first = -1
        self.joined_at = -1
        """The room's seq when this receiver first joined (-1: never); it is owed the later ones."""
        self.missing: set[int] | None = None
        self.buffer: list[bytes] | None = None
        """While the room is caught up over HTTP (after `too_far`): its live messages,
        accounted once the catch-up is in."""


class Stats:
    """Counters of one worker; ticks carry deltas, the final report the totals."""

    def __init__(self) -> None:
        self.sent = 0
        self.acked = 0
        self.delivered = 0
        self.connected = 0
        self.connects = 0
        self.reconnects = 0
        self.duplicated = 0
        self.reordered = 0
        self.typing_sent = 0
        self.presence_sent = 0
        self.typing_received = 0
        self.presence_received = 0
        self.storm_dropped = 0
        self.storm_resumed: list[float] = []
        """Seconds from the storm until each dropped bot was back in all its rooms."""
        self.too_far = 0
        self.catch_ups = 0
        """Rooms caught up over HTTP after `too_far`."""
        self.caught_up = 0
        """Messages those catch-ups fetched (each also counted as delivered)."""
        self.outages: list[tuple[float, float]] = []
        """Per lost connection (not churn, not the storm) of a bot that had been in its
        rooms: (seconds from the start to the loss, seconds until it was back)."""
        self.errors: Counter[str] = Counter()
        self.auth_failures: Counter[str] = Counter()
        """Bots whose token the server refused, by error code (each bot counted once)."""
        self.histogram = new_histogram()
        self.acked_seq: dict[str, int] = {}
        self.max_send_lag = 0.0
        self.tick_send_lag = 0.0
        self.late_sends = 0
        self.held_sends = 0
        """Sends that fell due before their bot was first in its rooms (held until then)."""
        self.last_in_after = 0.0
        """Seconds after sending began that the last bot was first in its rooms (0: before)."""
        self.resent = 0
        self.max_tick_lag = 0.0
        self.last_tick = (0, 0, 0, 0)


class Bot:
    """One simulated user: a socket, its parser and its view of each room."""

    def __init__(self, worker: Worker, account: BotAccount, sender: bool) -> None:
        self.worker = worker
        self.account = account
        self.sender = sender
        self.sock: socket.socket | None = None
        self.ready = False
        self.joined = 0
        self.close_received = False
        """The server sent a close frame on this connection: its end of the socket is due."""
        self.retry_after: float | None = None
        """The delay a draining node's 4007 close asked for (instead of the backoff)."""
        self.rooms: dict[bytes, RoomOrder] = {room.encode(): RoomOrder() for room in account.rooms}
        self.unacked: dict[int, bytes] = {}
        """Sends not acknowledged yet, by number: resent after a reconnect (same client_id,
        so the server stores each once), as a real client's outbox would."""
        self.pending = bytearray()
        self.flushing = False
        self.sent = 0
        self.refs = 0
        self.churn = False
        self.counted = False
        self.reconnected = False
        self.in_storm = False
        self.heartbeat = 30.0
        self.reader = FrameReader(self.on_frame, 64 * 1024)
        self.closed = trio.Event()
        self.failure: Exception | None = None
        self.refused: str | None = None
        """The error code the server refused this bot's `hello` with, if it did."""
        self.measures = account.index % worker.plan.latency_every == 0
        self.gateway = account.index % len(worker.plan.gateways)
        """Index of the gateway (and API) this bot uses; the next one after a failure."""
        self.attempt = 0
        """Failed connections since this bot was last in its rooms (for the backoff)."""
        self.was_in = False
        """Whether this bot has been in all its rooms (connected) at least once."""
        self.lost_at: float | None = None
        """When the connection of this outage was lost (None: not in an outage)."""
        self.connection = 0
        """Counts connections: a catch-up that outlives its connection is dropped."""
        self.catching = 0
        """Catch-ups running on this connection."""

    # -- sending --------------------------------------------------------------------------

    def ref(self, kind: str) -> str:
        self.refs += 1
        return f"{kind}{self.refs}"

    def send_json(self, frame: dict[str, Any]) -> None:
        self.send_raw(client_frame(orjson.dumps(frame)))

    def send_raw(self, data: bytes) -> None:
        sock = self.sock
        if sock is None:
            return
        if self.pending:
            self.pending += data
            return
        try:
            written = sock.send(data)
        except _WOULD_BLOCK:
            written = 0
        except OSError:
            if not self.churn:  # a socket being dropped on purpose may refuse a last send
                self.worker.stats.errors["send_failed"] += 1
            return
        if written < len(data):
            self.pending += data[written:]
            if not self.flushing:
                self.flushing = True
                self.worker.nursery.start_soon(self.flush, sock)

    async def flush(self, sock: socket.socket) -> None:
        try:
            while self.pending and self.sock is sock:
                await trio.lowlevel.wait_writable(sock)
                try:
                    written = sock.send(self.pending)
                except _WOULD_BLOCK:
                    continue
                except OSError:
                    break
                del self.pending[:written]
        finally:
            self.flushing = False

    def post(self, number: int, frame: bytes) -> None:
        """A scheduled message: sent now if connected, else when the bot is back."""
        self.unacked[number] = frame
        if self.ready and self.joined == len(self.rooms):
            self.send_raw(frame)
        elif not self.was_in:  # never in its rooms yet: a slow ramp, not a slow send path
            self.worker.stats.held_sends += 1

    # -- receiving ------------------------------------------------------------------------

    def on_frame(self, opcode: int, buf: bytearray, start: int, end: int) -> None:
        if opcode == OP_TEXT:
            kind = buf[start + _TYPE_AT]
            if kind == 0x6D:  # m: "message"
                self.on_message(buf, start, end)
            elif kind == 0x61:  # a: "ack"
                self.on_ack(buf, start, end)
            elif kind == 0x74:  # t: "typing", "too_far"...
                if buf.startswith(b'{"type":"typing"', start):
                    self.worker.stats.typing_received += 1
                elif buf.startswith(b'{"type":"too_far"', start):
                    self.on_too_far(orjson.loads(bytes(buf[start:end])))
            elif kind == 0x70:  # p: "presence", "pong"...
                if buf.startswith(b'{"type":"presence"', start):
                    self.worker.stats.presence_received += 1
            elif kind == 0x65:  # e: "error"
                self.on_error(orjson.loads(bytes(buf[start:end])))
            elif buf.startswith(b'{"type":"ready"', start):
                self.on_ready(buf, start, end)
        elif opcode == OP_CLOSE:
            close = (buf[start] << 8 | buf[start + 1]) if end - start >= 2 else 1005
            self.worker.stats.errors[f"close_{close}"] += 1
            if close == CloseCode.RECONNECT:
                reason = bytes(buf[start + 2 : end]).decode(errors="replace")
                self.retry_after = reconnect_delay(reason) or 0.0
            self.ready = False
            self.close_received = True
            # Answer it (RFC 6455 §5.5.1), then end the connection without waiting for
            # the server's end of the socket: a draining node may keep it open for a while.
            self.send_raw(client_frame(bytes(buf[start : min(end, start + 2)]), OP_CLOSE))
            self.closed.set()
        elif opcode == OP_PING:
            self.send_raw(client_frame(bytes(buf[start:end]), OP_PONG))

    def on_error(self, frame: dict[str, Any]) -> None:
        """An error reply: a refused token ends the bot; a refused resume or join drops
        the connection (the bot reconnects elsewhere and resumes); a send the server
        could not take now is sent again after a pause (same client_id: stored once)."""
        stats = self.worker.stats
        code, ref = frame["code"], frame["ref"] or ""
        stats.errors[f"error_{code}"] += 1
        if code == ErrorCode.INVALID_TOKEN and self.refused is None:
            self.refused = code
            stats.auth_failures[code] += 1
        elif ref[:1] in ("r", "j") and self.sock is not None:
            with contextlib.suppress(OSError):
                self.sock.shutdown(socket.SHUT_RDWR)
        elif ref[:1] == "s" and code in _RETRYABLE:
            self.worker.nursery.start_soon(self.send_again, int(ref[1:]), self.connection)

    async def send_again(self, number: int, connection: int) -> None:
        """Re-send an unacknowledged message after a jittered pause (if still connected)."""
        await trio.sleep(random.uniform(0, _BACKOFF_CAP))
        frame = self.unacked.get(number)
        if frame is not None and self.connection == connection and self.ready:
            self.worker.stats.resent += 1
            self.send_raw(frame)

    def on_message(self, buf: bytes | bytearray, start: int, end: int) -> None:
        stats = self.worker.stats
        at = buf.find(_ROOM, start, end) + len(_ROOM)
        room_end = buf.find(b'"', at, end)
        room = bytes(buf[at:room_end])
        order = self.rooms.get(room)
        if order is None:
            stats.delivered += 1
            stats.errors["unexpected_room"] += 1
            return
        if order.buffer is not None:
            order.buffer.append(bytes(buf[start:end]))
            return
        stats.delivered += 1
        at = buf.find(_SEQ, room_end, end) + len(_SEQ)
        seq_end = buf.find(b",", at, end)
        self.check_order(order, int(buf[at:seq_end]))
        at = buf.find(_BODY, seq_end, end) + len(_BODY)
        self.measure(buf, at, end)

    def check_order(self, order: RoomOrder, seq: int) -> None:
        """Check one delivered seq of a room: in order, once (else counted as such)."""
        stats = self.worker.stats
        last = order.last
        if last < 0:
            order.first = order.last = seq
        elif seq == last + 1:
            order.last = seq
        elif seq > last:
            if order.missing is None:
                order.missing = set()
            order.missing.update(range(last + 1, seq))
            order.last = seq
        elif order.missing is not None and seq in order.missing:
            order.missing.discard(seq)
            stats.reordered += 1
        else:
            stats.duplicated += 1

    def measure(self, body: bytes | bytearray, at: int, end: int) -> None:
        """Latency, for this worker's own messages only: the body (at `at`) starts with its tag."""
        tag = self.worker.tag
        if self.measures and body.startswith(tag, at):
            at += len(tag)
            scheduled = int(body[at : body.find(b":", at, end)])
            micros = (time.monotonic_ns() - scheduled) // 1000
            self.worker.stats.histogram.record_value(micros if micros > 0 else 1)

    def on_too_far(self, frame: dict[str, Any]) -> None:
        """Catch the room up over HTTP (in a task); its live messages wait meanwhile."""
        stats = self.worker.stats
        stats.too_far += 1
        order = self.rooms.get(frame["room"].encode())
        if order is None:
            stats.errors["unexpected_room"] += 1
            return
        if not self.worker.plan.apis:
            stats.errors["too_far_without_api"] += 1
            return
        if order.buffer is None:
            order.buffer = []
        self.catching += 1
        self.worker.nursery.start_soon(
            self.catch_up,
            frame["room"],
            order,
            frame["after_seq"],
            frame["last_seq"],
            self.connection,
        )

    async def catch_up(
        self, room: str, order: RoomOrder, after: int, last: int, connection: int
    ) -> None:
        """Fetch the room's messages `after < seq <= last` over HTTP, account them, then
        the live messages (from `last + 1`) that came meanwhile: each seq once, in order.

        If no API answers, the connection is dropped: the bot reconnects and resumes
        from its last seq (so it gets `too_far` again and retries).
        """
        stats = self.worker.stats
        try:
            with trio.fail_after(_CATCH_UP_TIMEOUT):
                events = await self.worker.history(
                    self.gateway, self.account.token, room, after, last
                )
        except (httpx.HTTPError, trio.TooSlowError) as exc:
            stats.errors[f"catch_up_failed_{type(exc).__name__}"] += 1
            if self.connection == connection and self.sock is not None:
                with contextlib.suppress(OSError):
                    self.sock.shutdown(socket.SHUT_RDWR)
            return
        if self.connection != connection:
            return  # the next connection resumes from the last seq accounted
        buffered, order.buffer = order.buffer or [], None
        self.catching -= 1
        stats.catch_ups += 1
        for event in events:
            if event.get("type") != "message":
                continue
            stats.delivered += 1
            stats.caught_up += 1
            self.check_order(order, event["seq"])
            body = event["body"].encode()
            self.measure(body, 0, len(body))
        for frame in buffered:
            self.on_message(frame, 0, len(frame))
        if self.catching == 0 and self.joined == len(self.rooms) and self.ready:
            self.worker.on_bot_back(self)

    def on_ack(self, buf: bytearray, start: int, end: int) -> None:
        at = buf.find(_REF, start, end) + len(_REF)
        kind = buf[at]
        stats = self.worker.stats
        if kind == 0x73:  # s: a send
            if self.unacked.pop(int(buf[at + 1 : buf.find(b'"', at, end)]), None) is None:
                return  # the answer to a resend of something already acknowledged
            stats.acked += 1
            at = buf.find(_ROOM, at, end) + len(_ROOM)
            room_end = buf.find(b'"', at, end)
            room = bytes(buf[at:room_end]).decode()
            at = buf.find(_SEQ, room_end, end) + len(_SEQ)
            seq = int(buf[at : buf.find(b",", at, end)])
            if seq > stats.acked_seq.get(room, 0):
                stats.acked_seq[room] = seq
        elif kind in (0x6A, 0x72):  # j: a join, r: a resume
            if kind == 0x6A:
                at = buf.find(_ROOM, at, end) + len(_ROOM)
                room_end = buf.find(b'"', at, end)
                order = self.rooms.get(bytes(buf[at:room_end]))
                at = buf.find(_SEQ, room_end, end) + len(_SEQ)
                seq = int(buf[at : buf.find(b",", at, end)])
                if order is not None:
                    self.on_joined(order, seq)
                self.joined += 1
            else:
                self.joined = len(self.rooms)
            if self.joined == len(self.rooms):
                self.worker.on_bot_ready(self)

    def on_joined(self, order: RoomOrder, seq: int) -> None:
        """The room's latest seq at subscription: later ones must all arrive."""
        if order.joined_at < 0:
            order.joined_at = seq
        if order.last < 0:
            order.last = seq
        elif order.first > seq + 1:
            if order.missing is None:
                order.missing = set()
            order.missing.update(range(seq + 1, order.first))

    def on_ready(self, buf: bytearray, start: int, end: int) -> None:
        self.ready = True
        at = buf.find(_HEARTBEAT, start, end) + len(_HEARTBEAT)
        self.heartbeat = int(buf[at : buf.find(b",", at, end)]) / 1000
        if not self.rooms:
            self.worker.on_bot_ready(self)
        elif any(order.last >= 0 for order in self.rooms.values()):
            for order in self.rooms.values():
                if order.joined_at < 0 and order.first >= 0:
                    # Messages came before a join's ack that the last connection never got:
                    # the room was joined before the first of them, which it is owed from.
                    order.joined_at = order.first - 1
            rooms = {room.decode(): max(order.last, 0) for room, order in self.rooms.items()}
            self.send_json({"type": "resume", "ref": self.ref("r"), "rooms": rooms})
        else:
            for room in self.rooms:
                self.send_json({"type": "join", "ref": self.ref("j"), "room": room.decode()})

    # -- the connection -------------------------------------------------------------------

    async def run(self, stop: trio.Event) -> None:
        """Connect, and reconnect (resuming) after churn or a failure, until `stop`.

        After churn or the storm the bot reconnects at once to the same gateway;
        after a failed connect or a lost connection it waits a full-jitter backoff
        (after a draining node's 4007 close: the delay its reason names) and tries
        the next gateway of the list (failover).
        """
        gateways = self.worker.plan.gateways
        while not stop.is_set():
            await self.connect_once(gateways[self.gateway])
            if self.refused is not None:
                return  # the same token would be refused again: retrying only loads the server
            if stop.is_set():
                return
            if not self.churn:
                if self.was_in and self.lost_at is None:
                    self.lost_at = time.monotonic()
                self.gateway = (self.gateway + 1) % len(gateways)
                if self.retry_after is not None:  # a draining node said when (4007)
                    await trio.sleep(self.retry_after)
                else:
                    self.attempt += 1
                    ceiling = min(_BACKOFF_CAP, _BACKOFF_BASE * 2**self.attempt)
                    await trio.sleep(random.uniform(0, ceiling))
            self.churn = False
            self.reconnected = True
            self.worker.stats.reconnects += 1

    async def connect_once(self, gateway: str) -> None:
        worker = self.worker
        stats = worker.stats
        url = urlsplit(gateway)
        host = url.hostname or "127.0.0.1"
        port = url.port or (443 if url.scheme == "wss" else 80)
        try:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        except OSError as exc:  # e.g. EMFILE: this process is out of file descriptors
            stats.errors[f"socket_{errno.errorcode.get(exc.errno or 0, 'failed')}"] += 1
            return
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.reader = FrameReader(self.on_frame, 64 * 1024)
        self.pending = bytearray()
        self.ready = False
        self.joined = 0
        self.close_received = False
        self.retry_after = None
        self.connection += 1
        self.catching = 0
        for order in self.rooms.values():
            order.buffer = None  # live messages of a catch-up cut short come again on resume
        try:
            try:
                sock.connect((host, port))
            except BlockingIOError:
                await trio.lowlevel.wait_writable(sock)
                error = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if error:
                    raise OSError(error, "connect failed") from None
            if url.scheme == "wss":
                sock = worker.tls_context().wrap_socket(
                    sock, server_hostname=host, do_handshake_on_connect=False
                )
                await _tls_handshake(sock)
            request, accept = handshake_request(host, port, url.path or "/", SUBPROTOCOL)
            sock.send(request)
            head = bytearray()
            while b"\r\n\r\n" not in head:
                await trio.lowlevel.wait_readable(sock)
                try:
                    chunk = sock.recv(65536)
                except _WOULD_BLOCK:
                    continue
                if not chunk:
                    raise OSError("closed during the handshake")
                head += chunk
            header, _, rest = bytes(head).partition(b"\r\n\r\n")
            problem = check_handshake_response(header, accept, SUBPROTOCOL)
            if problem is not None:
                stats.errors[f"connect_{problem}"] += 1
                return
            stats.connects += 1
            self.sock = sock
            self.send_json({"type": "hello", "token": self.account.token, "client": "chorus-bots"})
            if rest:
                self.reader.feed_bytes(rest)
            await self.receive(sock)
        except OSError:
            stats.errors["connect_failed" if self.sock is None else "connection_lost"] += 1
        except WireError:
            stats.errors["protocol_violation"] += 1
        finally:
            if self.counted:
                self.counted = False
                stats.connected -= 1
            self.sock = None
            self.ready = False
            sock.close()

    async def receive(self, sock: socket.socket) -> None:
        """Wait until the worker's poller (`read_ready`) sees this connection end."""
        self.closed = trio.Event()
        self.failure = None
        self.worker.watch(sock, self)
        if isinstance(sock, ssl.SSLSocket) and sock.pending():
            self.read_ready(sock)  # decrypted already: the socket will not signal it
        try:
            await self.closed.wait()
        finally:
            self.worker.unwatch(sock)
        if self.failure is not None:
            raise self.failure

    def read_ready(self, sock: socket.socket) -> None:
        """Read everything the kernel has for this bot and parse it (called by the poller)."""
        if self.closed.is_set():
            return
        reader = self.reader
        try:
            while True:
                count = sock.recv_into(reader.writable())
                if count == 0:
                    if not self.churn and not self.close_received:
                        self.worker.stats.errors["eof"] += 1
                    break
                reader.feed(count)
        except _WOULD_BLOCK:
            return
        except (OSError, WireError) as exc:
            self.failure = exc
        self.worker.unwatch(sock)
        self.closed.set()


class Worker:
    """Runs the bots of one `WorkerPlan` and emits ticks and a final report."""

    def __init__(self, plan: WorkerPlan, emit: Emit) -> None:
        self.plan = plan
        self.emit = emit
        self.stats = Stats()
        self.tag = f"w{plan.worker}:".encode()
        self.bots = [Bot(self, account, account.index in plan.senders) for account in plan.bots]
        self.nursery: trio.Nursery
        self.epoll = select.epoll()
        self.watched: dict[int, tuple[Bot, socket.socket]] = {}
        self.storm_moment = 0.0
        self.start = 0.0
        self.http: httpx.AsyncClient
        """For catch-ups after `too_far` (rare: not on the hot path)."""
        self._tls: ssl.SSLContext | None = None

    def tls_context(self) -> ssl.SSLContext:
        """The client context of `wss://` gateways (system CAs, or `SSL_CERT_FILE`), made once."""
        if self._tls is None:
            self._tls = ssl.create_default_context()
        return self._tls

    def watch(self, sock: socket.socket, bot: Bot) -> None:
        self.watched[sock.fileno()] = (bot, sock)
        self.epoll.register(sock.fileno(), select.EPOLLIN)

    def unwatch(self, sock: socket.socket) -> None:
        descriptor = sock.fileno()
        if descriptor >= 0 and self.watched.pop(descriptor, None) is not None:
            self.epoll.unregister(descriptor)

    async def poll(self) -> None:
        """One task reads every socket: readiness comes from one epoll set, so a burst
        of deliveries costs one trio wake-up, not one per bot."""
        epoll = self.epoll
        watched = self.watched
        while True:
            await trio.lowlevel.wait_readable(epoll)
            # A few sockets per batch, then a checkpoint: after a server stall the
            # backlog is large, and the sender schedule must not wait behind all of it.
            for descriptor, _events in epoll.poll(0, 64):
                entry = watched.get(descriptor)
                if entry is not None:
                    entry[0].read_ready(entry[1])

    def on_bot_ready(self, bot: Bot) -> None:
        if not bot.counted:
            bot.counted = True
            self.stats.connected += 1
        if bot.in_storm:
            bot.in_storm = False
            self.stats.storm_resumed.append(time.monotonic() - self.storm_moment)
        if not bot.was_in:
            late = time.monotonic() - (self.start + self.plan.ramp_up)
            self.stats.last_in_after = max(self.stats.last_in_after, late)
        bot.was_in = True
        bot.attempt = 0
        if bot.unacked:
            self.stats.resent += bot.reconnected * len(bot.unacked)
            for frame in list(bot.unacked.values()):
                bot.send_raw(frame)
        if bot.catching == 0:
            self.on_bot_back(bot)

    def on_bot_back(self, bot: Bot) -> None:
        """The bot is in its rooms and caught up: an outage it was in is over."""
        if bot.lost_at is not None:
            now = time.monotonic()
            self.stats.outages.append((bot.lost_at - self.start, now - bot.lost_at))
            bot.lost_at = None

    async def history(
        self, gateway: int, token: str, room: str, after: int, last: int
    ) -> list[Any]:
        """The room's events `after < seq <= last`, over HTTP (paged), as JSON objects
        (a message is the message object with `"type": "message"`, see docs/api.md).

        Asks the API paired with the bot's gateway first, then the others; raises
        the last `httpx.HTTPError` if none answers.
        """
        apis = self.plan.apis
        failure: httpx.HTTPError | None = None
        for turn in range(len(apis)):
            api = apis[(gateway + turn) % len(apis)]
            try:
                return await self._pages(api, token, room, after, last)
            except httpx.HTTPError as exc:
                failure = exc
        assert failure is not None  # apis is never empty here
        raise failure

    async def _pages(self, api: str, token: str, room: str, after: int, last: int) -> list[Any]:
        events: list[Any] = []
        url = f"{api.rstrip('/')}/api/v1/rooms/{room}/messages"
        headers = {"authorization": f"Bearer {token}"}
        while True:
            params = {"after": after, "limit": _PAGE}
            response = await self.http.get(url, params=params, headers=headers)
            response.raise_for_status()
            page = orjson.loads(response.content)["events"]
            events += [event for event in page if event["seq"] <= last]
            if len(page) < _PAGE or page[-1]["seq"] >= last:
                return events
            after = page[-1]["seq"]

    async def run(self, go: GoSignal) -> None:
        self.emit({"kind": "up", "worker": self.plan.worker})
        while go.value == 0.0:  # noqa: ASYNC110 - set by another process
            await trio.sleep(0.01)
        plan = self.plan
        start = self.start = go.value
        # Idle connections are dropped before a node's default `http_idle_timeout` (5 s)
        # closes them, so no catch-up request races the server's close.
        self.http = httpx.AsyncClient(
            timeout=_CATCH_UP_TIMEOUT, limits=httpx.Limits(keepalive_expiry=2.0)
        )
        await _sleep_until(start)
        send_from = start + plan.ramp_up
        send_until = send_from + plan.duration
        stop = trio.Event()
        async with trio.open_nursery() as nursery:
            self.nursery = nursery
            nursery.start_soon(self.ticks, start)
            nursery.start_soon(self.poll)
            nursery.start_soon(self.ramp, start, stop)
            nursery.start_soon(self.heartbeats)
            await _sleep_until(send_from)
            if plan.reconnect_rate > 0:
                nursery.start_soon(self.churn, send_until)
            if plan.typing_rate > 0:
                nursery.start_soon(self.typing, send_until)
            if plan.presence_rate > 0:
                nursery.start_soon(self.presence, send_until)
            if plan.storm_at is not None:
                nursery.start_soon(self.storm, send_from + plan.storm_at)
            await self.schedule(send_from, send_until)
            await self.drain(send_until)
            stop.set()
            self.emit(self.final(start))
            nursery.cancel_scope.cancel()
        await self.http.aclose()

    async def ramp(self, start: float, stop: trio.Event) -> None:
        count = len(self.bots)
        for number, bot in enumerate(self.bots):
            await _sleep_until(start + self.plan.ramp_up * number / max(count, 1))
            self.nursery.start_soon(bot.run, stop)

    async def schedule(self, send_from: float, send_until: float) -> None:
        """Open loop: the k-th message is due at `send_from + k / rate`, whatever happened."""
        senders = sending_order(
            [bot for bot in self.bots if bot.sender and bot.rooms],
            self.plan.order,
            lambda bot: bot.account.rooms[0],
        )
        if not senders or self.plan.rate <= 0:
            await _sleep_until(send_until)
            return
        interval = 1.0 / self.plan.rate
        padding = b"x" * self.plan.size
        run_id = self.plan.run_id
        number = 0
        while True:
            due = send_from + number * interval
            if due >= send_until:
                return
            now = time.monotonic()
            if due > now:
                await trio.sleep(due - now)
                now = time.monotonic()
            lag = now - due
            if lag > self.stats.tick_send_lag:
                self.stats.tick_send_lag = lag
            if lag > 0.005:
                self.stats.late_sends += 1
            bot = senders[number % len(senders)]
            rooms = bot.account.rooms
            room = rooms[bot.sent % len(rooms)]
            bot.sent += 1
            stamp = b"%s%d:" % (self.tag, int(due * 1e9))
            body = (stamp + padding)[: max(self.plan.size, len(stamp))].decode()
            payload = (
                b'{"type":"send","ref":"s%d","room":"%s","client_id":"%s-%d-%d","body":"%s"}'
                % (
                    bot.sent,
                    room.encode(),
                    run_id.encode(),
                    bot.account.index,
                    bot.sent,
                    body.encode(),
                )
            )
            bot.post(bot.sent, client_frame(payload))
            self.stats.sent += 1
            number += 1

    async def drain(self, send_until: float) -> None:
        """Wait for acks of what was sent, every bot back in its rooms and caught up, and
        deliveries to go quiet (bounded by the drain time)."""
        deadline = send_until + self.plan.drain
        await _sleep_until(send_until)
        delivered = -1
        wanted = len(self.bots)
        while time.monotonic() < deadline:
            stats = self.stats
            refused = sum(1 for bot in self.bots if bot.refused is not None)
            if (
                stats.acked >= stats.sent
                and stats.delivered == delivered
                and stats.connected + refused >= wanted
                and not any(bot.catching for bot in self.bots)
            ):
                return
            delivered = self.stats.delivered
            await trio.sleep(0.5)

    async def heartbeats(self) -> None:
        ping = client_frame(b'{"type":"ping","nonce":null}')
        while True:
            await trio.sleep(min(bot.heartbeat for bot in self.bots) / 2 if self.bots else 10)
            for bot in self.bots:
                if bot.ready:
                    bot.send_raw(ping)

    async def churn(self, until: float) -> None:
        """Drop a random bot that is in its rooms (not one still resuming or catching up)
        now and then; it reconnects and resumes at once."""
        interval = 1.0 / self.plan.reconnect_rate
        while time.monotonic() + interval < until:
            await trio.sleep(interval)
            ready = [
                bot
                for bot in self.bots
                if bot.counted and bot.sock is not None and not bot.catching
            ]
            if ready:
                bot = random.choice(ready)
                bot.churn = True
                assert bot.sock is not None
                bot.sock.shutdown(socket.SHUT_RDWR)

    async def storm(self, moment: float) -> None:
        """Every connected bot drops its socket at `moment`; all reconnect and resume at once."""
        await _sleep_until(moment)
        self.storm_moment = time.monotonic()
        for bot in self.bots:
            if bot.sock is not None:
                bot.churn = bot.in_storm = True
                self.stats.storm_dropped += 1
                with contextlib.suppress(OSError):  # already broken: it reconnects anyway
                    bot.sock.shutdown(socket.SHUT_RDWR)

    async def typing(self, until: float) -> None:
        interval = 1.0 / self.plan.typing_rate
        joined = [bot for bot in self.bots if bot.rooms]
        while joined and time.monotonic() + interval < until:
            await trio.sleep(interval)
            bot = random.choice(joined)
            if bot.ready:
                bot.send_json({"type": "typing", "room": bot.account.rooms[0]})
                self.stats.typing_sent += 1

    async def presence(self, until: float) -> None:
        """Presence churn: random bots flip between idle and online."""
        interval = 1.0 / self.plan.presence_rate
        idle: set[int] = set()
        while self.bots and time.monotonic() + interval < until:
            await trio.sleep(interval)
            bot = random.choice(self.bots)
            if bot.ready:
                status = "online" if bot.account.index in idle else "idle"
                idle.symmetric_difference_update((bot.account.index,))
                bot.send_json({"type": "presence", "status": status})
                self.stats.presence_sent += 1

    async def ticks(self, start: float) -> None:
        """A report every `tick` seconds on the dot; lateness shows the loop was busy."""
        number = 1
        while True:
            due = start + number * self.plan.tick
            await _sleep_until(due)
            lag = time.monotonic() - due
            self.stats.max_tick_lag = max(self.stats.max_tick_lag, lag)
            self.emit(self.tick(start))
            number = max(number + 1, int((time.monotonic() - start) / self.plan.tick) + 1)

    def tick(self, start: float) -> dict[str, Any]:
        stats = self.stats
        sent, acked, delivered, connects = stats.last_tick
        stats.last_tick = (stats.sent, stats.acked, stats.delivered, stats.connects)
        histogram, stats.histogram = stats.histogram, new_histogram()
        send_lag, stats.tick_send_lag = stats.tick_send_lag, 0.0
        stats.max_send_lag = max(stats.max_send_lag, send_lag)
        return {
            "kind": "tick",
            "worker": self.plan.worker,
            "t": round((time.monotonic() - start) / self.plan.tick) * self.plan.tick,
            "sent": stats.sent - sent,
            "acked": stats.acked - acked,
            "delivered": stats.delivered - delivered,
            "connects": stats.connects - connects,
            "connected": stats.connected,
            "errors": sum(stats.errors.values()),
            "send_lag": send_lag,
            "histogram": encode_histogram(histogram),
        }

    def final(self, start: float) -> dict[str, Any]:
        tick = self.tick(start)
        stats = self.stats
        lost = 0
        rooms_last: dict[str, list[int]] = {}
        rooms_joined_at: dict[str, list[int]] = {}
        for bot in self.bots:
            for room, order in bot.rooms.items():
                lost += len(order.missing) if order.missing else 0
                rooms_last.setdefault(room.decode(), []).append(order.last)
                rooms_joined_at.setdefault(room.decode(), []).append(order.joined_at)
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return tick | {
            "kind": "final",
            "sent_total": stats.sent,
            "acked_total": stats.acked,
            "delivered_total": stats.delivered,
            "connects_total": stats.connects,
            "reconnects": stats.reconnects,
            "resent": stats.resent,
            "gaps": lost,
            "duplicated": stats.duplicated,
            "reordered": stats.reordered,
            "typing_sent": stats.typing_sent,
            "presence_sent": stats.presence_sent,
            "typing_received": stats.typing_received,
            "presence_received": stats.presence_received,
            "storm_dropped": stats.storm_dropped,
            "storm_resumed": stats.storm_resumed,
            "too_far": stats.too_far,
            "catch_ups": stats.catch_ups,
            "caught_up": stats.caught_up,
            "outages": stats.outages,
            "still_out": sum(1 for bot in self.bots if bot.lost_at is not None),
            "error_kinds": dict(stats.errors),
            "auth_failures": dict(stats.auth_failures),
            "rooms_last": rooms_last,
            "rooms_joined_at": rooms_joined_at,
            "acked_seq": dict(stats.acked_seq),
            "max_send_lag": stats.max_send_lag,
            "late_sends": stats.late_sends,
            "held_sends": stats.held_sends,
            "last_in_after": stats.last_in_after,
            "max_tick_lag": stats.max_tick_lag,
            "cpu_user": usage.ru_utime,
            "cpu_system": usage.ru_stime,
            "max_rss_kib": usage.ru_maxrss,
            "involuntary_switches": usage.ru_nivcsw,
        }


def sending_order(senders: Sequence[T], order: SendOrder, room_of: Callable[[T], str]) -> list[T]:
    """`senders` in the order the schedule takes turns (see `SendOrder`).

    Interleaved: one sender of each room (by `room_of`, its first room) in
    turn, rooms in the order their first sender comes.
    """
    if order == "grouped":
        return list(senders)
    by_room: dict[str, list[T]] = {}
    for sender in senders:
        by_room.setdefault(room_of(sender), []).append(sender)
    turns = itertools.zip_longest(*by_room.values())
    return [sender for turn in turns for sender in turn if sender is not None]


async def _tls_handshake(sock: ssl.SSLSocket) -> None:
    """The client side of a TLS handshake on a non-blocking socket (`wss://` gateways)."""
    while True:
        try:
            sock.do_handshake()
            return
        except ssl.SSLWantReadError:
            await trio.lowlevel.wait_readable(sock)
        except ssl.SSLWantWriteError:
            await trio.lowlevel.wait_writable(sock)


async def _sleep_until(moment: float) -> None:
    delay = moment - time.monotonic()
    if delay > 0:
        await trio.sleep(delay)


def run_worker(plan: WorkerPlan, emit: Emit, go: GoSignal) -> None:
    """Run one worker to completion in this thread (its own trio loop)."""
    trio.run(Worker(plan, emit).run, go)


def worker_process(plan: WorkerPlan, queue: Any, go: Any) -> None:
    """Entry point of a spawned worker process: reports go to `queue`."""
    import gc

    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)
    raise_open_files_limit(len(plan.bots) + 256)
    try:
        run_worker(plan, queue.put, go)
    except BaseException as exc:
        queue.put({"kind": "failed", "worker": plan.worker, "error": repr(exc)})
        raise
