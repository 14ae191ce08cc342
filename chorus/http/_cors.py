"""`with_cors`: CORS for browsers on other origins, driven by `allowed_origins` (issue #14)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final, cast

from hypercorn.typing import (
    ASGIFramework,
    ASGIReceiveCallable,
    ASGISendCallable,
    ASGISendEvent,
    HTTPResponseStartEvent,
    HTTPScope,
    Scope,
)

from chorus.tls import HSTS

from ._errors import forbidden
from ._output import ErrorDetailView, ErrorView, to_json

ALLOW_METHODS: Final = "GET, HEAD, POST, PUT, PATCH, DELETE"
ALLOW_HEADERS: Final = frozenset(
    {"authorization", "content-type", "range", "if-none-match", "if-match", "idempotency-key"}
)
"""Request headers a preflight may ask for (beyond the CORS-safelisted ones).

`X-Chorus-Refresh-Cookie` must never be one: its being impossible to send
cross-origin is what protects the refresh cookie from forged requests
(`_refresh_cookie`)."""
EXPOSE_HEADERS: Final = (
    "Retry-After, WWW-Authenticate, Location, Content-Range, Content-Disposition, ETag, Allow"
)
"""Response headers a page may read (beyond the CORS-safelisted ones)."""
MAX_AGE: Final = "600"
"""Seconds a browser may reuse a preflight's answer."""
_VARY: Final = (b"vary", b"Origin")
_PREFLIGHT_VARY: Final = (
    b"vary",
    b"Origin, Access-Control-Request-Method, Access-Control-Request-Headers",
)


def with_cors(app: ASGIFramework, allowed_origins: Sequence[str]) -> ASGIFramework:
    """`app`, answering CORS for the origins of `allowed_origins` (`*`: any).

    - A preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`)
      is answered here: 204 with the allowed methods and headers for an
      allowed origin, 403 (error shape, no CORS header) for any other.
    - Other requests are served as always; an allowed origin's answers carry
      `Access-Control-Allow-Origin`. Only an origin listed by name gets its
      own name back and `Access-Control-Allow-Credentials: true`; one
      allowed through `*` gets `*`, which browsers never combine with
      credentials (and we never send both).
    - Every answer says `Vary: Origin`, so no cache hands one origin's
      answer to another.

    Without `allowed_origins`, `app` itself: browsers then only reach the API
    from its own origin.
    """
    listed = {origin.rstrip("/") for origin in allowed_origins if origin != "*"}
    anyone = "*" in allowed_origins
    if not (listed or anyone):
        return app

    def allow(origin: str) -> list[tuple[bytes, bytes]] | None:
        """The CORS headers for an allowed origin; None for another."""
        if origin.rstrip("/") in listed:
            return [
                (b"access-control-allow-origin", origin.encode("latin-1")),
                (b"access-control-allow-credentials", b"true"),
            ]
        if anyone:
            return [(b"access-control-allow-origin", b"*")]
        return None

    async def app_with_cors(
        scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        headers = _headers(scope)
        origin = headers.get(b"origin")
        if origin is None:
            await app(scope, receive, _adding(send, [_VARY]))
            return
        allowed = allow(origin)
        if scope["method"] == "OPTIONS" and b"access-control-request-method" in headers:
            await _preflight(send, allowed, headers.get(b"access-control-request-headers", ""))
            return
        extra = [_VARY]
        if allowed is not None:
            extra += [*allowed, (b"access-control-expose-headers", EXPOSE_HEADERS.encode())]
        await app(scope, receive, _adding(send, extra))

    return cast(ASGIFramework, app_with_cors)


def _headers(scope: HTTPScope) -> dict[bytes, str]:
    # Latin-1 keeps any byte; a repeated header keeps its last value (a browser sends one).
    return {name.lower(): value.decode("latin-1") for name, value in scope["headers"]}


def _adding(send: ASGISendCallable, extra: list[tuple[bytes, bytes]]) -> ASGISendCallable:
    async def send_with_headers(event: ASGISendEvent) -> None:
        if event["type"] == "http.response.start":
            start: HTTPResponseStartEvent = event
            names = {name for name, _ in extra}
            kept, vary = [], []
            for name, value in start["headers"]:
                if name.lower() == b"vary":
                    vary.append(value)  # the app's own (e.g. files): kept, Origin added
                elif name.lower() not in names:
                    kept.append((name, value))
            vary.append(b"Origin")
            added = [(n, v) for n, v in extra if n != b"vary"]
            headers = [*kept, *added, (b"vary", b", ".join(vary))]
            event = cast(ASGISendEvent, {**start, "headers": headers})
        await send(event)

    return send_with_headers


async def _preflight(
    send: ASGISendCallable, allowed: list[tuple[bytes, bytes]] | None, requested: str
) -> None:
    if allowed is None:
        error = forbidden("this origin may not call the API (allowed_origins)")
        body = _error_body(error.code, error.message)
        head = [(b"content-type", b"application/json"), _PREFLIGHT_VARY]
        await _answer(send, 403, head, body)
        return
    asked = [name.strip().lower() for name in requested.split(",") if name.strip()]
    headers = [
        *allowed,
        (b"access-control-allow-methods", ALLOW_METHODS.encode()),
        (b"access-control-max-age", MAX_AGE.encode()),
        _PREFLIGHT_VARY,
    ]
    if granted := [name for name in asked if name in ALLOW_HEADERS]:
        headers.append((b"access-control-allow-headers", ", ".join(granted).encode()))
    await _answer(send, 204, headers, b"")


async def _answer(
    send: ASGISendCallable, status: int, headers: list[tuple[bytes, bytes]], body: bytes
) -> None:
    headers = [
        *headers,
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"),
    ]
    await send(
        {"type": "http.response.start", "status": status, "headers": headers, "trailers": False}
    )
    await send({"type": "http.response.body", "body": body, "more_body": False})


def _error_body(code: str, message: str) -> bytes:
    return to_json(ErrorView(error=ErrorDetailView(code=code, message=message)))


def with_hsts(app: ASGIFramework) -> ASGIFramework:
    """`app`, with `Strict-Transport-Security` on every answer (the node serves TLS)."""

    async def hsts(scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return

        async def send_with_hsts(event: ASGISendEvent) -> None:
            if event["type"] == "http.response.start":
                headers = [*event.get("headers", ()), (b"strict-transport-security", HSTS)]
                event = cast(ASGISendEvent, {**event, "headers": headers})
            await send(event)

        await app(scope, receive, send_with_hsts)

    return cast(ASGIFramework, hsts)
