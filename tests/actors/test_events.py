"""A stored message's event bytes, written without the protocol instances, are the generic ones."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from chorus import e2e, protocol
from chorus.actors.events import event_payload, message_event, wire_message
from chorus.persistence import FileState, FileVariant, Message, StoredFile
from tests.protocol.examples import instances


def stored_file(info: protocol.FileInfo, *, encrypted: bool) -> StoredFile:
    return StoredFile(
        id=info.id,
        owner_id="u-owner",
        name=info.name,
        declared_type="application/octet-stream",
        content_type=info.content_type,
        size=info.size,
        sha256="0" * 64,
        state=FileState(info.state),
        reason=info.reason,
        scan=info.scan,
        width=info.width,
        height=info.height,
        variants=tuple(
            FileVariant(
                name=v.name,
                width=v.width,
                height=v.height,
                size=v.size,
                content_type=v.content_type,
            )
            for v in info.thumbnails
        ),
        node="n1",
        room_id=None,
        message_id=None,
        position=None,
        created_at=info.created_at,
        updated_at=info.created_at,
        deleted_at=None,
        encrypted=encrypted,
    )


@st.composite
def stored_messages(draw: st.DrawFn) -> tuple[Message, bool]:
    """A stored MESSAGE row (threads, edits, attachments, any text) and whether its room is
    end-to-end encrypted (its body is then a Megolm envelope, or "" once deleted)."""
    wire: protocol.Message = draw(instances(protocol.Message))
    encrypted = draw(st.booleans())
    if encrypted:
        body = "" if wire.encrypted is None else e2e.megolm_content(wire.encrypted)
    else:
        body = wire.body
    message = Message(
        id=wire.id,
        room_id=wire.room,
        seq=wire.seq,
        sender_id=wire.sender,
        body=body,
        client_id=wire.client_id,
        created_at=wire.created_at,
        edited_at=wire.edited_at,
        thread_id=wire.thread,
        deleted_at=draw(st.none() | st.integers(0, 2**50)),
        reply_count=draw(st.integers(0, 5)),
        attachments=tuple(stored_file(f, encrypted=encrypted) for f in wire.attachments),
    )
    return message, encrypted


@given(stored_messages())
def test_a_stored_message_event_is_the_encoded_message_event(
    stored: tuple[Message, bool],
) -> None:
    message, encrypted = stored
    generic = protocol.encode(
        protocol.MessageEvent(message=wire_message(message, encrypted=encrypted))
    )
    assert message_event(message, encrypted=encrypted) == generic
    assert event_payload(message, encrypted=encrypted) == generic
