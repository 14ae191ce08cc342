"""`RespSubscriber`: the bus's receiving side on one Redis server, natively on trio.

Why not coredis' pub/sub client: it hands each message through two memory
streams (its reader task, then its consumer task, then `get_message`), and
each hop waits for a pass of trio's scheduler. A node therefore took in at
most one bus message per scheduler pass, and a busy node has hundreds of
runnable tasks per pass: publications queued up behind the node's own work
(docs/benchmarks.md, "Scale-out tail latency"). Here one task reads the
socket and hands every message of a read to `deliver`, in the order Redis
sent them, in one task step however many the read holds.

It speaks RESP2 on its own connection, which is in subscribed mode for its
whole life, so the only replies are subscription acknowledgements, messages
and the answers to its keep-alive `PING`s. The connection is reopened with
backoff when it fails or falls silent; what was published meanwhile is lost
(pub/sub is at most once), which room actors repair from the store.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable, Iterable
from urllib.parse import parse_qs, unquote, urlsplit

import structlog
import trio

_log = structlog.get_logger("chorus.cluster")

Dispatch = Callable[[bytes, bytes], None]
"""Called with the channel and payload of each message, in order; must not block."""

CONNECT_TIMEOUT = 5.0
"""Seconds to connect (and authenticate) before trying again."""
SUBSCRIBE_TIMEOUT = 5.0
"""Seconds `subscribe` waits for Redis to confirm before returning anyway."""
KEEPALIVE = 5.0
"""Seconds between `PING`s; a connection silent for `SILENT_PINGS` of them is reopened."""
SILENT_PINGS = 3
"""`PING`s in a row without anything read meanwhile after which the connection is reopened."""
MAX_BACKOFF = 2.0
"""Longest wait between two connection attempts."""
READ_SIZE = 65536


class ReplyError(Exception):
    """Redis answered a command with an error (e.g. a wrong password)."""


class RespServer:
    """One Redis server as a `redis://` or `rediss://` URL names it: host and port, user
    and password (`AUTH`), TLS (`rediss`, trusting `?ssl_ca_certs=/path/ca.pem` if given).

    The URL's database number is not used: pub/sub channels are the same in every
    database.
    """

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self._host = parts.hostname or "127.0.0.1"
        self._port = parts.port or 6379
        self._auth = [unquote(parts.username)] if parts.username else []
        if parts.password:
            self._auth.append(unquote(parts.password))
        self._tls: ssl.SSLContext | None = None
        if parts.scheme == "rediss":
            ca_file = parse_qs(parts.query).get("ssl_ca_certs", [None])[0]
            self._tls = ssl.create_default_context(cafile=ca_file)

    async def connect(self) -> trio.abc.Stream:
        """A new connection, TLS set up and authenticated; raises `OSError`,
        `trio.BrokenResourceError` or `ReplyError` (e.g. a wrong password)."""
        tcp = await trio.open_tcp_stream(self._host, self._port)
        stream: trio.abc.Stream = tcp
        try:
            if self._tls is not None:
                stream = trio.SSLStream(tcp, self._tls, server_hostname=self._host)
                await stream.do_handshake()
            if self._auth:
                await stream.send_all(encode_command([b"AUTH", *map(str.encode, self._auth)]))
                reply = await _one_reply(stream)
                if isinstance(reply, ReplyError):
                    raise reply
        except BaseException:
            await trio.aclose_forcefully(stream)
            raise
        return stream


class RespSubscriber:
    """Subscribes to channels of one Redis server and calls `dispatch` for their messages.

    `url` is a `redis://` or `rediss://` URL as `open_redis_bus` takes them
    (user and password, `ssl_ca_certs`); `run` keeps the connection open.
    Guarantee: messages are dispatched in the order Redis sent them, each once;
    a channel is subscribed on every connection from `subscribe` until
    `unsubscribe`.
    """

    def __init__(self, url: str, dispatch: Dispatch) -> None:
        self._server = RespServer(url)
        self._dispatch = dispatch
        self._channels: set[bytes] = set()
        self._acks: dict[bytes, list[trio.Event]] = {}
        self._stream: trio.abc.Stream | None = None
        self._sending = trio.Lock()  # a trio stream allows one sender at a time
        self._reads = 0
        """Reads of the socket so far (`_keep_alive` sees from it whether any came)."""

    async def subscribe(self, channel: str) -> None:
        """Subscribe, and return once Redis confirmed it (or after `SUBSCRIBE_TIMEOUT`, or
        at once while Redis is away: the channel is subscribed when it is back)."""
        name = channel.encode()
        self._channels.add(name)
        confirmed = trio.Event()
        self._acks.setdefault(name, []).append(confirmed)
        if await self._send([b"SUBSCRIBE", name]):
            with trio.move_on_after(SUBSCRIBE_TIMEOUT):
                await confirmed.wait()

    async def unsubscribe(self, channel: str) -> None:
        """Stop subscribing (messages already on the way may still be dispatched)."""
        name = channel.encode()
        self._channels.discard(name)
        await self._send([b"UNSUBSCRIBE", name])

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Keep a subscribed connection open until cancelled (started once a first attempt
        to connect is over, whether it worked or not)."""
        backoff = 0.1
        while True:
            try:
                with trio.fail_after(CONNECT_TIMEOUT):
                    stream = await self._server.connect()
            except (OSError, trio.TooSlowError, trio.BrokenResourceError, ReplyError) as exc:
                _log.warning("bus.subscriber_connect_failed", error=repr(exc))
                task_status.started()
                task_status = trio.TASK_STATUS_IGNORED
                await trio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)
                continue
            backoff = 0.1
            try:
                async with trio.open_nursery() as nursery:
                    self._stream = stream
                    if self._channels:
                        await self._send([b"SUBSCRIBE", *sorted(self._channels)])
                    task_status.started()
                    task_status = trio.TASK_STATUS_IGNORED
                    nursery.start_soon(self._keep_alive, nursery.cancel_scope)
                    try:
                        await self._read(stream)
                    except (OSError, trio.BrokenResourceError, ReplyError) as exc:
                        _log.warning("bus.subscriber_lost", error=repr(exc))
                    nursery.cancel_scope.cancel()
            finally:
                self._stream = None
                self._wake_waiters()
                await trio.aclose_forcefully(stream)

    async def _send(self, command: list[bytes]) -> bool:
        """Send on the current connection; False if there is none or it failed (the
        reader then reconnects, and subscribes to `_channels` again)."""
        stream = self._stream
        if stream is None:
            return False
        try:
            async with self._sending:
                await stream.send_all(encode_command(command))
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            return False
        return True

    async def _keep_alive(self, connection: trio.CancelScope) -> None:
        """`PING` every `KEEPALIVE` seconds; once `SILENT_PINGS` of them in a row brought
        nothing (nor anything else), end the connection by cancelling `connection`.

        The reader's own wait has no deadline: a cancel scope per read cost a node
        ~50,000 instructions for every read of its peers' publications.
        """
        reads, silent = self._reads, 0
        while True:
            await trio.sleep(KEEPALIVE)
            silent = silent + 1 if self._reads == reads else 0
            reads = self._reads
            if silent >= SILENT_PINGS:
                _log.warning("bus.subscriber_lost", error=f"silent for {silent} keep-alives")
                connection.cancel()
                return
            await self._send([b"PING"])

    async def _read(self, stream: trio.abc.Stream) -> None:
        """Dispatch every complete reply of each read, in order; raises when the connection
        ends (`_keep_alive` ends it when it stays silent)."""
        buffer = bytearray()
        while True:
            data = await stream.receive_some(READ_SIZE)
            self._reads += 1
            if not data:
                raise trio.BrokenResourceError("Redis closed the connection")
            buffer += data
            replies, used = parse_replies(buffer)
            del buffer[:used]
            for reply in replies:
                self._handle(reply)

    def _handle(self, reply: object) -> None:
        if not isinstance(reply, list) or len(reply) < 2:
            if isinstance(reply, ReplyError):
                _log.warning("bus.subscriber_error_reply", error=str(reply))
            return
        kind = reply[0]
        if kind == b"message" and len(reply) == 3:
            self._dispatch(reply[1], reply[2])
        elif kind == b"subscribe":
            for confirmed in self._acks.pop(reply[1], ()):
                confirmed.set()

    def _wake_waiters(self) -> None:
        """The connection is gone: nobody waits for its confirmations any more."""
        for waiting in self._acks.values():
            for confirmed in waiting:
                confirmed.set()
        self._acks.clear()


def encode_command(args: Iterable[bytes]) -> bytes:
    """A RESP2 command (an array of bulk strings)."""
    items = list(args)
    parts = [b"*%d\r\n" % len(items)]
    for arg in items:
        parts.append(b"$%d\r\n%s\r\n" % (len(arg), arg))
    return b"".join(parts)


async def _one_reply(stream: trio.abc.Stream) -> object:
    """Read the reply to the one command sent so far."""
    buffer = bytearray()
    while True:
        data = await stream.receive_some(READ_SIZE)
        if not data:
            raise trio.BrokenResourceError("Redis closed the connection")
        buffer += data
        replies, _ = parse_replies(buffer)
        if replies:
            return replies[0]


def parse_replies(buffer: bytes | bytearray) -> tuple[list[object], int]:
    """The complete RESP2 replies at the start of `buffer`, and how many bytes they take.

    Simple strings and bulk strings are `bytes` (a null bulk string `None`),
    integers `int`, errors `ReplyError`, arrays lists. An incomplete reply at
    the end is left for the next read.
    """
    replies: list[object] = []
    position = 0
    while True:
        parsed = _parse(buffer, position)
        if parsed is None:
            return replies, position
        reply, position = parsed
        replies.append(reply)


def _parse(buffer: bytes | bytearray, start: int) -> tuple[object, int] | None:
    end = buffer.find(b"\r\n", start)
    if end < 0:
        return None
    kind, line, after = buffer[start : start + 1], bytes(buffer[start + 1 : end]), end + 2
    if kind == b"$":
        size = int(line)
        if size < 0:
            return None, after
        if len(buffer) < after + size + 2:
            return None
        return bytes(buffer[after : after + size]), after + size + 2
    if kind == b"*":
        count = int(line)
        items: list[object] = []
        for _ in range(max(count, 0)):
            parsed = _parse(buffer, after)
            if parsed is None:
                return None
            item, after = parsed
            items.append(item)
        return (items if count >= 0 else None), after
    if kind == b"+":
        return line, after
    if kind == b":":
        return int(line), after
    if kind == b"-":
        return ReplyError(line.decode(errors="replace")), after
    raise ReplyError(f"unexpected reply from Redis: {bytes(buffer[start:end])!r}")
