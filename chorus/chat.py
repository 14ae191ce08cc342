"""The chat rules both front ends follow: the gateway's connections and the HTTP API.

Each rule is written once here, so a WebSocket frame and an HTTP request
about the same thing cannot get different answers. Refusals are the store's
errors (`NotFound`, `Forbidden`, ...); each front end maps them once, to an
`error` frame (`chorus.actors.connection.error_reply`) or to a status
(`chorus.http._errors.error_for`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from chorus.permissions import Action, allowed
from chorus.persistence import (
    Admit,
    Forbidden,
    Membership,
    Message,
    NotFound,
    Room,
    Standing,
    Store,
    StoreError,
    now_ms,
)

if TYPE_CHECKING:  # the room actor uses these rules: only the type, to avoid an import cycle
    from chorus.actors.rooms import Rooms


async def membership(store: Store, room_id: str, user_id: str) -> Membership:
    """The user's membership of the room.

    Raises `NotFound` when there is no such room and `Forbidden` when the user
    is not a member (404 and 403 over HTTP), or another `StoreError`.
    """
    found = await store.get_membership(room_id, user_id)
    if found is None:
        raise _refusal(room_id, await store.get_room(room_id))
    return found


async def member_room(store: Store, room_id: str, user_id: str) -> Room:
    """The room, when the user is a member of it; else raises as `membership` does."""
    room, _ = await room_and_membership(store, room_id, user_id)
    return room


async def room_and_membership(store: Store, room_id: str, user_id: str) -> tuple[Room, Membership]:
    """The room and the user's membership of it (their role); raises as `membership` does."""
    room = await store.get_room(room_id)
    found = None if room is None else await store.get_membership(room_id, user_id)
    if room is None or found is None:
        raise _refusal(room_id, room)
    return room, found


async def room_message(store: Store, room_id: str, message_id: str) -> Message:
    """A message of the room (not another kind of event), in its current state.

    Raises `NotFound` for an unknown id, a message of another room, or an
    event that is not a message (an edit, a reaction...).
    """
    message = await store.get_message(message_id)
    if message is None or message.room_id != room_id or message.target_id is not None:
        raise NotFound(f"no message {message_id} in room {room_id}")
    return message


async def encrypted_rooms(store: Store, room_ids: Iterable[str]) -> set[str]:
    """Which of these rooms are end-to-end encrypted (their bodies are envelopes)."""
    found = set()
    for room_id in room_ids:
        room = await store.get_room(room_id)
        if room is not None and room.encrypted:
            found.add(room_id)
    return found


async def mark_read(store: Store, rooms: Rooms, room_id: str, user_id: str, seq: int) -> int:
    """Move the user's read marker in the room forward to `seq`; returns the stored marker.

    The marker never moves back nor past the room's last seq. In a room that
    shows read receipts, its subscribers on every node get a `receipt` event,
    whether or not the reader has joined the room over the gateway (best
    effort: an unreachable room actor shows nobody). Raises as `membership`
    does for a user who is not a member, or another `StoreError`.
    """
    try:
        stored = await store.advance_read_seq(room_id, user_id, seq)
    except NotFound:
        raise _refusal(room_id, await store.get_room(room_id)) from None
    room = await store.get_room(room_id)
    if room is not None and room.read_receipts:
        await rooms.show_receipt(room_id, user_id, stored)
    return stored


async def check_may_send(store: Store, room_id: str, user_id: str) -> None:
    """Raise `Forbidden` unless the user may post (edit, react) in the room now.

    Read at every write, so a mute, a lock, a ban or a block takes effect at
    once on every node: the permission table's `SEND` (and `SEND_LOCKED` in a
    locked room); a user blocked by another member of a direct room may not
    post in it. Raises `NotFound` for an unknown room.
    """
    refusal = _send_refusal(room_id, await store.standing(room_id, user_id, now_ms()))
    if refusal is not None:
        raise refusal


async def send_refusals(
    store: Store, room_id: str, user_ids: Iterable[str]
) -> dict[str, Exception | None]:
    """`check_may_send` for several users at once, in one read of the store: each user's
    refusal (what `check_may_send` would raise), or None when they may post."""
    users = list(dict.fromkeys(user_ids))
    found = await store.standings(room_id, users, now_ms())
    admit = sender_admission(room_id)
    return {user_id: admit(user_id, found.get(user_id)) for user_id in users}


def sender_admission(room_id: str) -> Admit:
    """`check_may_send`'s rule as a `Store.append_admitted` admission for the room: the
    store reads the standings with the append, in one call."""

    def admit(user_id: str, found: Standing | None) -> StoreError | None:
        if found is None:
            return NotFound(f"no room {room_id!r} or no user {user_id!r}")
        return _send_refusal(room_id, found)

    return admit


def _send_refusal(room_id: str, found: Standing) -> Forbidden | None:
    who = found.who
    if not allowed(Action.SEND, who):
        return Forbidden(f"a {who.value} may not post in room {room_id}")
    if found.locked and not allowed(Action.SEND_LOCKED, who):
        return Forbidden(f"room {room_id} is locked: only its moderators post")
    if found.blocked:
        return Forbidden(f"a member of room {room_id} blocks you")
    return None


def _refusal(room_id: str, room: Room | None) -> NotFound | Forbidden:
    """Why a user who is not a member is refused: the room is missing, or closed to them."""
    if room is None:
        return NotFound(f"no room {room_id}")
    return Forbidden(f"not a member of room {room_id}")
