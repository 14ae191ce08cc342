"""The one bridge between trio and asyncio in Chorus: asyncpg runs on a trio-asyncio loop.

No other module imports `trio_asyncio`. Code on the asyncio side (the
PostgreSQL backend's transactions) is written as ordinary asyncio coroutine
functions and called from trio with `AsyncioBridge.run`.

Cancellation crosses the bridge like this (trio-asyncio's `run_aio_future`):
cancelling the trio caller cancels the asyncio task, which throws one
`asyncio.CancelledError` into the coroutine at its current `await`; the trio
caller then waits until that task has actually finished (its cleanup, such as
asyncpg rolling back the transaction and resetting the connection before it
goes back to the pool, runs to the end) and only then raises `trio.Cancelled`.
So a cancelled call never leaves a connection mid-transaction, and the time
it takes to be cancelled is bounded by the asyncio side's own timeouts.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar, final

import trio_asyncio

T = TypeVar("T")


@final
class AsyncioBridge:
    """Runs asyncio coroutine functions from trio on one trio-asyncio loop."""

    def __init__(self, loop: Any) -> None:
        self._loop = loop

    async def run(self, fn: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any) -> T:
        """`await fn(*args, **kwargs)` as an asyncio task on the bridge's loop.

        Cancellation: see the module docstring. The loop is passed explicitly,
        so this works from any trio task, not only from those started inside
        `open_asyncio_bridge`.
        """
        result: T = await trio_asyncio.aio_as_trio(fn, loop=self._loop)(*args, **kwargs)
        return result


@contextlib.asynccontextmanager
async def open_asyncio_bridge() -> AsyncIterator[AsyncioBridge]:
    """One asyncio loop running inside trio for the block's lifetime.

    On exit the loop cancels the asyncio tasks still running and waits for
    them, as `asyncio.run` does; close resources (pools) before leaving.
    """
    raised: BaseException | None = None
    unwrapped: BaseException | None = None
    try:
        async with trio_asyncio.open_loop() as loop:
            try:
                yield AsyncioBridge(loop)
            except BaseException as exc:
                raised = exc
                raise
    except BaseExceptionGroup as group:
        # The loop runs in a nursery, which wraps what the block raised in an
        # exception group; callers expect the block's own exception (a
        # `StoreError`, `trio.Cancelled`) as if no nursery were there.
        if raised is None or _leaves(group) != [raised]:
            raise
        unwrapped = raised
    if unwrapped is not None:
        # Raised outside the `except`, so its context stays what it was.
        raise unwrapped


def _leaves(group: BaseExceptionGroup[BaseException]) -> list[BaseException]:
    found: list[BaseException] = []
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            found.extend(_leaves(exc))
        else:
            found.append(exc)
    return found
