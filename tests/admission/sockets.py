"""Raw client sockets from chosen loopback addresses (127.0.0.0/8 is all local on Linux)."""

from __future__ import annotations

import contextlib

import trio

UPGRADE = (
    b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
    b"Sec-WebSocket-Protocol: chorus.v1\r\n\r\n"
)
"""A WebSocket upgrade request; answered 101 (read `until=END_OF_HEAD`) or refused."""
HEALTHZ = b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
END_OF_HEAD = b"\r\n\r\n"


async def connect_from(source: str, port: int) -> trio.SocketStream:
    """A TCP connection to 127.0.0.1:`port` whose client end is bound to `source` (5 s at most)."""
    sock = trio.socket.socket()
    try:
        await sock.bind((source, 0))
        with trio.fail_after(5):  # a full backlog would leave it waiting
            await sock.connect(("127.0.0.1", port))
    except BaseException:
        sock.close()
        raise
    return trio.SocketStream(sock)


async def answer(stream: trio.SocketStream, request: bytes, *, until: bytes = b"") -> bytes:
    """Send `request` and read the answer: up to `until`, or to the end of the stream.

    Bounded: 5 seconds, so a connection left hanging fails instead of waiting.
    """
    data = b""
    with trio.fail_after(5):
        # Refused and closed already? What it sent is still readable.
        with contextlib.suppress(trio.BrokenResourceError):
            await stream.send_all(request)
        while not (until and until in data):
            try:
                chunk = await stream.receive_some(65536)
            except trio.BrokenResourceError:
                break
            if not chunk:
                break
            data += chunk
    return data


async def exchange(source: str, port: int, request: bytes, *, until: bytes = b"") -> bytes:
    """`answer` on a new connection from `source`, closed afterwards."""
    async with await connect_from(source, port) as stream:
        return await answer(stream, request, until=until)
