"""Membership changes made over HTTP reach the user's open sockets (and the SDK follows them).

Two in-process nodes share a SQLite file and a real Redis; the same checks
across separate `chorus serve` processes are in tests/cluster/test_membership.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

import pytest
import trio

from chorus import protocol
from chorus.client import ApiError, HttpApi, RealtimeClient, RoomFound
from tests.e2e.node import PASSWORD, ChatUser, RunningNode, chat_user, open_node
from tests.redisserver import RedisServer, running_redis
from tests.wsclient import ws_connect


@pytest.fixture
async def redis(tmp_path: Path) -> AsyncIterator[RedisServer]:
    async with running_redis(tmp_path / "redis") as server:
        yield server


@asynccontextmanager
async def two_nodes(tmp_path: Path, redis: RedisServer) -> AsyncIterator[list[RunningNode]]:
    async with (
        open_node(tmp_path, redis_url=redis.url) as node_a,
        open_node(tmp_path, redis_url=redis.url) as node_b,
    ):
        yield [node_a, node_b]


def another_device(running: RunningNode, user: ChatUser) -> AbstractAsyncContextManager[ChatUser]:
    """The same user signed in again (a second session) with its own live connection."""
    return chat_user(running, user.api.user.username, existing=True)


def frames_of(user: ChatUser, kind: type[protocol.ServerFrame], room_id: str) -> list[object]:
    return [f for f in user.received if isinstance(f, kind) and getattr(f, "room", None) == room_id]


async def test_a_direct_message_to_a_connected_user_arrives_live_without_a_join(
    tmp_path: Path,
) -> None:
    async with open_node(tmp_path) as node, chat_user(node) as ada, chat_user(node) as bob:
        dm = await ada.api.direct_room(bob.id)
        await ada.client.join(dm.id)
        first = await ada.client.send(dm.id, "hi bob")  # at once: no time for bob to subscribe
        await bob.wait_for_messages(1, dm.id)
        assert [m.id for m in bob.messages(dm.id)] == [first.id]
        added = frames_of(bob, protocol.RoomAdded, dm.id)
        assert added == [protocol.RoomAdded(room=dm.id, name="", kind="direct", seq=0, by=ada.id)]


async def test_dm_group_dm_and_private_room_adds_reach_users_on_the_other_node(
    tmp_path: Path, redis: RedisServer
) -> None:
    async with (
        two_nodes(tmp_path, redis) as (node_a, node_b),
        chat_user(node_a) as ada,
        chat_user(node_b) as bob,
        chat_user(node_b) as carol,
    ):
        dm = await ada.api.direct_room(bob.id)
        group = await ada.api.group_room([bob.id, carol.id])
        private = await ada.api.create_room("ops", "private")
        for room in (dm, group, private):
            await ada.client.join(room.id)
        before = await ada.client.send(private.id, "before bob was added")
        await ada.api.invite(private.id, bob.id)
        sent = {
            room.id: await ada.client.send(room.id, f"first in {room.id}")
            for room in (dm, group, private)
        }
        await bob.wait_for_messages(3)
        await carol.wait_for_messages(1)
        for room in (dm, group, private):
            assert [m.id for m in bob.messages(room.id)] == [sent[room.id].id]
            assert len(frames_of(bob, protocol.RoomAdded, room.id)) == 1
        assert [m.id for m in carol.messages(group.id)] == [sent[group.id].id]
        (added,) = frames_of(bob, protocol.RoomAdded, private.id)
        assert added == protocol.RoomAdded(
            room=private.id, name="ops", kind="private", seq=before.seq, by=ada.id
        )


async def test_joining_a_public_room_on_one_device_subscribes_the_others(
    tmp_path: Path, redis: RedisServer
) -> None:
    async with (
        two_nodes(tmp_path, redis) as (node_a, node_b),
        chat_user(node_a) as ada,
        chat_user(node_a) as bob,
        another_device(node_b, bob) as bob_phone,
    ):
        room = await ada.api.create_room("lobby", "public")
        await ada.client.join(room.id)
        await bob.api.join_room(room.id)  # over HTTP only: no WebSocket join anywhere
        message = await ada.client.send(room.id, "welcome")
        for device in (bob, bob_phone):
            await device.wait_for_messages(1, room.id)
            assert [m.id for m in device.messages(room.id)] == [message.id]


async def test_a_removed_member_stops_receiving_on_every_node_and_cannot_write(
    tmp_path: Path, redis: RedisServer
) -> None:
    async with (
        two_nodes(tmp_path, redis) as (node_a, node_b),
        chat_user(node_a) as ada,
        chat_user(node_b) as bob,
        another_device(node_a, bob) as bob_laptop,
    ):
        room = await ada.api.create_room("ops", "private")
        await ada.client.join(room.id)
        await ada.api.invite(room.id, bob.id)
        await ada.client.send(room.id, "while bob is in")
        for device in (bob, bob_laptop):
            await device.wait_for_messages(1, room.id)
        await ada.api.remove_member(room.id, bob.id)
        for device in (bob, bob_laptop):
            removed = await device.wait_for(lambda f: isinstance(f, protocol.RoomRemoved))
            assert removed == protocol.RoomRemoved(room=room.id, by=ada.id)
        await ada.client.send(room.id, "after bob left")
        dm = await ada.api.direct_room(bob.id)
        await ada.client.join(dm.id)
        await ada.client.send(dm.id, "marker")
        await bob.wait_for_messages(1, dm.id)
        assert [m.body for m in bob.messages(room.id)] == ["while bob is in"]
        with pytest.raises(ApiError) as refused:
            await bob.client.send(room.id, "still here?")
        assert refused.value.code == protocol.ErrorCode.NOT_JOINED
        for device in (bob, bob_laptop):
            assert len(frames_of(device, protocol.RoomRemoved, room.id)) == 1


async def test_leaving_on_one_device_is_shown_on_the_others(
    tmp_path: Path, redis: RedisServer
) -> None:
    async with (
        two_nodes(tmp_path, redis) as (node_a, node_b),
        chat_user(node_a) as ada,
        chat_user(node_b) as bob,
        another_device(node_a, bob) as bob_laptop,
    ):
        room = await ada.api.create_room("lobby", "public")
        await bob.api.join_room(room.id)
        await bob.client.join(room.id)
        await bob_laptop.client.join(room.id)
        await bob_laptop.api.remove_member(room.id, bob.id)
        for device in (bob, bob_laptop):
            removed = await device.wait_for(lambda f: isinstance(f, protocol.RoomRemoved))
            assert removed == protocol.RoomRemoved(room=room.id, by=bob.id)


async def test_a_resume_naming_a_room_left_meanwhile_answers_room_removed_and_resumes_the_rest(
    tmp_path: Path,
) -> None:
    async with open_node(tmp_path) as node, chat_user(node) as ada, chat_user(node) as bob:
        kept = await ada.api.create_room("kept", "public")
        left = await ada.api.create_room("left", "public")
        for room in (kept, left):
            await bob.api.join_room(room.id)
        await bob.api.remove_member(left.id, bob.id)
        assert bob.api.session is not None
        async with ws_connect(node.gateway_port) as ws:
            await ws.send_message(
                protocol.encode(protocol.Hello(token=bob.api.session.access_token)).decode()
            )
            assert isinstance(protocol.decode_server_frame(await ws.get_message()), protocol.Ready)
            resume = protocol.Resume(ref="r1", rooms={left.id: 0, kept.id: 0})
            await ws.send_message(protocol.encode(resume).decode())
            frames = []
            with trio.fail_after(10):
                while not isinstance(
                    frame := protocol.decode_server_frame(await ws.get_message()), protocol.Ack
                ):
                    frames.append(frame)
            assert frame == protocol.Ack(ref="r1")
            assert protocol.RoomRemoved(room=left.id) in frames
            assert protocol.Replayed(room=kept.id, after_seq=0, last_seq=0, count=0) in frames
            assert not any(
                getattr(f, "room", None) == left.id
                for f in frames
                if not isinstance(f, protocol.RoomRemoved)
            )


async def test_rooms_added_and_left_while_disconnected_are_followed_on_reconnect(
    tmp_path: Path,
) -> None:
    async with (
        open_node(tmp_path) as node,
        chat_user(node) as ada,
        chat_user(node) as carol,
        HttpApi(node.http_url) as api,
    ):
        await api.register("bob", PASSWORD)
        left = await ada.api.create_room("left")
        await api.join_room(left.id)
        bob = ChatUser(api, RealtimeClient(api, gateway_url=node.gateway_url), [])
        async with trio.open_nursery() as nursery:
            nursery.start_soon(bob.collect)
            online = trio.CancelScope()
            await nursery.start(run_in, online, bob.client)
            await bob.client.join(left.id)
            online.cancel()  # bob is away while...
            dm = await ada.api.direct_room(api.user.id)
            first = await ada.api.post(dm.id, "while you were away", "c-away")
            group = await carol.api.group_room([api.user.id, ada.id])
            await api.remove_member(left.id, api.user.id)
            await nursery.start(run_in, trio.CancelScope(), bob.client)  # ... and comes back
            await bob.wait_for_messages(1, dm.id)
            assert [m.id for m in bob.messages(dm.id)] == [first.id]
            await bob.wait_for(lambda f: isinstance(f, protocol.RoomRemoved))
            found = [f.room.id for f in bob.received if isinstance(f, RoomFound)]
            assert sorted(found) == sorted([dm.id, group.id])
            later = await carol.api.post(group.id, "later", "c-later")
            await bob.wait_for_messages(1, group.id)
            assert [m.id for m in bob.messages(group.id)] == [later.id]
            assert protocol.RoomRemoved(room=left.id) in bob.received
            nursery.cancel_scope.cancel()


async def run_in(
    scope: trio.CancelScope,
    client: RealtimeClient,
    *,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run `client` inside `scope`: cancelling the scope disconnects it (nothing else)."""
    with scope:
        await client.run(task_status=task_status)


async def test_an_invitation_and_its_accept_reach_the_invitees_sockets_on_the_other_node(
    tmp_path: Path, redis: RedisServer
) -> None:
    async with (
        two_nodes(tmp_path, redis) as (node_a, node_b),
        chat_user(node_a) as ada,
        chat_user(node_b) as bob,
    ):
        private = await ada.api.create_room("ops", "private")
        await ada.client.join(private.id)
        before = await ada.client.send(private.id, "before bob accepted")
        await ada.api.create_invite(private.id, bob.id)
        invited = await bob.wait_for(lambda f: isinstance(f, protocol.RoomInvited))
        assert invited == protocol.RoomInvited(room=private.id, name="ops", by=ada.id)
        assert [i.room.id for i in await bob.api.my_invites()] == [private.id]
        joined = await bob.api.accept_invite(private.id)
        assert joined.id == private.id
        sent = await ada.client.send(private.id, "welcome")
        await bob.wait_for_messages(1)
        assert [m.id for m in bob.messages(private.id)] == [sent.id]
        (added,) = frames_of(bob, protocol.RoomAdded, private.id)
        assert added == protocol.RoomAdded(
            room=private.id, name="ops", kind="private", seq=before.seq, by=bob.id
        )
