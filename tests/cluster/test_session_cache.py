"""Session caching across nodes: a revocation on one node is refused at once on another."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.cluster.nodes import running_nodes
from tests.pgserver import PgServer
from tests.redisserver import RedisServer

PASSWORD = "long enough password"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_a_session_revoked_on_one_node_is_refused_at_once_where_it_was_cached(
    tmp_path: Path, pg_server: PgServer, redis: RedisServer
) -> None:
    _, database_url = await pg_server.new_database()
    # A TTL far longer than the test: only the invalidation can end the cached entry.
    env = {"CHORUS_SESSION_CACHE_TTL": "600"}
    async with (
        running_nodes(tmp_path, 2, database_url=database_url, redis_url=redis.url, env=env) as (
            a,
            b,
        ),
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{a.http_port}") as on_a,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{b.http_port}") as on_b,
    ):
        ada = await on_a.post(
            "/api/v1/auth/register", json={"username": "ada", "password": PASSWORD}
        )
        assert ada.status_code == 201
        for round_ in range(3):
            # Each session is checked on B (and so cached) before A ends it.
            login = await on_a.post(
                "/api/v1/auth/login", json={"username": "ada", "password": PASSWORD}
            )
            tokens = login.json()
            for _ in range(3):
                assert (
                    await on_b.get("/api/v1/users/me", headers=bearer(tokens["access_token"]))
                ).status_code == 200
            if round_ == 0:
                ended = await on_a.post(
                    "/api/v1/auth/logout", headers=bearer(tokens["access_token"])
                )
            elif round_ == 1:
                ended = await on_a.delete(
                    f"/api/v1/auth/sessions/{tokens['session_id']}",
                    headers=bearer(ada.json()["access_token"]),
                )
            else:
                ended = await on_a.post(
                    "/api/v1/auth/sessions/revoke-others",
                    headers=bearer(ada.json()["access_token"]),
                )
            assert ended.is_success, ended.text
            refused = await on_b.get("/api/v1/users/me", headers=bearer(tokens["access_token"]))
            assert refused.status_code == 401, round_
        # The session that stayed is still served on both nodes.
        for client in (on_a, on_b):
            me = await client.get("/api/v1/users/me", headers=bearer(ada.json()["access_token"]))
            assert me.status_code == 200
