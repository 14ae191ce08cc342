"""`SqliteStore`: the embedded `Store`, one SQLite file driven from a worker thread."""

from __future__ import annotations

import contextlib
import functools
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from pathlib import Path
from typing import Final, Generic, TypeVar, final

import attrs
import outcome
import trio

from .._errors import StoreUnavailable
from .._migrations import load_migrations
from .._model import AdmittedBatch, Appended, NewMessage, now_ms
from .._sql import MakeTx, run_sync
from ..roles import StoreOnSql
from ..roles.events import Admit, admitted, earlier, earlier_needed, with_refusals
from .append import append_messages, standings_and_last_seq
from .dialect import execute
from .group_commit import GroupCommit
from .schema import Synchronous, connect, migrate
from .search import FTS5

T = TypeVar("T")

DEFAULT_BUSY_TIMEOUT: Final = 5.0
"""Seconds a write waits for another process's lock before `StoreUnavailable`."""
COMMIT_WINDOW: Final = 0.0
"""Seconds between the starts of two group commits while writes keep coming (see
`GroupCommit`). Off by default: batches grow by themselves under load (the writes
that arrive while a group is being committed share the next one), so a fixed wait
would only add latency when the node is not busy; a few milliseconds buy fewer
syncs and sends at the price of that latency (docs/benchmarks.md)."""

# Failures of the database rather than of the caller's request: the caller
# answers "unavailable, retry" (and acknowledges nothing).
_UNAVAILABLE: Final = frozenset(
    {
        sqlite3.SQLITE_BUSY,
        sqlite3.SQLITE_LOCKED,
        sqlite3.SQLITE_IOERR,
        sqlite3.SQLITE_CANTOPEN,
        sqlite3.SQLITE_FULL,
        sqlite3.SQLITE_READONLY,
        sqlite3.SQLITE_PROTOCOL,
        sqlite3.SQLITE_NOMEM,
        sqlite3.SQLITE_CORRUPT,
        sqlite3.SQLITE_NOTADB,
    }
)


@final
class SqliteStore(StoreOnSql):
    """The `Store` on one SQLite file; get one from `open_sqlite_store`.

    Calls never block the trio thread: they run in a worker thread, one
    transaction at a time and in arrival order (a fair `CapacityLimiter(1)`;
    SQLite has a single writer anyway). Writes are group-committed: those
    waiting while a transaction runs share the next one, so many rooms storing
    batches cost one sync (`GroupCommit`); a write that fails fails alone (its
    group runs again, with a savepoint per write).
    Reads join the same groups, each in its own transaction, so the reads
    and writes waiting for the worker thread share one hop. A call, once made, finishes
    (cancelling its caller does not cut it short): a transaction is never
    cut in half. A
    write that finished while its caller was being cancelled stays written,
    unacknowledged; an append retried with the same client ids then returns it.
    """

    _full_text = FTS5

    def __init__(self, conn: sqlite3.Connection, path: Path, *, commit_window: float = 0.0) -> None:
        self._conn: sqlite3.Connection | None = conn
        self._limiter = trio.CapacityLimiter(1)
        # Reads join the groups too (each in a transaction of its own), so that the
        # reads and writes of busy rooms share worker-thread hops (`_run_group`).
        self._calls = GroupCommit(self._run_group, self._limiter, window=commit_window)
        self.path: Final = path

    def __repr__(self) -> str:
        return f"<SqliteStore {str(self.path)!r}{' closed' if self._conn is None else ''}>"

    async def append_messages(self, room_id: str, batch: Sequence[NewMessage]) -> list[Appended]:
        """See `Store.append_messages` (the fast path: `append.py`)."""
        # A copy: the worker thread must not see the caller change the batch.
        batch = list(batch)

        def work(db: sqlite3.Connection) -> list[Appended]:
            return append_messages(db, room_id, batch)

        return await self._submit(work, gather=True)  # see COMMIT_WINDOW

    async def append_admitted(
        self,
        room_id: str,
        batch: Sequence[NewMessage],
        admit: Admit,
        now: int,
        *,
        known: int | None = None,
    ) -> AdmittedBatch:
        """See `Store.append_admitted`: the standings, the append and the earlier events
        are one write of the group commit (one worker-thread hop)."""
        batch = list(batch)
        senders = list(dict.fromkeys(new.sender_id for new in batch))

        def work(db: sqlite3.Connection) -> AdmittedBatch:
            # The room's last_seq comes with the standings: the append reads it no more.
            found, last_seq = standings_and_last_seq(db, room_id, senders, now)
            kept, refusals = admitted(batch, found, admit)
            appended = append_messages(db, room_id, kept, last_seq=last_seq) if kept else []
            first = earlier_needed(known, appended)
            if first is None:  # nearly always with one node: no transaction to run
                return AdmittedBatch(with_refusals(refusals, appended), [])
            assert known is not None  # `earlier_needed` found events after it
            events = run_sync(earlier(room_id, known, first), functools.partial(execute, db))
            return AdmittedBatch(with_refusals(refusals, appended), events)

        return await self._submit(work, gather=True)

    # -- running transactions --------------------------------------------------------

    async def _read(self, tx: MakeTx[T]) -> T:
        return await self._submit(_Read(_on(tx)))

    async def _write(self, tx: MakeTx[T], *, one_statement: bool = False) -> T:
        # Every write runs in a group's transaction, one statement or not.
        return await self._submit(_on(tx))

    async def _submit(self, work: Callable[[sqlite3.Connection], T], *, gather: bool = False) -> T:
        # `_translate_errors` inlined: a generator context manager costs ~10,000
        # instructions per call, one per message appended.
        try:
            return await self._calls.submit(work, gather=gather)
        except sqlite3.Error as exc:
            if (unavailable := _unavailable(self.path, exc)) is not None:
                raise unavailable from exc
            raise

    def _read_transaction(self, work: Callable[[sqlite3.Connection], T]) -> T:
        # Runs in the worker thread, holding the limiter: nothing else touches
        # the connection meanwhile, including `aclose`. A deferred BEGIN: the
        # reads of one call see one snapshot, and (WAL) never wait for another
        # process that is writing.
        conn = self._open_connection()
        conn.execute("BEGIN")
        try:
            result = work(conn)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return result

    def _run_group(
        self, group: Sequence[Callable[[sqlite3.Connection], object]]
    ) -> list[outcome.Outcome[object]]:
        # One worker-thread hop for a group: its reads first, each in its own
        # transaction (they were made concurrently with the writes, so either order
        # is one they could have had), then its writes in one transaction. A read
        # fails alone; a failed write transaction fails only the writes.
        results: list[outcome.Outcome[object] | None] = [None] * len(group)
        writes = []
        for index, work in enumerate(group):
            if isinstance(work, _Read):
                results[index] = outcome.capture(self._read_transaction, work.work)
            else:
                writes.append(index)
        if writes:
            try:
                written = self._transaction_group([group[index] for index in writes])
            except Exception as exc:
                written = [outcome.Error(exc)] * len(writes)
            for index, result in zip(writes, written, strict=True):
                results[index] = result
        return [result for result in results if result is not None]

    def _transaction_group(
        self, group: Sequence[Callable[[sqlite3.Connection], object]]
    ) -> list[outcome.Outcome[object]]:
        # One transaction. IMMEDIATE takes the write lock up front, so a write that
        # read rows (e.g. rooms.last_seq) cannot find them changed by another process
        # when it writes.
        conn = self._open_connection()
        written = self._all_or_nothing(conn, group)
        if not isinstance(written, Exception):
            return written
        if len(group) == 1:
            # Its transaction was its savepoint: rolling it back undid exactly what a
            # savepoint would have, two statements cheaper.
            return [outcome.Error(written)]
        return self._savepoint_per_write(conn, group)

    @staticmethod
    def _all_or_nothing(
        conn: sqlite3.Connection, group: Sequence[Callable[[sqlite3.Connection], object]]
    ) -> list[outcome.Outcome[object]] | Exception:
        # The common case: no write of the group fails, so none needs a savepoint of its
        # own (two statements fewer per write). If one raises, the transaction is rolled
        # back and its exception returned: a group of several runs again with a
        # savepoint per write, and the failure stays its own. A write may thus run
        # twice, which `MakeTx` allows (PostgreSQL retries races) and the appends are
        # written for (functions of the database, nothing kept outside it).
        conn.execute("BEGIN IMMEDIATE")
        try:
            results = [work(conn) for work in group]
        except Exception as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            return exc
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        try:
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return [outcome.Value(result) for result in results]

    @staticmethod
    def _savepoint_per_write(
        conn: sqlite3.Connection, group: Sequence[Callable[[sqlite3.Connection], object]]
    ) -> list[outcome.Outcome[object]]:
        # A group with a failing write: one savepoint per write, so the rest commit.
        conn.execute("BEGIN IMMEDIATE")
        results: list[outcome.Outcome[object]] = []
        try:
            for work in group:
                conn.execute("SAVEPOINT write")
                try:
                    result = work(conn)
                except Exception as exc:
                    conn.execute("ROLLBACK TO write")
                    conn.execute("RELEASE write")
                    results.append(outcome.Error(exc))
                else:
                    conn.execute("RELEASE write")
                    results.append(outcome.Value(result))
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return results

    def _open_connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreUnavailable(f"{self.path}: the store is closed")
        return self._conn

    async def aclose(self) -> None:
        """Close the database once the call in progress (if any) has finished.

        Calls made afterwards raise `StoreUnavailable`. Closing twice is
        harmless; `open_sqlite_store` closes the store when its block exits.
        """
        await trio.to_thread.run_sync(self._close_in_thread, limiter=self._limiter)

    def _close_in_thread(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        # Recommended by SQLite before closing a long-lived connection: refreshes
        # the planner's statistics where the workload showed they are stale. It
        # is housekeeping only, so its failure must not fail the close.
        with contextlib.suppress(sqlite3.Error):
            conn.execute("PRAGMA optimize")
        conn.close()


@contextlib.asynccontextmanager
async def open_sqlite_store(
    path: Path,
    *,
    busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
    synchronous: Synchronous = "FULL",
    commit_window: float = COMMIT_WINDOW,
) -> AsyncIterator[SqliteStore]:
    """Open the SQLite database at `path` (created with its folder if missing) as a `Store`.

    Applies pending migrations first. Raises `SchemaTooNew` if the database
    was migrated by a newer Chorus, `StoreUnavailable` if it cannot be opened
    or stays locked longer than `busy_timeout` seconds. The store is closed
    when the block exits, after any call in progress has finished; later
    calls raise `StoreUnavailable`. See `Synchronous` for `synchronous` and
    `COMMIT_WINDOW` for `commit_window`.
    """
    with _translate_errors(path):
        conn = await trio.to_thread.run_sync(_open_migrated, path, busy_timeout, synchronous)
    store = SqliteStore(conn, path, commit_window=commit_window)
    try:
        yield store
    finally:
        # Shielded so that a cancelled owner still closes the file cleanly.
        with trio.CancelScope(shield=True):
            await store.aclose()


async def migrate_sqlite(path: Path, *, busy_timeout: float = DEFAULT_BUSY_TIMEOUT) -> list[int]:
    """Bring the SQLite database at `path` (created if missing) to the newest schema.

    Returns the versions applied, oldest first; empty when it was up to date,
    so running it again is harmless. Raises like `open_sqlite_store`.
    """

    def run() -> list[int]:
        conn = connect(path, busy_timeout=busy_timeout, synchronous="FULL")
        try:
            return migrate(conn, load_migrations("sqlite"), database=str(path), now=now_ms())
        finally:
            conn.close()

    with _translate_errors(path):
        return await trio.to_thread.run_sync(run)


def _open_migrated(path: Path, busy_timeout: float, synchronous: Synchronous) -> sqlite3.Connection:
    conn = connect(path, busy_timeout=busy_timeout, synchronous=synchronous)
    try:
        migrate(conn, load_migrations("sqlite"), database=str(path), now=now_ms())
    except BaseException:
        conn.close()
        raise
    return conn


@contextlib.contextmanager
def _translate_errors(path: Path) -> Iterator[None]:
    """Turn sqlite3 errors that are the database's fault into `StoreError`s.

    Constraint failures are translated where they happen (`dialect.execute`),
    and transactions that expect them say what they mean; anything else (a
    bug, such as an SQL typo) is left as it is.
    """
    try:
        yield
    except sqlite3.Error as exc:
        if (unavailable := _unavailable(path, exc)) is not None:
            raise unavailable from exc
        raise


def _unavailable(path: Path, exc: sqlite3.Error) -> StoreUnavailable | None:
    """The `StoreUnavailable` that `exc` means (the database's fault), or None: leave it as
    it is (see `_translate_errors`)."""
    # Errors raised by the sqlite3 module itself (not by SQLite) carry no code.
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None and code & 0xFF in _UNAVAILABLE:
        return StoreUnavailable(f"{path}: {exc} ({exc.sqlite_errorname})")
    return None


@attrs.frozen
class _Read(Generic[T]):
    """A read submitted to the store's groups: run in its own transaction, not the group's."""

    work: Callable[[sqlite3.Connection], T]

    def __call__(self, db: sqlite3.Connection) -> T:
        return self.work(db)


def _on(tx: MakeTx[T]) -> Callable[[sqlite3.Connection], T]:
    """`tx` as work for the worker thread: run on the store's connection."""
    return lambda db: run_sync(tx(), functools.partial(execute, db))
