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

With `--backend-cpu` (not under callgrind) it also prints the CPU time the PostgreSQL
backend serving the calls used over the N calls, per call (user and system µs, from
/proc/<pid>/stat: the server must run on this machine, readable by this user). The calls
run one after another, so they all run on one pooled connection, i.e. one backend.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

import trio

from chorus.persistence import NewMessage, RoomKind, open_postgres_store
from chorus.persistence.roles.moderation import Standing

BODY = "The quick brown fox jumps over the lazy dog; a typical short chat line."
WARMUP = 20


def admit_all(sender: str, standing: Standing | None) -> Exception | None:
    return None


async def store_batches(url: str, calls: int, backend_cpu: bool = False) -> int:
    """Store WARMUP + `calls` batches of one message; returns the room's last seq."""
    async with open_postgres_store(url, min_size=1, max_size=2) as store:
        user = await store.create_user("u_bench", "Bench", None, now=0)
        room = await store.create_room("bench", RoomKind.PUBLIC, user.id, now=0)
        known = 0
        backend = 0
        for i in range(WARMUP + calls):
            if i == WARMUP and backend_cpu:
                backend = await store._run(backend_pid, transaction=False)
                started = cpu_ticks(backend)
            batch = [NewMessage(sender_id=user.id, body=BODY, client_id=f"c{i}", created_at=i)]
            done = await store.append_admitted(room.id, batch, admit_all, i, known=known)
            [appended] = done.results
            assert not isinstance(appended, Exception)
            known = appended.message.seq
        if backend_cpu and calls:
            tick = 1e6 / os.sysconf("SC_CLK_TCK")
            used = [
                (b - a) * tick / calls for a, b in zip(started, cpu_ticks(backend), strict=True)
            ]
            again = await store._run(backend_pid, transaction=False)
            assert again == backend, "the calls moved to another connection"
            print(f"backend {backend}: user {used[0]:.1f} µs, system {used[1]:.1f} µs per call")
        return known


async def backend_pid(conn: Any) -> int:
    pid: int = await conn.fetchval("SELECT pg_backend_pid()")
    return pid


def cpu_ticks(pid: int) -> tuple[int, int]:
    """The user and system clock ticks process `pid` used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]), int(fields[12])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--database-url", default="")
    parser.add_argument(
        "--backend-cpu", action="store_true", help="print the PostgreSQL backend's CPU per call"
    )
    args = parser.parse_args()
    if args.database_url:
        print(trio.run(store_batches, args.database_url, args.calls, args.backend_cpu))
        return
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from tests.pgserver import PgServer

    server = PgServer(durable=True)
    try:
        server.init()
        server.start()
        server.psql("CREATE DATABASE bench")
        print(trio.run(store_batches, server.database_url("bench"), args.calls, args.backend_cpu))
    finally:
        server.stop()
        server.remove()


if __name__ == "__main__":
    main()
