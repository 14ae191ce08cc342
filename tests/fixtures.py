"""Real node services for tests: a SQLite store in a temporary folder and running supervisors.

`open_services` builds the same `Services` a node builds (without its
gateway or HTTP listener), so a suite can serve them through whichever
front it tests.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import trio

from chorus.actors import Registry
from chorus.actors.connection import Sessions
from chorus.actors.presence import Presence, PresenceBoard
from chorus.actors.room import RoomConfig
from chorus.actors.rooms import Rooms
from chorus.auth import AuthService, Passwords, TokenSigner
from chorus.config import Settings
from chorus.persistence import open_sqlite_store
from chorus.services import Services
from chorus.supervisors import Supervisor


def cheap_passwords() -> Passwords:
    """Real argon2id, but cheap, so that registering users does not dominate a suite."""
    return Passwords(time_cost=1, memory_cost_kib=1024)


@asynccontextmanager
async def open_services(
    tmp_path: Path, *, room_config: RoomConfig | None = None, **settings: Any
) -> AsyncIterator[Services]:
    """Services on a fresh store in `tmp_path`, with the rooms and presence supervisors running.

    `settings` override `Settings` fields (ports default to 0). The
    supervisors run in this block's own nursery and are cancelled when it
    ends; then the store is closed.
    """
    given: dict[str, Any] = {"data_dir": tmp_path, "http_port": 0, "gateway_port": 0}
    config = Settings(**(given | settings))
    async with (
        open_sqlite_store(tmp_path / "chorus.db", synchronous="NORMAL") as store,
        trio.open_nursery() as nursery,
    ):
        registry = Registry()
        rooms_supervisor: Supervisor = await nursery.start(Supervisor("rooms").run)
        presence_supervisor: Supervisor = await nursery.start(Supervisor("presence").run)
        rooms = Rooms(rooms_supervisor, registry, store, room_config or RoomConfig())
        sessions = Sessions()
        presence = Presence(presence_supervisor, registry, store, rooms, PresenceBoard())
        auth = AuthService(
            store,
            TokenSigner(os.urandom(32), access_ttl=config.access_token_ttl),
            cheap_passwords(),
            refresh_ttl=config.refresh_token_ttl,
            on_revoked=sessions.revoke,
        )
        try:
            yield Services(
                settings=config,
                store=store,
                auth=auth,
                rooms=rooms,
                presence=presence,
                sessions=sessions,
            )
        finally:
            nursery.cancel_scope.cancel()
