"""TOTP two-factor authentication over HTTP: enrol, confirm, the two-step login, disable."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs

from chorus.auth import code_at, time_step
from chorus.persistence import now_ms
from tests.http.conftest import PASSWORD, Account, Server, assert_error, open_server


@attrs.frozen
class Enabled:
    secret: str
    recovery_codes: list[str]
    step: int
    """The time step of the code that turned 2FA on (now used)."""


def wrong_code(secret: str) -> str:
    """A well-formed code that no step around now accepts."""
    step = time_step(now_ms())
    near = {code_at(secret, s) for s in range(step - 2, step + 3)}
    return next(c for c in ("000000", "111111", "222222", "333333", "444444") if c not in near)


async def enable(server: Server, user: Account, **extra: Any) -> Enabled:
    enrol = await server.post("/api/v1/auth/2fa/enrol", user, json={"password": PASSWORD})
    assert enrol.status_code == 200, enrol.text
    secret = enrol.json()["secret"]
    step = time_step(now_ms())
    body = {"code": code_at(secret, step)} | extra
    confirm = await server.post("/api/v1/auth/2fa/confirm", user, json=body)
    assert confirm.status_code == 200, confirm.text
    return Enabled(secret, confirm.json()["recovery_codes"], step)


async def challenge(server: Server, username: str = "ada") -> str:
    response = await server.post(
        "/api/v1/auth/login", json={"username": username, "password": PASSWORD}
    )
    assert response.status_code == 202, response.text
    body = response.json()
    assert set(body) == {"challenge_token", "expires_in"}
    assert body["expires_in"] == server.services.settings.two_factor_challenge_ttl
    token: str = body["challenge_token"]
    return token


async def second_step(server: Server, token: str, code: str) -> Any:
    return await server.post(
        "/api/v1/auth/login/2fa", json={"challenge_token": token, "code": code}
    )


async def test_enrolment_needs_the_password_and_a_right_first_code(
    server: Server, ada: Account
) -> None:
    wrong = await server.post("/api/v1/auth/2fa/enrol", ada, json={"password": "nope nope"})
    assert_error(wrong, 403, "wrong_password")
    enrol = await server.post("/api/v1/auth/2fa/enrol", ada, json={"password": PASSWORD})
    assert enrol.status_code == 200
    secret, uri = enrol.json()["secret"], enrol.json()["otpauth_uri"]
    assert uri.startswith("otpauth://totp/Chorus:ada?")
    assert f"secret={secret}" in uri
    state = await server.get("/api/v1/auth/2fa", ada)
    assert state.json() == {"enabled": False, "pending": True, "recovery_codes_left": 0}
    refused = await server.post("/api/v1/auth/2fa/confirm", ada, json={"code": wrong_code(secret)})
    assert_error(refused, 400, "invalid_code")
    # Pending is not on: the password alone still opens a session.
    login = await server.post("/api/v1/auth/login", json={"username": "ada", "password": PASSWORD})
    assert login.status_code == 200
    code = code_at(secret, time_step(now_ms()))
    confirm = await server.post("/api/v1/auth/2fa/confirm", ada, json={"code": code})
    assert confirm.status_code == 200
    codes = confirm.json()["recovery_codes"]
    assert len(set(codes)) == 10
    assert confirm.json()["revoked_sessions"] == 0
    state = await server.get("/api/v1/auth/2fa", ada)
    assert state.json() == {"enabled": True, "pending": False, "recovery_codes_left": 10}
    again = await server.post("/api/v1/auth/2fa/enrol", ada, json={"password": PASSWORD})
    assert_error(again, 409, "conflict")
    # The secret is never shown again, nor stored in clear.
    assert secret not in state.text
    stored = await server.services.store.get_totp(ada.id)
    assert stored is not None
    assert secret.encode() not in stored.secret


async def test_the_password_alone_gives_a_challenge_and_a_code_completes_it(
    server: Server, ada: Account
) -> None:
    enabled = await enable(server, ada)
    token = await challenge(server)
    # The challenge is no access token.
    assert_error(
        await server.get("/api/v1/users/me", headers={"Authorization": f"Bearer {token}"}),
        401,
        "invalid_token",
    )
    replay = await second_step(server, token, code_at(enabled.secret, enabled.step))
    assert_error(replay, 400, "invalid_code")  # the enabling code: used once already
    done = await second_step(server, token, code_at(enabled.secret, enabled.step + 1))
    assert done.status_code == 200, done.text
    tokens = done.json()
    assert tokens["user"]["id"] == ada.id
    me = await server.get(
        "/api/v1/users/me", headers={"Authorization": "Bearer " + tokens["access_token"]}
    )
    assert me.status_code == 200
    # The same code again, with a fresh challenge: a replay within its window.
    replay = await second_step(
        server, await challenge(server), code_at(enabled.secret, enabled.step + 1)
    )
    assert_error(replay, 400, "invalid_code")


async def test_a_recovery_code_works_once(server: Server, ada: Account) -> None:
    enabled = await enable(server, ada)
    code = enabled.recovery_codes[0]
    assert (await second_step(server, await challenge(server), code)).status_code == 200
    again = await second_step(server, await challenge(server), code)
    assert_error(again, 400, "invalid_code")
    state = await server.get("/api/v1/auth/2fa", ada)
    assert state.json()["recovery_codes_left"] == 9


async def test_forged_and_expired_challenges_are_refused(tmp_path: Path) -> None:
    async with open_server(tmp_path, two_factor_challenge_ttl=1) as server:
        ada = await server.register("ada")
        enabled = await enable(server, ada)
        forged = await second_step(server, ada.access_token, enabled.recovery_codes[0])
        assert_error(forged, 401, "invalid_token")  # an access token is no challenge
        # A challenge whose lifetime is over, made by the node's own signer.
        signer = server.services.auth._signer
        expired, _ = signer.issue_challenge(ada.id, now_ms() // 1000 - 10, 5)
        refused = await second_step(server, expired, enabled.recovery_codes[0])
        assert "expired" in assert_error(refused, 401, "invalid_token")
        state = await server.get("/api/v1/auth/2fa", ada)
        assert state.json()["recovery_codes_left"] == 10  # nothing spent


async def test_code_attempts_are_rate_limited_per_user(tmp_path: Path) -> None:
    async with open_server(tmp_path, two_factor_attempts_per_minute=3) as server:
        ada = await server.register("ada")
        enabled = await enable(server, ada)  # the first attempt of 3
        wrong = wrong_code(enabled.secret)
        for _ in range(2):
            assert_error(
                await second_step(server, await challenge(server), wrong), 400, "invalid_code"
            )
        limited = await second_step(server, await challenge(server), enabled.recovery_codes[0])
        assert_error(limited, 429, "rate_limited")
        assert int(limited.headers["retry-after"]) >= 1
        state = await server.get("/api/v1/auth/2fa", ada)
        assert state.json()["recovery_codes_left"] == 10  # refused before it was looked at


async def test_disable_needs_the_password_and_a_code(server: Server, ada: Account) -> None:
    enabled = await enable(server, ada)
    body = {"password": "wrong password", "code": enabled.recovery_codes[1]}
    assert_error(
        await server.post("/api/v1/auth/2fa/disable", ada, json=body), 403, "wrong_password"
    )
    body = {"password": PASSWORD, "code": wrong_code(enabled.secret)}
    assert_error(await server.post("/api/v1/auth/2fa/disable", ada, json=body), 400, "invalid_code")
    body = {"password": PASSWORD, "code": code_at(enabled.secret, enabled.step + 1)}
    assert (await server.post("/api/v1/auth/2fa/disable", ada, json=body)).status_code == 204
    state = await server.get("/api/v1/auth/2fa", ada)
    assert state.json() == {"enabled": False, "pending": False, "recovery_codes_left": 0}
    login = await server.post("/api/v1/auth/login", json={"username": "ada", "password": PASSWORD})
    assert login.status_code == 200
    again = await server.post("/api/v1/auth/2fa/disable", ada, json=body)
    assert_error(again, 400, "invalid_code")
