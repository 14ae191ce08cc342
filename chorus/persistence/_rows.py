"""Turning a backend's result rows (tuples or records, columns in a fixed order) into models."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeAlias

from ._model import (
    Edit,
    EventKind,
    Membership,
    Message,
    Notification,
    NotificationKind,
    NotifyLevel,
    Role,
    Room,
    RoomKind,
    Session,
    User,
)

Row: TypeAlias = Sequence[Any]

USER = "u.id, u.username, u.display_name, u.created_at"
SESSION = "s.id, s.user_id, s.created_at, s.expires_at, s.revoked_at"
ROOM = "r.id, r.name, r.kind, r.created_by, r.created_at, r.last_seq, r.read_receipts"
ROOM_WIDTH = 7
MEMBERSHIP = "m.room_id, m.user_id, m.role, m.joined_at, m.read_seq, m.notify"
MESSAGE = (
    "msg.id, msg.room_id, msg.seq, msg.sender_id, msg.body, msg.client_id,"
    " msg.created_at, msg.edited_at, msg.kind, msg.target_id, msg.thread_id,"
    " msg.deleted_at, msg.deleted_by, msg.reply_count, msg.last_reply_at"
)
MESSAGE_WIDTH = 15
NOTIFICATION = "n.id, n.user_id, n.room_id, n.message_id, n.seq, n.kind, n.created_at, n.read_at"
EDIT = "e.body, e.written_at, e.replaced_at, e.seq"
"""The column lists each converter below expects, with the table aliases both backends
use; `*_WIDTH` is the number of columns, for rows that join several lists."""


# -- statements both backends run, with PostgreSQL's $n parameters -----------------

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

ERASE_MESSAGE = (
    "DELETE FROM message_edits WHERE message_id = $1",
    "UPDATE messages SET body = '' WHERE target_id = $1 AND kind = 'edit'",
    "DELETE FROM reactions WHERE message_id = $1",
    "DELETE FROM notifications WHERE message_id = $1",
)
"""What deleting message $1 erases besides its own row: the texts it had, and what
pointed at it (its mention rows are keyed by seq, see the backends)."""


# -- rows ------------------------------------------------------------------------


def user(row: Row) -> User:
    return User(id=row[0], username=row[1], display_name=row[2], created_at=row[3])


def session(row: Row) -> Session:
    return Session(
        id=row[0], user_id=row[1], created_at=row[2], expires_at=row[3], revoked_at=row[4]
    )


def room(row: Row) -> Room:
    return Room(
        id=row[0],
        name=row[1],
        kind=RoomKind(row[2]),
        created_by=row[3],
        created_at=row[4],
        last_seq=row[5],
        read_receipts=bool(row[6]),
    )


def membership(row: Row) -> Membership:
    return Membership(
        room_id=row[0],
        user_id=row[1],
        role=Role(row[2]),
        joined_at=row[3],
        read_seq=row[4],
        notify=NotifyLevel(row[5]),
    )


def message(row: Row) -> Message:
    return Message(
        id=row[0],
        room_id=row[1],
        seq=row[2],
        sender_id=row[3],
        body=row[4],
        client_id=row[5],
        created_at=row[6],
        edited_at=row[7],
        kind=EventKind(row[8]),
        target_id=row[9],
        thread_id=row[10],
        deleted_at=row[11],
        deleted_by=row[12],
        reply_count=row[13],
        last_reply_at=row[14],
    )


def notification(row: Row) -> Notification:
    return Notification(
        id=row[0],
        user_id=row[1],
        room_id=row[2],
        message_id=row[3],
        seq=row[4],
        kind=NotificationKind(row[5]),
        created_at=row[6],
        read_at=row[7],
    )


def edit(row: Row) -> Edit:
    return Edit(body=row[0], written_at=row[1], replaced_at=row[2], seq=row[3])


def check_limit(limit: int, name: str = "limit") -> None:
    if limit < 0:
        raise ValueError(f"{name} must be >= 0, not {limit}")
