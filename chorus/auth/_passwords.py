"""argon2id password hashing, off the trio thread and bounded in concurrency."""

from __future__ import annotations

import argon2
import trio


class Passwords:
    """Hashes and verifies passwords with argon2id.

    The defaults are RFC 9106's second recommended profile (3 passes, 64 MiB).
    At most `concurrency` hashes run at once, so a burst of logins cannot
    exhaust memory; each runs in a worker thread so the event loop never stalls.
    """

    def __init__(
        self, *, time_cost: int = 3, memory_cost_kib: int = 65536, concurrency: int = 2
    ) -> None:
        self._hasher = argon2.PasswordHasher(
            time_cost=time_cost,
            memory_cost=memory_cost_kib,
            parallelism=1,
            type=argon2.Type.ID,
        )
        self._limiter = trio.CapacityLimiter(concurrency)

    async def hash(self, password: str) -> str:
        """The encoded argon2id hash (salt and parameters included)."""
        return await trio.to_thread.run_sync(self._hasher.hash, password, limiter=self._limiter)

    async def verify(self, encoded: str, password: str) -> bool:
        """True if `password` matches `encoded`; never raises for a mismatch or bad hash."""
        return await trio.to_thread.run_sync(self._check, encoded, password, limiter=self._limiter)

    def _check(self, encoded: str, password: str) -> bool:
        try:
            return self._hasher.verify(encoded, password)
        except (argon2.exceptions.VerificationError, argon2.exceptions.InvalidHashError):
            return False
