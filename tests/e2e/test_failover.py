"""The SDK after faults: it fails over to another listed gateway, and after `too_far`
it catches up over HTTP then goes on live, every message once and in order."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import attrs
import pytest
import trio

from chorus import protocol
from chorus.client import ConnectionLost, Event, HttpApi, RealtimeClient, Reconnected
from tests.cluster.nodes import pump
from tests.e2e.node import PASSWORD, chat_user, connected_user, open_node
from tests.polling import until
from tests.ports import free_port
from tests.redisserver import RedisServer, running_redis


@pytest.fixture
async def redis(tmp_path: Path) -> AsyncIterator[RedisServer]:
    async with running_redis(tmp_path / "redis") as server:
        yield server


@attrs.define(eq=False)
class Switch:
    """A gateway's stand-in: forwards to it until `kill()`, then accepts and never answers
    (like a node that is down behind a load balancer, or hung)."""

    target: int
    port: int = 0
    alive: bool = True
    refuse: bool = False
    """When dead: close new connections at once instead of holding them."""
    held: int = 0
    """Connections accepted after `kill()` (a client trying the dead gateway)."""
    _scopes: list[trio.CancelScope] = attrs.field(factory=list)

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        self.port = listeners[0].socket.getsockname()[1]
        task_status.started()
        await trio.serve_listeners(self._handle, listeners)

    def kill(self) -> None:
        self.alive = False
        for scope in self._scopes:
            scope.cancel()

    async def _handle(self, client: trio.SocketStream) -> None:
        async with client:
            if not self.alive:
                self.held += 1
                if self.refuse:
                    return
                await trio.sleep_forever()
            backend = await trio.open_tcp_stream("127.0.0.1", self.target)
            async with backend, trio.open_nursery() as nursery:
                self._scopes.append(nursery.cancel_scope)
                nursery.start_soon(pump, client, backend, nursery.cancel_scope)
                nursery.start_soon(pump, backend, client, nursery.cancel_scope)


async def next_state(events: trio.MemoryReceiveChannel[Event], timeout: float) -> Event:
    """The next `ConnectionLost` or `Reconnected`, skipping other events."""
    with trio.fail_after(timeout):
        async for event in events:
            if isinstance(event, ConnectionLost | Reconnected):
                return event
    raise AssertionError("the events ended")


async def test_after_a_drop_the_client_moves_to_the_next_gateway_first(
    tmp_path: Path, redis: RedisServer
) -> None:
    gateway_b = free_port()
    async with open_node(tmp_path, redis_url=redis.url) as node_a, trio.open_nursery() as proxy:
        switch = Switch(node_a.gateway_port)
        await proxy.start(switch.serve)
        urls = (f"ws://127.0.0.1:{switch.port}/", f"ws://127.0.0.1:{gateway_b}/")
        async with (
            open_node(
                tmp_path, redis_url=redis.url, gateway_port=gateway_b, public_gateway_urls=urls
            ) as node_b,
            HttpApi(node_b.http_url) as api,
        ):
            await api.register("mover", PASSWORD)
            room = await api.create_room("moving", "public")
            # A long connect timeout: a retry of the dead gateway would hang the test.
            client = RealtimeClient(api, max_backoff=0.5, connect_timeout=60)
            async with trio.open_nursery() as running:
                await running.start(client.run)
                await client.join(room.id)
                before = await client.send(room.id, "before")
                switch.kill()
                assert isinstance(await next_state(client.events, 10), ConnectionLost)
                assert isinstance(await next_state(client.events, 10), Reconnected)
                assert switch.held == 0  # the dead gateway was not tried first
                after = await client.send(room.id, "after")
                running.cancel_scope.cancel()
            stored = await api.history(room.id)
            assert [m.id for m in stored] == [before.id, after.id]
        proxy.cancel_scope.cancel()


async def test_a_gateway_that_never_answers_is_left_for_the_next_one(tmp_path: Path) -> None:
    port = free_port()
    async with trio.open_nursery() as proxy:
        silent = Switch(0, alive=False)  # accepts, never answers
        await proxy.start(silent.serve)
        urls = (f"ws://127.0.0.1:{silent.port}/", f"ws://127.0.0.1:{port}/")
        async with (
            open_node(tmp_path, gateway_port=port, public_gateway_urls=urls) as running,
            HttpApi(running.http_url) as api,
        ):
            await api.register("patient", PASSWORD)
            client = RealtimeClient(api, connect_timeout=0.5)
            async with trio.open_nursery() as connecting:
                with trio.fail_after(10):
                    await connecting.start(client.run)
                connecting.cancel_scope.cancel()
            assert silent.held == 1
            assert client.ready is not None
        proxy.cancel_scope.cancel()


async def test_after_too_far_the_client_catches_up_then_goes_on_live_once_in_order(
    tmp_path: Path,
) -> None:
    ports = {"http_port": free_port(), "gateway_port": free_port()}
    async with trio.open_nursery() as nursery:
        async with open_node(tmp_path, resume_limit=3, **ports) as first:
            bob = await nursery.start(connected_user, first, "bob")
            room = await first_room(bob.api)
            await bob.client.join(room)
            sent = await bob.client.send(room, "seen live")
            await bob.wait_for_messages(1, room)
        # While bob is away, an API-only node stores more than resume_limit messages:
        # more than one page of the HTTP API, so the catch-up pages too.
        async with (
            open_node(tmp_path, role="api", **ports) as api_only,
            HttpApi(api_only.http_url) as ada,
        ):
            await ada.register("ada", PASSWORD)
            await ada.join_room(room)
            missed = [await ada.post(room, f"missed {n}", f"missed-{n}") for n in range(120)]
        async with open_node(tmp_path, resume_limit=3, **ports) as again:
            with trio.fail_after(20):
                while Reconnected(caught_up=120) not in bob.outages:
                    await bob.changed.wait()
            async with chat_user(again, "ada", existing=True) as ada_live:
                await ada_live.client.join(room)
                live = [await ada_live.client.send(room, f"live {n}") for n in range(3)]
            await bob.wait_for_messages(1 + 120 + 3, room)
        nursery.cancel_scope.cancel()
    expected = [sent, *missed, *live]
    assert [m.id for m in bob.messages(room)] == [m.id for m in expected]
    assert [m.seq for m in bob.messages(room)] == list(range(1, 1 + 120 + 3 + 1))


async def first_room(api: HttpApi) -> str:
    return (await api.create_room("general", "public")).id


async def test_a_failed_catch_up_reconnects_and_is_done_again(tmp_path: Path) -> None:
    ports = {"http_port": free_port(), "gateway_port": free_port()}
    received: list[protocol.Message] = []
    states: list[Event] = []
    back = trio.Event()

    async def collect(client: RealtimeClient) -> None:
        async for event in client.events:
            if isinstance(event, protocol.MessageEvent):
                received.append(event.message)
            elif isinstance(event, ConnectionLost | Reconnected):
                states.append(event)
                if event == Reconnected(caught_up=10):
                    back.set()

    async with trio.open_nursery() as outer:
        http = Switch(ports["http_port"], refuse=True)  # bob's HTTP goes through it
        await outer.start(http.serve)
        api = HttpApi(f"http://127.0.0.1:{http.port}")
        client = RealtimeClient(
            api, gateway_url=f"ws://127.0.0.1:{ports['gateway_port']}/", max_backoff=0.2
        )
        async with open_node(tmp_path, resume_limit=3, **ports):
            await api.register("bob", PASSWORD)
            room = await first_room(api)
            await outer.start(client.run)
            outer.start_soon(collect, client)
            await client.join(room)
            seen = await client.send(room, "seen live")
        async with (
            open_node(tmp_path, role="api", **ports) as api_only,
            HttpApi(api_only.http_url) as ada,
        ):
            await ada.register("ada", PASSWORD)
            await ada.join_room(room)
            missed = [await ada.post(room, f"missed {n}", f"missed-{n}") for n in range(10)]
        http.kill()  # bob's catch-up over HTTP will fail
        async with open_node(tmp_path, resume_limit=3, **ports):
            # Each connection asks for the user's rooms, then (after too_far) for the
            # room's events: a second refused HTTP connection is a failed catch-up.
            await until(lambda: _true(http.held >= 3), timeout=20)
            assert Reconnected(caught_up=10) not in states
            http.alive = True
            with trio.fail_after(20):
                await back.wait()
        outer.cancel_scope.cancel()
    await api.aclose()
    assert [m.id for m in received] == [seen.id, *(m.id for m in missed)]


async def _true(value: bool) -> bool:
    return value
