"""Pending invitations to private rooms: made by a moderator, accepted, declined or revoked.

An invitation is not a membership: the invitee reads and posts nothing until
they accept, which turns the invitation into a membership in one
transaction. Declining and revoking delete it, so a later accept finds
nothing (the caller answers 404). Who may invite whom (moderators, not a
banned user, not into a direct room) is the caller's check; a ban deletes the
user's pending invitation to the room (see `moderation.ban`).
"""

from __future__ import annotations

from typing import Protocol

import attrs

from .._errors import NotFound
from .._model import Membership, Role, Room
from .._rows import ROOM, Row, room
from .._sql import Engine, ForeignKeyViolation, Tx, execute, fetch, fetch_one
from .rooms import add_member


@attrs.frozen(kw_only=True)
class Invitation:
    room_id: str
    user_id: str
    invited_by: str
    created_at: int


class Invites(Protocol):
    """Pending invitations to rooms."""

    async def invite(
        self, room_id: str, user_id: str, by: str, now: int
    ) -> tuple[Invitation, bool]:
        """Invite the user to the room; True when created now, False (and the stored
        invitation, unchanged) when one was pending. `NotFound` for an unknown room or user."""
        ...

    async def revoke_invite(self, room_id: str, user_id: str) -> bool:
        """Delete the pending invitation (revoked or declined); False if there was none."""
        ...

    async def room_invites(self, room_id: str) -> list[Invitation]:
        """The room's pending invitations, oldest first."""
        ...

    async def user_invites(self, user_id: str) -> list[tuple[Invitation, Room]]:
        """The user's pending invitations with their rooms, oldest first."""
        ...

    async def accept_invite(self, room_id: str, user_id: str, now: int) -> Membership | None:
        """Turn the pending invitation into a membership (role member), at once; None when
        there was no invitation (never made, declined or revoked)."""
        ...


class InvitesOnSql(Engine):
    """`Invites` for every engine: each method runs one transaction below."""

    async def invite(
        self, room_id: str, user_id: str, by: str, now: int
    ) -> tuple[Invitation, bool]:
        """See `Invites.invite`."""
        return await self._write(lambda: invite(room_id, user_id, by, now))

    async def revoke_invite(self, room_id: str, user_id: str) -> bool:
        """See `Invites.revoke_invite`."""
        return await self._write(lambda: revoke_invite(room_id, user_id), one_statement=True)

    async def room_invites(self, room_id: str) -> list[Invitation]:
        """See `Invites.room_invites`."""
        return await self._read(lambda: room_invites(room_id))

    async def user_invites(self, user_id: str) -> list[tuple[Invitation, Room]]:
        """See `Invites.user_invites`."""
        return await self._read(lambda: user_invites(user_id))

    async def accept_invite(self, room_id: str, user_id: str, now: int) -> Membership | None:
        """See `Invites.accept_invite`."""
        return await self._write(lambda: accept_invite(room_id, user_id, now))


_INVITATION = "i.room_id, i.user_id, i.invited_by, i.created_at"


def _invitation(row: Row) -> Invitation:
    return Invitation(
        room_id=str(row[0]),
        user_id=str(row[1]),
        invited_by=str(row[2]),
        created_at=int(row[3]),
    )


def invite(room_id: str, user_id: str, by: str, now: int) -> Tx[tuple[Invitation, bool]]:
    try:
        row = yield from fetch_one(
            "INSERT INTO room_invites (room_id, user_id, invited_by, created_at)"
            " VALUES ($1, $2, $3, $4) ON CONFLICT (room_id, user_id) DO NOTHING RETURNING 1",
            room_id,
            user_id,
            by,
            now,
        )
    except ForeignKeyViolation as exc:
        raise NotFound(f"no room {room_id!r} or user {user_id!r}") from exc
    if row is not None:
        made = Invitation(room_id=room_id, user_id=user_id, invited_by=by, created_at=now)
        return made, True
    stored = yield from fetch_one(
        f"SELECT {_INVITATION} FROM room_invites i WHERE i.room_id = $1 AND i.user_id = $2",
        room_id,
        user_id,
    )
    assert stored is not None  # the conflicting row; invitations are deleted, never updated
    return _invitation(stored), False


def revoke_invite(room_id: str, user_id: str) -> Tx[bool]:
    row = yield from fetch_one(
        "DELETE FROM room_invites WHERE room_id = $1 AND user_id = $2 RETURNING 1",
        room_id,
        user_id,
    )
    return row is not None


def room_invites(room_id: str) -> Tx[list[Invitation]]:
    rows = yield from fetch(
        f"SELECT {_INVITATION} FROM room_invites i WHERE i.room_id = $1"
        " ORDER BY i.created_at, i.user_id",
        room_id,
    )
    return [_invitation(row) for row in rows]


def user_invites(user_id: str) -> Tx[list[tuple[Invitation, Room]]]:
    rows = yield from fetch(
        f"SELECT {_INVITATION}, {ROOM} FROM room_invites i JOIN rooms r ON r.id = i.room_id"
        " WHERE i.user_id = $1 ORDER BY i.created_at, i.room_id",
        user_id,
    )
    return [(_invitation(row[:4]), room(row[4:])) for row in rows]


def accept_invite(room_id: str, user_id: str, now: int) -> Tx[Membership | None]:
    taken = yield from revoke_invite(room_id, user_id)
    if not taken:
        return None
    return (yield from add_member(room_id, user_id, Role.MEMBER, now))


def drop_invite(room_id: str, user_id: str) -> Tx[None]:
    """Delete a pending invitation inside another transaction (a ban)."""
    yield from execute(
        "DELETE FROM room_invites WHERE room_id = $1 AND user_id = $2", room_id, user_id
    )
