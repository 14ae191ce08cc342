"""Microseconds per call of what a clustered node does per message: one PostgreSQL
query through the asyncio bridge, one Redis publish, one Redis rate-limit check.

Usage: .venv/bin/python bench/cluster_calls.py --database-url postgresql://...
                                               --redis-url redis://... [--calls N] [--busy N]
                                               [--json]

Each figure is the wall time of N calls made one after another from one task
(so it is the round trip, client CPU included). With `--busy N`, N other trio
tasks stay runnable meanwhile (each loops on `trio.sleep(0)`), as on a busy
node: a call that needs many passes of trio's scheduler pays for each pass.

- `pg_asyncio`: `SELECT 1` on a pooled asyncpg connection from plain asyncio
  (no bridge), the floor;
- `pg_bridge`: the same, called from trio through `AsyncioBridge.run`, as
  every `PostgresStore` call is;
- `pg_store_last_seq`: `PostgresStore.last_seq` (the resync query);
- `redis_publish`: one `RedisBus`-style `PUBLISH` awaited per call;
- `redis_publish_pipelined`: the same publishes, 100 to a pipeline;
- `resp_publish`: one publication through the bus's own `RespPublisher` (as on
  one Redis server), waited for until Redis answered it;
- `resp_publish_pipelined`: 100 publications queued at once to `RespPublisher`
  (one write), then waited for until Redis answered them all;
- `redis_rate_limit`: `RedisRateLimiter.allow` (one `EVALSHA`, on every send).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import Awaitable, Callable

import asyncpg
import coredis
import trio

from chorus.cluster import RedisRateLimiter
from chorus.cluster._publisher import RespPublisher
from chorus.persistence import RoomKind, new_id, open_postgres_store
from chorus.persistence.postgres.bridge import open_asyncio_bridge


async def timed(calls: int, call: Callable[[], Awaitable[object]]) -> float:
    """µs per call of `calls` awaited one after another (after 50 to warm up)."""
    for _ in range(50):
        await call()
    start = time.perf_counter()
    for _ in range(calls):
        await call()
    return round((time.perf_counter() - start) / calls * 1e6, 1)


async def postgres(url: str, calls: int) -> dict[str, float]:
    async def plain() -> float:
        pool = await asyncpg.create_pool(url, min_size=1, max_size=1)
        try:

            async def one() -> object:
                async with pool.acquire() as conn:
                    return await conn.fetchval("SELECT 1")

            return await timed(calls, one)
        finally:
            await pool.close()

    # One call of `plain` measures the floor on a plain asyncio loop (in a thread, as
    # asyncio.run would refuse to nest in trio's thread).
    floor = await trio.to_thread.run_sync(lambda: asyncio.run(plain()))
    async with open_asyncio_bridge() as bridge:
        pool = await bridge.run(asyncpg.create_pool, url, min_size=1, max_size=1)
        try:

            async def select_one() -> object:
                async with pool.acquire() as conn:
                    return await conn.fetchval("SELECT 1")

            bridged = await timed(calls, lambda: bridge.run(select_one))
        finally:
            await bridge.run(pool.close)
    async with open_postgres_store(url) as store:
        owner = await store.create_user(new_id("u").lower(), "Bench", None, now=0)
        room = await store.create_room("bench", RoomKind.PUBLIC, owner.id, now=0)
        resync = await timed(calls, lambda: store.last_seq(room.id))
    return {"pg_asyncio": floor, "pg_bridge": bridged, "pg_store_last_seq": resync}


async def redis(url: str, calls: int) -> dict[str, float]:
    client = coredis.Redis.from_url(url, decode_responses=False)
    async with client:
        payload = b"M" + b"1 " + b"x" * 200
        publish = await timed(calls, lambda: client.publish("bench", payload))

        async def hundred() -> None:
            async with client.pipeline(transaction=False) as pipe:
                for _ in range(100):
                    pipe.publish("bench", payload)

        pipelined = round(await timed(max(1, calls // 100), hundred) / 100, 1)
        limiter = RedisRateLimiter(client, timeout=5.0)
        check = await timed(calls, lambda: limiter.allow("bench", rate=1e6, burst=10**6))
    publisher = RespPublisher(url)
    async with trio.open_nursery() as nursery:
        await nursery.start(publisher.run)

        async def one() -> None:
            publisher.publish("bench", payload)
            await publisher.drained()

        async def queued_hundred() -> None:
            for _ in range(100):
                publisher.publish("bench", payload)
            await publisher.drained()

        resp = await timed(calls, one)
        resp_pipelined = round(await timed(max(1, calls // 100), queued_hundred) / 100, 1)
        nursery.cancel_scope.cancel()
    return {
        "redis_publish": publish,
        "redis_publish_pipelined": pipelined,
        "resp_publish": resp,
        "resp_publish_pipelined": resp_pipelined,
        "redis_rate_limit": check,
    }


async def spin() -> None:
    """A task that is always runnable (until cancelled)."""
    while True:
        await trio.lowlevel.checkpoint()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--busy", type=int, default=0, help="runnable trio tasks meanwhile")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    async def both() -> dict[str, float]:
        return await postgres(args.database_url, args.calls) | await redis(
            args.redis_url, args.calls
        )

    async def measured() -> dict[str, float]:
        async with trio.open_nursery() as nursery:
            for _ in range(args.busy):
                nursery.start_soon(spin)
            figures = await both()
            nursery.cancel_scope.cancel()
        return figures

    figures = trio.run(measured)
    if args.json:
        print(json.dumps(figures))
    else:
        for name, value in figures.items():
            print(f"{name:<26} {value:>8.1f} µs/call")


if __name__ == "__main__":
    main()
