"""Our own connections to one Redis server, natively on trio: address, RESP2, lifecycle.

`RespServer` opens a connection (TLS, `AUTH`); `encode_command` and
`parse_replies` speak RESP2 on it. `RespConnection` is the lifecycle all
three of ours share (`RespSubscriber`, `RespPublisher`, `RespClient`): it
connects with backoff, reads replies under a deadline, and closes the
connection and opens another when it fails. `PipelinedConnection` adds the
request/reply shape of the publisher and the client: one writer task
sending everything queued with one `send_all`, what Redis answers coming
back in order. The subscriber's connection is in subscribed mode, and sends
its few commands itself.

Each of them says only what differs: what a connection carries (`_serve`,
or `_sent`, `_awaiting` and `_replied` for a pipeline) and how it fails
(`_connect_failed`, `_lost`, `_closed`).
"""

from __future__ import annotations

import errno
import math
import os
import ssl
from collections.abc import Callable, Iterable
from typing import Final
from urllib.parse import parse_qs, unquote, urlsplit

import trio

CONNECT_TIMEOUT = 5.0
"""Seconds to connect (and authenticate) before trying again."""
MAX_BACKOFF = 2.0
"""Longest wait between two connection attempts."""
READ_SIZE = 65536
Ready = Callable[[], None]
"""Called by a connection's `_serve` once it is usable (`run` counts as started)."""
FIRST_BACKOFF: Final = 0.1
"""Seconds between the first two connection attempts (doubling up to `MAX_BACKOFF`)."""


class ReplyError(Exception):
    """Redis answered a command with an error (e.g. a wrong password)."""


FAILURES: Final = (OSError, trio.TooSlowError, trio.BrokenResourceError, ReplyError)
"""What a lost, refused or silent connection raises."""


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


class RespConnection:
    """One connection to the Redis server `url` names, kept open by `run` until cancelled.

    Guarantees: an attempt to connect (and authenticate) takes at most
    `CONNECT_TIMEOUT` seconds; after a failed one, `_connect_failed` is called
    and the next comes 0.1 s later, the wait doubling up to `MAX_BACKOFF` while
    attempts keep failing, and back to 0.1 s once one succeeds. On each
    connection, `_stream` is set and `_serve` runs until it raises one of
    `FAILURES` (handed to `_lost`) or the connection scope is cancelled (by a
    subclass that found the connection failed, or by the reply watchdog, after
    calling `_lost`); then,
    or when `run` is cancelled, `_closed` is called, `_stream` is None again
    and the connection is closed: nothing is carried over to the next
    connection but what the subclass keeps. `_read`, for `_serve`, hands the
    complete replies of each read to `_replied` in the order Redis sent them,
    and fails when Redis closes the connection or when `_awaiting()` holds
    for `timeout` seconds without any reply coming. `run` counts as started
    (`nursery.start`) once the first attempt is over: when `_serve` calls
    `ready`, when the attempt failed, or when the connection ended before
    `ready`.
    """

    def __init__(self, url: str, *, timeout: float) -> None:
        self._server = RespServer(url)
        self._timeout = timeout
        self._stream: trio.abc.Stream | None = None
        """The open connection; None while there is none."""
        self._reply_due = math.inf
        """When Redis is too slow if no reply has come by then (`_watch_replies`)."""

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Keep a connection open until cancelled (started once a first attempt to
        connect is over, whether it worked or not)."""

        def ready() -> None:
            nonlocal task_status
            task_status.started()
            task_status = trio.TASK_STATUS_IGNORED

        backoff = FIRST_BACKOFF
        while True:
            try:
                with trio.fail_after(CONNECT_TIMEOUT):
                    stream = await self._server.connect()
            except FAILURES as exc:
                ready()
                self._connect_failed(exc)
                await trio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)
                continue
            backoff = FIRST_BACKOFF
            failed = False
            try:
                self._stream = stream
                async with trio.open_nursery() as connection:
                    self._reply_due = self._next_reply_due()
                    connection.start_soon(self._watch_replies, connection.cancel_scope)
                    try:
                        await self._serve(stream, connection, ready)
                    except FAILURES as exc:
                        self._lost(exc)
                    connection.cancel_scope.cancel()
                failed = True  # ended by itself, not by `run` being cancelled
            finally:
                self._stream = None
                self._closed(failed=failed)
                await trio.aclose_forcefully(stream)
            ready()  # if the connection ended before it was ready: this attempt is over too

    async def _serve(self, stream: trio.abc.Stream, connection: trio.Nursery, ready: Ready) -> None:
        """Carry what this connection is for; call `ready` once it is usable; raise one of
        `FAILURES` when it fails. `connection` is for background tasks, and cancelling
        its scope ends the connection."""
        raise NotImplementedError

    def _awaiting(self) -> bool:
        """Whether Redis owes replies, so that `timeout` seconds without one fail the
        connection (by default always: a connection kept alive by `PING`s)."""
        return True

    def _replied(self, replies: list[object]) -> None:
        """The next replies, in order (a refused command's a `ReplyError`)."""
        raise NotImplementedError

    async def _read(self, stream: trio.abc.Stream) -> None:
        """Hand the replies of each read to `_replied`; raises when the connection ends.

        The read has no deadline of its own (a cancel scope per read was the
        costliest step of a publication): each read moves the time by which
        the next reply is due, and `_watch_replies` fails the connection when
        that passes.
        """
        buffer = bytearray()
        while True:
            data: bytes | bytearray
            if isinstance(stream, trio.SocketStream):
                data = await _receive_plain(stream.socket)
            else:  # TLS: decrypted bytes may be pending that the socket no longer signals
                data = await stream.receive_some(READ_SIZE)
            if not data:
                raise trio.BrokenResourceError("Redis closed the connection")
            buffer += data
            replies, used = parse_replies(buffer)
            del buffer[:used]
            self._replied(replies)
            self._reply_due = self._next_reply_due()

    def _next_reply_due(self) -> float:
        """`timeout` from now if Redis owes replies, else never."""
        return trio.current_time() + self._timeout if self._awaiting() else math.inf

    async def _watch_replies(self, connection: trio.CancelScope) -> None:
        """Fail the connection (`_lost`, then cancel `connection`) once `_reply_due` has
        passed; it wakes at most every `timeout` seconds and at the due time."""
        while True:
            now = trio.current_time()
            if self._reply_due <= now:
                self._lost(trio.TooSlowError(f"Redis did not answer within {self._timeout} s"))
                connection.cancel()
                return
            await trio.sleep_until(min(self._reply_due, now + self._timeout))

    def _connect_failed(self, error: BaseException) -> None:
        """An attempt to connect failed (before waiting for the next)."""

    def _lost(self, error: BaseException) -> None:
        """The connection failed (it is closed next)."""

    def _closed(self, *, failed: bool) -> None:
        """The connection is gone: it failed (`failed`), or `run` was cancelled."""


class PipelinedConnection(RespConnection):
    """A connection carrying commands queued in `_unsent` and their replies, in order.

    Guarantees, on top of `RespConnection`'s: it is ready as soon as it is
    open; one writer task sends what is queued, everything queued while it
    was sending in one `send_all` (queue the first bytes into an empty
    `_unsent` with `_queued.set()`), and `_sent` is called just before each
    send; the reader (`_read`) takes what Redis answers. The connection also
    fails (`_lost`) when a send fails. The clock for Redis's answer starts
    when a send begins with nothing awaited, and again at every read. Bytes
    still unsent when the connection fails stay in `_unsent`: what to do with
    them is the subclass's (`_closed`).
    """

    def __init__(self, url: str, *, timeout: float) -> None:
        super().__init__(url, timeout=timeout)
        self._unsent = bytearray()
        """Encoded commands not yet handed to the connection."""
        self._queued = trio.Event()
        """Set when the first command is queued into an empty `_unsent`."""

    def _sent(self) -> None:
        """Everything in `_unsent` is about to be sent (`_unsent` is empty again)."""

    async def _serve(self, stream: trio.abc.Stream, connection: trio.Nursery, ready: Ready) -> None:
        ready()
        connection.start_soon(self._write, stream, connection.cancel_scope)
        await self._read(stream)

    async def _write(self, stream: trio.abc.Stream, connection: trio.CancelScope) -> None:
        """Send what is queued, everything queued meanwhile in one `send_all`."""
        try:
            while True:
                if not self._unsent:
                    self._queued = trio.Event()
                    await self._queued.wait()
                data, self._unsent = self._unsent, bytearray()
                if self._reply_due == math.inf:  # the clock for Redis's answer starts
                    self._reply_due = trio.current_time() + self._timeout
                self._sent()
                await stream.send_all(data)
        except (OSError, trio.BrokenResourceError) as exc:
            self._lost(exc)
            connection.cancel()


async def _receive_plain(sock: trio.socket.SocketType) -> bytes:
    """The next bytes on a plain TCP socket (b"" at EOF), as `SocketStream.receive_some`
    reads them, with its errors: `trio.ClosedResourceError` if the socket is closed,
    `trio.BrokenResourceError` for any other `OSError`.

    One `recv` per wake-up: `receive_some` tries a `recv` first, which on a
    connection read up to date fails with EAGAIN, then waits and reads again.
    """
    try:
        while True:
            fd = sock.fileno()
            if fd < 0:  # closed before this read
                raise OSError(errno.EBADF, "the socket was closed")
            await trio.lowlevel.wait_readable(fd)
            try:
                return os.read(fd, READ_SIZE)
            except BlockingIOError:
                continue  # a spurious wake-up: wait again
    except OSError as exc:
        if exc.errno == errno.EBADF:
            raise trio.ClosedResourceError("the socket was closed") from exc
        raise trio.BrokenResourceError(exc) from exc


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
        if buffer.startswith(_MESSAGE, position):  # a reply, not an item of one
            parsed = _parse_message(buffer, position + len(_MESSAGE))
        else:
            parsed = _parse(buffer, position)
        if parsed is None:
            return replies, position
        reply, position = parsed
        replies.append(reply)


_MESSAGE = b"*3\r\n$7\r\nmessage\r\n"
"""How every pub/sub message starts (`_parse_message`): a reply of its own, never an item
of another (a command's reply holding such an array takes the general parse)."""


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


def _parse_message(buffer: bytes | bytearray, start: int) -> tuple[object, int] | None:
    """A pub/sub message's channel and payload (two bulk strings from `start`), as the
    general parse gives them: `[b"message", channel, payload]`.

    Every publication a node receives is one (a peer's and its own), so they skip
    the general parse's step per item (docs/benchmarks.md, "Issue #15, session 13:
    the bus's receiving side").
    """
    channel = _parse_bulk(buffer, start)
    if channel is None:
        return None
    payload = _parse_bulk(buffer, channel[1])
    if payload is None:
        return None
    return [b"message", channel[0], payload[0]], payload[1]


def _parse_bulk(buffer: bytes | bytearray, start: int) -> tuple[bytes, int] | None:
    """A bulk string at `start` (a message's item: never null); None if it is not all
    in `buffer` yet."""
    end = buffer.find(b"\r\n", start)
    if end < 0:
        return None
    after = end + 2
    size = int(buffer[start + 1 : end]) if buffer[start] == 0x24 else -1  # 0x24: b"$"
    if size < 0:
        raise ReplyError(f"unexpected reply from Redis: {bytes(buffer[start:end])!r}")
    if len(buffer) < after + size + 2:
        return None
    return bytes(buffer[after : after + size]), after + size + 2
