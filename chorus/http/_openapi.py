"""The OpenAPI 3.1 document, built from the route declarations the app itself runs.

Request schemas come from the input classes' rules, response schemas from
the view classes, statuses from each route's declared responses and errors
(a handler answering an undeclared status fails loudly), so the document
describes what the server does. `tests/http/test_openapi.py` checks that
the app's routes and the document's operations are the same set.
"""

from __future__ import annotations

import http
from collections.abc import Sequence
from typing import Any

import chorus
from chorus.protocol import MAX_ID_CHARS, StrSpec, spec_schema

from ._errors import ERROR_CODES
from ._input import body_schema, has_fields, query_parameters
from ._output import ErrorView, SchemaSet
from ._routing import Content, Route

SECURITY_SCHEME = "bearer"
_ID = StrSpec(1, MAX_ID_CHARS)
"""The rule of a path parameter that is an id (no NUL: see `view_function`)."""

_DESCRIPTION = """\
Chorus's HTTP API: accounts and sessions, users, rooms, members, message
history, threads, edits, deletes, reactions, read positions, notifications
and search. Real-time delivery is over the WebSocket gateway (`GET
/api/v1/gateway` says where); a message posted, edited, deleted or reacted to
here is delivered there like any other.

Bodies are JSON objects (at most 64 KiB); unknown fields are refused and
nothing is coerced. Timestamps are milliseconds since the Unix epoch (UTC).
Every error is `{"error": {"code": "...", "message": "..."}}`; the codes:

| code | status | meaning |
|---|---|---|
"""


def openapi_document(routes: Sequence[Route]) -> dict[str, Any]:
    """The OpenAPI 3.1 document of `routes` as a JSON-able dict."""
    schemas = SchemaSet()
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route, schemas)
    codes = "".join(f"| `{c.code}` | {c.status} | {c.meaning} |\n" for c in ERROR_CODES)
    tags = list(dict.fromkeys(route.tag for route in routes))
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Chorus HTTP API",
            "version": chorus.__version__,
            "description": _DESCRIPTION + codes,
        },
        "tags": [{"name": tag} for tag in tags],
        "paths": paths,
        "components": {
            "schemas": dict(sorted(schemas.components.items())),
            "securitySchemes": {
                SECURITY_SCHEME: {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT",
                    "description": "The `access_token` from register, login or refresh.",
                }
            },
        },
    }


def _operation(route: Route, schemas: SchemaSet) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "operationId": route.operation_id,
        "summary": route.summary,
        "tags": [route.tag],
        "security": [{SECURITY_SCHEME: []}] if route.auth else [],
    }
    if route.description:
        operation["description"] = route.description
    parameters = [
        {"name": name, "in": "path", "required": True, "schema": _path_schema(route, name)}
        for name in route.path_parameters
    ]
    if route.input_in_query:
        parameters += query_parameters(route.input)
    if parameters:
        operation["parameters"] = parameters
    if route.raw_body is not None:
        operation["requestBody"] = {
            "required": True,
            "description": route.raw_body.description,
            "content": {route.raw_body.media_type: {"schema": {}}},
        }
    elif not route.input_in_query and has_fields(route.input):
        name = route.input.__name__
        schemas.components[name] = body_schema(route.input)
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}}},
        }
    responses: dict[str, Any] = {}
    for status, spec in sorted(route.responses.items()):
        responses[str(status)] = _success(status, spec, schemas)
    error = {"application/json": {"schema": schemas.ref(ErrorView)}}
    for status, when in route.errors.items():
        responses[str(status)] = {"description": when, "content": error}
    responses["default"] = {"description": "A server bug (internal).", "content": error}
    operation["responses"] = responses
    return operation


def _path_schema(route: Route, name: str) -> dict[str, Any]:
    """An id (or the parameter's own rule), never a literal segment of a sibling route."""
    schema = spec_schema(route.path_specs.get(name, _ID))
    if reserved := route.reserved.get(name):
        schema["not"] = {"enum": list(reserved)}
    return schema


def _success(status: int, spec: type[Any] | Content | None, schemas: SchemaSet) -> dict[str, Any]:
    phrase = http.HTTPStatus(status).phrase
    match spec:
        case None:
            return {"description": phrase}
        case Content(media_type=media_type, description=description):
            is_json = media_type.startswith("application/json")
            schema = {"type": "object"} if is_json else {"type": "string"}
            return {"description": description, "content": {media_type: {"schema": schema}}}
        case view:
            return {
                "description": phrase,
                "content": {"application/json": {"schema": schemas.ref(view)}},
            }
