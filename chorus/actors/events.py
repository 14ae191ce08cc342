"""Stored room events (and files) in their protocol form, and the mentions a message makes.

Every row of a room's log becomes one frame type: a message, an edit, a
delete or a reaction. Rooms send these frames live, on resume and when they
fill a gap; the HTTP history returns the same shapes. A stored file has one
protocol form too (`file_info`): in `file` frames, in messages' attachments
and in the HTTP file API.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TypeVar

from chorus import e2e, protocol
from chorus.persistence import EventKind, Message, StoredFile

T = TypeVar("T")

# A mention is `@name` not glued to a word or address before it (`ada@x` is not
# one); names follow the username rule (auth: 3-32 of a-z 0-9 _ . -). A dot or
# dash ending the match is punctuation ("thanks @ada."), not part of the name.
_MENTION = re.compile(r"(?<![\w@.-])@([A-Za-z0-9_.-]{3,32})(?![A-Za-z0-9_])")
ROOM_MENTION = "room"
"""`@room` notifies every member (who has not muted the room)."""


def mentions(body: str) -> tuple[frozenset[str], bool]:
    """The lower-case usernames `@mentioned` in `body`, and whether it mentions `@room`."""
    if "@" not in body:  # the common case, on the path of every message
        return frozenset(), False
    names = {match.rstrip(".-").lower() for match in _MENTION.findall(body)}
    everyone = ROOM_MENTION in names
    names.discard(ROOM_MENTION)
    return frozenset(name for name in names if len(name) >= 3), everyone


def file_info(file: StoredFile) -> protocol.FileInfo:
    """A stored file's protocol form, wherever a file is shown (WebSocket and HTTP alike)."""
    return protocol.FileInfo(
        id=file.id,
        name=file.name,
        size=file.size,
        content_type=file.content_type or file.declared_type,
        state=file.state.value,
        reason=file.reason,
        scan=file.scan,
        width=file.width,
        height=file.height,
        thumbnails=tuple(
            protocol.Thumbnail(
                name=v.name,
                width=v.width,
                height=v.height,
                size=v.size,
                content_type=v.content_type,
            )
            for v in file.variants
        ),
        created_at=file.created_at,
    )


def wire_message(message: Message, *, encrypted: bool) -> protocol.Message:
    """The protocol form of a stored MESSAGE event (its current state, with its attachments).

    `message.attachments` must have been filled by the store (see
    `persistence.Store`: reads and appends do it); a deleted message has none.
    `encrypted` says that its room is end-to-end encrypted: the stored body is
    then the Megolm envelope, sent as `encrypted` with an empty `body`.
    """
    return _wire_fields(message, encrypted, protocol.Message)


def message_event(message: Message, *, encrypted: bool) -> bytes:
    """The `message` event of a stored MESSAGE event, encoded: the bytes of
    `protocol.encode(protocol.MessageEvent(message=wire_message(message, ...)))`, and its
    errors, without building either (`protocol.encode_message_event`)."""
    return _wire_fields(message, encrypted, protocol.encode_message_event)


def _wire_fields(message: Message, encrypted: bool, make: Callable[..., T]) -> T:
    """`make` called with the fields of `protocol.Message` for `message`: the one mapping
    from a stored message to its protocol form, both for the instance and for the bytes."""
    return make(
        id=message.id,
        room=message.room_id,
        seq=message.seq,
        sender=message.sender_id,
        body="" if encrypted else message.body,
        encrypted=e2e.megolm_envelope(message.body) if encrypted else None,
        client_id=message.client_id,
        created_at=message.created_at,
        edited_at=message.edited_at,
        thread=message.thread_id,
        attachments=tuple(map(file_info, message.attachments)) if message.attachments else (),
    )


def event_frame(event: Message, *, encrypted: bool) -> protocol.ServerFrame:
    """The frame announcing a stored room event of any kind (`encrypted`: its room is)."""
    target = event.target_id or ""
    match event.kind:
        case EventKind.MESSAGE:
            return protocol.MessageEvent(message=wire_message(event, encrypted=encrypted))
        case EventKind.EDIT:
            return protocol.EditedEvent(
                room=event.room_id,
                seq=event.seq,
                message=target,
                editor=event.sender_id,
                body="" if encrypted else event.body,
                encrypted=e2e.megolm_envelope(event.body) if encrypted else None,
                edited_at=event.created_at,
                client_id=event.client_id,
            )
        case EventKind.DELETE:
            return protocol.DeletedEvent(
                room=event.room_id,
                seq=event.seq,
                message=target,
                deleted_by=event.sender_id,
                deleted_at=event.created_at,
                client_id=event.client_id,
            )
        case EventKind.REACTION_ADD | EventKind.REACTION_REMOVE:
            return protocol.ReactionEvent(
                room=event.room_id,
                seq=event.seq,
                message=target,
                user=event.sender_id,
                emoji=event.body,
                present=event.kind is EventKind.REACTION_ADD,
                at=event.created_at,
                client_id=event.client_id,
            )


def event_payload(event: Message, *, encrypted: bool) -> bytes:
    """`event_frame`, encoded."""
    if event.kind is EventKind.MESSAGE:
        return message_event(event, encrypted=encrypted)
    return protocol.encode(event_frame(event, encrypted=encrypted))
