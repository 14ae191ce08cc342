"""`/api/v1/auth/*`: register, login, exchange of a provider token, refresh (rotation), logout."""

from __future__ import annotations

import attrs

from chorus.auth import (
    DISPLAY_NAME_CHARS,
    PASSWORD_CHARS,
    USERNAME_CHARS,
    USERNAME_PATTERN,
    AuthError,
    InvalidToken,
    Tokens,
)
from chorus.protocol import MAX_TOKEN_CHARS, ErrorCode
from chorus.text import NAME_PATTERN

from ._errors import ApiError, bad_request, unauthorized
from ._input import text
from ._output import ChallengeView, TokensView
from ._refresh_cookie import clearing_headers, cookie_mode, cookie_token, tokens_reply
from ._routing import API_PREFIX, Call, Reply, RouteTable, count_attempt
from ._sessions import current_device

table = RouteTable("auth")

# Account rules (characters, trimming) are AuthService's; its limits, checked
# here too, keep absurd input out before a password is hashed.
REFRESH_TOKEN = (1, 256)


@attrs.frozen(kw_only=True)
class Register:
    """A new account."""

    username: str = text(
        *USERNAME_CHARS,
        "Case-insensitive (stored lowercased); a-z, A-Z, 0-9, '_', '.', '-'.",
        pattern=USERNAME_PATTERN,
    )
    password: str = text(*PASSWORD_CHARS, "The account's password.")
    display_name: str | None = text(
        *DISPLAY_NAME_CHARS,
        "Shown to other users; defaults to the username. Trimmed. No control characters,"
        " line breaks or bidi controls (the pattern), and at least one visible character:"
        " a name of only spaces, zero-width or combining characters is refused with 400"
        " `invalid_input` (JSON Schema cannot state that rule).",
        default=None,
        pattern=NAME_PATTERN,
    )


@attrs.frozen(kw_only=True)
class Login:
    """Credentials of an existing account."""

    username: str = text(1, USERNAME_CHARS[1], "Case-insensitive.")
    password: str = text(1, PASSWORD_CHARS[1], "The account's password.")


@attrs.frozen(kw_only=True)
class Exchange:
    """A token of a configured identity provider (a Clerk session token, an OIDC token)."""

    token: str = text(1, MAX_TOKEN_CHARS, "The provider's JWT, as the provider issued it.")


@attrs.frozen(kw_only=True)
class Refresh:
    """A refresh token to exchange (it can be used once); none in cookie mode."""

    refresh_token: str | None = text(
        *REFRESH_TOKEN,
        "The current refresh token of the session. Required, except in cookie mode"
        " (header `X-Chorus-Refresh-Cookie: 1`), where the `chorus_refresh` cookie"
        " carries it and this field must be absent.",
        default=None,
    )


@table.route(
    "POST",
    f"{API_PREFIX}/auth/register",
    summary="Create an account and its first session",
    input=Register,
    responses={201: TokensView},
    errors={
        403: "Sign-up is closed: the run-time setting `registration_open` is false"
        " (registration_closed).",
        409: "The username is taken (username_taken).",
    },
    auth=False,
    limited=True,
)
async def register(call: Call[Register]) -> Reply:
    """Creates the account and signs it in (while `registration_open`)."""
    if not call.services.live.current.registration_open:
        raise ApiError(403, "registration_closed", "sign-up is closed on this server")
    body = call.input
    tokens = await call.services.auth.register(
        body.username, body.password, body.display_name, current_device()
    )
    return tokens_reply(201, tokens, call.services.settings)


@table.route(
    "POST",
    f"{API_PREFIX}/auth/login",
    summary="Open a session (or start a two-factor login)",
    input=Login,
    responses={200: TokensView, 202: ChallengeView},
    errors={401: "Unknown username or wrong password (invalid_credentials)."},
    auth=False,
    limited=True,
)
async def login(call: Call[Login]) -> Reply:
    """Opens a new session for valid credentials.

    For an account with two-factor authentication the answer is 202 with a
    challenge token instead, and no session exists yet: send the token with
    a code to `POST /api/v1/auth/login/2fa` within `expires_in` seconds.
    """
    outcome = await call.services.auth.login(
        call.input.username, call.input.password, current_device()
    )
    if isinstance(outcome, Tokens):
        return tokens_reply(200, outcome, call.services.settings)
    return Reply(
        202, ChallengeView(challenge_token=outcome.challenge_token, expires_in=outcome.expires_in)
    )


@table.route(
    "POST",
    f"{API_PREFIX}/auth/exchange",
    summary="Sign in with an identity provider's token",
    input=Exchange,
    responses={200: TokensView},
    errors={
        401: "The token is not a valid, current token of a configured identity provider for"
        " this server (invalid_token).",
        503: "The provider's keys cannot be fetched now (unavailable); retry.",
    },
    auth=False,
    limited=True,
)
async def exchange(call: Call[Exchange]) -> Reply:
    """Opens a session for the user of a Clerk or OpenID Connect token.

    The token must come from an issuer in `identity_providers`, be signed by a key
    of that issuer's JWKS (RS256, ES256 or EdDSA), be current, and be for this
    server (`aud` and/or `azp`). The first sign-in of a subject creates its user;
    later ones find it. The session is a Chorus session like a login's: refresh,
    logout and revocation work the same, whatever the provider does later.
    """
    external = call.services.external
    if external is None:
        raise InvalidToken("no identity provider is configured")
    tokens = await external.sign_in(call.input.token)
    return tokens_reply(200, tokens, call.services.settings)


@table.route(
    "POST",
    f"{API_PREFIX}/auth/refresh",
    summary="Rotate the refresh token",
    input=Refresh,
    responses={200: TokensView},
    errors={
        401: "Unknown, expired or revoked token (invalid_token), or a token used before "
        "(refresh_reused: the whole session is revoked).",
        429: "Too many failed refresh attempts from this address; wait `Retry-After` seconds.",
    },
    auth=False,
)
async def refresh(call: Call[Refresh]) -> Reply:
    """Exchanges a refresh token for a new access and refresh token.

    The presented token stops working. Presenting it again revokes the
    session (a stolen copy cannot outlive the legitimate client's next refresh).
    Only failed attempts count against the client address: a valid refresh
    token is a 256-bit secret, so refreshes that succeed are no guessing, and
    the many users behind one NAT or proxy all refreshing after an outage
    (a reconnect storm) are never refused for sharing an address.
    """
    try:
        tokens = await call.services.auth.refresh(_presented_token(call.input))
    except AuthError as exc:
        await count_attempt(call.services)  # 429 instead, past the address's budget
        # A cookie that failed once never works again: the browser drops it.
        error = unauthorized(exc.code, str(exc))
        error.headers.update(clearing_headers())
        raise error from None
    return tokens_reply(200, tokens, call.services.settings)


def _presented_token(body: Refresh) -> str:
    """The refresh token of the request: the cookie's in cookie mode, else the body's."""
    if cookie_mode():
        if body.refresh_token is not None:
            raise bad_request(
                ErrorCode.INVALID_VALUE,
                "refresh_token: leave it out in cookie mode (the cookie carries it)",
            )
        return cookie_token()
    if body.refresh_token is None:
        raise bad_request(ErrorCode.MISSING_FIELD, "refresh_token: required field is missing")
    return body.refresh_token


@table.route(
    "POST",
    f"{API_PREFIX}/auth/logout",
    summary="End the session",
    responses={204: None},
)
async def logout(call: Call[object]) -> Reply:
    """Revokes the caller's session: its tokens stop working and its WebSockets close (4002).

    In cookie mode (header `X-Chorus-Refresh-Cookie: 1`) the answer also clears the
    `chorus_refresh` cookie.
    """
    assert call.principal is not None
    await call.services.auth.logout(call.principal.session_id, actor_id=call.principal.user_id)
    return Reply(204, headers=clearing_headers())
