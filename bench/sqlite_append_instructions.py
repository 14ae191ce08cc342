"""The SQLite append alone, for instruction counts: K batches of N messages, one transaction each.

Usage (the difference of two runs is the cost of K batches; the warm-up and
Python's start cancel out):

    valgrind --tool=callgrind --callgrind-out-file=K.cg \\
        .venv/bin/python bench/sqlite_append_instructions.py --size N --batches K
    valgrind --tool=callgrind --callgrind-out-file=0.cg \\
        .venv/bin/python bench/sqlite_append_instructions.py --size N --batches 0

then (summary of K.cg - summary of 0.cg) / (K * N) is the instructions per
message. Each batch is `BEGIN IMMEDIATE`, `sqlite.append.append_messages`
(new client ids, one sender, one room) and `COMMIT`, on a fresh database
with `synchronous=OFF` (the disk sync is the kernel's, not counted anyway).
It measures the store's statements and the Python around them, nothing of
the node (see bench/dm_instructions.py for the whole node).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from chorus.persistence import NewMessage
from chorus.persistence._migrations import load_migrations
from chorus.persistence.sqlite.append import append_messages
from chorus.persistence.sqlite.schema import connect, migrate

WARMUP_BATCHES = 20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--size", type=int, default=1, help="messages per batch")
    parser.add_argument("--batches", type=int, default=200, help="batches after the warm-up")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        conn = connect(Path(folder) / "chorus.db", busy_timeout=1.0, synchronous="NORMAL")
        conn.execute("PRAGMA synchronous = OFF")  # count the statements' work, not the syncs
        migrate(conn, load_migrations("sqlite"), database="bench", now=0)
        conn.execute(
            "INSERT INTO users (id, username, display_name, created_at) VALUES ('u', 'u', 'u', 0)"
        )
        conn.execute(
            "INSERT INTO rooms (id, name, kind, created_by, created_at)"
            " VALUES ('r', 'r', 'public', 'u', 0)"
        )
        sent = 0
        for _ in range(WARMUP_BATCHES + args.batches):
            batch = []
            for _ in range(args.size):
                sent += 1
                batch.append(
                    NewMessage(sender_id="u", body="x" * 100, client_id=f"c{sent}", created_at=sent)
                )
            conn.execute("BEGIN IMMEDIATE")
            append_messages(conn, "r", batch)
            conn.execute("COMMIT")
        conn.close()


if __name__ == "__main__":
    main()
