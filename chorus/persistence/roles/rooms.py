"""Rooms and memberships: creating rooms, direct and group rooms, who is in which room."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol

from .._errors import Conflict, NotFound
from .._model import Membership, NotifyLevel, Role, Room, RoomKind, new_id
from .._rows import MEMBERSHIP, ROOM, ROOM_WIDTH, bare, check_limit, membership, room
from .._sql import Engine, ForeignKeyViolation, Tx, execute, fetch, fetch_one, fetch_value


class Rooms(Protocol):
    """Rooms, their settings, and who is a member with which role."""

    async def create_room(
        self, name: str, kind: RoomKind, creator_id: str, now: int, *, bot_run: str | None = None
    ) -> Room:
        """Create a public or private room with `creator_id` as its owner.

        Raises `ValueError` for `RoomKind.DIRECT` (use `direct_room`) and
        `NotFound` if the creator does not exist. `bot_run` marks a room of
        the bot swarm run with that id: `public_rooms` never lists it (see
        `remove_bot_run`).
        """
        ...

    async def get_room(self, room_id: str) -> Room | None:
        """The room with this id, or None."""
        ...

    async def rooms_of(self, user_id: str) -> list[tuple[Room, Membership]]:
        """Every room the user is a member of, with the membership, oldest joined first."""
        ...

    async def public_rooms(self, limit: int, after_id: str | None = None) -> list[Room]:
        """Up to `limit` public rooms in id order, starting after `after_id`.

        Rooms of bot swarm runs (`create_room(bot_run=...)`) are not listed.

        Page through all of them by passing the last id of one page as
        `after_id` of the next; a page shorter than `limit` is the last.
        """
        ...

    async def add_member(self, room_id: str, user_id: str, role: Role, now: int) -> Membership:
        """Make the user a member of the room.

        Idempotent: an existing membership is returned unchanged (its role is
        not updated). Raises `NotFound` if the room or user does not exist and
        `Conflict` when adding a user who is not one of a direct (or group)
        room's users.
        """
        ...

    async def remove_member(self, room_id: str, user_id: str) -> bool:
        """End a membership; False if there was none."""
        ...

    async def get_membership(self, room_id: str, user_id: str) -> Membership | None:
        """The user's membership of the room, or None."""
        ...

    async def members(self, room_id: str) -> list[Membership]:
        """Every membership of the room, oldest joined first (empty for an unknown room)."""
        ...

    async def member_ids(self, room_id: str) -> list[str]:
        """The ids of the room's members in `members`' order, without the rest of their
        memberships (a join's presence snapshot needs only these)."""
        ...

    async def direct_room(
        self, a: str, b: str, now: int, *, encrypted: bool = False
    ) -> tuple[Room, bool]:
        """The direct room between users `a` and `b`, and whether this call created it.

        With `encrypted`, their end-to-end encrypted room: another room than the
        plain one, with `Room.encrypted` set for good (the same for `group_room`).

        Symmetric (`(a, b)` and `(b, a)` give the same room) and safe under
        concurrency: two callers never create two rooms for the same pair.
        A new room has both users as members with `Role.MEMBER`, is created by
        `a` and has an empty name. `a == b` gives a room with one member.
        Raises `NotFound` if either user does not exist.
        """
        ...

    async def group_room(
        self, creator_id: str, member_ids: Sequence[str], now: int, *, encrypted: bool = False
    ) -> tuple[Room, bool]:
        """The group direct room of `creator_id` and `member_ids`, and whether this call made it.

        A `RoomKind.DIRECT` room whose users are the set of `creator_id` and
        `member_ids` (duplicates ignored), which must have at least three
        users, else `ValueError` (two users: use `direct_room`). The same
        set of users, in any order and by any creator, always gets the same
        room, also under concurrency. Its membership is fixed: `add_member`
        refuses anyone else (`Conflict`). A new room has every user as a
        member with `Role.MEMBER`, is created by `creator_id` and has an
        empty name. Raises `NotFound` if a user does not exist. Size limits
        are the caller's job.
        """
        ...

    async def set_notify_level(self, room_id: str, user_id: str, level: NotifyLevel) -> Membership:
        """Set which of the room's messages notify the member; return the updated membership.

        Applies to messages appended afterwards. Raises `NotFound` if the
        user is not a member of the room.
        """
        ...

    async def set_read_receipts(self, room_id: str, enabled: bool) -> Room:
        """Set `Room.read_receipts`; return the updated room. `NotFound` for an unknown room."""
        ...


class RoomsOnSql(Engine):
    """`Rooms` for every engine: each method runs one transaction below."""

    async def create_room(
        self, name: str, kind: RoomKind, creator_id: str, now: int, *, bot_run: str | None = None
    ) -> Room:
        """See `Rooms.create_room`."""
        if kind is RoomKind.DIRECT:
            raise ValueError("direct rooms are created by direct_room()")
        new = Room(
            id=new_id("r"), name=name, kind=kind, created_by=creator_id, created_at=now, last_seq=0
        )
        return await self._write(lambda: create_room(new, bot_run))

    async def get_room(self, room_id: str) -> Room | None:
        """See `Rooms.get_room`."""
        return await self._read(lambda: find_room(room_id))

    async def rooms_of(self, user_id: str) -> list[tuple[Room, Membership]]:
        """See `Rooms.rooms_of`."""
        return await self._read(lambda: rooms_of(user_id))

    async def public_rooms(self, limit: int, after_id: str | None = None) -> list[Room]:
        """See `Rooms.public_rooms`."""
        check_limit(limit)
        return await self._read(lambda: public_rooms(limit, "" if after_id is None else after_id))

    async def add_member(self, room_id: str, user_id: str, role: Role, now: int) -> Membership:
        """See `Rooms.add_member`."""
        return await self._write(lambda: add_member(room_id, user_id, role, now))

    async def remove_member(self, room_id: str, user_id: str) -> bool:
        """See `Rooms.remove_member`."""
        return await self._write(lambda: remove_member(room_id, user_id), one_statement=True)

    async def get_membership(self, room_id: str, user_id: str) -> Membership | None:
        """See `Rooms.get_membership`."""
        return await self._read(lambda: find_membership(room_id, user_id))

    async def members(self, room_id: str) -> list[Membership]:
        """See `Rooms.members`."""
        return await self._read(lambda: members(room_id))

    async def member_ids(self, room_id: str) -> list[str]:
        """See `Rooms.member_ids`."""
        return await self._read(lambda: member_ids(room_id))

    async def direct_room(
        self, a: str, b: str, now: int, *, encrypted: bool = False
    ) -> tuple[Room, bool]:
        """See `Rooms.direct_room`."""
        # Not `group_key`: the key of a room of one user (a == b) has always been "a:a".
        key = _encrypted_key(":".join(sorted((a, b))), encrypted)
        users = list(dict.fromkeys((a, b)))
        return await self._write(lambda: direct_room(a, users, key, now, encrypted))

    async def group_room(
        self, creator_id: str, member_ids: Sequence[str], now: int, *, encrypted: bool = False
    ) -> tuple[Room, bool]:
        """See `Rooms.group_room`."""
        users = sorted({creator_id, *member_ids})
        if len(users) < 3:
            raise ValueError("a group room needs at least three users; use direct_room for two")
        key = _encrypted_key(group_key(users), encrypted)
        return await self._write(lambda: direct_room(creator_id, users, key, now, encrypted))

    async def set_notify_level(self, room_id: str, user_id: str, level: NotifyLevel) -> Membership:
        """See `Rooms.set_notify_level`."""
        return await self._write(
            lambda: set_notify_level(room_id, user_id, level), one_statement=True
        )

    async def set_read_receipts(self, room_id: str, enabled: bool) -> Room:
        """See `Rooms.set_read_receipts`."""
        return await self._write(lambda: set_read_receipts(room_id, enabled), one_statement=True)


def group_key(user_ids: Iterable[str]) -> str:
    """The `rooms.direct_key` of the direct room of exactly these users.

    The sorted distinct ids joined by ":" (ids never contain ":": a prefix,
    "_" and url-safe characters), so every order of the same users gives the
    same key; for two users it is the key `direct_room` uses.
    """
    return ":".join(sorted(set(user_ids)))


def _encrypted_key(key: str, encrypted: bool) -> str:
    """The `direct_key` of the encrypted room of the users of `key` ("e2e:" and `key`),
    or `key` itself: the encrypted and the plain room of the same users are two rooms."""
    return f"e2e:{key}" if encrypted else key


def create_room(new: Room, bot_run: str | None) -> Tx[Room]:
    try:
        yield from _insert_room(new, direct_key=None, bot_run=bot_run)
    except ForeignKeyViolation as exc:
        raise NotFound(f"no user {new.created_by!r}") from exc
    yield from _insert_membership(new.id, new.created_by, Role.OWNER, new.created_at)
    return new


def find_room(room_id: str) -> Tx[Room | None]:
    row = yield from fetch_one(f"SELECT {ROOM} FROM rooms r WHERE r.id = $1", room_id)
    return None if row is None else room(row)


def rooms_of(user_id: str) -> Tx[list[tuple[Room, Membership]]]:
    found = yield from fetch(
        f"SELECT {ROOM}, {MEMBERSHIP} FROM memberships m JOIN rooms r ON r.id = m.room_id"
        " WHERE m.user_id = $1 ORDER BY m.joined_at, m.room_id",
        user_id,
    )
    return [(room(row[:ROOM_WIDTH]), membership(row[ROOM_WIDTH:])) for row in found]


def public_rooms(limit: int, after_id: str) -> Tx[list[Room]]:
    found = yield from fetch(
        f"SELECT {ROOM} FROM rooms r"
        " WHERE r.kind = 'public' AND r.bot_run IS NULL AND r.id > $1 ORDER BY r.id LIMIT $2",
        after_id,
        limit,
    )
    return [room(row) for row in found]


def add_member(room_id: str, user_id: str, role: Role, now: int) -> Tx[Membership]:
    existing = yield from find_membership(room_id, user_id)
    if existing is not None:
        return existing
    row = yield from fetch_one("SELECT direct_key FROM rooms WHERE id = $1", room_id)
    if row is None:
        raise NotFound(f"no room {room_id!r}")
    yield from require_user(user_id)
    direct_key: str | None = row[0]
    if direct_key is not None and user_id not in direct_key.split(":"):
        raise Conflict(f"room {room_id!r} is a direct room of other users")
    try:
        inserted = yield from fetch_value(
            "INSERT INTO memberships (room_id, user_id, role, joined_at, read_seq)"
            " VALUES ($1, $2, $3, $4, 0) ON CONFLICT (room_id, user_id) DO NOTHING RETURNING 1",
            room_id,
            user_id,
            role.value,
            now,
        )
    except ForeignKeyViolation as exc:
        raise NotFound(f"no user {user_id!r}") from exc
    if inserted is not None:
        return Membership(room_id=room_id, user_id=user_id, role=role, joined_at=now, read_seq=0)
    # A concurrent add_member of the same pair committed first (PostgreSQL).
    raced = yield from find_membership(room_id, user_id)
    assert raced is not None
    return raced


def remove_member(room_id: str, user_id: str) -> Tx[bool]:
    row = yield from fetch_one(
        "DELETE FROM memberships WHERE room_id = $1 AND user_id = $2 RETURNING 1",
        room_id,
        user_id,
    )
    return row is not None


def find_membership(room_id: str, user_id: str) -> Tx[Membership | None]:
    row = yield from fetch_one(
        f"SELECT {MEMBERSHIP} FROM memberships m WHERE m.room_id = $1 AND m.user_id = $2",
        room_id,
        user_id,
    )
    return None if row is None else membership(row)


_OF_ROOM = "FROM memberships m WHERE m.room_id = $1 ORDER BY m.joined_at, m.user_id"
"""A room's memberships in `members`' order (`member_ids` keeps the same one)."""


def members(room_id: str) -> Tx[list[Membership]]:
    found = yield from fetch(f"SELECT {MEMBERSHIP} {_OF_ROOM}", room_id)
    return [membership(row) for row in found]


def member_ids(room_id: str) -> Tx[list[str]]:
    found = yield from fetch(f"SELECT m.user_id {_OF_ROOM}", room_id)
    return [row[0] for row in found]


def direct_room(
    creator_id: str, users: list[str], key: str, now: int, encrypted: bool
) -> Tx[tuple[Room, bool]]:
    """The direct room of exactly `users` (its `direct_key` is `key`), created if missing."""
    select = f"SELECT {ROOM} FROM rooms r WHERE r.direct_key = $1"
    row = yield from fetch_one(select, key)
    if row is not None:
        return room(row), False
    for user_id in users:
        yield from require_user(user_id)
    new = Room(
        id=new_id("r"),
        name="",
        kind=RoomKind.DIRECT,
        created_by=creator_id,
        created_at=now,
        last_seq=0,
        encrypted=encrypted,
    )
    # On PostgreSQL ON CONFLICT waits for a concurrent creator of the same key
    # to finish; if it committed, its room is the one (read again: READ
    # COMMITTED gives each statement a fresh snapshot).
    inserted = yield from _insert_room(new, direct_key=key, bot_run=None)
    if not inserted:
        row = yield from fetch_one(select, key)
        assert row is not None
        return room(row), False
    for user_id in users:
        yield from _insert_membership(new.id, user_id, Role.MEMBER, now)
    return new, True


def set_notify_level(room_id: str, user_id: str, level: NotifyLevel) -> Tx[Membership]:
    row = yield from fetch_one(
        "UPDATE memberships SET notify = $3 WHERE room_id = $1 AND user_id = $2"
        f" RETURNING {bare(MEMBERSHIP)}",
        room_id,
        user_id,
        level.value,
    )
    if row is None:
        raise NotFound(f"user {user_id!r} is not a member of room {room_id!r}")
    return membership(row)


def set_read_receipts(room_id: str, enabled: bool) -> Tx[Room]:
    row = yield from fetch_one(
        f"UPDATE rooms SET read_receipts = $2 WHERE id = $1 RETURNING {bare(ROOM)}",
        room_id,
        enabled,
    )
    if row is None:
        raise NotFound(f"no room {room_id!r}")
    return room(row)


def require_user(user_id: str) -> Tx[None]:
    """`NotFound` unless the user exists."""
    if (yield from fetch_value("SELECT 1 FROM users WHERE id = $1", user_id)) is None:
        raise NotFound(f"no user {user_id!r}")


def _insert_room(new: Room, *, direct_key: str | None, bot_run: str | None) -> Tx[bool]:
    """Insert the room; False when a room with its `direct_key` exists already."""
    inserted = yield from fetch_value(
        "INSERT INTO rooms"
        " (id, name, kind, created_by, created_at, last_seq, direct_key, bot_run, encrypted)"
        " VALUES ($1, $2, $3, $4, $5, 0, $6, $7, $8)"
        " ON CONFLICT (direct_key) DO NOTHING RETURNING 1",
        new.id,
        new.name,
        new.kind.value,
        new.created_by,
        new.created_at,
        direct_key,
        bot_run,
        new.encrypted,
    )
    return inserted is not None


def _insert_membership(room_id: str, user_id: str, role: Role, now: int) -> Tx[None]:
    yield from execute(
        "INSERT INTO memberships (room_id, user_id, role, joined_at, read_seq)"
        " VALUES ($1, $2, $3, $4, 0)",
        room_id,
        user_id,
        role.value,
        now,
    )
