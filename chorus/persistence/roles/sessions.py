"""Session management: the live sessions of a user, ending all but one of them, and which
of some sessions were revoked (by a process no node heard from, such as `chorus admin`)."""

from __future__ import annotations

from typing import Protocol

from .._model import Session
from .._rows import SESSION, session
from .._sql import Engine, Tx, fetch


class SessionList(Protocol):
    """What a user sees and ends of their own sessions (issue #14)."""

    async def list_sessions(self, user_id: str, now: int) -> list[Session]:
        """The user's sessions live at `now`, oldest first."""
        ...

    async def revoke_sessions(self, user_id: str, now: int, *, keep: str | None) -> list[str]:
        """Revoke every live session of the user except `keep`; the ids revoked."""
        ...

    async def revoked_among(self, session_ids: list[str]) -> list[str]:
        """The sessions of `session_ids` that were revoked (unknown ids are left out)."""
        ...


class SessionListOnSql(Engine):
    """`SessionList` for every engine."""

    async def list_sessions(self, user_id: str, now: int) -> list[Session]:
        """See `SessionList.list_sessions`."""
        return await self._read(lambda: list_sessions(user_id, now))

    async def revoke_sessions(self, user_id: str, now: int, *, keep: str | None) -> list[str]:
        """See `SessionList.revoke_sessions`."""
        return await self._write(lambda: revoke_sessions(user_id, now, keep), one_statement=True)

    async def revoked_among(self, session_ids: list[str]) -> list[str]:
        """See `SessionList.revoked_among`."""
        return await self._read(lambda: revoked_among(session_ids))


def list_sessions(user_id: str, now: int) -> Tx[list[Session]]:
    rows = yield from fetch(
        f"SELECT {SESSION} FROM sessions s"
        " WHERE s.user_id = $1 AND s.revoked_at IS NULL AND s.expires_at > $2"
        " ORDER BY s.created_at, s.id",
        user_id,
        now,
    )
    return [session(row) for row in rows]


def revoke_sessions(user_id: str, now: int, keep: str | None) -> Tx[list[str]]:
    # Expired sessions are left alone: they are dead already, and "revoked"
    # would misstate when they ended.
    rows = yield from fetch(
        "UPDATE sessions SET revoked_at = $1"
        " WHERE user_id = $2 AND revoked_at IS NULL AND expires_at > $1 AND id <> $3"
        " RETURNING id",
        now,
        user_id,
        keep or "",
    )
    return sorted(row[0] for row in rows)


def revoked_among(session_ids: list[str]) -> Tx[list[str]]:
    rows = yield from fetch(
        "SELECT id FROM sessions WHERE id = ANY($1) AND revoked_at IS NOT NULL", session_ids
    )
    return sorted(row[0] for row in rows)
