"""`forwarded_client`: the client address behind a trusted reverse proxy, for the whole app."""

from __future__ import annotations

from typing import cast

from hypercorn.typing import ASGIFramework, ASGIReceiveCallable, ASGISendCallable, Scope

from chorus.admission import TrustedProxies

FORWARDED_FOR = b"x-forwarded-for"


def forwarded_client(app: ASGIFramework, proxies: TrustedProxies) -> ASGIFramework:
    """`app`, seeing as `scope["client"]` the client `proxies` find in `X-Forwarded-For`.

    Only requests whose TCP peer is a trusted proxy are rewritten (see
    `TrustedProxies.client_address`); so `request.remote_addr`, and what is
    keyed on it (the auth attempt limit), is the real client's address. The
    client's port is unknown then, and given as 0. Without trusted proxies,
    `app` itself.
    """
    if not proxies:
        return app

    async def app_behind_proxies(
        scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        if scope["type"] != "lifespan" and (peer := scope["client"]) is not None:
            values = [
                value.decode("latin-1")
                for name, value in scope["headers"]
                if name.lower() == FORWARDED_FOR
            ]
            client = proxies.client_address(peer[0], values)
            if client != peer[0]:
                scope = cast(Scope, {**scope, "client": (client, 0)})
        await app(scope, receive, send)

    return app_behind_proxies
