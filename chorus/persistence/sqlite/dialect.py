"""Running the neutral SQL of `_sql` on SQLite: its placeholders, lists and errors."""

from __future__ import annotations

import functools
import json
import re
import sqlite3
from collections.abc import Sequence
from typing import Any, Final

from .._sql import ForeignKeyViolation, Query, Rows, UniqueViolation

# (pattern, replacement) applied in order; see `_sql` for the neutral forms.
_REWRITES: Final = (
    (re.compile(r"\$(\d+)"), r"?\1"),
    # The writer holds the whole database (BEGIN IMMEDIATE): rows need no locks.
    (re.compile(r" FOR NO KEY UPDATE(?: OF \w+)?"), ""),
    # A list argument is passed as JSON (see `_args`).
    (re.compile(r"= ANY\(\?(\d+)\)"), r"IN (SELECT value FROM json_each(?\1))"),
    # Usernames are stored lower-case and the column is NOCASE: its unique
    # index answers the lookup that PostgreSQL's index on lower(username) does.
    (re.compile(r"lower\(u\.username\)"), "u.username"),
)

_UNIQUE: Final = frozenset({sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY})


def translate(sql: str) -> str:
    """The neutral statement `sql` in SQLite's dialect."""
    for pattern, replacement in _REWRITES:
        sql = pattern.sub(replacement, sql)
    return sql


@functools.lru_cache(maxsize=1024)
def _statement(sql: str) -> tuple[str, bool]:
    """`sql` translated, and whether it takes list arguments (once per text)."""
    return translate(sql), "= ANY($" in sql


def execute(conn: sqlite3.Connection, query: Query) -> Rows:
    """Run one query of a transaction; integrity errors become `_sql`'s violations."""
    sql, lists = _statement(query.sql)
    try:
        if query.many:
            conn.executemany(sql, [_args(args) for args in query.args] if lists else query.args)
            return []
        return conn.execute(sql, _args(query.args) if lists else query.args).fetchall()
    except sqlite3.IntegrityError as exc:
        if exc.sqlite_errorcode in _UNIQUE:
            raise UniqueViolation(str(exc)) from exc
        if exc.sqlite_errorcode == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY:
            raise ForeignKeyViolation(str(exc)) from exc
        raise


def _args(args: Sequence[Any]) -> list[Any]:
    # A list is passed as one JSON text: any length, one parameter, one statement.
    return [json.dumps(value) if isinstance(value, list) else value for value in args]
