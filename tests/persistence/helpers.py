"""Shortcuts for building test data through the `Store` protocol only."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import AbstractAsyncContextManager
from typing import TypeAlias

from chorus.persistence import Appended, Message, NewMessage, Role, Room, RoomKind, Store, User

OpenStore: TypeAlias = Callable[[], AbstractAsyncContextManager[Store]]
"""The `open_store` fixture: opens a fresh, empty store of the backend under test."""

T0 = 1_700_000_000_000
"""A fixed "now" (ms): tests pass times explicitly, so nothing depends on the clock."""


async def make_user(store: Store, username: str, *, password_hash: str | None = "hash") -> User:
    return await store.create_user(username, username.title(), password_hash, T0)


async def make_room(
    store: Store, owner: User, name: str = "general", kind: RoomKind = RoomKind.PUBLIC
) -> Room:
    return await store.create_room(name, kind, owner.id, T0)


def texts(sender: User, *client_ids: str, at: int = T0) -> list[NewMessage]:
    """One message per client id, whose body names the client id."""
    return [
        NewMessage(sender_id=sender.id, body=f"body of {cid}", client_id=cid, created_at=at)
        for cid in client_ids
    ]


async def say(
    store: Store,
    room: Room,
    sender: User,
    body: str,
    client_id: str,
    *,
    at: int = T0,
    thread: Message | None = None,
    mentions: Iterable[str] = (),
    mentions_room: bool = False,
) -> Appended:
    """Append one message (optionally a reply, or mentioning usernames or @room)."""
    [appended] = await store.append_messages(
        room.id,
        [
            NewMessage(
                sender_id=sender.id,
                body=body,
                client_id=client_id,
                created_at=at,
                thread_id=None if thread is None else thread.id,
                mentions=frozenset(mentions),
                mentions_room=mentions_room,
            )
        ],
    )
    return appended


async def join(store: Store, room: Room, *users: User, role: Role = Role.MEMBER) -> None:
    for user in users:
        await store.add_member(room.id, user.id, role, T0)


async def current(store: Store, message: Message) -> Message:
    """The message as stored now."""
    found = await store.get_message(message.id)
    assert found is not None
    return found
