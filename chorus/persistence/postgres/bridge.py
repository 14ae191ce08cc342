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
side one wake-up whatever the loop does meanwhile.

Cancellation crosses the bridge like this: cancelling the trio caller cancels
the asyncio task, which throws one `asyncio.CancelledError` into the
coroutine at its current `await`; the trio caller then waits, shielded, until
that task has actually finished (its cleanup, such as asyncpg rolling back
the transaction and resetting the connection before it goes back to the
pool, runs to the end) and only then raises `trio.Cancelled`. So a cancelled
call never leaves a connection mid-transaction, and the time it takes to be
cancelled is bounded by the asyncio side's own timeouts.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar, final

import trio

T = TypeVar("T")


@final
class AsyncioBridge:
    """Runs asyncio coroutine functions from trio on one asyncio loop in its own thread."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    async def run(self, fn: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any) -> T:
        """`await fn(*args, **kwargs)` as an asyncio task on the bridge's loop.

        Works from any trio task of the run that opened the bridge.
        Cancellation: see the module docstring.
        """
        token = trio.lowlevel.current_trio_token()
        finished = trio.Event()
        started: list[asyncio.Task[T]] = []

        def wake(_: object) -> None:  # asyncio thread
            with contextlib.suppress(trio.RunFinishedError):
                token.run_sync_soon(finished.set)

        async def call() -> T:
            return await fn(*args, **kwargs)

        def start() -> None:  # asyncio thread
            task = self._loop.create_task(call())
            started.append(task)
            task.add_done_callback(wake)

        self._loop.call_soon_threadsafe(start)
        try:
            await finished.wait()
        except trio.Cancelled:
            # Callbacks run in the order they were scheduled: `start` has run by then.
            self._loop.call_soon_threadsafe(lambda: started[0].cancel())
            with trio.CancelScope(shield=True):
                await finished.wait()
            raise
        return started[0].result()


@contextlib.asynccontextmanager
async def open_asyncio_bridge() -> AsyncIterator[AsyncioBridge]:
    """One asyncio loop, in a thread of its own, for the block's lifetime.

    On exit the loop cancels the asyncio tasks still running and waits for
    them (`asyncio.run`'s shutdown), and the thread is joined; close
    resources (pools) before leaving.
    """
    token = trio.lowlevel.current_trio_token()
    ready = trio.Event()
    loops: list[asyncio.AbstractEventLoop] = []
    stop = asyncio.Event()

    async def serve() -> None:  # asyncio thread
        loops.append(asyncio.get_running_loop())
        token.run_sync_soon(ready.set)
        await stop.wait()

    done = trio.Event()

    def thread_main() -> None:
        try:
            asyncio.run(serve())
        finally:
            with contextlib.suppress(trio.RunFinishedError):
                token.run_sync_soon(ready.set)  # also when the loop failed to start
                token.run_sync_soon(done.set)

    thread = threading.Thread(target=thread_main, name="chorus-asyncio", daemon=True)
    thread.start()
    with trio.CancelScope(shield=True):
        await ready.wait()
    if not loops:
        raise RuntimeError("the asyncio loop of the PostgreSQL bridge did not start")
    [loop] = loops
    try:
        yield AsyncioBridge(loop)
    finally:
        loop.call_soon_threadsafe(stop.set)
        with trio.CancelScope(shield=True):
            await done.wait()
        thread.join()
