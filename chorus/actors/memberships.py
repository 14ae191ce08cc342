"""Membership changes reach every open connection of the user, on every node.

A membership is written over HTTP (a room created, a direct room opened, an
invitation, a join, a leave, a removal), but the user's sockets may be on any
node. `Memberships.added` and `Memberships.removed` (and `invited`, for a
pending invitation) tell this node's connections of the user at once and
publish the change on the bus for the others. A connection passes
`room_added` (and `room_invited`) on to its client (which decides whether
to subscribe); on `room_removed` the connection stops accepting
frames about the room and the room's actor drops its subscriptions, sending
`room_removed` as the last frame of the room.

Like notifications this is the live path, best effort over the bus (Redis
pub/sub may lose a publication): the store has the truth, `GET /rooms` lists
it, and a `resume` naming a room the user has left is answered with
`room_removed`.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Callable, Iterable, Sequence
from typing import Protocol

import orjson
import structlog
import trio

from chorus import protocol
from chorus.cluster import Bus
from chorus.persistence import Room

from .rooms import Rooms

_log = structlog.get_logger("chorus.memberships")

MEMBERSHIPS_TOPIC = "memberships"
"""Bus topic every node listens to: `<origin node> <user ids JSON> <frame JSON>`."""
QUEUE_LIMIT = 10_000
"""Changes from other nodes waiting to be applied here; beyond it they are dropped (logged)."""


class Member(Protocol):
    """What a connection offers (a `ChatConnection` fits)."""

    @property
    def id(self) -> str: ...

    def send(self, payload: bytes) -> bool: ...

    def forget_room(self, room_id: str) -> None:
        """The membership ended: refuse the connection's frames about `room_id` from now on."""


ConnectionsOf = Callable[[str], Sequence[Member]]
Change = protocol.RoomAdded | protocol.RoomRemoved | protocol.RoomInvited


class Memberships:
    """Delivers `room_added`, `room_removed` and `room_invited` to users' connections here
    and elsewhere.

    `connections_of(user_id)` gives the user's connections on this node. Each
    change reaches each connection once: the node that made it applies it
    here and ignores its own publication; the others apply it from the bus.
    """

    def __init__(self, connections_of: ConnectionsOf, rooms: Rooms, bus: Bus | None) -> None:
        self._connections_of = connections_of
        self._rooms = rooms
        self._bus = bus
        self._origin = secrets.token_hex(6).encode()
        """Tells this node's envelopes apart on the bus."""
        self._incoming, self._received = trio.open_memory_channel[tuple[list[str], Change, bytes]](
            QUEUE_LIMIT
        )

    async def added(self, user_ids: Iterable[str], room: Room, *, seq: int, by: str) -> None:
        """`user_ids` became members of `room`, whose latest seq just before was `seq`."""
        frame = protocol.RoomAdded(
            room=room.id, name=room.name, kind=room.kind.value, seq=seq, by=by
        )
        await self._publish(list(user_ids), frame)

    async def invited(self, user_id: str, room: Room, *, by: str) -> None:
        """`by` invited `user_id` to `room` (a pending invitation, not a membership yet)."""
        await self._publish([user_id], protocol.RoomInvited(room=room.id, name=room.name, by=by))

    async def removed(self, user_id: str, room_id: str, *, by: str) -> None:
        """`user_id` is no longer a member of `room_id` (they left, or `by` removed them)."""
        await self._publish([user_id], protocol.RoomRemoved(room=room_id, by=by))

    def delivered_elsewhere(self, envelope: bytes) -> None:
        """A bus envelope from `MEMBERSHIPS_TOPIC`: queue it for this node's connections."""
        origin, _, rest = envelope.partition(b" ")
        if origin == self._origin:
            return  # applied here already
        users, _, payload = rest.partition(b" ")
        try:
            frame = protocol.decode_server_frame(payload)
            user_ids = orjson.loads(users)
            if not isinstance(frame, Change) or not isinstance(user_ids, list):
                raise ValueError("not a membership change")
            self._incoming.send_nowait((user_ids, frame, payload))
        except trio.WouldBlock:
            _log.warning("memberships.dropped", reason="queue full")
        except (protocol.ProtocolError, ValueError) as exc:  # not from a Chorus node of ours
            _log.warning("memberships.dropped", reason="malformed", error=str(exc))

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Apply the changes other nodes published, in order, until cancelled."""
        task_status.started()
        if self._bus is None:
            await trio.sleep(math.inf)
        async for user_ids, frame, payload in self._received:
            await self._apply(user_ids, frame, payload)

    async def _publish(self, user_ids: list[str], frame: Change) -> None:
        payload = protocol.encode(frame)
        await self._apply(user_ids, frame, payload)
        if self._bus is None:
            return
        envelope = b" ".join((self._origin, orjson.dumps(user_ids), payload))
        try:
            await self._bus.publish(MEMBERSHIPS_TOPIC, envelope)
        except Exception as exc:  # best effort: the store has the membership
            _log.warning("memberships.not_published", error=str(exc))

    async def _apply(self, user_ids: list[str], frame: Change, payload: bytes) -> None:
        """Tell this node's connections of `user_ids` (and drop subscriptions on removal)."""
        for user_id in user_ids:
            connections = self._connections_of(user_id)
            if connections and isinstance(frame, protocol.RoomRemoved):
                for connection in connections:
                    connection.forget_room(frame.room)
                # Subscribers get the frame from the room's actor, after its last event for them.
                told = await self._rooms.evict(frame.room, user_id, payload)
                connections = [c for c in connections if c.id not in told]
            for connection in connections:
                connection.send(payload)
