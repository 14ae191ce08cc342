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


class Watched(Protocol):
    """What the timer needs of a connection."""

    deadline_entry: float
    """The deadline of the connection's live entry in the timer's heap (`inf`: none).
    Other entries of the connection are stale: dropped when they come up."""

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
    """

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Watched]] = []
        self._pushed = 0  # ties in the heap never compare connections
        self._sleep: trio.CancelScope | None = None

    def watch(self, conn: Watched, deadline: float) -> None:
        """Call `conn` back at `deadline` if that is before its live entry."""
        if deadline >= conn.deadline_entry:
            return  # the live entry comes first; it finds the later deadline then
        conn.deadline_entry = deadline
        self._pushed += 1
        heapq.heappush(self._heap, (deadline, self._pushed, conn))
        if self._sleep is not None and deadline < self._sleep.deadline:
            self._sleep.deadline = deadline

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Call back every connection whose deadline came, until cancelled."""
        task_status.started()
        heap = self._heap
        while True:
            now = trio.current_time()
            while heap and heap[0][0] <= now:
                deadline, _, conn = heapq.heappop(heap)
                if deadline != conn.deadline_entry:
                    continue  # stale: a later `watch` of an earlier deadline replaced it
                conn.deadline_entry = math.inf
                later = conn.deadline_reached(now)
                if later < math.inf:
                    self.watch(conn, later)
            try:
                with trio.CancelScope(deadline=heap[0][0] if heap else math.inf) as self._sleep:
                    await trio.sleep_forever()
            finally:
                self._sleep = None
