"""Raw HTTP/1.1 over loopback sockets, for what a client library cannot do: hold a request open."""

from __future__ import annotations

import trio


async def request_awaiting_body(port: int, path: str, body_length: int) -> trio.SocketStream:
    """A POST whose head has been sent and handed to the app, its body still to come.

    The head asks `Expect: 100-continue`; hypercorn answers `100 Continue`
    only once it has started the app on the request, so when this returns the
    request is in flight. Send the body on the returned stream to finish it.
    """
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {body_length}\r\n"
        "Expect: 100-continue\r\n\r\n"
    )
    await stream.send_all(head.encode())
    interim = b""
    with trio.fail_after(10):
        while b"\r\n\r\n" not in interim:
            chunk = await stream.receive_some(4096)
            assert chunk, "the server closed the connection before answering 100 Continue"
            interim += chunk
    assert interim.startswith(b"HTTP/1.1 100 "), interim
    return stream


async def read_response(stream: trio.SocketStream) -> bytes:
    """Everything the server sends until it closes the connection (within 10 seconds).

    A server closes after answering a request that said `Connection: close`,
    and after the last answer it gives while stopping.
    """
    data = b""
    with trio.fail_after(10):
        while chunk := await stream.receive_some(65536):
            data += chunk
    return data


async def refuses_connections(port: int) -> bool:
    """True if nothing accepts TCP connections on the port any more."""
    try:
        stream = await trio.open_tcp_stream("127.0.0.1", port)
    except OSError:
        return True
    await stream.aclose()
    return False
