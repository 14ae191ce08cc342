"""Group commit: writes submitted while a transaction is running share the next one.

SQLite syncs its log once per commit, and a commit costs a worker-thread
round trip; with many busy rooms each storing its own batch, commits (not
rows) become the limit. A `GroupCommit` runs every write that was waiting
when the previous group finished as one transaction, in which a write that
fails leaves the others of its group untouched (`SqliteStore` reruns a group
with a failed write with a savepoint per write).
Under no load a write runs at once, alone; under load groups grow by
themselves, because writes queue while a group is being synced. The SQLite
store submits its reads to the same groups (each runs in a transaction of its
own), so one worker-thread hop serves every call that waited for it.
"""

from __future__ import annotations

import contextvars
import functools
import math
import socket
import weakref
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

import outcome
import trio

from chorus.rounds import RoundEnd

C = TypeVar("C")
T = TypeVar("T")

Work = Callable[[C], Any]
"""One write: runs in a worker thread on the connection, in the group's transaction; it
fails alone (`RunGroup` sees to it), and may run again if the group is rerun."""

RunGroup = Callable[[Sequence[Work[C]]], list[outcome.Outcome[Any]]]
"""Runs a group of writes in one transaction (blocking; called in a worker thread)
and returns one outcome per write, in order; raises if the transaction failed as a whole."""


class _Waiting:
    """A submitted write; its task parks in `wait` until `wake` (its result is in, or the
    lead passed to it)."""

    __slots__ = ("gather", "result", "task", "woken", "work")

    def __init__(self, work: Work[Any], gather: bool) -> None:
        self.work = work
        self.gather = gather
        self.result: outcome.Outcome[Any] | None = None
        self.woken = False
        self.task: trio.lowlevel.Task | None = None

    def wake(self) -> None:
        self.woken = True
        if self.task is not None:
            trio.lowlevel.reschedule(self.task)
            self.task = None

    async def wait(self) -> None:
        """Until `wake`; not cancellable, and without a cancel scope (a shielded scope
        costs more than the rest of a lone write's scheduling): a cancellation reaches the
        task at its next checkpoint after this."""
        if not self.woken:
            self.task = trio.lowlevel.current_task()
            await trio.lowlevel.wait_task_rescheduled(_refuse_abort)


def _refuse_abort(_: object) -> trio.lowlevel.Abort:
    return trio.lowlevel.Abort.FAILED


class GroupCommit(Generic[C]):
    """Runs submitted writes in groups, one group at a time, in arrival order.

    The first writer to find nobody running leads: its group starts at the
    end of the current scheduling round, when every task of the round has
    run (so writes submitted in the same round join it), in a worker thread
    under `limiter`; the leader hands each writer its outcome and passes the
    lead to the oldest writer still waiting.

    The start and the way back cost no scheduling round of their own: the
    group is taken and its thread started by an instrument hook that trio
    calls once per round, just before it waits for I/O (`RoundEnd`), and the
    thread wakes the leader through a socket the leader waits on, so trio's
    I/O wait makes the leader runnable at once (not through trio's entry
    queue task, which would take another round).

    With a `window` (seconds), groups start at most that often while writes
    keep coming: a leader that comes sooner after the previous group waits
    for the rest of the window, and everything submitted meanwhile joins it.
    That applies to writes submitted with `gather=True` (appends: room actors
    then store and deliver bigger batches less often), and to every write
    while writers overlap (the previous group had several writes, or one was
    waiting when it ended). Busy periods trade up to `window` of latency for
    fewer, larger transactions; a write after a quiet period never waits, and
    neither does a lone sequential writer of other writes.

    Its socket pair is closed when it is garbage-collected: a store stays
    usable (its calls fail as closed) after it is closed, and so do its groups.
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
        self._round_end = RoundEnd(self._start_group)
        # The leader waits on `_woken`; the worker thread writes a byte to `_wake` when the
        # group is done. The group and its outcome are handed over in these fields.
        self._woken, self._wake = socket.socketpair()
        self._woken.setblocking(False)
        weakref.finalize(self, _close_both, self._woken, self._wake)
        self._start_wanted: contextvars.Context | None = None
        self._group: list[_Waiting] = []
        self._result: outcome.Outcome[list[outcome.Outcome[Any]]] | None = None

    async def submit(self, work: Callable[[C], T], *, gather: bool = False) -> T:
        """Run `work` in the next group transaction; its result once the group has committed.

        Raises what `work` raised (its changes were rolled back; the rest of
        its group committed), or what failed the whole group. Not
        cancellable once submitted: the write may already be committed, and
        a transaction is never cut in half.
        """
        # No shielded scope: every wait below is uncancellable by itself (a cancellation
        # reaches the caller at its first checkpoint after this returns).
        waiting = _Waiting(work, gather)
        self._queue.append(waiting)
        if self._leading:
            await waiting.wait()
            leads = waiting.result is None  # the lead passed to us
        else:
            self._leading = leads = True
        if leads and await self._lead(waiting) > 1:
            # The rest of the group resume in the next round: resume with them, so
            # that what they all do next (rooms' broadcasts) shares a round, and
            # its writes to sockets (`Flusher`).
            await trio.lowlevel.cancel_shielded_checkpoint()
        assert waiting.result is not None
        result: T = waiting.result.unwrap()
        return result

    async def _lead(self, leader: _Waiting) -> int:
        """Run the next group, `leader`'s; the number of writes it had."""
        try:
            if self._window > 0:  # without one (the default), no clock read per group
                opens = self._last_group + self._window
                if (leader.gather or self._overlapping) and trio.current_time() < opens:
                    with trio.CancelScope(shield=True):  # once per group
                        await trio.sleep_until(opens)  # busy: let more writes join this group
                self._last_group = trio.current_time()
            group, finished = await self._in_worker_thread()
            try:
                results = finished.unwrap()
            except Exception as exc:  # the transaction failed: every write of it did
                results = [outcome.Error(exc)] * len(group)
            for waiting, result in zip(group, results, strict=True):
                waiting.result = result
                waiting.wake()
            self._overlapping = len(group) > 1 or bool(self._queue)
        finally:
            if self._queue:
                self._queue[0].wake()  # its result is None: it leads next
            else:
                self._leading = False
        return len(group)

    async def _in_worker_thread(
        self,
    ) -> tuple[list[_Waiting], outcome.Outcome[list[outcome.Outcome[Any]]]]:
        """The writes queued at the end of this round, and `run_group` of them, run in a
        worker thread holding `limiter`, as `trio.to_thread.run_sync(..., limiter=limiter)`
        runs it, with less per hop.

        A free limiter is taken without a scheduling round (`to_thread` always
        spends one), the worker thread is not renamed twice per call, and its
        start and its result cost no round of their own (see the class). Not
        cancellable: the group is its followers' too.
        """
        borrower = object()
        try:
            self._limiter.acquire_on_behalf_of_nowait(borrower)
        except trio.WouldBlock:
            with trio.CancelScope(shield=True):  # rare: another store call holds the thread
                await self._limiter.acquire_on_behalf_of(borrower)
        try:
            # Added per group (a no-op while installed): it belongs to the current run, and
            # trio drops an instrument that raised.
            trio.lowlevel.add_instrument(self._round_end)
            # Like `to_thread`: the thread runs in a copy of the caller's context.
            self._start_wanted = contextvars.copy_context()
            try:
                await trio.lowlevel.wait_readable(self._woken)
            except trio.Cancelled:
                # The leader's caller was cancelled while the group runs: wait for it all
                # the same. Trio's cancellation is level-triggered: the caller gets it
                # again at its next checkpoint, after its result (as in `submit`).
                with trio.CancelScope(shield=True):
                    await trio.lowlevel.wait_readable(self._woken)
            self._woken.recv(16)
            group, self._group = self._group, []
            finished, self._result = self._result, None
        finally:
            self._limiter.release_on_behalf_of(borrower)
        assert finished is not None
        return group, finished

    def _start_group(self) -> None:
        """At the end of a round (`RoundEnd`): start the group a leader waits for, if any."""
        context, self._start_wanted = self._start_wanted, None
        if context is None:
            return
        self._group, self._queue = self._queue, []
        works = [waiting.work for waiting in self._group]
        try:
            trio.lowlevel.start_thread_soon(
                functools.partial(context.run, self._run_group, works), self._finished
            )
        except BaseException as exc:  # no thread: the leader must still wake, with the error
            self._finished(outcome.Error(exc))

    def _finished(self, result: outcome.Outcome[list[outcome.Outcome[Any]]]) -> None:
        # In the worker thread (or the trio thread if none started): the leader reads
        # `_result` only after the byte arrives.
        self._result = result
        self._wake.send(b"\0")


def _close_both(*sockets: socket.socket) -> None:
    for sock in sockets:
        sock.close()
