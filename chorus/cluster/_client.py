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
Cluster and unix sockets stay with coredis (`CoredisCommands`, the same
`Commands` interface).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

import structlog
import trio

from ._connection import PipelinedConnection, ReplyError, encode_command

_log = structlog.get_logger("chorus.cluster")

REPLY_TIMEOUT = 5.0
"""Seconds Redis may leave commands unanswered, no reply coming at all, before the
connection is given up and reopened (callers usually give up much sooner)."""


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


class RespClient(PipelinedConnection):
    """Runs commands on one Redis server over one connection; `run` keeps it open.

    `url` is a `redis://` or `rediss://` URL as `open_redis_bus` takes them
    (user and password, `ssl_ca_certs`). Guarantee: the commands of one
    `execute` reach Redis together and in order, after those of earlier calls,
    each at most once (nothing is sent twice); `execute` returns their replies
    in order, or raises `RedisUnavailable` at once when there is no
    connection, or when the connection is lost before they are all answered.
    """

    def __init__(self, url: str, *, timeout: float = REPLY_TIMEOUT) -> None:
        super().__init__(url, timeout=timeout)
        self._waiting: deque[_Call] = deque()
        """Calls not fully answered yet, in the order their commands were queued."""

    async def execute(self, commands: Sequence[Sequence[bytes]]) -> list[object]:
        """Send `commands` in one go and return their replies (a refused command's is
        a `ReplyError`, not raised); raises `RedisUnavailable`."""
        if not commands:
            return []
        if self._stream is None:
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

    def _awaiting(self) -> bool:
        return bool(self._waiting)

    def _replied(self, replies: list[object]) -> None:
        """Hand each reply to its call."""
        for reply in replies:
            if not self._waiting:
                raise ReplyError(f"a reply nobody asked for: {reply!r}")
            call = self._waiting[0]
            call.replies.append(reply)
            if len(call.replies) == call.expected:
                self._waiting.popleft()
                call.done.set()

    def _connect_failed(self, error: BaseException) -> None:
        _log.warning("redis.connect_failed", error=repr(error))

    def _lost(self, error: BaseException) -> None:
        _log.warning("redis.connection_lost", error=repr(error))

    def _closed(self, *, failed: bool) -> None:
        """Every call not answered yet fails, none is sent again."""
        self._unsent = bytearray()
        while self._waiting:
            call = self._waiting.popleft()
            call.error = RedisUnavailable("the connection to Redis was lost")
            call.done.set()
