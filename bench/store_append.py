"""Messages per second that `SqliteStore.append_messages` stores, by batch size.

Usage: .venv/bin/python bench/store_append.py [--seconds S] [--synchronous FULL|NORMAL]
                                               [--rooms N] [--dir DIR]

Each batch size runs for about S seconds on a fresh database file in DIR (a
temporary folder by default: put it on the disk you care about). N trio
tasks, one per room, append concurrently, as room actors would; every call
is one transaction, so the numbers include the commit and its disk sync.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import trio

from chorus.persistence import NewMessage, RoomKind, SqliteStore, Synchronous, open_sqlite_store

BATCH_SIZES = (1, 10, 100)
BODY = "The quick brown fox jumps over the lazy dog; a typical short chat line."


async def append_for(
    store: SqliteStore, room_id: str, sender_id: str, batch_size: int, deadline: float
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
    path: Path, batch_size: int, seconds: float, rooms: int, synchronous: Synchronous
) -> float:
    async with open_sqlite_store(path, synchronous=synchronous) as store:
        user = await store.create_user("bench", "Bench", None, now=0)
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
    args = parser.parse_args()
    synchronous: Synchronous = "NORMAL" if args.synchronous == "NORMAL" else "FULL"
    with tempfile.TemporaryDirectory(dir=args.dir) as folder:
        print(f"synchronous={synchronous} rooms={args.rooms} seconds={args.seconds:g} in {folder}")
        print(f"{'batch':>6} {'messages/s':>12} {'batches/s':>10}")
        for batch_size in BATCH_SIZES:
            rate = await measure(
                Path(folder) / f"batch{batch_size}.db",
                batch_size,
                args.seconds,
                args.rooms,
                synchronous,
            )
            print(f"{batch_size:>6} {rate:>12,.0f} {rate / batch_size:>10,.0f}")


if __name__ == "__main__":
    trio.run(main)
