"""One timer task for many deadlines: each watched object is called back when its own comes.

Entering a cancel scope costs about as much as a whole checkpoint (~49,000
instructions on trio 0.35): a task that waits once per message with a
deadline of its own pays that on every message. Instead, one `Deadlines`
task keeps every such deadline in a heap and calls the object back when it
is due; the object then interrupts or wakes its task (a gateway connection
interrupts its read with `trio.lowlevel.notify_closing`, see
`Connection._receive`; a room actor queues itself a `Resync`), whose wait
needs no scope.
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
    """A watched object's place in the heap; `watched` None once it is dead (replaced or
    forgotten).

    A dead entry keeps only its time: the object's memory never waits for it.
    """

    __slots__ = ("deadline", "watched")

    def __init__(self, deadline: float, watched: Watched | None) -> None:
        self.deadline = deadline
        self.watched: Watched | None = watched

    def __lt__(self, other: Entry) -> bool:
        # Ties stay in no particular order: objects due at once are all called back.
        return self.deadline < other.deadline


_GONE = Entry(-math.inf, None)
"""The entry of a forgotten object: before any deadline, so `watch` adds none."""


class Watched(Protocol):
    """What the timer needs of a watched object (a connection, a room actor)."""

    deadline_entry: Entry | None
    """The object's live entry in the timer's heap (None: none; set by the timer only).
    Its other entries are dead: they no longer refer to it."""

    def deadline_reached(self, now: float) -> float:
        """Called in the timer's task, without waiting, when the live entry's time `now`
        has come: the object's next deadline (the timer watches it then; a deadline
        that moved later, or the next of a period), else `inf` (nothing left to watch
        until `watch` is called again)."""
        ...


class Deadlines:
    """Calls each watched object back when its deadline comes.

    A deadline that moves earlier is given to `watch` (it wakes the timer if
    it is now the first); one that moves later (a sliding heartbeat, on every
    read) is only stored by the object: the timer finds it when the earlier
    entry comes up and watches the later time instead. So a read costs the
    timer nothing, and each object has at most one live entry.

    Only the live entry refers to its object: the entry it replaces, and that
    of an object given to `forget` (a closed connection, a stopped actor), let
    go of it at once, so its memory never waits for its deadline. Once dead
    entries outnumber both the live ones and `COMPACT_MIN`, the heap is
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

    def watch(self, watched: Watched, deadline: float) -> None:
        """Call `watched` back at `deadline` if that is before its live entry."""
        entry = watched.deadline_entry
        if entry is not None:
            if deadline >= entry.deadline:
                return  # the live entry comes first; it finds the later deadline then
            self._kill(entry)
        entry = watched.deadline_entry = Entry(deadline, watched)
        heapq.heappush(self._heap, entry)
        if self._sleep is not None and deadline < self._sleep.deadline:
            self._sleep.deadline = deadline

    def forget(self, watched: Watched) -> None:
        """Drop the reference to `watched` now, and never call it back (even if watched later)."""
        entry = watched.deadline_entry
        watched.deadline_entry = _GONE
        if entry is not None and entry is not _GONE:
            self._kill(entry)

    def _kill(self, entry: Entry) -> None:
        entry.watched = None
        self._dead += 1
        heap = self._heap
        if self._dead > COMPACT_MIN and 2 * self._dead > len(heap):
            # In place: `run` holds the same list.
            heap[:] = [item for item in heap if item.watched is not None]
            heapq.heapify(heap)
            self._dead = 0

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Call back every object whose deadline came, until cancelled."""
        task_status.started()
        heap = self._heap
        while True:
            now = trio.current_time()
            while heap and heap[0].deadline <= now:
                watched = heapq.heappop(heap).watched
                if watched is None:
                    self._dead -= 1
                    continue  # replaced by an earlier entry, or forgotten
                watched.deadline_entry = None
                later = watched.deadline_reached(now)
                if later < math.inf:
                    self.watch(watched, later)
            try:
                with trio.CancelScope(
                    deadline=heap[0].deadline if heap else math.inf
                ) as self._sleep:
                    await trio.sleep_forever()
            finally:
                self._sleep = None
