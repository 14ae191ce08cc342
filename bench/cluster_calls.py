"""Microseconds per call of what a clustered node does per message: one PostgreSQL
query through the asyncio bridge, one Redis publish, one Redis rate-limit check.

Usage: .venv/bin/python bench/cluster_calls.py --database-url postgresql://...
                                               [--redis-url redis://...] [--calls N]
                                               [--busy N] [--concurrency K] [--json]

Each figure is the wall time of N calls made one after another from one task
(so it is the round trip, client CPU included), except the `_concurrent`
ones: K tasks make N calls between them at once, each one after another, on
a pool of K connections, and the figure is the wall time over N (the cost of
a call when calls overlap, as on a node whose rooms store at once: where the
bridge hands calls over in groups). With `--busy N`, N other trio tasks stay
runnable meanwhile (each loops on `trio.sleep(0)`), as on a busy node: a
call that needs many passes of trio's scheduler pays for each pass.

- `pg_asyncio`: `SELECT 1` on a pooled asyncpg connection from plain asyncio
  (no bridge), the floor;
- `pg_bridge`: the same, called from trio through `AsyncioBridge.run`, as
  every `PostgresStore` call is;
- `pg_asyncio_concurrent`, `pg_bridge_concurrent`: the same two, K at once;
- `pg_store_last_seq`: `PostgresStore.last_seq` (the resync query);
- `redis_publish`: one `RedisBus`-style `PUBLISH` awaited per call;
- `redis_publish_pipelined`: the same publishes, 100 to a pipeline;
- `resp_publish`: one publication through the bus's own `RespPublisher` (as on
  one Redis server), waited for until Redis answered it;
- `resp_publish_pipelined`: 100 publications queued at once to `RespPublisher`
  (one write), then waited for until Redis answered them all;
- `redis_rate_limit`: `RedisRateLimiter.allow` (one `EVALSHA`, on every send).

Each PostgreSQL figure comes twice: wall time, and with `_cpu` the CPU time
of this process per call (both its threads; the PostgreSQL server's is not
counted), which a busy machine disturbs less. The Redis figures (wall time)
are measured only with `--redis-url`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any, NamedTuple

import asyncpg
import coredis
import trio

from chorus.cluster import RedisRateLimiter
from chorus.cluster._publisher import RespPublisher
from chorus.persistence import RoomKind, new_id, open_postgres_store
from chorus.persistence.postgres.bridge import open_asyncio_bridge


class Figure(NamedTuple):
    """µs per call: wall time, and CPU time of this process (all its threads: trio's,
    the bridge's asyncio loop), which depends less on what else the machine runs."""

    wall: float
    cpu: float


class Stopwatch:
    """Started when made; `per_call(n)` is the time since, over `n` calls."""

    def __init__(self) -> None:
        self.wall = time.perf_counter()
        self.cpu = time.process_time()

    def per_call(self, calls: int) -> Figure:
        wall = (time.perf_counter() - self.wall) / calls * 1e6
        cpu = (time.process_time() - self.cpu) / calls * 1e6
        return Figure(round(wall, 1), round(cpu, 1))


def shares(tasks: int, calls: int) -> list[int]:
    """`calls` split between `tasks` as evenly as they go."""
    return [calls // tasks + (task < calls % tasks) for task in range(tasks)]


async def one_after_another(call: Callable[[], Awaitable[object]], count: int) -> None:
    for _ in range(count):
        await call()


async def timed(calls: int, call: Callable[[], Awaitable[object]]) -> Figure:
    """µs per call of `calls` awaited one after another (after 50 to warm up)."""
    await one_after_another(call, 50)
    stopwatch = Stopwatch()
    await one_after_another(call, calls)
    return stopwatch.per_call(calls)


async def timed_at_once(tasks: int, calls: int, call: Callable[[], Awaitable[object]]) -> Figure:
    """µs per call of `calls` made by `tasks` trio tasks at once (after 50 to warm up)."""
    await one_after_another(call, 50)
    stopwatch = Stopwatch()
    async with trio.open_nursery() as nursery:
        for share in shares(tasks, calls):
            nursery.start_soon(one_after_another, call, share)
    return stopwatch.per_call(calls)


async def asyncio_at_once(tasks: int, calls: int, call: Callable[[], Awaitable[object]]) -> Figure:
    """`timed_at_once` for asyncio."""
    await one_after_another(call, 50)
    stopwatch = Stopwatch()
    await asyncio.gather(*(one_after_another(call, share) for share in shares(tasks, calls)))
    return stopwatch.per_call(calls)


def select_one(pool: Any) -> Callable[[], Awaitable[object]]:
    """An asyncio coroutine function: `SELECT 1` on a connection of asyncpg's `pool`."""

    async def one() -> object:
        async with pool.acquire() as conn:
            return await conn.fetchval("SELECT 1")

    return one


async def postgres(url: str, calls: int, concurrency: int) -> dict[str, float]:
    async def plain() -> tuple[Figure, Figure]:
        pool = await asyncpg.create_pool(url, min_size=concurrency, max_size=concurrency)
        try:
            one = select_one(pool)
            return await timed(calls, one), await asyncio_at_once(concurrency, calls, one)
        finally:
            await pool.close()

    # One call of `plain` measures the floor on a plain asyncio loop (in a thread, as
    # asyncio.run would refuse to nest in trio's thread).
    floor, floor_at_once = await trio.to_thread.run_sync(lambda: asyncio.run(plain()))
    async with open_asyncio_bridge() as bridge:
        pool = await bridge.run(
            asyncpg.create_pool, url, min_size=concurrency, max_size=concurrency
        )
        try:
            one = select_one(pool)
            bridged = await timed(calls, lambda: bridge.run(one))
            at_once = await timed_at_once(concurrency, calls, lambda: bridge.run(one))
        finally:
            await bridge.run(pool.close)
    async with open_postgres_store(url) as store:
        owner = await store.create_user(new_id("u").lower(), "Bench", None, now=0)
        room = await store.create_room("bench", RoomKind.PUBLIC, owner.id, now=0)
        resync = await timed(calls, lambda: store.last_seq(room.id))
    figures = {
        "pg_asyncio": floor,
        "pg_bridge": bridged,
        "pg_asyncio_concurrent": floor_at_once,
        "pg_bridge_concurrent": at_once,
        "pg_store_last_seq": resync,
    }
    return {name: figure.wall for name, figure in figures.items()} | {
        f"{name}_cpu": figure.cpu for name, figure in figures.items()
    }


async def redis(url: str, calls: int) -> dict[str, float]:
    client = coredis.Redis.from_url(url, decode_responses=False)
    async with client:
        payload = b"M" + b"1 " + b"x" * 200
        publish = (await timed(calls, lambda: client.publish("bench", payload))).wall

        async def hundred() -> None:
            async with client.pipeline(transaction=False) as pipe:
                for _ in range(100):
                    pipe.publish("bench", payload)

        pipelined = round((await timed(max(1, calls // 100), hundred)).wall / 100, 1)
        limiter = RedisRateLimiter(client, timeout=5.0)
        check = (await timed(calls, lambda: limiter.allow("bench", rate=1e6, burst=10**6))).wall
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

        resp = (await timed(calls, one)).wall
        resp_pipelined = round((await timed(max(1, calls // 100), queued_hundred)).wall / 100, 1)
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
    parser.add_argument("--redis-url")
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--busy", type=int, default=0, help="runnable trio tasks meanwhile")
    parser.add_argument(
        "--concurrency", type=int, default=8, help="tasks calling at once (`_concurrent`)"
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    async def both() -> dict[str, float]:
        figures = await postgres(args.database_url, args.calls, args.concurrency)
        if args.redis_url:
            figures |= await redis(args.redis_url, args.calls)
        return figures

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
