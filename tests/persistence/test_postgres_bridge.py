"""The asyncio bridge (`chorus/persistence/postgres/bridge.py`) against a real PostgreSQL:
calls handed over in groups, results handed back in groups, cancellation, errors, shutdown."""

from __future__ import annotations

import asyncio
import inspect
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import asyncpg
import pytest
import trio
import trio.testing

from chorus.persistence.postgres.bridge import AsyncioBridge, open_asyncio_bridge
from tests.pgserver import PgServer

T = TypeVar("T")

WAIT = 10.0
"""Seconds a test waits for the other thread before it fails (it never sleeps to wait)."""


@pytest.fixture
async def url(pg_server: PgServer) -> str:
    _, url = await pg_server.new_database()
    return url


@asynccontextmanager
async def bridged_pool(url: str, size: int = 4) -> AsyncIterator[tuple[AsyncioBridge, Any]]:
    """A bridge and an asyncpg pool of `size` connections on its loop."""
    async with open_asyncio_bridge() as bridge:
        pool = await bridge.run(asyncpg.create_pool, url, min_size=size, max_size=size)
        try:
            yield bridge, pool
        finally:
            await bridge.run(pool.close)


def query(pool: Any, sql: str, *args: object) -> Callable[[], Any]:
    """An asyncio coroutine function: `fetchval(sql, *args)` on a pooled connection."""

    async def run() -> object:
        async with pool.acquire() as conn:
            return await conn.fetchval(sql, *args)

    return run


async def the_loop(bridge: AsyncioBridge) -> asyncio.AbstractEventLoop:
    async def get() -> asyncio.AbstractEventLoop:
        return asyncio.get_running_loop()

    return await bridge.run(get)


@asynccontextmanager
async def loop_blocked(bridge: AsyncioBridge) -> AsyncIterator[None]:
    """The asyncio thread stays inside one callback for the block's duration (so
    everything trio sends it meanwhile waits in the bridge's queue)."""
    entered = threading.Event()
    release = threading.Event()

    async def block() -> None:
        entered.set()
        release.wait(WAIT)  # blocks the loop's thread on purpose

    async with trio.open_nursery() as nursery:
        nursery.start_soon(bridge.run, block)
        await trio.testing.wait_all_tasks_blocked()  # the call is made
        # The trio thread waits (briefly) for the loop's thread to be inside `block`.
        assert entered.wait(WAIT)
        try:
            yield
        finally:
            release.set()


def wait_in_trio_thread(done: Callable[[], bool]) -> None:
    """Block trio's thread (so that trio drains nothing) until `done()`, or fail."""
    deadline = time.monotonic() + WAIT
    while not done():
        assert time.monotonic() < deadline, "the asyncio side did not get there in time"
        time.sleep(0.001)  # lets the asyncio thread have the GIL


# -- hand-offs in groups -----------------------------------------------------------------


async def test_one_call_at_a_time_costs_at_most_one_wakeup_each_way(url: str) -> None:
    async with bridged_pool(url) as (bridge, pool):
        before = bridge.stats()
        for i in range(10):
            assert await bridge.run(query(pool, "SELECT $1::int", i)) == i
        after = bridge.stats()
    assert after.calls - before.calls == 10
    assert after.finished - before.finished == 10
    # Each side sleeps while the other works, so each call wakes each side at most
    # once (not at all if a side had not gone to sleep yet).
    assert after.loop_wakeups - before.loop_wakeups <= 10
    assert after.trio_wakeups - before.trio_wakeups <= 10


async def test_calls_made_while_the_loop_is_busy_cost_no_wakeup(url: str) -> None:
    results: dict[int, object] = {}

    async def call(i: int, pool: Any, bridge: AsyncioBridge) -> None:
        results[i] = await bridge.run(query(pool, "SELECT $1::int * 2", i))

    async with bridged_pool(url) as (bridge, pool), trio.open_nursery() as nursery:
        async with loop_blocked(bridge):
            before = bridge.stats()
            for i in range(20):
                nursery.start_soon(call, i, pool, bridge)
            await trio.testing.wait_all_tasks_blocked()
            queued = bridge.stats()
        # Twenty calls, and no wake-up: the loop was not waiting for I/O, it takes
        # them all when it next comes back to its wait.
        assert queued.calls - before.calls == 20
        assert queued.loop_wakeups == before.loop_wakeups
    assert results == {i: i * 2 for i in range(20)}


async def test_calls_that_finish_while_trio_is_busy_cost_no_wakeup(url: str) -> None:
    results: dict[int, object] = {}
    async with bridged_pool(url) as (bridge, pool):
        loop = await the_loop(bridge)
        gate = await bridge.run(_async, asyncio.Event)

        def gated(i: int) -> Callable[[], Any]:
            async def run() -> object:
                await gate.wait()
                return await query(pool, "SELECT $1::int + 1", i)()

            return run

        async def call(i: int) -> None:
            results[i] = await bridge.run(gated(i))

        async with trio.open_nursery() as nursery:
            for i in range(20):
                nursery.start_soon(call, i)
            await trio.testing.wait_all_tasks_blocked()
            before = bridge.stats()
            loop.call_soon_threadsafe(gate.set)
            # Trio is busy (this task holds its thread) until all twenty have finished.
            wait_in_trio_thread(lambda: bridge.stats().finished - before.finished == 20)
        after = bridge.stats()
    assert results == {i: i + 1 for i in range(20)}
    assert after.trio_wakeups == before.trio_wakeups


async def echo(value: T) -> T:
    return value


async def _async(make: Callable[[], object]) -> Any:
    """`make()` called on the loop's thread (asyncio objects bind to their loop)."""
    return make()


async def test_many_tasks_calling_at_once_each_get_their_own_results(url: str) -> None:
    got: dict[tuple[int, int], object] = {}

    async def caller(task: int, bridge: AsyncioBridge, pool: Any) -> None:
        for i in range(25):
            got[task, i] = await bridge.run(query(pool, "SELECT $1::int * 1000 + $2::int", task, i))

    async with bridged_pool(url) as (bridge, pool):
        before = bridge.stats()
        # A wake-up lost between the threads would leave a caller blocked: fail, not hang.
        with trio.fail_after(3 * WAIT):
            async with trio.open_nursery() as nursery:
                for task in range(40):
                    nursery.start_soon(caller, task, bridge, pool)
        after = bridge.stats()
    assert got == {(t, i): t * 1000 + i for t in range(40) for i in range(25)}
    calls = after.calls - before.calls
    assert calls == after.finished - before.finished == 1000
    # Concurrent calls share wake-ups (how many depends on timing; never more than one each).
    assert after.loop_wakeups - before.loop_wakeups <= calls
    assert after.trio_wakeups - before.trio_wakeups <= calls


# -- errors ------------------------------------------------------------------------------


async def test_an_error_reaches_its_caller_only_and_the_rest_of_the_group_succeeds(
    url: str,
) -> None:
    outcomes: dict[int, object] = {}

    async def call(i: int, pool: Any, bridge: AsyncioBridge) -> None:
        sql = "SELECT 1 / $1::int" if i == 3 else "SELECT $1::int"
        try:
            outcomes[i] = await bridge.run(query(pool, sql, 0 if i == 3 else i))
        except asyncpg.DivisionByZeroError as exc:
            outcomes[i] = exc

    async with (
        bridged_pool(url) as (bridge, pool),
        trio.open_nursery() as nursery,
        loop_blocked(bridge),  # so that the six are started together
    ):
        for i in range(6):
            nursery.start_soon(call, i, pool, bridge)
        await trio.testing.wait_all_tasks_blocked()
    assert isinstance(outcomes.pop(3), asyncpg.DivisionByZeroError)
    assert outcomes == {0: 0, 1: 1, 2: 2, 4: 4, 5: 5}


async def test_a_function_that_raises_before_awaiting_raises_in_its_caller() -> None:
    def not_a_coroutine_function() -> Any:
        raise LookupError("raised when called")

    async with open_asyncio_bridge() as bridge:
        with pytest.raises(LookupError, match="raised when called"):
            await bridge.run(not_a_coroutine_function)
        assert await bridge.run(echo, "still works") == "still works"


# -- cancellation ------------------------------------------------------------------------


async def test_a_cancelled_caller_raises_only_after_its_task_cleaned_up(url: str) -> None:
    cleaned_up = threading.Event()

    async with bridged_pool(url, size=1) as (bridge, pool):

        async def sleeps_then_cleans_up() -> None:
            try:
                async with pool.acquire() as conn:
                    await conn.fetchval("SELECT pg_sleep(60)")
            finally:
                # Runs after the statement was cancelled and the connection reset.
                await asyncio.sleep(0.05)
                cleaned_up.set()

        with trio.move_on_after(0.3) as waited:
            await bridge.run(sleeps_then_cleans_up)
        assert waited.cancelled_caught
        assert cleaned_up.is_set()
        # The one connection went back to the pool, idle and usable.
        assert await bridge.run(query(pool, "SELECT 7")) == 7


async def test_a_call_cancelled_before_the_loop_started_it_never_runs(url: str) -> None:
    ran: list[int] = []
    outcomes: dict[int, object] = {}

    async with bridged_pool(url) as (bridge, pool):

        def recorded(i: int) -> Callable[[], Any]:
            async def run() -> object:
                ran.append(i)
                return await query(pool, "SELECT $1::int", i)()

            return run

        async def call(i: int, scope: trio.CancelScope) -> None:
            with scope:
                outcomes[i] = await bridge.run(recorded(i))
                return
            outcomes[i] = "cancelled"

        scopes = [trio.CancelScope() for _ in range(5)]
        async with trio.open_nursery() as nursery, loop_blocked(bridge):
            for i, scope in enumerate(scopes):
                nursery.start_soon(call, i, scope)
            await trio.testing.wait_all_tasks_blocked()
            scopes[2].cancel()
            await trio.testing.wait_all_tasks_blocked()
            # Still blocked: the cancelled caller waits for the loop to cancel its task.
            assert 2 not in outcomes
    assert outcomes == {0: 0, 1: 1, 2: "cancelled", 3: 3, 4: 4}
    assert sorted(ran) == [0, 1, 3, 4]


async def test_a_caller_cancelled_after_its_call_finished_raises_cancelled(url: str) -> None:
    async with bridged_pool(url) as (bridge, pool):
        loop = await the_loop(bridge)
        # Holds the call on the asyncio side until trio's thread is blocked below: else a
        # fast call's result could reach trio before the cancellation (a CI run saw it).
        gate = asyncio.Event()

        async def gated() -> object:
            await gate.wait()
            return await query(pool, "SELECT 1")()

        before = bridge.stats()
        with trio.CancelScope() as scope:
            async with trio.open_nursery() as nursery:

                async def cancel_once_finished() -> None:
                    await trio.testing.wait_all_tasks_blocked()  # the call below is made
                    loop.call_soon_threadsafe(gate.set)
                    # Then its result is on its way back to trio, which has not taken it yet.
                    wait_in_trio_thread(lambda: bridge.stats().finished > before.finished)
                    scope.cancel()

                nursery.start_soon(cancel_once_finished)
                await bridge.run(gated)
                pytest.fail("the result of a cancelled call was returned")
        assert scope.cancelled_caught
        assert await bridge.run(query(pool, "SELECT 2")) == 2


async def test_cancelling_callers_at_random_loses_no_other_result(url: str) -> None:
    got: dict[tuple[int, int], object] = {}

    async def caller(task: int, bridge: AsyncioBridge, pool: Any) -> None:
        for i in range(30):
            got[task, i] = await bridge.run(query(pool, "SELECT $1::int * 100 + $2::int", task, i))

    async with bridged_pool(url) as (bridge, pool):
        async with trio.open_nursery() as nursery:
            for task in range(20):
                if task % 4 == 0:  # every fourth caller is cancelled somewhere along the way
                    scope = trio.CancelScope(deadline=trio.current_time() + 0.001 * task)
                    nursery.start_soon(cancelled_caller, scope, caller, task, bridge, pool)
                else:
                    nursery.start_soon(caller, task, bridge, pool)
        for task in range(20):
            if task % 4:
                assert [got[task, i] for i in range(30)] == [task * 100 + i for i in range(30)]
        assert await bridge.run(query(pool, "SELECT 3")) == 3
        stats = bridge.stats()
    assert stats.calls == stats.finished


async def cancelled_caller(scope: trio.CancelScope, caller: Any, *args: object) -> None:
    with scope:
        await caller(*args)


# -- shutdown ----------------------------------------------------------------------------


async def test_closing_a_pool_lets_the_statements_running_finish(url: str) -> None:
    """The store's own shutdown (`PostgresStore.aclose`): the pool closes once the
    calls in progress have finished, and their callers get their results."""
    results: list[object] = []

    async def call(i: int, bridge: AsyncioBridge, pool: Any) -> None:
        results.append(await bridge.run(query(pool, "SELECT $1::int FROM pg_sleep(0.2)", i)))

    with trio.fail_after(WAIT):
        async with trio.open_nursery() as nursery, bridged_pool(url, size=3) as (bridge, pool):
            for i in range(3):
                nursery.start_soon(call, i, bridge, pool)
            await trio.testing.wait_all_tasks_blocked()
    assert sorted(results) == [0, 1, 2]  # type: ignore[type-var]


async def test_calls_running_when_the_bridge_closes_fail_and_none_hangs() -> None:
    raised: list[BaseException] = []

    async def call(bridge: AsyncioBridge) -> None:
        try:
            await bridge.run(asyncio.sleep, 60)
        except RuntimeError as exc:
            raised.append(exc)

    with trio.fail_after(WAIT):
        async with trio.open_nursery() as nursery, open_asyncio_bridge() as bridge:
            for _ in range(10):
                nursery.start_soon(call, bridge)
            await trio.testing.wait_all_tasks_blocked()
    assert len(raised) == 10
    assert all("closed before the call finished" in str(exc) for exc in raised)
    assert bridge.stats().calls == bridge.stats().finished == 10


async def test_a_call_after_the_bridge_closed_raises_at_once() -> None:
    async with open_asyncio_bridge() as bridge:
        assert await bridge.run(echo, 1) == 1
    with trio.fail_after(WAIT), pytest.raises(RuntimeError, match="bridge is closed"):
        await bridge.run(echo, 2)


async def test_a_call_whose_task_was_cancelled_before_its_first_step_is_resumed_at_close() -> None:
    """Only the bridge cancels its tasks, but should other code on the loop cancel one before
    its first step (so the call's coroutine never runs to hand its outcome over), the
    caller is still resumed, with `RuntimeError`, when the bridge closes."""
    entered = threading.Event()
    queued = threading.Event()
    raised: list[BaseException] = []

    def cancel_unstarted_tasks() -> None:
        for task in asyncio.all_tasks():
            if inspect.getcoroutinestate(task.get_coro()) == inspect.CORO_CREATED:  # type: ignore[arg-type]
                task.cancel()

    async def arm() -> None:
        # Blocks the loop until trio has queued the next call, then has the loop cancel the
        # task made for it in its next pass, before that task's first step.
        entered.set()
        assert queued.wait(WAIT)
        asyncio.get_running_loop().call_soon(cancel_unstarted_tasks)

    async def victim(bridge: AsyncioBridge) -> None:
        try:
            await bridge.run(echo, "never")
        except RuntimeError as exc:
            raised.append(exc)

    with trio.fail_after(WAIT):
        async with trio.open_nursery() as nursery, open_asyncio_bridge() as bridge:
            nursery.start_soon(bridge.run, arm)
            await trio.testing.wait_all_tasks_blocked()
            assert entered.wait(WAIT)  # the loop's thread is inside `arm`
            nursery.start_soon(victim, bridge)
            await trio.testing.wait_all_tasks_blocked()
            queued.set()
            wait_in_trio_thread(lambda: bridge.stats().finished >= 1)  # `arm`
    assert len(raised) == 1
    assert "closed before the call finished" in str(raised[0])
    assert bridge.stats().calls == bridge.stats().finished == 2
