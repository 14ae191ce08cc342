"""Discovery and operations: the gateway address, health, readiness, metrics, OpenAPI."""

from __future__ import annotations

import hmac

import orjson
import prometheus_client
import trio
from quart import request

from chorus.protocol import SUBPROTOCOL
from chorus.readiness import store_answers

from ._errors import unauthorized, unavailable
from ._openapi import openapi_document
from ._output import GatewayView, StatusView
from ._routing import API_PREFIX, Call, Content, Raw, Reply, RouteTable

table = RouteTable("operations")


@table.route(
    "GET",
    f"{API_PREFIX}/gateway",
    summary="Where to open the WebSocket",
    responses={200: GatewayView},
    auth=False,
    store=False,
)
async def get_gateway(call: Call[object]) -> Reply:
    """The gateway URLs (try them in order) and the subprotocol to request."""
    return Reply(200, GatewayView(urls=call.services.gateway_urls, subprotocol=SUBPROTOCOL))


@table.route(
    "GET", "/healthz", summary="Liveness", responses={200: StatusView}, auth=False, store=False
)
async def healthz(call: Call[object]) -> Reply:
    """200 while the process serves requests (it does not check the store)."""
    return Reply(200, StatusView(status="ok"))


@table.route("GET", "/readyz", summary="Readiness", responses={200: StatusView}, auth=False)
async def readyz(call: Call[object]) -> Reply:
    """200 when the store answers queries, else 503 (take the node out of rotation)."""
    if not await store_answers(call.services.store):
        raise unavailable("the store does not answer")
    return Reply(200, StatusView(status="ready"))


@table.route(
    "GET",
    "/metrics",
    summary="Prometheus metrics",
    responses={
        200: Content(prometheus_client.CONTENT_TYPE_LATEST, "Prometheus text exposition format.")
    },
    errors={401: "`metrics_token` is set and the request does not carry it."},
    auth=False,
    store=False,
)
async def metrics(call: Call[object]) -> Reply:
    """Every metric of this process, for Prometheus to scrape.

    When the `metrics_token` setting is set, only requests that carry
    `Authorization: Bearer <metrics_token>` get them (others get 401); when
    it is empty, anyone does.

    Rendered in a worker thread: a large exposition takes long enough to
    stall every task of the node (WebSocket pings included) if run on the
    event loop. Collectors read shared state under their own locks or as
    atomic snapshots (see `LiveActors.by_kind` in `chorus.actors`).
    """
    _require_metrics_token(call.services.settings.metrics_token)
    exposition = await trio.to_thread.run_sync(prometheus_client.generate_latest)
    return Reply(200, Raw(exposition, prometheus_client.CONTENT_TYPE_LATEST))


def _require_metrics_token(expected: str) -> None:
    """Raises 401 unless `expected` is empty or the request carries it as its bearer token."""
    if not expected:
        return
    header = request.headers.get("Authorization")
    if header is None:
        raise unauthorized("unauthenticated", "send Authorization: Bearer <metrics_token>")
    scheme, _, sent = header.partition(" ")
    # Constant time: how long a refusal takes tells nothing about the token.
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        sent.strip().encode(), expected.encode()
    ):
        raise unauthorized("invalid_token", "the metrics token is wrong")


@table.route(
    "GET",
    "/openapi.json",
    summary="This API's OpenAPI 3.1 document",
    responses={200: Content("application/json", "An OpenAPI 3.1 document.")},
    auth=False,
    store=False,
)
async def openapi(call: Call[object]) -> Reply:
    """The machine-readable description of every route (docs/api.md is the prose version)."""
    document = orjson.dumps(openapi_document(call.routes))
    return Reply(200, Raw(document, "application/json"))
