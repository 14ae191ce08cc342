"""`RespClient`: request/reply commands to one Redis server, natively on trio.

Why not coredis: per command it builds a command object and a future, and
hands the bytes to its own writer task through anyio; the rate-limit report
(60 `EVALSHA`s every 100 ms on a busy node) cost 2.4-3.0 ms of CPU a report
that way, against 0.3-0.6 ms as plain RESP (docs/benchmarks.md, "The
rate-limit report"). Here `execute` appends the encoded commands to a buffer
and waits; one writer task sends everything buffered with one `send_all`, and
one reader task hands Redis's replies, which come in order, to the callers
in the order they queued.

Only for one server over TCP or TLS (`redis://`, `rediss://`); a Redis
Cluster and unix sockets stay with coredis.
"""

from __future__ import annotations

import hashlib
import math
from collections import deque
from collections.abc import Sequence

import structlog
import trio

from ._subscriber import (
    CONNECT_TIMEOUT,
    MAX_BACKOFF,
    READ_SIZE,
    ReplyError,
    RespServer,
    encode_command,
    parse_replies,
)

_log = structlog.get_logger("chorus.cluster")

REPLY_TIMEOUT = 5.0
"""Seconds Redis may leave commands unanswered, no reply coming at all, before the
connection is given up and reopened (callers usually give up much sooner)."""

_FAILURES = (OSError, trio.TooSlowError, trio.BrokenResourceError, ReplyError)
"""What a lost, refused or silent connection raises."""


class RedisUnavailable(ConnectionError):
    """No connection to Redis, or it was lost before the commands were answered
    (they may have run all the same)."""


class _Call:
    """Commands of one `execute`, and their replies as they come."""

    __slots__ = ("done", "error", "expected", "replies")

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.replies: list[object] = []
        self.error: RedisUnavailable | None = None
        self.done = trio.Event()


class RespClient:
    """Runs commands on one Redis server over one connection; `run` keeps it open.

    `url` is a `redis://` or `rediss://` URL as `open_redis_bus` takes them
    (user and password, `ssl_ca_certs`). Guarantee: the commands of one
    `execute` reach Redis together and in order, after those of earlier calls,
    each at most once (nothing is sent twice); `execute` returns their replies
    in order, or raises `RedisUnavailable` at once when there is no
    connection, or when the connection is lost before they are all answered.
    """

    def __init__(self, url: str, *, timeout: float = REPLY_TIMEOUT) -> None:
        self._server = RespServer(url)
        self._timeout = timeout
        self._connected = False
        self._unsent = bytearray()
        self._waiting: deque[_Call] = deque()
        """Calls not fully answered yet, in the order their commands were queued."""
        self._queued = trio.Event()
        self._answers = trio.CancelScope()
        """The reader's wait for replies: its deadline is when Redis is too slow."""

    async def execute(self, commands: Sequence[Sequence[bytes]]) -> list[object]:
        """Send `commands` in one go and return their replies (a refused command's is
        a `ReplyError`, not raised); raises `RedisUnavailable`."""
        if not commands:
            return []
        if not self._connected:
            raise RedisUnavailable("not connected to Redis")
        call = _Call(len(commands))
        if not self._unsent:
            self._queued.set()
        for command in commands:
            self._unsent += encode_command(command)
        self._waiting.append(call)
        await call.done.wait()
        if call.error is not None:
            raise call.error
        return call.replies

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Keep a connection open until cancelled (started once a first attempt to
        connect is over, whether it worked or not)."""
        backoff = 0.1
        while True:
            try:
                with trio.fail_after(CONNECT_TIMEOUT):
                    stream = await self._server.connect()
            except _FAILURES as exc:
                _log.warning("redis.connect_failed", error=repr(exc))
                task_status.started()
                task_status = trio.TASK_STATUS_IGNORED
                await trio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)
                continue
            backoff = 0.1
            self._connected = True
            task_status.started()
            task_status = trio.TASK_STATUS_IGNORED
            try:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._write, stream, nursery.cancel_scope)
                    try:
                        await self._read(stream)
                    except _FAILURES as exc:
                        _log.warning("redis.connection_lost", error=repr(exc))
                    nursery.cancel_scope.cancel()
            finally:
                self._connected = False
                self._fail_waiting()
                await trio.aclose_forcefully(stream)

    async def _write(self, stream: trio.abc.Stream, connection: trio.CancelScope) -> None:
        """Send what is queued, everything queued meanwhile in one `send_all`."""
        try:
            while True:
                if not self._unsent:
                    self._queued = trio.Event()
                    await self._queued.wait()
                data, self._unsent = self._unsent, bytearray()
                if self._answers.deadline == math.inf:  # the clock for Redis's answer starts
                    self._answers.deadline = trio.current_time() + self._timeout
                await stream.send_all(data)
        except (OSError, trio.BrokenResourceError) as exc:
            _log.warning("redis.connection_lost", error=repr(exc))
            connection.cancel()

    async def _read(self, stream: trio.abc.Stream) -> None:
        """Hand each reply to its call; raises when the connection ends, or when calls
        stay unanswered for `timeout` seconds without any reply coming."""
        buffer = bytearray()
        while True:
            deadline = trio.current_time() + self._timeout if self._waiting else math.inf
            with trio.CancelScope(deadline=deadline) as self._answers:
                data = await stream.receive_some(READ_SIZE)
            if self._answers.cancelled_caught:
                raise trio.TooSlowError(f"Redis did not answer within {self._timeout} s")
            if not data:
                raise trio.BrokenResourceError("Redis closed the connection")
            buffer += data
            replies, used = parse_replies(buffer)
            del buffer[:used]
            for reply in replies:
                if not self._waiting:
                    raise ReplyError(f"a reply nobody asked for: {reply!r}")
                call = self._waiting[0]
                call.replies.append(reply)
                if len(call.replies) == call.expected:
                    self._waiting.popleft()
                    call.done.set()

    def _fail_waiting(self) -> None:
        """The connection is gone: every call not answered yet fails, none is sent again."""
        self._unsent = bytearray()
        while self._waiting:
            call = self._waiting.popleft()
            call.error = RedisUnavailable("the connection to Redis was lost")
            call.done.set()


class Script:
    """A Lua script run by its SHA1 (`EVALSHA`), sent whole (`EVAL`) where Redis does not
    have it yet (after a restart or `SCRIPT FLUSH`)."""

    def __init__(self, source: str) -> None:
        self._source = source.encode()
        self._sha = hashlib.sha1(self._source).hexdigest().encode()

    async def run_many(
        self, client: RespClient, calls: Sequence[tuple[Sequence[bytes], Sequence[bytes]]]
    ) -> list[object]:
        """Run the script once per `(keys, args)`, all in one round trip (two if Redis
        lacked it); the replies in order (a `ReplyError` for a call the script failed)."""
        replies = await client.execute(
            [self._command(b"EVALSHA", self._sha, k, a) for k, a in calls]
        )
        missing = [i for i, reply in enumerate(replies) if _no_script(reply)]
        if missing:
            again = await client.execute(
                [self._command(b"EVAL", self._source, *calls[i]) for i in missing]
            )
            for i, reply in zip(missing, again, strict=True):
                replies[i] = reply
        return replies

    @staticmethod
    def _command(
        verb: bytes, script: bytes, keys: Sequence[bytes], args: Sequence[bytes]
    ) -> list[bytes]:
        return [verb, script, b"%d" % len(keys), *keys, *args]


def _no_script(reply: object) -> bool:
    return isinstance(reply, ReplyError) and str(reply).startswith("NOSCRIPT")
