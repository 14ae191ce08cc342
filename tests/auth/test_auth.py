"""Accounts, sessions and tokens over a real SQLite store."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import jwt
import pytest

from chorus.auth import (
    AuthService,
    InvalidCredentials,
    InvalidInput,
    InvalidToken,
    Passwords,
    RefreshReused,
    Tokens,
    TokenSigner,
    UsernameTaken,
    new_signing_key,
)
from chorus.persistence import open_sqlite_store

KEY = os.urandom(32)
CHEAP = Passwords(time_cost=1, memory_cost_kib=1024)


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000_000

    def __call__(self) -> int:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


class Revocations(list[str]):
    async def __call__(self, session_id: str) -> None:
        self.append(session_id)


@pytest.fixture
def revoked() -> Revocations:
    return Revocations()


@pytest.fixture
async def auth(tmp_path: Path, clock: Clock, revoked: Revocations) -> AsyncIterator[AuthService]:
    async with open_sqlite_store(tmp_path / "chorus.db") as store:
        yield AuthService(
            store,
            TokenSigner(KEY, access_ttl=900),
            CHEAP,
            refresh_ttl=3600,
            on_revoked=revoked,
            clock=clock,
        )


async def test_passwords_are_argon2id_and_verify() -> None:
    encoded = await CHEAP.hash("hunter2 hunter2")
    assert encoded.startswith("$argon2id$")
    assert await CHEAP.verify(encoded, "hunter2 hunter2")
    assert not await CHEAP.verify(encoded, "hunter3 hunter3")
    assert not await CHEAP.verify("not a hash", "hunter2 hunter2")


async def test_register_then_login_then_authenticate(auth: AuthService) -> None:
    registered = await auth.register("Ada", "long enough password", None)
    assert registered.user.username == "ada"
    assert registered.user.display_name == "ada"
    logged_in = await auth.login("ADA", "long enough password")
    assert isinstance(logged_in, Tokens)  # no 2FA: the session at once
    assert logged_in.session_id != registered.session_id
    principal = await auth.authenticate(logged_in.access_token)
    assert (principal.user_id, principal.session_id) == (
        registered.user.id,
        logged_in.session_id,
    )


@pytest.mark.parametrize(
    ("username", "password", "display_name"),
    [
        ("ab", "long enough password", None),
        ("has space", "long enough password", None),
        ("x" * 33, "long enough password", None),
        ("fine", "short", None),
        ("fine", "long enough password", ""),
    ],
)
async def test_register_validates_its_input(
    auth: AuthService, username: str, password: str, display_name: str | None
) -> None:
    with pytest.raises(InvalidInput):
        await auth.register(username, password, display_name)


async def test_usernames_are_unique_ignoring_case(auth: AuthService) -> None:
    await auth.register("ada", "long enough password", None)
    with pytest.raises(UsernameTaken):
        await auth.register("ADA", "another password!", None)


async def test_login_does_not_tell_unknown_users_from_wrong_passwords(auth: AuthService) -> None:
    await auth.register("ada", "long enough password", None)
    with pytest.raises(InvalidCredentials) as wrong:
        await auth.login("ada", "wrong password!!")
    with pytest.raises(InvalidCredentials) as unknown:
        await auth.login("nobody", "wrong password!!")
    assert str(wrong.value) == str(unknown.value)


async def test_refresh_rotates_and_a_reused_token_revokes_the_session(
    auth: AuthService, revoked: list[str]
) -> None:
    first = await auth.register("ada", "long enough password", None)
    second = await auth.refresh(first.refresh_token)
    assert second.refresh_token != first.refresh_token
    assert second.session_id == first.session_id
    with pytest.raises(RefreshReused):
        await auth.refresh(first.refresh_token)
    assert revoked == [first.session_id]
    # The thief's token and the newest one are both dead now.
    with pytest.raises(InvalidToken):
        await auth.refresh(second.refresh_token)
    with pytest.raises(InvalidToken):
        await auth.authenticate(second.access_token)


async def test_logout_ends_the_session(auth: AuthService, revoked: list[str]) -> None:
    tokens = await auth.register("ada", "long enough password", None)
    await auth.logout(tokens.session_id)
    assert revoked == [tokens.session_id]
    with pytest.raises(InvalidToken):
        await auth.authenticate(tokens.access_token)
    with pytest.raises(InvalidToken):
        await auth.refresh(tokens.refresh_token)


async def test_access_tokens_expire(auth: AuthService, clock: Clock) -> None:
    tokens = await auth.register("ada", "long enough password", None)
    clock.now += 899_000
    await auth.authenticate(tokens.access_token)
    clock.now += 2_000
    with pytest.raises(InvalidToken, match="expired"):
        await auth.authenticate(tokens.access_token)


async def test_refresh_tokens_expire_with_their_session(auth: AuthService, clock: Clock) -> None:
    tokens = await auth.register("ada", "long enough password", None)
    clock.now += 3_601_000
    with pytest.raises(InvalidToken):
        await auth.refresh(tokens.refresh_token)


def test_forged_and_malformed_access_tokens_are_rejected() -> None:
    signer = TokenSigner(KEY, access_ttl=900)
    forged = jwt.encode({"sub": "u_x", "sid": "s_x", "exp": 2**40}, os.urandom(32), "HS256")
    # "none" takes the empty key: pyjwt's types refuse None once cryptography is installed.
    unsigned = jwt.encode({"sub": "u_x", "sid": "s_x", "exp": 2**40}, "", "none")
    for token in (forged, unsigned, "not.a.token", ""):
        with pytest.raises(InvalidToken):
            signer.verify(token, 0)
    assert signer.verify(signer.issue("u_x", "s_x", 0), 10).user_id == "u_x"


def test_new_signing_keys_are_random_and_long_enough_for_the_signer() -> None:
    first, second = new_signing_key(), new_signing_key()
    assert first != second
    TokenSigner(first, access_ttl=60)
