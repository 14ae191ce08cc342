"""Group commit on SQLite: concurrent writes share transactions but fail alone."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import trio

from chorus.persistence import NewMessage, NotFound, open_sqlite_store
from tests.persistence.helpers import T0, make_room, make_user


async def test_concurrent_writes_share_commits_and_a_failing_one_fails_alone(
    tmp_path: Path,
) -> None:
    async with open_sqlite_store(tmp_path / "chorus.db") as store:
        ada = await make_user(store, "ada")
        rooms = [await make_room(store, ada, f"room{n}") for n in range(20)]
        statements: list[str] = []
        assert store._conn is not None
        store._conn.set_trace_callback(statements.append)
        failures: list[BaseException] = []
        stored: list[int] = []

        async def append(room_id: str, n: int) -> None:
            batch = [NewMessage(sender_id=ada.id, body=f"m{n}", client_id=f"c{n}", created_at=T0)]
            try:
                results = await store.append_messages(room_id, batch)
            except NotFound as exc:
                failures.append(exc)
            else:
                stored.append(results[0].message.seq)

        async with trio.open_nursery() as nursery:
            for n, room in enumerate(rooms):
                nursery.start_soon(append, room.id, n)
            nursery.start_soon(append, "r_missing", 99)
        assert len(failures) == 1
        assert stored == [1] * 20  # every room got its message
        assert statements.count("COMMIT") < 21  # fewer transactions than writes
        store._conn.set_trace_callback(None)
        for room in rooms:
            assert len(await store.messages(room.id, limit=10)) == 1


async def test_a_write_that_raises_rolls_back_only_its_own_changes(tmp_path: Path) -> None:
    async with open_sqlite_store(tmp_path / "chorus.db") as store:
        ada = await make_user(store, "ada")

        def half_done(db: sqlite3.Connection) -> None:
            db.execute("UPDATE users SET display_name = 'changed' WHERE id = ?", (ada.id,))
            raise ValueError("rule broken")

        async with trio.open_nursery() as nursery:
            nursery.start_soon(make_user, store, "bob")

            async def fail() -> None:
                with pytest.raises(ValueError, match="rule broken"):
                    await store._write(half_done)

            nursery.start_soon(fail)
        user = await store.get_user(ada.id)
        assert user is not None
        assert user.display_name == "Ada"
        assert await store.get_credentials("bob") is not None
