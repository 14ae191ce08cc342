"""Calls through the asyncio bridge alone, to count what a hand-off costs under
`strace -c -f` or callgrind (load-independent, unlike `bench/cluster_calls.py`'s times).

Usage: .venv/bin/python bench/bridge_calls.py --database-url postgresql://...
                                              [--calls N] [--concurrency K]

Opens the bridge and a pool of K asyncpg connections on it, makes 50 calls to
warm up, then K trio tasks make N calls of `SELECT 1` between them, each task
one after another (K = 1: the calls of a lone caller; K > 1: calls that
overlap, as on a node whose rooms store at once). Prints wall and CPU µs per
call (timed: they move with the machine's load) and the voluntary context
switches per call of the process's threads (from /proc: each time a thread
went to sleep for want of work, such as waiting for the other thread's
wake-up or the GIL; the load changes them much less), and the bridge's own
count of wake-ups written each way per call (`AsyncioBridge.stats`; a bridge
too old to count them wrote one each way per call).

To count per call what the machine's load does not change, run it twice under
the counter, with N and with N + M calls, and divide the difference by M
(start-up, imports and the pool cancel out):

    strace -f -c -o calls-100.txt .venv/bin/python bench/bridge_calls.py --calls 100 ...
    strace -f -c -o calls-2100.txt .venv/bin/python bench/bridge_calls.py --calls 2100 ...
    valgrind --tool=callgrind --callgrind-out-file=cg-100.out .venv/bin/python ... --calls 100
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Awaitable
from pathlib import Path

import asyncpg
import trio
from cluster_calls import (
    one_after_another,
    select_one,
    shares,
)  # a sibling: run as `python bench/...`

from chorus.persistence.postgres.bridge import open_asyncio_bridge


def voluntary_switches() -> int:
    """Voluntary context switches so far, summed over this process's threads."""
    total = 0
    for status in Path("/proc/self/task").glob("*/status"):
        for line in status.read_text().splitlines():
            if line.startswith("voluntary_ctxt_switches:"):
                total += int(line.split()[1])
    return total


async def measure(url: str, calls: int, concurrency: int) -> dict[str, float]:
    """Per call of `calls` made by `concurrency` tasks at once: wall and CPU µs,
    voluntary switches, wake-ups of the loop and of trio."""
    async with open_asyncio_bridge() as bridge:
        pool = await bridge.run(
            asyncpg.create_pool, url, min_size=concurrency, max_size=concurrency
        )
        try:
            one = select_one(pool)

            def call() -> Awaitable[object]:
                return bridge.run(one)

            await one_after_another(call, 50)
            stats = getattr(bridge, "stats", None)
            before = stats() if stats else None
            switches = voluntary_switches()
            wall, cpu = time.perf_counter(), time.process_time()
            async with trio.open_nursery() as nursery:
                for share in shares(concurrency, calls):
                    nursery.start_soon(one_after_another, call, share)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            switches = voluntary_switches() - switches
            after = stats() if stats else None
        finally:
            await bridge.run(pool.close)
    figures = {
        "wall_us": round(wall / calls * 1e6, 1),
        "cpu_us": round(cpu / calls * 1e6, 1),
        "voluntary_switches": round(switches / calls, 2),
    }
    if before and after:
        figures["loop_wakeups"] = round((after.loop_wakeups - before.loop_wakeups) / calls, 3)
        figures["trio_wakeups"] = round((after.trio_wakeups - before.trio_wakeups) / calls, 3)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=1, help="tasks calling at once")
    args = parser.parse_args()
    print(json.dumps(trio.run(measure, args.database_url, args.calls, args.concurrency)))


if __name__ == "__main__":
    main()
