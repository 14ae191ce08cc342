"""Group commit: writes submitted while a transaction is running share the next one.

SQLite syncs its log once per commit, and a commit costs a worker-thread
round trip; with many busy rooms each storing its own batch, commits (not
rows) become the limit. A `GroupCommit` runs every write that was waiting
when the previous group finished as one transaction, each write in its own
savepoint, so a write that fails leaves the others of its group untouched.
Under no load a write runs at once, alone; under load groups grow by
themselves, because writes queue while a group is being synced. The SQLite
store submits its reads to the same groups (each runs in a transaction of its
own), so one worker-thread hop serves every call that waited for it.
"""

from __future__ import annotations

import contextvars
import functools
import math
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
    __slots__ = ("done", "gather", "result", "work")

    def __init__(self, work: Work[Any], gather: bool) -> None:
        self.work = work
        self.gather = gather
        self.done = trio.Event()
        self.result: outcome.Outcome[Any] | None = None


class GroupCommit(Generic[C]):
    """Runs submitted writes in groups, one group at a time, in arrival order.

    The first writer to find nobody running leads: it waits one scheduling
    round (so writes submitted in the same round join it), runs the group in
    a worker thread under `limiter`, hands each writer its outcome, and passes
    the lead to the oldest writer still waiting.

    With a `window` (seconds), groups start at most that often while writes
    keep coming: a leader that comes sooner after the previous group waits
    for the rest of the window, and everything submitted meanwhile joins it.
    That applies to writes submitted with `gather=True` (appends: room actors
    then store and deliver bigger batches less often), and to every write
    while writers overlap (the previous group had several writes, or one was
    waiting when it ended). Busy periods trade up to `window` of latency for
    fewer, larger transactions; a write after a quiet period never waits, and
    neither does a lone sequential writer of other writes.
    """

    def __init__(
        self, run_group: RunGroup[C], limiter: trio.CapacityLimiter, *, window: float = 0.0
    ) -> None:
        self._run_group = run_group
        self._limiter = limiter
        self._window = window
        self._last_group = -math.inf
        self._overlapping = False
        self._queue: list[_Waiting] = []
        self._leading = False

    async def submit(self, work: Callable[[C], T], *, gather: bool = False) -> T:
        """Run `work` in the next group transaction; its result once the group has committed.

        Raises what `work` raised (its savepoint was rolled back; the rest of
        its group committed), or what failed the whole group. Not
        cancellable once submitted: the write may already be committed, and
        a transaction is never cut in half.
        """
        waiting = _Waiting(work, gather)
        self._queue.append(waiting)
        with trio.CancelScope(shield=True):
            if self._leading:
                await waiting.done.wait()
                if waiting.result is None:  # the lead passed to us
                    await self._lead(waiting)
            else:
                self._leading = True
                await self._lead(waiting)
        assert waiting.result is not None
        result: T = waiting.result.unwrap()
        return result

    async def _lead(self, leader: _Waiting) -> None:
        try:
            opens = self._last_group + self._window
            if (leader.gather or self._overlapping) and trio.current_time() < opens:
                await trio.sleep_until(opens)  # busy: let more writes join this group
            else:
                await trio.lowlevel.checkpoint()  # writes submitted this round join the group
            self._last_group = trio.current_time()
            group, self._queue = self._queue, []
            try:
                results = await self._in_worker_thread([waiting.work for waiting in group])
            except Exception as exc:  # the transaction failed: every write of it did
                results = [outcome.Error(exc)] * len(group)
            for waiting, result in zip(group, results, strict=True):
                waiting.result = result
                waiting.done.set()
            self._overlapping = len(group) > 1 or bool(self._queue)
        finally:
            if self._queue:
                self._queue[0].done.set()  # its result is None: it leads next
            else:
                self._leading = False

    async def _in_worker_thread(self, works: list[Work[C]]) -> list[outcome.Outcome[Any]]:
        """`run_group(works)` in a worker thread holding `limiter`, as
        `trio.to_thread.run_sync(..., limiter=limiter)` runs it, with less per hop.

        A free limiter is taken without a scheduling round (`to_thread` always
        spends one), and the worker thread is not renamed twice per call. The
        caller is shielded (`submit`): the wait cannot be cancelled.
        """
        borrower = object()
        try:
            self._limiter.acquire_on_behalf_of_nowait(borrower)
        except trio.WouldBlock:
            await self._limiter.acquire_on_behalf_of(borrower)
        try:
            task = trio.lowlevel.current_task()
            token = trio.lowlevel.current_trio_token()

            def deliver(result: outcome.Outcome[list[outcome.Outcome[Any]]]) -> None:
                token.run_sync_soon(trio.lowlevel.reschedule, task, result)

            # Like `to_thread`: the thread runs in a copy of the caller's context.
            run = functools.partial(contextvars.copy_context().run, self._run_group, works)
            trio.lowlevel.start_thread_soon(run, deliver)
            results: list[outcome.Outcome[Any]] = await trio.lowlevel.wait_task_rescheduled(
                lambda _: trio.lowlevel.Abort.FAILED
            )
        finally:
            self._limiter.release_on_behalf_of(borrower)
        return results
