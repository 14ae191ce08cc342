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

_log = structlog.get_logger("chorus.cluster")

REDIS_TIMEOUT: Final = 0.2
"""Seconds one check may wait for Redis before the local limiter decides instead."""
RETRY_INTERVAL: Final = 1.0
"""After a failure, seconds during which checks go straight to the local limiter."""

# KEYS[1]: the key. ARGV[1]: the emission interval (1 / rate) in microseconds,
# ARGV[2]: the burst. Returns 1 (allowed) or 0 (over the limit).
# Microseconds since the epoch (~1.8e15) are exact in Lua's doubles (< 2^53);
# string.format('%d') writes them without the exponent tostring() would use.
GCRA_SCRIPT: Final = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then
  tat = now
end
local new_tat = tat + interval
if new_tat - burst * interval > now then
  return 0
end
local ttl_ms = math.max(1, math.ceil((new_tat - now) / 1000))
redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PX', ttl_ms)
return 1
"""


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
