"""Value types shared by many frames, each with its limits (see `_fields`)."""

from __future__ import annotations

from typing import Annotated, Literal, TypeAlias

from ._fields import Range, Text
from ._limits import MAX_EMOJI_CHARS, MAX_ID_CHARS, MAX_KEY_CHARS

Ref: TypeAlias = Annotated[str, Text(1, MAX_ID_CHARS)]
"""A client-chosen correlation id; the `ack` or `error` answering a request repeats it."""
RoomId: TypeAlias = Annotated[str, Text(1, MAX_ID_CHARS)]
UserId: TypeAlias = Annotated[str, Text(1, MAX_ID_CHARS)]
MessageId: TypeAlias = Annotated[str, Text(1, MAX_ID_CHARS)]
SessionId: TypeAlias = Annotated[str, Text(1, MAX_ID_CHARS)]
NotificationId: TypeAlias = Annotated[str, Text(1, MAX_ID_CHARS)]
ClientId: TypeAlias = Annotated[str, Text(1, MAX_ID_CHARS)]
"""A client-chosen id of one request that stores an event (`send`, `edit`, `delete`,
`react`); retrying with the same id never stores a duplicate."""
FileId: TypeAlias = Annotated[str, Text(1, MAX_ID_CHARS)]
"""An uploaded file's id, as `POST /api/v1/files` answers it."""
Seq: TypeAlias = Annotated[int, Range()]
"""A room's sequence number: 1, 2, 3... in store order; 0 means "nothing yet"."""
EventSeq: TypeAlias = Annotated[int, Range(minimum=1)]
"""The seq of a stored room event (a message, edit, delete or reaction)."""
EpochMs: TypeAlias = Annotated[int, Range()]
"""A timestamp: milliseconds since the Unix epoch (UTC)."""
Millis: TypeAlias = Annotated[int, Range()]
"""A duration in milliseconds."""
Count: TypeAlias = Annotated[int, Range()]
"""A number of things."""
PresenceStatus: TypeAlias = Literal["online", "idle", "offline"]
"""A user's presence; "offline" is set by the server only (when no session is connected)."""
Emoji: TypeAlias = Annotated[str, Text(1, MAX_EMOJI_CHARS, spaceless=True)]
"""A reaction: an emoji (sequence) or a `:shortcode:`, without whitespace or controls."""
NotificationKind: TypeAlias = Literal["mention", "room_mention", "reply"]
"""Why a user is notified: mentioned by name, @room was mentioned, a reply in a followed thread."""
DeviceId: TypeAlias = Annotated[str, Text(1, MAX_ID_CHARS, spaceless=True)]
"""A device's id (end-to-end encryption), chosen by its client."""
KeyText: TypeAlias = Annotated[str, Text(1, MAX_KEY_CHARS, spaceless=True)]
"""A public key, signature or session id in unpadded base64 (end-to-end encryption)."""
