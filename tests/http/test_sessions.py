"""A user's own sessions over HTTP: list, revoke one, revoke the others, change the password;
each revocation closes the revoked session's WebSockets."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
from trio_websocket import WebSocketConnection

from chorus import protocol
from chorus.auth import code_at, time_step
from chorus.persistence import now_ms
from chorus.protocol import CloseCode
from tests.fixtures import open_test_node
from tests.gateway.test_gateway import closed_code
from tests.http.conftest import PASSWORD, Account, Server, account_of, assert_error, open_server
from tests.wsclient import ws_connect


async def login(server: Server, user_agent: str, **headers: str) -> Account:
    response = await server.post(
        "/api/v1/auth/login",
        json={"username": "ada", "password": PASSWORD},
        headers={"User-Agent": user_agent} | headers,
    )
    assert response.status_code == 200, response.text
    return account_of(response.json())


async def test_my_sessions_are_listed_with_their_client_and_the_current_one_marked(
    server: Server, ada: Account, bob: Account
) -> None:
    phone = await login(server, "ChorusPhone/1.0")
    listed = await server.get("/api/v1/auth/sessions", phone)
    assert listed.status_code == 200
    sessions = listed.json()["sessions"]
    assert [s["id"] for s in sessions] == [ada.session_id, phone.session_id]
    assert [s["current"] for s in sessions] == [False, True]
    mine = sessions[1]
    assert mine["user_agent"] == "ChorusPhone/1.0"
    assert mine["address"] == "127.0.0.1"
    assert mine["created_at"] == mine["last_seen_at"]
    assert mine["expires_at"] <= mine["max_expires_at"]
    assert set(mine) == {
        "id", "current", "user_agent", "address", "created_at", "last_seen_at",
        "expires_at", "max_expires_at",
    }  # fmt: skip
    refreshed = await server.post(
        "/api/v1/auth/refresh", json={"refresh_token": phone.refresh_token}
    )
    assert refreshed.status_code == 200
    listed = await server.get("/api/v1/auth/sessions", phone)
    assert listed.json()["sessions"][1]["last_seen_at"] >= mine["last_seen_at"]
    # Nobody sees another user's sessions, nor can end them.
    assert [
        s["id"] for s in (await server.get("/api/v1/auth/sessions", bob)).json()["sessions"]
    ] == [bob.session_id]
    refused = await server.delete(f"/api/v1/auth/sessions/{ada.session_id}", bob)
    assert_error(refused, 404, "not_found")
    assert (await server.get("/api/v1/users/me", ada)).status_code == 200


async def test_the_address_is_the_forwarded_client_behind_a_trusted_proxy(
    tmp_path: Path,
) -> None:
    async with open_server(tmp_path, trusted_proxies=("127.0.0.1",)) as server:
        await server.register("ada")
        phone = await login(server, "x", **{"X-Forwarded-For": "203.0.113.7"})
        sessions = (await server.get("/api/v1/auth/sessions", phone)).json()["sessions"]
        assert sessions[1]["address"] == "203.0.113.7"


@asynccontextmanager
async def full_node(tmp_path: Path) -> AsyncIterator[tuple[Server, int]]:
    """The HTTP API and the gateway of one node; the gateway's port."""
    async with open_test_node(tmp_path) as (node, addresses):
        assert addresses.http is not None
        assert addresses.gateway is not None
        host, port = addresses.http
        async with httpx.AsyncClient(base_url=f"http://{host}:{port}") as http:
            yield Server(node.services, addresses.http, http), addresses.gateway[1]


@asynccontextmanager
async def connected(port: int, user: Account) -> AsyncIterator[WebSocketConnection]:
    async with ws_connect(port) as ws:
        await ws.send_message(protocol.encode(protocol.Hello(token=user.access_token)).decode())
        assert isinstance(protocol.decode_server_frame(await ws.get_message()), protocol.Ready)
        yield ws


async def test_revoking_one_session_ends_its_tokens_and_closes_its_websocket(
    tmp_path: Path,
) -> None:
    async with full_node(tmp_path) as (server, port):
        ada = await server.register("ada")
        laptop = await login(server, "laptop")
        async with connected(port, laptop) as ws:
            revoked = await server.delete(f"/api/v1/auth/sessions/{laptop.session_id}", ada)
            assert revoked.status_code == 204
            assert await closed_code(ws) == CloseCode.SESSION_REVOKED
        assert_error(await server.get("/api/v1/users/me", laptop), 401, "invalid_token")
        refresh = await server.post(
            "/api/v1/auth/refresh", json={"refresh_token": laptop.refresh_token}
        )
        assert_error(refresh, 401, "invalid_token")
        again = await server.delete(f"/api/v1/auth/sessions/{laptop.session_id}", ada)
        assert_error(again, 404, "not_found")
        assert (await server.get("/api/v1/users/me", ada)).status_code == 200


async def test_revoking_the_others_keeps_the_current_session(tmp_path: Path) -> None:
    async with full_node(tmp_path) as (server, port):
        ada = await server.register("ada")
        laptop, phone = await login(server, "laptop"), await login(server, "phone")
        async with connected(port, laptop) as laptop_ws, connected(port, ada) as own_ws:
            revoked = await server.post("/api/v1/auth/sessions/revoke-others", ada)
            assert revoked.json() == {"revoked_sessions": 2}
            assert await closed_code(laptop_ws) == CloseCode.SESSION_REVOKED
            await own_ws.send_message(protocol.encode(protocol.Ping(nonce="n")).decode())
            pong = protocol.decode_server_frame(await own_ws.get_message())
            assert pong == protocol.Pong(nonce="n")
        for other in (laptop, phone):
            assert_error(await server.get("/api/v1/users/me", other), 401, "invalid_token")
        sessions = (await server.get("/api/v1/auth/sessions", ada)).json()["sessions"]
        assert [s["id"] for s in sessions] == [ada.session_id]


async def test_changing_the_password_needs_the_old_one_and_ends_the_other_sessions(
    tmp_path: Path,
) -> None:
    async with full_node(tmp_path) as (server, port):
        ada = await server.register("ada")
        laptop = await login(server, "laptop")
        wrong = {"old_password": "not my password", "new_password": "a brand new password"}
        assert_error(
            await server.post("/api/v1/auth/password", ada, json=wrong), 403, "wrong_password"
        )
        short = {"old_password": PASSWORD, "new_password": "short"}
        assert_error(
            await server.post("/api/v1/auth/password", ada, json=short), 400, "invalid_value"
        )
        async with connected(port, laptop) as ws:
            body = {"old_password": PASSWORD, "new_password": "a brand new password"}
            changed = await server.post("/api/v1/auth/password", ada, json=body)
            assert changed.json() == {"revoked_sessions": 1}
            assert await closed_code(ws) == CloseCode.SESSION_REVOKED
        assert_error(await server.get("/api/v1/users/me", laptop), 401, "invalid_token")
        assert (await server.get("/api/v1/users/me", ada)).status_code == 200
        old = await server.post(
            "/api/v1/auth/login", json={"username": "ada", "password": PASSWORD}
        )
        assert_error(old, 401, "invalid_credentials")
        new = {"username": "ada", "password": "a brand new password"}
        assert (await server.post("/api/v1/auth/login", json=new)).status_code == 200


async def test_enabling_2fa_can_end_the_sessions_opened_without_it(tmp_path: Path) -> None:
    async with full_node(tmp_path) as (server, port):
        ada = await server.register("ada")
        laptop = await login(server, "laptop")
        enrol = await server.post("/api/v1/auth/2fa/enrol", ada, json={"password": PASSWORD})
        code = code_at(enrol.json()["secret"], time_step(now_ms()))
        async with connected(port, laptop) as ws:
            body = {"code": code, "revoke_other_sessions": True}
            confirm = await server.post("/api/v1/auth/2fa/confirm", ada, json=body)
            assert confirm.status_code == 200
            assert confirm.json()["revoked_sessions"] == 1
            assert await closed_code(ws) == CloseCode.SESSION_REVOKED
        assert_error(await server.get("/api/v1/users/me", laptop), 401, "invalid_token")
        assert (await server.get("/api/v1/users/me", ada)).status_code == 200
