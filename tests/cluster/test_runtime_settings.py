"""Run-time settings across nodes (PostgreSQL + Redis, real `chorus serve` processes): a
change through one node's admin API applies on the others at once (the bus), and one made
with `chorus admin settings` reaches running nodes within `store_poll_interval`."""

from __future__ import annotations

import itertools
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import trio

from chorus.persistence import open_postgres_store
from tests.cluster.nodes import CHORUS, running_nodes
from tests.pgserver import PgServer
from tests.polling import until
from tests.redisserver import RedisServer

PASSWORD = "long enough password"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def register(client: httpx.AsyncClient, username: str) -> httpx.Response:
    return await client.post(
        "/api/v1/auth/register", json={"username": username, "password": PASSWORD}
    )


async def make_admin(database_url: str, user_id: str) -> None:
    async with open_postgres_store(database_url, max_size=1) as store:
        await store.set_server_role(user_id, "admin")


@asynccontextmanager
async def two_nodes(
    tmp_path: Path, pg_server: PgServer, redis: RedisServer, poll_interval: float
) -> AsyncIterator[tuple[str, httpx.AsyncClient, httpx.AsyncClient]]:
    """Two nodes on a new database and `redis`: the database URL and a client of each."""
    _, database_url = await pg_server.new_database()
    env = {"CHORUS_STORE_POLL_INTERVAL": str(poll_interval)}
    async with (
        running_nodes(tmp_path, 2, database_url=database_url, redis_url=redis.url, env=env) as (
            a,
            b,
        ),
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{a.http_port}") as on_a,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{b.http_port}") as on_b,
    ):
        yield database_url, on_a, on_b


async def test_a_change_on_one_node_applies_on_the_other_at_once(
    tmp_path: Path, pg_server: PgServer, redis: RedisServer
) -> None:
    # Far longer than the test: only the bus can bring the change to node B in time.
    async with two_nodes(tmp_path, pg_server, redis, 600) as (database_url, on_a, on_b):
        root = (await register(on_a, "root")).json()
        await make_admin(database_url, root["user"]["id"])
        room = await on_b.post(
            "/api/v1/rooms",
            json={"name": "general", "kind": "public"},
            headers=bearer(root["access_token"]),
        )
        messages = f"/api/v1/rooms/{room.json()['id']}/messages"
        changed = await on_a.patch(
            "/api/v1/admin/settings",
            json={"registration_open": False, "max_message_chars": 5},
            headers=bearer(root["access_token"]),
        )
        assert changed.status_code == 200, changed.text

        async def b_applies_it() -> bool:
            seen = await on_b.get("/api/v1/admin/settings", headers=bearer(root["access_token"]))
            values = {s["name"]: s["value"] for s in seen.json()["settings"]}
            return values["registration_open"] is False and values["max_message_chars"] == 5

        await until(b_applies_it, timeout=5)
        assert (await register(on_b, "eve")).json()["error"]["code"] == "registration_closed"
        long = await on_b.post(
            messages,
            json={"body": "123456", "client_id": "c1"},
            headers=bearer(root["access_token"]),
        )
        assert long.status_code == 400
        assert "max_message_chars" in long.json()["error"]["message"]


async def test_the_cli_reaches_running_nodes_within_the_reload_interval(
    tmp_path: Path, pg_server: PgServer, redis: RedisServer
) -> None:
    async with two_nodes(tmp_path, pg_server, redis, 0.2) as (database_url, on_a, on_b):
        assert (await register(on_a, "ada")).status_code == 201
        closed = await trio.run_process(
            [*CHORUS, "admin", "settings", "set", "registration_open", "false"],
            env={**os.environ, "CHORUS_DATABASE_URL": database_url},
            capture_stdout=True,
            capture_stderr=True,
        )
        assert closed.returncode == 0, closed.stderr.decode()
        assert closed.stdout.decode().startswith("registration_open = false")

        names = (f"eve{n}" for n in itertools.count())

        # Until a node reads the store again (every 0.2 s), it may still accept a sign-up.
        async def refused_on_both() -> bool:
            codes = [(await register(client, next(names))).status_code for client in (on_a, on_b)]
            return codes == [403, 403]

        await until(refused_on_both, timeout=5)
        opened = await trio.run_process(
            [*CHORUS, "admin", "settings", "reset", "registration_open"],
            env={**os.environ, "CHORUS_DATABASE_URL": database_url},
            capture_stdout=True,
            capture_stderr=True,
        )
        assert opened.returncode == 0

        async def open_on_b() -> bool:
            return (await register(on_b, next(names))).status_code == 201

        await until(open_on_b, timeout=5)
