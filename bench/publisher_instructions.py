"""The bus publisher's cost per publication on one Redis server: for instruction counts.

Usage: python bench/publisher_instructions.py --redis-url redis://127.0.0.1:PORT/0
                                              [--publisher resp|coredis] [--rounds K]
                                              [--per-pass P]

Starts the bus's publisher (`resp`: our own `RespPublisher`, what a node uses
on one Redis server; `coredis`: `CoredisPublisher`, what it used before and
still uses on a Redis Cluster) and a `RespSubscriber` on the same channel,
then K rounds: P publications queued in one task step (as the room actors of
one scheduler pass queue theirs), then a wait until the subscriber has them
all. Prints the process's CPU µs per publication.

Run it under `valgrind --tool=callgrind` twice, with `--rounds K` and with
`--rounds 0`, and divide the difference by K*P publications (Redis is another
process, not traced). The subscriber's share is the same for both publishers,
so the difference between them is the publishers'. See docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import time

import coredis
import trio

from chorus.cluster._publisher import RespPublisher
from chorus.cluster._redis import CoredisPublisher
from chorus.cluster._subscriber import RespSubscriber
from chorus.logs import silence_logging


async def measure(url: str, publisher_kind: str, rounds: int, per_pass: int) -> float:
    """CPU µs per publication (0 when `rounds` is 0)."""
    received = 0
    arrived = trio.Event()

    def count(channel: bytes, payload: bytes) -> None:
        nonlocal received, arrived
        received += 1
        arrived.set()

    client = coredis.Redis.from_url(url, decode_responses=False)
    async with client, trio.open_nursery() as nursery:
        publisher: RespPublisher | CoredisPublisher = (
            RespPublisher(url) if publisher_kind == "resp" else CoredisPublisher(client)
        )
        subscriber = RespSubscriber(url, count)
        await nursery.start(subscriber.run)
        await subscriber.subscribe("room:1")
        await nursery.start(publisher.run)
        payload = b"M" + b"1 " + b"x" * 200
        start = time.process_time()
        with trio.fail_after(60 + rounds):
            for _ in range(rounds):
                expected = received + per_pass
                for _ in range(per_pass):
                    publisher.publish("room:1", payload)
                while received < expected:
                    arrived = trio.Event()
                    await arrived.wait()
        spent = time.process_time() - start
        assert publisher.dropped == 0
        nursery.cancel_scope.cancel()
    return spent / (rounds * per_pass) * 1e6 if rounds else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--publisher", choices=("resp", "coredis"), default="resp")
    parser.add_argument("--rounds", type=int, default=1000)
    parser.add_argument("--per-pass", type=int, default=4)
    args = parser.parse_args()
    silence_logging()
    cost = trio.run(measure, args.redis_url, args.publisher, args.rounds, args.per_pass)
    print(f"{args.publisher}: {cost:.1f} CPU µs per publication")


if __name__ == "__main__":
    main()
