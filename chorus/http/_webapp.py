"""`with_web_app`: the browser client's static files at `/`, beside the API (issue #17).

The files are plain ES modules, CSS and HTML under `chorus/web/app/` (served
at `/`) and the SDK's modules under `chorus/web/chorus-js/src/` (served at
`/chorus-js/`): no build step, nothing from another host. They are read once
when the server starts; a GET or HEAD of exactly one of their paths is
answered here, and every other request goes to the API app untouched, so
`/api/v1`, `/openapi.json` and unknown paths keep the JSON error shape.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Final, cast
from urllib.parse import urlsplit

import attrs
import orjson
from hypercorn.typing import ASGIFramework, ASGIReceiveCallable, ASGISendCallable, Scope

from chorus.config import Settings

WEB_DIR: Final = Path(__file__).parents[1] / "web"
APP_DIR: Final = WEB_DIR / "app"
SDK_DIR: Final = WEB_DIR / "chorus-js" / "src"
SDK_PREFIX: Final = "/chorus-js/"
SHELL_PATH: Final = "/shell.json"
"""The list of every file served here, as JSON (`{"files": [...]}`)."""

CONTENT_TYPES: Final = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".webmanifest": "application/manifest+json",
}
"""What is served, by file extension; any other file in the directories is not."""

_LOOPBACK_HOSTS: Final = ("127.0.0.1", "localhost", "[::1]")
_ANY_ADDRESS: Final = ("0.0.0.0", "::", "")
_DEFAULT_PORTS: Final = {"http": 80, "https": 443}


@attrs.frozen
class StaticFile:
    """One file as it is answered: its bytes, media type and validator."""

    data: bytes
    content_type: str
    etag: str


def load_files(app_dir: Path = APP_DIR, sdk_dir: Path = SDK_DIR) -> dict[str, StaticFile]:
    """URL path -> file, for every servable file of the app and the SDK.

    `/` is the app's `index.html`; `SHELL_PATH` lists the others. A missing
    directory serves nothing (an API without its web client still works).
    """
    files: dict[str, StaticFile] = {}
    for directory, prefix in ((app_dir, "/"), (sdk_dir, SDK_PREFIX)):
        if not directory.is_dir():
            continue
        for path in sorted(directory.rglob("*")):
            content_type = CONTENT_TYPES.get(path.suffix)
            if content_type is None or not path.is_file():
                continue
            data = path.read_bytes()
            url = prefix + path.relative_to(directory).as_posix()
            files[url] = StaticFile(data, content_type, _etag(data))
    if "/index.html" in files:
        files["/"] = files["/index.html"]
    if files:
        # What the service worker caches for offline use (chorus/web/app/sw.js).
        listing = orjson.dumps({"files": sorted(files)})
        files[SHELL_PATH] = StaticFile(listing, "application/json", _etag(listing))
    return files


def _etag(data: bytes) -> str:
    return '"' + hashlib.sha256(data).hexdigest()[:32] + '"'


def content_security_policy(gateway_urls: Sequence[str], image_sources: Sequence[str]) -> str:
    """The page's policy: scripts, styles and everything else from this origin only.

    No inline script or style (no `'unsafe-inline'`, no `'unsafe-eval'`);
    `connect-src` adds the gateways (WebSockets on another port are another
    origin), `img-src` adds `blob:` (previews of files being posted) and where
    file URLs point when they are not on this origin (S3, a CDN). The page
    cannot be framed, and forms and `<base>` cannot send it elsewhere.
    """
    gateways = sorted({_origin(url) for url in gateway_urls if _origin(url)})
    directives = {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "blob:", *image_sources],
        "connect-src": ["'self'", *gateways],
        "worker-src": ["'self'"],
        "manifest-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
    return "; ".join(f"{name} {' '.join(values)}" for name, values in directives.items())


def image_sources(settings: Settings) -> list[str]:
    """Where the URLs of attached files point, when not at this origin."""
    if settings.cdn_domain:
        return [f"https://{settings.cdn_domain}"]
    if settings.storage == "s3":
        if settings.s3_endpoint_url:
            return [_origin(settings.s3_endpoint_url)]
        return ["https://*.amazonaws.com"]
    if settings.public_url:
        return [_origin(settings.public_url)]
    return []


def page_origins(settings: Settings, http_address: tuple[str, int] | None) -> list[str]:
    """The origins this node's web client is served from, which its gateway must accept.

    `public_url`'s origin, and the HTTP listener's own: on a loopback or
    wildcard address the page may be opened as `127.0.0.1`, `localhost` or
    `[::1]`; on a named address, by that name. A page behind a proxy or
    under another name needs `public_url` (or `allowed_origins`).
    """
    scheme = "https" if settings.tls_cert_file else "http"
    origins = [_origin(settings.public_url)] if settings.public_url else []
    if http_address is not None:
        host, port = http_address
        if host in _ANY_ADDRESS or host in ("127.0.0.1", "localhost", "::1"):
            hosts: Iterable[str] = _LOOPBACK_HOSTS
        else:
            hosts = [f"[{host}]" if ":" in host else host]
        suffix = "" if _DEFAULT_PORTS[scheme] == port else f":{port}"
        origins += [f"{scheme}://{name}{suffix}" for name in hosts]
    return origins


def _origin(url: str) -> str:
    """`scheme://host[:port]` of `url` (the form of an `Origin` header); "" if it has none."""
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        return ""
    host = parts.netloc.rpartition("@")[2]
    return f"{parts.scheme}://{host}"


_SECURITY_HEADERS: Final = (
    (b"x-content-type-options", b"nosniff"),
    # File URLs carry their signature in the query: never sent to another site.
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
)


def with_web_app(
    app: ASGIFramework,
    files: Mapping[str, StaticFile],
    policy: Callable[[], str],
) -> ASGIFramework:
    """`app`, with GET and HEAD of `files`' paths answered from memory.

    Each answer carries `Content-Security-Policy: policy()` (computed per
    request: the gateway's address is known once it listens), `nosniff`,
    `no-referrer`, no framing, and `Cache-Control: no-cache` with an `ETag`:
    browsers revalidate every time (a 304 costs a few bytes), so a new
    version reaches them and their service worker at once; the service
    worker keeps its own copy for offline use.
    """
    if not files:
        return app

    async def app_with_files(
        scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        if scope["type"] != "http" or scope["method"] not in ("GET", "HEAD"):
            await app(scope, receive, send)
            return
        found = files.get(scope["path"])
        if found is None:
            await app(scope, receive, send)
            return
        matched = any(
            name.lower() == b"if-none-match" and found.etag.encode() in value
            for name, value in scope["headers"]
        )
        headers = [
            (b"content-type", found.content_type.encode()),
            (b"etag", found.etag.encode()),
            (b"cache-control", b"no-cache"),
            (b"content-security-policy", policy().encode()),
            *_SECURITY_HEADERS,
        ]
        status = 304 if matched else 200
        body = b"" if matched or scope["method"] == "HEAD" else found.data
        if not matched:
            headers.append((b"content-length", str(len(found.data)).encode()))
        await send(
            {"type": "http.response.start", "status": status, "headers": headers, "trailers": False}
        )
        await send({"type": "http.response.body", "body": body, "more_body": False})

    return cast(ASGIFramework, app_with_files)
