"""Messages per second that `Store.append_messages` stores, by batch size.

Usage: .venv/bin/python bench/store_append.py [--seconds S] [--synchronous FULL|NORMAL]
                                               [--rooms N] [--dir DIR] [--json]
                                               [--database-url postgresql://...]

Each batch size runs for about S seconds on a fresh database file in DIR (a
temporary folder by default: put it on the disk you care about). N trio
tasks, one per room, append concurrently, as room actors would; every call
is one transaction, so the numbers include the commit and its disk sync.

With --database-url the PostgreSQL store is measured instead (the database
must exist; each batch size gets fresh rooms, so it need not be empty).
--json prints one JSON object instead of the table (bench/run.py reads it).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import trio

from chorus.persistence import (
    NewMessage,
    RoomKind,
    Store,
    Synchronous,
    new_id,
    open_postgres_store,
    open_sqlite_store,
)

BATCH_SIZES = (1, 10, 100)
BODY = "The quick brown fox jumps over the lazy dog; a typical short chat line."


async def append_for(
    store: Store, room_id: str, sender_id: str, batch_size: int, deadline: float
) -> int:
    stored = 0
    while time.perf_counter() < deadline:
        batch = [
            NewMessage(
                sender_id=sender_id,
                body=BODY,
                client_id=f"{room_id}-{stored + i}",
                created_at=0,
            )
            for i in range(batch_size)
        ]
        await store.append_messages(room_id, batch)
        stored += batch_size
    return stored


async def measure(
    opener: Callable[[], AbstractAsyncContextManager[Store]],
    batch_size: int,
    seconds: float,
    rooms: int,
) -> float:
    async with opener() as store:
        user = await store.create_user(new_id("u").lower(), "Bench", None, now=0)
        room_ids = [
            (await store.create_room(f"room {i}", RoomKind.PUBLIC, user.id, now=0)).id
            for i in range(rooms)
        ]
        totals: list[int] = []

        async def one_room(room_id: str, deadline: float) -> None:
            totals.append(await append_for(store, room_id, user.id, batch_size, deadline))

        start = time.perf_counter()
        async with trio.open_nursery() as nursery:
            for room_id in room_ids:
                nursery.start_soon(one_room, room_id, start + seconds)
        elapsed = time.perf_counter() - start
        return sum(totals) / elapsed


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="per batch size")
    parser.add_argument("--synchronous", choices=["FULL", "NORMAL"], default="FULL")
    parser.add_argument("--rooms", type=int, default=1, help="concurrent appending rooms")
    parser.add_argument("--dir", type=Path, default=None, help="where the database files go")
    parser.add_argument("--database-url", default="", help="measure PostgreSQL at this URL")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    synchronous: Synchronous = "NORMAL" if args.synchronous == "NORMAL" else "FULL"
    rates: dict[int, float] = {}
    if args.database_url:
        store = "postgres"
        for batch_size in BATCH_SIZES:
            rates[batch_size] = await measure(
                lambda: open_postgres_store(args.database_url, max_size=max(2, args.rooms)),
                batch_size,
                args.seconds,
                args.rooms,
            )
    else:
        with tempfile.TemporaryDirectory(dir=args.dir) as folder:
            store = f"sqlite synchronous={synchronous} in {folder}"
            for batch_size in BATCH_SIZES:
                path = Path(folder) / f"batch{batch_size}.db"
                rates[batch_size] = await measure(
                    lambda: open_sqlite_store(path, synchronous=synchronous),  # noqa: B023
                    batch_size,
                    args.seconds,
                    args.rooms,
                )
    if args.json:
        result = {
            "store": store,
            "rooms": args.rooms,
            "seconds": args.seconds,
            "messages_per_s": {str(size): round(rate, 1) for size, rate in rates.items()},
        }
        print(json.dumps(result))
        return
    print(f"{store} rooms={args.rooms} seconds={args.seconds:g}")
    print(f"{'batch':>6} {'messages/s':>12} {'batches/s':>10}")
    for batch_size, rate in rates.items():
        print(f"{batch_size:>6} {rate:>12,.0f} {rate / batch_size:>10,.0f}")


if __name__ == "__main__":
    trio.run(main)
