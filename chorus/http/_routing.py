"""Routes declared once: the Quart view, the input checks and the OpenAPI operation.

Each resource module fills a `RouteTable` with decorated handlers. A handler
receives a `Call` (the services, the authenticated caller, the decoded
input) plus the path parameters, and returns a `Reply` whose status must be
one the route declares: the declaration is what `/openapi.json` publishes.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterable, Awaitable, Callable, Iterator, Mapping, Sequence
from typing import Any, Concatenate, Final, Generic, TypeVar

import attrs
from quart import Response, request
from werkzeug.routing import BaseConverter, Map

from chorus.auth import Principal, client_address
from chorus.protocol import MAX_ID_CHARS, MAX_TOKEN_CHARS, ErrorCode, StrSpec
from chorus.services import Services

from ._errors import ApiError, not_found, unauthorized
from ._input import NoInput, decode_body, decode_query, has_fields
from ._output import to_json

I = TypeVar("I")  # noqa: E741 - the input class of a route

API_PREFIX: Final = "/api/v1"
JSON: Final = "application/json"
_PATH_PARAM = re.compile(r"{([a-z_]+)}")


@attrs.frozen
class Raw:
    """A non-JSON response body (e.g. Prometheus text) and its media type."""

    data: bytes
    media_type: str


@attrs.frozen
class Streamed:
    """A body sent as `chunks` come (never whole in memory), with its own headers."""

    chunks: AsyncIterable[bytes]
    headers: Mapping[str, str]


@attrs.frozen
class Reply:
    """A handler's answer: `status` and a view (attrs instance), a JSON dict, `Raw`,
    `Streamed`, or None."""

    status: int
    body: object = None
    headers: Mapping[str, str] = attrs.field(factory=dict)
    """Extra response headers (e.g. `Set-Cookie`)."""


@attrs.frozen
class Content:
    """A success response that is not a view: its media type and a description."""

    media_type: str
    description: str


ResponseSpec = type[Any] | Content | None
"""What a success status carries: a view class (JSON), `Content`, or None (no body)."""


@attrs.frozen(kw_only=True)
class Call(Generic[I]):
    """One request as a handler sees it."""

    services: Services
    routes: Sequence[Route]
    input: I
    principal: Principal | None

    @property
    def user_id(self) -> str:
        """The caller's user id (only on routes that require authentication)."""
        assert self.principal is not None, "route declared without auth"
        return self.principal.user_id


Handler = Callable[Concatenate[Call[Any], ...], Awaitable[Reply]]


@attrs.frozen(kw_only=True)
class Route:
    """One method on one path, with everything the app and the OpenAPI document need."""

    method: str
    path: str
    """The OpenAPI path template, e.g. `/api/v1/rooms/{room_id}`."""
    handler: Handler
    summary: str
    tag: str
    input: type[Any]
    responses: Mapping[int, ResponseSpec]
    errors: Mapping[int, str]
    """Failure statuses this route may answer, with when (the body is always an error)."""
    auth: bool
    limited: bool
    """Counted against the caller IP's attempts (`limit:auth:<ip>` in `Services.limiter`): 429."""
    input_in_query: bool
    """The input comes as query parameters (and no body is read), else as a JSON body."""
    raw_body: Content | None = None
    """A body that is not JSON, read by the handler itself (`request.body`): an upload."""
    path_specs: Mapping[str, StrSpec] = attrs.field(factory=dict)
    """Path parameters with a rule of their own (checked by the handler); others are ids."""
    reserved: Mapping[str, tuple[str, ...]] = attrs.field(factory=dict)
    """Per path parameter, the values it never takes: the literal segments of sibling routes
    in its place (`/rooms/public` for `/rooms/{room_id}`). Set by `with_reserved`."""

    @property
    def operation_id(self) -> str:
        return self.handler.__name__

    @property
    def description(self) -> str:
        doc = self.handler.__doc__ or ""
        return "\n".join(line.strip() for line in doc.strip().splitlines())

    @property
    def rule(self) -> str:
        """The Quart/werkzeug rule: `{room_id}` becomes `<segment:room_id>`.

        The `segment` converter (`SegmentConverter`) refuses the parameter's
        `reserved` values, so `PATCH /rooms/public` is a 405 (the path only
        has GET) instead of an update of a room called "public", and the
        `Allow` header lists exactly the methods of the matching path.
        """

        def converter(match: re.Match[str]) -> str:
            name = match.group(1)
            args = ", ".join(f'"{value}"' for value in self.reserved.get(name, ()))
            return f"<segment({args}):{name}>" if args else f"<segment:{name}>"

        return _PATH_PARAM.sub(converter, self.path)

    @property
    def path_parameters(self) -> list[str]:
        return _PATH_PARAM.findall(self.path)


class RouteTable:
    """The routes of one resource module; iterate it to register them."""

    def __init__(self, tag: str) -> None:
        self.tag = tag
        self._routes: list[Route] = []

    def __iter__(self) -> Iterator[Route]:
        return iter(self._routes)

    def route(
        self,
        method: str,
        path: str,
        *,
        summary: str,
        responses: Mapping[int, ResponseSpec],
        input: type[Any] = NoInput,
        errors: Mapping[int, str] | None = None,
        auth: bool = True,
        store: bool = True,
        limited: bool = False,
        query: bool | None = None,
        path_specs: Mapping[str, StrSpec] | None = None,
        raw_body: Content | None = None,
    ) -> Callable[[Handler], Handler]:
        """Declare a route; `errors` adds to the statuses every such route may answer.

        The input is read from the query string for GET and DELETE, else from
        a JSON body; `query` overrides that (e.g. a PUT whose input is a
        query parameter and that takes no body). `path_specs` publishes the
        rule of a path parameter that is not an id (the handler checks it).
        `raw_body` declares a body of any bytes that the handler streams
        itself (its input is then in the query).

        Added automatically: 400 (input is always checked, if only for unknown
        query parameters), 401 (with `auth`), 413 and 415 (with a body), 503
        (with `store`: it reads or writes the store).
        """
        in_query = method in ("GET", "DELETE") if query is None else query
        in_query = in_query or raw_body is not None
        declared = dict(_standard_errors(in_query, input, auth=auth, store=store))
        if limited:
            declared[429] = "Too many attempts from this address; wait `Retry-After` seconds."
        declared |= dict(errors or {})

        def register(handler: Handler) -> Handler:
            self._routes.append(
                Route(
                    method=method,
                    path=path,
                    handler=handler,
                    summary=summary,
                    tag=self.tag,
                    input=input,
                    responses=responses,
                    errors=dict(sorted(declared.items())),
                    auth=auth,
                    limited=limited,
                    input_in_query=in_query,
                    path_specs=dict(path_specs or {}),
                    raw_body=raw_body,
                )
            )
            return handler

        return register


def _standard_errors(
    in_query: bool, input_cls: type[Any], *, auth: bool, store: bool
) -> Iterator[tuple[int, str]]:
    takes_body = not in_query
    if takes_body:
        yield 400, "Invalid body: not JSON, or fields unknown, missing, mistyped or out of limits."
    elif has_fields(input_cls):
        yield 400, "Invalid query parameters: unknown, repeated, mistyped or out of limits."
    else:
        yield 400, "Query parameters were sent (this route takes none)."
    if auth:
        yield 401, "Missing, invalid or expired access token, or the session has ended."
    if takes_body:
        yield 413, "The body is larger than 64 KiB."
        yield 415, "The body is not JSON."
    if store:
        yield 503, "Storage (or the room's actor) is briefly unavailable; retry."


def with_reserved(routes: Sequence[Route]) -> tuple[Route, ...]:
    """`routes` with each path parameter's `reserved` values: the literal segments that
    other routes have in its place after the same leading segments."""
    split = [route.path.split("/") for route in routes]
    done = []
    for route, parts in zip(routes, split, strict=True):
        reserved = {}
        for index, part in enumerate(parts):
            if (param := _PATH_PARAM.fullmatch(part)) is None:
                continue
            taken = {
                other[index]
                for other in split
                if len(other) > index
                and other[:index] == parts[:index]
                and not _PATH_PARAM.fullmatch(other[index])
            }
            if taken:
                reserved[param.group(1)] = tuple(sorted(taken))
        done.append(attrs.evolve(route, reserved=reserved))
    return tuple(done)


class SegmentConverter(BaseConverter):
    """One path segment, except the values given as arguments: for them the rule does not
    match, so neither its handler nor its methods (405, `Allow`) apply."""

    def __init__(self, url_map: Map, *reserved: str) -> None:
        super().__init__(url_map)
        if reserved:
            # In the regex, not in to_python: werkzeug collects a 405's methods by regex.
            words = "|".join(re.escape(word) for word in reserved)
            self.regex = f"(?!(?:{words})$)[^/]+"


# -- the view -------------------------------------------------------------------------


def view_function(
    route: Route, services: Services, routes: Sequence[Route]
) -> Callable[..., Awaitable[Response]]:
    """The Quart view of `route`: authenticate, decode input, call the handler, render."""

    async def view(**params: str) -> Response:
        for value in params.values():
            # No id is longer or holds NUL: such a value names nothing (and is not worth a
            # lookup, which PostgreSQL would fail on: its text cannot hold NUL).
            if len(value) > MAX_ID_CHARS or "\x00" in value:
                raise not_found("no such resource")
        # The audit log records the client address from here (behind trusted proxies
        # `remote_addr` is already the forwarded one).
        client_address.set(request.remote_addr or "")
        if route.limited:
            await count_attempt(services)
        principal = await _authenticate(services) if route.auth else None
        if route.input_in_query:
            data = decode_query(route.input, request.args)
        else:
            decode_query(NoInput, request.args)  # routes with a body take no query parameters
            raw = await request.get_data(cache=False, as_text=False, parse_form_data=False)
            data = decode_body(route.input, raw, request.content_type)
        call = Call(services=services, routes=routes, input=data, principal=principal)
        reply = await route.handler(call, **params)
        if reply.status not in route.responses:
            raise AssertionError(f"{route.operation_id} answered undeclared {reply.status}")
        return render(reply)

    view.__name__ = route.operation_id
    return view


def render(reply: Reply) -> Response:
    extra = dict(reply.headers)
    match reply.body:
        case None:
            return Response(b"", status=reply.status, headers=extra)
        case Raw(data=data, media_type=media_type):
            return Response(data, status=reply.status, content_type=media_type, headers=extra)
        case Streamed(chunks=chunks, headers=headers):
            return Response(chunks, status=reply.status, headers=dict(headers) | extra)
        case body:
            return Response(to_json(body), status=reply.status, content_type=JSON, headers=extra)


async def count_attempt(services: Services) -> None:
    """Count one attempt against the client address (`limit:auth:<ip>`); 429 past the budget."""
    key = f"limit:auth:{request.remote_addr or 'unknown'}"
    rate = services.auth_rate
    if not await services.limiter.allow(key, rate=rate, burst=services.auth_burst):
        retry_after = str(max(1, round(1 / rate)))
        raise ApiError(
            429,
            ErrorCode.RATE_LIMITED,
            "too many attempts; retry later",
            {"Retry-After": retry_after},
        )


async def _authenticate(services: Services) -> Principal:
    header = request.headers.get("Authorization")
    if header is None:
        raise unauthorized("unauthenticated", "send Authorization: Bearer <access token>")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or len(token) > MAX_TOKEN_CHARS:
        raise unauthorized("invalid_token", "the Authorization header must be Bearer <token>")
    return await services.auth.authenticate(token)
