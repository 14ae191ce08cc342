"""`Commands`, one interface for both kinds of client: `RespClient` on one Redis server,
`CoredisCommands` on one server and on a Redis Cluster, each against a real Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from chorus.cluster import Commands, CoredisCommands, ReplyError
from chorus.cluster._commands import Script
from tests.redisserver import COMMANDS_KINDS, running_commands, running_redis


@pytest.fixture(params=COMMANDS_KINDS)
async def commands(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Commands]:
    cluster = request.param == "coredis-cluster"
    async with (
        running_redis(tmp_path / "redis", cluster=cluster) as redis,
        running_commands(redis, request.param) as commands,
    ):
        yield commands


async def test_replies_come_in_order_as_resp2_has_them(commands: Commands) -> None:
    # Keys in different slots: on a cluster one pipeline, several nodes' worth.
    assert await commands.execute(
        [
            [b"SET", b"a", b"1", b"PX", b"60000"],
            [b"SET", b"a", b"2", b"PX", b"60000", b"NX"],  # not set: a exists
            [b"SET", b"b", b"3", b"NX"],
            [b"GET", b"a"],
            [b"GET", b"b"],
            [b"GET", b"missing"],
        ]
    ) == [b"OK", None, b"OK", b"1", b"3", None]
    assert await commands.execute([[b"GET", b"a"]]) == [b"1"]
    assert await commands.execute([]) == []


async def test_a_refused_command_is_answered_by_a_reply_error_not_raised(
    commands: Commands,
) -> None:
    refuse = [b"EVAL", b"return redis.error_reply('NOPE not today')", b"1", b"x"]
    for batch in ([refuse], [[b"GET", b"x"]] * 2):  # alone, and in a pipeline
        replies = await commands.execute([*batch, refuse])
        assert isinstance(replies[-1], ReplyError)
        assert str(replies[-1]).startswith("NOPE")


async def test_a_script_redis_lacks_is_sent_whole_then_run_by_its_sha(
    commands: Commands,
) -> None:
    script = Script("redis.call('INCRBY', KEYS[1], ARGV[1]); return redis.call('GET', KEYS[1])")
    calls = [([b"k1"], [b"1"]), ([b"k2"], [b"2"]), ([b"k1"], [b"10"])]
    assert await script.run_many(commands, calls) == [b"1", b"2", b"11"]  # EVAL, then...
    assert await script.run_many(commands, calls[:1]) == [b"12"]  # ...EVALSHA
    [lacking] = await commands.execute([[b"EVALSHA", b"0" * 40, b"0"]])
    assert isinstance(lacking, ReplyError)
    assert str(lacking).startswith("NOSCRIPT")


async def test_coredis_commands_refuse_what_they_do_not_speak() -> None:
    commands = CoredisCommands(object())
    for command in ([b"DEL", b"k"], [b"SET", b"k", b"v", b"EX", b"1"]):
        with pytest.raises(ValueError, match="does not speak"):
            await commands.execute([command])


async def test_presence_commands_reply_as_resp2_has_them(commands: Commands) -> None:
    """Presence's hashes, sets and heartbeats (`RedisDirectory`), keys in several slots."""
    assert await commands.execute(
        [
            [b"HSET", b"chorus:presence:u1", b"n1", b"online"],
            [b"HSET", b"chorus:presence:u1", b"n2", b"idle"],
            [b"SADD", b"chorus:node:n1:users", b"u1"],
            [b"SET", b"chorus:node:n1:alive", b"1"],
        ]
    ) == [1, 1, 1, b"OK"]
    [reports, none, alive, dead] = await commands.execute(
        [
            [b"HGETALL", b"chorus:presence:u1"],
            [b"HGETALL", b"chorus:presence:u2"],
            [b"EXISTS", b"chorus:node:n1:alive"],
            [b"EXISTS", b"chorus:node:n2:alive"],
        ]
    )
    assert isinstance(reports, list)
    assert dict(zip(reports[::2], reports[1::2], strict=True)) == {b"n1": b"online", b"n2": b"idle"}
    assert (none, alive, dead) == ([], 1, 0)
    assert await commands.execute(
        [[b"HDEL", b"chorus:presence:u1", b"n1"], [b"SREM", b"chorus:node:n1:users", b"u1"]]
    ) == [1, 1]
    assert await commands.execute([[b"HGETALL", b"chorus:presence:u1"]]) == [[b"n2", b"idle"]]
