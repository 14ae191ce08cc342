"""TOTP two-factor login and session lifetimes at the service, with an injected clock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from chorus.auth import (
    AuthService,
    Challenge,
    InvalidCode,
    InvalidToken,
    Tokens,
    TokenSigner,
    TooManyAttempts,
    WrongPassword,
    code_at,
    time_step,
)
from chorus.auth._totp import TwoFactorKeys, new_two_factor_key
from chorus.persistence import open_sqlite_store
from tests.auth.test_auth import CHEAP, KEY, Clock, Revocations

PASSWORD = "long enough password"
HOUR = 3600


@pytest.fixture
def clock() -> Clock:
    return Clock()


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
            refresh_ttl=HOUR,
            session_max_age=2 * HOUR,
            on_revoked=revoked,
            clock=clock,
            two_factor_attempts_per_minute=5,
            challenge_ttl=300,
        )


async def enable(auth: AuthService, clock: Clock, tokens: Tokens) -> tuple[str, list[str]]:
    """Turn 2FA on for the user of `tokens`; its secret and recovery codes."""
    enrolment = await auth.two_factor.enrol(tokens.user, PASSWORD)
    codes = await auth.two_factor.confirm(
        tokens.user.id, code_at(enrolment.secret, time_step(clock.now))
    )
    return enrolment.secret, codes


async def challenge(auth: AuthService) -> str:
    outcome = await auth.login("ada", PASSWORD)
    assert isinstance(outcome, Challenge)
    return outcome.challenge_token


async def test_enrolment_is_active_only_after_a_right_first_code(
    auth: AuthService, clock: Clock
) -> None:
    tokens = await auth.register("ada", PASSWORD, None)
    with pytest.raises(WrongPassword):
        await auth.two_factor.enrol(tokens.user, "not the password")
    enrolment = await auth.two_factor.enrol(tokens.user, PASSWORD)
    assert enrolment.otpauth_uri.startswith("otpauth://totp/Chorus:ada?secret=")
    assert enrolment.secret in enrolment.otpauth_uri
    step = time_step(clock.now)
    wrong = "000000" if code_at(enrolment.secret, step) != "000000" else "111111"
    with pytest.raises(InvalidCode):
        await auth.two_factor.confirm(tokens.user.id, wrong)
    assert isinstance(await auth.login("ada", PASSWORD), Tokens)  # still off
    codes = await auth.two_factor.confirm(tokens.user.id, code_at(enrolment.secret, step))
    assert len(codes) == 10
    assert len(set(codes)) == 10
    assert isinstance(await auth.login("ada", PASSWORD), Challenge)


async def test_the_secret_is_stored_sealed_and_opens_only_for_its_user(
    auth: AuthService, clock: Clock, tmp_path: Path
) -> None:
    tokens = await auth.register("ada", PASSWORD, None)
    secret, _ = await enable(auth, clock, tokens)
    state = await auth.two_factor.status(tokens.user.id)
    assert state is not None
    assert secret.encode() not in state.secret
    keys = TwoFactorKeys(new_two_factor_key())
    sealed = keys.seal("u_a", secret)
    assert keys.open("u_a", sealed) == secret
    with pytest.raises(ValueError, match="does not open"):
        keys.open("u_b", sealed)  # copied to another user's row
    with pytest.raises(ValueError, match="does not open"):
        TwoFactorKeys(new_two_factor_key()).open("u_a", sealed)


async def test_login_takes_a_code_after_the_password_and_each_code_works_once(
    auth: AuthService, clock: Clock
) -> None:
    tokens = await auth.register("ada", PASSWORD, None)
    secret, _ = await enable(auth, clock, tokens)
    token = await challenge(auth)
    with pytest.raises(InvalidToken):
        await auth.authenticate(token)  # the challenge is no access token
    step = time_step(clock.now)
    with pytest.raises(InvalidCode):  # the enabling code: used already
        await auth.complete_login(token, code_at(secret, step))
    clock.now += 30_000  # the next step
    done = await auth.complete_login(token, code_at(secret, step + 1))
    assert (await auth.authenticate(done.access_token)).session_id == done.session_id
    with pytest.raises(InvalidCode):  # replayed within its window
        await auth.complete_login(await challenge(auth), code_at(secret, step + 1))


async def test_codes_of_one_step_either_side_are_accepted(auth: AuthService, clock: Clock) -> None:
    tokens = await auth.register("ada", PASSWORD, None)
    secret, _ = await enable(auth, clock, tokens)
    clock.now += 60_000  # two steps on: the device may be 30 s behind or ahead
    step = time_step(clock.now)
    await auth.complete_login(await challenge(auth), code_at(secret, step - 1))
    await auth.complete_login(await challenge(auth), code_at(secret, step + 1))
    clock.now += 90_000
    with pytest.raises(InvalidCode):  # two steps behind: too old
        await auth.complete_login(await challenge(auth), code_at(secret, time_step(clock.now) - 2))


async def test_a_recovery_code_works_once(auth: AuthService, clock: Clock) -> None:
    tokens = await auth.register("ada", PASSWORD, None)
    _, codes = await enable(auth, clock, tokens)
    typed = codes[3].upper().replace("-", " ")  # as a user may type it
    await auth.complete_login(await challenge(auth), typed)
    with pytest.raises(InvalidCode):
        await auth.complete_login(await challenge(auth), codes[3])
    state = await auth.two_factor.status(tokens.user.id)
    assert state is not None
    assert state.recovery_codes_left == 9


async def test_an_expired_challenge_is_refused(auth: AuthService, clock: Clock) -> None:
    tokens = await auth.register("ada", PASSWORD, None)
    secret, _ = await enable(auth, clock, tokens)
    token = await challenge(auth)
    clock.now += 300_000
    with pytest.raises(InvalidToken, match="expired"):
        await auth.complete_login(token, code_at(secret, time_step(clock.now)))


async def test_code_attempts_are_limited_per_user(auth: AuthService, clock: Clock) -> None:
    tokens = await auth.register("ada", PASSWORD, None)
    secret, _ = await enable(auth, clock, tokens)
    clock.now += 30_000
    right = code_at(secret, time_step(clock.now))
    wrong = "123456" if right != "123456" else "654321"
    for _ in range(4):  # the confirmation above was the first of 5
        with pytest.raises(InvalidCode):
            await auth.complete_login(await challenge(auth), wrong)
    with pytest.raises(TooManyAttempts):  # even the right code, now
        await auth.complete_login(await challenge(auth), right)


async def test_disable_needs_the_password_and_a_code(auth: AuthService, clock: Clock) -> None:
    tokens = await auth.register("ada", PASSWORD, None)
    _, codes = await enable(auth, clock, tokens)
    with pytest.raises(WrongPassword):
        await auth.two_factor.disable(tokens.user, "not the password", codes[0])
    await auth.two_factor.disable(tokens.user, PASSWORD, codes[0])
    assert await auth.two_factor.status(tokens.user.id) is None
    assert isinstance(await auth.login("ada", PASSWORD), Tokens)


async def test_a_session_ends_when_idle_for_the_refresh_lifetime(
    auth: AuthService, clock: Clock
) -> None:
    tokens = await auth.register("ada", PASSWORD, None)
    clock.now += HOUR * 1000 - 1
    tokens = await auth.refresh(tokens.refresh_token)  # in time: an hour more
    clock.now += HOUR * 1000 - 1
    tokens = await auth.refresh(tokens.refresh_token)
    clock.now += HOUR * 1000
    with pytest.raises(InvalidToken):
        await auth.refresh(tokens.refresh_token)


async def test_a_session_ends_at_its_absolute_age_however_often_refreshed(
    auth: AuthService, clock: Clock
) -> None:
    tokens = await auth.register("ada", PASSWORD, None)
    opened = clock.now
    while clock.now + 600_000 < opened + 2 * HOUR * 1000:
        clock.now += 600_000
        tokens = await auth.refresh(tokens.refresh_token)
    await auth.authenticate(tokens.access_token)
    clock.now = opened + 2 * HOUR * 1000
    with pytest.raises(InvalidToken):
        await auth.authenticate(tokens.access_token)
    with pytest.raises(InvalidToken):
        await auth.refresh(tokens.refresh_token)


def test_challenge_and_access_tokens_are_never_taken_for_each_other() -> None:
    signer = TokenSigner(KEY, access_ttl=900)
    challenge_token, challenge_id = signer.issue_challenge("u_x", 0, 300)
    assert signer.verify_challenge(challenge_token, 299) == ("u_x", challenge_id)
    with pytest.raises(InvalidToken):
        signer.verify(challenge_token, 10)  # so neither HTTP nor the gateway's hello take it
    with pytest.raises(InvalidToken):
        signer.verify_challenge(signer.issue("u_x", "s_x", 0), 10)
    with pytest.raises(InvalidToken, match="expired"):
        signer.verify_challenge(challenge_token, 300)
    other = TokenSigner(new_two_factor_key(), access_ttl=900)
    with pytest.raises(InvalidToken):
        other.verify_challenge(challenge_token, 10)  # signed with another key
