import itertools
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from chorus.persistence import Store, open_sqlite_store
from tests.persistence.helpers import OpenStore

# Every backend the contract suite (tests/persistence/test_store_*.py) runs against.
BACKENDS = ["sqlite"]


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
    raise AssertionError(f"no fixture for backend {backend!r}")


@pytest.fixture
async def store(open_store: OpenStore) -> AsyncIterator[Store]:
    """A fresh, empty store of each backend, seen only through the `Store` protocol."""
    async with open_store() as opened:
        yield opened
