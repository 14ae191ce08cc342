"""One timer task for the read deadlines of every connection of a gateway.

A connection's read waits for its socket without a cancel scope of its own
(entering one costs about as much as a whole checkpoint, once per inbound
message): when its deadline passes, this timer interrupts the wait with
`trio.lowlevel.notify_closing`, and the wait raises `trio.ClosedResourceError`
on a socket that is still open (see `Connection._receive`).
"""

from __future__ import annotations

import heapq
import math
from typing import Protocol

import trio

COMPACT_MIN = 64
"""Dead entries the heap may hold whatever its size: below this, rebuilding it costs
more than the few dead entries do."""


class Entry:
    """A connection's place in the heap; `conn` None once it is dead (replaced or forgotten).

    A dead entry keeps only its time: a connection's memory never waits for it.
    """

    __slots__ = ("conn", "deadline")

    def __init__(self, deadline: float, conn: Watched | None) -> None:
        self.deadline = deadline
        self.conn: Watched | None = conn

    def __lt__(self, other: Entry) -> bool:
        # Ties stay in no particular order: connections due at once are all called back.
        return self.deadline < other.deadline


_GONE = Entry(-math.inf, None)
"""The entry of a forgotten connection: before any deadline, so `watch` adds none."""


class Watched(Protocol):
    """What the timer needs of a connection."""

    deadline_entry: Entry | None
    """The connection's live entry in the timer's heap (None: none; set by the timer only).
    Its other entries are dead: they no longer refer to it."""

    def deadline_reached(self, now: float) -> float:
        """Called when the live entry's time `now` has come: the connection's current
        deadline if it moved later (the timer watches it again), else `inf` after
        interrupting the wait (or with nothing left to watch)."""
        ...


class Deadlines:
    """Calls each watched connection back when its deadline comes.

    A deadline that moves earlier is given to `watch` (it wakes the timer if
    it is now the first); one that moves later (a sliding heartbeat, on every
    read) is only stored by the connection: the timer finds it when the
    earlier entry comes up and watches the later time instead. So a read
    costs the timer nothing, and each connection has at most one live entry.

    Only the live entry refers to its connection: the entry it replaces, and
    that of a connection given to `forget` (a closed one), let go of it at
    once, so a closed connection's memory never waits for its deadline. Once
    dead entries outnumber both the live ones and `COMPACT_MIN`, the heap is
    rebuilt without them: linear in the live entries, once per as many
    deaths, and nothing on a read.
    """

    def __init__(self) -> None:
        self._heap: list[Entry] = []
        self._dead = 0
        self._sleep: trio.CancelScope | None = None

    def __len__(self) -> int:
        """Entries in the heap, dead ones included (what it holds in memory)."""
        return len(self._heap)

    def watch(self, conn: Watched, deadline: float) -> None:
        """Call `conn` back at `deadline` if that is before its live entry."""
        entry = conn.deadline_entry
        if entry is not None:
            if deadline >= entry.deadline:
                return  # the live entry comes first; it finds the later deadline then
            self._kill(entry)
        entry = conn.deadline_entry = Entry(deadline, conn)
        heapq.heappush(self._heap, entry)
        if self._sleep is not None and deadline < self._sleep.deadline:
            self._sleep.deadline = deadline

    def forget(self, conn: Watched) -> None:
        """Drop the reference to `conn` now, and never call it back (even if watched later)."""
        entry = conn.deadline_entry
        conn.deadline_entry = _GONE
        if entry is not None and entry is not _GONE:
            self._kill(entry)

    def _kill(self, entry: Entry) -> None:
        entry.conn = None
        self._dead += 1
        heap = self._heap
        if self._dead > COMPACT_MIN and 2 * self._dead > len(heap):
            # In place: `run` holds the same list.
            heap[:] = [item for item in heap if item.conn is not None]
            heapq.heapify(heap)
            self._dead = 0

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Call back every connection whose deadline came, until cancelled."""
        task_status.started()
        heap = self._heap
        while True:
            now = trio.current_time()
            while heap and heap[0].deadline <= now:
                conn = heapq.heappop(heap).conn
                if conn is None:
                    self._dead -= 1
                    continue  # replaced by an earlier entry, or forgotten
                conn.deadline_entry = None
                later = conn.deadline_reached(now)
                if later < math.inf:
                    self.watch(conn, later)
            try:
                with trio.CancelScope(
                    deadline=heap[0].deadline if heap else math.inf
                ) as self._sleep:
                    await trio.sleep_forever()
            finally:
                self._sleep = None
