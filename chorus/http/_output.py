"""What the API answers: one attrs class per JSON shape, its converters and its JSON Schema.

Handlers build these views from store rows; `to_json` writes them and
`SchemaSet` describes them for OpenAPI from the same class definitions, so
the document cannot drift from the responses. Messages and files use the
wire protocol's own `protocol.Message` and `protocol.FileInfo` (and their
published schemas), so they look the same over HTTP and over the WebSocket.
"""

from __future__ import annotations

import inspect
import types
import typing
from typing import Any, Literal

import attrs
import orjson

from chorus import persistence, protocol
from chorus.actors.events import event_frame, wire_message
from chorus.auth import Tokens

_DESCRIPTION = "chorus.http.description"


def described(description: str) -> Any:
    """A required view field with a description for the OpenAPI document."""
    return attrs.field(metadata={_DESCRIPTION: description})


RoomKindName = Literal["public", "private", "direct"]
RoleName = Literal["owner", "moderator", "member"]
NotifyName = Literal["all", "mentions", "none"]
NotificationKindName = Literal["mention", "room_mention", "reply"]

RoomEvent = (
    protocol.MessageEvent | protocol.EditedEvent | protocol.DeletedEvent | protocol.ReactionEvent
)
"""A sequenced room event: the frame the gateway sends for it (sent as that frame's JSON)."""
_FRAMES = (
    protocol.MessageEvent,
    protocol.EditedEvent,
    protocol.DeletedEvent,
    protocol.ReactionEvent,
)


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
    refresh_token: str | None = described(
        "Single use: exchange it at /auth/refresh for a new pair. Null in cookie mode"
        " (header `X-Chorus-Refresh-Cookie: 1`): the token is in the HttpOnly"
        " `chorus_refresh` cookie instead (docs/security.md)."
    )
    expires_in: int = described("Seconds until `access_token` expires.")
    session_id: str
    user: UserView


@attrs.frozen(kw_only=True)
class ChallengeView:
    """The password was right and the account has 2FA: no session yet (issue #14)."""

    challenge_token: str = described(
        "Send with a code to /auth/login/2fa; it proves the password, nothing else."
    )
    expires_in: int = described("Seconds left for the second step (two_factor_challenge_ttl).")


@attrs.frozen(kw_only=True)
class EnrolmentView:
    """A pending TOTP enrolment; shown once, never again."""

    secret: str = described("The base32 TOTP secret, to type into an authenticator app.")
    otpauth_uri: str = described("The same as an `otpauth://totp/` URI, to show as a QR code.")


@attrs.frozen(kw_only=True)
class RecoveryCodesView:
    """2FA is now on: the one-time recovery codes, shown once (only their hashes are kept).

    Each code works once in place of a TOTP code, at /auth/login/2fa or to disable 2FA.
    """

    recovery_codes: list[str]
    revoked_sessions: int = described("How many other sessions were ended in the same call.")


@attrs.frozen(kw_only=True)
class TwoFactorView:
    """The caller's 2FA state."""

    enabled: bool
    pending: bool = described("An enrolment awaits its first code (/auth/2fa/confirm).")
    recovery_codes_left: int = described("Unused recovery codes (0 while 2FA is off).")


@attrs.frozen(kw_only=True)
class SessionView:
    """One live session of the caller."""

    id: str
    current: bool = described("The session of the access token making this request.")
    user_agent: str = described("The `User-Agent` that logged in (cut to 256 characters).")
    address: str = described(
        "The client address that logged in (behind trusted_proxies, the forwarded one)."
    )
    created_at: int
    last_seen_at: int = described("The last login or token refresh of the session.")
    expires_at: int = described(
        "When it ends unless refreshed before (idle expiry), never past its absolute expiry."
    )
    max_expires_at: int = described("When it ends whatever happens (session_max_age).")


@attrs.frozen(kw_only=True)
class SessionsView:
    """The caller's live sessions, oldest first."""

    sessions: list[SessionView]


@attrs.frozen(kw_only=True)
class RevokedView:
    """How many sessions a call ended."""

    revoked_sessions: int


@attrs.frozen(kw_only=True)
class RoomView:
    """A room; `last_seq` is the seq of its newest message (0 while it has none)."""

    id: str
    name: str
    kind: RoomKindName
    created_by: str
    created_at: int
    last_seq: int
    read_receipts: bool = described("Whether members see each other's read markers.")
    encrypted: bool = described(
        "End-to-end encrypted (direct rooms only; never turned off): messages carry Megolm"
        " envelopes (docs/e2e.md)."
    )


@attrs.frozen(kw_only=True)
class MyRoomView(RoomView):
    """A room the caller is a member of, with the caller's role, read marker and settings.

    `notify` says which of the room's messages notify the caller; `others`
    lists a direct room's other members (to name the room), null for other rooms.
    """

    role: RoleName
    read_seq: int
    notify: NotifyName
    others: list[UserView] | None


@attrs.frozen(kw_only=True)
class FileUrlView:
    """A URL that fetches a file (or a thumbnail) without a token, until it expires."""

    url: str
    expires_at: int = described("When the URL stops working (ms since the epoch).")


@attrs.frozen(kw_only=True)
class MemberView:
    """A member of a room, with their presence as this node sees it."""

    user_id: str
    role: RoleName
    joined_at: int
    status: protocol.PresenceStatus
    read_seq: int | None = described(
        "The last seq the member has read; null unless the room shows read receipts"
        " and the caller is a member."
    )


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
class EventPageView:
    """Events of a room in ascending seq order, as the gateway sends them.

    Messages show their current state (latest body, `edited_at`; a deleted
    one has an empty body); the `edited`, `deleted` and `reaction` events
    that changed them follow at their own seqs, exactly as on resume.
    """

    events: list[RoomEvent]


@attrs.frozen(kw_only=True)
class PostedView:
    """The stored message; `duplicate` is true when the client_id had already been used."""

    message: protocol.Message
    duplicate: bool


@attrs.frozen(kw_only=True)
class ChangedView:
    """The stored edit, delete or reaction event (with its seq), as subscribers got it.

    `duplicate` is true when the client_id had already been used: `event` is
    then the original one. `event` is null when a reaction changed nothing.
    """

    event: RoomEvent | None
    duplicate: bool


@attrs.frozen(kw_only=True)
class MessageDetailView:
    """A message in its current state, with its reactions and its thread.

    `reactions` maps each emoji to its number of users, ordered by the oldest
    standing reaction.
    """

    message: protocol.Message
    reactions: dict[str, int]
    reply_count: int = described("Replies in the thread rooted here (deleted ones excluded).")
    last_reply_at: int | None = described("When the newest reply was posted; null without one.")
    deleted_at: int | None = described("When it was deleted (the body is then empty).")
    deleted_by: str | None


@attrs.frozen(kw_only=True)
class ThreadView:
    """A thread: its root and a page of its replies in ascending seq order."""

    root: MessageDetailView
    messages: list[protocol.Message]


@attrs.frozen(kw_only=True)
class ThreadsView:
    """The roots of the threads the caller follows, newest reply first."""

    threads: list[MessageDetailView]


@attrs.frozen(kw_only=True)
class EditView:
    """One earlier version of an edited message."""

    body: str = described("The text before this edit.")
    written_at: int = described("When that text was written (posted, or an earlier edit).")
    replaced_at: int = described("When this edit replaced it.")
    seq: int = described("The seq of the `edited` event.")


@attrs.frozen(kw_only=True)
class EditHistoryView:
    """A message's earlier versions, oldest first (empty if never edited, or deleted)."""

    edits: list[EditView]


@attrs.frozen(kw_only=True)
class ReactorsView:
    """Who reacted with one emoji, earliest first."""

    users: list[str]


@attrs.frozen(kw_only=True)
class ReadView:
    """The caller's stored read marker (never moved back, never past the room's last seq)."""

    read_seq: int


@attrs.frozen(kw_only=True)
class RoomUnreadView:
    """What the caller has not read in one room."""

    room: str
    unread: int = described("Messages after the read marker, from others, not deleted.")
    mentions: int = described("Of those, the ones mentioning the caller (by name or @room).")


@attrs.frozen(kw_only=True)
class UnreadView:
    """Unread and mention counts for every room the caller is a member of."""

    rooms: list[RoomUnreadView]


@attrs.frozen(kw_only=True)
class NotificationView:
    """An entry of the caller's notification inbox; unread while `read_at` is null."""

    id: str
    room: str
    message: str
    seq: int = described("The message's seq in its room.")
    kind: NotificationKindName
    created_at: int = described("When the message was posted.")
    read_at: int | None


@attrs.frozen(kw_only=True)
class NotificationPageView:
    """A page of the caller's notifications, newest first."""

    notifications: list[NotificationView]
    next_before: str | None = described("Pass as `before` for the next page; null on the last.")


@attrs.frozen(kw_only=True)
class MarkedView:
    """How many notifications were unread and are now read."""

    marked: int


@attrs.frozen(kw_only=True)
class SearchHitView:
    """A matching message and an excerpt with each match between ⟦ and ⟧."""

    message: protocol.Message
    snippet: str


@attrs.frozen(kw_only=True)
class SearchPageView:
    """Matches, newest first."""

    hits: list[SearchHitView]
    next_offset: int | None = described("Pass as `offset` for the next page; null on the last.")


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


def session_view(session: persistence.Session, current_id: str) -> SessionView:
    return SessionView(
        id=session.id,
        current=session.id == current_id,
        user_agent=session.user_agent,
        address=session.address,
        created_at=session.created_at,
        last_seen_at=session.last_seen_at,
        expires_at=session.expires_at,
        max_expires_at=session.max_expires_at,
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
        "read_receipts": room.read_receipts,
        "encrypted": room.encrypted,
    }


def room_view(room: persistence.Room) -> RoomView:
    return RoomView(**_room_fields(room))


def my_room_view(
    room: persistence.Room,
    membership: persistence.Membership,
    others: list[persistence.User] | None = None,
) -> MyRoomView:
    """The caller's view of a room; `others` are a direct room's other members."""
    return MyRoomView(
        **_room_fields(room),
        role=membership.role.value,
        read_seq=membership.read_seq,
        notify=membership.notify.value,
        others=None if others is None else [user_view(user) for user in others],
    )


def member_view(
    membership: persistence.Membership, status: protocol.PresenceStatus, *, show_read: bool
) -> MemberView:
    return MemberView(
        user_id=membership.user_id,
        role=membership.role.value,
        joined_at=membership.joined_at,
        status=status,
        read_seq=membership.read_seq if show_read else None,
    )


def room_detail_view(room: persistence.Room, members: list[MemberView]) -> RoomDetailView:
    return RoomDetailView(**_room_fields(room), members=members)


def room_event(event: persistence.Message, *, encrypted: bool) -> RoomEvent:
    """The frame of a stored room event (`chorus.actors.events.event_frame`)."""
    frame = event_frame(event, encrypted=encrypted)
    assert isinstance(frame, _FRAMES), frame
    return frame


def message_detail_view(
    message: persistence.Message, reactions: dict[str, int], *, encrypted: bool
) -> MessageDetailView:
    return MessageDetailView(
        message=wire_message(message, encrypted=encrypted),
        reactions=reactions,
        reply_count=message.reply_count,
        last_reply_at=message.last_reply_at,
        deleted_at=message.deleted_at,
        deleted_by=message.deleted_by,
    )


def changed_view(result: persistence.Appended | None, *, encrypted: bool) -> ChangedView:
    if result is None:
        return ChangedView(event=None, duplicate=False)
    event = room_event(result.message, encrypted=encrypted)
    return ChangedView(event=event, duplicate=result.duplicate)


def edit_view(edit: persistence.Edit) -> EditView:
    return EditView(
        body=edit.body, written_at=edit.written_at, replaced_at=edit.replaced_at, seq=edit.seq
    )


def notification_view(notification: persistence.Notification) -> NotificationView:
    return NotificationView(
        id=notification.id,
        room=notification.room_id,
        message=notification.message_id,
        seq=notification.seq,
        kind=notification.kind.value,
        created_at=notification.created_at,
        read_at=notification.read_at,
    )


# -- JSON -----------------------------------------------------------------------------


def to_json(value: object) -> bytes:
    """A view (or a plain JSON-able dict) as JSON bytes; room events as their frames."""
    return orjson.dumps(_plain(value))


def _plain(value: object) -> object:
    if isinstance(value, _FRAMES):
        return orjson.Fragment(protocol.encode(value))
    if attrs.has(cls := type(value)):
        return {f.name: _plain(getattr(value, f.name)) for f in attrs.fields(cls)}
    if isinstance(value, list | tuple):  # protocol objects hold tuples
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    return value


# -- JSON Schema ----------------------------------------------------------------------


_PROTOCOL_TYPES = {
    cls.__name__: cls
    for cls in (
        protocol.Message,
        protocol.FileInfo,
        protocol.Thumbnail,
        protocol.MegolmEnvelope,
        protocol.OlmEnvelope,
        protocol.OlmCiphertext,
        *_FRAMES,
    )
}
"""Types whose schema is the protocol's own (from its JSON Schema document), by name."""
_DEFS = "#/$defs/"


def _protocol_schema(cls: type[Any]) -> dict[str, Any]:
    schema: dict[str, Any] = orjson.loads(protocol.json_schema_document())["$defs"][cls.__name__]
    return schema


def _protocol_refs(schema: object) -> set[str]:
    """The names of the protocol definitions that `schema` refers to (`#/$defs/Name`)."""
    match schema:
        case {"$ref": str(ref)} if ref.startswith(_DEFS):
            return {ref.removeprefix(_DEFS)}
        case dict():
            return set().union(*(_protocol_refs(value) for value in schema.values()))
        case list():
            return set().union(*(_protocol_refs(value) for value in schema))
    return set()


def _as_component(schema: object) -> Any:
    """`schema` with its `#/$defs/Name` references made OpenAPI's `#/components/schemas/Name`."""
    match schema:
        case {"$ref": str(ref)} if ref.startswith(_DEFS):
            return {"$ref": "#/components/schemas/" + ref.removeprefix(_DEFS)}
        case dict():
            return {key: _as_component(value) for key, value in schema.items()}
        case list():
            return [_as_component(value) for value in schema]
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
            if _PROTOCOL_TYPES.get(cls.__name__) is cls:
                schema = _protocol_schema(cls)
                self.components[name] = _as_component(schema)
                for nested in _protocol_refs(schema):  # e.g. a message's FileInfo
                    self.ref(_PROTOCOL_TYPES[nested])
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
        if hint is Any:
            return {}  # any JSON value
        if origin is Literal:
            return {"type": "string", "enum": list(args)}
        if origin is list:
            return {"type": "array", "items": self._type(args[0])}
        if origin is dict and args[0] is str:
            return {"type": "object", "additionalProperties": self._type(args[1])}
        if origin in (typing.Union, types.UnionType):
            options = [self._type(arg) for arg in args if arg is not type(None)]
            if type(None) in args:
                options.append({"type": "null"})
            return {"anyOf": options}
        if attrs.has(hint):
            return self.ref(hint)
        raise TypeError(f"no JSON Schema for {hint!r}")


@attrs.frozen(kw_only=True)
class BanView:
    """A ban from a room."""

    user_id: str
    banned_by: str
    reason: str
    banned_at: int


@attrs.frozen(kw_only=True)
class BanListView:
    bans: list[BanView]


@attrs.frozen(kw_only=True)
class InviteView:
    """A pending invitation to a room."""

    room_id: str
    user_id: str = described("The invited user.")
    invited_by: str
    created_at: int


@attrs.frozen(kw_only=True)
class InviteListView:
    """A room's pending invitations, oldest first."""

    invites: list[InviteView]


@attrs.frozen(kw_only=True)
class MyInviteView:
    """A pending invitation of the caller, with the room it is to."""

    room: RoomView
    invited_by: str
    created_at: int


@attrs.frozen(kw_only=True)
class MyInviteListView:
    """The caller's pending invitations, oldest first."""

    invites: list[MyInviteView]


@attrs.frozen(kw_only=True)
class BlockListView:
    """Ids of the users the caller blocks, oldest block first."""

    user_ids: list[str]


@attrs.frozen(kw_only=True)
class ServerRoleView:
    """A user and their server role."""

    user: UserView
    role: Literal["admin", "moderator", "member"]


@attrs.frozen(kw_only=True)
class UserListView:
    """A page of users with their server roles; `next_after` continues it (null: the last)."""

    users: list[ServerRoleView]
    next_after: str | None


@attrs.frozen(kw_only=True)
class SettingView:
    """One run-time server setting (see docs/operations.md, Run-time settings): `value` is
    what every node applies now, `default` the node's configured value (file, environment,
    flags); `minimum` and `maximum` bound a number, or a string's length (null for a
    boolean)."""

    name: str
    value: Any
    default: Any
    source: Literal["config", "store"] = described(
        "`store`: an admin's value overrides the default; `config`: the default applies."
    )
    kind: Literal["bool", "int", "float", "str"] = described("The value's type.")
    minimum: Any
    maximum: Any
    description: str
    updated_at: int | None = described("When an admin stored the value; null for `config`.")
    updated_by: str | None = described(
        "The admin who stored it; null for `config` and for `chorus admin settings`."
    )


@attrs.frozen(kw_only=True)
class SettingsView:
    """Every run-time server setting, in a fixed order."""

    settings: list[SettingView]


@attrs.frozen(kw_only=True)
class AuditEventView:
    """One audit log event (the fields `chorus admin audit` prints, with `at` in ms);
    `details` holds small, non-secret facts whose keys depend on `action`."""

    id: int = described("Grows with each event: `before` pages by it.")
    at: int
    action: str = described("What happened (docs/operations.md, Audit log, lists them).")
    actor_id: str | None = described("The user who acted; null for none (a failed login, the CLI).")
    target: str = described("The user, session or room acted on, a username tried, or ''.")
    address: str = described("The client's address, or ''.")
    details: dict[str, Any]


@attrs.frozen(kw_only=True)
class AuditPageView:
    """A page of audit log events, newest first."""

    events: list[AuditEventView]
    next_before: int | None = described("Pass as `before` for the next page; null on the last.")


def audit_event_view(event: persistence.AuditEvent) -> AuditEventView:
    return AuditEventView(
        id=event.id,
        at=event.at,
        action=event.action,
        actor_id=event.actor_id,
        target=event.target,
        address=event.address,
        details=event.details,
    )


@attrs.frozen(kw_only=True)
class ProfileView:
    """A user and their avatar (null without one): one of their image files."""

    user: UserView
    avatar: protocol.FileInfo | None
