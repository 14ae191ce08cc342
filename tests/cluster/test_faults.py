"""Three `chorus serve` processes on one PostgreSQL and one Redis, under faults.

Clients use the SDK through `FailoverProxy` (one per home node, for HTTP and
for the gateway): a client talks to its home node while it lives and is
forwarded to the next live node once it has died. Every scenario asserts, for
every member, zero lost, duplicated and reordered messages.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import attrs
import coredis
import pytest
import trio
from trio_websocket import WebSocketConnection

from chorus import protocol
from chorus.client import ApiError, HttpApi, RealtimeClient
from tests.cluster.nodes import (
    Chatter,
    FailoverProxy,
    NodeProcess,
    Tally,
    chatter,
    running_nodes,
    tally,
)
from tests.e2e.node import PASSWORD
from tests.gateway.test_gateway import closed_code
from tests.pgserver import PgServer
from tests.polling import until
from tests.redisserver import RedisServer
from tests.wsclient import ws_connect

NODES = 3
DELIVERY_TIMEOUT = 15.0


@attrs.define(eq=False)
class Cluster:
    nodes: list[NodeProcess]
    http_proxies: list[FailoverProxy]
    gateway_proxies: list[FailoverProxy]
    users: list[Chatter]
    room: str
    extra_acked: list[protocol.Message] = attrs.field(factory=list)
    """Acknowledged messages not sent by a `Chatter`'s SDK client (HTTP posts)."""

    def home(self, user: Chatter) -> int:
        return int(user.name[1])

    def acked(self) -> list[protocol.Message]:
        return [m for user in self.users for m in user.acked] + self.extra_acked

    async def send_many(self, user: Chatter, count: int, start: int = 0) -> None:
        """Send `count` messages one after another, each awaited until acknowledged."""
        for k in range(start, start + count):
            message = await user.client.send(self.room, f"{user.name} #{k}")
            user.acked.append(message)

    async def all_send(self, count: int, *, start: int = 0) -> None:
        async with trio.open_nursery() as nursery:
            for user in self.users:
                nursery.start_soon(self.send_many, user, count, start)

    async def stored(self) -> list[protocol.Message]:
        """Every message of the room in the database, in seq order (over HTTP)."""
        messages: list[protocol.Message] = []
        api = self.users[0].api
        for _ in range(100):  # bounded: 100 pages of 100
            page = await api.history(
                self.room, after=messages[-1].seq if messages else 0, limit=100
            )
            messages += page
            if len(page) < 100:
                return messages
        raise AssertionError("history did not end")

    async def verify(self) -> None:
        """Every acknowledged message stored, and received once, in order, by every member."""
        acked = self.acked()
        ids = {m.id for m in acked}
        assert len(ids) == len(acked), "a send was acknowledged as two different messages"
        async with trio.open_nursery() as nursery:
            for user in self.users:
                nursery.start_soon(user.wait_until_received, ids, DELIVERY_TIMEOUT)
        stored = await self.stored()
        assert [m.seq for m in stored] == list(range(1, len(stored) + 1))
        assert ids <= {m.id for m in stored}, "acknowledged but not stored"
        assert {m.id for m in stored} == ids, "stored but never acknowledged"
        senders = [user.acked for user in self.users]
        tallies = {user.name: tally(user.received, acked, senders) for user in self.users}
        assert tallies == {user.name: Tally(0, 0, 0) for user in self.users}
        for user in self.users:
            assert [m.id for m in user.received] == [m.id for m in stored], user.name


@asynccontextmanager
async def cluster(
    tmp_path: Path,
    pg_server: PgServer,
    redis: RedisServer,
    *,
    per_node: int = 1,
    env: dict[str, str] | None = None,
) -> AsyncIterator[Cluster]:
    _, database_url = await pg_server.new_database()
    urls = {"database_url": database_url, "redis_url": redis.url}
    async with (
        running_nodes(tmp_path, NODES, **urls, env=env) as nodes,
        trio.open_nursery() as nursery,
        AsyncExitStack() as stack,
    ):
        http_proxies, gateway_proxies = [], []
        for n in range(NODES):
            order = nodes[n:] + nodes[:n]  # home node first, then the others
            http = FailoverProxy([node.http_port for node in order])
            gateway = FailoverProxy([node.gateway_port for node in order])
            await nursery.start(http.serve)
            await nursery.start(gateway.serve)
            http_proxies.append(http)
            gateway_proxies.append(gateway)
        users = [
            await stack.enter_async_context(
                chatter(f"n{n}u{k}", http_proxies[n].port, gateway_proxies[n].port)
            )
            for n in range(NODES)
            for k in range(per_node)
        ]
        room = await users[0].api.create_room("faults", "public")
        for user in users[1:]:
            await user.api.join_room(room.id)
        for user in users:
            await user.client.join(room.id)
        try:
            yield Cluster(nodes, http_proxies, gateway_proxies, users, room.id)
        finally:
            await stack.aclose()
            nursery.cancel_scope.cancel()


async def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll `condition` until true, failing after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await trio.sleep(0.01)


async def during(
    action: Callable[[], Awaitable[None]], traffic: Callable[[], Awaitable[None]]
) -> None:
    """Run `traffic` and `action` concurrently, both bounded in time."""
    with trio.fail_after(45):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(traffic)
            await action()


def message(seq: int, sender: str = "u1") -> protocol.Message:
    return protocol.Message(
        id=f"m{seq}",
        room="r1",
        seq=seq,
        sender=sender,
        body=f"#{seq}",
        client_id=f"c{seq}",
        created_at=0,
        edited_at=None,
    )


def test_the_tally_counts_lost_duplicated_and_reordered_messages() -> None:
    one, two, three, four = (message(n) for n in range(1, 5))
    assert tally([one, two, three], [one, two, three], [[one, two, three]]) == Tally(0, 0, 0)
    assert tally([one, three], [one, two, three], [[one, two, three]]) == Tally(1, 0, 0)
    assert tally([one, two, two, three], [one, two, three], []) == Tally(0, 1, 1)
    assert tally([two, one, three], [one, two, three], []) == Tally(0, 0, 1)
    # Stored in seq order, but not in the order the sender's sends were acknowledged.
    assert tally([one, two], [one, two], [[two, one]]) == Tally(0, 0, 1)
    assert tally([one, two, four], [one, two, three, four], [[one, four]]) == Tally(1, 0, 0)


async def test_clients_on_three_nodes_chat_in_order_without_duplicates(
    tmp_path: Path, pg_server: PgServer, redis: RedisServer
) -> None:
    async with cluster(tmp_path, pg_server, redis) as chat:
        with trio.fail_after(30):
            await chat.all_send(20)
        await chat.verify()
        assert len(chat.acked()) == 60
        # Each client really was on its own node.
        assert [p.connections[0] for p in chat.gateway_proxies] == [
            node.gateway_port for node in chat.nodes
        ]


async def test_kill_9_a_node_while_messages_flow(
    tmp_path: Path, pg_server: PgServer, redis: RedisServer
) -> None:
    async with cluster(tmp_path, pg_server, redis, per_node=2) as chat:
        victim = chat.nodes[1]
        killed_at: list[int] = []

        async def kill() -> None:
            await wait_for(lambda: len(chat.acked()) >= 15, 20, "messages to flow")
            await victim.kill9()
            killed_at.append(len(chat.acked()))

        await during(kill, lambda: chat.all_send(15))
        await chat.verify()
        assert victim.process.returncode == -9
        assert killed_at[0] < len(chat.acked()) == 90, "the node died after the traffic ended"
        # The victim's clients moved to another node through their proxy.
        moved = chat.gateway_proxies[1].connections
        assert moved[0] == victim.gateway_port
        assert any(port != victim.gateway_port for port in moved[1:]), moved


async def test_redis_restart_while_messages_flow(
    tmp_path: Path, pg_server: PgServer, redis: RedisServer
) -> None:
    async with cluster(tmp_path, pg_server, redis) as chat:
        restarted_at: list[int] = []

        async def restart() -> None:
            await wait_for(lambda: len(chat.acked()) >= 10, 20, "messages to flow")
            await redis.stop()
            before = len(chat.acked())
            # Sends go on while Redis is down (PostgreSQL stores them).
            await wait_for(lambda: len(chat.acked()) >= before + 6, 20, "sends without Redis")
            await redis.start()
            restarted_at.append(len(chat.acked()))

        await during(restart, lambda: chat.all_send(25))
        assert restarted_at[0] < len(chat.acked()) == 75, "Redis came back after the traffic"
        await chat.verify()
        # Live delivery across nodes works again after the restart.
        await chat.all_send(3, start=25)
        await chat.verify()


async def post_until_accepted(chat: Cluster) -> protocol.Message:
    """Retry the refused HTTP post (same client id) until the recovered node stores it."""
    deadline = time.monotonic() + 15
    for _ in range(1000):  # bounded in count and (below) in time
        try:
            return await chat.users[0].api.post(chat.room, "over http", "http-during-outage")
        except ApiError as exc:
            if exc.status != 503 or time.monotonic() > deadline:
                raise
        await trio.sleep(0.05)
    raise AssertionError("the HTTP post was never accepted")


async def test_postgres_outage_refuses_sends_and_recovers(
    tmp_path: Path, pg_server: PgServer, redis: RedisServer
) -> None:
    async with cluster(tmp_path, pg_server, redis) as chat:
        with trio.fail_after(20):
            await chat.all_send(5)
        acked_before = len(chat.acked())
        await trio.to_thread.run_sync(pg_server.stop)
        try:
            with trio.fail_after(45):
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(lambda: chat.all_send(5, start=5))
                    # Sends get error replies: each SDK client keeps its message in
                    # its outbox and counts a failed attempt (no reply would count none).
                    await wait_for(
                        lambda: all(
                            any(p.attempts > 0 for p in u.client._outbox.values())
                            for u in chat.users
                        ),
                        15,
                        "error replies to the sends",
                    )
                    with pytest.raises(ApiError) as refused:
                        await chat.users[0].api.post(chat.room, "over http", "http-during-outage")
                    assert refused.value.status == 503
                    assert len(chat.acked()) == acked_before, "acknowledged without a database"
                    assert all(u.client.unacknowledged == 1 for u in chat.users)
                    await trio.to_thread.run_sync(pg_server.start)
                    # The same client id again, now that the database is back.
                    chat.extra_acked.append(await post_until_accepted(chat))
        finally:
            if not pg_server.running:
                await trio.to_thread.run_sync(pg_server.start)
        assert all(u.client.unacknowledged == 0 for u in chat.users)
        await chat.verify()
        assert len(chat.acked()) == 31


async def test_presence_converges_after_a_node_dies(
    tmp_path: Path, pg_server: PgServer, redis: RedisServer
) -> None:
    async with cluster(tmp_path, pg_server, redis) as chat:
        doomed, watcher = chat.nodes[0], chat.users[1]
        # A user connected straight to node 0, with nowhere else to go: it dies with it.
        async with HttpApi(f"http://127.0.0.1:{doomed.http_port}") as api:
            await api.register(f"ghost{secrets.token_hex(3)}", PASSWORD)
            await api.join_room(chat.room)
            ghost = RealtimeClient(
                api, gateway_url=f"ws://127.0.0.1:{doomed.gateway_port}/", max_backoff=1.0
            )
            online = protocol.PresenceEvent(user=api.user.id, status="online")
            offline = protocol.PresenceEvent(user=api.user.id, status="offline")
            async with trio.open_nursery() as nursery:
                await nursery.start(ghost.run)
                await ghost.join(chat.room)
                await wait_for(lambda: online in watcher.presence, DELIVERY_TIMEOUT, "online")
                async with coredis.Redis.from_url(redis.url) as client:
                    reports = await client.hgetall(f"chorus:presence:{api.user.id}")
                assert list(reports.values()) == [b"online"]  # node 0 reported the ghost
                await doomed.kill9()
                # The dead node's heartbeat expires (6 s), a survivor reaps it (every 2 s).
                await wait_for(lambda: offline in watcher.presence, 20, "offline after death")
                nursery.cancel_scope.cancel()


async def open_session_socket(
    stack: AsyncExitStack, node: NodeProcess, token: str
) -> WebSocketConnection:
    """A raw WebSocket of an existing session, straight to `node`, past `ready`."""
    ws = await stack.enter_async_context(ws_connect(node.gateway_port))
    await ws.send_message(protocol.encode(protocol.Hello(token=token)).decode())
    assert isinstance(protocol.decode_server_frame(await ws.get_message()), protocol.Ready)
    return ws


async def test_logout_on_one_node_closes_the_sessions_sockets_on_another(
    tmp_path: Path, pg_server: PgServer, redis: RedisServer
) -> None:
    async with cluster(tmp_path, pg_server, redis) as chat, AsyncExitStack() as stack:
        # A second session of a chatter (whose own client would end with its session).
        username = chat.users[0].api.user.username
        api = await stack.enter_async_context(
            HttpApi(f"http://127.0.0.1:{chat.nodes[0].http_port}")
        )
        session = await api.login(username, PASSWORD)
        elsewhere = await open_session_socket(stack, chat.nodes[2], session.access_token)
        await api.logout()
        assert await closed_code(elsewhere) == protocol.CloseCode.SESSION_REVOKED


async def test_a_users_send_limit_holds_across_nodes(
    tmp_path: Path, pg_server: PgServer, redis: RedisServer
) -> None:
    # A budget that barely refills: on a loaded machine the sends may take seconds,
    # and at the default 20/s the refill alone could let them all pass.
    slow_refill = {"CHORUS_SENDS_PER_SECOND": "0.1", "CHORUS_SEND_BURST": "20"}
    async with (
        cluster(tmp_path, pg_server, redis, env=slow_refill) as chat,
        AsyncExitStack() as stack,
    ):
        user = chat.users[0]
        assert user.api.session is not None
        token = user.api.session.access_token
        first, second = [await open_session_socket(stack, node, token) for node in chat.nodes[1:]]

        async def post(ws: WebSocketConnection, n: int) -> protocol.Ack | protocol.ErrorReply:
            send = protocol.Send(ref=f"s{n}", room=chat.room, client_id=f"{id(ws)}-{n}", body="x")
            await ws.send_message(protocol.encode(send).decode())
            with trio.fail_after(DELIVERY_TIMEOUT):
                while True:
                    frame = protocol.decode_server_frame(await ws.get_message())
                    if (
                        isinstance(frame, protocol.Ack | protocol.ErrorReply)
                        and frame.ref == f"s{n}"
                    ):
                        return frame

        for ws in (first, second):
            join = protocol.Join(ref="j", room=chat.room)
            await ws.send_message(protocol.encode(join).decode())
        # The user's whole burst (20) on the first node: within that node's own bucket.
        for n in range(20):
            assert isinstance(await post(first, n), protocol.Ack)
        # Once the first node has reported them all (it reports every 100 ms while
        # sends keep coming), Redis's bucket is full for 20 x 10 s.
        key = f"limit:send:{user.api.user.id}"
        async with coredis.Redis.from_url(redis.url) as client:

            async def all_reported() -> bool:
                return await client.pttl(key) >= 190_000

            await until(all_reported, timeout=DELIVERY_TIMEOUT)
        # The second node's own bucket is full, but the node reports its first send
        # to Redis at once and learns that the user is over the shared limit: of 19
        # sends (under the 20 strikes that close a socket) one or two pass, the rest
        # are refused, although the second node's own bucket would let all 19 pass.
        replies = [await post(second, n) for n in range(19)]
        refused = [reply for reply in replies if isinstance(reply, protocol.ErrorReply)]
        assert all(reply.code == protocol.ErrorCode.RATE_LIMITED for reply in refused)
        assert len(refused) >= 15, replies
