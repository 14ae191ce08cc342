"""Group commit on SQLite: concurrent writes share transactions but fail alone."""

from __future__ import annotations

import functools
import sqlite3
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import outcome
import pytest
import trio
import trio.testing

from chorus.persistence import NewMessage, NotFound, open_sqlite_store
from chorus.persistence.sqlite.group_commit import GroupCommit
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
                    await store._submit(half_done)

            nursery.start_soon(fail)
        user = await store.get_user(ada.id)
        assert user is not None
        assert user.display_name == "Ada"
        assert await store.get_credentials("bob") is not None


async def test_a_lone_write_that_raises_rolls_back_its_changes(tmp_path: Path) -> None:
    # A group of one write runs without a savepoint: its transaction is rolled back.
    async with open_sqlite_store(tmp_path / "chorus.db") as store:
        ada = await make_user(store, "ada")

        def half_done(db: sqlite3.Connection) -> None:
            db.execute("UPDATE users SET display_name = 'changed' WHERE id = ?", (ada.id,))
            raise ValueError("rule broken")

        with pytest.raises(ValueError, match="rule broken"):
            await store._submit(half_done)
        user = await store.get_user(ada.id)
        assert user is not None
        assert user.display_name == "Ada"
        await make_user(store, "bob")  # and the next write goes through
        assert await store.get_credentials("bob") is not None


def _named(name: str, _conn: None) -> str:
    return name


async def test_a_window_gathers_overlapping_writes_but_never_delays_a_lone_writer(
    autojump_clock: trio.testing.MockClock,
) -> None:
    groups: list[list[object]] = []

    def run_group(works: Sequence[Callable[[None], object]]) -> list[outcome.Outcome[object]]:
        names = [work(None) for work in works]
        groups.append(names)
        results: list[outcome.Outcome[object]] = [outcome.Value(name) for name in names]
        return results

    commits = GroupCommit(run_group, trio.CapacityLimiter(1), window=0.010)
    for name in ("x", "y", "z"):  # one writer after another: never waits
        before = trio.current_time()
        assert await commits.submit(functools.partial(_named, name)) == name
        assert trio.current_time() - before < 0.001
    done: dict[str, float] = {}

    async def write(name: str, after: float) -> None:
        await trio.sleep(after)
        await commits.submit(lambda _conn: name)
        done[name] = trio.current_time()

    start = trio.current_time()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(write, "a", 0.0)  # two at once: writers overlap
        nursery.start_soon(write, "b", 0.0)
        nursery.start_soon(write, "c", 0.002)  # within the window: waits for it
        nursery.start_soon(write, "d", 0.004)  # joins c's group
    assert [sorted(map(str, group)) for group in groups] == [
        ["x"],
        ["y"],
        ["z"],
        ["a", "b"],  # started together: one group, at once
        ["c", "d"],
    ]
    assert done["c"] - start >= 0.010  # c and d waited for the window after a and b


async def test_reads_waiting_for_the_worker_thread_share_one_hop(tmp_path: Path) -> None:
    async with open_sqlite_store(tmp_path / "chorus.db") as store:
        users = [await make_user(store, f"user{n}") for n in range(10)]
        release = threading.Event()
        found: dict[str, str | None] = {}
        groups: list[int] = []
        run_group = store._calls._run_group

        def counted(group: Sequence[Callable[[sqlite3.Connection], object]]) -> list[Any]:
            groups.append(len(group))
            return run_group(group)

        store._calls._run_group = counted

        def held(_db: sqlite3.Connection) -> None:
            release.wait(10)  # keeps the worker thread busy

        async def read(user_id: str) -> None:
            user = await store.get_user(user_id)
            found[user_id] = None if user is None else user.username

        async with trio.open_nursery() as nursery:
            nursery.start_soon(store._submit, held)
            await trio.testing.wait_all_tasks_blocked()
            for user in users:
                nursery.start_soon(read, user.id)
            await trio.testing.wait_all_tasks_blocked()
            release.set()
        assert groups == [1, 10]  # the write, then the ten reads in one hop
        assert found == {user.id: user.username for user in users}


class _Rounds(trio.abc.Instrument):
    """Counts trio's scheduling rounds (each ends with one wait for I/O)."""

    def __init__(self) -> None:
        self.count = 0

    def before_io_wait(self, timeout: float) -> None:
        self.count += 1


async def test_a_lone_write_costs_one_scheduling_round(tmp_path: Path) -> None:
    # The group starts at the end of the round it was submitted in and its result wakes
    # the writer straight from trio's I/O wait: no round of waiting for company, none for
    # trio's entry queue to pass the result on (that was three rounds).
    async with open_sqlite_store(tmp_path / "chorus.db") as store:
        ada = await make_user(store, "ada")
        room = await make_room(store, ada, "room")
        rounds = _Rounds()
        trio.lowlevel.add_instrument(rounds)
        try:
            for n in range(3):
                before = rounds.count
                batch = [NewMessage(sender_id=ada.id, body="hi", client_id=f"c{n}", created_at=T0)]
                await store.append_messages(room.id, batch)
                assert rounds.count - before == 1
        finally:
            trio.lowlevel.remove_instrument(rounds)


async def test_a_group_starts_with_every_write_of_its_round() -> None:
    groups: list[list[object]] = []

    def run_group(works: Sequence[Callable[[None], object]]) -> list[outcome.Outcome[object]]:
        names = [work(None) for work in works]
        groups.append(names)
        return [outcome.Value(name) for name in names]

    commits = GroupCommit(run_group, trio.CapacityLimiter(1))
    async with trio.open_nursery() as nursery:
        for name in "abcde":  # all submitted in one round
            nursery.start_soon(commits.submit, functools.partial(_named, name))
    assert [sorted(map(str, group)) for group in groups] == [list("abcde")]


async def test_a_group_without_failures_runs_without_savepoints(tmp_path: Path) -> None:
    # BEGIN, the writes' own statements, COMMIT: a savepoint per write (two statements)
    # is spent only when a write of the group fails (the group then runs again).
    async with open_sqlite_store(tmp_path / "chorus.db") as store:
        ada = await make_user(store, "ada")
        rooms = [await make_room(store, ada, f"room{n}") for n in range(5)]
        statements: list[str] = []
        assert store._conn is not None
        store._conn.set_trace_callback(statements.append)
        try:
            async with trio.open_nursery() as nursery:
                for n, room in enumerate(rooms):
                    new = NewMessage(sender_id=ada.id, body="b", client_id=f"c{n}", created_at=T0)
                    nursery.start_soon(store.append_messages, room.id, [new])
        finally:
            store._conn.set_trace_callback(None)
        assert statements.count("BEGIN IMMEDIATE") == 1  # one group
        assert statements.count("COMMIT") == 1
        assert not [statement for statement in statements if "SAVEPOINT" in statement]
        for room in rooms:
            assert len(await store.messages(room.id, limit=10)) == 1


async def test_the_writers_of_a_group_resume_in_the_same_round() -> None:
    # Then what they do next (rooms broadcasting what they stored) shares one round, and
    # the flusher's one write per connection at its end.
    def run_group(works: Sequence[Callable[[None], object]]) -> list[outcome.Outcome[object]]:
        return [outcome.Value(work(None)) for work in works]

    commits = GroupCommit(run_group, trio.CapacityLimiter(1))
    rounds = _Rounds()
    resumed: list[int] = []

    async def write(name: str) -> None:
        await commits.submit(functools.partial(_named, name))
        resumed.append(rounds.count)

    trio.lowlevel.add_instrument(rounds)
    try:
        async with trio.open_nursery() as nursery:
            for name in "abcde":  # one group
                nursery.start_soon(write, name)
    finally:
        trio.lowlevel.remove_instrument(rounds)
    assert len(resumed) == 5
    assert len(set(resumed)) == 1


class _HeldGroups:
    """A `RunGroup` whose groups wait in the worker thread until `release`; `started` is
    set (in trio) when a group has begun."""

    def __init__(self) -> None:
        self.groups: list[list[object]] = []
        self.started = trio.Event()
        self._token = trio.lowlevel.current_trio_token()
        self._go = threading.Event()

    def __call__(self, works: Sequence[Callable[[None], object]]) -> list[outcome.Outcome[object]]:
        trio.from_thread.run_sync(self.started.set, trio_token=self._token)
        self._go.wait(timeout=30)
        names = [work(None) for work in works]
        self.groups.append(names)
        return [outcome.Value(name) for name in names]

    def release(self) -> None:
        self._go.set()


async def _cancelled_after_submit(
    commits: GroupCommit[None], name: str, scope: trio.CancelScope, got: list[object]
) -> None:
    """Submit `name` under `scope`; record the result it returns before the next checkpoint."""
    with scope:
        got.append(await commits.submit(functools.partial(_named, name)))
        await trio.lowlevel.checkpoint()  # the cancellation arrives here
        got.append("not cancelled")


async def test_a_writer_cancelled_while_it_waits_for_its_group_gets_its_result_first() -> None:
    # Submitted is final: a follower cancelled while the group before its own runs still
    # leads its own group and returns its result; the cancellation comes at its next
    # checkpoint, so a room that stored a message always learns its seq.
    held = _HeldGroups()
    commits = GroupCommit(held, trio.CapacityLimiter(1))
    follower, got = trio.CancelScope(), list[object]()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(commits.submit, functools.partial(_named, "a"))
        await held.started.wait()
        nursery.start_soon(_cancelled_after_submit, commits, "b", follower, got)
        await trio.testing.wait_all_tasks_blocked()
        follower.cancel()
        await trio.testing.wait_all_tasks_blocked()
        held.release()
    assert held.groups == [["a"], ["b"]]
    assert got == ["b"]
    assert follower.cancelled_caught


async def test_a_leader_cancelled_while_its_group_runs_hands_every_result_over() -> None:
    held = _HeldGroups()
    commits = GroupCommit(held, trio.CapacityLimiter(1))
    leader, got = trio.CancelScope(), list[object]()
    results: list[object] = []

    async def follow(name: str) -> None:
        results.append(await commits.submit(functools.partial(_named, name)))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(_cancelled_after_submit, commits, "a", leader, got)
        nursery.start_soon(follow, "b")  # the same round: the same group, led by "a"
        await held.started.wait()
        leader.cancel()
        await trio.testing.wait_all_tasks_blocked()
        held.release()
    assert [sorted(map(str, group)) for group in held.groups] == [["a", "b"]]
    assert got == ["a"]
    assert leader.cancelled_caught
    assert results == ["b"]
    await follow("c")  # the lead was given up: the next write leads a group of its own
    assert held.groups[-1] == ["c"]
