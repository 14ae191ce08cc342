"""Stored batches one after another through `PostgresStore.append_admitted` alone, to count
what one bridge call of the hot path costs each thread (load-independent under callgrind).

Usage: .venv/bin/python bench/admitted_calls.py [--calls N] [--database-url postgresql://...]

Without `--database-url` it starts a private PostgreSQL (`tests/pgserver.py`, durable:
fsync and synchronous commits on) in a child process, which callgrind does not follow.
Opens the store, makes a user and a room, stores 20 batches of one message to warm up,
then N more, each call waiting for the previous one (`known` is the room's last seq, as
a room actor's is). Run it twice under callgrind, with N and with N + M calls, and
divide each thread's difference by M (start-up, imports and the server cancel out):

    PYTHONHASHSEED=0 valgrind --tool=callgrind --separate-threads=yes \\
        --callgrind-out-file=cg-0.%p python bench/admitted_calls.py --calls 0
    PYTHONHASHSEED=0 valgrind ... --callgrind-out-file=cg-300.%p ... --calls 300

Thread 01 is trio's, thread 02 the bridge's asyncio loop.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import trio

from chorus.persistence import NewMessage, RoomKind, open_postgres_store
from chorus.persistence.roles.moderation import Standing

BODY = "The quick brown fox jumps over the lazy dog; a typical short chat line."
WARMUP = 20


def admit_all(sender: str, standing: Standing | None) -> Exception | None:
    return None


async def store_batches(url: str, calls: int) -> int:
    """Store WARMUP + `calls` batches of one message; returns the room's last seq."""
    async with open_postgres_store(url, min_size=1, max_size=2) as store:
        user = await store.create_user("u_bench", "Bench", None, now=0)
        room = await store.create_room("bench", RoomKind.PUBLIC, user.id, now=0)
        known = 0
        for i in range(WARMUP + calls):
            batch = [NewMessage(sender_id=user.id, body=BODY, client_id=f"c{i}", created_at=i)]
            done = await store.append_admitted(room.id, batch, admit_all, i, known=known)
            [appended] = done.results
            assert not isinstance(appended, Exception)
            known = appended.message.seq
        return known


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()
    if args.database_url:
        print(trio.run(store_batches, args.database_url, args.calls))
        return
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from tests.pgserver import PgServer

    server = PgServer(durable=True)
    try:
        server.init()
        server.start()
        server.psql("CREATE DATABASE bench")
        print(trio.run(store_batches, server.database_url("bench"), args.calls))
    finally:
        server.stop()
        server.remove()


if __name__ == "__main__":
    main()
