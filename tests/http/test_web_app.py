"""The web client's files at `/`: headers, caching, and the API's JSON errors left alone."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from chorus.config import Settings
from chorus.http import page_origins
from chorus.http._webapp import APP_DIR, content_security_policy, image_sources, load_files
from tests.e2e.node import open_node
from tests.gateway.test_gateway import raw_socket, upgrade_request
from tests.http.conftest import Server, assert_error


async def test_the_app_is_served_at_the_root_with_a_strict_policy(server: Server) -> None:
    response = await server.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.content == (APP_DIR / "index.html").read_bytes()
    (gateway,) = server.services.gateway_urls
    assert response.headers["content-security-policy"] == (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob:;"
        f" connect-src 'self' {gateway.rstrip('/')}; worker-src 'self'; manifest-src 'self';"
        " object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["cache-control"] == "no-cache"


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/js/main.js", "text/javascript; charset=utf-8"),
        ("/sw.js", "text/javascript; charset=utf-8"),
        ("/app.css", "text/css; charset=utf-8"),
        ("/chorus-js/index.js", "text/javascript; charset=utf-8"),
        ("/icon.svg", "image/svg+xml"),
        ("/manifest.webmanifest", "application/manifest+json"),
    ],
)
async def test_each_file_has_its_type(server: Server, path: str, content_type: str) -> None:
    response = await server.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"] == content_type


async def test_a_browser_revalidates_with_the_etag(server: Server) -> None:
    first = await server.get("/js/main.js")
    etag = first.headers["etag"]
    again = await server.get("/js/main.js", headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == etag
    changed = await server.get("/js/main.js", headers={"If-None-Match": '"other"'})
    assert changed.status_code == 200
    head = await server.call("HEAD", "/js/main.js")
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["content-length"] == str(len(first.content))


async def test_the_shell_list_names_every_file_and_each_is_served(server: Server) -> None:
    response = await server.get("/shell.json")
    assert response.headers["content-type"] == "application/json"
    files = response.json()["files"]
    assert {"/", "/sw.js", "/js/main.js", "/chorus-js/index.js"} <= set(files)
    for path in files:
        assert (await server.get(path)).status_code == 200, path


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("GET", "/nothing-here.js", 404, "not_found"),
        ("GET", "/js/../../config.py", 404, "not_found"),
        ("GET", "/chorus-js/../package.json", 404, "not_found"),
        ("GET", "/api/v1/nothing", 404, "not_found"),
        ("POST", "/", 404, "not_found"),
        ("DELETE", "/js/main.js", 404, "not_found"),
    ],
)
async def test_other_requests_keep_the_json_error_shape(
    server: Server, method: str, path: str, status: int, code: str
) -> None:
    assert_error(await server.call(method, path), status, code)


async def test_the_api_answers_as_before(server: Server) -> None:
    response = await server.get("/openapi.json")
    assert response.status_code == 200
    assert "content-security-policy" not in response.headers
    assert response.headers["content-type"] == "application/json"


def test_files_are_only_those_of_known_types(tmp_path: Path) -> None:
    app = tmp_path / "app"
    (app / "js").mkdir(parents=True)
    (app / "index.html").write_text("<!doctype html>")
    (app / "js" / "a.js").write_text("export {};")
    (app / "notes.md").write_text("not served")
    files = load_files(app, tmp_path / "missing")
    assert sorted(files) == ["/", "/index.html", "/js/a.js", "/shell.json"]
    assert files["/"] == files["/index.html"]
    assert load_files(tmp_path / "none", tmp_path / "missing") == {}


def test_the_policy_allows_the_gateways_and_where_images_are() -> None:
    policy = content_security_policy(
        ["wss://a.example:8443/", "wss://b.example/", "wss://a.example:8443/"],
        ["https://cdn.example"],
    )
    assert "connect-src 'self' wss://a.example:8443 wss://b.example;" in policy
    assert "img-src 'self' blob: https://cdn.example;" in policy


@pytest.mark.parametrize(
    ("overrides", "sources"),
    [
        ({}, []),
        ({"public_url": "https://chat.example/base"}, ["https://chat.example"]),
        ({"storage": "s3", "s3_bucket": "b"}, ["https://*.amazonaws.com"]),
        (
            {"storage": "s3", "s3_bucket": "b", "s3_endpoint_url": "http://127.0.0.1:9000/x"},
            ["http://127.0.0.1:9000"],
        ),
    ],
)
def test_image_sources_follow_the_storage(overrides: dict[str, str], sources: list[str]) -> None:
    assert image_sources(Settings(**overrides)) == sources  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("overrides", "address", "origins"),
    [
        (
            {},
            ("127.0.0.1", 8080),
            ["http://127.0.0.1:8080", "http://localhost:8080", "http://[::1]:8080"],
        ),
        ({}, ("0.0.0.0", 80), ["http://127.0.0.1", "http://localhost", "http://[::1]"]),
        ({}, ("10.1.2.3", 8080), ["http://10.1.2.3:8080"]),
        ({}, ("fd00::1", 8080), ["http://[fd00::1]:8080"]),
        (
            {"public_url": "https://chat.example/"},
            None,
            ["https://chat.example"],
        ),
    ],
)
def test_page_origins(
    overrides: dict[str, str], address: tuple[str, int] | None, origins: list[str]
) -> None:
    assert page_origins(Settings(**overrides), address) == origins  # type: ignore[arg-type]


async def upgrade_status(port: int, origin: str) -> bytes:
    """The status line answering a WebSocket upgrade from a page of `origin`."""
    headers = f"Sec-WebSocket-Protocol: chorus.v1\r\nOrigin: {origin}\r\n".encode()
    answer = b""
    async with raw_socket(port) as stream:
        await stream.send_all(upgrade_request(b"/", headers))
        with trio.fail_after(10):  # an accepted upgrade stays open: read its head only
            while b"\r\n" not in answer:
                chunk = await stream.receive_some(4096)
                assert chunk, answer
                answer += chunk
    return answer.split(b"\r\n", 1)[0]


async def test_the_gateway_accepts_the_page_of_its_own_node_and_no_other(tmp_path: Path) -> None:
    async with open_node(tmp_path) as running:
        _host, http_port = running.addresses.http or ("", 0)
        for origin in (f"http://127.0.0.1:{http_port}", f"http://localhost:{http_port}"):
            assert await upgrade_status(running.gateway_port, origin) == (
                b"HTTP/1.1 101 Switching Protocols"
            )
        for origin in ("http://evil.example", f"http://127.0.0.1:{http_port + 1}"):
            status = await upgrade_status(running.gateway_port, origin)
            assert status.startswith(b"HTTP/1.1 403"), origin
