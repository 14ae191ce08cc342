"""The one bridge between trio and asyncio in Chorus: asyncpg runs on an asyncio loop
in a thread of its own.

Code on the asyncio side (the PostgreSQL backend's transactions) is written as
ordinary asyncio coroutine functions and called from trio with
`AsyncioBridge.run`. No other module starts an asyncio loop.

Why a thread and not trio-asyncio (which ran asyncio's callbacks as a trio
task until 2026-12, see docs/decisions.md): trio-asyncio runs one asyncio
callback per pass of trio's scheduler, and one query takes about eleven of
them, so a query's latency grew with the number of runnable trio tasks (15 ms
for `SELECT 1` beside 100 busy tasks) and the pool's connections were held
that long. Here the asyncio loop runs on its own, and a call costs the trio
side at most one wake-up whatever the loop does meanwhile.

Hand-offs come in groups, and a thread is woken only when it sleeps (issue
#15): waking the other thread is a write to its wake-up socket, which cost
about a ninth of a clustered node's samples when every call paid it twice.
So calls go to the loop through one queue, which the loop drains each time
it comes back from waiting for I/O (the bridge's selector wraps the wait),
starting every call queued so far in order; trio writes the loop's wake-up
only when the loop is waiting (or about to) and has not been woken yet.
Finished calls come back through another queue, which trio drains each time
it comes back from waiting for I/O (an instrument's `after_io_wait`),
resuming every caller whose call finished so far; the asyncio thread writes
trio's wake-up only when trio is waiting and has not been woken yet. A
side about to wait first looks at its queue, under the same lock, and does
not wait if anything is in it, so no wake-up is ever missed. Calls made or
finished while the other side is busy cost no wake-up at all; those made
while it sleeps share one.

Cancellation crosses the bridge like this: cancelling the trio caller cancels
the asyncio task, which throws one `asyncio.CancelledError` into the
coroutine at its current `await`; the trio caller then stays blocked
(cancelling it again changes nothing) until that task has actually finished
(its cleanup, such as asyncpg rolling back the transaction and resetting the
connection before it goes back to the pool, runs to the end) and only then
raises `trio.Cancelled`, whatever the task returned or raised. So a
cancelled call never leaves a connection mid-transaction, and the time it
takes to be cancelled is bounded by the asyncio side's own timeouts. A call
cancelled before the loop started it never runs (its task's first step
returns without calling the function), but its caller still waits for that.

Shutdown: when `open_asyncio_bridge`'s block exits, calls made afterwards
raise `RuntimeError` at once; calls already made are started as usual;
the loop then cancels the tasks still running and waits for them, and their
callers raise `RuntimeError` (or `trio.Cancelled` if they were cancelled
themselves). Every caller is resumed exactly once: none is left blocked.
"""

from __future__ import annotations

import asyncio
import contextlib
import selectors
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Generic, TypeVar, final

import attrs
import outcome
import trio

T = TypeVar("T")


@attrs.frozen
class BridgeStats:
    """Counts since the bridge opened (for tests and benchmarks): `calls` made,
    `finished` (calls whose task finished and whose caller is to be resumed),
    `loop_wakeups` (times trio wrote the asyncio loop's wake-up: to start calls,
    cancel them, or stop) and `trio_wakeups` (times the asyncio thread wrote trio's
    wake-up to have callers resumed).
    """

    calls: int
    finished: int
    loop_wakeups: int
    trio_wakeups: int


@final
class _Call(Generic[T]):
    """One call across the bridge: made in trio, run as an asyncio task, resumed in trio."""

    __slots__ = (
        "args",
        "caller",
        "cancelled",
        "fn",
        "kwargs",
        "raise_cancel",
        "result",
        "started",
        "task",
    )

    def __init__(
        self,
        fn: Callable[..., Awaitable[T]],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        caller: trio.lowlevel.Task,
    ) -> None:
        self.fn = fn
        self.args = args
        self.kwargs = kwargs
        self.caller = caller
        # Written by the asyncio thread before the call goes back to trio:
        self.task: asyncio.Task[None] | None = None
        self.started = False
        self.cancelled = False  # by trio before the task's first step: `fn` is not called
        self.result: outcome.Outcome[T] | None = None
        # Written in trio when the caller is cancelled; then it raises this.
        self.raise_cancel: Callable[[], object] | None = None

    async def run(self, bridge: AsyncioBridge) -> None:  # the asyncio task
        """Await `fn` and hand its outcome to `bridge`, however it ends.

        Handed over here, once `fn`'s coroutine has finished (its cleanup
        included), rather than by a done callback of the task: that cost a
        handle and, for a call alone, one more pass of the loop.
        """
        self.started = True
        if self.cancelled:
            self.result = outcome.Error(RuntimeError("cancelled before it started"))
            bridge._finished(self)
            return
        try:
            value = await self.fn(*self.args, **self.kwargs)
        except asyncio.CancelledError:
            # Unless trio asked for it (then the caller raises trio.Cancelled and this is
            # not seen), only the loop's shutdown cancels a task.
            self.result = outcome.Error(_closed_error())
            bridge._finished(self)
            raise
        except Exception as exc:
            self.result = outcome.Error(exc)
            bridge._finished(self)
        except BaseException as exc:  # such as KeyboardInterrupt: the loop stops
            self.result = outcome.Error(exc)
            bridge._finished(self)
            raise
        else:
            self.result = outcome.Value(value)
            bridge._finished(self)


def _closed_error() -> RuntimeError:
    return RuntimeError("the asyncio bridge closed before the call finished")


@final
class AsyncioBridge:
    """Runs asyncio coroutine functions from trio on one asyncio loop in its own thread."""

    def __init__(self, loop: asyncio.AbstractEventLoop, token: trio.lowlevel.TrioToken) -> None:
        self._loop = loop
        self._token = token
        self._lock = threading.Lock()
        # Guarded by the lock: calls to start (or, sent a second time, to cancel) in
        # the order they were sent; whether the loop waits (or is about to wait) for
        # I/O, and whether it was woken since.
        self._to_loop: list[_Call[Any]] = []
        self._loop_waits = False
        self._loop_woken = False
        self._closed = False
        # Guarded by the lock: finished calls whose callers to resume; whether trio
        # waits (or is about to wait) for I/O, and whether it was woken since.
        self._to_trio: list[_Call[Any]] = []
        # The asyncio thread's own: calls started whose outcome is not handed over yet.
        self._running: set[_Call[Any]] = set()
        self._trio_waits = False
        self._trio_woken = False
        # Each counter is written by one thread only.
        self._calls = 0
        self._finished_count = 0
        self._loop_wakeups = 0
        self._trio_wakeups = 0

    def stats(self) -> BridgeStats:
        """The counts so far."""
        return BridgeStats(
            self._calls, self._finished_count, self._loop_wakeups, self._trio_wakeups
        )

    async def run(self, fn: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any) -> T:
        """`await fn(*args, **kwargs)` as an asyncio task on the bridge's loop.

        Works from any trio task of the run that opened the bridge. Returns
        what the task returned, or raises what it raised. Raises
        `RuntimeError` if the bridge is closed or closes before the call
        finished. Cancellation: see the module docstring.
        """
        call = _Call(fn, args, kwargs, trio.lowlevel.current_task())
        self._send_to_loop(call)
        self._calls += 1

        def abort(raise_cancel: Callable[[], object]) -> trio.lowlevel.Abort:
            # trio calls this at most once per wait.
            call.raise_cancel = raise_cancel
            # Sent a second time, the call is cancelled (it was started first: the
            # queue keeps its order); once the bridge is closed, the loop cancels it anyway.
            with contextlib.suppress(RuntimeError):
                self._send_to_loop(call)
            return trio.lowlevel.Abort.FAILED  # resumed by `_trio_woke`

        result: T = await trio.lowlevel.wait_task_rescheduled(abort)
        return result

    # -- trio → asyncio ------------------------------------------------------------------

    def _send_to_loop(self, call: _Call[Any]) -> None:  # trio thread
        with self._lock:
            if self._closed:
                raise RuntimeError("the asyncio bridge is closed")
            self._to_loop.append(call)
            if not self._loop_waits or self._loop_woken:
                return  # the loop will find it when it next comes back from waiting
            self._loop_woken = True
        self._loop_wakeups += 1
        self._loop.call_soon_threadsafe(_nothing)

    def _loop_may_wait(self) -> bool:  # asyncio thread, before waiting for I/O
        with self._lock:
            if self._to_loop:
                return False
            self._loop_waits = True
            return True

    def _loop_woke(self) -> None:  # asyncio thread, back from waiting for I/O
        if not self._loop_waits and not self._to_loop:
            return  # an unlocked look: anything sent meanwhile is found next time round
        with self._lock:
            calls, self._to_loop = self._to_loop, []
            self._loop_waits = self._loop_woken = False
        for call in calls:
            if call.task is None:
                call.task = self._loop.create_task(call.run(self))
                self._running.add(call)
            elif call.started:
                call.task.cancel()  # harmless once it is done
            else:
                call.cancelled = True

    # -- asyncio → trio ------------------------------------------------------------------

    def _finished(self, call: _Call[Any]) -> None:  # asyncio thread, `call.result` is set
        self._running.discard(call)
        with self._lock:
            self._to_trio.append(call)
            self._finished_count += 1  # under the lock: counted before its caller resumes
            if not self._trio_waits or self._trio_woken:
                return  # trio will find it when it next comes back from waiting
            self._trio_woken = True
        self._trio_wakeups += 1
        with contextlib.suppress(trio.RunFinishedError):
            self._token.run_sync_soon(_nothing)

    def _abandon(self) -> None:  # asyncio thread, once the loop is closed
        """Finish the calls whose tasks were cancelled before their first step, by the loop's
        shutdown or by other code on the loop (their coroutine never ran, so it did not hand
        their outcome over): every caller is resumed."""
        for call in list(self._running):
            call.result = outcome.Error(_closed_error())
            self._finished(call)

    def _trio_may_wait(self, timeout: float) -> None:  # trio thread, before waiting for I/O
        if timeout <= 0:
            return  # trio will not sleep
        with self._lock:
            if not self._to_trio:
                self._trio_waits = True
                return
        # Calls finished since trio decided to wait: have its wait return at once.
        self._token.run_sync_soon(_nothing)

    def _trio_woke(self) -> None:  # trio thread, back from waiting for I/O
        if not self._trio_waits and not self._to_trio:
            return  # an unlocked look: anything sent meanwhile is found next time round
        with self._lock:
            calls, self._to_trio = self._to_trio, []
            self._trio_waits = self._trio_woken = False
        for call in calls:
            if call.raise_cancel is not None:
                trio.lowlevel.reschedule(call.caller, outcome.capture(call.raise_cancel))
            else:
                assert call.result is not None
                trio.lowlevel.reschedule(call.caller, call.result)

    # -- shutdown ------------------------------------------------------------------------

    def _close(self, stop: Callable[[], object]) -> None:  # trio thread
        """Refuse later calls, then have the loop run `stop`.

        Every call queued so far is started before `stop` runs (the loop
        drains its queue before it runs the callbacks that are ready), then
        cancelled by the loop's shutdown if still running: none is left in
        the queue.
        """
        with self._lock:
            self._closed = True
        self._loop_wakeups += 1
        self._loop.call_soon_threadsafe(stop)


def _nothing() -> None:
    """Scheduled only for the wake-up that scheduling it writes."""


@final
class _Selector(selectors.DefaultSelector):
    """The asyncio loop's selector: drains the bridge's queue around each wait."""

    bridge: AsyncioBridge | None = None

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        bridge = self.bridge
        if bridge is None:
            return super().select(timeout)
        if (timeout is None or timeout > 0) and not bridge._loop_may_wait():
            timeout = 0
        try:
            return super().select(timeout)
        finally:
            bridge._loop_woke()


@final
class _Instrument(trio.abc.Instrument):
    """trio's side: drains the bridge's queue around each wait for I/O."""

    def __init__(self, bridge: AsyncioBridge) -> None:
        self._bridge = bridge

    def before_io_wait(self, timeout: float) -> None:
        self._bridge._trio_may_wait(timeout)

    def after_io_wait(self, timeout: float) -> None:
        self._bridge._trio_woke()


@contextlib.asynccontextmanager
async def open_asyncio_bridge() -> AsyncIterator[AsyncioBridge]:
    """One asyncio loop, in a thread of its own, for the block's lifetime.

    On exit the bridge refuses new calls, the loop starts the calls already
    made, then cancels the asyncio tasks still running and waits for them
    (`asyncio.run`'s shutdown), and the thread is joined; close resources
    (pools) before leaving.
    """
    token = trio.lowlevel.current_trio_token()
    ready = trio.Event()
    bridges: list[AsyncioBridge] = []
    stop = asyncio.Event()

    async def serve() -> None:  # asyncio thread
        token.run_sync_soon(ready.set)
        await stop.wait()

    done = trio.Event()

    def thread_main() -> None:
        selector = _Selector()
        try:
            with asyncio.Runner(loop_factory=lambda: asyncio.SelectorEventLoop(selector)) as runner:
                bridges.append(AsyncioBridge(runner.get_loop(), token))
                selector.bridge = bridges[0]
                runner.run(serve())
        finally:
            if bridges:
                bridges[0]._abandon()  # before `done`: see below
            with contextlib.suppress(trio.RunFinishedError):
                token.run_sync_soon(ready.set)  # also when the loop failed to start
                token.run_sync_soon(done.set)

    thread = threading.Thread(target=thread_main, name="chorus-asyncio", daemon=True)
    thread.start()
    with trio.CancelScope(shield=True):
        await ready.wait()
    if not bridges:
        raise RuntimeError("the asyncio loop of the PostgreSQL bridge did not start")
    [bridge] = bridges
    instrument = _Instrument(bridge)
    trio.lowlevel.add_instrument(instrument)
    try:
        yield bridge
    finally:
        bridge._close(stop.set)
        with trio.CancelScope(shield=True):
            await done.wait()
        thread.join()
        # The loop's last results (its shutdown's) were queued before `done` was set.
        bridge._trio_woke()
        trio.lowlevel.remove_instrument(instrument)
