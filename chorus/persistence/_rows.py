"""Turning a backend's result rows (tuples or records, columns in a fixed order) into models."""

from __future__ import annotations

import re
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
SESSION = (
    "s.id, s.user_id, s.created_at, s.expires_at, s.revoked_at,"
    " s.max_expires_at, s.last_seen_at, s.user_agent, s.address"
)
ROOM = "r.id, r.name, r.kind, r.created_by, r.created_at, r.last_seq, r.read_receipts, r.encrypted"
ROOM_WIDTH = 8
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


def bare(columns: str) -> str:
    """A column list above without its table aliases, for `RETURNING` (SQLite refuses them)."""
    return re.sub(r"\b\w+\.", "", columns)


# -- rows ------------------------------------------------------------------------


def user(row: Row) -> User:
    return User(id=row[0], username=row[1], display_name=row[2], created_at=row[3])


def session(row: Row) -> Session:
    return Session(
        id=row[0],
        user_id=row[1],
        created_at=row[2],
        expires_at=row[3],
        revoked_at=row[4],
        max_expires_at=row[5],
        last_seen_at=row[6],
        user_agent=row[7],
        address=row[8],
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
        encrypted=bool(row[7]),
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
