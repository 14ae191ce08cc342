"""`/api/v1/auth/2fa/*` and `/api/v1/auth/login/2fa`: TOTP two-factor authentication."""

from __future__ import annotations

import attrs

from chorus.auth import PASSWORD_CHARS

from ._input import flag, text
from ._output import (
    EnrolmentView,
    RecoveryCodesView,
    TokensView,
    TwoFactorView,
)
from ._refresh_cookie import tokens_reply
from ._routing import API_PREFIX, Call, Reply, RouteTable
from ._sessions import current_device

table = RouteTable("two-factor")

CODE_CHARS = (1, 64)
CHALLENGE_CHARS = (1, 1024)
_CODE = "A 6-digit TOTP code, or a recovery code (dashes and spaces ignored)."
_PASSWORD = "The account's password."


@attrs.frozen(kw_only=True)
class SecondStep:
    """The second login step."""

    challenge_token: str = text(*CHALLENGE_CHARS, "The token of the 202 answer of /auth/login.")
    code: str = text(*CODE_CHARS, _CODE)


@attrs.frozen(kw_only=True)
class Enrol:
    """The password, again: a stolen access token alone cannot turn 2FA on."""

    password: str = text(1, PASSWORD_CHARS[1], _PASSWORD)


@attrs.frozen(kw_only=True)
class Confirm:
    """The first code of the authenticator app."""

    code: str = text(*CODE_CHARS, "The 6-digit TOTP code the app shows now.")
    revoke_other_sessions: bool = flag(
        "Also end every other session of the account (those opened without 2FA).",
        default=False,
    )


@attrs.frozen(kw_only=True)
class Disable:
    """The password and a code."""

    password: str = text(1, PASSWORD_CHARS[1], _PASSWORD)
    code: str = text(*CODE_CHARS, _CODE)


_ATTEMPTS = "Too many codes tried for this user (or challenge); wait `Retry-After` seconds."


@table.route(
    "POST",
    f"{API_PREFIX}/auth/login/2fa",
    summary="Finish a two-factor login",
    input=SecondStep,
    responses={200: TokensView},
    errors={
        400: "The code is wrong or already used (invalid_code).",
        401: "The challenge token is forged, malformed or expired (invalid_token).",
        429: "Too many attempts from this address, or codes for this user or challenge;"
        " wait `Retry-After` seconds.",
    },
    auth=False,
    limited=True,
)
async def login_second_step(call: Call[SecondStep]) -> Reply:
    """Opens the session that the password of `/auth/login` asked a code for.

    A TOTP code of the current time step or either neighbour is accepted
    once (and no code of an earlier step after it); a recovery code once.
    Each attempt counts against the user and the challenge
    (two_factor_attempts_per_minute), and the address (auth_attempts_per_minute).
    """
    body = call.input
    tokens = await call.services.auth.complete_login(
        body.challenge_token, body.code, current_device()
    )
    return tokens_reply(200, tokens, call.services.settings)


@table.route(
    "GET",
    f"{API_PREFIX}/auth/2fa",
    summary="My two-factor state",
    responses={200: TwoFactorView},
)
async def two_factor_state(call: Call[object]) -> Reply:
    """Whether 2FA is on, an enrolment is pending, and how many recovery codes are left."""
    state = await call.services.auth.two_factor.status(call.user_id)
    enabled = state is not None and state.enabled
    return Reply(
        200,
        TwoFactorView(
            enabled=enabled,
            pending=state is not None and not enabled,
            recovery_codes_left=state.recovery_codes_left if state is not None else 0,
        ),
    )


@table.route(
    "POST",
    f"{API_PREFIX}/auth/2fa/enrol",
    summary="Start a TOTP enrolment",
    input=Enrol,
    responses={200: EnrolmentView},
    errors={
        403: "The password is wrong (wrong_password).",
        409: "Two-factor authentication is already on (conflict).",
    },
)
async def enrol_two_factor(call: Call[Enrol]) -> Reply:
    """A new TOTP secret, as base32 and as an `otpauth://` URI; shown this once.

    Nothing changes at login until `/auth/2fa/confirm` gets a first code of
    it. Enrolling again before confirming replaces the pending secret.
    """
    auth = call.services.auth
    user = await auth.user(call.user_id)
    enrolment = await auth.two_factor.enrol(user, call.input.password)
    return Reply(200, EnrolmentView(secret=enrolment.secret, otpauth_uri=enrolment.otpauth_uri))


@table.route(
    "POST",
    f"{API_PREFIX}/auth/2fa/confirm",
    summary="Turn two-factor authentication on",
    input=Confirm,
    responses={200: RecoveryCodesView},
    errors={
        400: "The code is wrong (invalid_code).",
        409: "No enrolment is pending (conflict).",
        429: _ATTEMPTS,
    },
)
async def confirm_two_factor(call: Call[Confirm]) -> Reply:
    """Turns 2FA on with a first code of the pending secret; answers the 10 recovery codes,
    shown this once. With `revoke_other_sessions`, every other session ends too (their
    WebSockets close with 4002)."""
    assert call.principal is not None
    auth = call.services.auth
    codes = await auth.two_factor.confirm(call.user_id, call.input.code)
    revoked = (
        await auth.revoke_others(call.principal, reason="2fa_enabled")
        if call.input.revoke_other_sessions
        else 0
    )
    return Reply(200, RecoveryCodesView(recovery_codes=codes, revoked_sessions=revoked))


@table.route(
    "POST",
    f"{API_PREFIX}/auth/2fa/disable",
    summary="Turn two-factor authentication off",
    input=Disable,
    responses={204: None},
    errors={
        400: "The code is wrong or already used, or 2FA is off (invalid_code).",
        403: "The password is wrong (wrong_password).",
        429: _ATTEMPTS,
    },
)
async def disable_two_factor(call: Call[Disable]) -> Reply:
    """Turns 2FA off with the password and a TOTP or recovery code; the secret and the
    recovery codes are forgotten."""
    auth = call.services.auth
    user = await auth.user(call.user_id)
    await auth.two_factor.disable(user, call.input.password, call.input.code)
    return Reply(204)
