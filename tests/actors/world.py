"""A room of a real SQLite store, with the `Rooms` that runs its actor (see conftest)."""

from __future__ import annotations

import attrs

from chorus.actors import Registry
from chorus.actors.rooms import Rooms
from chorus.persistence import SqliteStore
from chorus.supervisors import Supervisor


@attrs.define
class World:
    store: SqliteStore
    rooms: Rooms
    registry: Registry
    room_id: str
    sender_id: str
    supervisor: Supervisor
