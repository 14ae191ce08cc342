"""`/api/v1/rooms/{room_id}/messages`: history and posting.

A post goes through the room's actor, exactly like a gateway `send`: the
actor stores it in the room's next batch (assigning its seq), broadcasts it
to the room's WebSocket subscribers, then answers. So the order of seqs, the
client_id idempotency and the fan-out are the same whichever way a message
arrives.
"""

from __future__ import annotations

import attrs

from chorus.actors import Reply as ActorReply
from chorus.actors.events import wire_message
from chorus.actors.room import Post
from chorus.persistence import Appended, now_ms
from chorus.protocol import MAX_BODY_CHARS, MAX_ID_CHARS, MAX_SAFE_INT

from ._errors import ApiError
from ._input import integer, text
from ._output import MessagePageView, PostedView, message_page_view
from ._rooms import existing_room, membership_of
from ._routing import API_PREFIX, Call, Reply, RouteTable

table = RouteTable("messages")

POST_TIMEOUT = 10.0
"""Seconds to wait for the room's actor to store a post before answering 503."""
HISTORY_LIMIT = (1, 100)
DEFAULT_HISTORY = 50


@attrs.frozen(kw_only=True)
class History:
    before: int | None = integer(
        1, MAX_SAFE_INT, "Only messages with a smaller seq (scrolling back).", default=None
    )
    after: int | None = integer(
        0, MAX_SAFE_INT, "Only messages with a greater seq (catching up).", default=None
    )
    limit: int = integer(*HISTORY_LIMIT, "Most messages returned.", default=DEFAULT_HISTORY)


@attrs.frozen(kw_only=True)
class NewPost:
    """A message to post; retrying with the same `client_id` never stores a duplicate."""

    body: str = text(1, MAX_BODY_CHARS, "The message text.")
    client_id: str = text(
        1, MAX_ID_CHARS, "Chosen by the client, unique per sender across all rooms."
    )


@table.route(
    "GET",
    f"{API_PREFIX}/rooms/{{room_id}}/messages",
    summary="Message history",
    input=History,
    responses={200: MessagePageView},
    errors={403: "Not a member of the room.", 404: "No such room."},
)
async def list_messages(call: Call[History], room_id: str) -> Reply:
    """Up to `limit` messages in ascending seq order.

    Without bounds: the latest. With `after`: the first ones after it. With
    `before`: the last ones before it. With both: the first ones between.
    """
    store = call.services.store
    room = await existing_room(store, room_id)
    await membership_of(store, room, call.user_id)
    query = call.input
    found = await store.messages(room.id, before=query.before, after=query.after, limit=query.limit)
    return Reply(200, message_page_view(found))


@table.route(
    "POST",
    f"{API_PREFIX}/rooms/{{room_id}}/messages",
    summary="Post a message",
    input=NewPost,
    responses={201: PostedView, 200: PostedView},
    errors={
        403: "Not a member of the room.",
        404: "No such room.",
        409: "The client_id was already used in another room (client_id_reused).",
    },
)
async def post_message(call: Call[NewPost], room_id: str) -> Reply:
    """Stores and broadcasts a message: 201 with the new message.

    A retry with a `client_id` already used in this room answers 200 with the
    original message and `duplicate: true`; nothing new is stored. On 503 the
    message may or may not be stored: retry with the same `client_id`.
    """
    store = call.services.store
    room = await existing_room(store, room_id)
    await membership_of(store, room, call.user_id)
    sender, post, created_at = call.user_id, call.input, now_ms()

    def make(reply: ActorReply[Appended]) -> Post:
        return Post(
            sender_id=sender,
            body=post.body,
            client_id=post.client_id,
            created_at=created_at,
            reply=reply,
        )

    result = await call.services.rooms.ask(room.id, make, timeout=POST_TIMEOUT)
    if result.message.room_id != room.id:
        raise ApiError(
            409,
            "client_id_reused",
            f"client_id {post.client_id!r} was already used for a message in another room",
        )
    posted = PostedView(message=wire_message(result.message), duplicate=result.duplicate)
    return Reply(200 if result.duplicate else 201, posted)
