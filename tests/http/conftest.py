"""A real HTTP API per test: SQLite in `tmp_path`, `serve_http` on a free loopback port."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import attrs
import httpx
import jsonschema_rs
import pytest

from chorus.services import Services
from tests.fixtures import open_test_node
from tests.pgserver import PgServer, shared_pg_server

PASSWORD = "correct horse battery staple"


@attrs.frozen(kw_only=True)
class Account:
    """A registered user and the tokens of its first session."""

    id: str
    username: str
    access_token: str
    refresh_token: str
    session_id: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}


def account_of(tokens: dict[str, Any]) -> Account:
    """The account of a register or login answer (`user`, its tokens and session)."""
    return Account(
        id=tokens["user"]["id"],
        username=tokens["user"]["username"],
        access_token=tokens["access_token"],
        refresh_token=tokens["refresh_token"],
        session_id=tokens["session_id"],
    )


@attrs.define
class Server:
    services: Services
    address: tuple[str, int]
    http: httpx.AsyncClient

    async def call(
        self, method: str, path: str, user: Account | None = None, **kwargs: Any
    ) -> httpx.Response:
        """One request; `user` authenticates it with that account's access token."""
        headers = dict(kwargs.pop("headers", {}))
        if user is not None:
            headers |= user.auth
        return await self.http.request(method, path, headers=headers, **kwargs)

    async def get(self, path: str, user: Account | None = None, **kwargs: Any) -> httpx.Response:
        return await self.call("GET", path, user, **kwargs)

    async def post(self, path: str, user: Account | None = None, **kwargs: Any) -> httpx.Response:
        return await self.call("POST", path, user, **kwargs)

    async def delete(self, path: str, user: Account | None = None, **kwargs: Any) -> httpx.Response:
        return await self.call("DELETE", path, user, **kwargs)

    async def register(self, username: str, **extra: Any) -> Account:
        body = {"username": username, "password": PASSWORD} | extra
        response = await self.post("/api/v1/auth/register", json=body)
        assert response.status_code == 201, response.text
        return account_of(response.json())

    async def create_room(self, owner: Account, name: str = "general", kind: str = "public") -> str:
        response = await self.post("/api/v1/rooms", owner, json={"name": name, "kind": kind})
        assert response.status_code == 201, response.text
        room_id: str = response.json()["id"]
        return room_id


def assert_error(response: httpx.Response, status: int, code: str) -> str:
    """The response is the error shape with `status` and `code`; returns its message."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message"}
    assert body["error"]["code"] == code, body
    message: str = body["error"]["message"]
    assert "Traceback" not in message
    return message


async def published_rule(
    server: Server, method: str, path: str, parameter: str | None = None
) -> Callable[[object], bool]:
    """Whether `/openapi.json` accepts a value as the operation's body (or `parameter`)."""
    document = (await server.get("/openapi.json")).json()
    operation = document["paths"][path][method.lower()]
    if parameter is None:
        schema = operation["requestBody"]["content"]["application/json"]["schema"]
    else:
        schema = next(p["schema"] for p in operation["parameters"] if p["name"] == parameter)
    validator = jsonschema_rs.validator_for(schema | {"components": document["components"]})
    return validator.is_valid


@asynccontextmanager
async def open_server(data_dir: Path, **overrides: Any) -> AsyncIterator[Server]:
    """A node serving the HTTP API, with `overrides` of its settings."""
    async with open_test_node(data_dir, role="api", **overrides) as (node, addresses):
        assert addresses.http is not None
        host, port = addresses.http
        async with httpx.AsyncClient(base_url=f"http://{host}:{port}") as http:
            yield Server(node.services, addresses.http, http)


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[Server]:
    async with open_server(tmp_path) as server:
        yield server


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """The private PostgreSQL shared with the other suites."""
    with shared_pg_server() as server:
        yield server


@pytest.fixture
async def ada(server: Server) -> Account:
    return await server.register("ada")


@pytest.fixture
async def bob(server: Server) -> Account:
    return await server.register("bob")
