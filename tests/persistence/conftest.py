import itertools
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from chorus.persistence import PostgresStore, Store, open_postgres_store, open_sqlite_store
from tests.persistence.helpers import OpenStore
from tests.pgserver import PgServer, shared_pg_server

# Every backend the contract suite (tests/persistence/test_store_*.py) runs against.
BACKENDS = ["sqlite", "postgres"]


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """A private PostgreSQL for the whole test session (fails, never skips, if not installed)."""
    with shared_pg_server() as server:
        yield server


@asynccontextmanager
async def fresh_postgres_store(server: PgServer) -> AsyncIterator[PostgresStore]:
    """A store on a new, empty database of `server` (created from its empty template)."""
    _, url = await server.new_database()
    async with open_postgres_store(url, max_size=4) as store:
        yield store


@pytest.fixture(params=BACKENDS)
def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> OpenStore:
    """Opens a fresh, empty store of each backend; every call gives a new database.

    Hypothesis tests use it directly, to get a fresh store per example (each
    example runs in its own trio run, so an async fixture cannot span them).
    """
    backend: str = request.param
    numbers = itertools.count()
    if backend == "sqlite":
        return lambda: open_sqlite_store(tmp_path / f"chorus-{next(numbers)}.db")
    if backend == "postgres":
        # Requested lazily, so SQLite-only runs (-k sqlite) need no PostgreSQL.
        server: PgServer = request.getfixturevalue("pg_server")
        return lambda: fresh_postgres_store(server)
    raise AssertionError(f"no fixture for backend {backend!r}")


@pytest.fixture
async def store(open_store: OpenStore) -> AsyncIterator[Store]:
    """A fresh, empty store of each backend, seen only through the `Store` protocol."""
    async with open_store() as opened:
        yield opened
