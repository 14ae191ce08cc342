from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio

from chorus.actors import Registry
from chorus.actors.room import RoomConfig
from chorus.actors.rooms import Rooms
from chorus.persistence import RoomKind, open_sqlite_store
from chorus.supervisors import Supervisor
from tests.actors.world import World


@pytest.fixture
async def world(tmp_path: Path, nursery: trio.Nursery) -> AsyncIterator[World]:
    async with open_sqlite_store(tmp_path / "chorus.db") as store:
        sender = await store.create_user("sender", "Sender", "hash", 0)
        room = await store.create_room("general", RoomKind.PUBLIC, sender.id, 0)
        supervisor = await nursery.start(Supervisor("rooms").run)
        registry = Registry()
        rooms = Rooms(supervisor, registry, store, RoomConfig(resume_limit=5, idle_timeout=30))
        yield World(store, rooms, registry, room.id, sender.id, supervisor)
        supervisor.request_stop()
