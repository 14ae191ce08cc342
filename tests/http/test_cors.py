"""CORS on the HTTP API, driven by `allowed_origins` like the gateway (issue #14 item 7)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.http.conftest import Account, Server, assert_error, open_server

LISTED = "https://chat.example.com"
UNLISTED = "https://evil.example.net"


def preflight(origin: str, method: str = "POST", headers: str = "") -> dict[str, str]:
    asked = {"Origin": origin, "Access-Control-Request-Method": method}
    return asked | ({"Access-Control-Request-Headers": headers} if headers else {})


@pytest.fixture
async def cors_server(tmp_path: Path) -> AsyncIterator[Server]:
    async with open_server(tmp_path, allowed_origins=(LISTED,)) as server:
        yield server


async def test_a_preflight_from_a_listed_origin_is_answered_with_credentials(
    cors_server: Server,
) -> None:
    response = await cors_server.call(
        "OPTIONS", "/api/v1/rooms", headers=preflight(LISTED, headers="Authorization, X-Evil")
    )
    assert response.status_code == 204, response.text
    assert response.headers["access-control-allow-origin"] == LISTED
    assert response.headers["access-control-allow-credentials"] == "true"
    assert "POST" in response.headers["access-control-allow-methods"]
    # Only the headers the API reads are granted.
    assert response.headers["access-control-allow-headers"] == "authorization"
    assert "Origin" in response.headers["vary"]


async def test_a_preflight_from_an_unlisted_origin_is_refused_without_cors_headers(
    cors_server: Server,
) -> None:
    response = await cors_server.call("OPTIONS", "/api/v1/rooms", headers=preflight(UNLISTED))
    assert_error(response, 403, "forbidden")
    assert not [name for name in response.headers if name.startswith("access-control-")]
    assert "Origin" in response.headers["vary"]


async def test_answers_to_a_listed_origin_carry_cors_headers_and_others_none(
    cors_server: Server,
) -> None:
    ada: Account = await cors_server.register("ada")
    listed = await cors_server.get("/api/v1/users/me", ada, headers={"Origin": LISTED})
    assert listed.status_code == 200
    assert listed.headers["access-control-allow-origin"] == LISTED
    assert listed.headers["access-control-allow-credentials"] == "true"
    assert "Retry-After" in listed.headers["access-control-expose-headers"]
    assert listed.headers["vary"] == "Origin"
    unlisted = await cors_server.get("/api/v1/users/me", ada, headers={"Origin": UNLISTED})
    assert unlisted.status_code == 200  # served; the browser keeps the answer from the page
    assert "access-control-allow-origin" not in unlisted.headers
    assert "access-control-allow-credentials" not in unlisted.headers
    no_origin = await cors_server.get("/api/v1/users/me", ada)
    assert no_origin.headers["vary"] == "Origin"
    # Errors too: a page must be able to read why it was refused.
    error = await cors_server.get("/api/v1/users/me", headers={"Origin": LISTED})
    assert error.status_code == 401
    assert error.headers["access-control-allow-origin"] == LISTED


async def test_a_wildcard_never_comes_with_credentials(tmp_path: Path) -> None:
    async with open_server(tmp_path, allowed_origins=("*", LISTED)) as server:
        anyone = await server.call("OPTIONS", "/api/v1/rooms", headers=preflight(UNLISTED))
        assert anyone.status_code == 204
        assert anyone.headers["access-control-allow-origin"] == "*"
        assert "access-control-allow-credentials" not in anyone.headers
        # A listed origin still gets its own name and credentials.
        named = await server.call("OPTIONS", "/api/v1/rooms", headers=preflight(LISTED))
        assert named.headers["access-control-allow-origin"] == LISTED
        assert named.headers["access-control-allow-credentials"] == "true"
        answer = await server.get("/healthz", headers={"Origin": UNLISTED})
        assert answer.headers["access-control-allow-origin"] == "*"
        assert "access-control-allow-credentials" not in answer.headers


async def test_without_allowed_origins_there_is_no_cors(server: Server) -> None:
    response = await server.call("OPTIONS", "/api/v1/rooms", headers=preflight(LISTED))
    assert_error(response, 405, "method_not_allowed")
    answer = await server.get("/healthz", headers={"Origin": LISTED})
    assert "access-control-allow-origin" not in answer.headers
