"""Migrating a PostgreSQL database: each step in its own transaction, under an advisory lock."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import asyncpg

from chorus.logs import redact_url

from .._errors import SchemaTooNew
from .._migrations import Migration, load_migrations
from .._model import now_ms

Conn = Any  # an asyncpg connection (asyncpg ships no type information)

# An arbitrary constant: the advisory lock that serialises concurrent migrations.
_MIGRATION_LOCK: Final = 0x63686F727573  # "chorus"

_SCHEMA_MIGRATIONS = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    INTEGER PRIMARY KEY,
    name       TEXT NOT NULL,
    applied_at BIGINT NOT NULL
)
"""


async def migrate_url(url: str, connect_timeout: float) -> list[int]:
    """Connect to `url` and `migrate` it (asyncio side)."""
    conn = await asyncpg.connect(url, timeout=connect_timeout)
    try:
        return await migrate(
            conn, load_migrations("postgres"), database=redact_url(url), now=now_ms()
        )
    finally:
        await conn.close()


async def migrate(
    conn: Conn, migrations: Sequence[Migration], *, database: str, now: int
) -> list[int]:
    """Apply the migrations the database lacks, each in its own transaction.

    Returns the versions applied. Raises `SchemaTooNew` (changing nothing)
    if the database is newer than `migrations`. Each step holds a
    transaction-scoped advisory lock while it re-reads the version, so nodes
    starting together migrate once. A failing migration is rolled back and
    the database stays at the previous version.
    """
    known = migrations[-1].version if migrations else 0
    applied: list[int] = []
    for migration in migrations:
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK)
            await conn.execute(_SCHEMA_MIGRATIONS)
            current = await conn.fetchval("SELECT coalesce(max(version), 0) FROM schema_migrations")
            if current > known:
                raise SchemaTooNew(database, current, known)
            if current < migration.version:
                # Without arguments asyncpg uses the simple query protocol,
                # which runs a whole script (inside this transaction).
                await conn.execute(migration.sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
                    migration.version,
                    migration.name,
                    now,
                )
                applied.append(migration.version)
    return applied


async def schema_version(conn: Conn) -> int:
    """The newest migration applied to the database; 0 for a new database."""
    exists = await conn.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL")
    if not exists:
        return 0
    return int(await conn.fetchval("SELECT coalesce(max(version), 0) FROM schema_migrations"))
