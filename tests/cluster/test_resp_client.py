"""`RespClient` (request/reply commands in plain RESP) against a real redis-server."""

from __future__ import annotations

import os
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import structlog
import trio

from chorus.auth import RedisSessionCache
from chorus.cluster import CoredisCommands, ReconciledRateLimiter, open_redis_bus
from chorus.cluster._client import RedisUnavailable, RespClient
from chorus.cluster._commands import Script
from chorus.cluster._connection import ReplyError
from chorus.config import Settings
from chorus.node import _send_limiter, _session_cache
from tests.redisserver import RedisServer, running_redis
from tests.tlsfiles import tls_files

FOREVER = 1e-6
"""A rate so low that nothing refills during a test: only the burst counts."""


@asynccontextmanager
async def running_client(url: str, *, timeout: float = 5.0) -> AsyncIterator[RespClient]:
    client = RespClient(url, timeout=timeout)
    async with trio.open_nursery() as nursery:
        await nursery.start(client.run)
        yield client
        nursery.cancel_scope.cancel()


async def _until_connected(client: RespClient) -> None:
    """Poll (bounded) until a `PING` gets through: the client reconnects with backoff."""
    with trio.fail_after(10):
        while True:
            try:
                await client.execute([[b"PING"]])
                return
            except RedisUnavailable:
                await trio.sleep(0.05)  # poll, bounded by the deadline


async def test_replies_come_back_to_their_callers_in_order(redis: RedisServer) -> None:
    async with running_client(redis.url) as client:
        results: dict[int, list[object]] = {}

        async def call(n: int) -> None:
            results[n] = await client.execute(
                [[b"SET", b"k%d" % n, b"%d" % n], [b"INCR", b"k%d" % n], [b"GET", b"nothing"]]
            )

        async with trio.open_nursery() as nursery:
            for n in range(20):  # queued in the same task step: sent in one write
                nursery.start_soon(call, n)
        assert results == {n: [b"OK", n + 1, None] for n in range(20)}


async def test_a_refused_command_is_returned_as_its_error_and_the_rest_run(
    redis: RedisServer,
) -> None:
    async with running_client(redis.url) as client:
        replies = await client.execute([[b"SET", b"k", b"v"], [b"INCR", b"k"], [b"GET", b"k"]])
    assert replies[0] == b"OK"
    assert isinstance(replies[1], ReplyError)
    assert replies[2] == b"v"


async def test_a_caller_that_gives_up_does_not_shift_the_replies_of_the_next(
    redis: RedisServer,
) -> None:
    async with running_client(redis.url) as client, running_client(redis.url) as admin:
        await admin.execute([[b"CLIENT", b"PAUSE", b"300"]])
        with trio.move_on_after(0.05) as gave_up:
            await client.execute([[b"ECHO", b"first"]])
        assert gave_up.cancelled_caught
        assert await client.execute([[b"ECHO", b"second"]]) == [b"second"]


async def test_calls_fail_at_once_while_redis_is_away_and_work_again_after_a_restart(
    redis: RedisServer,
) -> None:
    async with running_client(redis.url) as client:
        assert await client.execute([[b"SET", b"k", b"1"]]) == [b"OK"]
        await redis.stop()
        with trio.fail_after(5):  # the reader notices the closed connection
            while True:
                try:
                    await client.execute([[b"PING"]])
                except RedisUnavailable:
                    break
        with trio.fail_after(0.5), pytest.raises(RedisUnavailable):
            await client.execute([[b"PING"]])  # at once, not after a timeout
        await redis.start()
        await _until_connected(client)
        assert await client.execute([[b"GET", b"k"]]) == [None]  # the restarted server


async def test_a_stream_of_calls_across_a_redis_restart_runs_each_at_most_once_in_order(
    redis: RedisServer,
) -> None:
    """Redis killed while one task keeps calling: every answered `INCR` is the previous
    one plus one (none twice, none skipped) until the kill, calls fail while it is away,
    and count from 1 on the restarted (empty) server."""
    answers: list[int] = []
    failures = 0
    async with running_client(redis.url) as client, trio.open_nursery() as nursery:
        stopped, restarted = trio.Event(), trio.Event()

        async def restart() -> None:
            await redis.stop()
            stopped.set()
            await redis.start()
            restarted.set()

        with trio.fail_after(20):
            while len(answers) < 100 or not restarted.is_set() or answers[-1] < 50:
                if len(answers) == 50 and not stopped.is_set():
                    nursery.start_soon(restart)  # while this task goes on calling
                try:
                    [reply] = await client.execute([[b"INCR", b"n"]])
                except RedisUnavailable:
                    failures += 1
                    await trio.sleep(0.01)  # Redis is away: poll, bounded by the deadline
                    continue
                assert isinstance(reply, int)
                answers.append(reply)
    assert failures > 0
    assert answers[:50] == list(range(1, 51))
    restart_at = next(i for i in range(50, len(answers)) if answers[i] == 1)
    later = answers[restart_at:]
    assert later == list(range(1, len(later) + 1))
    assert answers[50:restart_at] == list(range(51, restart_at + 1))  # before the kill


async def test_a_server_that_wants_a_password_refuses_commands_without_it(tmp_path: Path) -> None:
    async with running_redis(tmp_path / "redis", password="s3cret") as redis:
        async with running_client(redis.url) as client:  # no password in the URL
            [reply] = await client.execute([[b"PING"]])
            assert isinstance(reply, ReplyError)
            assert str(reply).startswith("NOAUTH")
        async with running_client(redis.url.replace("//", "//:s3cret@")) as client:
            assert await client.execute([[b"PING"]]) == [b"PONG"]


async def test_the_client_speaks_tls_with_a_password(tmp_path: Path) -> None:
    tls = tls_files(tmp_path / "tls")
    async with (
        running_redis(tmp_path / "redis", tls=tls, password="s3cret") as redis,
        running_client(redis.tls_url) as client,
    ):
        assert await client.execute([[b"ECHO", b"over tls"]]) == [b"over tls"]


async def test_a_script_redis_lost_is_sent_whole_again(redis: RedisServer) -> None:
    script = Script("return tonumber(ARGV[1]) + 1")
    async with running_client(redis.url) as client:
        assert await script.run_many(client, [([], [b"1"]), ([], [b"2"])]) == [2, 3]
        await client.execute([[b"SCRIPT", b"FLUSH"]])
        assert await script.run_many(client, [([], [b"5"])]) == [6]


async def test_a_redis_that_stops_answering_is_left_and_reconnected(redis: RedisServer) -> None:
    async with running_client(redis.url, timeout=0.3) as client, running_client(redis.url) as admin:
        await client.execute([[b"PING"]])
        await admin.execute([[b"CLIENT", b"PAUSE", b"1500"]])  # every client's commands wait
        with structlog.testing.capture_logs() as logs, pytest.raises(RedisUnavailable):
            await client.execute([[b"PING"]])
        assert "redis.connection_lost" in [log["event"] for log in logs]
        await _until_connected(client)


# -- the rate-limit report over it ---------------------------------------------------------


@asynccontextmanager
async def reconciled(url: str, *, interval: float = 0.1) -> AsyncIterator[ReconciledRateLimiter]:
    async with running_client(url) as client, trio.open_nursery() as nursery:
        limiter = ReconciledRateLimiter(client, interval=interval)
        await nursery.start(limiter.run)
        yield limiter
        nursery.cancel_scope.cancel()


async def _reported(limiter: ReconciledRateLimiter, reports: int) -> None:
    with trio.fail_after(10):
        while limiter.reports < reports:  # noqa: ASYNC110  # poll, bounded by the deadline
            await trio.sleep(0.005)


async def test_a_node_runs_the_send_limits_report_and_session_cache_over_plain_resp(
    redis: RedisServer,
) -> None:
    async with open_redis_bus(redis.url) as bus:
        assert isinstance(bus.commands, RespClient)
        assert await bus.commands.execute([[b"ECHO", b"x"]]) == [b"x"]
        assert await bus.commands.execute([]) == []
        limiter = _send_limiter(bus)
        assert isinstance(limiter, ReconciledRateLimiter)
        assert limiter._client is bus.commands
        cache = _session_cache(Settings(), bus)
        assert isinstance(cache, RedisSessionCache)
        assert cache._client is bus.commands


async def test_on_a_redis_cluster_the_report_and_session_cache_run_on_coredis(
    tmp_path: Path,
) -> None:
    async with (
        running_redis(tmp_path, cluster=True) as server,
        open_redis_bus(server.cluster_url) as bus,
    ):
        assert isinstance(bus.commands, CoredisCommands)
        assert await bus.commands.execute([[b"SET", b"k", b"v"], [b"GET", b"k"]]) == [b"OK", b"v"]
        limiter = _send_limiter(bus)
        assert isinstance(limiter, ReconciledRateLimiter)
        assert limiter._client is bus.commands
        cache = _session_cache(Settings(), bus)
        assert isinstance(cache, RedisSessionCache)
        assert cache._client is bus.commands


async def test_the_report_over_plain_resp_shares_one_budget(redis: RedisServer) -> None:
    async with reconciled(redis.url) as a, reconciled(redis.url) as b:
        assert sum([await a.allow("u1", rate=FOREVER, burst=3) for _ in range(4)]) == 3
        await _reported(a, 1)
        assert await b.allow("u1", rate=FOREVER, burst=3)  # b's own bucket
        await _reported(b, 1)
        assert not await b.allow("u1", rate=FOREVER, burst=3)  # Redis: 4 events of 3
        assert not a.degraded
        assert not b.degraded


async def test_the_report_survives_a_redis_restart_and_a_lost_script(redis: RedisServer) -> None:
    async with reconciled(redis.url, interval=0.01) as limiter:
        await limiter.allow("k", rate=FOREVER, burst=10)
        await _reported(limiter, 1)
        await redis.stop()
        with structlog.testing.capture_logs() as logs:
            await limiter.allow("k", rate=FOREVER, burst=10)
            await _reported(limiter, limiter.reports + 1)
        events = [log["event"] for log in logs if log["event"].startswith("ratelimit.")]
        assert events == ["ratelimit.redis_unavailable"]
        await redis.start()  # empty: the script is gone too
        with trio.fail_after(10):
            while limiter.degraded:  # a report per pass; the client reconnects after its backoff
                assert await limiter.allow("again", rate=FOREVER, burst=1_000_000)
                await _reported(limiter, limiter.reports + 1)
        await limiter.allow("j", rate=FOREVER, burst=3)
        await _reported(limiter, limiter.reports + 1)
        assert not limiter.degraded
        async with running_client(redis.url) as client:
            assert await client.execute([[b"EXISTS", b"j"]]) == [1]  # reported after all


async def test_a_report_redis_refuses_for_want_of_a_password_degrades_the_limiter(
    tmp_path: Path,
) -> None:
    async with running_redis(tmp_path / "redis", password="s3cret") as redis:
        async with reconciled(redis.url) as limiter:  # no password in the URL
            with structlog.testing.capture_logs() as logs:
                assert await limiter.allow("k", rate=FOREVER, burst=1)
                await _reported(limiter, 1)
            assert limiter.degraded
            assert not await limiter.allow("k", rate=FOREVER, burst=1)  # the local limit
        [log] = [log for log in logs if log["event"] == "ratelimit.redis_unavailable"]
        assert "NOAUTH" in log["error"]


async def test_each_reply_on_a_plain_connection_costs_one_read(
    redis: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A read that finds nothing (EAGAIN) before waiting doubles the syscalls of
    # every wake-up: the reader waits for the socket first, then reads once.
    async with running_client(redis.url) as client:
        await client.execute([[b"PING"]])
        reads = 0
        plain_recv, plain_read = socket.socket.recv, os.read

        def counted_recv(sock: socket.socket, size: int, flags: int = 0) -> bytes:
            nonlocal reads
            reads += 1
            return plain_recv(sock, size, flags)

        def counted_read(fd: int, size: int) -> bytes:
            nonlocal reads
            reads += 1
            return plain_read(fd, size)

        # trio's socket binds the stdlib `recv` where it is defined: wrap it the same way.
        wrapper = trio._socket._make_simple_sock_method_wrapper
        monkeypatch.setattr(
            trio._socket._SocketType, "recv", wrapper(counted_recv, trio.lowlevel.wait_readable)
        )
        monkeypatch.setattr(os, "read", counted_read)
        for n in range(20):  # one at a time: each reply is the only bytes of its read
            assert await client.execute([[b"ECHO", b"%d" % n]]) == [b"%d" % n]
        monkeypatch.undo()
    assert 20 <= reads <= 22  # a spurious wake-up or two would not be a failure
