"""`RedisRateLimiter`: rate limits shared by every node, as GCRA in one Lua script.

GCRA (the generic cell rate algorithm) keeps one number per key: the
"theoretical arrival time" (TAT) at which the bucket is full again. An event
is allowed when TAT - burst * interval <= now; it then moves TAT on by one
interval. The script reads the clock with TIME, so node clocks do not
matter, and the key expires when the bucket is full again (nothing to clean).

When Redis is unreachable or slow, the limiter counts in this process
instead (`LocalRateLimiter`): limits then hold per node rather than across
nodes, but requests are never refused because Redis is away.
"""

from __future__ import annotations

from typing import Any, Final

import structlog
import trio

from chorus.ratelimit import LocalRateLimiter

from ._commands import Commands, Script
from ._connection import ReplyError

_log = structlog.get_logger("chorus.cluster")

REDIS_TIMEOUT: Final = 0.2
"""Seconds one check may wait for Redis before the local limiter decides instead."""
RETRY_INTERVAL: Final = 1.0
"""After a failure, seconds during which checks go straight to the local limiter."""

# Both scripts: KEYS[1]: the key. ARGV[1]: the emission interval (1 / rate) in
# microseconds, ARGV[2]: the burst. They start by reading Redis's clock and the
# key's TAT (now if absent or past). Microseconds since the epoch (~1.8e15) are
# exact in Lua's doubles (< 2^53); string.format('%d') writes them without the
# exponent tostring() would use.
_READ_TAT: Final = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then
  tat = now
end
"""

# Counts one event if it fits: returns 1 (allowed) or 0 (over the limit).
GCRA_SCRIPT: Final = (
    _READ_TAT
    + """
local new_tat = tat + interval
if new_tat - burst * interval > now then
  return 0
end
local ttl_ms = math.max(1, math.ceil((new_tat - now) / 1000))
redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PX', ttl_ms)
return 1
"""
)


class RedisRateLimiter:
    """A `RateLimiter` whose buckets live in Redis, shared by every node using it.

    `client` is a coredis client (`Redis` or `RedisCluster`; each key is one
    slot), e.g. `RedisBus.client`. Redis failures and checks slower than
    `timeout` fall back to `fallback` (a `LocalRateLimiter` by default), logged
    once per outage; Redis is tried again every `retry_interval` seconds.
    """

    def __init__(
        self,
        client: Any,
        *,
        timeout: float = REDIS_TIMEOUT,
        retry_interval: float = RETRY_INTERVAL,
        fallback: LocalRateLimiter | None = None,
    ) -> None:
        self._client = client
        self._script = client.register_script(GCRA_SCRIPT)
        self._timeout = timeout
        self._retry_interval = retry_interval
        self.fallback = fallback if fallback is not None else LocalRateLimiter()
        self._retry_at = float("-inf")
        self.degraded = False
        """True while Redis is away and limits are counted in this process."""

    async def allow(self, key: str, *, rate: float, burst: int) -> bool:
        if trio.current_time() < self._retry_at:
            return self.fallback.take(key, rate=rate, burst=burst)
        interval_us = max(1, round(1_000_000 / rate))
        try:
            with trio.fail_after(self._timeout):
                allowed = await self._script(keys=[key], args=[interval_us, burst])
        except Exception as exc:  # Redis away or slow: count locally, never fail the caller
            self._retry_at = trio.current_time() + self._retry_interval
            if not self.degraded:
                self.degraded = True
                _log.warning("ratelimit.redis_unavailable", error=repr(exc), fallback="local")
            return self.fallback.take(key, rate=rate, burst=burst)
        if self.degraded:
            self.degraded = False
            _log.info("ratelimit.redis_recovered")
        return bool(allowed)


# ARGV[3]: how many events a node allowed since it last reported. Records them
# all (they happened) and returns the microseconds until the key allows one more
# event (0: it allows one now).
REPORT_SCRIPT: Final = (
    _READ_TAT
    + """
tat = tat + tonumber(ARGV[3]) * interval
local ttl_ms = math.max(1, math.ceil((tat - now) / 1000))
redis.call('SET', KEYS[1], string.format('%d', tat), 'PX', ttl_ms)
return math.max(0, math.floor(tat + interval - burst * interval - now))
"""
)
REPORT_INTERVAL: Final = 0.1
"""Seconds between two reports of a node's counts to Redis (while there are any)."""


class ReconciledRateLimiter:
    """A `RateLimiter` that decides in this process at once and shares its counts through Redis.

    For limits on a hot path (every message a user sends), where a Redis round
    trip per event would cost more than the event: `allow` answers from a
    local token bucket (no I/O), and `run` reports what was allowed to Redis,
    in one pipeline, as the same GCRA cells as `RedisRateLimiter`: at once
    after a quiet spell, then at most every `interval` seconds. When Redis
    says a key is over its limit across the nodes, this node refuses that key
    until Redis's bucket allows it again.

    `client` runs the commands (`RedisBus.commands`: a `RespClient` on one
    Redis server, `CoredisCommands` on a Redis Cluster or a unix socket).

    Guarantee: one node alone enforces the limit exactly; a key used on `n`
    nodes at once gets at most `(n - 1) * (burst + rate * interval)` events
    more than the shared limit (each node's own bucket, until its next
    report) before every node refuses it. Redis away: the limit holds per
    node (logged once per outage), as with `RedisRateLimiter`.
    """

    def __init__(
        self,
        client: Commands,
        *,
        interval: float = REPORT_INTERVAL,
        timeout: float = REDIS_TIMEOUT,
        local: LocalRateLimiter | None = None,
    ) -> None:
        self._client = client
        self._interval = interval
        self._timeout = timeout
        self._local = local if local is not None else LocalRateLimiter()
        self._counts: dict[tuple[str, float, int], int] = {}
        self._counted = trio.Event()
        self._refused_until: dict[str, float] = {}
        self.degraded = False
        """True while reports fail (limits then hold per node)."""
        self.reports = 0
        """Reports made so far, failed ones included."""

    async def allow(self, key: str, *, rate: float, burst: int) -> bool:
        return self.take(key, rate=rate, burst=burst)

    def take(self, key: str, *, rate: float, burst: int) -> bool:
        """`allow`, without waiting (it never does)."""
        now = trio.current_time()
        until = self._refused_until.get(key)
        if until is not None:
            if now < until:
                return False
            del self._refused_until[key]
        if not self._local.take(key, rate=rate, burst=burst):
            return False
        limit = (key, rate, burst)
        self._counts[limit] = self._counts.get(limit, 0) + 1
        self._counted.set()
        return True

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Report the counts until cancelled: at once after a quiet spell, then at most
        once every `interval` seconds while events keep coming."""
        task_status.started()
        while True:
            await self._counted.wait()
            counts, self._counts = self._counts, {}
            self._counted = trio.Event()
            await self._report(counts)
            self.reports += 1
            await trio.sleep(self._interval)

    async def _report(self, counts: dict[tuple[str, float, int], int]) -> None:
        try:
            with trio.fail_after(self._timeout):
                waited = await self._run_script(counts)
        except Exception as exc:  # Redis away or slow: the local limits hold meanwhile
            if not self.degraded:
                self.degraded = True
                _log.warning("ratelimit.redis_unavailable", error=repr(exc), fallback="local")
            return
        if self.degraded:
            self.degraded = False
            _log.info("ratelimit.redis_recovered")
        now = trio.current_time()
        self._refused_until = {k: t for k, t in self._refused_until.items() if t > now}
        for (key, _, _), wait_us in zip(counts, waited, strict=True):
            if wait_us > 0:
                self._refused_until[key] = now + wait_us / 1_000_000

    async def _run_script(self, counts: dict[tuple[str, float, int], int]) -> list[int]:
        """`REPORT_SCRIPT` for every key, in one round trip: each key's wait in µs; raises
        if Redis is away or refuses one (e.g. `NOAUTH`)."""
        replies = await _REPORT.run_many(
            self._client,
            [
                (
                    [key.encode()],
                    [b"%d" % max(1, round(1_000_000 / rate)), b"%d" % burst, b"%d" % count],
                )
                for (key, rate, burst), count in counts.items()
            ],
        )
        for reply in replies:
            if not isinstance(reply, int):
                raise reply if isinstance(reply, ReplyError) else ReplyError(repr(reply))
        return replies  # type: ignore[return-value]  # all ints, checked above


_REPORT: Final = Script(REPORT_SCRIPT)
