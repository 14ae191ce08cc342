"""`Memberships` between nodes: what the bus brings is applied once, and junk is dropped."""

from __future__ import annotations

import attrs
import orjson
import trio

from chorus import protocol
from chorus.actors.memberships import Memberships
from chorus.cluster import LocalBus
from chorus.persistence import Room, RoomKind
from tests.actors.world import World
from tests.recorder import Recorder


@attrs.define(eq=False)
class Device(Recorder):
    """A connection as `Memberships` sees it: it also forgets rooms."""

    forgotten: list[str] = attrs.field(factory=list)

    def forget_room(self, room_id: str) -> None:
        self.forgotten.append(room_id)


ROOM = Room(id="r_1", name="ops", kind=RoomKind.PRIVATE, created_by="u_a", created_at=0, last_seq=7)


async def test_changes_from_another_node_are_applied_and_malformed_ones_dropped(
    world: World, nursery: trio.Nursery
) -> None:
    bus = LocalBus()
    phone = Device("phone", user_id="u_bob")
    here = Memberships(lambda user: [phone] if user == "u_bob" else [], world.rooms, bus)
    there = Memberships(lambda user: [], world.rooms, bus)
    await bus.subscribe("memberships", here.delivered_elsewhere)
    await bus.subscribe("memberships", there.delivered_elsewhere)
    await nursery.start(here.run)
    for junk in (b"x", b'x ["u_bob"] {"type": "pong", "nonce": null}', b"x {} {}"):
        here.delivered_elsewhere(junk)
    await there.added(["u_bob"], ROOM, seq=7, by="u_a")
    await there.removed("u_bob", ROOM.id, by="u_a")
    await phone.wait_for(1, protocol.RoomRemoved)
    assert phone.frames == [
        protocol.RoomAdded(room="r_1", name="ops", kind="private", seq=7, by="u_a"),
        protocol.RoomRemoved(room="r_1", by="u_a"),
    ]
    assert phone.forgotten == ["r_1"]


async def test_a_nodes_own_changes_are_applied_once(world: World, nursery: trio.Nursery) -> None:
    bus = LocalBus()
    phone = Device("phone", user_id="u_bob")
    here = Memberships(lambda user: [phone], world.rooms, bus)
    await bus.subscribe("memberships", here.delivered_elsewhere)
    await nursery.start(here.run)
    await here.added(["u_bob"], ROOM, seq=7, by="u_a")
    # Its own envelope came back over the bus (a LocalBus delivers at once) and was ignored.
    other = orjson.dumps(["u_bob"])
    here.delivered_elsewhere(
        b"elsewhere " + other + b" " + protocol.encode(protocol.RoomRemoved(room="r_1"))
    )
    await phone.wait_for(1, protocol.RoomRemoved)
    assert [type(f) for f in phone.frames] == [protocol.RoomAdded, protocol.RoomRemoved]
