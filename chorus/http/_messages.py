"""`/api/v1/rooms/{room_id}/messages`: history, posting, one message, edits and deletes.

A post goes through the room's actor, exactly like a gateway `send`: the
actor stores it in the room's next batch (assigning its seq), broadcasts it
to the room's WebSocket subscribers, then answers. So the order of seqs, the
client_id idempotency and the fan-out are the same whichever way a message
arrives. Edits and deletes (and reactions, `_reactions`) go through it the
same way as a `Change`: each is a sequenced event, broadcast live and
replayed by resume and by the history here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar, TypeVar

import attrs

from chorus import chat, e2e, protocol
from chorus.actors import Reply as ActorReply
from chorus.actors.room import (
    Change,
    ChangeKind,
    Post,
    Posted,
    ReplyResponder,
    Responder,
    RoomMessage,
)
from chorus.persistence import Appended, Room, now_ms
from chorus.protocol import (
    MAX_ATTACHMENTS,
    MAX_BODY_CHARS,
    MAX_CIPHERTEXT_CHARS,
    MAX_ID_CHARS,
    MAX_KEY_CHARS,
    MAX_SAFE_INT,
    ErrorCode,
)
from chorus.services import Services

from ._devices import check_pattern
from ._errors import bad_request
from ._input import choice, integer, nested, text, texts
from ._output import (
    ChangedView,
    EditHistoryView,
    EventPageView,
    MessageDetailView,
    PostedView,
    changed_view,
    edit_view,
    message_detail_view,
    room_event,
)
from ._rooms import member_room
from ._routing import API_PREFIX, Call, Reply, RouteTable

R = TypeVar("R")

table = RouteTable("messages")

POST_TIMEOUT = 10.0
"""Seconds to wait for the room's actor to store a post before answering 503."""
HISTORY_LIMIT = (1, 100)
DEFAULT_HISTORY = 50
MESSAGES = f"{API_PREFIX}/rooms/{{room_id}}/messages"
MESSAGE = f"{MESSAGES}/{{message_id}}"
CLIENT_ID = "Chosen by the client, unique per sender across all rooms and kinds of write."


@attrs.frozen(kw_only=True)
class History:
    before: int | None = integer(
        1, MAX_SAFE_INT, "Only events with a smaller seq (scrolling back).", default=None
    )
    after: int | None = integer(
        0, MAX_SAFE_INT, "Only events with a greater seq (catching up).", default=None
    )
    limit: int = integer(*HISTORY_LIMIT, "Most events returned.", default=DEFAULT_HISTORY)


@attrs.frozen(kw_only=True)
class MegolmInput:
    """A Megolm envelope (docs/e2e.md): the server stores and relays it unread."""

    algorithm: str = choice(protocol.MEGOLM, description="The Megolm algorithm, nothing else.")
    sender_key: str = text(
        1, MAX_KEY_CHARS, "The sending device's Curve25519 key.", pattern=e2e.BASE64_PATTERN
    )
    device_id: str = text(1, MAX_ID_CHARS, "The sending device.", spaceless=True)
    session_id: str = text(1, MAX_KEY_CHARS, "The Megolm session's id.", pattern=e2e.BASE64_PATTERN)
    ciphertext: str = text(
        1, MAX_CIPHERTEXT_CHARS, "The encrypted message.", pattern=e2e.BASE64_PATTERN
    )


def megolm(given: MegolmInput | None) -> protocol.MegolmEnvelope | None:
    """The envelope in its protocol form, its base64 fields checked (400 otherwise)."""
    if given is None:
        return None
    check_pattern("encrypted.sender_key", given.sender_key)
    check_pattern("encrypted.session_id", given.session_id)
    check_pattern("encrypted.ciphertext", given.ciphertext)
    return protocol.MegolmEnvelope(
        algorithm=protocol.MEGOLM,
        sender_key=given.sender_key,
        device_id=given.device_id,
        session_id=given.session_id,
        ciphertext=given.ciphertext,
    )


@attrs.frozen(kw_only=True)
class NewPost:
    """A message to post; retrying with the same `client_id` never stores a duplicate.

    `body` may be empty only when `attachments` is not.
    """

    NONEMPTY_ONE_OF: ClassVar[tuple[str, ...]] = ("body", "attachments", "encrypted")
    body: str = text(0, MAX_BODY_CHARS, "The message text (empty in an encrypted room).")
    client_id: str = text(1, MAX_ID_CHARS, CLIENT_ID)
    thread: str | None = text(
        1, MAX_ID_CHARS, "Post as a reply in the thread rooted at this message.", default=None
    )
    attachments: tuple[str, ...] = texts(
        0,
        MAX_ATTACHMENTS,
        (1, MAX_ID_CHARS),
        "Ids of files the caller uploaded, ready and not attached yet, each once, in the"
        " order to show them (see `send.attachments` in docs/protocol.md).",
        default=(),
        unique=True,
    )
    encrypted: MegolmInput | None = nested(
        MegolmInput, "In an end-to-end encrypted room, the message itself.", default=None
    )


@attrs.frozen(kw_only=True)
class NewBody:
    """The new text of a message; retrying with the same `client_id` edits once."""

    NONEMPTY_ONE_OF: ClassVar[tuple[str, ...]] = ("body", "encrypted")
    body: str = text(0, MAX_BODY_CHARS, "The new message text (empty in an encrypted room).")
    client_id: str = text(1, MAX_ID_CHARS, CLIENT_ID)
    encrypted: MegolmInput | None = nested(
        MegolmInput, "In an end-to-end encrypted room, the new text.", default=None
    )


@attrs.frozen(kw_only=True)
class ClientId:
    client_id: str = text(1, MAX_ID_CHARS, CLIENT_ID + " A retry changes nothing more.")


# -- the room actor -------------------------------------------------------------------


async def change(
    services: Services,
    room: Room,
    kind: ChangeKind,
    *,
    actor_id: str,
    message_id: str,
    client_id: str,
    body: str = "",
    encrypted: protocol.MegolmEnvelope | None = None,
) -> Appended | None:
    """Have the room's actor store, broadcast and answer a `Change`.

    Its refusals become 404, 403, 410 (see `error_for`) or 400 (`ValueError`).
    """
    created_at = now_ms()

    def make(responder: Responder[Appended | None]) -> Change:
        return Change(
            kind=kind,
            actor_id=actor_id,
            message_id=message_id,
            client_id=client_id,
            created_at=created_at,
            body=body,
            encrypted=encrypted,
            responder=responder,
        )

    return await write(services, room.id, make)


async def write(services: Services, room_id: str, make: Callable[[Responder[R]], RoomMessage]) -> R:
    """Have the room's actor handle the write `make` builds around the request's responder.

    Returns what the write was accepted with, or raises its refusal: a
    `ValueError` (a rule broken) as 400, the others for `error_for` to map.
    """

    def ask(reply: ActorReply[R]) -> RoomMessage:
        return make(ReplyResponder(reply))

    try:
        return await services.rooms.ask(room_id, ask, timeout=POST_TIMEOUT)
    except ValueError as exc:
        raise bad_request(ErrorCode.INVALID_VALUE, str(exc)) from None


def check_body(services: Services, body: str) -> None:
    """400 for a body over the run-time `max_message_chars` (the input class checks only
    the protocol's `MAX_BODY_CHARS`)."""
    if (problem := services.live.current.body_problem(body)) is not None:
        raise bad_request(ErrorCode.INVALID_VALUE, problem)


# -- routes ---------------------------------------------------------------------------


@table.route(
    "GET",
    MESSAGES,
    summary="Room history",
    input=History,
    responses={200: EventPageView},
    errors={403: "Not a member of the room.", 404: "No such room."},
)
async def list_messages(call: Call[History], room_id: str) -> Reply:
    """Up to `limit` events (messages, edits, deletes, reactions) in ascending seq order.

    Without bounds: the latest. With `after`: the first ones after it. With
    `before`: the last ones before it. With both: the first ones between.
    Each event is the frame the gateway sends for it, so replaying a page
    gives the same state as resuming; messages show their current state.
    """
    room = await member_room(call, room_id)
    query = call.input
    found = await call.services.store.messages(
        room.id, before=query.before, after=query.after, limit=query.limit
    )
    events = [room_event(event, encrypted=room.encrypted) for event in found]
    return Reply(200, EventPageView(events=events))


@table.route(
    "POST",
    MESSAGES,
    summary="Post a message",
    input=NewPost,
    responses={201: PostedView, 200: PostedView},
    errors={
        400: "Invalid body (e.g. no body and no attachments, or a body over the server's"
        " `max_message_chars`), `thread` is itself a reply, plaintext in an end-to-end"
        " encrypted room (encryption_required), or `encrypted` in a room that is not"
        " (invalid_value: `encrypted: this room is not encrypted`).",
        403: "Not a member of the room, or a file in `attachments` cannot be attached (not"
        " yours, rejected, deleted, or attached already).",
        404: "No such room, or no such `thread` root message in it.",
        409: "The client_id was already used in another room (client_id_reused), or a file in"
        " `attachments` is still being checked (file_not_ready).",
        410: "The `thread` root was deleted (gone).",
    },
)
async def post_message(call: Call[NewPost], room_id: str) -> Reply:
    """Stores and broadcasts a message: 201 with the new message.

    A retry with a `client_id` already used in this room answers 200 with the
    original message and `duplicate: true`; nothing new is stored. On 503 the
    message may or may not be stored: retry with the same `client_id`. With
    `thread`, the message is a reply in the thread rooted at that message of
    the room (a top-level message, not deleted). With `attachments`, the
    caller's ready files go with it, and the room's members may see them.
    """
    check_body(call.services, call.input.body)
    room = await member_room(call, room_id)
    sender, post, created_at = call.user_id, call.input, now_ms()
    envelope = megolm(post.encrypted)

    def make(responder: Responder[Posted]) -> Post:
        return Post(
            sender_id=sender,
            body=post.body,
            client_id=post.client_id,
            created_at=created_at,
            thread_id=post.thread,
            attachments=post.attachments,
            encrypted=envelope,
            responder=responder,
        )

    result = await write(call.services, room.id, make)
    posted = PostedView(message=result.message, duplicate=result.duplicate)
    return Reply(200 if result.duplicate else 201, posted)


@table.route(
    "GET",
    MESSAGE,
    summary="A message with its reactions and thread",
    responses={200: MessageDetailView},
    errors={403: "Not a member of the room.", 404: "No such room, or no such message in it."},
)
async def get_message(call: Call[object], room_id: str, message_id: str) -> Reply:
    """The message in its current state, its reaction counts and its thread's size."""
    store = call.services.store
    room = await member_room(call, room_id)
    message = await chat.room_message(store, room.id, message_id)
    reactions = await store.reactions([message.id])
    view = message_detail_view(message, reactions.get(message.id, {}), encrypted=room.encrypted)
    return Reply(200, view)


@table.route(
    "PATCH",
    MESSAGE,
    summary="Edit a message",
    input=NewBody,
    responses={200: ChangedView},
    errors={
        400: "Invalid body, plaintext in an end-to-end encrypted room (encryption_required),"
        " or `encrypted` in a room that is not (invalid_value).",
        403: "Not a member of the room, or not the message's sender.",
        404: "No such room, or no such message in it.",
        410: "The message was deleted (gone).",
        409: "The client_id was already used in another room (client_id_reused).",
    },
)
async def edit_message(call: Call[NewBody], room_id: str, message_id: str) -> Reply:
    """Replaces the text of the caller's own message: 200 with the `edited` event.

    The event takes the room's next seq and reaches the room's subscribers
    like a message; the earlier text goes to the edit history. A retry with
    the same `client_id` answers the original event with `duplicate: true`.
    """
    check_body(call.services, call.input.body)
    room = await member_room(call, room_id)
    result = await change(
        call.services,
        room,
        "edit",
        actor_id=call.user_id,
        message_id=message_id,
        client_id=call.input.client_id,
        body=call.input.body,
        encrypted=megolm(call.input.encrypted),
    )
    return Reply(200, changed_view(result, encrypted=room.encrypted))


@table.route(
    "DELETE",
    MESSAGE,
    summary="Delete a message",
    input=ClientId,
    responses={200: ChangedView},
    errors={
        403: "Not a member, or neither the sender nor the room's owner or a moderator.",
        404: "No such room, or no such message in it.",
        410: "The message was already deleted (gone).",
        409: "The client_id was already used in another room (client_id_reused).",
    },
)
async def delete_message(call: Call[ClientId], room_id: str, message_id: str) -> Reply:
    """Deletes a message (its sender, or the room's owner or a moderator): 200 with the event.

    A tombstone (empty body, `deleted_at`) replaces the message for everyone;
    its edit history, reactions and notifications go. A retry with the same
    `client_id` answers the original `deleted` event with `duplicate: true`.
    """
    room = await member_room(call, room_id)
    result = await change(
        call.services,
        room,
        "delete",
        actor_id=call.user_id,
        message_id=message_id,
        client_id=call.input.client_id,
    )
    return Reply(200, changed_view(result, encrypted=room.encrypted))


@table.route(
    "GET",
    f"{MESSAGE}/history",
    summary="A message's edit history",
    responses={200: EditHistoryView},
    errors={403: "Not a member of the room.", 404: "No such room, or no such message in it."},
)
async def message_history(call: Call[object], room_id: str, message_id: str) -> Reply:
    """The texts the message had before each edit, oldest first."""
    store = call.services.store
    room = await member_room(call, room_id)
    message = await chat.room_message(store, room.id, message_id)
    edits = await store.edit_history(message.id)
    return Reply(200, EditHistoryView(edits=[edit_view(edit) for edit in edits]))
