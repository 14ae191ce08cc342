from collections.abc import Iterator

import pytest

from tests.pgserver import PgServer, shared_pg_server


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """The private PostgreSQL shared with tests/persistence (fails, never skips, if missing)."""
    with shared_pg_server() as server:
        yield server
