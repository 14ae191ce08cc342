"""The frames of protocol v1: one frozen attrs class per `type` tag, and their unions.

Every instance satisfies its fields' limits: construction raises TypeError
(wrong type) or ValueError (a limit broken), so `encode` only ever writes
frames that `decode_*_frame` accepts. `TYPE` is a class's wire `type` tag.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Final, Literal, TypeAlias

import attrs

from ._errors import ErrorCode
from ._fields import Entries, Flatten, Items, Range, Text, check_nonempty_one_of, constrain
from ._limits import (
    MAX_ACK_IDS,
    MAX_ATTACHMENTS,
    MAX_BODY_CHARS,
    MAX_CIPHERTEXT_CHARS,
    MAX_CLIENT_CHARS,
    MAX_CONTENT_TYPE_CHARS,
    MAX_FILE_NAME_CHARS,
    MAX_ID_CHARS,
    MAX_NONCE_CHARS,
    MAX_PREVIEW_CHARS,
    MAX_RESUME_ROOMS,
    MAX_ROOM_NAME_CHARS,
    MAX_TEXT_CHARS,
    MAX_THUMBNAILS,
    MAX_TOKEN_CHARS,
    MAX_URL_CHARS,
)
from ._types import (
    ClientId,
    Count,
    DeviceId,
    Emoji,
    EpochMs,
    EventSeq,
    FileId,
    KeyText,
    MessageId,
    Millis,
    NotificationId,
    NotificationKind,
    PresenceStatus,
    Ref,
    RoomId,
    Seq,
    SessionId,
    UserId,
)

# --- end-to-end encryption: the envelopes the server relays unread (docs/e2e.md) ----

MEGOLM: Final = "m.megolm.v1.aes-sha2"
OLM: Final = "m.olm.v1.curve25519-aes-sha2"


@attrs.frozen(kw_only=True, field_transformer=constrain)
class MegolmEnvelope:
    """A message or an edit in an encrypted room, encrypted by the sending device's Megolm
    session; the server stores and relays it, and cannot read `ciphertext`."""

    algorithm: Literal["m.megolm.v1.aes-sha2"]
    sender_key: KeyText
    """The sending device's Curve25519 identity key."""
    device_id: DeviceId
    """The sending device."""
    session_id: KeyText
    """The Megolm session (whose key the device shared over to-device messages)."""
    ciphertext: Annotated[str, Text(1, MAX_CIPHERTEXT_CHARS, spaceless=True)]


@attrs.frozen(kw_only=True, field_transformer=constrain)
class OlmCiphertext:
    """One Olm message: `type` 0 is a pre-key message (it starts a session), 1 a normal one."""

    type: Annotated[int, Range(maximum=1)]
    body: Annotated[str, Text(1, MAX_CIPHERTEXT_CHARS, spaceless=True)]


@attrs.frozen(kw_only=True, field_transformer=constrain)
class OlmEnvelope:
    """The content of a to-device message: Olm ciphertext for one device."""

    algorithm: Literal["m.olm.v1.curve25519-aes-sha2"]
    sender_key: KeyText
    """The sending device's Curve25519 identity key."""
    ciphertext: OlmCiphertext


# --- client to server ---------------------------------------------------------


@attrs.frozen(kw_only=True, field_transformer=constrain)
class Hello:
    """Authenticate; must be the first frame. Answered by `ready`, or an error and close 4000."""

    TYPE: ClassVar[str] = "hello"
    token: Annotated[str, Text(0, MAX_TOKEN_CHARS)]
    """A Chorus access token, or a token of a configured identity provider (which opens a
    new session, as `POST /api/v1/auth/exchange` does). An empty token is refused like any
    invalid one (`invalid_token`, close 4000)."""
    client: Annotated[str, Text(0, MAX_CLIENT_CHARS)] | None = None
    """Free-form client name and version, for the server's logs."""
    device_id: DeviceId | None = None
    """This session's end-to-end encryption device: its to-device messages come to this
    connection, and `ready` reports its one-time keys (docs/e2e.md)."""


@attrs.frozen(kw_only=True, field_transformer=constrain)
class Ping:
    """Heartbeat; the server answers `pong` with the same `nonce`."""

    TYPE: ClassVar[str] = "ping"
    nonce: Annotated[str, Text(0, MAX_NONCE_CHARS)] | None = None


@attrs.frozen(kw_only=True, field_transformer=constrain)
class Join:
    """Subscribe to `room`; the `ack` carries the room's latest `seq`."""

    TYPE: ClassVar[str] = "join"
    ref: Ref
    room: RoomId


@attrs.frozen(kw_only=True, field_transformer=constrain)
class Leave:
    """Unsubscribe from `room`."""

    TYPE: ClassVar[str] = "leave"
    ref: Ref
    room: RoomId


@attrs.frozen(kw_only=True, field_transformer=constrain)
class Send:
    """Post `body` in `room`; acknowledged once stored, idempotent per `client_id`.

    With `thread`, the message is a reply in the thread rooted at that message
    of the same room. `attachments` are ids of files you uploaded that are
    `ready` and not attached yet, each at most once; `body` may be empty
    only when there are attachments. In an encrypted room `body` is empty
    and `encrypted` holds the message (docs/e2e.md).
    """

    TYPE: ClassVar[str] = "send"
    NONEMPTY_ONE_OF: ClassVar[tuple[str, ...]] = ("body", "attachments", "encrypted")
    ref: Ref
    room: RoomId
    client_id: ClientId
    body: Annotated[str, Text(0, MAX_BODY_CHARS)]
    thread: MessageId | None = None
    attachments: Annotated[tuple[FileId, ...], Items(0, MAX_ATTACHMENTS, unique=True)] = ()
    encrypted: MegolmEnvelope | None = None

    # The function itself, not a method calling it: the codec's fast decoder
    # recognises it and checks the rule in its own expression (`_fast_decoder`).
    __attrs_post_init__ = check_nonempty_one_of


@attrs.frozen(kw_only=True, field_transformer=constrain)
class Edit:
    """Replace the text of your own `message` in `room`; the `ack` has the `edited` event's seq.

    In an encrypted room `body` is empty and `encrypted` holds the new text.
    """

    TYPE: ClassVar[str] = "edit"
    NONEMPTY_ONE_OF: ClassVar[tuple[str, ...]] = ("body", "encrypted")
    ref: Ref
    room: RoomId
    message: MessageId
    client_id: ClientId
    body: Annotated[str, Text(0, MAX_BODY_CHARS)]
    encrypted: MegolmEnvelope | None = None

    # The function itself, not a method calling it: the codec's fast decoder
    # recognises it and checks the rule in its own expression (`_fast_decoder`).
    __attrs_post_init__ = check_nonempty_one_of


@attrs.frozen(kw_only=True, field_transformer=constrain)
class Delete:
    """Delete `message` in `room` (its sender, or an owner or moderator of the room).

    The `ack` has the seq of the `deleted` event.
    """

    TYPE: ClassVar[str] = "delete"
    ref: Ref
    room: RoomId
    message: MessageId
    client_id: ClientId


@attrs.frozen(kw_only=True, field_transformer=constrain)
class React:
    """Add (or, with `remove`, take back) your reaction `emoji` to `message` in `room`.

    A user has at most one reaction per emoji per message. The `ack` has the
    seq of the `reaction` event, or a null seq when nothing changed.
    """

    TYPE: ClassVar[str] = "react"
    ref: Ref
    room: RoomId
    message: MessageId
    client_id: ClientId
    emoji: Emoji
    remove: bool = False


@attrs.frozen(kw_only=True, field_transformer=constrain)
class MarkRead:
    """Move your read marker in `room` forward to `seq` (never back); the `ack` has the marker."""

    TYPE: ClassVar[str] = "mark_read"
    ref: Ref
    room: RoomId
    seq: Seq


@attrs.frozen(kw_only=True, field_transformer=constrain)
class Typing:
    """The user is typing in `room`; not answered, throttled by the server."""

    TYPE: ClassVar[str] = "typing"
    room: RoomId


@attrs.frozen(kw_only=True, field_transformer=constrain)
class SetPresence:
    """Set the user's own presence status; not answered."""

    TYPE: ClassVar[str] = "presence"
    status: Literal["online", "idle"]


@attrs.frozen(kw_only=True, field_transformer=constrain)
class Resume:
    """Re-subscribe after a reconnect and receive every message after each room's seq.

    `rooms` maps a room id to the last seq the client saw there (0: none).
    Each room ends with `replayed`, or `too_far` when it is too far behind.
    """

    TYPE: ClassVar[str] = "resume"
    ref: Ref
    rooms: Annotated[dict[RoomId, Seq], Entries(1, MAX_RESUME_ROOMS)]


@attrs.frozen(kw_only=True, field_transformer=constrain)
class ToDeviceAck:
    """This connection's device processed these `to_device` messages: delete them.

    Answered by an `ack`; ids that are not the device's (or already gone) are ignored.
    """

    TYPE: ClassVar[str] = "to_device_ack"
    ref: Ref
    ids: Annotated[tuple[MessageId, ...], Items(1, MAX_ACK_IDS, unique=True)]


# --- server to client ---------------------------------------------------------


@attrs.frozen(kw_only=True, field_transformer=constrain)
class Thumbnail:
    """A smaller rendition of an image file; ask a URL for the variant `name`."""

    name: Annotated[str, Text(1, MAX_ID_CHARS)]
    """The variant: "320" or "1280" (the bound, in pixels, it fits in)."""
    width: Count
    height: Count
    size: Count
    content_type: Annotated[str, Text(1, MAX_CONTENT_TYPE_CHARS)]


@attrs.frozen(kw_only=True, field_transformer=constrain)
class FileInfo:
    """An uploaded file, as `GET /api/v1/files/{id}` shows it (the `file` of a `file`
    frame, and each of a message's `attachments`).

    `name` is the display name (sanitised; never part of a storage path),
    `size` the bytes uploaded. `state` is pending, scanning, ready
    (deliverable: `GET /api/v1/files/{id}/url`) or rejected (`reason` says
    why: infected, type_not_allowed, type_mismatch, empty, image_too_large,
    too_many_frames, image_invalid, interrupted; null otherwise).
    `content_type` is the type sniffed from the bytes once checked (the
    declared one before); `scan` is clean, or unscanned on a server that
    does not virus-scan (null until checked); `width`, `height` (pixels,
    after EXIF orientation) and `thumbnails` are for images.
    """

    id: FileId
    name: Annotated[str, Text(1, MAX_FILE_NAME_CHARS)]
    size: Count
    content_type: Annotated[str, Text(1, MAX_CONTENT_TYPE_CHARS)]
    state: Literal["pending", "scanning", "ready", "rejected"]
    reason: Annotated[str, Text(1, MAX_ID_CHARS)] | None
    scan: Literal["clean", "unscanned"] | None
    width: Count | None
    height: Count | None
    thumbnails: Annotated[tuple[Thumbnail, ...], Items(0, MAX_THUMBNAILS)]
    created_at: EpochMs


@attrs.frozen(kw_only=True, field_transformer=constrain)
class Message:
    """A stored chat message (the `message` of an `ack`, and a `message` event's fields).

    `thread` is the id of the thread's root for a thread reply. `body` is
    empty for a message deleted since (in replays and in acks of retried
    sends), or for one posted with attachments only. `attachments` are its
    files, in the order they were sent (none once the message is deleted);
    `GET /api/v1/files/{id}/url` gives a URL of each.
    """

    id: MessageId
    room: RoomId
    seq: EventSeq
    sender: UserId
    body: Annotated[str, Text(0, MAX_BODY_CHARS)]
    client_id: ClientId
    created_at: EpochMs
    edited_at: EpochMs | None
    thread: MessageId | None = None
    attachments: Annotated[tuple[FileInfo, ...], Items(0, MAX_ATTACHMENTS)] = ()
    encrypted: MegolmEnvelope | None = None
    """In an encrypted room, the message itself (its latest edit); `body` is empty then."""


@attrs.frozen(kw_only=True, field_transformer=constrain)
class Ready:
    """Authentication succeeded; the session's parameters."""

    TYPE: ClassVar[str] = "ready"
    session_id: SessionId
    user_id: UserId
    heartbeat_interval_ms: Annotated[int, Range(minimum=1)]
    resume_limit: Count
    """The most events a `resume` replays per room before answering `too_far`."""
    device_id: DeviceId | None = None
    """The device `hello` named, if any."""
    one_time_key_count: Count | None = None
    """That device's unclaimed one-time keys (null without a device): upload more when low."""


@attrs.frozen(kw_only=True, field_transformer=constrain)
class Pong:
    """Answer to a `ping`, with its `nonce`."""

    TYPE: ClassVar[str] = "pong"
    nonce: Annotated[str, Text(0, MAX_NONCE_CHARS)] | None


@attrs.frozen(kw_only=True, field_transformer=constrain)
class Ack:
    """Success reply to the request `ref`.

    join: `room` and `seq` (the room's latest); leave: `room`; send: `room`,
    `seq` and the stored `message` (the original one for a retried
    `client_id`); edit, delete, react: `room` and the seq of the event
    stored (null for a `react` that changed nothing); mark_read: `room` and
    `seq`, the stored read marker; resume: nothing else.
    """

    TYPE: ClassVar[str] = "ack"
    ref: Ref
    room: RoomId | None = None
    seq: Seq | None = None
    message: Message | None = None


@attrs.frozen(kw_only=True, field_transformer=constrain)
class ErrorReply:
    """Failure reply to the request `ref` (null if the frame had no readable `ref`)."""

    TYPE: ClassVar[str] = "error"
    ref: Ref | None
    code: ErrorCode
    message: Annotated[str, Text(0, MAX_TEXT_CHARS)]
    """Human-readable English; clients branch on `code`, never on this text."""


@attrs.frozen(kw_only=True, field_transformer=constrain)
class MessageEvent:
    """A message was posted in a joined room; on the wire its fields are the frame's."""

    TYPE: ClassVar[str] = "message"
    message: Annotated[Message, Flatten()]


@attrs.frozen(kw_only=True, field_transformer=constrain)
class EditedEvent:
    """`editor` replaced the text of `message` with `body` (a sequenced room event).

    `body` is empty when the message was deleted since (in replays).
    """

    TYPE: ClassVar[str] = "edited"
    room: RoomId
    seq: EventSeq
    message: MessageId
    editor: UserId
    body: Annotated[str, Text(0, MAX_BODY_CHARS)]
    edited_at: EpochMs
    client_id: ClientId
    encrypted: MegolmEnvelope | None = None
    """In an encrypted room, the new text (null once the message was deleted)."""


@attrs.frozen(kw_only=True, field_transformer=constrain)
class DeletedEvent:
    """`deleted_by` deleted `message` (a sequenced room event)."""

    TYPE: ClassVar[str] = "deleted"
    room: RoomId
    seq: EventSeq
    message: MessageId
    deleted_by: UserId
    deleted_at: EpochMs
    client_id: ClientId


@attrs.frozen(kw_only=True, field_transformer=constrain)
class ReactionEvent:
    """`user` added (`present`) or took back the reaction `emoji` to `message` (sequenced)."""

    TYPE: ClassVar[str] = "reaction"
    room: RoomId
    seq: EventSeq
    message: MessageId
    user: UserId
    emoji: Emoji
    present: bool
    at: EpochMs
    client_id: ClientId


@attrs.frozen(kw_only=True, field_transformer=constrain)
class ReceiptEvent:
    """`user` has read `room` up to `seq` (not sequenced, not replayed)."""

    TYPE: ClassVar[str] = "receipt"
    room: RoomId
    user: UserId
    seq: Seq


@attrs.frozen(kw_only=True, field_transformer=constrain)
class NotificationEvent:
    """The message `message` (at `seq` in `room`) notifies you, for the reason `kind`.

    Sent to every connection of the notified user, whatever rooms they joined.
    """

    TYPE: ClassVar[str] = "notification"
    id: NotificationId
    room: RoomId
    message: MessageId
    seq: EventSeq
    kind: NotificationKind
    sender: UserId
    created_at: EpochMs
    preview: Annotated[str, Text(0, MAX_PREVIEW_CHARS)]
    """The first characters of the message's text."""


@attrs.frozen(kw_only=True, field_transformer=constrain)
class TypingEvent:
    """`user` is typing in `room`; consider it stopped after `expires_in_ms`."""

    TYPE: ClassVar[str] = "typing"
    room: RoomId
    user: UserId
    expires_in_ms: Millis


@attrs.frozen(kw_only=True, field_transformer=constrain)
class PresenceEvent:
    """`user`'s presence changed."""

    TYPE: ClassVar[str] = "presence"
    user: UserId
    status: PresenceStatus


@attrs.frozen(kw_only=True, field_transformer=constrain)
class Replayed:
    """End of the resume replay for `room`.

    All `count` room events (`message`, `edited`, `deleted`, `reaction`) with
    after_seq < seq <= last_seq were sent before it.
    """

    TYPE: ClassVar[str] = "replayed"
    room: RoomId
    after_seq: Seq
    last_seq: Seq
    count: Count


@attrs.frozen(kw_only=True, field_transformer=constrain)
class TooFar:
    """More than `resume_limit` events were missed in `room`: nothing was replayed.

    Fetch the history after `after_seq` over HTTP, then `join` (or `resume`
    from `last_seq`).
    """

    TYPE: ClassVar[str] = "too_far"
    room: RoomId
    after_seq: Seq
    last_seq: Seq


@attrs.frozen(kw_only=True, field_transformer=constrain)
class Notice:
    """A server notice; `reconnect` asks the client to reconnect (to `reconnect_url` if set)."""

    TYPE: ClassVar[str] = "notice"
    code: Literal["reconnect", "shutdown", "info"]
    message: Annotated[str, Text(0, MAX_TEXT_CHARS)]
    reconnect_url: Annotated[str, Text(1, MAX_URL_CHARS)] | None = None


@attrs.frozen(kw_only=True, field_transformer=constrain)
class RoomAdded:
    """You are now a member of `room`: it was created with you in it, you were invited or
    added, or you joined it (on any connection).

    Sent live to every connection of yours, on every node; not replayed. To get
    the room's events, `resume` it from `seq`: every room event after `seq`
    happened after you became a member, so nothing since is missed, however
    soon it was sent. Clients that already joined the room ignore it.
    """

    TYPE: ClassVar[str] = "room_added"
    room: RoomId
    name: Annotated[str, Text(0, MAX_ROOM_NAME_CHARS)]
    """The room's name; empty for a direct room (name it by its members)."""
    kind: Literal["public", "private", "direct"]
    seq: Seq
    """The room's latest seq just before you became a member."""
    by: UserId
    """Who made the change: you, when you created or joined the room yourself."""


@attrs.frozen(kw_only=True, field_transformer=constrain)
class RoomRemoved:
    """You are no longer a member of `room`: you left it or were removed.

    Sent live to every connection of yours, on every node, and in answer to a
    `resume` naming a room you are not a member of. A connection subscribed to the room gets no
    event of the room after this frame, and its frames about the room are
    refused (`not_joined`, or `forbidden` for `join`).
    """

    TYPE: ClassVar[str] = "room_removed"
    room: RoomId
    by: UserId | None = None
    """Who ended the membership: you, when you left; null in answer to a `resume`."""


@attrs.frozen(kw_only=True, field_transformer=constrain)
class RoomInvited:
    """You were invited to the private room `room`: accept or decline the invitation over
    HTTP (`POST /api/v1/me/invites/{room}/accept`). Not a membership yet.

    Sent live to every connection of yours, on every node; not replayed (after a
    reconnect, `GET /api/v1/me/invites` lists your pending invitations).
    """

    TYPE: ClassVar[str] = "room_invited"
    room: RoomId
    name: Annotated[str, Text(0, MAX_ROOM_NAME_CHARS)]
    """The room's name."""
    by: UserId
    """Who invited you."""


@attrs.frozen(kw_only=True, field_transformer=constrain)
class FileUpdate:
    """A file you uploaded is `ready` (it can be fetched and attached) or `rejected`.

    Sent live to every connection of yours, on every node, when the server
    has checked the file; not replayed (`GET /api/v1/files/{id}` has its state).
    """

    TYPE: ClassVar[str] = "file"
    file: FileInfo


@attrs.frozen(kw_only=True, field_transformer=constrain)
class ToDeviceEvent:
    """A to-device message for this connection's device; it stays queued until a
    `to_device_ack` names its `id` (so it may come again after a reconnect: skip ids
    already processed)."""

    TYPE: ClassVar[str] = "to_device"
    id: MessageId
    sender: UserId
    sender_device: DeviceId
    message_id: ClientId
    """The sender's id for it (retries of one message share it)."""
    content: OlmEnvelope
    sent_at: EpochMs


@attrs.frozen(kw_only=True, field_transformer=constrain)
class OneTimeKeysLow:
    """This connection's device has few unclaimed one-time keys left: upload more."""

    TYPE: ClassVar[str] = "one_time_keys_low"
    device_id: DeviceId
    count: Count
    fallback_key: bool
    """Whether the device still has a fallback key (peers get it once the count is 0)."""


ClientFrame: TypeAlias = (
    Hello
    | Ping
    | Join
    | Leave
    | Send
    | Edit
    | Delete
    | React
    | MarkRead
    | Typing
    | SetPresence
    | Resume
    | ToDeviceAck
)
"""Any frame a client sends."""
ServerFrame: TypeAlias = (
    Ready
    | Pong
    | Ack
    | ErrorReply
    | MessageEvent
    | EditedEvent
    | DeletedEvent
    | ReactionEvent
    | ReceiptEvent
    | NotificationEvent
    | TypingEvent
    | PresenceEvent
    | Replayed
    | TooFar
    | Notice
    | RoomAdded
    | RoomRemoved
    | RoomInvited
    | FileUpdate
    | ToDeviceEvent
    | OneTimeKeysLow
)
"""Any frame the server sends."""
Frame: TypeAlias = ClientFrame | ServerFrame
