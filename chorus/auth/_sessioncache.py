"""Caches of the session check every authenticated request and `hello` make.

Only live sessions are cached, as `(user_id, expires_at)`: an entry answers
"live until `expires_at`" for at most the cache's TTL. A revocation
invalidates it before `AuthService` returns, so a revoked session is never
accepted from the cache; a refresh only pushes `expires_at` forward, so an
older entry errs on the side of asking the store again.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Callable
from typing import Final, Protocol

import attrs
import structlog
import trio

from chorus.cluster import Commands, ReplyError

_log = structlog.get_logger("chorus.auth")

REDIS_TIMEOUT: Final = 0.25
"""Seconds one Redis command may take before the cache gives up and the store answers."""
_KEY: Final = "chorus:session:{}"
_REVOKED: Final = b"-"


@attrs.frozen
class CachedSession:
    """What a session check needs of a live session."""

    user_id: str
    expires_at: int


class SessionCache(Protocol):
    """Where `AuthService.authenticate` looks before the store.

    `generation()` is taken before reading the store and handed to `put`:
    an entry read before an invalidation is never stored after it.
    """

    def generation(self) -> int: ...

    async def get(self, session_id: str) -> CachedSession | None: ...

    async def put(self, session_id: str, entry: CachedSession, generation: int) -> None: ...

    async def invalidate(self, session_id: str) -> None: ...


class LocalSessionCache:
    """In-process cache: at most `max_entries` (least recently used out first), `ttl` seconds.

    Exact for one node: every revocation goes through this process's
    `invalidate`. Nodes sharing a store use `RedisSessionCache` instead,
    since another node's revocation cannot reach this memory synchronously.
    """

    def __init__(
        self, *, max_entries: int, ttl: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._entries: collections.OrderedDict[str, tuple[CachedSession, float]] = (
            collections.OrderedDict()
        )
        self._max_entries = max_entries
        self._ttl = ttl
        self._clock = clock
        self._generation = 0

    def __len__(self) -> int:
        return len(self._entries)

    def generation(self) -> int:
        return self._generation

    async def get(self, session_id: str) -> CachedSession | None:
        found = self._entries.get(session_id)
        if found is None:
            return None
        entry, stored_at = found
        if self._clock() - stored_at >= self._ttl:
            del self._entries[session_id]
            return None
        self._entries.move_to_end(session_id)
        return entry

    async def put(self, session_id: str, entry: CachedSession, generation: int) -> None:
        if generation != self._generation:
            return  # an invalidation happened while the store was read: the entry may be stale
        self._entries[session_id] = (entry, self._clock())
        self._entries.move_to_end(session_id)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)

    async def invalidate(self, session_id: str) -> None:
        self._generation += 1
        self._entries.pop(session_id, None)


class RedisSessionCache:
    """The cache shared by every node in the Redis they share, entries living `ttl` seconds.

    A revocation overwrites the entry with a tombstone that lives twice as
    long, and entries are only ever added where no key exists (`SET NX`), so
    a node that read the store before the revocation cannot cache it after.
    Any Redis failure makes the lookup a miss (the store answers: fail
    closed), and writes are given up. `client` runs the commands
    (`RedisBus.commands`).
    """

    def __init__(self, client: Commands, *, ttl: float) -> None:
        self._client = client
        self._ttl_ms = max(1, int(ttl * 1000))

    def generation(self) -> int:
        return 0  # SET NX and tombstones order fills after revocations instead

    async def get(self, session_id: str) -> CachedSession | None:
        try:
            with trio.fail_after(REDIS_TIMEOUT):
                value = await self._get(_KEY.format(session_id))
        except Exception as exc:
            _log.warning("auth.session_cache_unavailable", error=str(exc))
            return None
        if not value or value == _REVOKED:
            return None
        user_id, _, expires_at = bytes(value).decode().rpartition(" ")
        return CachedSession(user_id, int(expires_at))

    async def put(self, session_id: str, entry: CachedSession, generation: int) -> None:
        value = f"{entry.user_id} {entry.expires_at}"
        try:
            with trio.fail_after(REDIS_TIMEOUT):
                await self._set(
                    _KEY.format(session_id), value.encode(), self._ttl_ms, only_new=True
                )
        except Exception as exc:
            _log.warning("auth.session_cache_unavailable", error=str(exc))

    async def invalidate(self, session_id: str) -> None:
        try:
            with trio.fail_after(REDIS_TIMEOUT):
                await self._set(_KEY.format(session_id), _REVOKED, 2 * self._ttl_ms)
        except Exception as exc:
            # The store has the revocation; an entry cached before it lives at most `ttl`.
            _log.warning("auth.session_cache_not_invalidated", error=str(exc))

    async def _get(self, key: str) -> bytes | None:
        [value] = await self._client.execute([[b"GET", key.encode()]])
        if isinstance(value, ReplyError):
            raise value
        return value if isinstance(value, bytes) else None

    async def _set(self, key: str, value: bytes, ttl_ms: int, *, only_new: bool = False) -> None:
        """`SET key value PX ttl_ms` (`NX` with `only_new`); raises if Redis refuses."""
        command = [b"SET", key.encode(), value, b"PX", b"%d" % ttl_ms]
        [reply] = await self._client.execute([[*command, b"NX"] if only_new else command])
        if isinstance(reply, ReplyError):
            raise reply
