"""Rate limits shared across nodes: GCRA in Redis (a real redis-server), local fallback."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import coredis
import structlog
import trio

from chorus.cluster import (
    Commands,
    CoredisCommands,
    ReconciledRateLimiter,
    RedisRateLimiter,
    open_redis_bus,
)
from chorus.cluster._redis import cluster_nodes
from chorus.ratelimit import LocalRateLimiter, RateLimiter
from tests.redisserver import RedisServer, running_redis

FOREVER = 1e-6
"""A rate so low that nothing refills during a test: only the burst counts."""


async def _client(url: str) -> Any:
    return coredis.Redis.from_url(url, decode_responses=False)


async def _until(check: Callable[[], Awaitable[bool]], *, poll: float = 0.005) -> None:
    """Wait until `check()` is true, polling, for at most 5 seconds."""
    with trio.fail_after(5):
        while True:
            if await check():
                return
            await trio.sleep(poll)  # poll, bounded by the deadline


async def _allowed(limiter: RateLimiter, key: str, times: int, *, rate: float, burst: int) -> int:
    return sum([await limiter.allow(key, rate=rate, burst=burst) for _ in range(times)])


async def test_two_nodes_share_one_budget(redis: RedisServer) -> None:
    async with open_redis_bus(redis.url) as bus_a, open_redis_bus(redis.url) as bus_b:
        a, b = RedisRateLimiter(bus_a.client), RedisRateLimiter(bus_b.client)
        assert await _allowed(a, "limit:send:u1", 3, rate=FOREVER, burst=5) == 3
        assert await _allowed(b, "limit:send:u1", 3, rate=FOREVER, burst=5) == 2
        assert not await a.allow("limit:send:u1", rate=FOREVER, burst=5)
        # Keys are independent.
        assert await _allowed(b, "limit:send:u2", 5, rate=FOREVER, burst=5) == 5
        assert not a.degraded
        assert not b.degraded


async def test_a_burst_then_refill_at_the_rate(redis: RedisServer) -> None:
    async with open_redis_bus(redis.url) as bus:
        limiter = RedisRateLimiter(bus.client)
        # At 2/s a token takes 500 ms: far longer than a call, even on a loaded
        # machine, so what refills between two calls cannot blur the counts.
        started = trio.current_time()
        assert await _allowed(limiter, "k", 4, rate=2, burst=3) == 3
        await _until(lambda: limiter.allow("k", rate=2, burst=3), poll=0.01)
        assert trio.current_time() - started >= 0.45  # not before its time (Redis's clock)
        # Refilled one token only, not the whole burst.
        assert not await limiter.allow("k", rate=2, burst=3)


async def test_keys_expire_when_the_bucket_is_full_again(redis: RedisServer) -> None:
    async with open_redis_bus(redis.url) as bus:
        limiter = RedisRateLimiter(bus.client)
        assert await _allowed(limiter, "limit:auth:1.2.3.4", 2, rate=10, burst=5) == 2
        ttl = await bus.client.pttl("limit:auth:1.2.3.4")
        assert 0 < ttl <= 200  # two events at 10/s: full again within 200 ms
        assert await _allowed(limiter, "slow", 1, rate=FOREVER, burst=1) == 1
        assert await bus.client.pttl("slow") > 60_000  # kept while it still limits

        async def expired() -> bool:
            return not await bus.client.exists(["limit:auth:1.2.3.4"])

        await _until(expired)


async def test_redis_down_falls_back_to_local_limits_and_logs_once(redis: RedisServer) -> None:
    async with await _client(redis.url) as client:
        limiter = RedisRateLimiter(client, retry_interval=0)  # try Redis on every call
        assert await limiter.allow("k", rate=FOREVER, burst=2)  # counted in Redis
        await redis.stop()
        with structlog.testing.capture_logs() as logs:
            assert await _allowed(limiter, "k", 5, rate=FOREVER, burst=3) == 3  # local budget
            assert limiter.degraded
        assert [log["event"] for log in logs] == ["ratelimit.redis_unavailable"]
        await redis.start()

        async def recovered() -> bool:
            await limiter.allow("other", rate=FOREVER, burst=100)
            return not limiter.degraded

        with structlog.testing.capture_logs() as logs:
            await _until(recovered, poll=0.01)  # coredis reconnects by itself
        assert [log["event"] for log in logs].count("ratelimit.redis_unavailable") == 0
        assert "ratelimit.redis_recovered" in [log["event"] for log in logs]
        # Redis again: the restarted (empty) server has the whole burst for "k".
        assert await _allowed(limiter, "k", 3, rate=FOREVER, burst=2) == 2


async def test_a_slow_redis_falls_back_within_the_timeout(redis: RedisServer) -> None:
    async with await _client(redis.url) as client, await _client(redis.url) as admin:
        limiter = RedisRateLimiter(client, timeout=0.2, retry_interval=0)
        assert await limiter.allow("k", rate=FOREVER, burst=1)
        await admin.client_pause(1000)  # every client's commands wait a second
        started = trio.current_time()
        assert await limiter.allow("k", rate=FOREVER, burst=1)  # local: a fresh budget
        assert trio.current_time() - started < 0.5
        assert limiter.degraded


async def test_after_a_failure_redis_is_skipped_for_the_retry_interval(
    redis: RedisServer,
) -> None:
    async with await _client(redis.url) as client:
        limiter = RedisRateLimiter(client, retry_interval=3600)
        await redis.stop()
        assert await limiter.allow("k", rate=FOREVER, burst=1)
        await redis.start()
        # Still counted locally: Redis is not retried before the interval ends.
        assert not await limiter.allow("k", rate=FOREVER, burst=1)
        assert limiter.degraded


async def test_the_local_limiter_keeps_one_bucket_per_key_and_limit() -> None:
    now = [0.0]
    limiter = LocalRateLimiter(clock=lambda: now[0])
    assert await _allowed(limiter, "a", 3, rate=1, burst=2) == 2
    assert await _allowed(limiter, "b", 3, rate=1, burst=2) == 2
    assert await _allowed(limiter, "a", 3, rate=1, burst=3) == 3  # another limit, its own
    now[0] = 1.0
    assert await _allowed(limiter, "a", 3, rate=1, burst=2) == 1


async def test_limits_work_on_a_redis_cluster(tmp_path: Path) -> None:
    async with (
        running_redis(tmp_path, cluster=True) as server,
        open_redis_bus(server.cluster_url) as bus_a,
        open_redis_bus(server.cluster_url) as bus_b,
    ):
        a, b = RedisRateLimiter(bus_a.client), RedisRateLimiter(bus_b.client)
        assert await _allowed(a, "limit:send:u1", 2, rate=FOREVER, burst=3) == 2
        assert await _allowed(b, "limit:send:u1", 2, rate=FOREVER, burst=3) == 1
        assert not a.degraded
        assert not b.degraded


# -- ReconciledRateLimiter: local decisions, counts shared through Redis ------------------


@asynccontextmanager
async def _reconciled(url: str, **options: Any) -> AsyncIterator[ReconciledRateLimiter]:
    """A `ReconciledRateLimiter` on its own Redis client, reporting until the block ends.

    A cluster URL gets a bus's commands (`CoredisCommands`); a server URL a plain
    coredis client's (a bus without subscriptions does not close after Redis
    restarted: coredis). `RespClient`'s: tests/cluster/test_resp_client.py.
    """
    async with AsyncExitStack() as stack:
        commands: Commands
        if cluster_nodes(url) is None:
            commands = CoredisCommands(await stack.enter_async_context(await _client(url)))
        else:
            commands = (await stack.enter_async_context(open_redis_bus(url))).commands
        nursery = await stack.enter_async_context(trio.open_nursery())
        limiter = ReconciledRateLimiter(commands, **options)
        await nursery.start(limiter.run)
        yield limiter
        nursery.cancel_scope.cancel()


async def _reported(limiter: ReconciledRateLimiter, reports: int) -> None:
    async def done() -> bool:
        return limiter.reports >= reports

    await _until(done)


async def test_reconciled_limits_decide_locally_and_share_through_redis(
    redis: RedisServer,
) -> None:
    async with _reconciled(redis.url) as a, _reconciled(redis.url) as b:
        assert await _allowed(a, "limit:send:u1", 4, rate=FOREVER, burst=3) == 3  # exact alone
        await _reported(a, 1)
        assert await redis_tat_set(redis, "limit:send:u1")
        # b has its own full bucket, so its first event passes; once b has reported,
        # Redis's shared bucket (3 events already) makes b refuse although its own
        # bucket still has 2 tokens.
        assert await b.allow("limit:send:u1", rate=FOREVER, burst=3)
        await _reported(b, 1)
        assert not await b.allow("limit:send:u1", rate=FOREVER, burst=3)
        # Another key is untouched.
        assert await _allowed(b, "limit:send:u2", 3, rate=FOREVER, burst=3) == 3
        assert not a.degraded
        assert not b.degraded


async def test_a_refusal_learnt_from_redis_ends_when_the_shared_bucket_refills(
    redis: RedisServer,
) -> None:
    async with _reconciled(redis.url) as a, _reconciled(redis.url) as b:
        # At 2/s one token takes 500 ms (see test_a_burst_then_refill_at_the_rate).
        assert await _allowed(a, "k", 2, rate=2, burst=2) == 2
        await _reported(a, 1)
        assert await b.allow("k", rate=2, burst=2)
        await _reported(b, 1)
        started = trio.current_time()
        assert not await b.allow("k", rate=2, burst=2)
        await _until(lambda: b.allow("k", rate=2, burst=2), poll=0.01)
        assert trio.current_time() - started >= 0.2  # refused until Redis's bucket refilled


async def test_reconciled_limits_hold_per_node_while_redis_is_down(redis: RedisServer) -> None:
    async with _reconciled(redis.url, interval=0.01) as limiter:
        await redis.stop()
        with structlog.testing.capture_logs() as logs:
            assert await _allowed(limiter, "k", 5, rate=FOREVER, burst=3) == 3  # never waits
            await _until(_is(lambda: limiter.degraded))
            assert await _allowed(limiter, "j", 3, rate=FOREVER, burst=3) == 3
            await _reported(limiter, limiter.reports + 1)
        assert [log["event"] for log in logs] == ["ratelimit.redis_unavailable"]
        await redis.start()
        with structlog.testing.capture_logs() as logs:

            async def recovered() -> bool:
                await limiter.allow("other", rate=FOREVER, burst=10**6)
                return not limiter.degraded

            await _until(recovered, poll=0.01)
        assert [log["event"] for log in logs] == ["ratelimit.redis_recovered"]


async def test_reconciled_limits_work_on_a_redis_cluster(tmp_path: Path) -> None:
    async with (
        running_redis(tmp_path, cluster=True) as server,
        _reconciled(server.cluster_url) as a,
        _reconciled(server.cluster_url) as b,
    ):
        for user in ("u1", "u2", "u3"):  # keys in different slots, one pipeline
            assert await _allowed(a, f"limit:send:{user}", 2, rate=FOREVER, burst=2) == 2
        await _reported(a, 1)
        assert await b.allow("limit:send:u2", rate=FOREVER, burst=2)
        await _reported(b, 1)
        assert not await b.allow("limit:send:u2", rate=FOREVER, burst=2)
        assert not a.degraded


def _is(check: Callable[[], bool]) -> Callable[[], Awaitable[bool]]:
    async def checked() -> bool:
        return check()

    return checked


async def redis_tat_set(redis: RedisServer, key: str) -> bool:
    async with await _client(redis.url) as client:
        return bool(await client.exists([key]))
