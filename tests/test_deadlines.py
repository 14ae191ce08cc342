"""`Deadlines`: one timer task for many deadlines (connections' reads, rooms' resyncs)."""

from __future__ import annotations

import math
import weakref

import trio
import trio.testing

from chorus.deadlines import COMPACT_MIN, Deadlines, Entry


class Watched:
    """A connection's side of the timer: a deadline that may move; records when it fired."""

    def __init__(self, deadlines: Deadlines, name: str, deadline: float) -> None:
        self.name = name
        self.deadline = deadline
        self.deadline_entry: Entry | None = None
        self.fired: list[tuple[str, float]] = []
        self._deadlines = deadlines
        deadlines.watch(self, deadline)

    def move(self, deadline: float) -> None:
        """As `Connection._move_deadline` (earlier or later)."""
        self.deadline = deadline
        self._deadlines.watch(self, deadline)

    def slide(self, deadline: float) -> None:
        """As a read refreshing a sliding deadline: later, stored only."""
        self.deadline = deadline

    def deadline_reached(self, now: float) -> float:
        if now < self.deadline:
            return self.deadline
        self.fired.append((self.name, now))
        return math.inf


async def test_deadlines_fire_in_order_each_once_at_its_time(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    deadlines = Deadlines()
    await nursery.start(deadlines.run)
    start = trio.current_time()
    offsets = [7.0, 3.0, 11.0, 1.0, 5.0, 9.0, 2.0]
    watched = [Watched(deadlines, f"c{i}", start + offset) for i, offset in enumerate(offsets)]
    await trio.sleep(20)
    fired = [event for conn in watched for event in conn.fired]
    assert sorted(fired, key=lambda e: e[1]) == [
        (f"c{i}", start + offset) for i, offset in sorted(enumerate(offsets), key=lambda e: e[1])
    ]


async def test_a_deadline_moved_earlier_wakes_the_timer(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    deadlines = Deadlines()
    await nursery.start(deadlines.run)
    start = trio.current_time()
    conn = Watched(deadlines, "c", start + 60)
    await trio.sleep(1)  # the timer sleeps until start + 60
    conn.move(start + 2)
    await trio.sleep(30)
    assert conn.fired == [("c", start + 2)]


async def test_a_deadline_moved_later_fires_at_the_later_time_only(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    deadlines = Deadlines()
    await nursery.start(deadlines.run)
    start = trio.current_time()
    sliding = Watched(deadlines, "sliding", start + 10)
    moved = Watched(deadlines, "moved", start + 10)
    moved.move(start + 25)  # later through `watch`: the entry at +10 stays, is re-aimed
    for step in range(1, 6):  # reads every 4 s keep a 10 s heartbeat alive
        await trio.sleep(4)
        sliding.slide(start + 4 * step + 10)
    assert sliding.fired == []
    assert moved.fired == []
    await trio.sleep(30)
    assert sliding.fired == [("sliding", start + 30)]
    assert moved.fired == [("moved", start + 25)]


async def test_an_entry_replaced_by_an_earlier_one_does_not_fire_again(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    deadlines = Deadlines()
    await nursery.start(deadlines.run)
    start = trio.current_time()
    conn = Watched(deadlines, "c", start + 5)
    conn.move(start + 3)
    await trio.sleep(4)
    assert conn.fired == [("c", start + 3)]
    conn.deadline = start + 4.5  # were the stale entry at +5 live, it would fire again
    await trio.sleep(10)
    assert conn.fired == [("c", start + 3)]


async def test_a_forgotten_connection_is_let_go_at_once_and_never_called_back(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    deadlines = Deadlines()
    await nursery.start(deadlines.run)
    start = trio.current_time()
    conn = Watched(deadlines, "c", start + 60)
    conn.move(start + 30)  # the entry at +60 is dead from here on
    fired = conn.fired
    deadlines.forget(conn)
    conn.move(start + 10)  # a late close of a gone connection: nothing to call back
    gone = weakref.ref(conn)
    del conn
    assert gone() is None  # no collection needed: nothing in the heap refers to it
    await trio.sleep(90)
    assert fired == []
    assert len(deadlines) == 0


async def test_churn_leaves_the_heap_bounded_by_the_live_connections(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    deadlines = Deadlines()
    await nursery.start(deadlines.run)
    start = trio.current_time()
    live = [Watched(deadlines, f"live{i}", start + 100 + i) for i in range(10)]
    gone = []
    for i in range(5000):  # each: a handshake deadline, its close, gone: all before +100
        conn = Watched(deadlines, f"c{i}", start + 60)
        conn.move(start + 5)
        deadlines.forget(conn)
        gone.append(weakref.ref(conn))
        assert len(deadlines) <= 2 * len(live) + COMPACT_MIN
    del conn
    assert all(ref() is None for ref in gone)
    await trio.sleep(200)  # the compacted heap still calls the live ones back, in order
    assert [event for conn in live for event in conn.fired] == [
        (f"live{i}", start + 100 + i) for i in range(10)
    ]
