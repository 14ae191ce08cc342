"""Server roles, room moderation (bans, mutes, locks, room roles, ownership) and blocks.

The store keeps the facts `chorus.permissions` decides on and the
invariants around them (a room has exactly one owner, who stays a member; a
ban ends the membership); whether a caller may change them is decided by
the caller, through the permission table.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any, Protocol

import attrs

from chorus.permissions import Who, standing

from .._errors import Conflict, NotFound
from .._model import Membership, Role, Room, User
from .._rows import MEMBERSHIP, ROOM, USER, bare, check_limit, membership, room, user
from .._sql import Engine, ForeignKeyViolation, Tx, execute, fetch, fetch_one, fetch_value
from .invites import drop_invite
from .rooms import find_membership, require_user

SERVER_ROLES = ("admin", "moderator", "member")
"""The values of a user's server role (`users.role`), strongest first."""


@attrs.frozen(kw_only=True)
class Standing:
    """What the permission table needs to know about one user and one room."""

    server_role: str
    """"admin", "moderator" or "member"."""
    room_role: Role | None
    """None: not a member."""
    muted: bool
    """A member whose mute has not expired."""
    banned: bool
    locked: bool
    """The room is locked (only `SEND_LOCKED` callers post)."""
    blocked: bool = False
    """The room is direct and another of its members blocks this user: they may not post."""

    _who: Who = attrs.field(init=False, eq=False, repr=False)
    """`who`, worked out once: standings are shared (`standing_from_row`), and the
    admission of every batch of posts asks each sender's."""

    def __attrs_post_init__(self) -> None:
        role = None if self.room_role is None else self.room_role.value
        who = standing(self.server_role, role, muted=self.muted, banned=self.banned)
        object.__setattr__(self, "_who", who)  # frozen: set once, here

    @property
    def who(self) -> Who:
        """The caller's `Who` (see `chorus.permissions.standing`)."""
        return self._who


@attrs.frozen(kw_only=True)
class Ban:
    room_id: str
    user_id: str
    banned_by: str
    reason: str
    banned_at: int


class Moderation(Protocol):
    """Server roles, bans, mutes, locks, room roles and blocks."""

    async def standing(self, room_id: str, user_id: str, now: int) -> Standing:
        """The user's standing in the room, in one read. `NotFound` for an unknown user or
        room."""
        ...

    async def standings(
        self, room_id: str, user_ids: Sequence[str], now: int
    ) -> dict[str, Standing]:
        """The standing of each of the users in the room, in one read (a room actor checks
        every sender of a batch at once). An unknown user, or every user of an unknown
        room, is missing from the result."""
        ...

    async def server_role(self, user_id: str) -> str:
        """The user's server role. `NotFound` for an unknown user."""
        ...

    async def set_server_role(self, user_id: str, role: str) -> None:
        """Set the user's server role (one of `SERVER_ROLES`, else `ValueError`); `NotFound`
        for an unknown user."""
        ...

    async def users_with_role(self, role: str) -> list[User]:
        """Every user with this server role, by username."""
        ...

    async def set_display_name(self, user_id: str, display_name: str) -> User:
        """Change the user's display name; the updated user. `NotFound` for an unknown user."""
        ...

    async def set_avatar(self, user_id: str, file_id: str | None) -> None:
        """Make the file the user's avatar (None: none). Whether the file fits (the user's,
        a ready image) is the caller's check; `NotFound` for an unknown user or file."""
        ...

    async def avatar_of(self, user_id: str) -> str | None:
        """The id of the user's avatar file, or None."""
        ...

    async def is_avatar(self, file_id: str) -> bool:
        """Whether the file is some user's avatar."""
        ...

    async def set_deactivated(self, user_id: str, at: int | None) -> None:
        """Deactivate the account at `at` (ms), or reactivate it (None). `NotFound` for an
        unknown user. Ending its sessions is the caller's job (`revoke_sessions`)."""
        ...

    async def deactivated_at(self, user_id: str) -> int | None:
        """When the account was deactivated, None while it is active. `NotFound` for an
        unknown user."""
        ...

    async def list_users(
        self, limit: int, after: str | None = None, role: str | None = None
    ) -> list[tuple[User, str]]:
        """Up to `limit` users with their server roles, by username after `after` (a
        username), only those with `role` when given. Bot users are listed too."""
        ...

    async def all_rooms(self, limit: int, after: str | None = None) -> list[Room]:
        """Up to `limit` public and private rooms (not direct ones), in id order after
        `after`."""
        ...

    async def delete_room(self, room_id: str, now: int) -> list[str]:
        """Delete a public or private room and everything in it (messages, memberships,
        mentions, notifications, bans); its attached files are marked deleted at `now`.
        Returns the ids of its members. `NotFound` for an unknown room; `ValueError` for a
        direct room (its users are fixed, and so is it)."""
        ...

    async def ban(self, room_id: str, user_id: str, by: str, reason: str, now: int) -> bool:
        """Ban the user from the room, ending their membership and deleting their pending
        invitation; True if they were a member.

        Banning again updates the reason. `Conflict` for the room's owner (transfer the
        ownership first); `NotFound` for an unknown room or user.
        """
        ...

    async def unban(self, room_id: str, user_id: str) -> bool:
        """Lift a ban; False if there was none."""
        ...

    async def bans(self, room_id: str) -> list[Ban]:
        """The room's bans, oldest first."""
        ...

    async def set_muted(self, room_id: str, user_id: str, until: int | None) -> Membership:
        """Mute the member until `until` (ms; 0: until unmuted), or unmute them (None).

        `NotFound` if the user is not a member of the room.
        """
        ...

    async def muted_until(self, room_id: str, user_id: str) -> int | None:
        """The member's mute (as `set_muted` stored it), or None."""
        ...

    async def set_locked(self, room_id: str, locked: bool) -> None:
        """Lock or unlock the room; `NotFound` for an unknown room."""
        ...

    async def set_member_role(self, room_id: str, user_id: str, role: Role) -> Membership:
        """Make a member a moderator or a member. `ValueError` for `Role.OWNER` (see
        `transfer_ownership`), `Conflict` when the member is the owner, `NotFound` when the
        user is not a member."""
        ...

    async def transfer_ownership(self, room_id: str, to_user_id: str) -> str:
        """Make the member `to_user_id` the room's owner, and its owner a moderator, at once.

        Returns the previous owner's id (`to_user_id` itself: nothing changes).
        `NotFound` when `to_user_id` is not a member or the room has no owner.
        """
        ...

    async def block(self, blocker_id: str, blocked_id: str, now: int) -> None:
        """`blocker_id` receives no direct messages from `blocked_id` (idempotent).

        `NotFound` for an unknown user; `ValueError` for oneself.
        """
        ...

    async def unblock(self, blocker_id: str, blocked_id: str) -> bool:
        """Lift a block; False if there was none."""
        ...

    async def blocked(self, blocker_id: str) -> list[str]:
        """The ids of the users `blocker_id` blocks, oldest first."""
        ...

    async def blocks_between(self, user_ids: list[str]) -> bool:
        """Whether any of the users blocks another of them."""
        ...


class ModerationOnSql(Engine):
    """`Moderation` for every engine: each method runs one transaction below."""

    async def standing(self, room_id: str, user_id: str, now: int) -> Standing:
        """See `Moderation.standing`."""
        return await self._read(lambda: find_standing(room_id, user_id, now))

    async def standings(
        self, room_id: str, user_ids: Sequence[str], now: int
    ) -> dict[str, Standing]:
        """See `Moderation.standings`."""
        users = list(dict.fromkeys(user_ids))  # a copy: the read may run in another thread
        return await self._read(lambda: find_standings(room_id, users, now))

    async def server_role(self, user_id: str) -> str:
        """See `Moderation.server_role`."""
        role = await self._read(
            lambda: fetch_value("SELECT role FROM users WHERE id = $1", user_id)
        )
        if role is None:
            raise NotFound(f"no user {user_id!r}")
        return str(role)

    async def set_server_role(self, user_id: str, role: str) -> None:
        """See `Moderation.set_server_role`."""
        if role not in SERVER_ROLES:
            raise ValueError(f"not a server role: {role!r}")
        await self._write(lambda: set_server_role(user_id, role), one_statement=True)

    async def users_with_role(self, role: str) -> list[User]:
        """See `Moderation.users_with_role`."""
        return await self._read(lambda: users_with_role(role))

    async def set_display_name(self, user_id: str, display_name: str) -> User:
        """See `Moderation.set_display_name`."""
        return await self._write(
            lambda: set_display_name(user_id, display_name), one_statement=True
        )

    async def set_avatar(self, user_id: str, file_id: str | None) -> None:
        """See `Moderation.set_avatar`."""
        await self._write(lambda: set_avatar(user_id, file_id), one_statement=True)

    async def avatar_of(self, user_id: str) -> str | None:
        """See `Moderation.avatar_of`."""
        found = await self._read(
            lambda: fetch_value("SELECT avatar_file_id FROM users WHERE id = $1", user_id)
        )
        return None if found is None else str(found)

    async def is_avatar(self, file_id: str) -> bool:
        """See `Moderation.is_avatar`."""
        found = await self._read(
            lambda: fetch_value("SELECT 1 FROM users WHERE avatar_file_id = $1", file_id)
        )
        return found is not None

    async def set_deactivated(self, user_id: str, at: int | None) -> None:
        """See `Moderation.set_deactivated`."""
        await self._write(lambda: set_deactivated(user_id, at), one_statement=True)

    async def deactivated_at(self, user_id: str) -> int | None:
        """See `Moderation.deactivated_at`."""
        rows = await self._read(
            lambda: fetch("SELECT deactivated_at FROM users WHERE id = $1", user_id)
        )
        if not rows:
            raise NotFound(f"no user {user_id!r}")
        return None if rows[0][0] is None else int(rows[0][0])

    async def list_users(
        self, limit: int, after: str | None = None, role: str | None = None
    ) -> list[tuple[User, str]]:
        """See `Moderation.list_users`."""
        check_limit(limit)
        return await self._read(lambda: list_users(limit, after or "", role))

    async def all_rooms(self, limit: int, after: str | None = None) -> list[Room]:
        """See `Moderation.all_rooms`."""
        check_limit(limit)
        return await self._read(lambda: all_rooms(limit, after or ""))

    async def delete_room(self, room_id: str, now: int) -> list[str]:
        """See `Moderation.delete_room`."""
        return await self._write(lambda: delete_room(room_id, now))

    async def ban(self, room_id: str, user_id: str, by: str, reason: str, now: int) -> bool:
        """See `Moderation.ban`."""
        return await self._write(lambda: ban(room_id, user_id, by, reason, now))

    async def unban(self, room_id: str, user_id: str) -> bool:
        """See `Moderation.unban`."""
        return await self._write(lambda: unban(room_id, user_id), one_statement=True)

    async def bans(self, room_id: str) -> list[Ban]:
        """See `Moderation.bans`."""
        return await self._read(lambda: bans(room_id))

    async def set_muted(self, room_id: str, user_id: str, until: int | None) -> Membership:
        """See `Moderation.set_muted`."""
        return await self._write(lambda: set_muted(room_id, user_id, until), one_statement=True)

    async def muted_until(self, room_id: str, user_id: str) -> int | None:
        """See `Moderation.muted_until`."""
        value = await self._read(
            lambda: fetch_value(
                "SELECT muted_until FROM memberships WHERE room_id = $1 AND user_id = $2",
                room_id,
                user_id,
            )
        )
        return None if value is None else int(value)

    async def set_locked(self, room_id: str, locked: bool) -> None:
        """See `Moderation.set_locked`."""
        await self._write(lambda: set_locked(room_id, locked), one_statement=True)

    async def set_member_role(self, room_id: str, user_id: str, role: Role) -> Membership:
        """See `Moderation.set_member_role`."""
        if role is Role.OWNER:
            raise ValueError("ownership is given by transfer_ownership")
        return await self._write(lambda: set_member_role(room_id, user_id, role))

    async def transfer_ownership(self, room_id: str, to_user_id: str) -> str:
        """See `Moderation.transfer_ownership`."""
        return await self._write(lambda: transfer_ownership(room_id, to_user_id))

    async def block(self, blocker_id: str, blocked_id: str, now: int) -> None:
        """See `Moderation.block`."""
        if blocker_id == blocked_id:
            raise ValueError("nobody blocks themselves")
        await self._write(lambda: block(blocker_id, blocked_id, now))

    async def unblock(self, blocker_id: str, blocked_id: str) -> bool:
        """See `Moderation.unblock`."""
        return await self._write(lambda: unblock(blocker_id, blocked_id), one_statement=True)

    async def blocked(self, blocker_id: str) -> list[str]:
        """See `Moderation.blocked`."""
        return await self._read(lambda: blocked(blocker_id))

    async def blocks_between(self, user_ids: list[str]) -> bool:
        """See `Moderation.blocks_between`."""
        return await self._read(lambda: blocks_between(sorted(set(user_ids))))


_STANDING_COLUMNS = (
    "u.role, r.locked, m.role, m.muted_until,"
    " EXISTS (SELECT 1 FROM room_bans b WHERE b.room_id = r.id AND b.user_id = u.id),"
    " EXISTS (SELECT 1 FROM user_blocks ub JOIN memberships bm"
    " ON bm.room_id = r.id AND bm.user_id = ub.blocker_id"
    " WHERE r.kind = 'direct' AND ub.blocked_id = u.id)"
)
_STANDING_FROM = (
    " FROM users u JOIN rooms r ON r.id = $1"
    " LEFT JOIN memberships m ON m.room_id = r.id AND m.user_id = u.id"
)
STANDING_SELECT = f"SELECT {_STANDING_COLUMNS}{_STANDING_FROM}"
"""The standing in room $1 of each user `u` a WHERE clause appended to it picks: a row
of `standing_from_row` (no row for an unknown room or user)."""

_STANDING = f"{STANDING_SELECT} WHERE u.id = $2"
STANDING_AND_LAST_SEQ = f"SELECT {_STANDING_COLUMNS}, r.last_seq{_STANDING_FROM} WHERE u.id = $2"
"""`STANDING_SELECT` of user $2, with the room's `last_seq` as a seventh column: for a
writer that holds the room's lock and appends next, in the same transaction (the SQLite
append runs it on its connection, without a transaction generator)."""


def find_standing(room_id: str, user_id: str, now: int) -> Tx[Standing]:
    row = yield from fetch_one(_STANDING, room_id, user_id)
    if row is None:
        raise NotFound(f"no room {room_id!r} or no user {user_id!r}")
    return standing_from_row(row, now)


def find_standings(room_id: str, user_ids: Sequence[str], now: int) -> Tx[dict[str, Standing]]:
    rows = yield from _standing_rows(_STANDING, room_id, user_ids)
    return {user_id: standing_from_row(row, now) for user_id, row in rows.items()}


def _standing_rows(
    query: str, room_id: str, user_ids: Sequence[str]
) -> Tx[dict[str, Sequence[Any]]]:
    found = {}
    for user_id in user_ids:  # the same indexed lookup as `find_standing`, in one transaction
        row = yield from fetch_one(query, room_id, user_id)
        if row is not None:
            found[user_id] = row
    return found


def standing_from_row(row: Sequence[Any], now: int) -> Standing:
    """The `Standing` in a row of `STANDING_SELECT`, as of `now` (a mute may have expired)."""
    muted_until = row[3]
    muted = muted_until is not None and (muted_until == 0 or muted_until > now)
    return _standing(row[0], bool(row[1]), row[2], muted, bool(row[4]), bool(row[5]))


@functools.lru_cache(maxsize=256)
def _standing(
    server_role: str, locked: bool, room_role: str | None, muted: bool, banned: bool, blocked: bool
) -> Standing:
    """One shared `Standing` per combination of its values (a few dozen exist): every batch
    of posts reads its senders' standings, and building one (its `Role` and its frozen
    fields) cost ~16,700 instructions, a cached one ~3,300. Shared safely: it is frozen."""
    return Standing(
        server_role=server_role,
        locked=locked,
        room_role=None if room_role is None else Role(room_role),
        muted=muted,
        banned=banned,
        blocked=blocked,
    )


def set_server_role(user_id: str, role: str) -> Tx[None]:
    found = yield from fetch_one(
        "UPDATE users SET role = $2 WHERE id = $1 RETURNING 1", user_id, role
    )
    if found is None:
        raise NotFound(f"no user {user_id!r}")


def set_display_name(user_id: str, display_name: str) -> Tx[User]:
    row = yield from fetch_one(
        f"UPDATE users SET display_name = $2 WHERE id = $1 RETURNING {bare(USER)}",
        user_id,
        display_name,
    )
    if row is None:
        raise NotFound(f"no user {user_id!r}")
    return user(row)


def set_avatar(user_id: str, file_id: str | None) -> Tx[None]:
    try:
        found = yield from fetch_one(
            "UPDATE users SET avatar_file_id = $2 WHERE id = $1 RETURNING 1", user_id, file_id
        )
    except ForeignKeyViolation as exc:
        raise NotFound(f"no file {file_id!r}") from exc
    if found is None:
        raise NotFound(f"no user {user_id!r}")


def set_deactivated(user_id: str, at: int | None) -> Tx[None]:
    found = yield from fetch_one(
        "UPDATE users SET deactivated_at = $2 WHERE id = $1 RETURNING 1", user_id, at
    )
    if found is None:
        raise NotFound(f"no user {user_id!r}")


def users_with_role(role: str) -> Tx[list[User]]:
    rows = yield from fetch(
        f"SELECT {USER} FROM users u WHERE u.role = $1 ORDER BY u.username", role
    )
    return [user(row) for row in rows]


def list_users(limit: int, after: str, role: str | None) -> Tx[list[tuple[User, str]]]:
    if role is None:
        rows = yield from fetch(
            f"SELECT {USER}, u.role FROM users u WHERE u.username > $1"
            " ORDER BY u.username LIMIT $2",
            after,
            limit,
        )
    else:
        rows = yield from fetch(
            f"SELECT {USER}, u.role FROM users u WHERE u.username > $1 AND u.role = $3"
            " ORDER BY u.username LIMIT $2",
            after,
            limit,
            role,
        )
    return [(user(row), str(row[4])) for row in rows]


def all_rooms(limit: int, after: str) -> Tx[list[Room]]:
    rows = yield from fetch(
        f"SELECT {ROOM} FROM rooms r WHERE r.kind <> 'direct' AND r.id > $1 ORDER BY r.id LIMIT $2",
        after,
        limit,
    )
    return [room(row) for row in rows]


def delete_room(room_id: str, now: int) -> Tx[list[str]]:
    kind = yield from fetch_value("SELECT kind FROM rooms WHERE id = $1", room_id)
    if kind is None:
        raise NotFound(f"no room {room_id!r}")
    if kind == "direct":
        raise ValueError("direct rooms are not deleted")
    rows = yield from fetch(
        "SELECT user_id FROM memberships WHERE room_id = $1 ORDER BY joined_at, user_id", room_id
    )
    # files.room_id has no foreign key: its files go the way deleted files go (housekeeping
    # removes their bytes); the cascades from rooms take the rest.
    yield from execute(
        "UPDATE files SET deleted_at = $2, updated_at = $2"
        " WHERE room_id = $1 AND deleted_at IS NULL",
        room_id,
        now,
    )
    yield from execute("DELETE FROM rooms WHERE id = $1", room_id)
    return [str(row[0]) for row in rows]


def ban(room_id: str, user_id: str, by: str, reason: str, now: int) -> Tx[bool]:
    target = yield from find_membership(room_id, user_id)
    if target is not None and target.role is Role.OWNER:
        raise Conflict(f"{user_id!r} owns room {room_id!r}: transfer the ownership first")
    if (yield from fetch_value("SELECT 1 FROM rooms WHERE id = $1", room_id)) is None:
        raise NotFound(f"no room {room_id!r}")
    yield from require_user(user_id)
    try:
        yield from execute(
            "INSERT INTO room_bans (room_id, user_id, banned_by, reason, banned_at)"
            " VALUES ($1, $2, $3, $4, $5)"
            " ON CONFLICT (room_id, user_id) DO UPDATE SET reason = $4",
            room_id,
            user_id,
            by,
            reason,
            now,
        )
    except ForeignKeyViolation as exc:
        raise NotFound(f"no room {room_id!r} or user {user_id!r}") from exc
    yield from drop_invite(room_id, user_id)
    if target is None:
        return False
    yield from execute(
        "DELETE FROM memberships WHERE room_id = $1 AND user_id = $2", room_id, user_id
    )
    return True


def unban(room_id: str, user_id: str) -> Tx[bool]:
    row = yield from fetch_one(
        "DELETE FROM room_bans WHERE room_id = $1 AND user_id = $2 RETURNING 1", room_id, user_id
    )
    return row is not None


def bans(room_id: str) -> Tx[list[Ban]]:
    rows = yield from fetch(
        "SELECT room_id, user_id, banned_by, reason, banned_at FROM room_bans"
        " WHERE room_id = $1 ORDER BY banned_at, user_id",
        room_id,
    )
    return [
        Ban(room_id=r[0], user_id=r[1], banned_by=r[2], reason=r[3], banned_at=r[4]) for r in rows
    ]


def set_muted(room_id: str, user_id: str, until: int | None) -> Tx[Membership]:
    row = yield from fetch_one(
        "UPDATE memberships SET muted_until = $3 WHERE room_id = $1 AND user_id = $2"
        f" RETURNING {bare(MEMBERSHIP)}",
        room_id,
        user_id,
        until,
    )
    if row is None:
        raise NotFound(f"user {user_id!r} is not a member of room {room_id!r}")
    return membership(row)


def set_locked(room_id: str, locked: bool) -> Tx[None]:
    row = yield from fetch_one(
        "UPDATE rooms SET locked = $2 WHERE id = $1 RETURNING 1", room_id, locked
    )
    if row is None:
        raise NotFound(f"no room {room_id!r}")


def set_member_role(room_id: str, user_id: str, role: Role) -> Tx[Membership]:
    target = yield from find_membership(room_id, user_id)
    if target is None:
        raise NotFound(f"user {user_id!r} is not a member of room {room_id!r}")
    if target.role is Role.OWNER:
        raise Conflict(f"{user_id!r} owns room {room_id!r}: transfer the ownership instead")
    yield from execute(
        "UPDATE memberships SET role = $3 WHERE room_id = $1 AND user_id = $2",
        room_id,
        user_id,
        role.value,
    )
    return attrs.evolve(target, role=role)


def transfer_ownership(room_id: str, to_user_id: str) -> Tx[str]:
    target = yield from find_membership(room_id, to_user_id)
    if target is None:
        raise NotFound(f"user {to_user_id!r} is not a member of room {room_id!r}")
    owner = yield from fetch_value(
        "SELECT user_id FROM memberships WHERE room_id = $1 AND role = 'owner'", room_id
    )
    if owner is None:
        raise NotFound(f"room {room_id!r} has no owner")
    if owner == to_user_id:
        return str(owner)
    # The new owner cannot stay muted: an owner is never restricted in their own room.
    yield from execute(
        "UPDATE memberships SET role = 'moderator' WHERE room_id = $1 AND user_id = $2",
        room_id,
        owner,
    )
    yield from execute(
        "UPDATE memberships SET role = 'owner', muted_until = NULL"
        " WHERE room_id = $1 AND user_id = $2",
        room_id,
        to_user_id,
    )
    return str(owner)


def block(blocker_id: str, blocked_id: str, now: int) -> Tx[None]:
    try:
        yield from execute(
            "INSERT INTO user_blocks (blocker_id, blocked_id, created_at) VALUES ($1, $2, $3)"
            " ON CONFLICT (blocker_id, blocked_id) DO NOTHING",
            blocker_id,
            blocked_id,
            now,
        )
    except ForeignKeyViolation as exc:
        raise NotFound(f"no user {blocker_id!r} or {blocked_id!r}") from exc


def unblock(blocker_id: str, blocked_id: str) -> Tx[bool]:
    row = yield from fetch_one(
        "DELETE FROM user_blocks WHERE blocker_id = $1 AND blocked_id = $2 RETURNING 1",
        blocker_id,
        blocked_id,
    )
    return row is not None


def blocked(blocker_id: str) -> Tx[list[str]]:
    rows = yield from fetch(
        "SELECT blocked_id FROM user_blocks WHERE blocker_id = $1 ORDER BY created_at, blocked_id",
        blocker_id,
    )
    return [row[0] for row in rows]


def blocks_between(user_ids: list[str]) -> Tx[bool]:
    if len(user_ids) < 2:
        return False
    # A handful of users (a group has at most `max_group_size`): one query per pair is
    # cheaper to read than an IN list built for two engines.
    for blocker in user_ids:
        for blocked_id in user_ids:
            if blocker != blocked_id:
                found = yield from fetch_value(
                    "SELECT 1 FROM user_blocks WHERE blocker_id = $1 AND blocked_id = $2",
                    blocker,
                    blocked_id,
                )
                if found is not None:
                    return True
    return False
