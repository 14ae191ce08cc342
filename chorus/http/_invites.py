"""Invitations to private rooms: `/api/v1/rooms/{room}/invites` and `/api/v1/me/invites`.

A moderator (the `invite` action of the permission table) invites a user to a
private room; the invitation is pending until the invitee accepts it (they
become a member, announced to their sockets on every node as `room_added`,
like any new membership), declines it, or a moderator revokes it. Declined
and revoked invitations are gone: accepting one answers 404, the same as an
invitation never made (the caller cannot tell which, and needs not). A ban
deletes the banned user's pending invitation; banned users and members are
not invited. `POST /rooms/{room}/members` stays as "add directly".

Invitations, revocations and accepts are audited (`room.invited`,
`room.invite_revoked`, `room.invite_accepted`; target: the invitee; the
room in `details`). A new invitation is told live to the invitee's
connections on every node (`room_invited`, through `Memberships`); after a
reconnect, `GET /me/invites` lists them.
"""

from __future__ import annotations

import attrs

from chorus.auth import AuditAction
from chorus.permissions import Action
from chorus.persistence import Invitation, RoomKind, now_ms
from chorus.protocol import MAX_ID_CHARS

from ._errors import ApiError, forbidden, not_found
from ._input import text
from ._moderation import authorize
from ._output import (
    InviteListView,
    InviteView,
    MyInviteListView,
    MyInviteView,
    MyRoomView,
    my_room_view,
    room_view,
)
from ._routing import API_PREFIX, Call, Reply, RouteTable

table = RouteTable("invites")


@attrs.frozen(kw_only=True)
class NewInvite:
    """The user to invite."""

    user_id: str = text(1, MAX_ID_CHARS, "The invited user.")


def _view(invitation: Invitation) -> InviteView:
    return InviteView(
        room_id=invitation.room_id,
        user_id=invitation.user_id,
        invited_by=invitation.invited_by,
        created_at=invitation.created_at,
    )


@table.route(
    "POST",
    f"{API_PREFIX}/rooms/{{room_id}}/invites",
    summary="Invite a user to a private room",
    input=NewInvite,
    responses={200: InviteView, 201: InviteView},
    errors={
        403: "The caller may not invite, the room is not private, or the user is banned from it.",
        404: "No such room or user.",
        409: "The user is a member already.",
    },
)
async def create_invite(call: Call[NewInvite], room_id: str) -> Reply:
    """A pending invitation of the user: 201 when made now, 200 (the pending one) if the
    user was invited already. The user becomes a member only when they accept it."""
    services, user_id = call.services, call.input.user_id
    store = services.store
    await authorize(services, room_id, call.user_id, Action.INVITE)
    room = await store.get_room(room_id)
    if room is None:
        raise not_found(f"no room {room_id}")
    if room.kind is not RoomKind.PRIVATE:
        raise forbidden("only private rooms take invitations (public rooms are joined)")
    if await store.get_user(user_id) is None:
        raise not_found(f"no user {user_id}")
    standing = await store.standing(room.id, user_id, now_ms())
    if standing.room_role is not None:
        raise ApiError(409, "conflict", f"{user_id} is a member of room {room.id} already")
    if standing.banned:
        raise forbidden(f"{user_id} is banned from room {room.id}: unban them first")
    invitation, created = await store.invite(room.id, user_id, call.user_id, now_ms())
    if created:
        await services.auth.audit.record(
            AuditAction.ROOM_INVITED, call.user_id, user_id, details={"room_id": room.id}
        )
        await services.memberships.invited(user_id, room, by=call.user_id)
    return Reply(201 if created else 200, _view(invitation))


@table.route(
    "GET",
    f"{API_PREFIX}/rooms/{{room_id}}/invites",
    summary="A room's pending invitations",
    responses={200: InviteListView},
    errors={403: "Not allowed (see docs/permissions.md).", 404: "No such room."},
)
async def list_invites(call: Call[object], room_id: str) -> Reply:
    """The room's pending invitations, oldest first (those who may invite)."""
    await authorize(call.services, room_id, call.user_id, Action.INVITE)
    found = await call.services.store.room_invites(room_id)
    return Reply(200, InviteListView(invites=[_view(i) for i in found]))


@table.route(
    "DELETE",
    f"{API_PREFIX}/rooms/{{room_id}}/invites/{{user_id}}",
    summary="Revoke an invitation",
    responses={204: None},
    errors={
        403: "Not allowed (see docs/permissions.md).",
        404: "No such room, or no pending invitation of the user.",
    },
)
async def revoke_invite(call: Call[object], room_id: str, user_id: str) -> Reply:
    """Deletes the user's pending invitation: accepting it answers 404 from now on."""
    await authorize(call.services, room_id, call.user_id, Action.INVITE)
    if not await call.services.store.revoke_invite(room_id, user_id):
        raise not_found(f"{user_id} has no pending invitation to room {room_id}")
    await call.services.auth.audit.record(
        AuditAction.ROOM_INVITE_REVOKED, call.user_id, user_id, details={"room_id": room_id}
    )
    return Reply(204)


@table.route(
    "GET",
    f"{API_PREFIX}/me/invites",
    summary="The caller's pending invitations",
    responses={200: MyInviteListView},
)
async def list_my_invites(call: Call[object]) -> Reply:
    """The caller's pending invitations with their rooms, oldest first."""
    found = await call.services.store.user_invites(call.user_id)
    views = [
        MyInviteView(room=room_view(room), invited_by=i.invited_by, created_at=i.created_at)
        for i, room in found
    ]
    return Reply(200, MyInviteListView(invites=views))


@table.route(
    "POST",
    f"{API_PREFIX}/me/invites/{{room_id}}/accept",
    summary="Accept an invitation",
    responses={200: MyRoomView},
    errors={
        403: "The caller's account is deactivated.",
        404: "No pending invitation to the room (never made, declined or revoked).",
    },
)
async def accept_invite(call: Call[object], room_id: str) -> Reply:
    """Makes the caller a member of the room; their open connections get `room_added`."""
    services = call.services
    # A session may outlive its account's deactivation briefly (the session cache, when
    # `chorus admin` deactivated it): a membership is granted to active accounts only.
    if await services.store.deactivated_at(call.user_id) is not None:
        raise forbidden("this account is deactivated")
    room = await services.store.get_room(room_id)
    # `room` is read before the membership is written: its last_seq is safe to resume from.
    membership = None
    if room is not None:
        membership = await services.store.accept_invite(room.id, call.user_id, now_ms())
    if room is None or membership is None:
        raise not_found(f"no pending invitation to room {room_id}")
    await services.auth.audit.record(
        AuditAction.ROOM_INVITE_ACCEPTED, call.user_id, call.user_id, details={"room_id": room.id}
    )
    await services.memberships.added([call.user_id], room, seq=room.last_seq, by=call.user_id)
    return Reply(200, my_room_view(room, membership))


@table.route(
    "POST",
    f"{API_PREFIX}/me/invites/{{room_id}}/decline",
    summary="Decline an invitation",
    responses={204: None},
    errors={404: "No pending invitation to the room."},
)
async def decline_invite(call: Call[object], room_id: str) -> Reply:
    """Deletes the caller's pending invitation: it can no longer be accepted."""
    if not await call.services.store.revoke_invite(room_id, call.user_id):
        raise not_found(f"no pending invitation to room {room_id}")
    return Reply(204)
