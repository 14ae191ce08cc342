"""Cookie mode: a browser's refresh token in an HttpOnly cookie (issue #17 item 4)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from http.cookies import SimpleCookie
from pathlib import Path

import httpx
import pytest

from chorus.auth import code_at, time_step
from chorus.persistence import now_ms
from tests.http.conftest import PASSWORD, Account, Server, assert_error, open_server
from tests.http.test_two_factor import challenge, enable

COOKIE_MODE = {"X-Chorus-Refresh-Cookie": "1"}
REFRESH = "/api/v1/auth/refresh"
LISTED = "https://chat.example.com"


def refresh_cookie(response: httpx.Response) -> dict[str, str]:
    """The `chorus_refresh` cookie the response sets: its value and attributes (lowercase)."""
    headers = response.headers.get_list("set-cookie")
    assert len(headers) == 1, headers
    morsel = SimpleCookie(headers[0])["chorus_refresh"]
    flags = {name for name in ("httponly", "secure") if name in headers[0].lower()}
    return (
        {"value": morsel.value}
        | {key: str(value) for key, value in morsel.items() if value}
        | dict.fromkeys(flags, "yes")
    )


async def post(
    server: Server,
    path: str,
    *,
    cookie: str | None = None,
    headers: dict[str, str] | None = None,
    json: object = None,
) -> httpx.Response:
    """A POST sending exactly `cookie` (the client's jar is emptied: tests hold the cookies)."""
    sent = dict(headers or {})
    if cookie is not None:
        sent["Cookie"] = f"chorus_refresh={cookie}"
    server.http.cookies.clear()
    response = await server.post(path, headers=sent, json=json)
    server.http.cookies.clear()
    return response


async def cookie_login(server: Server, **headers: str) -> httpx.Response:
    """Ada's login in cookie mode (with extra `headers`), answered 200."""
    body = {"username": "ada", "password": PASSWORD}
    response = await post(server, "/api/v1/auth/login", headers=COOKIE_MODE | headers, json=body)
    assert response.status_code == 200, response.text
    return response


async def cookie_session(server: Server) -> tuple[dict[str, object], str]:
    """Ada's new cookie-mode session: the token response and the cookie's value."""
    response = await cookie_login(server)
    return response.json(), refresh_cookie(response)["value"]


async def test_login_in_cookie_mode_puts_the_refresh_token_in_an_httponly_cookie(
    server: Server, ada: Account
) -> None:
    response = await cookie_login(server)
    body = response.json()
    assert body["refresh_token"] is None
    assert body["access_token"]
    assert response.headers["cache-control"] == "no-store"
    cookie = refresh_cookie(response)
    assert len(cookie["value"]) >= 32
    assert cookie["path"] == REFRESH
    assert cookie["samesite"] == "Strict"
    assert cookie["httponly"] == "yes"
    settings = server.services.settings
    assert cookie["max-age"] == str(min(settings.refresh_token_ttl, settings.session_max_age))
    # Plain http to a loopback host (a developer's `chorus serve`): browsers would drop
    # a Secure cookie there.
    assert "secure" not in cookie


async def test_the_cookie_is_secure_for_any_host_but_loopback(server: Server, ada: Account) -> None:
    response = await cookie_login(server, Host="chat.example.com")
    assert refresh_cookie(response)["secure"] == "yes"


async def test_json_mode_is_unchanged_and_sets_no_cookie(server: Server, ada: Account) -> None:
    response = await post(
        server, "/api/v1/auth/login", json={"username": "ada", "password": PASSWORD}
    )
    assert response.status_code == 200
    assert response.json()["refresh_token"]
    assert "set-cookie" not in response.headers
    rotated = await post(server, REFRESH, json={"refresh_token": response.json()["refresh_token"]})
    assert rotated.status_code == 200
    assert rotated.json()["refresh_token"]
    assert "set-cookie" not in rotated.headers


async def test_a_cookie_refresh_rotates_and_a_reused_cookie_revokes_the_session(
    server: Server, ada: Account
) -> None:
    session, first = await cookie_session(server)
    rotated = await post(server, REFRESH, cookie=first, headers=COOKIE_MODE)
    assert rotated.status_code == 200, rotated.text
    assert rotated.json()["refresh_token"] is None
    assert rotated.json()["session_id"] == session["session_id"]
    second = refresh_cookie(rotated)["value"]
    assert second != first
    me = await server.get(
        "/api/v1/users/me", headers={"Authorization": f"Bearer {rotated.json()['access_token']}"}
    )
    assert me.status_code == 200
    reused = await post(server, REFRESH, cookie=first, headers=COOKIE_MODE)
    assert_error(reused, 401, "refresh_reused")
    # The browser is told to drop the cookie that failed.
    assert refresh_cookie(reused)["value"] == ""
    assert refresh_cookie(reused)["max-age"] == "0"
    after = await post(server, REFRESH, cookie=second, headers=COOKIE_MODE)
    assert_error(after, 401, "invalid_token")


async def test_the_cookie_alone_never_refreshes(server: Server, ada: Account) -> None:
    # A forged cross-site request carries the cookie (were SameSite ignored) but cannot
    # set the header: without it the body is required, and the cookie is not looked at.
    _, cookie = await cookie_session(server)
    forged = await post(server, REFRESH, cookie=cookie)
    assert "refresh_token" in assert_error(forged, 400, "missing_field")
    still = await post(server, REFRESH, cookie=cookie, headers=COOKIE_MODE)
    assert still.status_code == 200, still.text


async def test_cookie_mode_refuses_a_missing_cookie_and_a_body_token(
    server: Server, ada: Account
) -> None:
    missing = await post(server, REFRESH, headers=COOKIE_MODE)
    assert "chorus_refresh" in assert_error(missing, 401, "invalid_token")
    assert "www-authenticate" in missing.headers
    _, cookie = await cookie_session(server)
    both = await post(
        server, REFRESH, cookie=cookie, headers=COOKIE_MODE, json={"refresh_token": cookie}
    )
    assert "cookie mode" in assert_error(both, 400, "invalid_value")


async def test_logout_in_cookie_mode_clears_the_cookie_and_ends_the_session(
    server: Server, ada: Account
) -> None:
    session, cookie = await cookie_session(server)
    auth = {"Authorization": f"Bearer {session['access_token']}"}
    logout = await post(server, "/api/v1/auth/logout", headers=COOKIE_MODE | auth)
    assert logout.status_code == 204, logout.text
    cleared = refresh_cookie(logout)
    assert cleared["value"] == ""
    assert cleared["max-age"] == "0"
    assert cleared["path"] == REFRESH
    refused = await post(server, REFRESH, cookie=cookie, headers=COOKIE_MODE)
    assert_error(refused, 401, "invalid_token")


async def test_register_and_the_two_factor_step_have_cookie_mode(
    server: Server, ada: Account
) -> None:
    grace = {"username": "grace", "password": PASSWORD}
    registered = await post(server, "/api/v1/auth/register", headers=COOKIE_MODE, json=grace)
    assert registered.status_code == 201, registered.text
    assert registered.json()["refresh_token"] is None
    assert refresh_cookie(registered)["value"]
    enabled = await enable(server, ada)
    token = await challenge(server)
    code = code_at(enabled.secret, time_step(now_ms()) + 1)  # the enabling step's code is used
    step = {"challenge_token": token, "code": code}
    second = await post(server, "/api/v1/auth/login/2fa", headers=COOKIE_MODE, json=step)
    assert second.status_code == 200, second.text
    assert second.json()["refresh_token"] is None
    rotated = await post(
        server, REFRESH, cookie=refresh_cookie(second)["value"], headers=COOKIE_MODE
    )
    assert rotated.status_code == 200, rotated.text


@pytest.fixture
async def cors_server(tmp_path: Path) -> AsyncIterator[Server]:
    async with open_server(tmp_path, allowed_origins=(LISTED,)) as server:
        yield server


async def test_no_origin_may_send_the_cookie_mode_header_cross_origin(cors_server: Server) -> None:
    # Even a listed origin: a cross-origin page could otherwise read the refreshed tokens.
    asked = {
        "Origin": LISTED,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type, x-chorus-refresh-cookie",
    }
    response = await cors_server.call("OPTIONS", REFRESH, headers=asked)
    granted = response.headers.get("access-control-allow-headers", "")
    assert "x-chorus-refresh-cookie" not in granted.lower()
