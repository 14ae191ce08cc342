"""Discovery and operations endpoints: gateway, health, readiness, metrics."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import httpx
import pytest
from prometheus_client import REGISTRY
from prometheus_client.core import Metric
from prometheus_client.registry import Collector

from chorus.persistence import StoreUnavailable
from tests.fixtures import open_test_node
from tests.http.conftest import Account, Server, assert_error


async def test_gateway_tells_where_to_connect_without_auth(server: Server) -> None:
    response = await server.get("/api/v1/gateway")
    assert response.status_code == 200
    assert response.json() == {
        "urls": server.services.gateway_urls,
        "subprotocol": "chorus.v1",
    }


async def test_health_and_readiness(server: Server) -> None:
    health = await server.get("/healthz")
    assert (health.status_code, health.json()) == (200, {"status": "ok"})
    ready = await server.get("/readyz")
    assert (ready.status_code, ready.json()) == (200, {"status": "ready"})
    assert "cache-control" not in health.headers


async def test_not_ready_while_the_store_does_not_answer(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def unavailable(room_id: str) -> NoReturn:
        raise StoreUnavailable("database is locked")

    monkeypatch.setattr(server.services.store, "last_seq", unavailable)
    assert_error(await server.get("/readyz"), 503, "unavailable")
    assert (await server.get("/healthz")).status_code == 200


async def test_metrics_are_prometheus_text_with_http_counters(server: Server, ada: Account) -> None:
    await server.get("/api/v1/users/me", ada)
    response = await server.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert 'chorus_http_requests_total{method="GET",route="/api/v1/users/me",status="200"}' in text
    assert "chorus_http_request_seconds_bucket" in text
    assert "chorus_messages_stored_total" in text


async def test_requests_with_made_up_methods_add_no_metric_series(server: Server) -> None:
    await server.call("BREW", "/api/v1/users/me")  # the first may add the shared series
    before = _series()
    for n in range(5):
        response = await server.call(f"BREW{n}", "/api/v1/users/me")
        assert_error(response, 405, "method_not_allowed")
    # The method comes from the client: labelled as sent, each one was a new series.
    assert _series() == before


async def test_requests_to_made_up_paths_add_no_metric_series(server: Server) -> None:
    await server.get("/no-such-page")  # the first may add the shared series
    before = _series()
    for n in range(200):
        assert_error(await server.get(f"/no-such-page-{n}"), 404, "not_found")
    # The path comes from the client: labelled as sent, each one was a new series.
    assert _series() == before


async def test_metrics_token_when_set_is_required(tmp_path: Path) -> None:
    async with open_test_node(tmp_path, role="api", metrics_token="s3cret") as (_, addresses):
        assert addresses.http is not None
        host, port = addresses.http
        async with httpx.AsyncClient(base_url=f"http://{host}:{port}") as http:
            assert_error(await http.get("/metrics"), 401, "unauthenticated")
            for wrong in ("Bearer s3cre", "Bearer s3cret2", "Basic s3cret"):
                response = await http.get("/metrics", headers={"Authorization": wrong})
                assert_error(response, 401, "invalid_token")
            right = await http.get("/metrics", headers={"Authorization": "Bearer s3cret"})
            assert right.status_code == 200
            assert "chorus_http_requests_total" in right.text


def _series() -> int:
    """How many samples the default registry exposes: one per label combination."""
    return sum(len(family.samples) for family in REGISTRY.collect())


class _ThreadRecorder(Collector):
    """Notes the thread each scrape runs in; exposes nothing."""

    def __init__(self) -> None:
        self.threads: list[threading.Thread] = []

    def describe(self) -> Iterator[Metric]:
        """Nothing: otherwise registering would call `collect` (in the test's thread)."""
        return iter(())

    def collect(self) -> Iterator[Metric]:
        self.threads.append(threading.current_thread())
        return iter(())


async def test_metrics_render_off_the_event_loop(server: Server) -> None:
    recorder = _ThreadRecorder()
    REGISTRY.register(recorder)
    try:
        assert (await server.get("/metrics")).status_code == 200
    finally:
        REGISTRY.unregister(recorder)
    # On the loop, a large scrape would stall every task of the node meanwhile.
    assert recorder.threads
    assert threading.main_thread() not in recorder.threads
