from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.pgserver import PgServer, shared_pg_server
from tests.redisserver import RedisServer, running_redis


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """The private PostgreSQL shared with tests/persistence (fails, never skips, if missing)."""
    with shared_pg_server() as server:
        yield server


@pytest.fixture
async def redis(tmp_path: Path) -> AsyncIterator[RedisServer]:
    """A private Redis for one test, in its own directory under the test's `tmp_path`."""
    async with running_redis(tmp_path / "redis") as server:
        yield server
