"""`PostgresStore`: the shared `Store` of a cluster, asyncpg behind the asyncio bridge.

Every call crosses the bridge (`bridge.py`), takes a connection
(`_Connections`) and runs one transaction of `roles/` there
(`dialect.execute` runs its statements), or the append of `append.py`;
`errors.py` translates what the driver raises into `StoreError`s.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, Final, TypeVar, final

import asyncpg
import trio

from chorus.logs import redact_url

from .._errors import StoreUnavailable
from .._model import AdmittedBatch, Appended, NewMessage
from .._sql import MakeTx, UniqueViolation, run_async
from ..roles import StoreOnSql
from ..roles.events import Admit, admitted, with_refusals
from ..roles.files import with_attachments
from . import warmup
from .append import Append
from .bridge import AsyncioBridge, open_asyncio_bridge
from .dialect import Conn, execute
from .errors import translate_errors
from .schema import migrate_url
from .search import TSVECTOR
from .standings import Row, SeenStandings, fingerprints, standings

T = TypeVar("T")
Work = Callable[[Conn], Awaitable[T]]
"""What runs on one pooled connection (asyncio side)."""

DEFAULT_CONNECT_TIMEOUT: Final = 5.0
"""Seconds to open one connection (TCP, TLS, login) before `StoreUnavailable`."""
DEFAULT_COMMAND_TIMEOUT: Final = 15.0
"""Seconds one statement (or waiting for a pooled connection) may take before `StoreUnavailable`."""

IDLE_SECONDS: Final = 150.0
"""A connection unused this long goes back to asyncpg's pool, which closes it after as long
again unused (it is reopened on demand)."""

# A write that stores an event under a (sender, client id) that another
# transaction stored in another room meanwhile runs again (see `_retrying`); more
# than this many collisions in a row is not a race.
_ATTEMPTS: Final = 3


@final
class PostgresStore(StoreOnSql):
    """The `Store` on a PostgreSQL database; get one from `open_postgres_store`.

    Calls run concurrently on a pool of connections, each as one transaction
    (READ COMMITTED, with row locks where rows are read then written). Any
    number of stores, in any number of processes, may share one database:
    appends lock their room's row, so seqs stay contiguous across nodes.

    Errors: a database that cannot be reached, refuses connections, times out
    or is shutting down raises `StoreUnavailable` within the connect and
    command timeouts; the pool reconnects by itself once it is back. No
    asyncpg or socket exception reaches callers. A connection lost during
    COMMIT leaves the outcome unknown to the client: then `StoreUnavailable`
    is raised although the write may have been stored. Retrying an append is
    safe (client ids); other writes should be checked before being repeated.

    Cancelling a call cancels its statement; the transaction is rolled back
    and the connection reset before it returns to the pool, and the call
    raises `trio.Cancelled` only after that (see `bridge.py`).
    """

    _full_text = TSVECTOR

    def __init__(self, pool: Any, bridge: AsyncioBridge, url: str, command_timeout: float) -> None:
        self._pool = pool
        self._connections = _Connections(pool, command_timeout)
        self._bridge = bridge
        self._seen = SeenStandings()
        """Senders' standings last read by `append_admitted` (asyncio side)."""
        self._closed = False
        self.url: Final = redact_url(url)

    def __repr__(self) -> str:
        return f"<PostgresStore {self.url!r}{' closed' if self._closed else ''}>"

    async def append_messages(self, room_id: str, batch: Sequence[NewMessage]) -> list[Appended]:
        """See `Store.append_messages` (the fast path: `append.py`)."""
        append = Append(room_id, batch)
        # The plain hot path is one statement, so it needs no transaction block.
        return await self._retrying(append, transaction=append.rich)

    async def append_admitted(
        self,
        room_id: str,
        batch: Sequence[NewMessage],
        admit: Admit,
        now: int,
        *,
        known: int | None = None,
    ) -> AdmittedBatch:
        """See `Store.append_admitted`, in one call across the bridge, on one pooled
        connection: a stored batch costs one hand-off and, when this store has read all
        its senders' standings before and they are unchanged, one statement (a second
        only when an earlier event has files).

        The batch is judged on the standings last read here (`SeenStandings`), and
        stored by the append's statement only if the same statement finds every one of
        them unchanged (`Append.if_standings`): the verdicts are those a read from that
        statement's snapshot gives, as with a read of its own just before. Otherwise
        (a sender not read yet, a standing changed, or every sender refused) the
        standings are read first, then the admitted messages appended: two statements.
        """
        batch = list(batch)  # a copy: it is read in the asyncio thread
        senders = list(dict.fromkeys(new.sender_id for new in batch))
        seen = self._seen

        async def work(conn: Conn) -> AdmittedBatch:
            # asyncio side: `admit` is a pure function of the standings, safe in any thread.
            rows = seen.rows(room_id, senders)
            if rows is not None:
                done = await store(conn, rows, checked=True)
                if done is not None:
                    return done
            done = await store(conn, await seen.read(conn, room_id, senders), checked=False)
            assert done is not None  # only a checked append gives up
            return done

        async def store(conn: Conn, rows: dict[str, Row], *, checked: bool) -> AdmittedBatch | None:
            kept, refusals = admitted(batch, standings(rows, now), admit)
            if not kept:
                # Nothing to append, so nothing would check the standings kept: read them.
                return None if checked else AdmittedBatch(with_refusals(refusals, []), [])
            append = Append(room_id, kept, known)
            if not append.rich:
                appended = await _append(conn, append, rows, checked)
            else:
                async with conn.transaction():
                    appended = await _append(conn, append, rows, checked)
            if appended is None:
                return None
            before = append.earlier
            if append.with_files:
                # After the commit: the room's lock is not held for this read.
                try:
                    before = await _on(lambda: with_attachments(append.earlier))(conn)
                except (asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError, OSError):
                    # The batch is stored: failing to read what came before must not refuse
                    # it. The caller still sees the gap and reads it (`RoomActor._backfill`).
                    before = []
            return AdmittedBatch(with_refusals(refusals, appended), before)

        return await self._retrying(work, transaction=False)

    # -- running transactions --------------------------------------------------------

    async def _read(self, tx: MakeTx[T]) -> T:
        # No transaction block: under READ COMMITTED each statement sees a fresh
        # snapshot either way, and BEGIN and COMMIT would cost two round trips.
        return await self._run(_on(tx), transaction=False)

    async def _write(self, tx: MakeTx[T], *, one_statement: bool = False) -> T:
        return await self._retrying(_on(tx), transaction=not one_statement)

    async def _retrying(self, work: Work[T], *, transaction: bool) -> T:
        """Run `work`, starting again when it raced with the same client id stored elsewhere.

        The lock of a room does not cover a client id sent to two rooms at
        once: the unique (sender_id, client_id) constraint catches it, and
        the next attempt finds the other one's event as the original.
        """
        for attempt in range(_ATTEMPTS):
            try:
                return await self._run(work, transaction=transaction)
            except UniqueViolation as exc:
                if exc.constraint != "messages_sender_client":
                    raise
                if attempt == _ATTEMPTS - 1:
                    raise StoreUnavailable(
                        f"{self.url}: client ids keep being stored concurrently elsewhere; retry"
                    ) from exc
        raise AssertionError("unreachable")

    async def _run(self, work: Work[T], *, transaction: bool) -> T:
        """Run `work` on a pooled connection, in a transaction if asked."""
        if self._closed:
            raise StoreUnavailable(f"{self.url}: the store is closed")
        with translate_errors(self.url):
            return await self._bridge.run(self._connections.run, work, transaction)

    async def aclose(self) -> None:
        """Close the pool; calls in progress finish first, later calls raise `StoreUnavailable`.

        Closing twice is harmless; `open_postgres_store` closes the store when
        its block exits.
        """
        if self._closed:
            return
        self._closed = True
        with translate_errors(self.url):
            await self._bridge.run(self._connections.close)


@contextlib.asynccontextmanager
async def open_postgres_store(
    url: str,
    *,
    min_size: int = 1,
    max_size: int = 10,
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
    command_timeout: float = DEFAULT_COMMAND_TIMEOUT,
    warm_up: bool = False,
) -> AsyncIterator[PostgresStore]:
    """Open the PostgreSQL database at `url` (`postgresql://user:pass@host:port/db`) as a `Store`.

    Applies pending migrations first (safe while other nodes do the same).
    Keeps a pool of `min_size` to `max_size` connections on one asyncio
    loop (in a thread of its own) for the block's lifetime. Raises
    `StoreUnavailable` if the database cannot be reached within
    `connect_timeout` seconds, `SchemaTooNew` if a newer Chorus migrated it.
    With `warm_up`, each connection stores a throwaway batch and rolls it back
    when it opens (`warmup.warm_up`), so its first real batch is not its slowest,
    and none is closed for being idle (without, one is after twice `IDLE_SECONDS` unused).
    A call whose statements take longer than `command_timeout` seconds in
    all (give or take an eighth of it, at most a second), or that waits
    that long for a free connection, raises `StoreUnavailable`.
    """
    async with open_asyncio_bridge() as bridge:
        with translate_errors(redact_url(url)):
            await bridge.run(migrate_url, url, connect_timeout)
            pool = await bridge.run(_create_pool, url, min_size, max_size, connect_timeout, warm_up)
        store = PostgresStore(pool, bridge, url, command_timeout=command_timeout)
        try:
            yield store
        finally:
            # Shielded so that a cancelled owner still closes its connections cleanly.
            with trio.CancelScope(shield=True):
                await store.aclose()


async def migrate_postgres(
    url: str, *, connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
) -> list[int]:
    """Bring the PostgreSQL database at `url` to the newest schema.

    Returns the versions applied, oldest first; empty when it was up to date,
    so running it again is harmless. Raises like `open_postgres_store`.
    """
    async with open_asyncio_bridge() as bridge:
        with translate_errors(redact_url(url)):
            return await bridge.run(migrate_url, url, connect_timeout)


# -- asyncio side ------------------------------------------------------------------


@final
class _Connections:
    """The store's connections (asyncio side): taken from asyncpg's pool once, then kept
    between calls while they stay clean.

    Why not `pool.acquire()` per call: asyncpg's acquire and release cost a
    timer each (the acquire's and release's timeouts), a task (release runs
    under `asyncio.shield`), the reset hooks and the idle timer's rearming;
    with the timers' heap that was about a fifth of the asyncio thread's
    instructions per stored batch (docs/benchmarks.md, "Issue #15, session 10").
    Here a call that finds a kept connection idle takes it with a `list.pop`
    and puts it back with an `append`. For the same reason the pool's
    connections have no `command_timeout` (asyncpg arms and cancels a timer
    per statement): one watchdog timer, armed while calls run, cancels the
    calls that ran longer than `timeout` seconds, which then raise `TimeoutError`.

    Guarantees: at most the pool's `max_size` connections are in use or kept;
    a call waits at most `timeout` seconds for one, and its statements take at
    most `timeout` seconds in all, give or take the watchdog's period (an eighth
    of `timeout`, at most a second), or it raises `TimeoutError`.
    A connection goes back to asyncpg's pool, which resets it (rolling back
    whatever a cancellation left open) or replaces it if it is broken,
    whenever its call raised or was cancelled, when it is left inside a
    transaction or closed, and when it stayed unused for `IDLE_SECONDS` (checked
    when a call takes a connection: a store that gets no calls keeps them).
    Waiting calls are served in order. Not thread-safe: the loop's thread only.
    """

    def __init__(self, pool: Any, timeout: float) -> None:
        self._pool = pool
        self._acquire_timeout = self._timeout = timeout
        self._period = min(1.0, timeout / 8)
        self._deadlines: dict[asyncio.Task[Any], float] = {}
        """The calls running on a connection, with when each must have finished."""
        self._timed_out: set[asyncio.Task[Any]] = set()
        """Those the watchdog cancelled."""
        self._watchdog: asyncio.TimerHandle | None = None
        self._closing = False
        """Set by `close`: connections of the calls still running go back to the pool, which
        waits for them before it closes."""
        self._max = pool.get_max_size()
        self._taken = 0
        """Connections taken from the pool (in use or kept idle)."""
        self._idle: list[tuple[Conn, float]] = []
        """Kept connections not in use, with when each was last put back, oldest first."""
        self._waiting: collections.deque[asyncio.Future[Conn | None]] = collections.deque()
        """Calls waiting for a connection (or for a free place, given as None), in order."""

    async def run(self, work: Work[T], transaction: bool) -> T:
        """`work` on a connection, in a transaction if asked."""
        loop = asyncio.get_running_loop()
        conn = self._kept(loop)
        if conn is None:
            conn = await self._take()
        task = asyncio.current_task()
        assert task is not None
        self._deadlines[task] = loop.time() + self._timeout
        if self._watchdog is None:
            self._watchdog = loop.call_later(self._period, self._watch)
        try:
            if not transaction:
                result = await work(conn)
            else:
                async with conn.transaction():
                    result = await work(conn)
        except asyncio.CancelledError:
            del self._deadlines[task]
            await self._give_back(conn)
            if task in self._timed_out:
                self._timed_out.discard(task)
                task.uncancel()
                raise TimeoutError(f"a call ran longer than {self._timeout} s") from None
            raise
        except BaseException:
            del self._deadlines[task]
            await self._give_back(conn)
            raise
        del self._deadlines[task]
        if task in self._timed_out:
            # Cancelled by the watchdog as it finished: take the cancellation here, or the
            # task would end cancelled whatever it returned.
            self._timed_out.discard(task)
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.sleep(0)
            task.uncancel()
        if self._closing or _unusable(conn) or conn.is_in_transaction():
            await self._give_back(conn)
        else:
            self._hand_over(conn)
        return result

    def _watch(self) -> None:
        """Cancel the calls past their deadline; armed again while calls run."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        for task, deadline in self._deadlines.items():
            if deadline <= now and task not in self._timed_out:
                self._timed_out.add(task)
                task.cancel()
        self._watchdog = loop.call_later(self._period, self._watch) if self._deadlines else None

    def _kept(self, loop: asyncio.AbstractEventLoop) -> Conn | None:
        """The newest kept connection, taken without awaiting, when that is all `_take` would
        do (it is usable and no other kept one is due to expire); else None (then `_take`)."""
        idle = self._idle
        if not idle or (len(idle) > 1 and loop.time() - idle[0][1] >= IDLE_SECONDS):
            return None
        conn = idle[-1][0]
        if _unusable(conn):
            return None
        idle.pop()
        return conn

    async def _take(self) -> Conn:
        idle = self._idle
        while idle:
            conn, _ = idle.pop()
            if idle and asyncio.get_running_loop().time() - idle[0][1] >= IDLE_SECONDS:
                await self._expire()
            if not _unusable(conn):
                return conn
            await self._give_back(conn)  # lost while idle: the pool replaces it
        if self._taken < self._max:
            self._taken += 1
            return await self._acquire()
        # Every connection is in use: wait for one to be put back (or its place freed).
        waiter: asyncio.Future[Conn | None] = asyncio.get_running_loop().create_future()
        self._waiting.append(waiter)
        try:
            async with asyncio.timeout(self._acquire_timeout):
                conn = await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self._hand_over(waiter.result())  # given as this call gave up: pass it on
            else:
                waiter.cancel()
            raise
        return conn if conn is not None else await self._acquire()

    async def _acquire(self) -> Conn:
        """A connection from asyncpg's pool, for a place already counted in `_taken`."""
        try:
            return await self._pool.acquire(timeout=self._acquire_timeout)
        except BaseException:
            self._hand_over(None)
            raise

    def _hand_over(self, conn: Conn | None) -> None:
        """Give `conn` (or, with None, a free place) to the first call waiting; else keep
        `conn` idle (or free the place)."""
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_result(conn)
                return
        if conn is None:
            self._taken -= 1
        else:
            self._idle.append((conn, asyncio.get_running_loop().time()))

    async def _give_back(self, conn: Conn) -> None:
        """Return `conn` to asyncpg's pool (which resets or replaces it); its place is free."""
        try:
            await self._pool.release(conn)
        finally:
            self._hand_over(None)

    async def _expire(self) -> None:
        """Give back the kept connections unused for `IDLE_SECONDS`."""
        now = asyncio.get_running_loop().time()
        while self._idle and now - self._idle[0][1] >= IDLE_SECONDS:
            conn, _ = self._idle.pop(0)
            await self._give_back(conn)

    async def close(self) -> None:
        """Give back every kept connection, then close the pool (calls in use finish first)."""
        self._closing = True
        idle, self._idle = self._idle, []
        for conn, _ in idle:
            await self._give_back(conn)
        await self._pool.close()


def _unusable(conn: Conn) -> bool:
    """Whether a taken connection was closed or lost. asyncpg puts a connection lost while
    taken back into its pool itself and detaches the proxy we hold, whose methods then
    raise `InterfaceError` (giving such a proxy back to the pool does nothing)."""
    try:
        closed: bool = conn.is_closed()
    except asyncpg.InterfaceError:
        return True
    return closed


async def _create_pool(
    url: str, min_size: int, max_size: int, connect_timeout: float, warm_up: bool
) -> Any:
    return await asyncpg.create_pool(
        url,
        min_size=min_size,
        max_size=max_size,
        timeout=connect_timeout,
        # No per-statement timer: `_Connections`' watchdog bounds each call instead.
        command_timeout=None,
        # Connections given back idle (`_Connections`) are closed after a while and
        # reopened on demand; warmed ones stay open (0: never closed for being idle), or
        # the first batches after a quiet spell would wait for a connect and a warm-up.
        max_inactive_connection_lifetime=0 if warm_up else IDLE_SECONDS,
        reset=_keep_session,
        init=warmup.warm_up if warm_up else None,
    )


async def _keep_session(conn: Conn) -> None:
    """Reset nothing when a connection goes back to the pool (asyncpg's `reset` hook).

    The store never changes session state (no SET, LISTEN, session locks or
    cursors), and the pool still rolls back a transaction left open (after a
    cancellation) before calling this. asyncpg's default reset costs one more
    round trip per call.
    """


async def _append(
    conn: Conn, append: Append, rows: dict[str, Row], checked: bool
) -> list[Appended] | None:
    """`append` on `conn`, if `checked` only while `rows` are unchanged (else None)."""
    return await (append.if_standings(conn, fingerprints(rows)) if checked else append(conn))


def _on(tx: MakeTx[T]) -> Work[T]:
    """`tx` as work for a pooled connection."""
    return lambda conn: run_async(tx(), functools.partial(execute, conn))
