"""`create_app`: the quart-trio application serving every route of the HTTP API."""

from __future__ import annotations

import time

import structlog
from quart import Response, g, request
from quart_trio import QuartTrio

from chorus.services import Services

from . import (
    _admin,
    _auth,
    _devices,
    _files,
    _inbox,
    _invites,
    _messages,
    _moderation,
    _ops,
    _reactions,
    _rooms,
    _search,
    _sessions,
    _settings,
    _threads,
    _todevice,
    _twofactor,
    _users,
)
from ._body import StreamedHttpConnection, StreamedRequest
from ._errors import error_for, internal_error
from ._metrics import HTTP_REQUESTS, HTTP_SECONDS, OTHER_METHOD, STANDARD_METHODS, UNMATCHED
from ._output import ErrorDetailView, ErrorView, to_json
from ._routing import API_PREFIX, JSON, Route, SegmentConverter, view_function, with_reserved

_log = structlog.get_logger("chorus.http")

MAX_BODY_BYTES = 64 * 1024
"""Largest request body; a larger one is refused with 413 before it is read in full."""
BODY_TIMEOUT = 60
"""Seconds a client has to send its whole body before getting 408 (request_timeout)."""


def all_routes() -> tuple[Route, ...]:
    """Every route of the API, in the order the OpenAPI document lists them."""
    return with_reserved(
        (
            *_auth.table,
            *_twofactor.table,
            *_sessions.table,
            *_users.table,
            *_rooms.table,
            *_moderation.table,
            *_invites.table,
            *_devices.table,
            *_todevice.table,
            *_messages.table,
            *_reactions.table,
            *_threads.table,
            *_inbox.table,
            *_search.table,
            *_files.table,
            *_ops.table,
            *_admin.table,
            *_settings.table,
        )
    )


def create_app(services: Services) -> QuartTrio:
    """The application: every route of `all_routes()` on `services`.

    Every response that is not a success is the JSON error shape, whatever
    failed: routing (404, 405), body limits (413), validation (400), a
    domain rule, or a bug (500, logged with its traceback).
    """
    app = QuartTrio(__name__, static_folder=None, template_folder=None)
    app.request_class = StreamedRequest
    app.asgi_http_class = StreamedHttpConnection  # backpressure on request bodies
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    app.config["BODY_TIMEOUT"] = BODY_TIMEOUT
    # No redirects for "/rooms/" or "//rooms": a redirect is not our error shape.
    app.url_map.strict_slashes = False
    app.url_map.merge_slashes = False
    app.url_map.converters["segment"] = SegmentConverter
    routes = all_routes()
    for route in routes:
        app.add_url_rule(
            route.rule,
            endpoint=route.operation_id,
            view_func=view_function(route, services, routes),
            methods=[route.method],
            provide_automatic_options=False,
        )
    app.register_error_handler(Exception, _error_response)
    app.before_request(_start_timer)
    app.after_request(_finish)
    return app


async def _error_response(error: Exception) -> Response:
    api_error = error_for(error)
    if api_error is None:
        _log.error("http.internal_error", method=request.method, path=request.path, exc_info=error)
        api_error = internal_error()
    response = Response(
        _error_json(api_error.code, api_error.message),
        status=api_error.status,
        content_type=JSON,
    )
    response.headers.update(api_error.headers)
    return response


def _error_json(code: str, message: str) -> bytes:
    return to_json(ErrorView(error=ErrorDetailView(code=code, message=message)))


async def _start_timer() -> None:
    g.chorus_started = time.perf_counter()


async def _finish(response: Response) -> Response:
    elapsed = time.perf_counter() - g.get("chorus_started", time.perf_counter())
    rule = request.url_rule.rule if request.url_rule is not None else UNMATCHED
    method = request.method if request.method in STANDARD_METHODS else OTHER_METHOD
    HTTP_REQUESTS.labels(rule, method, str(response.status_code)).inc()
    HTTP_SECONDS.labels(rule).observe(elapsed)
    if request.path.startswith(API_PREFIX):
        # Answers carry tokens and private data: no shared or browser cache keeps them.
        response.headers["Cache-Control"] = "no-store"
    _log.debug(
        "http.request",
        method=request.method,
        path=request.path,
        status=response.status_code,
        ms=round(elapsed * 1000, 2),
    )
    return response
