"""The send limits' report to Redis (`ReconciledRateLimiter._report`): for instruction counts.

Usage: python bench/report_instructions.py --redis-url redis://127.0.0.1:PORT/0
                                           [--client resp|coredis] [--reports K] [--keys N]

Makes a `ReconciledRateLimiter` on one Redis server (`resp`: over a
`RespClient`, what a node uses on one server; `coredis`: over
`CoredisCommands`, what it uses on a Redis Cluster or a unix socket), reports 20
times to warm up (the script loaded, the connection open), then K reports of
N keys each (600 senders at one message a second make about 60 keys in
100 ms), one after the other. Prints the process's CPU µs per report.

Run it under `valgrind --tool=callgrind` twice, with `--reports K` and with
`--reports 0`, and divide the difference by K (Redis is another process,
not traced). See docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import time

import coredis
import trio

from chorus.cluster import Commands, CoredisCommands, ReconciledRateLimiter, RespClient
from chorus.logs import silence_logging

WARMUP = 20


async def measure(url: str, kind: str, reports: int, keys: int) -> float:
    """CPU µs per report (0 when `reports` is 0)."""
    coredis_client = coredis.Redis.from_url(url, decode_responses=False)
    async with coredis_client, trio.open_nursery() as nursery:
        client: Commands = CoredisCommands(coredis_client)
        if kind == "resp":
            resp = RespClient(url)
            await nursery.start(resp.run)
            client = resp
        limiter = ReconciledRateLimiter(client)
        counts = {(f"limit:send:u{n}", 1.0, 10): 1 for n in range(keys)}
        for _ in range(WARMUP):
            await limiter._report(counts)
        start = time.process_time()
        for _ in range(reports):
            await limiter._report(counts)
        spent = time.process_time() - start
        assert not limiter.degraded
        nursery.cancel_scope.cancel()
    return spent / reports * 1e6 if reports else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--client", choices=("resp", "coredis"), default="resp")
    parser.add_argument("--reports", type=int, default=200)
    parser.add_argument("--keys", type=int, default=60)
    args = parser.parse_args()
    silence_logging()
    cost = trio.run(measure, args.redis_url, args.client, args.reports, args.keys)
    print(f"{args.client}: {cost:.1f} CPU µs per report of {args.keys} keys")


if __name__ == "__main__":
    main()
