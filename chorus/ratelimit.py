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
