"""`RedisBus`: the bus over Redis pub/sub, natively on trio.

One connection publishes, one subscribes to every topic this node has local
subscribers for, and `commands` carries the rate-limit report and the
session cache. On one Redis server all three are our own (`RespClient` the
third): `RespPublisher` sends everything queued during a scheduler pass in
one write, `RespSubscriber` takes in every message of a socket read in one
task step. On a Redis Cluster they are coredis' pipelines and sharded pub/sub
(one message per scheduler pass), and coredis' client carries the commands
(`CoredisCommands`). Both reconnect with backoff and resubscribe by themselves; what was published
meanwhile is lost (pub/sub is at-most-once), which room actors repair from
the store (gap detection and periodic resync).
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, Protocol
from urllib.parse import parse_qs, unquote, urlsplit

import coredis
import structlog
import trio
from coredis.typing import Node

from chorus.logs import redact_url
from chorus.metrics import BUS_DROPPED

from ._bus import Deliver, Subscription
from ._client import RespClient
from ._commands import Commands, CoredisCommands
from ._publisher import PUBLISH_QUEUE, PUBLISH_TIMEOUT, RespPublisher
from ._subscriber import RespSubscriber

_log = structlog.get_logger("chorus.cluster")

PUBLISH_BATCH = 256
"""Most publications coredis sends in one pipeline (one round trip)."""


class RedisBus:
    """A `Bus` on one Redis server or a Redis Cluster; build it with `open_redis_bus`.

    On a cluster it uses sharded pub/sub (SPUBLISH/SSUBSCRIBE): a topic lives on
    the shard that owns its slot, so pub/sub traffic scales with the cluster.
    """

    def __init__(self, client: Any, publisher: _Publisher, commands: Commands) -> None:
        self._client = client
        self._publisher = publisher
        self._commands = commands
        self._receiver: _Receiver | None = None
        """Set by `open_redis_bus` (a bus without one only publishes)."""
        self._topics: dict[str, set[Deliver]] = {}

    @property
    def client(self) -> Any:
        """The Redis client (for other cluster state kept in the same Redis)."""
        return self._client

    @property
    def commands(self) -> Commands:
        """Request/reply commands to the same Redis (our own `RespClient` on one server
        over TCP or TLS; coredis' `client` adapted on a Redis Cluster or a unix socket)."""
        return self._commands

    @property
    def dropped(self) -> int:
        """Publications dropped because Redis could not keep up or was away."""
        return self._publisher.dropped

    async def publish(self, topic: str, payload: bytes) -> None:
        """Queue `payload` for publication and return at once (room actors never wait on Redis).

        When the queue is full, or Redis is away, the publication is dropped:
        readers repair message gaps from the store, and typing or presence is
        ephemeral anyway.
        """
        self._publisher.publish(topic, payload)

    async def subscribe(self, topic: str, deliver: Deliver) -> Subscription:
        subscribers = self._topics.setdefault(topic, set())
        subscribers.add(deliver)
        if len(subscribers) == 1 and self._receiver is not None:
            await self._receiver.subscribe(topic)
        return _RedisSubscription(self, topic, deliver)

    async def _unsubscribe(self, topic: str, deliver: Deliver) -> None:
        subscribers = self._topics.get(topic)
        if subscribers is None or deliver not in subscribers:
            return
        subscribers.discard(deliver)
        if not subscribers:
            del self._topics[topic]
            if self._receiver is not None:
                await self._receiver.unsubscribe(topic)

    def _dispatch(self, channel: bytes | str, payload: bytes) -> None:
        """Hand a received payload to the local subscribers of its topic."""
        topic = channel.decode() if isinstance(channel, bytes) else channel
        for deliver in list(self._topics.get(topic, ())):
            deliver(payload)


class _Publisher(Protocol):
    """The publishing side of a `RedisBus`: queues without waiting, drops when it must."""

    dropped: int

    def publish(self, channel: str, payload: bytes) -> None: ...

    async def run(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None: ...


class CoredisPublisher:
    """Publishes through coredis (on a Redis Cluster, sharded: SPUBLISH), in order, what
    was queued meanwhile in one pipeline; a failed or slow pipeline is dropped."""

    def __init__(self, client: Any, *, sharded: bool = False) -> None:
        self._client = client
        self._sharded = sharded
        self._send = client.spublish if sharded else client.publish
        self._outgoing, self._to_publish = trio.open_memory_channel[tuple[str, bytes]](
            PUBLISH_QUEUE
        )
        self.dropped = 0

    def publish(self, channel: str, payload: bytes) -> None:
        try:
            self._outgoing.send_nowait((channel, payload))
        except trio.WouldBlock:
            self.dropped += 1
            BUS_DROPPED.inc()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Publish what is queued until cancelled.

        One round trip per batch instead of per publication (650 µs each, awaited one
        by one, against 50 µs pipelined here: docs/benchmarks.md). A failure drops
        that batch.
        """
        task_status.started()
        async for first in self._to_publish:
            batch = [first]
            while len(batch) < PUBLISH_BATCH:
                try:
                    batch.append(self._to_publish.receive_nowait())
                except trio.WouldBlock:
                    break
            try:
                with trio.fail_after(PUBLISH_TIMEOUT):
                    await self._publish_batch(batch)
            except Exception as exc:  # Redis away: log, drop, go on (readers repair)
                self.dropped += len(batch)
                BUS_DROPPED.inc(len(batch))
                _log.warning(
                    "bus.publish_failed", topic=batch[0][0], count=len(batch), error=str(exc)
                )

    async def _publish_batch(self, batch: list[tuple[str, bytes]]) -> None:
        if len(batch) == 1:
            await self._send(*batch[0])
            return
        async with self._client.pipeline(transaction=False) as pipe:
            send = pipe.spublish if self._sharded else pipe.publish
            for topic, payload in batch:
                send(topic, payload)


class _Receiver(Protocol):
    """The receiving side of a `RedisBus`: subscriptions, and messages to `_dispatch`."""

    async def subscribe(self, channel: str) -> None: ...

    async def unsubscribe(self, channel: str) -> None: ...


class _CoredisReceiver:
    """Receives through coredis' pub/sub (a Redis Cluster's sharded one), one message per
    scheduler pass."""

    def __init__(self, pubsub: Any, dispatch: Callable[[bytes | str, bytes], None]) -> None:
        self._pubsub = pubsub
        self._dispatch = dispatch

    async def subscribe(self, channel: str) -> None:
        await self._pubsub.subscribe(channel)

    async def unsubscribe(self, channel: str) -> None:
        await self._pubsub.unsubscribe(channel)

    async def run(self) -> None:
        while True:
            message = await self._pubsub.get_message(ignore_subscribe_messages=True)
            if message is not None and message["type"] == "message":
                self._dispatch(message["channel"], message["data"])


class _RedisSubscription:
    def __init__(self, bus: RedisBus, topic: str, deliver: Deliver) -> None:
        self._bus = bus
        self._topic = topic
        self._deliver = deliver

    async def unsubscribe(self) -> None:
        await self._bus._unsubscribe(self._topic, self._deliver)


@asynccontextmanager
async def open_redis_bus(url: str) -> AsyncIterator[RedisBus]:
    """A `RedisBus` until the block ends.

    `url` is `redis://host:port/db` for one server (`rediss://` for TLS, with
    `?ssl_ca_certs=/path/ca.pem` to trust a private CA; a password as
    `redis://:password@host`), or a Redis Cluster:
    `redis-cluster://[user:password@]host:port[,host:port...][?query]`
    (`rediss-cluster://` for TLS; or several comma-separated `redis://`
    URLs), naming some of its nodes.
    """
    nodes = cluster_nodes(url)
    if nodes is None and url.partition("://")[0] in _RESP_SCHEMES:
        client: Any = coredis.Redis.from_url(url, decode_responses=False)
        async with client, trio.open_nursery() as nursery:
            publisher = RespPublisher(url)
            commands = RespClient(url)
            bus = RedisBus(client, publisher, commands)
            receiver = RespSubscriber(url, bus._dispatch)
            bus._receiver = receiver
            await nursery.start(receiver.run)
            await nursery.start(publisher.run)
            await nursery.start(commands.run)
            _log.info("bus.connected", url=redact_url(url), cluster=False)
            yield bus
            nursery.cancel_scope.cancel()
        return
    if nodes is None:  # another scheme coredis knows (e.g. unix://): its pub/sub
        client = coredis.Redis.from_url(url, decode_responses=False)
        subscriber = client.pubsub
    else:
        client = coredis.RedisCluster(
            startup_nodes=nodes, decode_responses=False, **_cluster_connection_options(url)
        )
        subscriber = client.sharded_pubsub
    async with client, subscriber(ignore_subscribe_messages=True) as pubsub:
        coredis_publisher = CoredisPublisher(client, sharded=nodes is not None)
        bus = RedisBus(client, coredis_publisher, CoredisCommands(client))
        fallback = _CoredisReceiver(pubsub, bus._dispatch)
        bus._receiver = fallback
        async with trio.open_nursery() as nursery:
            nursery.start_soon(fallback.run)
            await nursery.start(coredis_publisher.run)
            _log.info("bus.connected", url=redact_url(url), cluster=nodes is not None)
            yield bus
            nursery.cancel_scope.cancel()


_RESP_SCHEMES = frozenset({"redis", "rediss"})
"""Single-server URL schemes `RespSubscriber` receives on (TCP, TLS)."""


_CLUSTER_SCHEMES = frozenset({"redis-cluster", "rediss-cluster"})
"""Cluster URL schemes (rediss: TLS)."""


def cluster_nodes(url: str) -> list[Node] | None:
    """The startup nodes named by a Redis Cluster URL; None for a single server.

    A cluster URL is `redis-cluster://` (or `rediss-cluster://` for TLS),
    optional `user:password@`, comma-separated `host:port`s, then an optional
    `?query` (e.g. `ssl_ca_certs=/path/ca.pem`); several comma-separated
    `redis://` URLs name a cluster too.
    """
    scheme = url.partition("://")[0]
    if scheme not in _CLUSTER_SCHEMES and "," not in url:
        return None
    hosts = url.partition("?")[0]
    nodes: list[Node] = []
    for part in hosts.split(","):
        location = part.strip().rpartition("://")[2].rpartition("@")[2].partition("/")[0]
        parsed = urlsplit("//" + location)
        nodes.append(Node(host=parsed.hostname or "127.0.0.1", port=parsed.port or 6379))
    return nodes


def _cluster_connection_options(url: str) -> dict[str, Any]:
    """Credentials and TLS of a cluster URL, for every connection to its nodes.

    `rediss-cluster://` turns TLS on, verified against the system's CAs or
    the `ssl_ca_certs` file the query names; the `user:password@` of the
    URL's first node authenticates.
    """
    scheme, _, rest = url.partition("://")
    hosts, _, query = rest.partition("?")
    first = urlsplit("//" + hosts.partition(",")[0])
    options: dict[str, Any] = {}
    if first.username:
        options["username"] = unquote(first.username)
    if first.password:
        options["password"] = unquote(first.password)
    if scheme in ("rediss-cluster", "rediss"):
        ca_file = parse_qs(query).get("ssl_ca_certs", [None])[0]
        options["ssl_context"] = ssl.create_default_context(cafile=ca_file)
    return options
