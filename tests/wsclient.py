"""A trio-websocket client that always closes its TCP stream.

trio-websocket 0.12 leaves its stream open when the server finishes a close
handshake it started (its reader stops at EOF without closing), which shows
up as a ResourceWarning; owning the stream ourselves avoids the leak.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio
from trio_websocket import WebSocketConnection, wrap_client_stream

SUBPROTOCOLS = ["chorus.v1"]


@asynccontextmanager
async def ws_connect(
    port: int,
    *,
    subprotocols: list[str] | None = None,
    extra_headers: list[tuple[bytes, bytes]] | None = None,
) -> AsyncIterator[WebSocketConnection]:
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    try:
        async with trio.open_nursery() as nursery:
            ws = await wrap_client_stream(
                nursery,
                stream,
                "127.0.0.1",
                "/",
                subprotocols=SUBPROTOCOLS if subprotocols is None else subprotocols,
                extra_headers=extra_headers,
            )
            try:
                yield ws
            finally:
                await ws.aclose()
    finally:
        await stream.aclose()
