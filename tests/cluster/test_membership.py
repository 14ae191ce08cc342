"""Membership changes reach users' sockets on other `chorus serve` processes, live and once.

Two node processes share PostgreSQL and Redis; ada is connected to one, bob
and carol to the other, and none of them joins anything over the WebSocket:
the SDK follows the `room_added` events by itself.
"""

from __future__ import annotations

from pathlib import Path

from chorus import protocol
from tests.cluster.nodes import chatter, running_nodes
from tests.pgserver import PgServer
from tests.redisserver import RedisServer

DELIVERY_TIMEOUT = 15.0


async def test_dm_group_dm_and_private_room_adds_arrive_live_once_and_in_order_across_processes(
    tmp_path: Path, pg_server: PgServer, redis: RedisServer
) -> None:
    _, database_url = await pg_server.new_database()
    async with (
        running_nodes(tmp_path, 2, database_url=database_url, redis_url=redis.url) as nodes,
        chatter("ada", nodes[0].http_port, nodes[0].gateway_port) as ada,
        chatter("bob", nodes[1].http_port, nodes[1].gateway_port) as bob,
        chatter("carol", nodes[1].http_port, nodes[1].gateway_port) as carol,
    ):
        dm = await ada.api.direct_room(bob.api.user.id)
        group = await ada.api.group_room([bob.api.user.id, carol.api.user.id])
        private = await ada.api.create_room("ops", "private")
        await ada.api.invite(private.id, bob.api.user.id)
        sent: list[protocol.Message] = []
        for room in (dm, group, private):
            await ada.client.join(room.id)
            # Sent as soon as the room exists: the first messages must not be missed.
            sent += [await ada.client.send(room.id, f"{n} in {room.id}") for n in range(3)]
        to_bob = {m.id for m in sent}
        to_carol = {m.id for m in sent if m.room == group.id}
        await bob.wait_until_received(to_bob, DELIVERY_TIMEOUT)
        await carol.wait_until_received(to_carol, DELIVERY_TIMEOUT)
        for room in (dm, group, private):  # once each, in order
            in_room = [m.id for m in sent if m.room == room.id]
            assert [m.id for m in bob.received if m.room == room.id] == in_room
        assert [m.id for m in carol.received] == [m.id for m in sent if m.room == group.id]
        added = [e.room for e in bob.memberships if isinstance(e, protocol.RoomAdded)]
        assert sorted(added) == sorted([dm.id, group.id, private.id])
        assert [e.room for e in carol.memberships] == [group.id]


async def test_a_member_removed_on_one_process_is_unsubscribed_on_the_other(
    tmp_path: Path, pg_server: PgServer, redis: RedisServer
) -> None:
    _, database_url = await pg_server.new_database()
    async with (
        running_nodes(tmp_path, 2, database_url=database_url, redis_url=redis.url) as nodes,
        chatter("ada", nodes[0].http_port, nodes[0].gateway_port) as ada,
        chatter("bob", nodes[1].http_port, nodes[1].gateway_port) as bob,
    ):
        room = await ada.api.create_room("ops", "private")
        await ada.client.join(room.id)
        await ada.api.invite(room.id, bob.api.user.id)
        before = await ada.client.send(room.id, "while bob is in")
        await bob.wait_until_received({before.id}, DELIVERY_TIMEOUT)
        await ada.api.remove_member(room.id, bob.api.user.id)
        removed = protocol.RoomRemoved(room=room.id, by=ada.api.user.id)
        await bob.wait_until(lambda: removed in bob.memberships, DELIVERY_TIMEOUT)
        after = await ada.client.send(room.id, "after bob left")
        dm = await ada.api.direct_room(bob.api.user.id)
        await ada.client.join(dm.id)
        marker = await ada.client.send(dm.id, "marker")
        await bob.wait_until_received({marker.id}, DELIVERY_TIMEOUT)
        assert after.id not in {m.id for m in bob.received}
        assert bob.memberships.count(removed) == 1
