"""Moderation over real WebSockets: bans, kicks, mutes, locks and blocks apply at once, on
every node (two in-process nodes sharing a SQLite file and a real Redis)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from chorus import protocol
from chorus.client import ApiError
from tests.e2e.node import RunningNode, chat_user, open_node
from tests.e2e.test_membership import another_device, frames_of
from tests.redisserver import RedisServer, running_redis

ROOM_REMOVED_WITHIN = 5.0
"""Seconds a ban may take to reach a socket on another node (the bus is sub-millisecond)."""


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


async def test_a_ban_removes_every_socket_on_every_node_and_keeps_the_user_out(
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
        for device in (bob, bob_laptop):
            await device.client.join(room.id)
        await ada.api.ban(room.id, bob.id, "spam")
        for device in (bob, bob_laptop):
            removed = await device.wait_for(
                lambda f: isinstance(f, protocol.RoomRemoved), timeout=ROOM_REMOVED_WITHIN
            )
            assert removed == protocol.RoomRemoved(room=room.id, by=ada.id)
        with pytest.raises(ApiError) as refused:
            await bob.client.send(room.id, "still here?")
        assert refused.value.code == protocol.ErrorCode.NOT_JOINED
        with pytest.raises(ApiError) as rejoin:
            await bob.api.join_room(room.id)
        assert rejoin.value.status == 403
        assert [b["reason"] for b in await ada.api.bans(room.id)] == ["spam"]
        await ada.api.unban(room.id, bob.id)
        await bob.api.join_room(room.id)
        for device in (bob, bob_laptop):
            assert len(frames_of(device, protocol.RoomRemoved, room.id)) == 1


async def test_a_mute_refuses_the_next_send_at_once_on_another_node_until_unmuted(
    tmp_path: Path, redis: RedisServer
) -> None:
    async with (
        two_nodes(tmp_path, redis) as (node_a, node_b),
        chat_user(node_a) as ada,
        chat_user(node_b) as bob,
    ):
        room = await ada.api.create_room("lobby", "public")
        await bob.api.join_room(room.id)
        await bob.client.join(room.id)
        await bob.client.send(room.id, "before")
        await ada.api.mute(room.id, bob.id, minutes=10)
        with pytest.raises(ApiError) as refused:
            await bob.client.send(room.id, "muted")
        assert refused.value.code == protocol.ErrorCode.FORBIDDEN
        await ada.api.unmute(room.id, bob.id)
        await bob.client.send(room.id, "after")
        bodies = [m.body for m in (await ada.api.history(room.id))]
        assert "muted" not in bodies
        assert {"before", "after"} <= set(bodies)


async def test_a_locked_room_takes_posts_from_moderators_only(
    tmp_path: Path, redis: RedisServer
) -> None:
    async with (
        two_nodes(tmp_path, redis) as (node_a, node_b),
        chat_user(node_a) as ada,
        chat_user(node_b) as bob,
        chat_user(node_b) as carol,
    ):
        room = await ada.api.create_room("news", "public")
        for user in (bob, carol):
            await user.api.join_room(room.id)
            await user.client.join(room.id)
        await ada.api.set_role(room.id, carol.id, "moderator")
        await ada.api.lock(room.id)
        with pytest.raises(ApiError) as refused:
            await bob.client.send(room.id, "locked?")
        assert refused.value.code == protocol.ErrorCode.FORBIDDEN
        await carol.client.send(room.id, "moderators still post")
        await ada.api.lock(room.id, False)
        await bob.client.send(room.id, "open again")


async def test_a_block_refuses_new_dms_and_posts_in_a_shared_one(tmp_path: Path) -> None:
    async with open_node(tmp_path) as node, chat_user(node) as ada, chat_user(node) as bob:
        dm = await bob.api.direct_room(ada.id)
        await bob.client.join(dm.id)
        await bob.client.send(dm.id, "hi")
        await ada.api.block(bob.id)
        with pytest.raises(ApiError) as refused:
            await bob.client.send(dm.id, "hello?")
        assert refused.value.code == protocol.ErrorCode.FORBIDDEN
        with pytest.raises(ApiError) as reopened:
            await bob.api.direct_room(ada.id)
        assert reopened.value.status == 403
        assert await ada.api.blocked() == [bob.id]
        await ada.api.unblock(bob.id)
        await bob.client.send(dm.id, "back")
