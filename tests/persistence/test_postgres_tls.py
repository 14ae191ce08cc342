"""The PostgreSQL store over TLS (`sslmode` in `database_url`), against a private server
with `ssl = on` and a `trustme` certificate (issue #16 item 6)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio

from chorus.persistence import StoreError, open_postgres_store
from chorus.readiness import store_answers
from tests.pgserver import PgServer
from tests.tlsfiles import TlsFiles, tls_files


@pytest.fixture
async def tls_server(tmp_path: Path) -> AsyncIterator[tuple[PgServer, TlsFiles]]:
    tls = tls_files(tmp_path / "tls")
    server = PgServer(tls=tls)
    try:
        await trio.to_thread.run_sync(server.init)
        await trio.to_thread.run_sync(server.start)
        yield server, tls
    finally:
        await trio.to_thread.run_sync(server.remove)


async def test_the_store_connects_over_verified_tls(
    tmp_path: Path, tls_server: tuple[PgServer, TlsFiles]
) -> None:
    server, tls = tls_server
    url = server.database_url("postgres") + f"?sslmode=verify-full&sslrootcert={tls.ca}"
    async with open_postgres_store(url, connect_timeout=10) as store:
        assert await store_answers(store)
    # Another CA's certificate is refused: the connection really is verified TLS.
    stranger = tls_files(tmp_path / "stranger")
    wrong = server.database_url("postgres") + f"?sslmode=verify-full&sslrootcert={stranger.ca}"
    with pytest.raises(StoreError):
        async with open_postgres_store(wrong, connect_timeout=10):
            pass
