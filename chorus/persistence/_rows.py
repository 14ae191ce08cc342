"""Turning a backend's result rows (tuples or records, columns in a fixed order) into models."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeAlias

from ._model import Membership, Message, Role, Room, RoomKind, Session, User

Row: TypeAlias = Sequence[Any]

USER = "u.id, u.username, u.display_name, u.created_at"
SESSION = "s.id, s.user_id, s.created_at, s.expires_at, s.revoked_at"
ROOM = "r.id, r.name, r.kind, r.created_by, r.created_at, r.last_seq"
MEMBERSHIP = "m.room_id, m.user_id, m.role, m.joined_at, m.read_seq"
MESSAGE = (
    "msg.id, msg.room_id, msg.seq, msg.sender_id, msg.body, msg.client_id,"
    " msg.created_at, msg.edited_at"
)
"""The column lists each converter below expects, with the table aliases both backends use."""


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
    )


def membership(row: Row) -> Membership:
    return Membership(
        room_id=row[0], user_id=row[1], role=Role(row[2]), joined_at=row[3], read_seq=row[4]
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
    )


def check_limit(limit: int) -> None:
    if limit < 0:
        raise ValueError(f"limit must be >= 0, not {limit}")
