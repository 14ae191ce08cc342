"""Group commit: writes submitted while a transaction is running share the next one.

SQLite syncs its log once per commit, and a commit costs a worker-thread
round trip; with many busy rooms each storing its own batch, commits (not
rows) become the limit. A `GroupCommit` runs every write that was waiting
when the previous group finished as one transaction, each write in its own
savepoint, so a write that fails leaves the others of its group untouched.
Under no load a write runs at once, alone; under load groups grow by
themselves, because writes queue while a group is being synced.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

import outcome
import trio

C = TypeVar("C")
T = TypeVar("T")

Work = Callable[[C], Any]
"""One write: runs in a worker thread on the connection, inside its own savepoint."""

RunGroup = Callable[[Sequence[Work[C]]], list[outcome.Outcome[Any]]]
"""Runs a group of writes in one transaction (blocking; called in a worker thread)
and returns one outcome per write, in order; raises if the transaction failed as a whole."""


class _Waiting:
    __slots__ = ("done", "result", "work")

    def __init__(self, work: Work[Any]) -> None:
        self.work = work
        self.done = trio.Event()
        self.result: outcome.Outcome[Any] | None = None


class GroupCommit(Generic[C]):
    """Runs submitted writes in groups, one group at a time, in arrival order.

    The first writer to find nobody running leads: it waits one scheduling
    round (so writes submitted in the same round join it), runs the group in
    a worker thread under `limiter`, hands each writer its outcome, and passes
    the lead to the oldest writer still waiting.
    """

    def __init__(self, run_group: RunGroup[C], limiter: trio.CapacityLimiter) -> None:
        self._run_group = run_group
        self._limiter = limiter
        self._queue: list[_Waiting] = []
        self._leading = False

    async def submit(self, work: Callable[[C], T]) -> T:
        """Run `work` in the next group transaction; its result once the group has committed.

        Raises what `work` raised (its savepoint was rolled back; the rest of
        its group committed), or what failed the whole group. Not
        cancellable once submitted: the write may already be committed, and
        a transaction is never cut in half.
        """
        waiting = _Waiting(work)
        self._queue.append(waiting)
        with trio.CancelScope(shield=True):
            if self._leading:
                await waiting.done.wait()
                if waiting.result is None:  # the lead passed to us
                    await self._lead()
            else:
                self._leading = True
                await self._lead()
        assert waiting.result is not None
        result: T = waiting.result.unwrap()
        return result

    async def _lead(self) -> None:
        try:
            await trio.lowlevel.checkpoint()  # writes submitted this round join the group
            group, self._queue = self._queue, []
            try:
                results = await trio.to_thread.run_sync(
                    self._run_group, [waiting.work for waiting in group], limiter=self._limiter
                )
            except Exception as exc:  # the transaction failed: every write of it did
                results = [outcome.Error(exc)] * len(group)
            for waiting, result in zip(group, results, strict=True):
                waiting.result = result
                waiting.done.set()
        finally:
            if self._queue:
                self._queue[0].done.set()  # its result is None: it leads next
            else:
                self._leading = False
