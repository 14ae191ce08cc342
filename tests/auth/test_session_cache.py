"""Session caches: bounded and short-lived in-process, shared in Redis, never a revoked session."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import structlog
import trio

from chorus.auth import (
    AuthService,
    CachedSession,
    InvalidToken,
    LocalSessionCache,
    RedisSessionCache,
    SessionCache,
    Tokens,
    TokenSigner,
)
from chorus.cluster import Commands, RespClient
from chorus.persistence import Store, open_sqlite_store
from tests.auth.test_auth import CHEAP, KEY, Clock
from tests.redisserver import COMMANDS_KINDS, RedisServer, running_commands, running_redis

PASSWORD = "long enough password"


class Monotonic:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=COMMANDS_KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    """Which `Commands` a node's `RedisSessionCache` talks through (the same commands)."""
    return str(request.param)


@pytest.fixture
async def redis_client(kind: str, redis: RedisServer) -> AsyncIterator[Commands]:
    async with running_commands(redis, kind) as commands:
        yield commands


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    async with open_sqlite_store(tmp_path / "chorus.db") as opened:
        yield opened


@pytest.fixture
async def redis(tmp_path: Path, kind: str) -> AsyncIterator[RedisServer]:
    async with running_redis(tmp_path / "redis", cluster=kind == "coredis-cluster") as server:
        yield server


def service(store: Store, cache: SessionCache) -> AuthService:
    return AuthService(
        store,
        TokenSigner(KEY, access_ttl=900),
        CHEAP,
        refresh_ttl=3600,
        clock=Clock(),
        session_cache=cache,
    )


async def test_the_local_cache_is_bounded_least_recently_used_first() -> None:
    cache = LocalSessionCache(max_entries=3, ttl=60)
    for n in range(3):
        await cache.put(f"s{n}", CachedSession(f"u{n}", 10), cache.generation())
    assert await cache.get("s0") is not None  # s0 used: s1 is now the oldest
    for n in range(3, 100):
        await cache.put(f"s{n}", CachedSession(f"u{n}", 10), cache.generation())
        assert len(cache) <= 3
    assert await cache.get("s1") is None
    assert [await cache.get(f"s{n}") for n in (97, 98, 99)] == [
        CachedSession("u97", 10),
        CachedSession("u98", 10),
        CachedSession("u99", 10),
    ]


async def test_local_entries_expire_and_a_stale_read_is_not_cached_after_an_invalidation() -> None:
    clock = Monotonic()
    cache = LocalSessionCache(max_entries=10, ttl=5, clock=clock)
    await cache.put("s1", CachedSession("u1", 10), cache.generation())
    clock.now += 4.9
    assert await cache.get("s1") == CachedSession("u1", 10)
    clock.now += 0.1
    assert await cache.get("s1") is None
    # A lookup read the store, then the session was revoked, then the lookup fills.
    generation = cache.generation()
    await cache.invalidate("s1")
    await cache.put("s1", CachedSession("u1", 10), generation)
    assert await cache.get("s1") is None


async def test_the_cache_answers_and_a_revocation_through_the_service_ends_it_at_once(
    store: Store,
) -> None:
    clock = Monotonic()
    auth = service(store, LocalSessionCache(max_entries=10, ttl=5, clock=clock))
    ada = await auth.register("ada", PASSWORD, None)
    other = await auth.login("ada", PASSWORD)
    assert isinstance(other, Tokens)
    await auth.authenticate(ada.access_token)
    # Ended behind the service's back (as a bypassing writer would): the cache still answers
    # for the rest of its TTL, which shows it is consulted before the store...
    await store.revoke_session(ada.session_id, Clock().now)
    assert (await auth.authenticate(ada.access_token)).session_id == ada.session_id
    clock.now += 5
    with pytest.raises(InvalidToken):
        await auth.authenticate(ada.access_token)
    # ...while a revocation through the service is refused at once.
    await auth.authenticate(other.access_token)
    await auth.logout(other.session_id)
    with pytest.raises(InvalidToken):
        await auth.authenticate(other.access_token)


async def test_redis_entries_are_shared_and_a_tombstone_keeps_out_stale_fills(
    redis_client: Commands,
) -> None:
    here = RedisSessionCache(redis_client, ttl=60)
    there = RedisSessionCache(redis_client, ttl=60)
    await here.put("s1", CachedSession("u1", 10), here.generation())
    assert await there.get("s1") == CachedSession("u1", 10)
    generation = there.generation()  # "there" reads the store before the revocation...
    await here.invalidate("s1")
    await there.put("s1", CachedSession("u1", 10), generation)  # ...and fills after it
    assert await there.get("s1") is None
    assert await here.get("s1") is None


async def test_with_redis_down_the_store_answers_and_a_revoked_session_is_refused(
    store: Store, redis: RedisServer, redis_client: Commands
) -> None:
    auth = service(store, RedisSessionCache(redis_client, ttl=600))
    ada = await auth.register("ada", PASSWORD, None)
    second = await auth.login("ada", PASSWORD)
    assert isinstance(second, Tokens)
    tokens = [ada.access_token, second.access_token]
    for token in tokens:
        await auth.authenticate(token)  # both cached in Redis
    await redis.stop()
    await auth.logout(ada.session_id)  # the tombstone cannot be written
    with pytest.raises(InvalidToken):
        await auth.authenticate(tokens[0])
    assert (await auth.authenticate(tokens[1])).user_id == ada.user.id


async def test_a_cache_redis_refuses_for_want_of_a_password_is_a_miss(tmp_path: Path) -> None:
    async with running_redis(tmp_path / "redis", password="s3cret") as redis:
        client = RespClient(redis.url)  # no password in the URL: every command gets NOAUTH
        async with trio.open_nursery() as nursery:
            await nursery.start(client.run)
            cache = RedisSessionCache(client, ttl=60)
            with structlog.testing.capture_logs() as logs:
                await cache.put("s1", CachedSession("u1", 10), cache.generation())
                assert await cache.get("s1") is None
            nursery.cancel_scope.cancel()
    assert [log["event"] for log in logs] == ["auth.session_cache_unavailable"] * 2
    assert all("NOAUTH" in log["error"] for log in logs)
