"""Transactions written once: sans-IO generators that yield SQL and are sent rows.

A transaction is a generator (`Tx[T]`): it yields one `Query` per statement,
is sent back that statement's rows, and returns its result. It never touches
a connection, so the same code runs on SQLite (`run_sync`, in the store's
worker thread) and on PostgreSQL (`run_async`, on an asyncpg connection).
Business rules (who may edit, what `Gone` means, seqs of events) live in
these generators, once; an engine supplies only what truly differs: how to
run a statement, its dialect, error translation, locking and its fast paths.

SQL is written once, in PostgreSQL's syntax restricted to what SQLite also
understands, with these forms, which the SQLite engine rewrites (`sqlite/dialect.py`):

- `$1`, `$2`… numbered parameters;
- `FOR NO KEY UPDATE` (optionally `OF alias`): row locks, which SQLite drops
  because its writer holds the whole database;
- `= ANY($n)` with a list argument: membership in a list of values;
- `lower(u.username)`: the case-insensitive key of a user.

Counts of changed rows come from `RETURNING`, so statements need no rowcount.
"""

from __future__ import annotations

import abc
from collections.abc import Awaitable, Callable, Generator, Sequence
from typing import Any, TypeAlias, TypeVar

import attrs

from ._errors import StoreError
from ._rows import Row

T = TypeVar("T")

Rows: TypeAlias = Sequence[Row]


@attrs.frozen
class Query:
    """One statement of a transaction, in the neutral SQL above.

    With `many`, `args` is a sequence of argument tuples: the statement runs
    once per tuple (executemany) and yields no rows.
    """

    sql: str
    args: Sequence[Any] = ()
    many: bool = False


Tx: TypeAlias = Generator[Query, Rows, T]
"""A transaction: yields queries, is sent their rows, returns its result."""

MakeTx: TypeAlias = Callable[[], Tx[T]]
"""Makes a fresh transaction: an engine may run it again (PostgreSQL retries races)."""


class Engine(abc.ABC):
    """A store that runs transactions: the base of the role implementations (`roles/`).

    Each engine's store implements these two and inherits every role's methods.
    """

    @abc.abstractmethod
    async def _read(self, tx: MakeTx[T]) -> T:
        """Run a transaction that only reads; its statements see committed data."""

    @abc.abstractmethod
    async def _write(self, tx: MakeTx[T], *, one_statement: bool = False) -> T:
        """Run a transaction that writes, entirely or not at all; durable once returned.

        `one_statement` promises that `tx` runs exactly one statement, so an
        engine may skip the transaction block around it.
        """


class UniqueViolation(StoreError):
    """A statement broke a uniqueness rule; thrown into the transaction at its `yield`.

    `constraint` is the constraint's name where the engine reports it
    (PostgreSQL), else None. A transaction may catch it (or
    `ForeignKeyViolation`) only to raise another error: PostgreSQL aborts
    the transaction at the first failed statement. Uncaught, it reaches the
    caller as a plain `StoreError`.
    """

    def __init__(self, message: str, constraint: str | None = None) -> None:
        super().__init__(message)
        self.constraint = constraint


class ForeignKeyViolation(StoreError):
    """A statement referred to a row that does not exist (see `UniqueViolation`)."""


def run_sync(tx: Tx[T], execute: Callable[[Query], Rows]) -> T:
    """Drive `tx` to its end, running each of its queries with `execute` (blocking).

    An `Exception` raised by `execute` is thrown into `tx` at its `yield`;
    what `tx` raises propagates.
    """
    # A plain loop: it costs about a microsecond per statement, a third of
    # what wrapping each result in an `outcome` did.
    try:
        query = next(tx)
        while True:
            try:
                rows = execute(query)
            except Exception as exc:
                query = tx.throw(exc)
            else:
                query = tx.send(rows)
    except StopIteration as stop:
        result: T = stop.value
        return result


async def run_async(tx: Tx[T], execute: Callable[[Query], Awaitable[Rows]]) -> T:
    """Drive `tx` to its end, awaiting `execute` for each of its queries (see `run_sync`)."""
    try:
        query = next(tx)
        while True:
            try:
                rows = await execute(query)
            except Exception as exc:
                query = tx.throw(exc)
            else:
                query = tx.send(rows)
    except StopIteration as stop:
        result: T = stop.value
        return result


# -- statement shortcuts for transactions (`row = yield from fetch_one(...)`) ------


def fetch(sql: str, *args: Any) -> Tx[Rows]:
    """The rows of one statement."""
    return (yield Query(sql, args))


def fetch_one(sql: str, *args: Any) -> Tx[Row | None]:
    """The first row of one statement, or None."""
    rows = yield Query(sql, args)
    return rows[0] if rows else None


def fetch_value(sql: str, *args: Any) -> Tx[Any]:
    """The first column of the first row of one statement, or None."""
    rows = yield Query(sql, args)
    return rows[0][0] if rows else None


def execute(sql: str, *args: Any) -> Tx[None]:
    """Run one statement for its effect."""
    yield Query(sql, args)


def execute_many(sql: str, args: Sequence[Sequence[Any]]) -> Tx[None]:
    """Run one statement once per argument tuple (nothing when `args` is empty)."""
    if args:
        yield Query(sql, args, many=True)
