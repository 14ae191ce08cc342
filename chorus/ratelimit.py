"""Rate limits: token buckets, and the `RateLimiter` protocol callers use (local or Redis)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import trio


class TokenBucket:
    """Allows `burst` events at once and `rate` per second after that.

    Time comes from the caller (trio's clock), so tests can drive it.
    """

    __slots__ = ("_stamp", "_tokens", "burst", "rate")

    def __init__(self, rate: float, burst: float, now: float) -> None:
        self.rate = rate
        self.burst = burst
        self._tokens = burst
        self._stamp = now

    def take(self, now: float) -> bool:
        """Spend one token if there is one; False means "over the limit"."""
        self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True


class KeyedLimiter:
    """One `TokenBucket` per key (an IP address), for at most `max_keys` keys.

    When full, the least recently seen key is forgotten: an attacker cycling
    through addresses can only make the limiter forget, never grow memory.
    """

    def __init__(self, rate: float, burst: float, *, max_keys: int = 100_000) -> None:
        self.rate = rate
        self.burst = burst
        self._max_keys = max_keys
        self._buckets: dict[str, TokenBucket] = {}

    def take(self, key: str, now: float) -> bool:
        """Spend one token of `key`'s bucket; False means "over the limit"."""
        bucket = self._buckets.pop(key, None)
        if bucket is None:
            bucket = TokenBucket(self.rate, self.burst, now)
            if len(self._buckets) >= self._max_keys:
                del self._buckets[next(iter(self._buckets))]
        self._buckets[key] = bucket  # re-inserted: most recently seen last
        return bucket.take(now)


class RateLimiter(Protocol):
    """Decides whether one more event of `key` fits in `rate` per second with bursts of `burst`.

    `LocalRateLimiter` keeps the buckets in this process (one node);
    `chorus.cluster.RedisRateLimiter` keeps them in Redis, shared by every node.
    """

    async def allow(self, key: str, *, rate: float, burst: int) -> bool:
        """Count one event of `key`; True if it is within the limit, False if over it."""
        ...


class ImmediateRateLimiter(RateLimiter, Protocol):
    """A `RateLimiter` that decides without I/O: `take` is `allow` without the await (for a
    hot path, where an awaited call costs a coroutine per event)."""

    def take(self, key: str, *, rate: float, burst: int) -> bool:
        """Count one event of `key`; True if it is within the limit, False if over it."""
        ...


class LocalRateLimiter:
    """A `RateLimiter` in this process: a `KeyedLimiter` per distinct (rate, burst).

    Time is trio's clock unless `clock` is given.
    """

    def __init__(
        self, *, max_keys: int = 100_000, clock: Callable[[], float] = trio.current_time
    ) -> None:
        self._max_keys = max_keys
        self._clock = clock
        self._limiters: dict[tuple[float, int], KeyedLimiter] = {}

    def take(self, key: str, *, rate: float, burst: int) -> bool:
        """`allow`, without waiting (for callers that cannot await)."""
        limiter = self._limiters.get((rate, burst))
        if limiter is None:
            limiter = KeyedLimiter(rate, burst, max_keys=self._max_keys)
            self._limiters[rate, burst] = limiter
        return limiter.take(key, self._clock())

    async def allow(self, key: str, *, rate: float, burst: int) -> bool:
        return self.take(key, rate=rate, burst=burst)
