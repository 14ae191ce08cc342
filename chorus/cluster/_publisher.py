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

import structlog
import trio

from chorus.metrics import BUS_DROPPED

from ._connection import PipelinedConnection, ReplyError

_log = structlog.get_logger("chorus.cluster")

PUBLISH_TIMEOUT = 1.0
"""Seconds Redis may leave publications unanswered, or stay away while some wait to be
sent, before they are given up (the store already has the data)."""
PUBLISH_QUEUE = 10_000
"""Publications waiting for Redis (unsent or unanswered); past it new ones are dropped."""


class RespPublisher(PipelinedConnection):
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
        super().__init__(url, timeout=timeout)
        self._limit = limit
        self._unsent_count = 0
        """How many publications `_unsent` holds."""
        self._unsent_since = 0.0
        """When the oldest unsent publication was queued (trio's clock)."""
        self._unanswered = 0
        """Publications sent on the current connection that Redis has not answered yet."""
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

    def _awaiting(self) -> bool:
        return self._unanswered > 0

    def _sent(self) -> None:
        self._unanswered += self._unsent_count
        self._unsent_count = 0

    def _replied(self, replies: list[object]) -> None:
        """Count the replies (only the connection's health and the queue's length need them)."""
        refused = [reply for reply in replies if isinstance(reply, ReplyError)]
        if refused:
            self._drop(len(refused))
            _log.warning("bus.publish_refused", count=len(refused), error=str(refused[0]))
        self._unanswered -= len(replies)
        self._check_drained()

    def _connect_failed(self, error: BaseException) -> None:
        _log.warning("bus.publisher_connect_failed", error=repr(error))
        if self._unsent_count and trio.current_time() - self._unsent_since >= self._timeout:
            _log.warning("bus.publish_failed", error="Redis away", unsent=self._unsent_count)
            self._drop(self._unsent_count)
            self._unsent, self._unsent_count = bytearray(), 0
            self._check_drained()

    def _lost(self, error: BaseException) -> None:
        _log.warning("bus.publish_failed", error=repr(error), unanswered=self._unanswered)

    def _closed(self, *, failed: bool) -> None:
        """What the connection carried unanswered is given up, never sent again (counted
        as dropped unless the bus is closing); what is unsent waits for the next."""
        if failed:
            self._drop(self._unanswered)
        self._unanswered = 0
        self._check_drained()

    def _drop(self, count: int) -> None:
        if count:
            self.dropped += count
            BUS_DROPPED.inc(count)

    def _check_drained(self) -> None:
        if not self._unsent_count and not self._unanswered:
            self._drained.set()
