"""Microseconds per `AuthService.authenticate` (the check of every authenticated request
and `hello`), without and with the session cache.

Usage: .venv/bin/python bench/session_cache.py --data-dir DIR
                                               [--database-url postgresql://...
                                                --redis-url redis://...] [--calls N] [--json]

Each figure is the wall time of N checks of one access token made one after
another from one task (token verification included):

- `sqlite_store`: SQLite store, no cache (every check reads the session row);
- `sqlite_local_cache`: SQLite store, the in-process cache (a lone node);
- `postgres_store`: PostgreSQL store, no cache;
- `postgres_redis_cache`: PostgreSQL store, the Redis cache (nodes sharing Redis).
"""

from __future__ import annotations

import argparse
import json
import time
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import coredis
import trio

from chorus.auth import (
    AuthService,
    CachedSession,
    LocalSessionCache,
    Passwords,
    RedisSessionCache,
    SessionCache,
    TokenSigner,
    new_signing_key,
)
from chorus.cluster import CoredisCommands
from chorus.persistence import Store, open_postgres_store, open_sqlite_store


class NoCache:
    """Every check goes to the store (what authenticate did before the cache)."""

    def generation(self) -> int:
        return 0

    async def get(self, session_id: str) -> CachedSession | None:
        return None

    async def put(self, session_id: str, entry: CachedSession, generation: int) -> None:
        return None

    async def invalidate(self, session_id: str) -> None:
        return None


async def per_check(
    opened: AbstractAsyncContextManager[Store], cache: SessionCache, calls: int, user: str
) -> float:
    async with opened as store:
        auth = AuthService(
            store,
            TokenSigner(new_signing_key(), access_ttl=900),
            Passwords(time_cost=1, memory_cost_kib=1024),
            refresh_ttl=3600,
            session_cache=cache,
        )
        tokens = await auth.register(user, "long enough password", None)
        for _ in range(50):
            await auth.authenticate(tokens.access_token)
        start = time.perf_counter()
        for _ in range(calls):
            await auth.authenticate(tokens.access_token)
        return round((time.perf_counter() - start) / calls * 1e6, 1)


async def main(args: argparse.Namespace) -> dict[str, float]:
    data = Path(args.data_dir)
    stamp = str(time.time_ns())[-8:]
    local = LocalSessionCache(max_entries=10_000, ttl=5.0)
    results = {
        "sqlite_store": await per_check(
            open_sqlite_store(data / f"a{stamp}.db"), NoCache(), args.calls, "bench"
        ),
        "sqlite_local_cache": await per_check(
            open_sqlite_store(data / f"b{stamp}.db"), local, args.calls, "bench"
        ),
    }
    if args.database_url and args.redis_url:
        results["postgres_store"] = await per_check(
            open_postgres_store(args.database_url), NoCache(), args.calls, f"bench_a{stamp}"
        )
        async with coredis.Redis.from_url(args.redis_url, decode_responses=False) as client:
            results["postgres_redis_cache"] = await per_check(
                open_postgres_store(args.database_url),
                RedisSessionCache(CoredisCommands(client), ttl=5.0),
                args.calls,
                f"bench_b{stamp}",
            )
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--database-url", default="")
    parser.add_argument("--redis-url", default="")
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--json", action="store_true")
    arguments = parser.parse_args()
    Path(arguments.data_dir).mkdir(parents=True, exist_ok=True)
    found = trio.run(main, arguments)
    if arguments.json:
        print(json.dumps(found))
    else:
        for name, micros in found.items():
            print(f"{name:24} {micros:8.1f} µs per check")
