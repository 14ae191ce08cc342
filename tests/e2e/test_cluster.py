"""Two nodes in one process sharing a database and a real Redis: chat across nodes.

(Separate processes, kill -9 and PostgreSQL outages have their own suite.)
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio

from chorus import protocol
from chorus.client import HttpApi, RealtimeClient
from chorus.protocol import CloseCode
from tests.e2e.node import PASSWORD, chat_user, open_node
from tests.gateway.test_gateway import closed_code
from tests.polling import until
from tests.redisserver import RedisServer, running_redis
from tests.wsclient import ws_connect


@pytest.fixture
async def redis(tmp_path: Path) -> AsyncIterator[RedisServer]:
    async with running_redis(tmp_path / "redis") as server:
        yield server


async def test_users_on_two_nodes_chat_in_one_room(tmp_path: Path, redis: RedisServer) -> None:
    async with (
        open_node(tmp_path, redis_url=redis.url) as node_a,
        open_node(tmp_path, redis_url=redis.url) as node_b,
        chat_user(node_a) as ada,
        chat_user(node_b) as bob,
    ):
        room = await ada.api.create_room("across", "public")
        await ada.client.join(room.id)
        await bob.api.join_room(room.id)
        await bob.client.join(room.id)
        async with trio.open_nursery() as nursery:
            for n in range(10):
                nursery.start_soon(ada.client.send, room.id, f"from a {n}")
                nursery.start_soon(bob.client.send, room.id, f"from b {n}")
        for user in (ada, bob):
            await user.wait_for_messages(20, room.id)
            assert [m.seq for m in user.messages(room.id)] == list(range(1, 21))
        assert [m.id for m in ada.messages(room.id)] == [m.id for m in bob.messages(room.id)]


async def test_logout_on_one_node_closes_the_sessions_sockets_on_another(
    tmp_path: Path, redis: RedisServer
) -> None:
    async with (
        open_node(tmp_path, redis_url=redis.url) as node_a,
        open_node(tmp_path, redis_url=redis.url) as node_b,
        HttpApi(node_a.http_url) as api,
    ):
        await api.register("wanderer", PASSWORD)
        assert api.session is not None
        async with ws_connect(node_b.gateway_port) as ws:
            hello = protocol.Hello(token=api.session.access_token)
            await ws.send_message(protocol.encode(hello).decode())
            assert isinstance(protocol.decode_server_frame(await ws.get_message()), protocol.Ready)
            await api.logout()
            assert await closed_code(ws) == CloseCode.SESSION_REVOKED


async def test_a_client_moves_to_another_node_and_resumes(
    tmp_path: Path, redis: RedisServer
) -> None:
    async with (
        open_node(tmp_path, redis_url=redis.url) as node_a,
        open_node(tmp_path, redis_url=redis.url) as node_b,
        chat_user(node_a) as ada,
    ):
        room = await ada.api.create_room("moving", "public")
        await ada.client.join(room.id)
        await ada.client.send(room.id, "seen on a")
        await ada.wait_for_messages(1, room.id)
        async with HttpApi(node_b.http_url) as api:
            await api.login(ada.api.user.username, PASSWORD)
            assert await api.history(room.id) == ada.messages(room.id)
            mover = RealtimeClient(api, gateway_url=node_b.gateway_url)
            async with trio.open_nursery() as nursery:
                await nursery.start(mover.run)
                assert await mover.join(room.id) == 1
                await ada.client.send(room.id, "sent while moving")
                with trio.fail_after(10):
                    async for event in mover.events:
                        if isinstance(event, protocol.MessageEvent):
                            break
                assert isinstance(event, protocol.MessageEvent)
                assert event.message.body == "sent while moving"
                nursery.cancel_scope.cancel()


async def test_a_user_stays_online_while_connected_to_any_node(
    tmp_path: Path, redis: RedisServer
) -> None:
    async with (
        open_node(tmp_path, redis_url=redis.url) as node_a,
        open_node(tmp_path, redis_url=redis.url) as node_b,
        chat_user(node_b) as bob,
        HttpApi(node_a.http_url) as ada_api,
    ):
        await ada_api.register("roamer", PASSWORD)
        room = await ada_api.create_room("presence", "public")
        await bob.api.join_room(room.id)
        await bob.client.join(room.id)
        ada = ada_api.user.id
        online = protocol.PresenceEvent(user=ada, status="online")
        offline = protocol.PresenceEvent(user=ada, status="offline")
        async with trio.open_nursery() as nursery:
            on_a = RealtimeClient(ada_api, gateway_url=node_a.gateway_url)
            on_b = RealtimeClient(ada_api, gateway_url=node_b.gateway_url)
            scope_a = trio.CancelScope()

            async def run_on_a(*, task_status: trio.TaskStatus[None]) -> None:
                with scope_a:
                    await on_a.run(task_status=task_status)

            await nursery.start(run_on_a)
            await nursery.start(on_b.run)
            with trio.fail_after(10):
                while online not in bob.received:
                    await bob.changed.wait()
            scope_a.cancel()  # ada leaves node A but stays on node B
            with trio.fail_after(10):
                while (actor := node_a.node.services.presence.tracked(ada)) is not None:
                    await actor.wait_stopped()
            # Node A has settled ada's presence: whatever it announced is queued to
            # Redis before this message, which node A publishes on the same connection.
            await ada_api.post(room.id, "still here", "marker")
            await bob.wait_for_messages(1, room.id)
            assert offline not in bob.received
            nursery.cancel_scope.cancel()
        with trio.fail_after(10):
            while offline not in bob.received:
                await bob.changed.wait()


async def test_members_online_on_another_node_show_in_join_snapshots_and_room_details(
    tmp_path: Path, redis: RedisServer
) -> None:
    async with (
        open_node(tmp_path, redis_url=redis.url) as node_a,
        open_node(tmp_path, redis_url=redis.url) as node_b,
        chat_user(node_a) as ada,
        chat_user(node_b) as bob,
    ):
        room = await ada.api.create_room("snapshot", "public")
        await bob.api.join_room(room.id)
        presence_on_b = node_b.node.services.presence

        async def reported_by_node_a() -> bool:  # ada is connected there
            return (await presence_on_b.statuses([ada.id]))[ada.id] == "online"

        await until(reported_by_node_a)
        # Node B never had a connection of ada: what it shows comes from the directory.
        assert presence_on_b.board.status(ada.id) == "offline"
        await bob.client.join(room.id)
        with trio.fail_after(10):
            while protocol.PresenceEvent(user=ada.id, status="online") not in bob.received:
                await bob.changed.wait()
        details = await bob.api.get_room(room.id)
        statuses = {member["user_id"]: member["status"] for member in details["members"]}
        assert statuses == {ada.id: "online", bob.id: "online"}
