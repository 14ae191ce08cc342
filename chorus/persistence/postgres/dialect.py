"""Running the neutral SQL of `_sql` on asyncpg: PostgreSQL's own syntax, so only errors differ."""

from __future__ import annotations

from typing import Any

import asyncpg

from .._sql import ForeignKeyViolation, Query, Rows, UniqueViolation

Conn = Any  # an asyncpg connection (asyncpg ships no type information)


async def execute(conn: Conn, query: Query) -> Rows:
    """Run one query of a transaction (asyncio side); integrity errors become violations."""
    try:
        if query.many:
            await conn.executemany(query.sql, query.args)
            return []
        rows: Rows = await conn.fetch(query.sql, *query.args)
        return rows
    except asyncpg.UniqueViolationError as exc:
        raise unique_violation(exc) from exc
    except asyncpg.ForeignKeyViolationError as exc:
        raise ForeignKeyViolation(str(exc)) from exc


def unique_violation(exc: asyncpg.UniqueViolationError) -> UniqueViolation:
    """The neutral form of asyncpg's error, with the constraint's name."""
    return UniqueViolation(str(exc), exc.constraint_name)
