"""The SQLite store's checkpoints: off the commit path, the log bounded, failures raised."""

from __future__ import annotations

import itertools
import os
import sqlite3
from pathlib import Path

import pytest
import trio

from chorus.persistence import NewMessage, Room, User, open_sqlite_store
from chorus.persistence.sqlite.checkpoint import RESTART_FRAMES
from chorus.persistence.sqlite.store import SqliteStore
from tests.persistence.helpers import T0, make_room, make_user, texts
from tests.polling import until

NEVER = 3600.0
"""A checkpoint interval no test lasts: the checkpointer never runs."""


async def setup(store: SqliteStore) -> tuple[User, Room]:
    ada = await make_user(store, "ada")
    return ada, await make_room(store, ada)


def big(sender: User, client_id: str) -> list[NewMessage]:
    """One message of ~2 KiB (a page or so of the log, plus its indexes')."""
    body = " ".join(f"{client_id}w{n}" for n in range(250))
    return [NewMessage(sender_id=sender.id, body=body, client_id=client_id, created_at=T0)]


def size(path: Path) -> int:
    try:
        return os.stat(path).st_size
    except FileNotFoundError:
        return 0


async def test_the_log_stays_under_its_cap_however_far_the_checkpointer_falls_behind(
    tmp_path: Path,
) -> None:
    path = tmp_path / "chorus.db"
    wal = tmp_path / "chorus.db-wal"
    cap = 256 * 1024
    sizes = []
    async with open_sqlite_store(path, checkpoint_interval=NEVER, wal_cap=cap) as store:
        ada, room = await setup(store)
        for n in range(400):
            await store.append_messages(room.id, big(ada, f"c{n}"))
            sizes.append(size(wal))
    # Several caps' worth went through the log (it was truncated again and again), and
    # it never held more than the cap and one append.
    assert sum(1 for before, after in itertools.pairwise(sizes) if after < before) >= 3
    assert max(sizes) <= cap + 64 * 1024
    # Closing checkpointed the rest: the log is gone, everything is in the database file.
    assert not wal.exists()
    async with open_sqlite_store(path) as store:
        assert await store.last_seq(room.id) == 400
        assert [m.client_id for m in await store.messages(room.id, limit=2)] == ["c398", "c399"]


async def test_commits_do_not_checkpoint_the_checkpointer_does(tmp_path: Path) -> None:
    path = tmp_path / "chorus.db"
    wal = tmp_path / "chorus.db-wal"
    async with open_sqlite_store(path, checkpoint_interval=NEVER, wal_cap=2**40) as store:
        ada, room = await setup(store)
        start = size(path)
        # Past 5 MiB of log: SQLite's own checkpoint would have run in a commit at ~4 MiB.
        for n in range(2500):
            await store.append_messages(room.id, big(ada, f"c{n}"))
            if size(wal) > 5 * 2**20:
                break
        assert size(wal) > 5 * 2**20
        # In WAL mode only checkpoints write the database file.
        assert size(path) == start
        assert store._checkpointer.checkpoints == 0

    async with open_sqlite_store(path, checkpoint_interval=0.01) as store:
        start = size(path)
        for n in range(100):
            await store.append_messages(room.id, big(ada, f"d{n}"))
        grown = start + 100 * 1024

        async def copied() -> bool:
            return size(path) > grown

        await until(copied)
        assert store._checkpointer.checkpoints >= 1


async def test_a_failing_checkpoint_is_raised_from_the_store_block(tmp_path: Path) -> None:
    with trio.fail_after(10), pytest.RaisesGroup(sqlite3.ProgrammingError):
        async with open_sqlite_store(tmp_path / "chorus.db", checkpoint_interval=0) as store:
            ada, room = await setup(store)
            # A real failure of the checkpointer's own connection: it is closed under it
            # (between two checkpoints: its limiter keeps them from running meanwhile).
            checkpointer = store._checkpointer
            await trio.to_thread.run_sync(checkpointer._conn.close, limiter=checkpointer._limiter)
            await store.append_messages(room.id, texts(ada, "c1"))
            await trio.sleep_forever()  # until the failing checkpointer cancels the block


async def test_closing_the_store_stops_the_checkpointer_and_closes_its_connection(
    tmp_path: Path,
) -> None:
    with trio.fail_after(10):  # a checkpoint was due in an hour: closing does not wait for it
        async with open_sqlite_store(tmp_path / "chorus.db", checkpoint_interval=NEVER) as store:
            ada, room = await setup(store)
            await store.append_messages(room.id, texts(ada, "c1"))
    with pytest.raises(sqlite3.ProgrammingError, match="closed"):
        store._checkpointer._conn.execute("SELECT 1")


async def test_what_the_block_raises_comes_out_as_it_was(tmp_path: Path) -> None:
    with pytest.raises(KeyError, match="mine"):
        async with open_sqlite_store(tmp_path / "chorus.db"):
            raise KeyError("mine")


async def test_under_steady_writes_the_log_starts_over_long_before_its_cap(
    tmp_path: Path,
) -> None:
    wal = tmp_path / "chorus.db-wal"
    sizes = []
    async with open_sqlite_store(
        tmp_path / "chorus.db", checkpoint_interval=0.01, wal_cap=2**40
    ) as store:
        ada, room = await setup(store)

        async def writer(name: str) -> None:
            for n in range(400):
                await store.append_messages(room.id, big(ada, f"{name}{n}"))
                sizes.append(size(wal))

        # Writers always waiting: commits never pause for a checkpoint to catch up.
        async with trio.open_nursery() as nursery:
            for name in "abcdefgh":
                nursery.start_soon(writer, name)
        written = size(tmp_path / "chorus.db")
        checkpoints = store._checkpointer.checkpoints
    # 3,200 appends of a few pages each went through a log that stayed near the restart
    # length (without the writer's share it grew to several times that, ever longer).
    assert checkpoints >= 3
    assert written > 8 * 2**20
    assert max(sizes) <= 2 * RESTART_FRAMES * 4096
