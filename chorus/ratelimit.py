"""A token bucket: `rate` events per second on average, bursts of up to `burst`."""

from __future__ import annotations


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
