"""Cookie mode: a browser's refresh token in an HttpOnly cookie no page script can read.

A request that opens, rotates or ends a session with the header
`X-Chorus-Refresh-Cookie: 1` is in cookie mode: the answer's `refresh_token`
is null and the token travels in the `chorus_refresh` cookie instead
(HttpOnly, SameSite=Strict, Path limited to `/api/v1/auth/refresh`, Secure
except on plain http to a loopback host). A refresh in cookie mode takes the
token from that cookie only. Without the header nothing changes (JSON mode).

Why the header is enough against cross-site request forgery (docs/security.md):
SameSite=Strict keeps the cookie off every request another site starts, and a
page of another origin can only set a custom header through CORS, whose
preflight refuses this header for every origin (`_cors.ALLOW_HEADERS`); forms,
links and images cannot set headers at all.
"""

from __future__ import annotations

import ipaddress
from typing import Final

import attrs
from quart import request

from chorus.auth import Tokens
from chorus.config import Settings

from ._errors import unauthorized
from ._output import tokens_view
from ._routing import API_PREFIX, Reply

COOKIE_MODE_HEADER: Final = "X-Chorus-Refresh-Cookie"
COOKIE_NAME: Final = "chorus_refresh"
COOKIE_PATH: Final = f"{API_PREFIX}/auth/refresh"


def cookie_mode() -> bool:
    """Whether the current request asks for cookie mode (the header, with value 1)."""
    return request.headers.get(COOKIE_MODE_HEADER) == "1"


def tokens_reply(status: int, tokens: Tokens, settings: Settings) -> Reply:
    """The answer carrying a session's tokens: in cookie mode the refresh token goes
    into the cookie, kept as long as the token can be used (its idle lifetime)."""
    view = tokens_view(tokens)
    if not cookie_mode():
        return Reply(status, view)
    max_age = min(settings.refresh_token_ttl, settings.session_max_age)
    cookie = _cookie(tokens.refresh_token, max_age)
    return Reply(status, attrs.evolve(view, refresh_token=None), {"Set-Cookie": cookie})


def cookie_token() -> str:
    """The refresh token of a cookie-mode refresh; 401 `invalid_token` without the cookie."""
    token = request.cookies.get(COOKIE_NAME)
    if not token:
        raise unauthorized("invalid_token", f"no {COOKIE_NAME} cookie: sign in again")
    return token


def clearing_headers() -> dict[str, str]:
    """Headers removing the cookie (logout, a refused refresh) in cookie mode, else none."""
    return {"Set-Cookie": _cookie("", 0)} if cookie_mode() else {}


def _cookie(value: str, max_age: int) -> str:
    parts = [
        f"{COOKIE_NAME}={value}",
        f"Path={COOKIE_PATH}",
        f"Max-Age={max_age}",
        "HttpOnly",
        "SameSite=Strict",
    ]
    # Browsers refuse Secure cookies over plain http except on localhost; a developer's
    # `chorus serve` on http://127.0.0.1 must still work. Anywhere else it is Secure,
    # so the token never crosses the network in clear text.
    if not (request.scheme == "http" and _loopback(request.host)):
        parts.append("Secure")
    return "; ".join(parts)


def _loopback(host: str) -> bool:
    """Whether a Host header (name or address, with or without a port) is this machine."""
    if host.startswith("["):  # an IPv6 literal, maybe with a port: `[::1]:8080`
        name = host[1 : host.find("]")]
    elif host.count(":") == 1:  # a name or IPv4 address with a port
        name = host.split(":")[0]
    else:
        name = host
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False
