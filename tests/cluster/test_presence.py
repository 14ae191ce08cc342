"""Presence across nodes in a real Redis: best status of live nodes, dead nodes reaped."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest
import trio

from chorus.cluster import (
    Commands,
    LocalDirectory,
    RedisDirectory,
    ReplyError,
    RespClient,
    open_redis_bus,
)
from tests.redisserver import RedisServer, running_redis


async def test_a_user_online_on_any_live_node_is_online(
    redis: RedisServer, nursery: trio.Nursery
) -> None:
    async with open_redis_bus(redis.url) as bus_a, open_redis_bus(redis.url) as bus_b:
        a, b = (
            RedisDirectory(bus_a.client, bus_a.commands, "a"),
            RedisDirectory(bus_b.client, bus_b.commands, "b"),
        )

        async def nothing(_users: list[str]) -> None:
            pass

        await nursery.start(a.run, nothing)
        await nursery.start(b.run, nothing)
        assert await a.report("u1", "idle") == "idle"
        assert await b.report("u1", "online") == "online"
        assert await a.report("u1", "offline") == "online"  # still online on b
        assert await b.report("u1", "idle") == "idle"
        assert await b.report("u1", "offline") == "offline"
        nursery.cancel_scope.cancel()


async def test_presence_works_on_a_redis_cluster(tmp_path: Path) -> None:
    """Reports write and read keys of several slots in one pipeline."""
    async with (
        running_redis(tmp_path / "cluster", cluster=True) as cluster,
        open_redis_bus(cluster.cluster_url) as bus_a,
        open_redis_bus(cluster.cluster_url) as bus_b,
        trio.open_nursery() as nursery,
    ):
        a, b = (
            RedisDirectory(bus_a.client, bus_a.commands, "a"),
            RedisDirectory(bus_b.client, bus_b.commands, "b"),
        )

        async def nothing(_users: list[str]) -> None:
            pass

        await nursery.start(a.run, nothing)
        await nursery.start(b.run, nothing)
        assert await a.report("u1", "idle") == "idle"
        assert await b.report("u1", "online") == "online"
        assert await a.report("u2", "online") == "online"
        assert await b.statuses(["u1", "u2", "u3"]) == {
            "u1": "online",
            "u2": "online",
            "u3": "offline",
        }
        assert await b.report("u1", "offline") == "idle"  # still idle on a
        nursery.cancel_scope.cancel()


async def test_a_dead_nodes_users_are_reaped_and_reannounced(
    redis: RedisServer, nursery: trio.Nursery
) -> None:
    async with open_redis_bus(redis.url) as bus_a, open_redis_bus(redis.url) as bus_b:
        survivor = RedisDirectory(bus_a.client, bus_a.commands, "survivor", ttl=0.3)
        doomed = RedisDirectory(bus_b.client, bus_b.commands, "doomed", ttl=0.3)
        orphaned: list[list[str]] = []
        reaped = trio.Event()

        async def record(users: list[str]) -> None:
            orphaned.append(sorted(users))
            reaped.set()

        async def nothing(_users: list[str]) -> None:
            pass

        await nursery.start(survivor.run, record)
        doomed_heart = trio.CancelScope()

        async def beat_until_dead(*, task_status: trio.TaskStatus[None]) -> None:
            with doomed_heart:
                await doomed.run(nothing, task_status=task_status)

        await nursery.start(beat_until_dead)
        await doomed.report("u1", "online")
        await doomed.report("u2", "idle")
        await survivor.report("u2", "online")
        assert await survivor.status("u1") == "online"
        doomed_heart.cancel()  # the doomed node's heartbeat stops: it "dies"
        with trio.fail_after(10):
            await reaped.wait()
        assert orphaned == [["u1", "u2"]]
        assert await survivor.status("u1") == "offline"
        assert await survivor.status("u2") == "online"  # the survivor's own report stays
        nursery.cancel_scope.cancel()


async def test_the_local_directory_remembers_this_nodes_reports() -> None:
    directory = LocalDirectory()
    assert await directory.report("u1", "online") == "online"
    assert directory.status("u1") == "online"
    await directory.report("u1", "offline")
    assert directory.status("u1") == "offline"
    directory.set("u2", "idle")
    assert await directory.statuses(["u1", "u2"]) == {"u1": "offline", "u2": "idle"}


@pytest.mark.parametrize("cluster", [False, True], ids=["standalone", "cluster"])
async def test_statuses_reads_many_users_at_once_and_ignores_dead_nodes(
    tmp_path: Path, cluster: bool
) -> None:
    async with (
        running_redis(tmp_path, cluster=cluster) as server,
        open_redis_bus(server.url) as bus_a,
        open_redis_bus(server.url) as bus_b,
    ):
        a, b = (
            RedisDirectory(bus_a.client, bus_a.commands, "a"),
            RedisDirectory(bus_b.client, bus_b.commands, "b"),
        )
        silent = RedisDirectory(bus_b.client, bus_b.commands, "silent")  # reports, but never beats
        await b._beat()
        await a.report("u1", "idle")
        await b.report("u1", "online")
        await b.report("u2", "idle")
        await silent.report("u3", "online")
        assert await a.statuses(["u1", "u2", "u3", "nobody"]) == {
            "u1": "online",
            "u2": "idle",
            "u3": "offline",
            "nobody": "offline",
        }
        assert await a.statuses([]) == {}
        assert await LocalDirectory().statuses(["u1"]) == {"u1": "offline"}


class _Counted:
    """The bus's own `Commands`, counting the round trips (`execute` calls) through it."""

    def __init__(self, commands: Commands) -> None:
        self.commands = commands
        self.round_trips: list[list[bytes]] = []

    async def execute(self, commands: Sequence[Sequence[bytes]]) -> list[object]:
        self.round_trips.append([command[0] for command in commands])
        return await self.commands.execute(commands)


async def test_reports_and_lookups_go_through_the_buss_commands_in_two_round_trips(
    redis: RedisServer,
) -> None:
    """A join looks up every member of its room: on one server that is the bus's own
    `RespClient` (not coredis' pipelines, three times the CPU per command), one round
    trip for the members' reports and one for the heartbeats of the nodes that made them."""
    async with open_redis_bus(redis.url) as bus_a, open_redis_bus(redis.url) as bus_b:
        assert isinstance(bus_a.commands, RespClient)
        counted = _Counted(bus_a.commands)
        a = RedisDirectory(bus_a.client, counted, "a")
        b = RedisDirectory(bus_b.client, bus_b.commands, "b")
        await b._beat()
        members = [f"u{n}" for n in range(50)]
        for user in members[:10]:
            await b.report(user, "online")
        assert await a.report("u0", "idle") == "online"  # online on b
        assert counted.round_trips == [[b"HSET", b"SADD", b"HGETALL"], [b"EXISTS"]]
        counted.round_trips.clear()
        statuses = await a.statuses(members)
        assert statuses == {
            user: "online" if n < 10 else "offline" for n, user in enumerate(members)
        }
        assert counted.round_trips == [[b"HGETALL"] * 50, [b"EXISTS"]]
        counted.round_trips.clear()
        assert await a.report("u0", "offline") == "online"
        assert counted.round_trips == [[b"HDEL", b"SREM", b"HGETALL"], [b"EXISTS"]]


async def test_a_command_redis_refuses_raises(redis: RedisServer) -> None:
    """As coredis' pipelines did: the node then shows its own view (`Presence.statuses`)."""
    async with open_redis_bus(redis.url) as bus:
        directory = RedisDirectory(bus.client, bus.commands, "a")
        await bus.commands.execute([[b"SET", b"chorus:presence:u9", b"not a hash"]])
        with pytest.raises(ReplyError, match="WRONGTYPE"):
            await directory.statuses(["u1", "u9"])
        with pytest.raises(ReplyError, match="WRONGTYPE"):
            await directory.report("u9", "online")
