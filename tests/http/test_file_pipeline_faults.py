"""The file pipeline when the database goes away mid-file (issue #13 item 2)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, MutableMapping
from pathlib import Path
from typing import Any

import pytest
import structlog
import trio
from prometheus_client import REGISTRY

from chorus.node import FILES_DIR
from tests.clamdserver import ClamdServer, running_clamd
from tests.http.conftest import open_server
from tests.http.test_files import TEXT, final, upload
from tests.pgserver import PgServer
from tests.polling import until


@pytest.fixture
def own_pg() -> Iterator[PgServer]:
    """A PostgreSQL of this test's own: it is stopped and started again."""
    server = PgServer()
    try:
        server.init()
        server.start()
        server.create_template()
        yield server
    finally:
        server.remove()


@pytest.fixture
async def clamd() -> AsyncIterator[ClamdServer]:
    async with running_clamd() as server:
        yield server


def store_retries() -> float:
    return (
        REGISTRY.get_sample_value("chorus_file_pipeline_retries_total", {"service": "store"}) or 0
    )


async def test_a_file_is_finished_once_the_store_is_back(
    tmp_path: Path, own_pg: PgServer, clamd: ClamdServer
) -> None:
    # Regression: a StoreUnavailable while recording the outcome was not retried;
    # the file stayed `scanning` for good and its spooled bytes were deleted.
    _, url = await own_pg.new_database()
    settings = {"database_url": url, "scanner": "clamd", "clamd_address": clamd.tcp_address}
    retries = store_retries()
    with structlog.testing.capture_logs() as logs:
        async with open_server(tmp_path, **settings) as server:
            ada = await server.register("ada")
            await clamd.stop()  # the file waits, scanning, for clamd
            file_id = (await upload(server, ada, TEXT)).json()["id"]

            async def scanning() -> bool:
                found = await server.services.store.get_file(file_id)
                return found is not None and found.state.value == "scanning"

            await until(scanning)
            await trio.to_thread.run_sync(own_pg.stop)
            await clamd.start()  # scanned and stored; recording READY fails

            def failed(entry: MutableMapping[str, Any]) -> bool:
                return entry.get("file_id") == file_id and entry["event"] in (
                    "files.store_unavailable",
                    "files.pipeline_failed",
                )

            async def store_failed() -> bool:
                return any(failed(entry) for entry in logs)

            await until(store_failed, timeout=60)
            stored = tmp_path / FILES_DIR / "files" / file_id / "original"
            assert stored.read_bytes() == TEXT
            await trio.to_thread.run_sync(own_pg.start)
            done = await final(server, ada, file_id, timeout=60)
            assert (done["state"], done["scan"]) == ("ready", "clean")
            assert store_retries() > retries
            assert not any(entry["event"] == "files.pipeline_failed" for entry in logs)
