"""Transactions as generators (`_sql`) and SQLite's reading of the neutral SQL."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing

import pytest

from chorus.persistence import Conflict
from chorus.persistence._sql import (
    Query,
    Rows,
    Tx,
    UniqueViolation,
    execute,
    fetch_one,
    fetch_value,
    run_async,
    run_sync,
)
from chorus.persistence.sqlite import dialect


def claim(name: str) -> Tx[str]:
    """Insert `name` unless it is taken (a Conflict), then read it back."""
    try:
        yield from execute("INSERT INTO t (name) VALUES ($1)", name)
    except UniqueViolation as exc:
        raise Conflict(f"{name!r} is taken") from exc
    found = yield from fetch_value("SELECT name FROM t WHERE name = $1", name)
    return str(found)


@pytest.fixture
def conn() -> Iterator[sqlite3.Connection]:
    with closing(sqlite3.connect(":memory:")) as db:
        db.execute("CREATE TABLE t (name TEXT PRIMARY KEY, n INTEGER)")
        yield db


def test_run_sync_sends_rows_and_returns_the_result(conn: sqlite3.Connection) -> None:
    assert run_sync(claim("ada"), lambda q: dialect.execute(conn, q)) == "ada"


def test_a_violation_is_thrown_into_the_transaction_at_its_yield(
    conn: sqlite3.Connection,
) -> None:
    run_sync(claim("ada"), lambda q: dialect.execute(conn, q))
    with pytest.raises(Conflict, match="'ada' is taken"):
        run_sync(claim("ada"), lambda q: dialect.execute(conn, q))


async def test_run_async_drives_the_same_transaction() -> None:
    seen: list[Query] = []

    async def answer(query: Query) -> Rows:
        seen.append(query)
        return [("ada",)]

    assert await run_async(claim("ada"), answer) == "ada"
    assert [q.args for q in seen] == [("ada",), ("ada",)]


def test_a_transaction_without_statements_returns_at_once() -> None:
    def nothing() -> Tx[int]:
        yield from ()  # a generator that yields no query
        return 7

    assert run_sync(nothing(), lambda q: pytest.fail("no statement expected")) == 7


def test_sqlite_reads_the_neutral_forms() -> None:
    assert dialect.translate("SELECT 1 FROM rooms WHERE id = $1 FOR NO KEY UPDATE") == (
        "SELECT 1 FROM rooms WHERE id = ?1"
    )
    assert dialect.translate("SELECT 1 FROM m WHERE a = $2 FOR NO KEY UPDATE OF m") == (
        "SELECT 1 FROM m WHERE a = ?2"
    )
    assert dialect.translate("DELETE FROM n WHERE id = ANY($3)") == (
        "DELETE FROM n WHERE id IN (SELECT value FROM json_each(?3))"
    )
    assert dialect.translate("WHERE lower(u.username) = $1") == "WHERE u.username = ?1"


def test_sqlite_passes_a_list_argument_as_one_json_text(conn: sqlite3.Connection) -> None:
    conn.executemany("INSERT INTO t (name, n) VALUES (?, ?)", [("a", 1), ("b", 2), ("c", 3)])

    def count(names: list[str]) -> Tx[int]:
        row = yield from fetch_one("SELECT count(*) FROM t WHERE name = ANY($1)", names)
        assert row is not None
        return int(row[0])

    assert run_sync(count(["a", "c", "x"]), lambda q: dialect.execute(conn, q)) == 2
    assert run_sync(count([]), lambda q: dialect.execute(conn, q)) == 0
