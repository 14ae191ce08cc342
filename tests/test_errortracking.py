"""Error tracking: error-level log events reach a Sentry endpoint (a real HTTP server here)."""

from __future__ import annotations

import gzip
import io
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import structlog

from chorus.errortracking import start_error_tracking, stop_error_tracking
from chorus.logs import configure_logging


class _Received:
    def __init__(self) -> None:
        self.envelopes: list[tuple[str, bytes]] = []
        self.lock = threading.Lock()


@pytest.fixture
def sentry() -> Iterator[tuple[str, _Received]]:
    """A local endpoint that records what sentry-sdk posts; yields its DSN."""
    received = _Received()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if self.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            with received.lock:
                received.envelopes.append((self.path, body))
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://publickey@127.0.0.1:{server.server_address[1]}/42", received
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_errors_logged_by_the_node_are_sent_to_sentry(sentry: tuple[str, _Received]) -> None:
    dsn, received = sentry
    report = start_error_tracking(dsn)
    try:
        configure_logging("json", "info", io.StringIO(), report=report)
        log = structlog.get_logger("chorus.test")
        try:
            raise ValueError("boom-4711")
        except ValueError as error:
            log.error("http.internal_error", path="/api/v1/rooms", exc_info=error)
        log.error("child.exited", child="rooms", reason="crash", error="KeyError: 'x'")
        log.info("child.started", child="rooms")  # not an error: not reported
    finally:
        stop_error_tracking()  # sends what is queued, then stops
        structlog.reset_defaults()
    paths = {path for path, _ in received.envelopes}
    assert paths == {"/api/42/envelope/"}
    bodies = [body for _, body in received.envelopes]
    assert len(bodies) == 2
    exception = next(body for body in bodies if b"boom-4711" in body)
    assert b'"type":"ValueError"' in exception.replace(b" ", b"")
    assert b"/api/v1/rooms" in exception  # the log event's context goes along
    assert any(b"child.exited" in body and b"reason=crash" in body for body in bodies)
    # The info line made no third envelope; frames carry no local variables (secrets).
    assert b'"vars"' not in exception
