"""Shortcuts for building test data through the `Store` protocol only."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import TypeAlias

from chorus.persistence import NewMessage, Room, RoomKind, Store, User

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
