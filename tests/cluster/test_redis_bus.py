"""The Redis bus against a real redis-server started for the test."""

from __future__ import annotations

import ssl
from pathlib import Path

import coredis
import pytest
import trio
from prometheus_client import REGISTRY

from chorus.cluster import CoredisCommands, open_redis_bus
from chorus.cluster._publisher import PUBLISH_QUEUE, RespPublisher
from chorus.cluster._redis import (
    CoredisPublisher,
    RedisBus,
    _cluster_connection_options,
    cluster_nodes,
)
from tests.redisserver import RedisServer, running_redis
from tests.tlsfiles import tls_files


class Inbox:
    def __init__(self) -> None:
        self.payloads: list[bytes] = []
        self.changed = trio.Event()

    def __call__(self, payload: bytes) -> None:
        self.payloads.append(payload)
        self.changed.set()
        self.changed = trio.Event()

    async def wait_for(self, count: int) -> None:
        with trio.fail_after(10):
            while len(self.payloads) < count:
                await self.changed.wait()


async def test_a_publication_reaches_subscribers_on_other_nodes(redis: RedisServer) -> None:
    async with open_redis_bus(redis.url) as node_a, open_redis_bus(redis.url) as node_b:
        received = Inbox()
        await node_b.subscribe("room:1", received)
        await node_a.publish("room:1", b"hello")
        await node_a.publish("room:2", b"not for you")
        await node_a.publish("room:1", b"again")
        await received.wait_for(2)
        assert received.payloads == [b"hello", b"again"]


async def test_unsubscribed_topics_are_no_longer_delivered(redis: RedisServer) -> None:
    async with open_redis_bus(redis.url) as node_a, open_redis_bus(redis.url) as node_b:
        first, second = Inbox(), Inbox()
        subscription = await node_b.subscribe("room:1", first)
        await node_b.subscribe("room:1", second)
        await subscription.unsubscribe()
        await node_a.publish("room:1", b"only the second")
        await second.wait_for(1)
        assert first.payloads == []


async def test_the_bus_comes_back_after_redis_restarts(redis: RedisServer) -> None:
    async with open_redis_bus(redis.url) as node_a, open_redis_bus(redis.url) as node_b:
        received = Inbox()
        await node_b.subscribe("room:1", received)
        await node_a.publish("room:1", b"before")
        await received.wait_for(1)
        await redis.stop()
        await node_a.publish("room:1", b"lost")  # queued; dropped if Redis stays away
        await redis.start()
        # Publish until the subscriber has reconnected and resubscribed (bounded).
        with trio.fail_after(30):
            while len(received.payloads) < 2:
                await node_a.publish("room:1", b"after")
                with trio.move_on_after(0.2):
                    await received.wait_for(2)
        assert received.payloads[0] == b"before"
        assert b"after" in received.payloads[1:]
        # "lost" is published only if Redis was back within the publish timeout.
        assert set(received.payloads[1:]) <= {b"after", b"lost"}


def _dropped() -> float:
    return REGISTRY.get_sample_value("chorus_bus_dropped_total") or 0.0


@pytest.mark.parametrize("publisher", ["resp", "coredis"])
async def test_publications_past_the_full_queue_are_counted_as_dropped(
    redis: RedisServer, publisher: str
) -> None:
    # chorus_bus_dropped_total feeds the bus-disconnected alert (ops/prometheus). A bus
    # whose publisher is not running stands for one whose Redis is away: its queue fills.
    client = coredis.Redis.from_url(redis.url, decode_responses=False)
    bus = RedisBus(
        client,
        RespPublisher(redis.url) if publisher == "resp" else CoredisPublisher(client),
        CoredisCommands(client),
    )
    before = _dropped()
    for n in range(PUBLISH_QUEUE + 3):
        await bus.publish("room:1", b"%d" % n)
    assert bus.dropped == 3
    assert _dropped() == before + 3


async def test_on_a_redis_cluster_the_bus_uses_sharded_pubsub(tmp_path: Path) -> None:
    async with (
        running_redis(tmp_path / "cluster", cluster=True) as cluster,
        open_redis_bus(cluster.cluster_url) as node_a,
        open_redis_bus(cluster.cluster_url) as node_b,
    ):
        received = Inbox()
        await node_b.subscribe("room:1", received)
        await node_a.publish("room:1", b"sharded hello")
        await received.wait_for(1)
        assert received.payloads == [b"sharded hello"]
        channels = await node_a.client.pubsub_shardchannels()
        assert b"room:1" in channels


@pytest.mark.parametrize("cluster", [False, True], ids=["server", "cluster"])
async def test_a_burst_of_publications_arrives_whole_and_in_order(
    tmp_path: Path, cluster: bool
) -> None:
    """Publications queued faster than Redis answers go out in pipelines: none is lost
    or reordered (per topic, and across topics on one server)."""
    async with running_redis(tmp_path / "redis", cluster=cluster) as server:
        url = server.cluster_url if cluster else server.url
        async with open_redis_bus(url) as node_a, open_redis_bus(url) as node_b:
            inboxes = {topic: Inbox() for topic in ("room:1", "room:2", "room:3")}
            for topic, inbox in inboxes.items():
                await node_b.subscribe(topic, inbox)
            sent: dict[str, list[bytes]] = {topic: [] for topic in inboxes}
            for i in range(1_000):  # more than one pipeline's worth, queued at once
                topic = f"room:{i % 3 + 1}"
                sent[topic].append(b"%d" % i)
                await node_a.publish(topic, sent[topic][-1])
            for topic, inbox in inboxes.items():
                await inbox.wait_for(len(sent[topic]))
                assert inbox.payloads == sent[topic]
            assert node_a.dropped == 0


class SchedulerPasses(trio.abc.Instrument):
    """Counts the passes of trio's scheduler (one I/O check each)."""

    def __init__(self) -> None:
        self.count = 0

    def after_io_wait(self, timeout: float) -> None:
        self.count += 1


async def _stay_runnable() -> None:
    while True:  # runnable at every pass, as a busy node's tasks are
        await trio.lowlevel.checkpoint()


async def test_a_busy_node_takes_in_a_burst_of_publications_in_few_scheduler_passes(
    redis: RedisServer,
) -> None:
    """A node whose tasks keep trio's run queue full (as a busy node's connections do)
    must not need a scheduler pass per bus message: with coredis' pub/sub it did (two
    memory-stream hops a message), so a busy node fell behind what it was sent."""
    passes = SchedulerPasses()
    trio.lowlevel.add_instrument(passes)
    try:
        async with open_redis_bus(redis.url) as node_a, open_redis_bus(redis.url) as node_b:
            received = Inbox()
            await node_b.subscribe("room:1", received)
            async with trio.open_nursery() as nursery:
                for _ in range(20):
                    nursery.start_soon(_stay_runnable)
                before = passes.count
                for n in range(500):
                    await node_a.publish("room:1", b"%d" % n)
                await received.wait_for(500)
                used = passes.count - before
                nursery.cancel_scope.cancel()
    finally:
        trio.lowlevel.remove_instrument(passes)
    assert received.payloads == [b"%d" % n for n in range(500)]
    assert used < 250, f"{used} scheduler passes for 500 bus messages"


async def test_a_topic_subscribed_while_redis_is_away_is_delivered_once_it_is_back(
    redis: RedisServer,
) -> None:
    async with open_redis_bus(redis.url) as node_a, open_redis_bus(redis.url) as node_b:
        await redis.stop()
        received = Inbox()
        with trio.fail_after(10):  # does not wait for Redis
            await node_b.subscribe("room:1", received)
        await redis.start()
        with trio.fail_after(30):
            while not received.payloads:
                await node_a.publish("room:1", b"back")
                with trio.move_on_after(0.2):
                    await received.wait_for(1)
        assert set(received.payloads) == {b"back"}


def test_cluster_urls_name_their_startup_nodes() -> None:
    assert cluster_nodes("redis://127.0.0.1:6379/0") is None
    assert cluster_nodes("redis-cluster://10.0.0.1:7000") == [{"host": "10.0.0.1", "port": 7000}]
    assert cluster_nodes("redis://a:7000,redis://b:7001") == [
        {"host": "a", "port": 7000},
        {"host": "b", "port": 7001},
    ]


@pytest.mark.parametrize("cluster", [False, True], ids=["server", "cluster"])
async def test_the_bus_speaks_tls_with_a_password(tmp_path: Path, cluster: bool) -> None:
    tls = tls_files(tmp_path / "tls")
    async with running_redis(
        tmp_path / "redis", cluster=cluster, tls=tls, password="s3cret"
    ) as redis:
        url = redis.tls_cluster_url if cluster else redis.tls_url
        assert url.startswith("rediss")
        async with open_redis_bus(url) as node_a, open_redis_bus(url) as node_b:
            received = Inbox()
            await node_b.subscribe("room:1", received)
            await node_a.publish("room:1", b"over tls")
            await received.wait_for(1)
    assert received.payloads == [b"over tls"]


def test_cluster_urls_carry_credentials_and_tls_to_each_node(tmp_path: Path) -> None:
    tls = tls_files(tmp_path)
    url = "rediss-cluster://app:p%40ss@10.0.0.1:7000,10.0.0.2:7001?ssl_ca_certs=/etc/ca.pem"
    assert cluster_nodes(url) == [
        {"host": "10.0.0.1", "port": 7000},
        {"host": "10.0.0.2", "port": 7001},
    ]
    options = _cluster_connection_options(url.replace("/etc/ca.pem", str(tls.ca)))
    assert (options["username"], options["password"]) == ("app", "p@ss")
    assert options["ssl_context"].verify_mode == ssl.CERT_REQUIRED
