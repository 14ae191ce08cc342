"""Accounts and sessions over HTTP: register, login, refresh rotation, logout, bearer checks."""

from __future__ import annotations

import pytest

from chorus.text import VISIBLE_RULE
from tests.http.conftest import PASSWORD, Account, Server, assert_error, published_rule


async def test_register_answers_201_with_tokens_and_the_user(server: Server) -> None:
    response = await server.post(
        "/api/v1/auth/register", json={"username": "Ada", "password": PASSWORD}
    )
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"access_token", "refresh_token", "expires_in", "session_id", "user"}
    assert body["expires_in"] == server.services.settings.access_token_ttl
    assert set(body["user"]) == {"id", "username", "display_name", "created_at"}
    assert body["user"]["username"] == "ada"
    assert body["user"]["display_name"] == "ada"
    assert response.headers["cache-control"] == "no-store"


async def test_register_keeps_a_display_name_and_refuses_a_taken_username(
    server: Server, ada: Account
) -> None:
    taken = await server.post(
        "/api/v1/auth/register", json={"username": "ADA", "password": PASSWORD}
    )
    assert_error(taken, 409, "username_taken")
    named = await server.register("grace", display_name="Grace Hopper")
    me = await server.get("/api/v1/users/me", named)
    assert me.json()["display_name"] == "Grace Hopper"


async def test_register_reports_the_account_rules(server: Server) -> None:
    bad_chars = await server.post(
        "/api/v1/auth/register", json={"username": "no spaces", "password": PASSWORD}
    )
    assert "username" in assert_error(bad_chars, 400, "invalid_input")
    short_password = await server.post(
        "/api/v1/auth/register", json={"username": "shorty", "password": "1234567"}
    )
    assert "password" in assert_error(short_password, 400, "invalid_value")


@pytest.mark.parametrize(
    "name",
    [
        "\x1b[31mred",
        "two\nlines",
        "cr\rhere",
        "tab\there",
        "\u202eevil",
        "a\u2066b",
        "\u200b\u200b",
        " \u0301",
    ],
)
async def test_display_names_that_could_drive_a_screen_or_look_empty_are_refused(
    server: Server, name: str
) -> None:
    refused = await server.post(
        "/api/v1/auth/register",
        json={"username": "mallory", "password": PASSWORD, "display_name": name},
    )
    assert "display_name" in assert_error(refused, 400, "invalid_input")


@pytest.mark.parametrize(
    "name",
    [
        "Zoë",
        "Ada 👩\u200d💻",
        "🏴\U000e0067\U000e0062\U000e0065\U000e006e\U000e0067\U000e007f",
        "שלום",
    ],
)
async def test_display_names_in_any_script_and_emoji_sequences_are_kept(
    server: Server, name: str
) -> None:
    named = await server.register("ada", display_name=name)
    me = await server.get("/api/v1/users/me", named)
    assert me.json()["display_name"] == name


async def test_login_opens_a_new_session_and_refuses_bad_credentials(
    server: Server, ada: Account
) -> None:
    response = await server.post(
        "/api/v1/auth/login", json={"username": "ADA", "password": PASSWORD}
    )
    assert response.status_code == 200
    assert response.json()["session_id"] != ada.session_id
    assert response.json()["user"]["id"] == ada.id
    wrong = await server.post("/api/v1/auth/login", json={"username": "ada", "password": "nope"})
    assert_error(wrong, 401, "invalid_credentials")
    unknown = await server.post(
        "/api/v1/auth/login", json={"username": "nobody", "password": PASSWORD}
    )
    assert_error(unknown, 401, "invalid_credentials")


async def test_refresh_rotates_and_a_reused_token_revokes_the_session(
    server: Server, ada: Account
) -> None:
    first = await server.post("/api/v1/auth/refresh", json={"refresh_token": ada.refresh_token})
    assert first.status_code == 200
    rotated = first.json()
    assert rotated["session_id"] == ada.session_id
    assert rotated["refresh_token"] != ada.refresh_token
    new_auth = {"Authorization": f"Bearer {rotated['access_token']}"}
    assert (await server.get("/api/v1/users/me", headers=new_auth)).status_code == 200

    reused = await server.post("/api/v1/auth/refresh", json={"refresh_token": ada.refresh_token})
    assert_error(reused, 401, "refresh_reused")
    # The whole session is gone: the newest tokens stop working too.
    assert_error(await server.get("/api/v1/users/me", headers=new_auth), 401, "invalid_token")
    newest = await server.post(
        "/api/v1/auth/refresh", json={"refresh_token": rotated["refresh_token"]}
    )
    assert_error(newest, 401, "invalid_token")


async def test_refresh_refuses_an_unknown_token(server: Server) -> None:
    response = await server.post("/api/v1/auth/refresh", json={"refresh_token": "made-up"})
    assert_error(response, 401, "invalid_token")


class FakeConnection:
    def __init__(self, user_id: str) -> None:
        self.user_id = user_id
        self.closed: tuple[int, str] | None = None

    def close(self, code: int, reason: str) -> None:
        self.closed = (code, reason)


async def test_logout_ends_the_session_and_closes_its_sockets(server: Server, ada: Account) -> None:
    socket = FakeConnection(ada.id)
    server.services.sessions.add(ada.session_id, socket)  # type: ignore[arg-type]
    response = await server.post("/api/v1/auth/logout", ada)
    assert response.status_code == 204
    assert response.content == b""
    assert socket.closed is not None
    assert socket.closed[0] == 4002
    assert_error(await server.get("/api/v1/users/me", ada), 401, "invalid_token")
    refresh = await server.post("/api/v1/auth/refresh", json={"refresh_token": ada.refresh_token})
    assert_error(refresh, 401, "invalid_token")


async def test_logout_accepts_an_empty_object_but_no_fields(server: Server, ada: Account) -> None:
    extra = await server.post("/api/v1/auth/logout", ada, json={"everywhere": True})
    assert_error(extra, 400, "extra_field")
    assert (await server.post("/api/v1/auth/logout", ada, json={})).status_code == 204


async def test_requests_without_a_valid_bearer_token_get_401(server: Server) -> None:
    missing = await server.get("/api/v1/users/me")
    assert_error(missing, 401, "unauthenticated")
    assert missing.headers["www-authenticate"].startswith("Bearer")
    for header in ("Bearer not-a-jwt", "Basic YWRhOnB3", "Bearer", "Bearer " + "x" * 5000):
        response = await server.get("/api/v1/users/me", headers={"Authorization": header})
        assert_error(response, 401, "invalid_token")


async def test_users_me_and_users_by_id(server: Server, ada: Account, bob: Account) -> None:
    me = await server.get("/api/v1/users/me", ada)
    assert me.status_code == 200
    assert me.json()["id"] == ada.id
    other = await server.get(f"/api/v1/users/{bob.id}", ada)
    assert other.status_code == 200
    assert other.json() == {
        "id": bob.id,
        "username": "bob",
        "display_name": "bob",
        "created_at": other.json()["created_at"],
    }
    assert_error(await server.get("/api/v1/users/u_nobody", ada), 404, "not_found")


async def test_a_user_is_found_by_username_in_any_letter_case(
    server: Server, ada: Account, bob: Account
) -> None:
    found = await server.get("/api/v1/users/by-name/BoB", ada)
    assert found.status_code == 200
    assert found.json()["id"] == bob.id
    assert_error(await server.get("/api/v1/users/by-name/nobody", ada), 404, "not_found")
    assert_error(await server.get("/api/v1/users/by-name/bob"), 401, "unauthenticated")


async def test_too_many_login_attempts_from_one_address_get_429(server: Server) -> None:
    body = {"username": "nobody", "password": "wrong password"}
    statuses = [(await server.post("/api/v1/auth/login", json=body)).status_code for _ in range(30)]
    assert statuses == [401] * 30
    limited = await server.post("/api/v1/auth/login", json=body)
    assert_error(limited, 429, "rate_limited")
    assert int(limited.headers["retry-after"]) >= 1


async def test_auth_attempts_are_counted_per_ip_in_the_shared_limiter(server: Server) -> None:
    services = server.services
    key = "limit:auth:127.0.0.1"
    rate, burst = services.auth_rate, services.auth_burst
    while await services.limiter.allow(key, rate=rate, burst=burst):
        pass  # the address's budget, spent elsewhere (say, on another node)
    body = {"username": "nobody", "password": "wrong password"}
    assert_error(await server.post("/api/v1/auth/login", json=body), 429, "rate_limited")
    assert_error(await server.post("/api/v1/auth/register", json=body), 429, "rate_limited")


async def test_the_published_username_rule_is_the_enforced_one(server: Server) -> None:
    # KELVIN SIGN lowercases to "k": a look-alike the pattern of a-z... refused (issue 12).
    accepts = await published_rule(server, "POST", "/api/v1/auth/register")
    for username in ("\u212aelvin", "caf\u00e9", "tab\tname", "ada\n"):
        body = {"username": username, "password": PASSWORD}
        assert not accepts(body), username
        refused = await server.post("/api/v1/auth/register", json=body)
        assert "username" in assert_error(refused, 400, "invalid_input")
    body = {"username": "Ada.Lovelace-1_", "password": PASSWORD}
    assert accepts(body)
    registered = await server.post("/api/v1/auth/register", json=body)
    assert registered.status_code == 201, registered.text
    assert registered.json()["user"]["username"] == "ada.lovelace-1_"


async def test_the_published_display_name_rule_is_the_enforced_one(server: Server) -> None:
    accepts = await published_rule(server, "POST", "/api/v1/auth/register")
    for name in ("a\x85b", "tab\there", "\u202eevil"):
        body = {"username": "mallory", "password": PASSWORD, "display_name": name}
        assert not accepts(body), name
        refused = await server.post("/api/v1/auth/register", json=body)
        assert "display_name" in assert_error(refused, 400, "invalid_input")
    # Only spaces (trimmed away) is the documented refusal, like zero-width characters.
    for name in ("   ", "\u3000", "\u200b"):
        body = {"username": "mallory", "password": PASSWORD, "display_name": name}
        assert accepts(body), name
        refused = await server.post("/api/v1/auth/register", json=body)
        message = assert_error(refused, 400, "invalid_input")
        assert message == f"display_name: {VISIBLE_RULE}"


async def test_successful_refreshes_from_one_address_are_never_limited(server: Server) -> None:
    # Many users behind one NAT refreshing after an outage: more than a whole budget.
    sessions = []
    for n in range(3):
        response = await server.post(
            "/api/v1/auth/register", json={"username": f"user{n}", "password": "long password 1"}
        )
        sessions.append(response.json()["refresh_token"])
    services = server.services
    key = "limit:auth:127.0.0.1"
    while await services.limiter.allow(key, rate=services.auth_rate, burst=services.auth_burst):
        pass  # the address's budget is spent
    for _ in range(3):
        for n, token in enumerate(sessions):
            response = await server.post("/api/v1/auth/refresh", json={"refresh_token": token})
            assert response.status_code == 200
            sessions[n] = response.json()["refresh_token"]


async def test_failed_refreshes_count_against_the_address(server: Server) -> None:
    body = {"refresh_token": "not a token of any session"}
    statuses = [
        (await server.post("/api/v1/auth/refresh", json=body)).status_code for _ in range(30)
    ]
    assert statuses == [401] * 30
    limited = await server.post("/api/v1/auth/refresh", json=body)
    assert_error(limited, 429, "rate_limited")
    assert int(limited.headers["retry-after"]) >= 1
