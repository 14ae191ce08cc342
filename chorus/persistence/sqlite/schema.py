"""Opening a SQLite database the way Chorus needs it, and migrating its schema.

Everything here is blocking; callers run it in a worker thread.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Literal, TypeAlias

from .._errors import SchemaTooNew, StoreError
from .._migrations import Migration

Synchronous: TypeAlias = Literal["FULL", "NORMAL"]
"""SQLite's `synchronous` setting: when a commit waits for the disk.

In WAL mode, "FULL" syncs the log on every commit, so a commit survives a
power loss or OS crash. "NORMAL" syncs only at checkpoints: a commit survives
the process crashing, but the last commits may be lost if the machine goes
down. Chorus acknowledges a message only once it is durable (DESIGN §5.1),
and appends are batched per room so one sync covers a whole batch; hence
"FULL" by default (see `bench/store_append.py` for what it costs).
"""

_SCHEMA_MIGRATIONS = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    INTEGER PRIMARY KEY,
    name       TEXT NOT NULL,
    applied_at INTEGER NOT NULL
)
"""


def connect(path: Path, *, busy_timeout: float, synchronous: Synchronous) -> sqlite3.Connection:
    """Open (creating if needed) the database file and its folder, configured for Chorus.

    The connection is in autocommit mode (`isolation_level=None`): callers
    issue `BEGIN`/`COMMIT` themselves. It may be used from any thread, one at
    a time.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(
        path,
        timeout=busy_timeout,
        isolation_level=None,
        check_same_thread=False,
        cached_statements=256,
    )
    try:
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if mode != "wal":
            # WAL lets readers (other processes, backups) run beside the writer;
            # it is refused e.g. on some network filesystems.
            raise StoreError(f"{path}: SQLite refused WAL mode (got {mode!r})")
        conn.execute(f"PRAGMA synchronous = {synchronous}")
        conn.execute("PRAGMA foreign_keys = ON")
    except BaseException:
        conn.close()
        raise
    return conn


def schema_version(conn: sqlite3.Connection) -> int:
    """The newest migration applied to the database; 0 for a new database."""
    row = conn.execute("SELECT coalesce(max(version), 0) FROM schema_migrations").fetchone()
    return int(row[0])


def migrate(
    conn: sqlite3.Connection, migrations: Sequence[Migration], *, database: str, now: int
) -> list[int]:
    """Apply the migrations the database lacks, each in its own transaction.

    Returns the versions applied (empty when the schema was up to date).
    Raises `SchemaTooNew` (changing nothing) if the database is newer than
    `migrations`. Safe against another process migrating at the same time:
    each step re-reads the version under the write lock. A migration that
    fails is rolled back and the database stays at the previous version.
    """
    conn.execute(_SCHEMA_MIGRATIONS)
    known = migrations[-1].version if migrations else 0
    applied: list[int] = []
    for migration in migrations:
        conn.execute("BEGIN IMMEDIATE")
        try:
            current = schema_version(conn)
            if current > known:
                raise SchemaTooNew(database, current, known)
            if current < migration.version:
                for statement in split_statements(migration.sql):
                    conn.execute(statement)
                conn.execute(
                    "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                    (migration.version, migration.name, now),
                )
                applied.append(migration.version)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
    return applied


def split_statements(script: str) -> list[str]:
    """Split a SQL script into statements that `execute` accepts one at a time.

    `executescript` would do it, but it commits any open transaction first,
    so a migration could not be applied atomically with it. SQLite's own
    `complete_statement` decides where a statement ends, so semicolons in
    strings, comments and trigger bodies are handled.
    """
    statements: list[str] = []
    pending = ""
    for piece in script.split(";"):
        pending += piece
        if not sqlite3.complete_statement(pending + ";"):
            # That ";" was inside a string, comment or trigger body.
            pending += ";"
            continue
        if _has_code(pending):
            statements.append(pending.strip() + ";")
        pending = ""
    if _has_code(pending):
        raise ValueError(f"SQL script ends inside a statement: {pending[:-1].strip()[:80]!r}")
    return statements


def _has_code(sql: str) -> bool:
    """True when `sql` contains more than whitespace and `--` comments."""
    return any(line.split("--", 1)[0].strip() for line in sql.splitlines())
