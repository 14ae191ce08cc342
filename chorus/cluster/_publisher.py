"""`RespPublisher`: the bus's publishing side on one Redis server, natively on trio.

Why not coredis' pipeline: per batch it builds a pipeline, a command object
and a future per publication, and hands the bytes to its own writer task
through anyio; on a busy `cluster-1` node that writer task and anyio's `send`
were 7.6 % of all samples (docs/benchmarks.md, "Where `cluster-1`'s extra
time goes"). Here `publish` appends the encoded `PUBLISH` to a buffer and
returns; one writer task sends everything buffered with one `send_all` (what
the room actors queued during one pass of trio's scheduler goes out
together), and one reader task counts Redis's replies, which come in order.

Nobody waits for a publication: the bus is at most once, and readers repair
what they miss from the store (`Bus.publish`). So the replies only tell that
the connection is alive and how many publications are still unanswered.
"""

from __future__ import annotations

import math

import structlog
import trio

from chorus.metrics import BUS_DROPPED

from ._subscriber import (
    CONNECT_TIMEOUT,
    MAX_BACKOFF,
    READ_SIZE,
    ReplyError,
    RespServer,
    parse_replies,
)

_log = structlog.get_logger("chorus.cluster")

PUBLISH_TIMEOUT = 1.0
"""Seconds Redis may leave publications unanswered, or stay away while some wait to be
sent, before they are given up (the store already has the data)."""
PUBLISH_QUEUE = 10_000
"""Publications waiting for Redis (unsent or unanswered); past it new ones are dropped."""

_FAILURES = (OSError, trio.TooSlowError, trio.BrokenResourceError, ReplyError)
"""What a lost, refused or silent connection raises."""


class RespPublisher:
    """Publishes to channels of one Redis server over one connection; `run` keeps it open.

    `url` is a `redis://` or `rediss://` URL as `open_redis_bus` takes them.
    Guarantee: publications reach Redis in the order `publish` was called, each
    at most once (nothing is sent twice). One is dropped, and counted in
    `dropped` and `chorus_bus_dropped_total`, when `limit` publications already
    wait (unsent or unanswered), when its connection is lost before Redis
    answers it (Redis may have published it all the same), when Redis refuses
    it, or when it waited unsent for `timeout` seconds while Redis was away.
    """

    def __init__(
        self, url: str, *, limit: int = PUBLISH_QUEUE, timeout: float = PUBLISH_TIMEOUT
    ) -> None:
        self._server = RespServer(url)
        self._limit = limit
        self._timeout = timeout
        self._unsent = bytearray()
        """The encoded `PUBLISH`es not yet handed to the connection."""
        self._unsent_count = 0
        self._unsent_since = 0.0
        """When the oldest unsent publication was queued (trio's clock)."""
        self._unanswered = 0
        """Publications sent on the current connection that Redis has not answered yet."""
        self._queued = trio.Event()
        """Set when the first publication is queued into an empty buffer."""
        self._answers = trio.CancelScope()
        """The reader's wait for replies: its deadline is when Redis is too slow."""
        self._drained = trio.Event()
        self._drained.set()
        self.dropped = 0

    def publish(self, channel: str, payload: bytes) -> None:
        """Queue a publication and return at once (never waits for Redis)."""
        if self._unsent_count + self._unanswered >= self._limit:
            self._drop(1)
            return
        name = channel.encode()
        if not self._unsent_count:
            self._unsent_since = trio.current_time()
            self._queued.set()
            if self._drained.is_set():
                self._drained = trio.Event()
        self._unsent += b"*3\r\n$7\r\nPUBLISH\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (
            len(name),
            name,
            len(payload),
            payload,
        )
        self._unsent_count += 1

    async def drained(self) -> None:
        """Return once every publication queued so far was answered or dropped."""
        await self._drained.wait()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Keep a connection open and publish on it until cancelled (started once a first
        attempt to connect is over, whether it worked or not)."""
        backoff = 0.1
        while True:
            try:
                with trio.fail_after(CONNECT_TIMEOUT):
                    stream = await self._server.connect()
            except _FAILURES as exc:
                _log.warning("bus.publisher_connect_failed", error=repr(exc))
                task_status.started()
                task_status = trio.TASK_STATUS_IGNORED
                if self._unsent_count and (
                    trio.current_time() - self._unsent_since >= self._timeout
                ):
                    self._drop_unsent()
                await trio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)
                continue
            backoff = 0.1
            task_status.started()
            task_status = trio.TASK_STATUS_IGNORED
            try:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._write, stream, nursery.cancel_scope)
                    try:
                        await self._read(stream)
                    except _FAILURES as exc:
                        _log.warning(
                            "bus.publish_failed", error=repr(exc), unanswered=self._unanswered
                        )
                    nursery.cancel_scope.cancel()
                # The connection failed (not the bus closing): what it carried unanswered is
                # given up, never sent again.
                self._drop(self._unanswered)
            finally:
                self._unanswered = 0
                self._check_drained()
                await trio.aclose_forcefully(stream)

    async def _write(self, stream: trio.abc.Stream, connection: trio.CancelScope) -> None:
        """Send what is queued, everything queued meanwhile in one `send_all`."""
        try:
            while True:
                if not self._unsent_count:
                    self._queued = trio.Event()
                    await self._queued.wait()
                data, count = self._unsent, self._unsent_count
                self._unsent, self._unsent_count = bytearray(), 0
                if not self._unanswered:  # the clock for Redis's answer starts now
                    self._answers.deadline = trio.current_time() + self._timeout
                self._unanswered += count
                await stream.send_all(data)
        except (OSError, trio.BrokenResourceError) as exc:
            _log.warning("bus.publish_failed", error=repr(exc), unanswered=self._unanswered)
            connection.cancel()

    async def _read(self, stream: trio.abc.Stream) -> None:
        """Count Redis's replies; raises when the connection ends, or when publications
        stay unanswered for `timeout` seconds without any reply coming."""
        buffer = bytearray()
        while True:
            deadline = trio.current_time() + self._timeout if self._unanswered else math.inf
            with trio.CancelScope(deadline=deadline) as self._answers:
                data = await stream.receive_some(READ_SIZE)
            if self._answers.cancelled_caught:
                raise trio.TooSlowError(f"Redis did not answer within {self._timeout} s")
            if not data:
                raise trio.BrokenResourceError("Redis closed the connection")
            buffer += data
            replies, used = parse_replies(buffer)
            del buffer[:used]
            refused = [reply for reply in replies if isinstance(reply, ReplyError)]
            if refused:
                self._drop(len(refused))
                _log.warning("bus.publish_refused", count=len(refused), error=str(refused[0]))
            self._unanswered -= len(replies)
            self._check_drained()

    def _drop_unsent(self) -> None:
        _log.warning("bus.publish_failed", error="Redis away", unsent=self._unsent_count)
        self._drop(self._unsent_count)
        self._unsent, self._unsent_count = bytearray(), 0
        self._check_drained()

    def _drop(self, count: int) -> None:
        if count:
            self.dropped += count
            BUS_DROPPED.inc(count)

    def _check_drained(self) -> None:
        if not self._unsent_count and not self._unanswered:
            self._drained.set()
