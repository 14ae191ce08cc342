from collections.abc import AsyncIterator

import pytest

from tests.clamdserver import ClamdServer, running_clamd


@pytest.fixture
async def clamd() -> AsyncIterator[ClamdServer]:
    """A private clamd for one test (fails, never skips, when clamd is not installed)."""
    async with running_clamd() as server:
        yield server
