"""`/api/v1/rooms` and `/api/v1/dms`: rooms, the public directory, members and roles.

Who may do what is `chorus.permissions`' table (asked through
`_moderation.authorize`); what stays here is about a room's kind:
- a public room's details are visible to anyone; others' to those who may
  `view` it; members' read markers only to members, and only while the room
  shows receipts (which only those who may change its `settings` switch);
- anyone not banned may join a public room; private rooms are joined by
  invitation (`invite`, see `_invites`) or by being added directly, never
  while banned; direct rooms only through `/dms`, never with a user who
  blocks the caller;
- a member may leave (except the owner, and except direct rooms); removing
  another member is a `kick` (see `_moderation.kick_member`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Literal

import attrs

from chorus import chat
from chorus.permissions import Action
from chorus.persistence import Membership, NotifyLevel, Role, Room, RoomKind, Store, User, now_ms
from chorus.protocol import MAX_ID_CHARS, MAX_ROOM_NAME_CHARS, ErrorCode
from chorus.services import Services
from chorus.text import NAME_PATTERN, name_problem

from ._errors import bad_request, forbidden, not_found
from ._input import choice, flag, integer, text, texts
from ._moderation import authorize, kick_member
from ._output import (
    MemberView,
    MyRoomsView,
    MyRoomView,
    RoomDetailView,
    RoomPageView,
    RoomView,
    member_view,
    my_room_view,
    room_detail_view,
    room_view,
)
from ._routing import API_PREFIX, Call, Reply, RouteTable

table = RouteTable("rooms")

ROOM_NAME = (1, MAX_ROOM_NAME_CHARS)
PAGE_LIMIT = (1, 100)
DEFAULT_PAGE = 50
MAX_GROUP_IDS = 1000
"""Most ids a group request may list (the real bound is the `max_group_size` setting)."""


@attrs.frozen(kw_only=True)
class CreateRoom:
    """A new room; the caller becomes its owner."""

    name: str = text(
        *ROOM_NAME,
        "The room's name. No control characters, line breaks or bidi controls (the"
        " pattern), and at least one visible character: a name of only spaces, zero-width"
        " or combining characters is refused with 400 `invalid_value` (JSON Schema cannot"
        " state that rule).",
        pattern=NAME_PATTERN,
    )
    kind: Literal["public", "private"] = choice(
        "public", "private", description="Public rooms are listed and open to anyone."
    )


@attrs.frozen(kw_only=True)
class DirectoryPage:
    limit: int = integer(*PAGE_LIMIT, "Most rooms on the page.", default=DEFAULT_PAGE)
    after: str | None = text(
        1, MAX_ID_CHARS, "The `next_after` of the previous page.", default=None
    )


@attrs.frozen(kw_only=True)
class Invite:
    """The user to add to the room (as a member)."""

    user_id: str = text(1, MAX_ID_CHARS, "The invited user.")


@attrs.frozen(kw_only=True)
class DirectWith:
    """The other user of a direct conversation (may be the caller), or the other users of a
    group conversation: give exactly one of `user_id` and `user_ids`."""

    EXACTLY_ONE_OF: ClassVar[tuple[str, ...]] = ("user_id", "user_ids")

    user_id: str | None = text(1, MAX_ID_CHARS, "The other user.", default=None)
    user_ids: tuple[str, ...] | None = texts(
        1,
        MAX_GROUP_IDS,
        (1, MAX_ID_CHARS),
        "The other users (the caller is always in). At most `max_group_size` users in all"
        " (a setting, 10 by default), counted once each: a larger group is refused with 400"
        " `invalid_value` (JSON Schema cannot count distinct items against a setting).",
        default=None,
    )
    encrypted: bool = flag(
        "The users' end-to-end encrypted room (another room than their plain one; the flag"
        " never turns off): its messages are Megolm envelopes (docs/e2e.md).",
        default=False,
    )


@attrs.frozen(kw_only=True)
class RoomSettings:
    """The room's settings to change."""

    read_receipts: bool = flag("Whether members see each other's read markers.")


@attrs.frozen(kw_only=True)
class NotifySetting:
    level: Literal["all", "mentions", "none"] = choice(
        "all",
        "mentions",
        "none",
        description="all and mentions: notified of mentions, @room and replies in followed"
        " threads (clients may badge every unread message with all); none: muted.",
    )


# -- checks shared by room routes -----------------------------------------------------


async def existing_room(store: Store, room_id: str) -> Room:
    room = await store.get_room(room_id)
    if room is None:
        raise not_found(f"no room {room_id}")
    return room


async def member_room(call: Call[Any], room_id: str) -> Room:
    """The room, when the caller is a member (else 404 or 403, as the gateway answers)."""
    return await chat.member_room(call.services.store, room_id, call.user_id)


async def direct_others(store: Store, user_id: str, rooms: Sequence[Room]) -> dict[str, list[User]]:
    """For each direct room of `rooms`: its members other than `user_id`, oldest joined first."""
    members = {
        room.id: await store.members(room.id) for room in rooms if room.kind is RoomKind.DIRECT
    }
    ids = {m.user_id for ms in members.values() for m in ms if m.user_id != user_id}
    users = {uid: user for uid in sorted(ids) if (user := await store.get_user(uid)) is not None}
    return {
        room_id: [users[m.user_id] for m in ms if m.user_id in users]
        for room_id, ms in members.items()
    }


# -- routes ---------------------------------------------------------------------------


@table.route(
    "POST",
    f"{API_PREFIX}/rooms",
    summary="Create a room",
    input=CreateRoom,
    responses={201: RoomView},
)
async def create_room(call: Call[CreateRoom]) -> Reply:
    """Creates a public or private room owned by the caller."""
    kind = RoomKind(call.input.kind)
    if (problem := name_problem(call.input.name)) is not None:
        raise bad_request(ErrorCode.INVALID_VALUE, f"name: {problem}")
    room = await call.services.store.create_room(call.input.name, kind, call.user_id, now_ms())
    await call.services.memberships.added([call.user_id], room, seq=0, by=call.user_id)
    return Reply(201, room_view(room))


@table.route(
    "GET", f"{API_PREFIX}/rooms", summary="The caller's rooms", responses={200: MyRoomsView}
)
async def list_my_rooms(call: Call[object]) -> Reply:
    """Every room the caller is a member of, with their role, read marker and notify level.

    Direct rooms also list their other members (`others`), to name them.
    """
    store = call.services.store
    joined = await store.rooms_of(call.user_id)
    others = await direct_others(store, call.user_id, [room for room, _ in joined])
    views = [my_room_view(room, m, others.get(room.id)) for room, m in joined]
    return Reply(200, MyRoomsView(rooms=views))


@table.route(
    "GET",
    f"{API_PREFIX}/rooms/public",
    summary="The public room directory",
    input=DirectoryPage,
    responses={200: RoomPageView},
)
async def list_public_rooms(call: Call[DirectoryPage]) -> Reply:
    """Public rooms in id order, a page at a time (follow `next_after`)."""
    limit = call.input.limit
    # One more than asked tells whether another page exists.
    rooms = await call.services.store.public_rooms(limit + 1, call.input.after)
    next_after = rooms[limit - 1].id if len(rooms) > limit else None
    page = RoomPageView(rooms=[room_view(r) for r in rooms[:limit]], next_after=next_after)
    return Reply(200, page)


@table.route(
    "GET",
    f"{API_PREFIX}/rooms/{{room_id}}",
    summary="A room and its members",
    responses={200: RoomDetailView},
    errors={403: "Not a member of this non-public room.", 404: "No such room."},
)
async def get_room(call: Call[object], room_id: str) -> Reply:
    """The room with its members, their roles and presence (`online`, `idle`, `offline`).

    Members of a room that shows read receipts also see each member's `read_seq`.
    """
    store = call.services.store
    room = await existing_room(store, room_id)
    if room.kind is not RoomKind.PUBLIC:
        await authorize(call.services, room.id, call.user_id, Action.VIEW)
    memberships = await store.members(room.id)
    statuses = await call.services.presence.statuses([m.user_id for m in memberships])
    show_read = room.read_receipts and any(m.user_id == call.user_id for m in memberships)
    members = [member_view(m, statuses[m.user_id], show_read=show_read) for m in memberships]
    return Reply(200, room_detail_view(room, members))


@table.route(
    "PATCH",
    f"{API_PREFIX}/rooms/{{room_id}}",
    summary="Change a room's settings",
    input=RoomSettings,
    responses={200: RoomView},
    errors={
        403: "The caller may not change its settings (the owner and admins may).",
        404: "No such room.",
    },
)
async def update_room(call: Call[RoomSettings], room_id: str) -> Reply:
    """Switches read receipts (whether members see each other's read markers): the
    `settings` action (the owner, server admins)."""
    store = call.services.store
    await authorize(call.services, room_id, call.user_id, Action.SETTINGS)
    room = await store.set_read_receipts(room_id, call.input.read_receipts)
    return Reply(200, room_view(room))


@table.route(
    "PUT",
    f"{API_PREFIX}/rooms/{{room_id}}/notify",
    summary="Set the caller's notification level for a room",
    input=NotifySetting,
    responses={200: MyRoomView},
    errors={403: "Not a member of the room.", 404: "No such room."},
)
async def set_notify_level(call: Call[NotifySetting], room_id: str) -> Reply:
    """Which of the room's later messages notify the caller: `all`, `mentions` or `none`."""
    store = call.services.store
    room = await member_room(call, room_id)
    membership = await store.set_notify_level(room.id, call.user_id, NotifyLevel(call.input.level))
    others = await direct_others(store, call.user_id, [room])
    return Reply(200, my_room_view(room, membership, others.get(room.id)))


@table.route(
    "POST",
    f"{API_PREFIX}/rooms/{{room_id}}/join",
    summary="Join a public room",
    responses={200: MyRoomView},
    errors={403: "The room is not public, or the caller is banned from it.", 404: "No such room."},
)
async def join_room(call: Call[object], room_id: str) -> Reply:
    """Makes the caller a member of a public room (idempotent: members get their membership)."""
    store = call.services.store
    room = await existing_room(store, room_id)
    membership = await store.get_membership(room.id, call.user_id)
    if membership is None:
        if room.kind is not RoomKind.PUBLIC:
            raise forbidden("only public rooms can be joined; ask a moderator for an invitation")
        await authorize(call.services, room.id, call.user_id, Action.JOIN)
        membership = await store.add_member(room.id, call.user_id, Role.MEMBER, now_ms())
        # `room` was read before the membership was written: its last_seq is safe to resume from.
        await call.services.memberships.added(
            [call.user_id], room, seq=room.last_seq, by=call.user_id
        )
    return Reply(200, my_room_view(room, membership))


@table.route(
    "POST",
    f"{API_PREFIX}/rooms/{{room_id}}/members",
    summary="Add a user to a room directly",
    input=Invite,
    responses={200: MemberView, 201: MemberView},
    errors={
        403: "The caller may not invite, the room is direct, or the user is banned from it.",
        404: "No such room or user.",
    },
)
async def invite_member(call: Call[Invite], room_id: str) -> Reply:
    """Adds a user to the room as a member at once, without an invitation (kept for
    compatibility; see `POST /rooms/{room}/invites`): 201, or 200 if they already were one."""
    store = call.services.store
    await authorize(call.services, room_id, call.user_id, Action.INVITE)
    room = await existing_room(store, room_id)
    if room.kind is RoomKind.DIRECT:
        raise forbidden("the users of a direct room are fixed")
    user_id = call.input.user_id
    existing = await store.get_membership(room.id, user_id)
    if existing is not None:
        return Reply(200, await _member(call.services, room, existing))
    if await store.get_user(user_id) is None:
        raise not_found(f"no user {user_id}")
    if (await store.standing(room.id, user_id, now_ms())).banned:
        raise forbidden(f"{user_id} is banned from room {room.id}: unban them first")
    membership = await store.add_member(room.id, user_id, Role.MEMBER, now_ms())
    await call.services.memberships.added([user_id], room, seq=room.last_seq, by=call.user_id)
    return Reply(201, await _member(call.services, room, membership))


@table.route(
    "DELETE",
    f"{API_PREFIX}/rooms/{{room_id}}/members/{{user_id}}",
    summary="Leave, or remove a member",
    responses={204: None},
    errors={
        403: "Not allowed: see the rules in the description.",
        404: "No such room, or the user is not a member.",
    },
)
async def remove_member(call: Call[object], room_id: str, user_id: str) -> Reply:
    """Ends a membership: the caller's own (leaving) or another member's (a kick).

    Members may leave, except the owner and the users of a direct room.
    Removing another member is a `kick`: allowed by the permission table to
    room moderators, the owner and server staff, on members they outrank;
    nobody removes the owner. A member added directly is removed the same way; a pending
    invitation is revoked with `DELETE /rooms/{room}/invites/{user}`.
    """
    if user_id != call.user_id:
        await kick_member(call.services, room_id, call.user_id, user_id)
        return Reply(204)
    store = call.services.store
    room, caller = await chat.room_and_membership(store, room_id, call.user_id)
    if room.kind is RoomKind.DIRECT:
        raise forbidden("nobody leaves a direct room")
    if caller.role is Role.OWNER:
        raise forbidden("the owner cannot leave the room")
    if not await store.remove_member(room.id, user_id):
        raise not_found(f"{user_id} is not a member of room {room.id}")
    await call.services.memberships.removed(user_id, room.id, by=call.user_id)
    return Reply(204)


@table.route(
    "POST",
    f"{API_PREFIX}/dms",
    summary="Open a direct or group conversation",
    input=DirectWith,
    responses={200: RoomView, 201: RoomView},
    errors={
        400: "Invalid body: neither or both of user_id and user_ids, no other user, or more"
        " users than max_group_size.",
        403: "One of the users blocks another.",
        404: "No such user.",
    },
)
async def open_direct_room(call: Call[DirectWith]) -> Reply:
    """The direct room of the caller and the given users: 201 when created now, else 200.

    With `user_id`: the two-person room (the same one whoever of the two asks).
    With `user_ids`: the room of the caller and those users; the same set of
    users, listed in any order by any of them, always gets the same room.
    Membership is fixed: nobody joins, is invited to or leaves a direct room.
    """
    store, given = call.services.store, call.input
    if given.user_id is not None:
        if await store.get_user(given.user_id) is None:
            raise not_found(f"no user {given.user_id}")
        if await store.blocks_between([call.user_id, given.user_id]):
            raise forbidden("one of you blocks the other")
        room, created = await store.direct_room(
            call.user_id, given.user_id, now_ms(), encrypted=given.encrypted
        )
        return await _opened(call, room, created)
    assert given.user_ids is not None
    others = sorted(set(given.user_ids) - {call.user_id})
    limit = call.services.settings.max_group_size
    if not others:
        raise bad_request(ErrorCode.INVALID_VALUE, "user_ids: name at least one other user")
    if len(others) + 1 > limit:
        raise bad_request(
            ErrorCode.INVALID_VALUE, f"user_ids: a group has at most {limit} users, you included"
        )
    if await store.blocks_between([call.user_id, *others]):
        raise forbidden("one of these users blocks another")
    sealed = given.encrypted
    if len(others) == 1:
        room, created = await store.direct_room(call.user_id, others[0], now_ms(), encrypted=sealed)
    else:
        room, created = await store.group_room(call.user_id, others, now_ms(), encrypted=sealed)
    return await _opened(call, room, created)


async def _opened(call: Call[DirectWith], room: Room, created: bool) -> Reply:
    """Answer `/dms`; a room created now is announced to its users' open connections."""
    if not created:
        return Reply(200, room_view(room))
    members = [membership.user_id for membership in await call.services.store.members(room.id)]
    await call.services.memberships.added(members, room, seq=0, by=call.user_id)
    return Reply(201, room_view(room))


async def _member(services: Services, room: Room, membership: Membership) -> MemberView:
    status = await services.presence.statuses([membership.user_id])
    return member_view(membership, status[membership.user_id], show_read=room.read_receipts)
