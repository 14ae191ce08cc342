"""`serve_http` itself: binding, readiness, stopping on cancellation, closing connections."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
import trio

from chorus.http import serve_http
from tests.fixtures import open_test_node
from tests.httpraw import read_response


async def test_serve_http_reports_the_bound_port_and_stops_when_cancelled(
    tmp_path: Path,
) -> None:
    async with open_test_node(tmp_path, role="gateway") as (node, _addresses):
        services = node.services
        assert services.settings.http_port == 0
        async with trio.open_nursery() as nursery:
            server = await nursery.start(serve_http, services)
            host, port = server.address
            assert host == "127.0.0.1"
            assert port > 0
            async with httpx.AsyncClient() as client:
                response = await client.get(f"http://{host}:{port}/healthz")
                assert response.status_code == 200
                assert "server" not in response.headers
            nursery.cancel_scope.cancel()
        with pytest.raises(OSError, match="connect"):
            await trio.open_tcp_stream(host, port)


async def test_the_server_closes_a_connection_the_client_asked_to_close(tmp_path: Path) -> None:
    async with open_test_node(tmp_path, role="api") as (_node, addresses):
        assert addresses.http is not None
        async with await trio.open_tcp_stream(*addresses.http) as stream:
            await stream.send_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            # Until the end of the stream, which the server must send, not the client.
            response = await read_response(stream)
    assert response.startswith(b"HTTP/1.1 200 ")
    assert response.endswith(b'{"status":"ok"}')


@pytest.mark.parametrize(
    ("method", "path", "length", "status"),
    [
        ("POST", "/api/v1/rooms", 31, 401),
        ("POST", "/api/v1/nowhere", 31, 404),
        ("PUT", "/healthz", 31, 405),
        ("POST", "/api/v1/auth/register", 70_000, 413),
    ],
)
async def test_a_keep_alive_connection_answers_after_an_early_error(
    tmp_path: Path, method: str, path: str, length: int, status: int
) -> None:
    # The error is sent before the body arrives; the next request on the connection
    # must then be answered, or the connection closed: never left hanging.
    async with open_test_node(tmp_path, role="api") as (_node, addresses):
        assert addresses.http is not None
        async with await trio.open_tcp_stream(*addresses.http) as stream:
            head = f"{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            await stream.send_all(head.encode() + f"Content-Length: {length}\r\n\r\n".encode())
            first = b""
            with trio.fail_after(10):
                while b"}}" not in first:
                    chunk = await stream.receive_some(65536)
                    assert chunk, first
                    first += chunk
            assert first.startswith(f"HTTP/1.1 {status} ".encode()), first
            body = b"x" * length
            try:
                await stream.send_all(body + b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            except trio.BrokenResourceError:
                return  # closed after the error: a client opens a new connection
            rest = await read_after(stream)
    assert rest == b"" or rest.startswith(b"HTTP/1.1 200 "), rest


async def read_after(stream: trio.SocketStream) -> bytes:
    """What the server sends next: a whole answer, or nothing because it closed."""
    data = b""
    with trio.fail_after(10):
        while not data.endswith(b'{"status":"ok"}'):
            try:
                chunk = await stream.receive_some(65536)
            except trio.BrokenResourceError:
                return data
            if not chunk:
                return data
            data += chunk
    return data


async def test_an_idle_keep_alive_connection_is_closed_after_the_idle_timeout(
    tmp_path: Path,
) -> None:
    async with open_test_node(tmp_path, role="api", http_idle_timeout=0.3) as (_node, addresses):
        assert addresses.http is not None
        async with await trio.open_tcp_stream(*addresses.http) as stream:
            await stream.send_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            started = trio.current_time()
            # The answer, then the end of the stream: the server closes, not the client.
            response = await read_response(stream)
            waited = trio.current_time() - started
    assert response.startswith(b"HTTP/1.1 200 ")
    assert waited >= 0.3


async def test_the_api_listens_on_an_ipv6_address(tmp_path: Path) -> None:
    async with open_test_node(tmp_path, role="api", http_host="::1") as (_node, addresses):
        assert addresses.http is not None
        host, port = addresses.http
        assert host == "::1"
        async with await trio.open_tcp_stream("::1", port) as stream:
            await stream.send_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            response = await read_response(stream)
    assert response.startswith(b"HTTP/1.1 200 ")
