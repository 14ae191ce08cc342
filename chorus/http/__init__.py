"""The HTTP API: accounts, users, rooms, members and messages, on quart-trio and hypercorn.

`create_app(services)` builds the application; `serve_http(services)` serves
it until cancelled or stopped gracefully through the `HttpServer` it starts.
Routes live under `/api/v1` (plus `/healthz`, `/readyz`, `/metrics` and
`/openapi.json` at the root, and the web client's files at `/`); docs/api.md is the reference and
`/openapi.json` its machine-readable form, generated from the same route
declarations the app runs.
"""

from ._app import MAX_BODY_BYTES as MAX_BODY_BYTES
from ._app import all_routes as all_routes
from ._app import create_app as create_app
from ._openapi import openapi_document as openapi_document
from ._routing import API_PREFIX as API_PREFIX
from ._routing import Route as Route
from ._serve import HttpServer as HttpServer
from ._serve import serve_http as serve_http
from ._webapp import page_origins as page_origins
