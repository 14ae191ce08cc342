"""`/api/v1/admin/*`: the whole server's users, rooms and server roles (server admins only).

Every route asks the permission table for `Action.ADMIN` first (403 for
anyone else); each action is one function, which records it in the audit
log (`chorus admin` records its own, with a null actor). The audit log
itself is read here too (`GET /api/v1/admin/audit`).
"""

from __future__ import annotations

from typing import Literal

import attrs

from chorus.auth import AuditAction, resolve_actor
from chorus.permissions import Action, Who, allowed, standing
from chorus.persistence import MAX_AUDIT_PAGE, AuditQuery, NotFound, now_ms
from chorus.protocol import MAX_ID_CHARS, MAX_SAFE_INT, ErrorCode
from chorus.services import Services

from ._errors import bad_request, forbidden, not_found
from ._input import choice, integer, text
from ._moderation import record_transfer
from ._output import (
    AuditPageView,
    RevokedView,
    RoomPageView,
    ServerRoleView,
    UserListView,
    audit_event_view,
    room_view,
    user_view,
)
from ._routing import API_PREFIX, Call, Reply, RouteTable

table = RouteTable("admin")

PAGE_LIMIT = (1, 100)
DEFAULT_PAGE = 50
DEFAULT_AUDIT_PAGE = 100
MAX_ACTION_CHARS = 64


async def require_admin(services: Services, user_id: str) -> None:
    """403 unless the permission table lets this user use the admin API."""
    try:
        role = await services.store.server_role(user_id)
    except NotFound:
        role = "member"
    who: Who = standing(role, None)
    if not allowed(Action.ADMIN, who):
        raise forbidden("server admins only")


# -- the actions (one function each, each audited) -------------------------------------


async def grant_server_role(services: Services, actor_id: str, user_id: str, role: str) -> None:
    """Give the user a server role (`member` takes any away)."""
    await services.store.set_server_role(user_id, role)
    await services.auth.audit.record(
        AuditAction.SERVER_ROLE_GRANTED, actor_id, user_id, details={"role": role}
    )


async def revoke_user_sessions(services: Services, actor_id: str, user_id: str) -> int:
    """End every session of the user, closing their sockets on every node."""
    if await services.store.get_user(user_id) is None:
        raise not_found(f"no user {user_id}")
    return await services.auth.revoke_all(user_id, actor_id=actor_id)


async def reset_two_factor(services: Services, actor_id: str, user_id: str) -> bool:
    """Turn the user's two-factor authentication off (they lost their device); False when
    it was off (audited either way)."""
    if await services.store.get_user(user_id) is None:
        raise NotFound(f"no user {user_id}")
    was_on = await services.store.disable_totp(user_id)
    await services.auth.audit.record(
        AuditAction.TWO_FACTOR_RESET, actor_id, user_id, details={"was_enabled": was_on}
    )
    return was_on


async def delete_room(services: Services, actor_id: str, room_id: str) -> None:
    """Delete a room; its members' sockets get `room_removed` on every node."""
    try:
        members = await services.store.delete_room(room_id, now_ms())
    except ValueError as exc:
        raise bad_request(ErrorCode.INVALID_VALUE, str(exc)) from None
    await services.auth.audit.record(
        AuditAction.ROOM_DELETED, actor_id, room_id, details={"members": len(members)}
    )
    for user_id in members:
        await services.memberships.removed(user_id, room_id, by=actor_id)


async def transfer_room_as_admin(
    services: Services, actor_id: str, room_id: str, user_id: str
) -> str:
    """Give the room to one of its members; the previous owner's id."""
    previous = await services.store.transfer_ownership(room_id, user_id)
    await record_transfer(services, room_id, actor_id, previous, user_id)
    return previous


# -- routes ---------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class UserPage:
    limit: int = integer(*PAGE_LIMIT, "Most users on the page.", default=DEFAULT_PAGE)
    after: str | None = text(
        1, MAX_ID_CHARS, "The `next_after` of the previous page.", default=None
    )
    role: Literal["admin", "moderator", "member"] | None = choice(
        "admin", "moderator", "member", description="Only users with this role.", default=None
    )


@attrs.frozen(kw_only=True)
class RoomPage:
    limit: int = integer(*PAGE_LIMIT, "Most rooms on the page.", default=DEFAULT_PAGE)
    after: str | None = text(
        1, MAX_ID_CHARS, "The `next_after` of the previous page.", default=None
    )


@attrs.frozen(kw_only=True)
class ServerRoleInput:
    role: Literal["admin", "moderator", "member"] = choice(
        "admin", "moderator", "member", description="The user's new server role."
    )


@attrs.frozen(kw_only=True)
class NewOwner:
    user_id: str = text(1, MAX_ID_CHARS, "The member who becomes the owner.")


@attrs.frozen(kw_only=True)
class AuditPage:
    actor: str | None = text(
        1, MAX_ID_CHARS, "Only events by this user (a username, else a user id).", default=None
    )
    action: str | None = text(
        1, MAX_ACTION_CHARS, "Only this action (e.g. `login.failed`).", default=None
    )
    since: int | None = integer(0, MAX_SAFE_INT, "Only events at or after this time.", default=None)
    before: int | None = integer(
        1, MAX_SAFE_INT, "The `next_before` of the previous page.", default=None
    )
    limit: int = integer(1, MAX_AUDIT_PAGE, "Most events on the page.", default=DEFAULT_AUDIT_PAGE)


_ADMIN = {403: "The caller is not a server admin."}


@table.route(
    "GET",
    f"{API_PREFIX}/admin/users",
    summary="List users",
    input=UserPage,
    responses={200: UserListView},
    errors=_ADMIN,
)
async def admin_list_users(call: Call[UserPage]) -> Reply:
    """Users by username with their server roles, a page at a time (follow `next_after`)."""
    await require_admin(call.services, call.user_id)
    limit = call.input.limit
    found = await call.services.store.list_users(limit + 1, call.input.after, call.input.role)
    next_after = found[limit - 1][0].username if len(found) > limit else None
    views = [ServerRoleView(user=user_view(u), role=r) for u, r in found[:limit]]  # type: ignore[arg-type]
    return Reply(200, UserListView(users=views, next_after=next_after))


@table.route(
    "PUT",
    f"{API_PREFIX}/admin/users/{{user_id}}/role",
    summary="Set a user's server role",
    input=ServerRoleInput,
    responses={204: None},
    errors={**_ADMIN, 404: "No such user."},
)
async def admin_set_role(call: Call[ServerRoleInput], user_id: str) -> Reply:
    """Grants `admin` or `moderator`, or takes them away (`member`). Takes effect at the
    caller's next request or frame, on every node."""
    await require_admin(call.services, call.user_id)
    await grant_server_role(call.services, call.user_id, user_id, call.input.role)
    return Reply(204)


@table.route(
    "POST",
    f"{API_PREFIX}/admin/users/{{user_id}}/revoke-sessions",
    summary="End every session of a user",
    responses={200: RevokedView},
    errors={**_ADMIN, 404: "No such user."},
)
async def admin_revoke_sessions(call: Call[object], user_id: str) -> Reply:
    """Their tokens stop working and their open sockets close, on every node."""
    await require_admin(call.services, call.user_id)
    revoked = await revoke_user_sessions(call.services, call.user_id, user_id)
    return Reply(200, RevokedView(revoked_sessions=revoked))


@table.route(
    "POST",
    f"{API_PREFIX}/admin/users/{{user_id}}/deactivate",
    summary="Deactivate a user",
    responses={200: RevokedView},
    errors={**_ADMIN, 404: "No such user."},
)
async def admin_deactivate(call: Call[object], user_id: str) -> Reply:
    """The account can no longer sign in (password, provider token, refresh); its sessions
    end and its open sockets close, on every node."""
    await require_admin(call.services, call.user_id)
    revoked = await call.services.auth.deactivate(user_id, actor_id=call.user_id)
    return Reply(200, RevokedView(revoked_sessions=revoked))


@table.route(
    "POST",
    f"{API_PREFIX}/admin/users/{{user_id}}/reactivate",
    summary="Reactivate a user",
    responses={204: None},
    errors={**_ADMIN, 404: "No such user."},
)
async def admin_reactivate(call: Call[object], user_id: str) -> Reply:
    """The account may sign in again."""
    await require_admin(call.services, call.user_id)
    await call.services.auth.reactivate(user_id, actor_id=call.user_id)
    return Reply(204)


@table.route(
    "POST",
    f"{API_PREFIX}/admin/users/{{user_id}}/reset-2fa",
    summary="Turn a user's two-factor authentication off",
    responses={204: None},
    errors={**_ADMIN, 404: "No such user."},
)
async def admin_reset_two_factor(call: Call[object], user_id: str) -> Reply:
    """For a user who lost their authenticator: they sign in with their password alone
    until they enrol again."""
    await require_admin(call.services, call.user_id)
    await reset_two_factor(call.services, call.user_id, user_id)
    return Reply(204)


@table.route(
    "GET",
    f"{API_PREFIX}/admin/rooms",
    summary="List rooms",
    input=RoomPage,
    responses={200: RoomPageView},
    errors=_ADMIN,
)
async def admin_list_rooms(call: Call[RoomPage]) -> Reply:
    """Public and private rooms (not direct ones) in id order, a page at a time."""
    await require_admin(call.services, call.user_id)
    limit = call.input.limit
    rooms = await call.services.store.all_rooms(limit + 1, call.input.after)
    next_after = rooms[limit - 1].id if len(rooms) > limit else None
    return Reply(
        200, RoomPageView(rooms=[room_view(r) for r in rooms[:limit]], next_after=next_after)
    )


@table.route(
    "DELETE",
    f"{API_PREFIX}/admin/rooms/{{room_id}}",
    summary="Delete a room",
    responses={204: None},
    errors={**_ADMIN, 400: "A direct room (`invalid_value`).", 404: "No such room."},
)
async def admin_delete_room(call: Call[object], room_id: str) -> Reply:
    """The room and everything in it go; its files are deleted; its members' open sockets
    get `room_removed`, on every node."""
    await require_admin(call.services, call.user_id)
    await delete_room(call.services, call.user_id, room_id)
    return Reply(204)


@table.route(
    "PUT",
    f"{API_PREFIX}/admin/rooms/{{room_id}}/owner",
    summary="Transfer a room's ownership",
    input=NewOwner,
    responses={204: None},
    errors={**_ADMIN, 404: "No such room, or the user is not a member."},
)
async def admin_transfer_room(call: Call[NewOwner], room_id: str) -> Reply:
    """The member becomes the owner; the previous owner a moderator."""
    await require_admin(call.services, call.user_id)
    await transfer_room_as_admin(call.services, call.user_id, room_id, call.input.user_id)
    return Reply(204)


@table.route(
    "GET",
    f"{API_PREFIX}/admin/audit",
    summary="Read the audit log",
    input=AuditPage,
    responses={200: AuditPageView},
    errors=_ADMIN,
)
async def admin_audit(call: Call[AuditPage]) -> Reply:
    """Security-relevant events (sign-ins, 2FA, sessions, roles, moderation, admin actions),
    newest first, a page at a time (follow `next_before`); every filter given must hold."""
    await require_admin(call.services, call.user_id)
    query = call.input
    actor = None if query.actor is None else await resolve_actor(call.services.store, query.actor)
    audit = call.services.auth.audit
    selected = AuditQuery(
        actor_id=actor,
        action=query.action,
        since=query.since,
        before_id=query.before,
        limit=query.limit,
    )
    page = await audit.events(selected)
    next_before = None
    # A full page has a next one only if an older event matches: one row tells (a page of
    # `limit + 1` could not, at the store's largest page).
    if len(page) == query.limit and await audit.events(
        attrs.evolve(selected, before_id=page[-1].id, limit=1)
    ):
        next_before = page[-1].id
    return Reply(
        200, AuditPageView(events=[audit_event_view(e) for e in page], next_before=next_before)
    )
