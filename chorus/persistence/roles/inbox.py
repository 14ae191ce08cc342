"""The inbox: read markers, unread counts and notifications."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from .._errors import NotFound
from .._model import Notification, Unread
from .._rows import NOTIFICATION, check_limit, notification
from .._sql import Engine, Tx, execute, fetch, fetch_one

UNREAD_COUNTS = """
SELECT ms.room_id,
    (SELECT count(*) FROM messages e
     WHERE e.room_id = ms.room_id AND e.seq > ms.read_seq
       AND e.kind = 'message' AND e.deleted_at IS NULL AND e.sender_id <> ms.user_id),
    (SELECT count(*) FROM mentions x
     WHERE x.user_id = ms.user_id AND x.room_id = ms.room_id AND x.seq > ms.read_seq)
FROM memberships ms WHERE ms.user_id = $1
"""
"""`Store.unread_counts` for user $1: (room id, unread, mentions) per membership.

The first subquery is a range scan of the messages (room_id, seq) unique
index from read_seq (each later event is visited once to check its kind,
sender and tombstone); the second a range scan of the mentions primary key
(user_id, room_id, seq). Mention rows of deleted messages are removed, so
they need no join.
"""


class Inbox(Protocol):
    """What each member has read, and what is waiting for them."""

    async def advance_read_seq(self, room_id: str, user_id: str, seq: int) -> int:
        """Move the member's read marker forward to `seq`; return the stored marker.

        Never moves it backwards, and never past the room's `last_seq`.
        Raises `NotFound` if the user is not a member of the room.
        """
        ...

    async def unread_counts(self, user_id: str) -> dict[str, Unread]:
        """What the user has not read, for every room they are a member of (zeros included).

        Exact at the moment of the call: `Unread.unread` counts the MESSAGE
        events (thread replies included) after the member's `read_seq` that
        another user sent and that are not deleted; `Unread.mentions` counts
        the messages after `read_seq` that mention the member (by name or
        @room, at send time: edits do not change mentions; deletes remove
        them). Cost per room: one range scan of the (room, seq) index from
        `read_seq`, visiting each later event once, and one range scan of
        the member's mention rows from `read_seq`; rooms read to the end cost
        one index probe each. An unknown user has no rooms: `{}`.
        """
        ...

    async def notifications(
        self,
        user_id: str,
        *,
        limit: int,
        before_id: str | None = None,
        unread_only: bool = False,
    ) -> list[Notification]:
        """Up to `limit` of the user's notifications, newest first (by id).

        Page back by passing the last id of one page as `before_id`.
        Notifications of deleted messages are gone. `ValueError` if `limit` < 0.
        """
        ...

    async def mark_notifications_read(
        self, user_id: str, ids: Sequence[str] | None, now: int
    ) -> int:
        """Mark these (None: all) unread notifications of the user read at `now`.

        Returns how many changed; ids of other users' notifications, unknown
        ids and already read ones are skipped.
        """
        ...


class InboxOnSql(Engine):
    """`Inbox` for every engine: each method runs one transaction below."""

    async def advance_read_seq(self, room_id: str, user_id: str, seq: int) -> int:
        """See `Inbox.advance_read_seq`."""
        return await self._write(lambda: advance_read_seq(room_id, user_id, seq))

    async def unread_counts(self, user_id: str) -> dict[str, Unread]:
        """See `Inbox.unread_counts`; the query is `UNREAD_COUNTS`."""
        return await self._read(lambda: unread_counts(user_id))

    async def notifications(
        self,
        user_id: str,
        *,
        limit: int,
        before_id: str | None = None,
        unread_only: bool = False,
    ) -> list[Notification]:
        """See `Inbox.notifications`."""
        check_limit(limit)
        return await self._read(lambda: notifications(user_id, limit, before_id, unread_only))

    async def mark_notifications_read(
        self, user_id: str, ids: Sequence[str] | None, now: int
    ) -> int:
        """See `Inbox.mark_notifications_read`."""
        chosen = None if ids is None else list(ids)
        return await self._write(
            lambda: mark_notifications_read(user_id, chosen, now), one_statement=True
        )


def advance_read_seq(room_id: str, user_id: str, seq: int) -> Tx[int]:
    # The membership's lock makes concurrent advances apply one after the other.
    row = yield from fetch_one(
        "SELECT m.read_seq, r.last_seq FROM memberships m JOIN rooms r ON r.id = m.room_id"
        " WHERE m.room_id = $1 AND m.user_id = $2 FOR NO KEY UPDATE OF m",
        room_id,
        user_id,
    )
    if row is None:
        raise NotFound(f"user {user_id!r} is not a member of room {room_id!r}")
    read_seq, last_seq = int(row[0]), int(row[1])
    # Forward only, and never past the room's newest event.
    target = min(seq, last_seq)
    if target <= read_seq:
        return read_seq
    yield from execute(
        "UPDATE memberships SET read_seq = $3 WHERE room_id = $1 AND user_id = $2",
        room_id,
        user_id,
        target,
    )
    return target


def unread_counts(user_id: str) -> Tx[dict[str, Unread]]:
    found = yield from fetch(UNREAD_COUNTS, user_id)
    return {row[0]: Unread(unread=row[1], mentions=row[2]) for row in found}


def notifications(
    user_id: str, limit: int, before_id: str | None, unread_only: bool
) -> Tx[list[Notification]]:
    sql = f"SELECT {NOTIFICATION} FROM notifications n WHERE n.user_id = $1"
    params: list[object] = [user_id]
    if before_id is not None:
        params.append(before_id)
        sql += f" AND n.id < ${len(params)}"
    if unread_only:
        sql += " AND n.read_at IS NULL"
    params.append(limit)
    sql += f" ORDER BY n.id DESC LIMIT ${len(params)}"
    found = yield from fetch(sql, *params)
    return [notification(row) for row in found]


def mark_notifications_read(user_id: str, ids: list[str] | None, now: int) -> Tx[int]:
    sql = "UPDATE notifications SET read_at = $1 WHERE user_id = $2 AND read_at IS NULL"
    params: list[object] = [now, user_id]
    if ids is not None:
        sql += " AND id = ANY($3)"
        params.append(ids)
    changed = yield from fetch(sql + " RETURNING 1", *params)
    return len(changed)
