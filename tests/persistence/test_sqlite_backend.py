"""What only the SQLite backend does: the file, its pragmas, migrations, locking, reopening."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

import attrs
import pytest

from chorus.persistence import (
    Appended,
    NotFound,
    RefreshRotated,
    Role,
    RoomKind,
    SchemaTooNew,
    Standing,
    StoreUnavailable,
    migrate_sqlite,
    open_sqlite_store,
)
from chorus.persistence._migrations import Migration, load_migrations
from chorus.persistence.sqlite.schema import connect, migrate, schema_version, split_statements
from tests.persistence.helpers import T0, make_room, make_user, texts

LATEST = load_migrations("sqlite")[-1].version


@contextmanager
def raw(path: Path) -> Iterator[sqlite3.Connection]:
    """A plain sqlite3 connection to the file, as another process would have."""
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        yield conn


def versions(path: Path) -> list[int]:
    with raw(path) as conn:
        return [row[0] for row in conn.execute("SELECT version FROM schema_migrations")]


# -- the file -------------------------------------------------------------------------


async def test_open_creates_the_file_and_its_folder_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "data" / "chorus.db"
    async with open_sqlite_store(path):
        pass
    assert path.exists()
    with raw(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)


async def test_a_path_that_cannot_be_opened_is_unavailable(tmp_path: Path) -> None:
    with pytest.raises(StoreUnavailable):
        async with open_sqlite_store(tmp_path):
            pass


async def test_a_closed_store_is_unavailable(tmp_path: Path) -> None:
    async with open_sqlite_store(tmp_path / "chorus.db") as store:
        await store.aclose()
        with pytest.raises(StoreUnavailable, match="closed"):
            await store.get_user("u_doesnotexist0000")
        await store.aclose()
    with pytest.raises(StoreUnavailable, match="closed"):
        await store.append_messages("r_doesnotexist0000", [])


async def test_reopening_keeps_accounts_sessions_rooms_and_history(tmp_path: Path) -> None:
    path = tmp_path / "chorus.db"
    async with open_sqlite_store(path) as store:
        ada = await store.create_user("ada", "Ada", "hash", T0)
        bob = await store.create_user("bob", "Bob", None, T0)
        session = await store.create_session(ada.id, "t1", T0, T0 + 10_000)
        room = await store.create_room("general", RoomKind.PUBLIC, ada.id, T0)
        await store.add_member(room.id, bob.id, Role.MODERATOR, T0)
        dm, _ = await store.direct_room(ada.id, bob.id, T0)
        first = await store.append_messages(room.id, texts(ada, "c1", "c2"))
        await store.advance_read_seq(room.id, bob.id, 1)

    async with open_sqlite_store(path) as store:
        assert await store.get_credentials("ada") == (ada, "hash")
        assert await store.get_user(bob.id) == bob
        rotated = await store.rotate_refresh("t1", "t2", T0 + 1)
        assert rotated == RefreshRotated(session=attrs.evolve(session, last_seen_at=T0 + 1))
        assert {r.id for r, _ in await store.rooms_of(bob.id)} == {room.id, dm.id}
        assert await store.direct_room(bob.id, ada.id, T0) == (dm, False)
        membership = await store.get_membership(room.id, bob.id)
        assert membership is not None
        assert (membership.role, membership.read_seq) == (Role.MODERATOR, 1)
        assert await store.messages(room.id, limit=10) == [a.message for a in first]
        # Seqs continue and client ids stay idempotent across the restart.
        again = await store.append_messages(room.id, texts(ada, "c2", "c3"))
        assert [(a.message.seq, a.duplicate) for a in again] == [(2, True), (3, False)]


# -- locking --------------------------------------------------------------------------


async def test_a_write_locked_out_past_the_busy_timeout_is_unavailable_and_stores_nothing(
    tmp_path: Path,
) -> None:
    path = tmp_path / "chorus.db"
    async with open_sqlite_store(path, busy_timeout=0.05) as store:
        ada = await store.create_user("ada", "Ada", None, T0)
        room = await store.create_room("general", RoomKind.PUBLIC, ada.id, T0)
        with raw(path) as other:
            other.execute("BEGIN IMMEDIATE")
            with pytest.raises(StoreUnavailable, match="locked"):
                await store.append_messages(room.id, texts(ada, "c1"))
            # WAL: readers are not blocked by the other writer.
            assert await store.last_seq(room.id) == 0
            other.execute("ROLLBACK")
        [appended] = await store.append_messages(room.id, texts(ada, "c1"))
        assert (appended.message.seq, appended.duplicate) == (1, False)


# -- migrations -----------------------------------------------------------------------


async def test_a_lone_append_reads_once_and_writes_twice_without_returning(
    tmp_path: Path,
) -> None:
    # The INSERT checks the client id itself (ON CONFLICT DO NOTHING), its seq follows the
    # last_seq read first (with the standings, for `append_admitted`), and no statement has
    # a RETURNING (which costs SQLite about a statement). A retry reads its original back.
    def admit(user_id: str, found: Standing | None) -> Exception | None:
        return None if found is not None else NotFound(user_id)

    async with open_sqlite_store(tmp_path / "chorus.db") as store:
        ada = await make_user(store, "ada")
        room = await make_room(store, ada)
        statements: list[str] = []
        assert store._conn is not None
        store._conn.set_trace_callback(statements.append)
        try:
            [first] = await store.append_messages(room.id, texts(ada, "c1"))
            plain, statements[:] = list(statements), []
            admitted = await store.append_admitted(room.id, texts(ada, "c2"), admit, T0)
            with_standings, statements[:] = list(statements), []
            [retry] = await store.append_messages(room.id, texts(ada, "c1"))
        finally:
            store._conn.set_trace_callback(None)
        for lone in (plain, with_standings):
            assert [statement.split()[0] for statement in lone] == [
                *("BEGIN", "SELECT", "INSERT", "UPDATE", "COMMIT")
            ]
            assert not [statement for statement in lone if "RETURNING" in statement]
        assert "FROM users u JOIN rooms r" in with_standings[1]  # the standings' read
        assert (first.message.seq, first.duplicate) == (1, False)
        [second] = admitted.results
        assert isinstance(second, Appended)
        assert (second.message.seq, second.duplicate) == (2, False)
        assert (retry.message, retry.duplicate) == (first.message, True)
        assert await store.last_seq(room.id) == 2


def test_the_shipped_migrations_are_found_and_numbered_from_one() -> None:
    migrations = load_migrations("sqlite")
    assert [m.version for m in migrations] == list(range(1, len(migrations) + 1))
    assert migrations[0].name == "initial"
    assert "CREATE TABLE messages" in migrations[0].sql


async def test_migrate_applies_every_migration_once_and_records_it(tmp_path: Path) -> None:
    path = tmp_path / "chorus.db"
    assert await migrate_sqlite(path) == list(range(1, LATEST + 1))
    assert await migrate_sqlite(path) == []
    assert versions(path) == list(range(1, LATEST + 1))
    with raw(path) as conn:
        name, applied_at = conn.execute(
            "SELECT name, applied_at FROM schema_migrations WHERE version = 1"
        ).fetchone()
    assert name == "initial"
    assert applied_at > T0


async def test_opening_a_migrated_database_applies_nothing(tmp_path: Path) -> None:
    path = tmp_path / "chorus.db"
    async with open_sqlite_store(path):
        pass
    assert await migrate_sqlite(path) == []


async def test_a_database_from_a_newer_chorus_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "chorus.db"
    await migrate_sqlite(path)
    future = LATEST + 1
    with raw(path) as conn:
        conn.execute(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, 'future', 0)",
            (future,),
        )

    with pytest.raises(SchemaTooNew, match=f"version {future} is newer") as refused:
        async with open_sqlite_store(path):
            pass
    assert (refused.value.found, refused.value.known) == (future, LATEST)
    assert "upgrade Chorus" in str(refused.value)
    with pytest.raises(SchemaTooNew):
        await migrate_sqlite(path)
    assert versions(path) == [*range(1, LATEST + 1), future]


def test_a_failing_migration_is_rolled_back_and_the_version_stays(tmp_path: Path) -> None:
    good = Migration(version=1, name="good", sql="CREATE TABLE a (x INTEGER);")
    bad = Migration(
        version=2, name="bad", sql="CREATE TABLE b (x INTEGER); INSERT INTO nowhere VALUES (1);"
    )
    with closing(connect(tmp_path / "t.db", busy_timeout=1, synchronous="FULL")) as conn:
        with pytest.raises(sqlite3.OperationalError, match="nowhere"):
            migrate(conn, [good, bad], database="t.db", now=T0)
        assert schema_version(conn) == 1
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
        assert "a" in tables
        assert "b" not in tables


def test_split_statements_respects_strings_comments_and_trigger_bodies() -> None:
    script = """
        -- a comment; with a semicolon
        CREATE TABLE t (x TEXT);
        INSERT INTO t VALUES ('a;b');
        CREATE TRIGGER t_ins AFTER INSERT ON t BEGIN
            SELECT 1;
            SELECT 2;
        END;
        -- trailing comment
    """
    statements = split_statements(script)
    assert len(statements) == 3
    assert statements[1].endswith("INSERT INTO t VALUES ('a;b');")
    assert statements[2].startswith("CREATE TRIGGER")
    assert statements[2].endswith("END;")


def test_split_statements_refuses_a_script_ending_inside_a_statement() -> None:
    with pytest.raises(ValueError, match="ends inside a statement"):
        split_statements("CREATE TABLE t (x TEXT); INSERT INTO t VALUES ('unterminated")


# -- the lazily built search index ----------------------------------------------------


async def test_search_indexes_what_was_appended_since_the_last_search(tmp_path: Path) -> None:
    path = tmp_path / "chorus.db"
    async with open_sqlite_store(path) as store:
        ada = await store.create_user("ada", "Ada", None, T0)
        room = await store.create_room("general", RoomKind.PUBLIC, ada.id, T0)
        await store.append_messages(room.id, texts(ada, "c1"))
        with raw(path) as conn:
            # Appends leave the index alone…
            assert conn.execute("SELECT indexed_rowid FROM search_state").fetchone() == (0,)
        assert len(await store.search(ada.id, "c1", limit=5)) == 1
        await store.append_messages(room.id, texts(ada, "c2"))
        # …and a search catches up first.
        assert len(await store.search(ada.id, "body", limit=5)) == 2


async def test_rowids_reused_after_a_room_is_removed_are_indexed(tmp_path: Path) -> None:
    path = tmp_path / "chorus.db"
    async with open_sqlite_store(path) as store:
        ada = await store.create_user("ada", "Ada", None, T0)
        old = await store.create_room("old", RoomKind.PUBLIC, ada.id, T0)
        new = await store.create_room("new", RoomKind.PUBLIC, ada.id, T0)
        await store.append_messages(new.id, texts(ada, "n1"))
        await store.append_messages(old.id, texts(ada, "o1", "o2", "o3"))
        assert len(await store.search(ada.id, "body", limit=10)) == 4
    with raw(path) as conn:
        # No Store method removes rooms; an operator might, by hand.
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("DELETE FROM rooms WHERE id = ?", (old.id,))
    async with open_sqlite_store(path) as store:
        await store.append_messages(new.id, texts(ada, "n2", "n3"))
        found = await store.search(ada.id, "body", limit=10)
        assert sorted(hit.message.client_id for hit in found) == ["n1", "n2", "n3"]


async def test_migration_6_keeps_the_deadline_of_sessions_opened_before_it(tmp_path: Path) -> None:
    path = tmp_path / "chorus.db"
    before = [m for m in load_migrations("sqlite") if m.version < 6]
    with closing(connect(path, busy_timeout=1, synchronous="FULL")) as conn:
        migrate(conn, before, database="chorus.db", now=T0)
        conn.execute(
            "INSERT INTO users (id, username, display_name, created_at) VALUES (?, ?, ?, ?)",
            ("u_ada", "ada", "Ada", T0),
        )
        conn.execute(
            "INSERT INTO sessions (id, user_id, created_at, expires_at) VALUES (?, ?, ?, ?)",
            ("s_old", "u_ada", T0, T0 + 1000),
        )
    assert 6 in await migrate_sqlite(path)
    async with open_sqlite_store(path) as store:
        session = await store.get_session("s_old")
        assert session is not None
        assert (session.expires_at, session.max_expires_at) == (T0 + 1000, T0 + 1000)
        assert (session.last_seen_at, session.user_agent, session.address) == (T0, "", "")
        assert session.is_live(T0 + 999)
