"""`/api/v1/rooms/{room_id}/messages/{message_id}/reactions/{emoji}`: add, take back, who.

The emoji is a path segment (URL-encoded) and follows the protocol's rule for
`react` (1-64 characters, no whitespace or controls). Adding and taking back
go through the room's actor as a `Change`, like a gateway `react`.
"""

from __future__ import annotations

import attrs

from chorus import chat, protocol
from chorus.actors.room import ChangeKind
from chorus.protocol import ErrorCode

from ._errors import bad_request
from ._input import integer
from ._messages import MESSAGE, ClientId, change
from ._output import ChangedView, ReactorsView, changed_view
from ._rooms import member_room
from ._routing import Call, Reply, RouteTable

table = RouteTable("reactions")

REACTION = f"{MESSAGE}/reactions/{{emoji}}"
EMOJI = protocol.field_spec(protocol.React, "emoji")
"""The protocol's rule for a reaction, published as the `{emoji}` path parameter's schema."""
assert isinstance(EMOJI, protocol.StrSpec)
REACTORS_LIMIT = (1, 100)
DEFAULT_REACTORS = 50
_CHANGE_ERRORS = {
    400: "Invalid query parameters, or the emoji breaks the protocol's emoji rule.",
    403: "Not a member of the room.",
    404: "No such room, or no such message in it.",
    409: "The client_id was already used in another room (client_id_reused).",
    410: "The message was deleted (gone).",
}


@attrs.frozen(kw_only=True)
class ReactorsPage:
    limit: int = integer(*REACTORS_LIMIT, "Most users returned.", default=DEFAULT_REACTORS)


def checked_emoji(emoji: str) -> str:
    """`emoji` if a gateway `react` frame could carry it, else 400 naming the rule broken."""
    try:
        protocol.React(ref="http", room="room", message="message", client_id="c", emoji=emoji)
    except ValueError as exc:
        raise bad_request(ErrorCode.INVALID_VALUE, str(exc)) from None
    return emoji


@table.route(
    "PUT",
    REACTION,
    summary="React to a message",
    input=ClientId,
    query=True,
    responses={200: ChangedView},
    errors=_CHANGE_ERRORS,
    path_specs={"emoji": EMOJI},
)
async def add_reaction(call: Call[ClientId], room_id: str, message_id: str, emoji: str) -> Reply:
    """Adds the caller's reaction `emoji` (one per user per emoji): 200 with the event.

    `event` is the `reaction` event (the room's next seq, broadcast to its
    subscribers), or null when the caller had already reacted so.
    """
    return await _react(call, room_id, message_id, emoji, "react")


@table.route(
    "DELETE",
    REACTION,
    summary="Take back a reaction",
    input=ClientId,
    responses={200: ChangedView},
    errors=_CHANGE_ERRORS,
    path_specs={"emoji": EMOJI},
)
async def remove_reaction(call: Call[ClientId], room_id: str, message_id: str, emoji: str) -> Reply:
    """Takes back the caller's reaction `emoji`: 200 with the event (null if there was none)."""
    return await _react(call, room_id, message_id, emoji, "unreact")


async def _react(
    call: Call[ClientId], room_id: str, message_id: str, emoji: str, kind: ChangeKind
) -> Reply:
    room = await member_room(call, room_id)
    result = await change(
        call.services,
        room,
        kind,
        actor_id=call.user_id,
        message_id=message_id,
        client_id=call.input.client_id,
        body=checked_emoji(emoji),
    )
    return Reply(200, changed_view(result, encrypted=room.encrypted))


@table.route(
    "GET",
    REACTION,
    summary="Who reacted with an emoji",
    input=ReactorsPage,
    responses={200: ReactorsView},
    errors={
        400: "Invalid query parameters, or the emoji breaks the protocol's emoji rule.",
        403: "Not a member of the room.",
        404: "No such room, or no such message in it.",
    },
    path_specs={"emoji": EMOJI},
)
async def list_reactors(
    call: Call[ReactorsPage], room_id: str, message_id: str, emoji: str
) -> Reply:
    """The ids of up to `limit` users who reacted `emoji` to the message, earliest first."""
    store = call.services.store
    room = await member_room(call, room_id)
    message = await chat.room_message(store, room.id, message_id)
    users = await store.reactors(message.id, checked_emoji(emoji), call.input.limit)
    return Reply(200, ReactorsView(users=users))
