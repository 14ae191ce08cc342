"""Room moderation: bans, mutes, locks, room roles and ownership; users' blocks.

Every decision about who may is `chorus.permissions` (`authorize` below);
each action is one function, which records it in the audit log (actor,
target user or room, `room_id` and small facts in details). A change
reaches the open sockets at once, on every node: a ban removes the user
through `Memberships.removed` (their sockets get `room_removed` and the
room's actor drops them); a mute, a lock and a role are read by the room's
actor at every post, so the next send is refused. Blocks are not audited:
they are a user's private choice and change only what reaches them.
"""

from __future__ import annotations

import attrs

from chorus.auth import AUDIT_REASON_CHARS, AuditAction
from chorus.permissions import Action, Who, allowed, outranks
from chorus.persistence import Role, Room, RoomKind, Standing, now_ms
from chorus.protocol import MAX_ID_CHARS, ErrorCode
from chorus.services import Services

from ._errors import bad_request, forbidden, not_found
from ._input import choice, flag, integer, text
from ._output import BanListView, BanView, BlockListView, MemberView, member_view
from ._routing import API_PREFIX, Call, Reply, RouteTable

table = RouteTable("moderation")

MAX_REASON_CHARS = 500
MAX_MUTE_MINUTES = 60 * 24 * 366


async def authorize(services: Services, room_id: str, user_id: str, action: Action) -> Standing:
    """The caller's standing in the room, when the permission table allows them `action`.

    Raises 404 for an unknown room and 403 when the table says no (as
    `chat.membership` answers a non-member: the room's existence is not hidden).
    """
    store = services.store
    if await store.get_room(room_id) is None:
        raise not_found(f"no room {room_id}")
    found = await store.standing(room_id, user_id, now_ms())
    if not allowed(action, found.who):
        raise forbidden(f"{found.who.value} may not {action.value} in room {room_id}")
    return found


async def target_standing(services: Services, room_id: str, user_id: str) -> Who:
    """The standing of the user an action is about (404 for an unknown user)."""
    if await services.store.get_user(user_id) is None:
        raise not_found(f"no user {user_id}")
    found = await services.store.standing(room_id, user_id, now_ms())
    return found.who


def require_outranks(actor: Who, target: Who, what: str) -> None:
    if not outranks(actor, target):
        raise forbidden(f"a {actor.value} cannot {what} a {target.value}")


async def not_direct(services: Services, room_id: str) -> Room:
    room = await services.store.get_room(room_id)
    if room is None:
        raise not_found(f"no room {room_id}")
    if room.kind is RoomKind.DIRECT:
        raise forbidden("the users of a direct room are fixed")
    return room


# -- the actions (one function each) ----------------------------------------------------


async def ban_user(
    services: Services, room_id: str, actor_id: str, user_id: str, reason: str
) -> None:
    """Ban `user_id` from the room: their membership ends and their sockets leave it now."""
    actor = await authorize(services, room_id, actor_id, Action.BAN)
    await not_direct(services, room_id)
    require_outranks(actor.who, await target_standing(services, room_id, user_id), "ban")
    was_member = await services.store.ban(room_id, user_id, actor_id, reason, now_ms())
    await services.auth.audit.record(
        AuditAction.ROOM_BANNED,
        actor_id,
        user_id,
        details={"room_id": room_id, "reason": reason[:AUDIT_REASON_CHARS]},
    )
    if was_member:
        await services.memberships.removed(user_id, room_id, by=actor_id)


async def unban_user(services: Services, room_id: str, actor_id: str, user_id: str) -> None:
    """Lift a ban (404 when there was none)."""
    await authorize(services, room_id, actor_id, Action.BAN)
    if not await services.store.unban(room_id, user_id):
        raise not_found(f"{user_id} is not banned from room {room_id}")
    await services.auth.audit.record(
        AuditAction.ROOM_UNBANNED, actor_id, user_id, details={"room_id": room_id}
    )


async def kick_member(services: Services, room_id: str, actor_id: str, user_id: str) -> None:
    """Remove another member (they may come back unless banned)."""
    actor = await authorize(services, room_id, actor_id, Action.KICK)
    await not_direct(services, room_id)
    membership = await services.store.get_membership(room_id, user_id)
    if membership is None:
        raise not_found(f"{user_id} is not a member of room {room_id}")
    if membership.role is Role.OWNER:
        raise forbidden("the owner cannot be removed")
    require_outranks(actor.who, await target_standing(services, room_id, user_id), "remove")
    if not await services.store.remove_member(room_id, user_id):
        raise not_found(f"{user_id} is not a member of room {room_id}")
    await services.auth.audit.record(
        AuditAction.ROOM_KICKED, actor_id, user_id, details={"room_id": room_id}
    )
    await services.memberships.removed(user_id, room_id, by=actor_id)


async def mute_member(
    services: Services, room_id: str, actor_id: str, user_id: str, minutes: int | None
) -> None:
    """Mute a member for `minutes` (None: until unmuted): their next send is refused."""
    actor = await authorize(services, room_id, actor_id, Action.MUTE)
    target = await target_standing(services, room_id, user_id)
    if target is Who.OWNER:
        raise forbidden("the owner is never muted in their own room")
    require_outranks(actor.who, target, "mute")
    until = 0 if minutes is None else now_ms() + minutes * 60_000
    await services.store.set_muted(room_id, user_id, until)
    await services.auth.audit.record(
        AuditAction.ROOM_MUTED,
        actor_id,
        user_id,
        details={"room_id": room_id, "until": until or None},
    )


async def unmute_member(services: Services, room_id: str, actor_id: str, user_id: str) -> None:
    """Let a muted member post again."""
    await authorize(services, room_id, actor_id, Action.MUTE)
    await services.store.set_muted(room_id, user_id, None)
    await services.auth.audit.record(
        AuditAction.ROOM_UNMUTED, actor_id, user_id, details={"room_id": room_id}
    )


async def lock_room(services: Services, room_id: str, actor_id: str, locked: bool) -> None:
    """Lock (only moderators post) or unlock the room."""
    await authorize(services, room_id, actor_id, Action.LOCK)
    await services.store.set_locked(room_id, locked)
    action = AuditAction.ROOM_LOCKED if locked else AuditAction.ROOM_UNLOCKED
    await services.auth.audit.record(action, actor_id, room_id)


async def set_room_role(
    services: Services, room_id: str, actor_id: str, user_id: str, role: Role
) -> MemberView:
    """Make a member a moderator or a member again."""
    await authorize(services, room_id, actor_id, Action.SET_ROLE)
    await not_direct(services, room_id)
    membership = await services.store.set_member_role(room_id, user_id, role)
    await services.auth.audit.record(
        AuditAction.ROOM_ROLE_CHANGED,
        actor_id,
        user_id,
        details={"room_id": room_id, "role": role.value},
    )
    status = await services.presence.statuses([user_id])
    return member_view(membership, status[user_id], show_read=False)


async def transfer_room(services: Services, room_id: str, actor_id: str, user_id: str) -> str:
    """Give the room to another member at once; the previous owner becomes a moderator."""
    await authorize(services, room_id, actor_id, Action.TRANSFER)
    await not_direct(services, room_id)
    previous = await services.store.transfer_ownership(room_id, user_id)
    await record_transfer(services, room_id, actor_id, previous, user_id)
    return previous


async def record_transfer(
    services: Services, room_id: str, actor_id: str, previous: str, owner: str
) -> None:
    """Audit a change of owner (by a room's owner or an admin): the room is the target."""
    await services.auth.audit.record(
        AuditAction.ROOM_OWNERSHIP_TRANSFERRED,
        actor_id,
        room_id,
        details={"from": previous, "to": owner},
    )


# -- routes ---------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class BanInput:
    user_id: str = text(1, MAX_ID_CHARS, "The user to ban.")
    reason: str = text(0, MAX_REASON_CHARS, "Why (shown to moderators).", default="")


@attrs.frozen(kw_only=True)
class MuteInput:
    minutes: int | None = integer(
        1, MAX_MUTE_MINUTES, "How long; absent: until unmuted.", default=None
    )


@attrs.frozen(kw_only=True)
class LockInput:
    locked: bool = flag("Whether only moderators may post.")


@attrs.frozen(kw_only=True)
class RoleInput:
    role: str = choice("moderator", "member", description="The member's new room role.")


@attrs.frozen(kw_only=True)
class OwnerInput:
    user_id: str = text(1, MAX_ID_CHARS, "The member who becomes the owner.")


_MODERATED = {403: "Not allowed (see docs/permissions.md).", 404: "No such room or user."}


@table.route(
    "POST",
    f"{API_PREFIX}/rooms/{{room_id}}/bans",
    summary="Ban a user from a room",
    input=BanInput,
    responses={204: None},
    errors={**_MODERATED, 409: "The user owns the room."},
)
async def ban(call: Call[BanInput], room_id: str) -> Reply:
    """Ends the user's membership and keeps them out (no join, no invitation) until unbanned."""
    await ban_user(call.services, room_id, call.user_id, call.input.user_id, call.input.reason)
    return Reply(204)


@table.route(
    "GET",
    f"{API_PREFIX}/rooms/{{room_id}}/bans",
    summary="A room's bans",
    responses={200: BanListView},
    errors=_MODERATED,
)
async def list_bans(call: Call[object], room_id: str) -> Reply:
    """The room's bans, oldest first (moderators only)."""
    await authorize(call.services, room_id, call.user_id, Action.BAN)
    found = await call.services.store.bans(room_id)
    views = [
        BanView(user_id=b.user_id, banned_by=b.banned_by, reason=b.reason, banned_at=b.banned_at)
        for b in found
    ]
    return Reply(200, BanListView(bans=views))


@table.route(
    "DELETE",
    f"{API_PREFIX}/rooms/{{room_id}}/bans/{{user_id}}",
    summary="Lift a ban",
    responses={204: None},
    errors=_MODERATED,
)
async def unban(call: Call[object], room_id: str, user_id: str) -> Reply:
    """The user may join (or be invited) again."""
    await unban_user(call.services, room_id, call.user_id, user_id)
    return Reply(204)


@table.route(
    "PUT",
    f"{API_PREFIX}/rooms/{{room_id}}/mutes/{{user_id}}",
    summary="Mute a member",
    input=MuteInput,
    responses={204: None},
    errors=_MODERATED,
)
async def mute(call: Call[MuteInput], room_id: str, user_id: str) -> Reply:
    """The member reads but cannot post, edit or react (403 `forbidden`) until unmuted or
    the mute ends."""
    await mute_member(call.services, room_id, call.user_id, user_id, call.input.minutes)
    return Reply(204)


@table.route(
    "DELETE",
    f"{API_PREFIX}/rooms/{{room_id}}/mutes/{{user_id}}",
    summary="Unmute a member",
    responses={204: None},
    errors=_MODERATED,
)
async def unmute(call: Call[object], room_id: str, user_id: str) -> Reply:
    """The member may post again."""
    await unmute_member(call.services, room_id, call.user_id, user_id)
    return Reply(204)


@table.route(
    "PUT",
    f"{API_PREFIX}/rooms/{{room_id}}/lock",
    summary="Lock or unlock a room",
    input=LockInput,
    responses={204: None},
    errors=_MODERATED,
)
async def lock(call: Call[LockInput], room_id: str) -> Reply:
    """In a locked room only its moderators and owner (and server staff) post."""
    await lock_room(call.services, room_id, call.user_id, call.input.locked)
    return Reply(204)


@table.route(
    "PUT",
    f"{API_PREFIX}/rooms/{{room_id}}/members/{{user_id}}/role",
    summary="Set a member's room role",
    input=RoleInput,
    responses={200: MemberView},
    errors={**_MODERATED, 409: "The member owns the room (transfer the ownership instead)."},
)
async def set_role(call: Call[RoleInput], room_id: str, user_id: str) -> Reply:
    """Makes a member a moderator, or a moderator a member (the owner only)."""
    view = await set_room_role(call.services, room_id, call.user_id, user_id, Role(call.input.role))
    return Reply(200, view)


@table.route(
    "PUT",
    f"{API_PREFIX}/rooms/{{room_id}}/owner",
    summary="Transfer a room's ownership",
    input=OwnerInput,
    responses={204: None},
    errors=_MODERATED,
)
async def transfer(call: Call[OwnerInput], room_id: str) -> Reply:
    """The member becomes the owner and the owner a moderator, in one transaction."""
    await transfer_room(call.services, room_id, call.user_id, call.input.user_id)
    return Reply(204)


@table.route(
    "GET",
    f"{API_PREFIX}/users/me/blocks",
    summary="The users the caller blocks",
    responses={200: BlockListView},
)
async def list_blocks(call: Call[object]) -> Reply:
    """Ids of the users whose direct messages the caller refuses."""
    return Reply(200, BlockListView(user_ids=await call.services.store.blocked(call.user_id)))


@table.route(
    "PUT",
    f"{API_PREFIX}/users/me/blocks/{{user_id}}",
    summary="Block a user",
    responses={204: None},
    errors={400: "The caller themselves.", 404: "No such user."},
)
async def block(call: Call[object], user_id: str) -> Reply:
    """The user can no longer open a direct room with the caller nor post in one they
    share (403 `forbidden`)."""
    if user_id == call.user_id:
        raise bad_request(ErrorCode.INVALID_VALUE, "nobody blocks themselves")
    await call.services.store.block(call.user_id, user_id, now_ms())
    return Reply(204)


@table.route(
    "DELETE",
    f"{API_PREFIX}/users/me/blocks/{{user_id}}",
    summary="Unblock a user",
    responses={204: None},
    errors={404: "The user is not blocked."},
)
async def unblock(call: Call[object], user_id: str) -> Reply:
    if not await call.services.store.unblock(call.user_id, user_id):
        raise not_found(f"{user_id} is not blocked")
    return Reply(204)
