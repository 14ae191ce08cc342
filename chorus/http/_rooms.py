"""`/api/v1/rooms` and `/api/v1/dms`: rooms, the public directory, members and roles.

Permissions (the store checks integrity only, so every rule is here):
- a room's details are visible to its members, and to anyone for a public room;
- anyone may join a public room; private rooms are joined by invitation
  from their owner or a moderator; direct rooms only through `/dms`;
- a member may leave (except the owner, and except direct rooms); the owner
  and moderators may remove members, only the owner may remove moderators,
  nobody removes the owner.
"""

from __future__ import annotations

from typing import Literal

import attrs

from chorus.persistence import Membership, Role, Room, RoomKind, Store, now_ms
from chorus.protocol import MAX_ID_CHARS
from chorus.services import Services

from ._errors import forbidden, not_found
from ._input import choice, integer, text
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

ROOM_NAME = (1, 100)
PAGE_LIMIT = (1, 100)
DEFAULT_PAGE = 50
MANAGERS = frozenset({Role.OWNER, Role.MODERATOR})


@attrs.frozen(kw_only=True)
class CreateRoom:
    """A new room; the caller becomes its owner."""

    name: str = text(*ROOM_NAME, "The room's name.")
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
    """The other user of the direct conversation (may be the caller)."""

    user_id: str = text(1, MAX_ID_CHARS, "The other user.")


# -- checks shared by room routes -----------------------------------------------------


async def existing_room(store: Store, room_id: str) -> Room:
    room = await store.get_room(room_id)
    if room is None:
        raise not_found(f"no room {room_id}")
    return room


async def membership_of(store: Store, room: Room, user_id: str) -> Membership:
    """The caller's membership; 403 when they are not a member."""
    membership = await store.get_membership(room.id, user_id)
    if membership is None:
        raise forbidden(f"not a member of room {room.id}")
    return membership


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
    room = await call.services.store.create_room(call.input.name, kind, call.user_id, now_ms())
    return Reply(201, room_view(room))


@table.route(
    "GET", f"{API_PREFIX}/rooms", summary="The caller's rooms", responses={200: MyRoomsView}
)
async def list_my_rooms(call: Call[object]) -> Reply:
    """Every room the caller is a member of, with their role and read marker."""
    joined = await call.services.store.rooms_of(call.user_id)
    return Reply(200, MyRoomsView(rooms=[my_room_view(room, m) for room, m in joined]))


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
    """The room with its members, their roles and presence (`online`, `idle`, `offline`)."""
    store = call.services.store
    room = await existing_room(store, room_id)
    if room.kind is not RoomKind.PUBLIC:
        await membership_of(store, room, call.user_id)
    memberships = await store.members(room.id)
    statuses = await call.services.presence.statuses([m.user_id for m in memberships])
    members = [member_view(m, statuses[m.user_id]) for m in memberships]
    return Reply(200, room_detail_view(room, members))


@table.route(
    "POST",
    f"{API_PREFIX}/rooms/{{room_id}}/join",
    summary="Join a public room",
    responses={200: MyRoomView},
    errors={403: "The room is not public.", 404: "No such room."},
)
async def join_room(call: Call[object], room_id: str) -> Reply:
    """Makes the caller a member of a public room (idempotent: members get their membership)."""
    store = call.services.store
    room = await existing_room(store, room_id)
    membership = await store.get_membership(room.id, call.user_id)
    if membership is None:
        if room.kind is not RoomKind.PUBLIC:
            raise forbidden("only public rooms can be joined; ask a moderator for an invitation")
        membership = await store.add_member(room.id, call.user_id, Role.MEMBER, now_ms())
    return Reply(200, my_room_view(room, membership))


@table.route(
    "POST",
    f"{API_PREFIX}/rooms/{{room_id}}/members",
    summary="Invite a user",
    input=Invite,
    responses={200: MemberView, 201: MemberView},
    errors={
        403: "The caller is not the room's owner or a moderator, or the room is direct.",
        404: "No such room or user.",
    },
)
async def invite_member(call: Call[Invite], room_id: str) -> Reply:
    """Adds a user to the room as a member: 201, or 200 if they already were one."""
    store = call.services.store
    room = await existing_room(store, room_id)
    caller = await membership_of(store, room, call.user_id)
    if room.kind is RoomKind.DIRECT:
        raise forbidden("direct rooms have exactly their two users")
    if caller.role not in MANAGERS:
        raise forbidden("only the owner and moderators can invite")
    user_id = call.input.user_id
    existing = await store.get_membership(room.id, user_id)
    if existing is not None:
        return Reply(200, await _member(call.services, existing))
    if await store.get_user(user_id) is None:
        raise not_found(f"no user {user_id}")
    membership = await store.add_member(room.id, user_id, Role.MEMBER, now_ms())
    return Reply(201, await _member(call.services, membership))


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
    """Ends a membership: the caller's own (leaving) or another member's (removing).

    Members may leave, except the owner and the users of a direct room. The
    owner and moderators may remove members; only the owner may remove
    moderators; nobody may remove the owner. The caller must be a member.
    """
    store = call.services.store
    room = await existing_room(store, room_id)
    caller = await membership_of(store, room, call.user_id)
    if room.kind is RoomKind.DIRECT:
        raise forbidden("nobody leaves a direct room")
    if user_id == call.user_id:
        if caller.role is Role.OWNER:
            raise forbidden("the owner cannot leave the room")
    else:
        target = await store.get_membership(room.id, user_id)
        if target is None:
            raise not_found(f"{user_id} is not a member of room {room.id}")
        _check_may_remove(caller.role, target.role)
    if not await store.remove_member(room.id, user_id):
        raise not_found(f"{user_id} is not a member of room {room.id}")
    await call.services.rooms.evict(room.id, user_id)
    return Reply(204)


def _check_may_remove(caller: Role, target: Role) -> None:
    if target is Role.OWNER:
        raise forbidden("the owner cannot be removed")
    if caller is Role.MEMBER:
        raise forbidden("only the owner and moderators can remove members")
    if target is Role.MODERATOR and caller is not Role.OWNER:
        raise forbidden("only the owner can remove a moderator")


@table.route(
    "POST",
    f"{API_PREFIX}/dms",
    summary="Open a direct conversation",
    input=DirectWith,
    responses={200: RoomView, 201: RoomView},
    errors={404: "No such user."},
)
async def open_direct_room(call: Call[DirectWith]) -> Reply:
    """The direct room between the caller and a user: 201 when created now, else 200."""
    store = call.services.store
    if await store.get_user(call.input.user_id) is None:
        raise not_found(f"no user {call.input.user_id}")
    room, created = await store.direct_room(call.user_id, call.input.user_id, now_ms())
    return Reply(201 if created else 200, room_view(room))


async def _member(services: Services, membership: Membership) -> MemberView:
    status = await services.presence.statuses([membership.user_id])
    return member_view(membership, status[membership.user_id])
