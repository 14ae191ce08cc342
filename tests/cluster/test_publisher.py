"""The bus's own RESP publisher against a real redis-server started for the test."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import trio
from prometheus_client import REGISTRY

from chorus.cluster._connection import RespServer, encode_command, parse_replies
from chorus.cluster._publisher import RespPublisher
from chorus.cluster._subscriber import RespSubscriber
from tests.redisserver import RedisServer, running_redis


class Received:
    """What a `RespSubscriber` dispatched, with a way to wait for some of it."""

    def __init__(self) -> None:
        self.payloads: list[bytes] = []
        self._changed = trio.Event()

    def __call__(self, channel: bytes, payload: bytes) -> None:
        self.payloads.append(payload)
        self._changed.set()
        self._changed = trio.Event()

    async def wait_for(self, predicate: object) -> None:
        assert callable(predicate)
        with trio.fail_after(30):
            while not predicate():
                await self._changed.wait()


@asynccontextmanager
async def publisher_and_subscriber(
    url: str, *, timeout: float = 1.0
) -> AsyncIterator[tuple[RespPublisher, Received]]:
    """A running publisher, and a subscriber to `room:1` and `room:2` on the same Redis."""
    received = Received()
    subscriber = RespSubscriber(url, received)
    publisher = RespPublisher(url, timeout=timeout)
    async with trio.open_nursery() as nursery:
        await nursery.start(subscriber.run)
        await subscriber.subscribe("room:1")
        await subscriber.subscribe("room:2")
        await nursery.start(publisher.run)
        yield publisher, received
        nursery.cancel_scope.cancel()


async def _command(redis: RedisServer, *args: bytes) -> object:
    stream = await RespServer(redis.url).connect()
    async with stream:
        await stream.send_all(encode_command(args))
        buffer = bytearray()
        while True:
            buffer += await stream.receive_some(65536)
            replies, _ = parse_replies(buffer)
            if replies:
                return replies[0]


async def test_a_burst_queued_at_once_arrives_whole_and_in_order(redis: RedisServer) -> None:
    async with publisher_and_subscriber(redis.url) as (publisher, received):
        sent = [b"%d" % n for n in range(2_000)]
        for n, payload in enumerate(sent):  # all queued before the writer runs
            publisher.publish(f"room:{n % 2 + 1}", payload)
        with trio.fail_after(10):
            await publisher.drained()
        await received.wait_for(lambda: len(received.payloads) >= len(sent))
        assert received.payloads == sent
        assert publisher.dropped == 0


async def test_publications_go_on_in_order_across_a_redis_restart(redis: RedisServer) -> None:
    """Redis killed and restarted while a room publishes: what arrives is in order and
    never twice, and once Redis is back every publication arrives."""
    async with publisher_and_subscriber(redis.url, timeout=0.5) as (publisher, received):
        sent = 0

        async def publish_until(done: trio.Event) -> None:
            nonlocal sent
            with trio.fail_after(60):
                while not done.is_set():
                    sent += 1
                    publisher.publish("room:1", b"%d" % sent)
                    await trio.sleep(0.002)  # a room's pace, not a wait for something

        async with trio.open_nursery() as nursery:
            finished = trio.Event()
            nursery.start_soon(publish_until, finished)
            await received.wait_for(lambda: len(received.payloads) >= 20)
            await redis.stop()
            stopped_at = sent
            await redis.start()
            # The subscriber reconnects too: wait for publications made after the restart.
            await received.wait_for(
                lambda: received.payloads and int(received.payloads[-1]) > stopped_at + 50
            )
            finished.set()
        with trio.fail_after(10):
            await publisher.drained()
        await received.wait_for(lambda: int(received.payloads[-1]) == sent)
    numbers = [int(payload) for payload in received.payloads]
    assert numbers == sorted(set(numbers)), "reordered or duplicated"
    # Published while Redis was away: lost only until both sides were back, then all of it.
    after = [n for n in numbers if n > stopped_at]
    assert after == list(range(after[0], sent + 1))


async def test_publications_wait_for_redis_briefly_then_are_dropped(redis: RedisServer) -> None:
    await redis.stop()
    async with publisher_and_subscriber(redis.url, timeout=0.2) as (publisher, received):
        before = REGISTRY.get_sample_value("chorus_bus_dropped_total") or 0.0
        for n in range(5):
            publisher.publish("room:1", b"%d" % n)
        with trio.fail_after(10):  # dropped at the first failed attempt past the timeout
            await publisher.drained()
        assert publisher.dropped == 5
        assert REGISTRY.get_sample_value("chorus_bus_dropped_total") == before + 5
        await redis.start()
        with trio.fail_after(30):
            while not received.payloads:
                publisher.publish("room:1", b"back")
                with trio.move_on_after(0.2):
                    await received.wait_for(lambda: received.payloads)
        assert set(received.payloads) == {b"back"}


async def test_a_redis_that_stops_answering_is_left_and_its_publications_dropped(
    redis: RedisServer,
) -> None:
    async with publisher_and_subscriber(redis.url, timeout=0.2) as (publisher, received):
        publisher.publish("room:1", b"first")
        await received.wait_for(lambda: received.payloads)
        assert await _command(redis, b"CLIENT", b"PAUSE", b"1500", b"ALL") == b"OK"
        for n in range(10):
            publisher.publish("room:1", b"%d" % n)
        with trio.fail_after(10):  # given up after 0.2 s without an answer
            await publisher.drained()
        assert publisher.dropped == 10
        with trio.fail_after(30):  # a new connection publishes once the pause is over
            while received.payloads[-1] != b"after":
                publisher.publish("room:1", b"after")
                with trio.move_on_after(0.2):
                    await received.wait_for(lambda: received.payloads[-1] == b"after")


async def test_publications_redis_refuses_are_counted_as_dropped(tmp_path: Path) -> None:
    async with running_redis(tmp_path / "redis", password="s3cret") as redis:
        publisher = RespPublisher(redis.url)  # no password: every PUBLISH gets NOAUTH
        async with trio.open_nursery() as nursery:
            await nursery.start(publisher.run)
            for n in range(3):
                publisher.publish("room:1", b"%d" % n)
            with trio.fail_after(10):
                await publisher.drained()
            nursery.cancel_scope.cancel()
    assert publisher.dropped == 3
