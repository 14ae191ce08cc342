"""What only the PostgreSQL backend does: migrations, several nodes, outages, cancellation."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import pytest
import structlog
import trio

from chorus.config import Settings
from chorus.node import open_node_store
from chorus.permissions import Who
from chorus.persistence import (
    Appended,
    Forbidden,
    PostgresStore,
    Role,
    RoomKind,
    SchemaTooNew,
    Standing,
    StoreError,
    StoreUnavailable,
    migrate_postgres,
    open_postgres_store,
)
from chorus.persistence._migrations import Migration, load_migrations
from chorus.persistence.postgres.bridge import AsyncioBridge, open_asyncio_bridge
from chorus.persistence.postgres.schema import migrate, schema_version
from chorus.persistence.postgres.warmup import warm_up
from tests.persistence.helpers import T0, make_room, make_user, texts
from tests.pgserver import PgServer
from tests.polling import until
from tests.ports import free_port

LATEST = load_migrations("postgres")[-1].version


@pytest.fixture
async def database(pg_server: PgServer) -> tuple[str, str]:
    """A fresh, empty (unmigrated) database: (name, URL)."""
    return await pg_server.new_database()


async def versions(server: PgServer, name: str) -> list[int]:
    out = await server.apsql("SELECT version FROM schema_migrations ORDER BY version", name)
    return [int(line) for line in out.split()]


@asynccontextmanager
async def raw_connection(url: str) -> AsyncIterator[tuple[AsyncioBridge, Any]]:
    """A plain asyncpg connection (another client of the database), used through a bridge."""
    async with open_asyncio_bridge() as bridge:
        conn = await bridge.run(asyncpg.connect, url)
        try:
            yield bridge, conn
        finally:
            await bridge.run(conn.close)


# -- migrations -----------------------------------------------------------------------


def log_statements(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The statements of every pool opened from now on, in the order run (each appended in
    its store's asyncio thread), from after each connection's warm-up if it has one."""
    statements: list[str] = []
    create_pool = asyncpg.create_pool

    def logged_pool(*args: Any, init: Any = None, **kwargs: Any) -> Any:
        async def log_queries(conn: Any) -> None:
            if init is not None:
                await init(conn)
            conn.add_query_logger(lambda logged: statements.append(logged.query))

        return create_pool(*args, init=log_queries, **kwargs)

    monkeypatch.setattr(asyncpg, "create_pool", logged_pool)
    return statements


def test_the_shipped_migrations_are_found_and_numbered_from_one() -> None:
    migrations = load_migrations("postgres")
    assert [m.version for m in migrations] == list(range(1, len(migrations) + 1))
    assert migrations[0].name == "initial"
    assert "CREATE TABLE messages" in migrations[0].sql


async def test_migrate_applies_every_migration_once_and_records_it(
    pg_server: PgServer, database: tuple[str, str]
) -> None:
    name, url = database
    assert await migrate_postgres(url) == list(range(1, LATEST + 1))
    assert await migrate_postgres(url) == []
    assert await versions(pg_server, name) == list(range(1, LATEST + 1))
    row = await pg_server.apsql(
        "SELECT name || '|' || applied_at FROM schema_migrations WHERE version = 1", name
    )
    migration_name, applied_at = row.split("|")
    assert migration_name == "initial"
    assert int(applied_at) > T0


async def test_nodes_migrating_at_once_apply_each_migration_once(
    pg_server: PgServer, database: tuple[str, str]
) -> None:
    name, url = database
    results: list[list[int]] = []

    async def one_node() -> None:
        results.append(await migrate_postgres(url))

    async with trio.open_nursery() as nursery:
        for _ in range(3):
            nursery.start_soon(one_node)

    # Each migration is its own transaction, so nodes may share the work.
    assert sorted(v for applied in results for v in applied) == list(range(1, LATEST + 1))
    assert await versions(pg_server, name) == list(range(1, LATEST + 1))


async def test_opening_a_database_migrates_it_and_reopening_applies_nothing(
    database: tuple[str, str],
) -> None:
    _, url = database
    async with open_postgres_store(url) as store:
        await make_user(store, "ada")
    assert await migrate_postgres(url) == []
    async with open_postgres_store(url) as store:
        assert await store.get_credentials("ADA") is not None


async def test_a_database_from_a_newer_chorus_is_refused_untouched(
    pg_server: PgServer, database: tuple[str, str]
) -> None:
    name, url = database
    await migrate_postgres(url)
    future = LATEST + 1
    await pg_server.apsql(
        f"INSERT INTO schema_migrations (version, name, applied_at) VALUES ({future}, 'future', 0)",
        name,
    )

    with pytest.raises(SchemaTooNew, match=f"version {future} is newer") as refused:
        async with open_postgres_store(url):
            pass
    assert (refused.value.found, refused.value.known) == (future, LATEST)
    assert "upgrade Chorus" in str(refused.value)
    with pytest.raises(SchemaTooNew):
        await migrate_postgres(url)
    assert await versions(pg_server, name) == [*range(1, LATEST + 1), future]


async def test_a_failing_migration_is_rolled_back_and_the_version_stays(
    database: tuple[str, str],
) -> None:
    _, url = database
    good = Migration(version=1, name="good", sql="CREATE TABLE a (x INTEGER);")
    bad = Migration(
        version=2, name="bad", sql="CREATE TABLE b (x INTEGER); INSERT INTO nowhere VALUES (1);"
    )
    async with raw_connection(url) as (bridge, conn):
        with pytest.raises(asyncpg.UndefinedTableError, match="nowhere"):
            await bridge.run(migrate, conn, [good, bad], database="test", now=T0)
        assert await bridge.run(schema_version, conn) == 1
        tables = {
            row[0]
            for row in await bridge.run(
                conn.fetch, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
            )
        }
    assert "a" in tables
    assert "b" not in tables


# -- several nodes on one database ----------------------------------------------------


async def test_two_nodes_appending_to_one_room_keep_seqs_contiguous_and_unique(
    database: tuple[str, str],
) -> None:
    _, url = database
    async with (
        open_postgres_store(url, max_size=4) as one,
        open_postgres_store(url, max_size=4) as two,
    ):
        users = [await make_user(one, f"user{i}") for i in range(4)]
        room = await make_room(one, users[0])
        nodes = [one, two]
        tasks, batches, size = 8, 15, 7

        async def sender(task: int) -> None:
            store = nodes[task % 2]
            user = users[task % len(users)]
            for batch in range(batches):
                ids = [f"t{task}-b{batch}-{i}" for i in range(size)]
                await store.append_messages(room.id, texts(user, *ids))
                if batch % 3 == 0:
                    # A retry reaching the other node, as after a lost acknowledgement.
                    retried = await nodes[(task + 1) % 2].append_messages(
                        room.id, texts(user, *ids)
                    )
                    assert all(r.duplicate for r in retried)

        async with trio.open_nursery() as nursery:
            for task in range(tasks):
                nursery.start_soon(sender, task)

        total = tasks * batches * size
        stored = await two.messages(room.id, after=0, limit=total + 10)
        assert [m.seq for m in stored] == list(range(1, total + 1))
        assert len({(m.sender_id, m.client_id) for m in stored}) == total
        assert await one.last_seq(room.id) == total


async def test_an_append_after_other_nodes_appends_reads_them_back_in_its_own_statement(
    database: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A node that knows a room up to seq 1 appends after another node stored 2-4: the
    standings read and the append (which returns 2-4 with the batch, migration 15) are
    the whole batch's statements; a separate read of 2-4 made it three. Fewer than
    `EARLIER_LIMIT` are asked for when fewer lie in between; all duplicates, none."""
    _, url = database
    statements = log_statements(monkeypatch)
    async with open_postgres_store(url) as here, open_postgres_store(url) as there:
        ada = await make_user(here, "ada")
        room = await make_room(here, ada)
        await here.append_messages(room.id, texts(ada, "here-1"))
        for name in ["there-2", "there-3", "there-4"]:
            await there.append_messages(room.id, texts(ada, name))

        def admit(user_id: str, found: object) -> Exception | None:
            return None

        async def logged() -> None:
            # asyncpg calls query loggers with `call_soon`, after the call may have
            # returned: a round trip through each bridge's loop runs those scheduled.
            for store in (here, there):
                await store._bridge.run(asyncio.sleep, 0)

        await logged()
        statements.clear()
        stored = await here.append_admitted(room.id, texts(ada, "here-5"), admit, T0, known=1)
        assert [r.message.seq for r in stored.results if not isinstance(r, Exception)] == [5]
        assert [(m.seq, m.client_id) for m in stored.earlier] == [
            (2, "there-2"),
            (3, "there-3"),
            (4, "there-4"),
        ]
        await logged()
        assert len(statements) == 2, statements
        assert "chorus_append_messages" in statements[1]
        retried = await here.append_admitted(room.id, texts(ada, "here-5"), admit, T0, known=1)
        assert retried.earlier == []  # nothing new was stored: nothing to read before it
        plain = await here.append_messages(room.id, texts(ada, "here-6"))
        assert [r.message.seq for r in plain] == [6]


async def test_a_batch_whose_senders_standings_were_read_before_is_one_checked_statement(
    database: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A node reads a sender's standing with its first batch (two statements) and then
    stores the next ones with one statement that checks it first. When another node
    changed it meanwhile, that statement stores nothing (no seq is taken) and the batch
    is judged again on a fresh read; a sender refused on a kept standing is read again
    too (only an append checks)."""
    _, url = database
    statements = log_statements(monkeypatch)

    def kind(sql: str) -> str:
        for word, name in [("unchanged", "checked"), ("json_array", "read"), ("append", "append")]:
            if word in sql:
                return name
        return sql

    async with open_postgres_store(url) as here, open_postgres_store(url) as there:
        ada, bob = await make_user(here, "ada"), await make_user(here, "bob")
        room = await make_room(here, ada)
        await here.add_member(room.id, bob.id, Role.MEMBER, T0)

        def admit(user_id: str, found: Standing | None) -> Exception | None:
            banned = found is None or found.who is Who.BANNED
            return Forbidden("banned") if banned else None

        async def post(client_id: str) -> tuple[list[str], bool]:
            """The statements of one batch of bob's, and whether it was stored."""
            for store in (here, there):  # run asyncpg's query loggers scheduled so far
                await store._bridge.run(asyncio.sleep, 0)
            statements.clear()
            done = await here.append_admitted(room.id, texts(bob, client_id), admit, T0)
            await here._bridge.run(asyncio.sleep, 0)
            return [kind(sql) for sql in statements], isinstance(done.results[0], Appended)

        for warm_up in ["a1", "a2"]:  # asyncpg learns the statements' types first
            await here.append_admitted(room.id, texts(ada, warm_up), admit, T0)
        assert await post("b1") == (["read", "append"], True)
        assert await post("b2") == (["checked"], True)
        assert await post("b3") == (["checked"], True)
        await there.ban(room.id, bob.id, ada.id, "spam", T0)
        assert await post("b4") == (["checked", "read"], False)
        assert await here.last_seq(room.id) == 5  # the checked statement took no seq
        assert await post("b5") == (["read"], False)  # refused on the kept row: read again
        await there.unban(room.id, bob.id)
        assert await post("b6") == (["read", "append"], True)
        assert await post("b7") == (["checked"], True)
        stored = await there.messages(room.id, after=2, limit=10)
        assert [(m.seq, m.client_id) for m in stored] == [
            (3, "b1"),
            (4, "b2"),
            (5, "b3"),
            (6, "b6"),
            (7, "b7"),
        ]


async def test_a_new_connection_stores_a_batch_before_its_first_and_keeps_none_of_it(
    database: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each pooled connection runs a batch's statements once when it opens (`warm_up`), so
    a node's first real batch on it is its own two statements: asyncpg's introspection
    of their types is done, and PostgreSQL compiled the function before any room's lock
    was taken. Nothing the warm-up wrote is left: no user, room, membership or message."""
    _, url = database
    statements = log_statements(monkeypatch)
    async with open_postgres_store(url, min_size=3, max_size=3, warm_up=True) as store:
        ada = await make_user(store, "ada")
        room = await make_room(store, ada)
        await store._bridge.run(asyncio.sleep, 0)  # run asyncpg's query loggers scheduled
        statements.clear()
        stored = await store.append_admitted(room.id, texts(ada, "a1"), lambda *_: None, T0)
        assert isinstance(stored.results[0], Appended)
        await store._bridge.run(asyncio.sleep, 0)
        assert len(statements) == 2, statements  # not asyncpg's pg_type introspection
        assert "json_array_elements_text" in statements[0]
        assert "chorus_append_messages" in statements[1]
        statements.clear()  # the next batch of the same sender: the checked statement
        await store.append_admitted(room.id, texts(ada, "a2"), lambda *_: None, T0)
        await store._bridge.run(asyncio.sleep, 0)
        assert len(statements) == 1, statements
        assert "unchanged" in statements[0]
    async with raw_connection(url) as (bridge, conn):
        for table, made in [("users", 1), ("rooms", 1), ("memberships", 1), ("messages", 2)]:
            assert await bridge.run(conn.fetchval, f"SELECT count(*) FROM {table}") == made


async def test_a_warm_up_the_database_refuses_is_logged_and_leaves_the_connection_usable(
    database: tuple[str, str],
) -> None:
    _, url = database
    async with open_postgres_store(url):  # migrated
        pass
    async with raw_connection(url) as (bridge, conn):
        await bridge.run(conn.execute, "SET default_transaction_read_only = on")
        with structlog.testing.capture_logs() as logs:
            await bridge.run(warm_up, conn)
        assert not conn.is_in_transaction()
        assert await bridge.run(conn.fetchval, "SELECT count(*) FROM users") == 0
    [failed] = [log for log in logs if log["event"] == "store.warm_up_failed"]
    assert "read-only" in failed["error"]


async def test_a_serving_node_opens_its_whole_pool_at_start_and_a_tool_one_connection(
    pg_server: PgServer, database: tuple[str, str]
) -> None:
    """Connections opened on demand, each warmed up while a batch waited for it, made a
    later busy second of a cluster its slowest (docs/benchmarks.md, session 14); a
    command-line tool (`chorus admin`) needs one connection and no warm-up."""
    name, url = database
    settings = Settings(database_url=url, database_pool_size=3)

    async def connections() -> int:
        sql = f"SELECT count(*) FROM pg_stat_activity WHERE datname = '{name}'"
        return int(await pg_server.apsql(sql, name)) - 1  # apsql's own

    async with open_node_store(settings, serving=True):
        assert await connections() == 3
    async with open_node_store(settings):
        assert await connections() == 1


async def test_one_client_id_sent_to_two_rooms_on_two_nodes_at_once_is_stored_once(
    database: tuple[str, str],
) -> None:
    _, url = database
    async with open_postgres_store(url) as one, open_postgres_store(url) as two:
        ada = await make_user(one, "ada")
        rooms = [await make_room(one, ada, "one"), await make_room(one, ada, "two")]
        rounds = 30
        outcomes: dict[str, list[tuple[str, bool]]] = {}

        async def send(store: PostgresStore, room_id: str) -> None:
            for i in range(rounds):
                [appended] = await store.append_messages(room_id, texts(ada, f"c{i}"))
                outcomes.setdefault(f"c{i}", []).append(
                    (appended.message.room_id, appended.duplicate)
                )

        async with trio.open_nursery() as nursery:
            nursery.start_soon(send, one, rooms[0].id)
            nursery.start_soon(send, two, rooms[1].id)

        for client_id, results in outcomes.items():
            # Exactly one send stored it; the other got that original back.
            assert sorted(duplicate for _, duplicate in results) == [False, True], client_id
            assert results[0][0] == results[1][0]
        counts = [await one.last_seq(room.id) for room in rooms]
        assert sum(counts) == rounds
        for room, count in zip(rooms, counts, strict=True):
            stored = await two.messages(room.id, after=0, limit=100)
            assert [m.seq for m in stored] == list(range(1, count + 1))


# -- outages --------------------------------------------------------------------------


async def test_an_unreachable_database_is_unavailable_with_a_readable_message() -> None:
    url = f"postgresql://chorus:secret@127.0.0.1:{free_port()}/chorus"
    started = time.monotonic()
    with pytest.raises(StoreUnavailable, match="cannot connect") as failed:
        async with open_postgres_store(url):
            pass
    assert time.monotonic() - started < 5
    assert "secret" not in str(failed.value)
    assert "chorus:***@127.0.0.1" in str(failed.value)
    with pytest.raises(StoreUnavailable):
        await migrate_postgres(url)


async def test_a_stopped_database_makes_calls_unavailable_then_recovers_by_itself(
    pg_server: PgServer, database: tuple[str, str]
) -> None:
    _, url = database
    async with open_postgres_store(url, max_size=3) as store:
        ada = await make_user(store, "ada")
        room = await make_room(store, ada)
        await store.append_messages(room.id, texts(ada, "before"))

        await trio.to_thread.run_sync(pg_server.stop)
        try:
            for attempt in range(5):
                with trio.fail_after(10):  # bounded: refused connections fail fast
                    with pytest.raises(StoreUnavailable) as down:
                        await store.append_messages(room.id, texts(ada, f"down{attempt}"))
                assert not isinstance(down.value.__cause__, StoreUnavailable)
                with trio.fail_after(10), pytest.raises(StoreUnavailable):
                    await store.get_room(room.id)
        finally:
            await trio.to_thread.run_sync(pg_server.start)

        # The same store, not reopened: the pool reconnects on demand.
        [after] = await store.append_messages(room.id, texts(ada, "after"))
        assert (after.message.seq, after.duplicate) == (2, False)
        stored = await store.messages(room.id, limit=10)
        assert [m.client_id for m in stored] == ["before", "after"]


async def test_a_closed_store_is_unavailable(database: tuple[str, str]) -> None:
    _, url = database
    async with open_postgres_store(url) as store:
        await store.aclose()
        with pytest.raises(StoreUnavailable, match="closed"):
            await store.get_user("u_doesnotexist0000")
        await store.aclose()
    with pytest.raises(StoreUnavailable, match="closed"):
        await store.append_messages("r_doesnotexist0000", [])


# -- cancellation ---------------------------------------------------------------------


async def test_a_call_cancelled_in_flight_stores_nothing_and_leaves_the_pool_usable(
    pg_server: PgServer, database: tuple[str, str]
) -> None:
    name, url = database
    async with open_postgres_store(url, min_size=1, max_size=2) as store:
        ada = await make_user(store, "ada")
        room = await make_room(store, ada)
        async with raw_connection(url) as (bridge, holder):
            # Another client holds the room's row lock: the append waits for it.
            transaction = holder.transaction()
            await bridge.run(transaction.start)
            await bridge.run(
                holder.execute, "SELECT 1 FROM rooms WHERE id = $1 FOR UPDATE", room.id
            )
            with trio.move_on_after(0.5) as waited:
                await store.append_messages(room.id, texts(ada, "cancelled"))
            assert waited.cancelled_caught
            # The cancelled statement was stopped and its transaction rolled back:
            # no session of the store is waiting or left inside a transaction.
            states = await pg_server.apsql(
                "SELECT state FROM pg_stat_activity WHERE datname = current_database()"
                " AND pid <> pg_backend_pid() AND state <> 'idle'",
                name,
            )
            assert states.splitlines() == ["idle in transaction"]  # the holder only
            await bridge.run(transaction.rollback)

        # Every pooled connection is still usable, many times over.
        for i in range(10):
            [appended] = await store.append_messages(room.id, texts(ada, f"c{i}"))
            assert (appended.message.seq, appended.duplicate) == (i + 1, False)
        assert [m.client_id for m in await store.messages(room.id, limit=20)] == [
            f"c{i}" for i in range(10)
        ]


async def test_cancelling_many_calls_at_once_leaves_the_pool_usable(
    database: tuple[str, str],
) -> None:
    _, url = database
    async with open_postgres_store(url, max_size=3) as store:
        ada = await make_user(store, "ada")
        room = await make_room(store, ada)
        with trio.move_on_after(0.05):
            async with trio.open_nursery() as nursery:
                for task in range(20):
                    for_task = [f"t{task}-{i}" for i in range(100)]
                    nursery.start_soon(store.append_messages, room.id, texts(ada, *for_task))
        # Whatever was stored before the cancellation is contiguous; the rest is not.
        last = await store.last_seq(room.id)
        stored = await store.messages(room.id, after=0, limit=10_000)
        assert [m.seq for m in stored] == list(range(1, last + 1))
        [appended] = await store.append_messages(room.id, texts(ada, "after"))
        assert appended.message.seq == last + 1


async def test_a_transaction_cancelled_in_flight_is_rolled_back_and_the_pool_stays_usable(
    pg_server: PgServer, database: tuple[str, str]
) -> None:
    name, url = database
    async with open_postgres_store(url, min_size=1, max_size=1) as store:
        ada = await make_user(store, "ada")
        room = await make_room(store, ada)
        await store.append_messages(room.id, texts(ada, "c1", "c2"))
        async with raw_connection(url) as (bridge, holder):
            # The marker update runs in an explicit transaction (BEGIN already
            # sent) and waits for the membership row another client locked.
            transaction = holder.transaction()
            await bridge.run(transaction.start)
            await bridge.run(
                holder.execute, "SELECT 1 FROM memberships WHERE room_id = $1 FOR UPDATE", room.id
            )
            with trio.move_on_after(0.5) as waited:
                await store.advance_read_seq(room.id, ada.id, 2)
            assert waited.cancelled_caught
            states = await pg_server.apsql(
                "SELECT state FROM pg_stat_activity WHERE datname = current_database()"
                " AND pid <> pg_backend_pid() AND state <> 'idle'",
                name,
            )
            assert states.splitlines() == ["idle in transaction"]  # the holder only
            await bridge.run(transaction.rollback)
        # The one pooled connection works, outside any leftover transaction.
        assert await store.advance_read_seq(room.id, ada.id, 1) == 1
        assert await store.advance_read_seq(room.id, ada.id, 2) == 2


# -- connections ----------------------------------------------------------------------


async def test_calls_one_after_another_keep_one_connection_out_of_the_pool(
    database: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # asyncpg's acquire and release cost timers and a task per call: a connection is
    # taken once and kept while it stays clean.
    _, url = database
    acquired = 0
    acquire = asyncpg.Pool.acquire

    def counting(self: asyncpg.Pool, **kwargs: Any) -> Any:
        nonlocal acquired
        acquired += 1
        return acquire(self, **kwargs)

    async with open_postgres_store(url, max_size=3) as store:
        ada = await make_user(store, "ada")
        room = await make_room(store, ada)
        monkeypatch.setattr(asyncpg.Pool, "acquire", counting)
        for i in range(20):
            await store.append_messages(room.id, texts(ada, f"c{i}"))
            assert await store.last_seq(room.id) == i + 1
        assert acquired == 0
        # An error gives its connection back to the pool (which resets it); the next
        # call takes one from there again.
        with pytest.raises(StoreError):
            await store.append_messages("r_doesnotexist0000", texts(ada, "lost"))
        assert await store.last_seq(room.id) == 20
        assert acquired == 1


async def test_a_kept_connection_lost_while_idle_is_replaced(
    database: tuple[str, str],
) -> None:
    # asyncpg detaches the proxy of a connection lost while taken (its methods raise
    # InterfaceError); a kept one must count as lost, not break the call and its place.
    _, url = database
    async with open_postgres_store(url, max_size=1, command_timeout=2.0) as store:
        ada = await make_user(store, "ada")
        room = await make_room(store, ada)
        await store.append_messages(room.id, texts(ada, "before"))
        async with raw_connection(url) as (bridge, conn):
            terminated = await bridge.run(
                conn.fetchval,
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()",
            )
        assert terminated == 1

        async def answers() -> bool:
            try:
                return await store.last_seq(room.id) == 1
            except StoreUnavailable:  # the loss not yet seen: the call met it itself
                return False

        await until(answers, timeout=10)
        for i in range(3):
            await store.append_messages(room.id, texts(ada, f"after{i}"))
        assert await store.last_seq(room.id) == 4


async def test_more_callers_than_connections_wait_their_turn_and_all_succeed(
    pg_server: PgServer, database: tuple[str, str]
) -> None:
    name, url = database
    async with open_postgres_store(url, min_size=1, max_size=2) as store:
        ada = await make_user(store, "ada")
        room = await make_room(store, ada)
        async with trio.open_nursery() as nursery:
            for task in range(30):
                nursery.start_soon(store.append_messages, room.id, texts(ada, f"t{task}"))
        assert await store.last_seq(room.id) == 30
        sessions = await pg_server.apsql(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND pid <> pg_backend_pid()",
            name,
        )
        assert int(sessions) <= 2


async def test_a_connection_kept_unused_too_long_goes_back_to_the_pool(
    database: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, url = database
    monkeypatch.setattr("chorus.persistence.postgres.store.IDLE_SECONDS", 0.0)
    async with open_postgres_store(url, min_size=1, max_size=3) as store:
        ada = await make_user(store, "ada")
        room = await make_room(store, ada)
        async with trio.open_nursery() as nursery:  # several connections kept at once
            for _ in range(6):
                nursery.start_soon(store.last_seq, room.id)
        pool: Any = store._pool
        # The next call keeps the one it took and gives back every other (unused since).
        assert await store.last_seq(room.id) == 0
        assert pool.get_size() - pool.get_idle_size() == 1


async def test_a_warmed_pool_keeps_its_idle_connections_open(
    database: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Connections given back unused are closed by asyncpg after a while (above `min_size`;
    asyncpg 0.30 and 0.31 close those below it too), unless the pool is warmed: then they
    stay, warm, for the next busy moment, whatever asyncpg's version."""
    _, url = database
    monkeypatch.setattr("chorus.persistence.postgres.store.IDLE_SECONDS", 0.05)
    async with (
        open_postgres_store(url, min_size=3, max_size=3, warm_up=True) as warm,
        open_postgres_store(url, min_size=1, max_size=3) as cold,
    ):
        ada = await make_user(warm, "ada")
        room = await make_room(warm, ada)
        warm_pool: Any = warm._pool
        cold_pool: Any = cold._pool
        for store in (warm, cold):
            async with trio.open_nursery() as nursery:  # every connection taken at once
                for _ in range(6):
                    nursery.start_soon(store.last_seq, room.id)

        async def warm_gave_two_back() -> bool:
            # A call keeps the one it took and gives back those unused for IDLE_SECONDS.
            await warm.last_seq(room.id)
            return bool(warm_pool.get_idle_size() == 2)

        async def cold_closed_two() -> bool:
            await cold.last_seq(room.id)
            return bool(cold_pool.get_size() == 1)

        await until(warm_gave_two_back)
        # Given back later than the warm pool's, and then closed by asyncpg: the warm
        # pool's would have been closed by now if it closed idle connections too.
        await until(cold_closed_two)
        assert warm_pool.get_size() == 3


async def test_a_call_longer_than_the_command_timeout_is_unavailable_and_cleaned_up(
    pg_server: PgServer, database: tuple[str, str]
) -> None:
    name, url = database
    async with open_postgres_store(url, max_size=1, command_timeout=0.5) as store:
        ada = await make_user(store, "ada")
        room = await make_room(store, ada)
        async with raw_connection(url) as (bridge, holder):
            # Another client holds the room's row lock: the append waits for it.
            transaction = holder.transaction()
            await bridge.run(transaction.start)
            await bridge.run(
                holder.execute, "SELECT 1 FROM rooms WHERE id = $1 FOR UPDATE", room.id
            )
            started = trio.current_time()
            with trio.fail_after(10), pytest.raises(StoreUnavailable, match="timed out"):
                await store.append_messages(room.id, texts(ada, "late"))
            assert 0.5 <= trio.current_time() - started < 3
            states = await pg_server.apsql(
                "SELECT state FROM pg_stat_activity WHERE datname = current_database()"
                " AND pid <> pg_backend_pid() AND state <> 'idle'",
                name,
            )
            assert states.splitlines() == ["idle in transaction"]  # the holder only
            await bridge.run(transaction.rollback)
        [appended] = await store.append_messages(room.id, texts(ada, "after"))
        assert (appended.message.seq, appended.duplicate) == (1, False)


async def test_statements_arm_no_timer_each(
    database: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # asyncpg's command_timeout armed and cancelled a timer per statement; one watchdog
    # timer, armed at most once per period while calls run, bounds them instead.
    _, url = database
    armed = 0
    call_at = asyncio.BaseEventLoop.call_at

    def counting(self: asyncio.BaseEventLoop, *args: Any, **kwargs: Any) -> Any:
        nonlocal armed
        armed += 1
        return call_at(self, *args, **kwargs)

    async with open_postgres_store(url, max_size=1) as store:
        ada = await make_user(store, "ada")
        room = await make_room(store, ada)
        # Prepared once (asyncpg arms a timer per statement it caches, not per run).
        await store.append_messages(room.id, texts(ada, "first"))
        await store.last_seq(room.id)
        monkeypatch.setattr(asyncio.BaseEventLoop, "call_at", counting)
        started = trio.current_time()
        for i in range(20):
            await store.append_messages(room.id, texts(ada, f"c{i}"))
            await store.last_seq(room.id)
        # 40 calls: the watchdog's period is a second here.
        assert armed <= 2 + trio.current_time() - started < 20


async def test_closing_waits_for_the_calls_in_progress_and_then_completes(
    database: tuple[str, str],
) -> None:
    _, url = database
    async with open_postgres_store(url, max_size=2) as store:
        ada = await make_user(store, "ada")
        room = await make_room(store, ada)
        async with raw_connection(url) as (bridge, holder):
            transaction = holder.transaction()
            await bridge.run(transaction.start)
            await bridge.run(
                holder.execute, "SELECT 1 FROM rooms WHERE id = $1 FOR UPDATE", room.id
            )
            results: list[int] = []

            async def append() -> None:
                [appended] = await store.append_messages(room.id, texts(ada, "slow"))
                results.append(appended.message.seq)

            closed = trio.Event()

            async def close() -> None:
                await store.aclose()
                closed.set()

            with trio.fail_after(10):
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(append)
                    # The append is waiting for the row lock on its connection.
                    await until(lambda: _waiting_for_a_lock(bridge, holder))
                    nursery.start_soon(close)
                    await bridge.run(transaction.rollback)
                    await closed.wait()
            assert results == [1]


async def _waiting_for_a_lock(bridge: AsyncioBridge, holder: Any) -> bool:
    found = await bridge.run(
        holder.fetchval,
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
        " AND wait_event_type = 'Lock'",
    )
    return bool(found)


# -- odds and ends --------------------------------------------------------------------


async def test_a_nul_character_is_refused_with_a_store_error(database: tuple[str, str]) -> None:
    # PostgreSQL text cannot hold U+0000; a StoreError (not a crash) lets the room refuse it.
    _, url = database
    async with open_postgres_store(url) as store:
        ada = await make_user(store, "ada")
        room = await store.create_room("general", RoomKind.PUBLIC, ada.id, T0)
        batch = texts(ada, "c1")
        nul = [type(batch[0])(sender_id=ada.id, body="a\x00b", client_id="c1", created_at=T0)]
        with pytest.raises(StoreError, match="0x00") as refused:
            await store.append_messages(room.id, nul)
        assert not isinstance(refused.value, StoreUnavailable)
        assert await store.last_seq(room.id) == 0


async def test_the_node_opens_postgres_for_a_postgres_url(database: tuple[str, str]) -> None:
    _, url = database
    for scheme_url in (url, url.replace("postgresql://", "postgres://", 1)):
        async with open_node_store(Settings(database_url=scheme_url)) as store:
            assert isinstance(store, PostgresStore)
