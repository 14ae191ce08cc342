"""The counting and lookup queries of rich messaging use index range scans, never table scans.

SQLite's plans do not depend on table sizes, so they are checked as they
are. PostgreSQL picks sequential scans for the tiny tables of a test, so
its plans are checked with sequential scans disabled: that proves a
matching index exists and the query can use it.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from chorus.persistence import NewMessage, migrate_postgres, migrate_sqlite
from chorus.persistence.postgres.append import Append
from chorus.persistence.postgres.bridge import open_asyncio_bridge
from chorus.persistence.postgres.standings import SeenStandings, fingerprints
from chorus.persistence.roles.inbox import UNREAD_COUNTS
from chorus.persistence.sqlite.dialect import translate
from tests.pgserver import PgServer


async def sqlite_plan(tmp_path: Path, sql: str, *params: object) -> list[str]:
    path = tmp_path / "plans.db"
    await migrate_sqlite(path)
    conn = sqlite3.connect(path)
    try:
        return [row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}", params)]
    finally:
        conn.close()


async def test_sqlite_unread_counts_scan_index_ranges_from_the_read_marker(
    tmp_path: Path,
) -> None:
    plan = await sqlite_plan(tmp_path, translate(UNREAD_COUNTS), "u_x")
    assert "SEARCH ms USING INDEX memberships_user (user_id=?)" in plan
    assert any(p.startswith("SEARCH e USING INDEX") and "(room_id=? AND seq>?)" in p for p in plan)
    assert "SEARCH x USING PRIMARY KEY (user_id=? AND room_id=? AND seq>?)" in plan
    assert not any(p.startswith("SCAN") for p in plan)


async def test_sqlite_thread_and_inbox_reads_use_their_indexes(tmp_path: Path) -> None:
    thread = await sqlite_plan(
        tmp_path,
        "SELECT msg.id FROM messages msg WHERE msg.thread_id = ? AND msg.seq > ?"
        " ORDER BY msg.seq LIMIT 5",
        "m_x",
        1,
    )
    assert thread == ["SEARCH msg USING INDEX messages_thread (thread_id=? AND seq>?)"]
    inbox = await sqlite_plan(
        tmp_path,
        "SELECT n.id FROM notifications n WHERE n.user_id = ? AND n.id < ?"
        " ORDER BY n.id DESC LIMIT 5",
        "u_x",
        "n_x",
    )
    assert inbox == ["SEARCH n USING COVERING INDEX notifications_user (user_id=? AND id<?)"]


async def pg_plan(url: str, sql: str, *params: object) -> str:
    async def explain() -> str:
        conn = await asyncpg.connect(url)
        try:
            await conn.execute("SET enable_seqscan = off")
            return "\n".join(row[0] for row in await conn.fetch(f"EXPLAIN {sql}", *params))
        finally:
            await conn.close()

    async with open_asyncio_bridge() as bridge:
        return await bridge.run(explain)


async def test_postgres_unread_counts_and_search_use_their_indexes(pg_server: PgServer) -> None:
    _, url = await pg_server.new_database()
    await migrate_postgres(url)
    unread = await pg_plan(url, UNREAD_COUNTS, "u_x")
    assert "Seq Scan" not in unread
    assert "messages_room_seq" in unread
    # On empty tables either index of mentions costs the same; both are range scans.
    assert "Index Scan using mentions_" in unread
    assert unread.count("(seq > ms.read_seq)") == 2
    search = await pg_plan(
        url,
        "SELECT msg.id FROM websearch_to_tsquery('simple', $1) q"
        " JOIN messages msg ON to_tsvector('simple'::regconfig, msg.body) @@ q"
        " WHERE msg.kind = 'message'",
        "hello",
    )
    assert "messages_search" in search


async def test_postgres_appends_find_duplicates_by_index_after_the_table_grew(
    pg_server: PgServer,
) -> None:
    """PL/pgSQL caches a generic plan per connection: the duplicate lookup planned on an
    empty table must still use the unique index once the table is large (it read the
    whole table on every append before migration 10)."""
    _, url = await pg_server.new_database()
    await migrate_postgres(url)

    async def seq_scans_of_appends_after_growth() -> int:
        conn = await asyncpg.connect(url)
        try:
            await conn.execute(
                "INSERT INTO users (id, username, display_name, created_at)"
                " VALUES ('u_1', 'ada', 'Ada', 0);"
                "INSERT INTO rooms (id, name, kind, created_by, created_at)"
                " VALUES ('r_1', 'general', 'public', 'u_1', 0)"
            )
            sent = 0

            async def append(count: int) -> None:
                nonlocal sent
                ids = [f"m_{sent + i}" for i in range(count)]
                sent += count
                await conn.fetch(
                    "SELECT * FROM chorus_append_messages($1, $2, $3, $4, $5, $6, $7)",
                    "r_1", ids, ["u_1"] * count, ["x"] * count, ids, [0] * count, [None] * count,
                )  # fmt: skip

            for _ in range(10):  # past the custom plans: the generic plan is cached now
                await append(1)
            for _ in range(50):
                await append(100)
            async with conn.transaction():
                for _ in range(20):
                    await append(5)
                return int(
                    await conn.fetchval(
                        "SELECT seq_scan FROM pg_stat_xact_user_tables WHERE relname = 'messages'"
                    )
                )
        finally:
            await conn.close()

    async with open_asyncio_bridge() as bridge:
        assert await bridge.run(seq_scans_of_appends_after_growth) == 0


async def users_and_room(conn: Any, users: list[str]) -> None:
    """`users` (ids, named after themselves) and room `r_1`, created by `u_0`, straight in
    the tables: the plans below are the statements', not the store's calls'."""
    await conn.executemany(
        "INSERT INTO users (id, username, display_name, created_at) VALUES ($1, $1, $1, 0)",
        [(user,) for user in users],
    )
    await conn.execute(
        "INSERT INTO rooms (id, name, kind, created_by, created_at)"
        " VALUES ('r_1', 'general', 'public', 'u_0', 0)"
    )


async def test_postgres_batch_standings_are_one_statement_planned_once(
    pg_server: PgServer,
) -> None:
    """asyncpg prepares statements; PostgreSQL re-plans one on every run while a plan for
    the actual arguments looks cheaper than its generic plan. The standings of a batch's
    senders are one statement for any number of senders, and keep one generic plan over
    batches of varying size (an array of ids, whose length the planner sees, was planned
    again on every batch: more PostgreSQL CPU than a statement per sender)."""
    _, url = await pg_server.new_database()
    await migrate_postgres(url)
    users = [f"u_{i}" for i in range(12)]

    async def run_batches() -> tuple[list[int], Any]:
        conn = await asyncpg.connect(url)
        try:
            await users_and_room(conn, users)
            statements = []
            for size in [1] * 5 + [*range(1, 13)] * 3:  # small batches first, then any size
                counting = _Counting(conn)
                found = await SeenStandings().read(counting, "r_1", users[:size])
                counted = counting.statements
                assert sorted(found) == sorted(users[:size])
                statements.append(counted)
            plans = await conn.fetchrow(  # the only other statement naming room_bans
                "SELECT generic_plans, custom_plans FROM pg_prepared_statements"
                " WHERE statement LIKE '%room_bans%' AND statement NOT LIKE '%pg_prepared%'"
            )
            return statements, plans
        finally:
            await conn.close()

    async with open_asyncio_bridge() as bridge:
        statements, plans = await bridge.run(run_batches)
    assert statements == [1] * 41
    assert plans["custom_plans"] <= 5  # PostgreSQL always plans the first five runs itself
    assert plans["generic_plans"] == 41 - plans["custom_plans"]


@pytest.mark.parametrize("known", [(), (0,)], ids=["version 2", "version 3"])
async def test_postgres_appends_of_one_message_keep_the_generic_plan(
    pg_server: PgServer, known: tuple[int, ...]
) -> None:
    """PL/pgSQL re-plans a statement on every call while a plan for the actual arguments
    looks cheaper than its generic plan: appends of one message (the arrays' length shows
    in the estimates) were planned again on every call, more CPU than running them. Since
    migration 14 the append's statements keep their generic plan (auto_explain shows each
    run's plan: a custom one has the batch's values in it); so do version 3's (migration
    15, with the caller's known seq), its read of the earlier events included."""
    _, url = await pg_server.new_database()
    await migrate_postgres(url)

    async def plans_of_appends() -> list[str]:
        conn = await asyncpg.connect(url)
        plans: list[str] = []
        conn.add_log_listener(lambda _conn, message: plans.append(message.message))
        try:
            await conn.execute(
                "INSERT INTO users (id, username, display_name, created_at)"
                " VALUES ('u_1', 'ada', 'Ada', 0);"
                "INSERT INTO rooms (id, name, kind, created_by, created_at)"
                " VALUES ('r_1', 'general', 'public', 'u_1', 0);"
                "LOAD 'auto_explain';"
                "SET auto_explain.log_min_duration = 0;"
                "SET auto_explain.log_nested_statements = on;"
                "SET auto_explain.log_verbose = on;"
                "SET auto_explain.log_level = notice"
            )
            arguments = ", ".join(f"${n}" for n in range(1, 8 + len(known)))
            for sent in range(10):
                await conn.fetch(
                    f"SELECT * FROM chorus_append_messages({arguments})",
                    "r_1", [f"m_{sent}"], ["u_1"], ["x"], [f"sent_{sent}"], [0], [None], *known,
                )  # fmt: skip
            return [plan for plan in plans if "public.messages" in plan]
        finally:
            await conn.close()

    async with open_asyncio_bridge() as bridge:
        plans = await bridge.run(plans_of_appends)
    assert len(plans) == (10 if not known else 19)  # version 3 reads seqs 1-9 back too
    assert not [plan for plan in plans if "sent_" in plan]  # no batch's values: generic
    earlier = [plan for plan in plans if "Index Scan using messages_room_seq" in plan]
    assert len(earlier) == len(known) * 9  # by the room's seqs
    assert not [plan for plan in earlier if "seq > '0'" in plan]  # the known seq: generic


async def test_postgres_checked_appends_keep_one_generic_plan(pg_server: PgServer) -> None:
    """The append that checks its senders' standings in the same statement (a batch of
    senders read before) is planned by PostgreSQL for its first five runs only, whatever
    the number of senders: their ids and fingerprints are one JSON object, whose size the
    planner does not see; then each is the single-user lookup's index scans."""
    _, url = await pg_server.new_database()
    await migrate_postgres(url)
    users = [f"u_{i}" for i in range(4)]

    async def run_batches() -> tuple[list[int], Any]:
        conn = await asyncpg.connect(url)
        try:
            await users_and_room(conn, users)
            rows = await SeenStandings().read(conn, "r_1", users)
            seqs = []
            for sent in range(20):
                senders = users[: 1 + sent % len(users)]
                batch = [
                    NewMessage(sender_id=user, body="x", client_id=f"{sent}-{user}", created_at=0)
                    for user in senders
                ]
                appended = await Append("r_1", batch).if_standings(
                    conn, fingerprints({user: rows[user] for user in senders})
                )
                assert appended is not None
                seqs += [result.message.seq for result in appended]
            plans = await conn.fetchrow(
                "SELECT generic_plans, custom_plans FROM pg_prepared_statements"
                " WHERE statement LIKE 'WITH unchanged%'"
            )
            return seqs, plans
        finally:
            await conn.close()

    async with open_asyncio_bridge() as bridge:
        seqs, plans = await bridge.run(run_batches)
    assert seqs == list(range(1, 51))  # 20 batches of 1-4 messages, all stored
    assert plans["custom_plans"] <= 5  # PostgreSQL always plans the first five runs itself
    assert plans["generic_plans"] == 20 - plans["custom_plans"]


class _Counting:
    """An asyncpg connection's `fetch`, counting the statements run through it."""

    def __init__(self, conn: Any) -> None:
        self._conn = conn
        self.statements = 0

    async def fetch(self, sql: str, *args: Any) -> Any:
        self.statements += 1
        return await self._conn.fetch(sql, *args)
