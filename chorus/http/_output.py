"""What the API answers: one attrs class per JSON shape, its converters and its JSON Schema.

Handlers build these views from store rows; `to_json` writes them and
`SchemaSet` describes them for OpenAPI from the same class definitions, so
the document cannot drift from the responses. Messages use the wire
protocol's own `protocol.Message` (and its published schema), so a message
looks the same over HTTP and over the WebSocket.
"""

from __future__ import annotations

import inspect
import types
import typing
from typing import Any, Literal

import attrs
import orjson

from chorus import persistence, protocol
from chorus.actors.events import wire_message
from chorus.auth import Tokens

_DESCRIPTION = "chorus.http.description"


def described(description: str) -> Any:
    """A required view field with a description for the OpenAPI document."""
    return attrs.field(metadata={_DESCRIPTION: description})


RoomKindName = Literal["public", "private", "direct"]
RoleName = Literal["owner", "moderator", "member"]
StatusName = Literal["online", "idle", "offline"]


@attrs.frozen(kw_only=True)
class UserView:
    """A user account as other users see it."""

    id: str
    username: str
    display_name: str
    created_at: int = described("Milliseconds since the Unix epoch (UTC), like every timestamp.")


@attrs.frozen(kw_only=True)
class TokensView:
    """A new session's tokens (register, login) or a rotated pair (refresh)."""

    access_token: str = described(
        "Send as `Authorization: Bearer <access_token>`; also the gateway `hello` token."
    )
    refresh_token: str = described("Single use: exchange it at /auth/refresh for a new pair.")
    expires_in: int = described("Seconds until `access_token` expires.")
    session_id: str
    user: UserView


@attrs.frozen(kw_only=True)
class RoomView:
    """A room; `last_seq` is the seq of its newest message (0 while it has none)."""

    id: str
    name: str
    kind: RoomKindName
    created_by: str
    created_at: int
    last_seq: int


@attrs.frozen(kw_only=True)
class MyRoomView(RoomView):
    """A room the caller is a member of, with the caller's role and read marker."""

    role: RoleName
    read_seq: int


@attrs.frozen(kw_only=True)
class MemberView:
    """A member of a room, with their presence as this node sees it."""

    user_id: str
    role: RoleName
    joined_at: int
    status: StatusName


@attrs.frozen(kw_only=True)
class RoomDetailView(RoomView):
    """A room with its members, oldest joined first."""

    members: list[MemberView]


@attrs.frozen(kw_only=True)
class MyRoomsView:
    """The caller's rooms, oldest joined first."""

    rooms: list[MyRoomView]


@attrs.frozen(kw_only=True)
class RoomPageView:
    """A page of the public room directory, in id order."""

    rooms: list[RoomView]
    next_after: str | None = described("Pass as `after` for the next page; null on the last.")


@attrs.frozen(kw_only=True)
class MessagePageView:
    """Messages of a room in ascending seq order."""

    messages: list[protocol.Message]


@attrs.frozen(kw_only=True)
class PostedView:
    """The stored message; `duplicate` is true when the client_id had already been used."""

    message: protocol.Message
    duplicate: bool


@attrs.frozen(kw_only=True)
class GatewayView:
    """Where to open the WebSocket, and the subprotocol to ask for."""

    urls: list[str]
    subprotocol: str


@attrs.frozen(kw_only=True)
class StatusView:
    status: str


@attrs.frozen(kw_only=True)
class ErrorDetailView:
    code: str = described("Stable and machine-readable (see docs/api.md for the list).")
    message: str = described("For humans; the wording may change between versions.")


@attrs.frozen(kw_only=True)
class ErrorView:
    """Every error response has this shape."""

    error: ErrorDetailView


# -- converters from store rows -------------------------------------------------------


def user_view(user: persistence.User) -> UserView:
    return UserView(
        id=user.id,
        username=user.username,
        display_name=user.display_name,
        created_at=user.created_at,
    )


def tokens_view(tokens: Tokens) -> TokensView:
    return TokensView(
        access_token=tokens.access_token,
        refresh_token=tokens.refresh_token,
        expires_in=tokens.expires_in,
        session_id=tokens.session_id,
        user=user_view(tokens.user),
    )


def _room_fields(room: persistence.Room) -> dict[str, Any]:
    return {
        "id": room.id,
        "name": room.name,
        "kind": room.kind.value,
        "created_by": room.created_by,
        "created_at": room.created_at,
        "last_seq": room.last_seq,
    }


def room_view(room: persistence.Room) -> RoomView:
    return RoomView(**_room_fields(room))


def my_room_view(room: persistence.Room, membership: persistence.Membership) -> MyRoomView:
    return MyRoomView(
        **_room_fields(room), role=membership.role.value, read_seq=membership.read_seq
    )


def member_view(membership: persistence.Membership, status: StatusName) -> MemberView:
    return MemberView(
        user_id=membership.user_id,
        role=membership.role.value,
        joined_at=membership.joined_at,
        status=status,
    )


def room_detail_view(room: persistence.Room, members: list[MemberView]) -> RoomDetailView:
    return RoomDetailView(**_room_fields(room), members=members)


def message_page_view(messages: list[persistence.Message]) -> MessagePageView:
    return MessagePageView(messages=[wire_message(message) for message in messages])


# -- JSON -----------------------------------------------------------------------------


def to_json(value: object) -> bytes:
    """A view (or a plain JSON-able dict) as JSON bytes."""
    if attrs.has(type(value)):
        value = attrs.asdict(value, recurse=True)  # type: ignore[arg-type]
    return orjson.dumps(value)


# -- JSON Schema ----------------------------------------------------------------------


def _protocol_message_schema() -> dict[str, Any]:
    schema: dict[str, Any] = orjson.loads(protocol.json_schema_document())["$defs"]["Message"]
    return schema


def schema_name(cls: type[Any]) -> str:
    """The component name of a view: its class name without `View` (`UserView` -> `User`)."""
    return cls.__name__.removesuffix("View")


class SchemaSet:
    """The schemas of views, collected as OpenAPI components; `ref` adds one with its parts.

    View schemas leave `additionalProperties` open: a later version may add
    fields, and clients ignore the ones they do not know.
    """

    def __init__(self) -> None:
        self.components: dict[str, dict[str, Any]] = {}

    def ref(self, cls: type[Any]) -> dict[str, Any]:
        """A `$ref` to the schema of `cls` (added, with every view it uses, if new)."""
        name = schema_name(cls)
        if name not in self.components:
            if cls is protocol.Message:
                self.components[name] = _protocol_message_schema()
            else:
                self.components[name] = {}  # reserve the name first: views may nest
                self.components[name] = self._object(cls)
        return {"$ref": f"#/components/schemas/{name}"}

    def _object(self, cls: type[Any]) -> dict[str, Any]:
        hints = typing.get_type_hints(cls)
        properties: dict[str, Any] = {}
        for field in attrs.fields(cls):
            prop = self._type(hints[field.name])
            if _DESCRIPTION in field.metadata:
                prop = {"description": field.metadata[_DESCRIPTION]} | prop
            properties[field.name] = prop
        schema: dict[str, Any] = {
            "type": "object",
            "properties": properties,
            "required": [field.name for field in attrs.fields(cls)],
        }
        if doc := cls.__dict__.get("__doc__"):
            schema = {"description": inspect.cleandoc(doc)} | schema
        return schema

    def _type(self, hint: Any) -> dict[str, Any]:
        origin = typing.get_origin(hint)
        args = typing.get_args(hint)
        if hint is str:
            return {"type": "string"}
        if hint is bool:
            return {"type": "boolean"}
        if hint is int:
            return {"type": "integer"}
        if origin is Literal:
            return {"type": "string", "enum": list(args)}
        if origin is list:
            return {"type": "array", "items": self._type(args[0])}
        if origin in (typing.Union, types.UnionType) and type(None) in args:
            (inner,) = (arg for arg in args if arg is not type(None))
            return {"anyOf": [self._type(inner), {"type": "null"}]}
        if attrs.has(hint):
            return self.ref(hint)
        raise TypeError(f"no JSON Schema for {hint!r}")
