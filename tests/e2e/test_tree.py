"""What a node's supervision tree promises (DESIGN.md §4): crashes stay where they belong."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import orjson
import pytest
import trio
from prometheus_client import REGISTRY
from trio_websocket import WebSocketConnection

from chorus import protocol
from chorus.actors.presence import ConnectionStatus
from chorus.persistence import Membership, Room
from tests.e2e.node import PASSWORD, ChatUser, RunningNode, chat_user, open_node
from tests.e2e.test_chat import next_frame, shared_room
from tests.e2e.test_rich import webhook_receiver
from tests.gateway.test_gateway import (
    probe,
    raw_socket,
    read_close,
    read_until_closed,
    upgrade_request,
)
from tests.httpraw import read_response, refuses_connections, request_awaiting_body
from tests.polling import until
from tests.ports import free_port
from tests.wsclient import ws_connect

UPGRADE = upgrade_request(b"/", b"Sec-WebSocket-Protocol: chorus.v1\r\n")
CRASHES = 10
"""More than any restart budget in the node (3 in 5 s each)."""


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[RunningNode]:
    async with open_node(tmp_path) as node:
        yield node


@asynccontextmanager
async def signed_in(running: RunningNode, user: ChatUser) -> AsyncIterator[WebSocketConnection]:
    """A raw WebSocket of `user`, past `hello`: unlike the SDK, it never reconnects by itself."""
    assert user.api.session is not None
    async with ws_connect(running.gateway_port) as ws:
        hello = protocol.Hello(token=user.api.session.access_token)
        await ws.send_message(protocol.encode(hello).decode())
        assert isinstance(await next_frame(ws), protocol.Ready)
        yield ws


async def assert_still_open(ws: WebSocketConnection) -> None:
    """The same socket still answers (a closed one raises `ConnectionClosed`)."""
    await ws.send_message(protocol.encode(protocol.Ping(nonce="still here")).decode())
    with trio.fail_after(10):
        while await next_frame(ws) != protocol.Pong(nonce="still here"):
            pass  # events that arrived before the answer


def restarts(supervisor: str, child: str) -> float:
    labels = {"supervisor": supervisor, "child": child}
    return REGISTRY.get_sample_value("chorus_supervisor_restarts_total", labels) or 0.0


def crashes(supervisor: str, child: str) -> float:
    labels = {"supervisor": supervisor, "child": child, "reason": "crash"}
    return REGISTRY.get_sample_value("chorus_supervisor_child_exits_total", labels) or 0.0


async def test_room_actors_crashing_past_every_budget_leave_other_clients_connected(
    running: RunningNode, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with chat_user(running) as ada, chat_user(running) as bob:
        calm = await shared_room(ada, bob)
        doomed = (await ada.api.create_room("doomed", "public")).id
        store = running.node.services.store
        last_seq = store.last_seq

        async def last_seq_with_a_bug(room_id: str) -> int:
            if room_id == doomed:
                raise RuntimeError("injected bug")  # every actor of the room crashes at start
            return await last_seq(room_id)

        monkeypatch.setattr(store, "last_seq", last_seq_with_a_bug)
        rooms = running.node.services.rooms
        before = crashes("rooms", "room")
        async with signed_in(running, bob) as ws:
            for _ in range(CRASHES):
                room_actor = await rooms.actor(doomed)
                with trio.fail_after(10):
                    await room_actor.wait_stopped()
            # At least: ada's SDK also tries to follow the room it created (and crashes it).
            assert crashes("rooms", "room") >= before + CRASHES
            await assert_still_open(ws)
        with trio.fail_after(10):  # the SDK would wait for a gateway that moved away
            await ada.client.send(calm, "still chatting")
        await bob.wait_for_messages(1, calm)


async def test_presence_actors_crashing_past_every_budget_leave_other_clients_connected(
    running: RunningNode, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = running.node.services.store
    rooms_of = store.rooms_of
    doomed = [f"ghost-{n}" for n in range(CRASHES)]

    async def rooms_of_with_a_bug(user_id: str) -> list[tuple[Room, Membership]]:
        if user_id in doomed:
            raise RuntimeError("injected bug")  # their presence actors crash announcing
        return await rooms_of(user_id)

    monkeypatch.setattr(store, "rooms_of", rooms_of_with_a_bug)
    presence = running.node.services.presence
    async with chat_user(running) as ada, signed_in(running, ada) as ws:
        before = crashes("presence", "presence")
        for user_id in doomed:
            await presence.report(user_id, ConnectionStatus(conn_id="c1", status="online"))

        async def all_crashed() -> bool:
            return crashes("presence", "presence") == before + CRASHES

        await until(all_crashed)
        await assert_still_open(ws)


async def test_a_notifier_crash_restarts_the_notifier_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with (
        webhook_receiver() as (url, pushed),
        open_node(tmp_path, notification_webhook_url=url) as running,
        chat_user(running) as ada,
        chat_user(running) as bob,
    ):
        room = await shared_room(ada, bob)
        notifier = running.node.notifier
        push = notifier._push
        crashed = trio.Event()

        async def push_with_a_bug(client: httpx.AsyncClient, body: bytes) -> None:
            if not crashed.is_set():
                crashed.set()
                raise RuntimeError("injected bug")
            await push(client, body)

        monkeypatch.setattr(notifier, "_push", push_with_a_bug)
        children = ("notifier", "chat", "http")
        before = {child: restarts("node", child) for child in children}
        # A deadline: the SDK waits for a gateway that (restarted on port 0) moved away.
        with trio.fail_after(20):
            async with signed_in(running, bob) as ws:
                await ada.client.send(room, f"@{bob.api.user.username} first")
                await crashed.wait()
                await ada.client.send(room, f"@{bob.api.user.username} second")
                _headers, body = await pushed.receive()
                assert b"second" in body  # the restarted notifier pushes what came next
                await assert_still_open(ws)
        after = {child: restarts("node", child) for child in children}
        assert after == before | {"notifier": before["notifier"] + 1}


async def test_a_request_in_flight_when_the_node_stops_still_gets_its_response(
    tmp_path: Path,
) -> None:
    # A grace far longer than `read_response` waits: the answer must not wait for it.
    async with open_node(tmp_path, shutdown_grace=60) as running:
        assert running.addresses.http is not None
        port = running.addresses.http[1]
        body = orjson.dumps({"username": "latecomer", "password": PASSWORD})
        async with await request_awaiting_body(port, "/api/v1/auth/register", len(body)) as held:
            running.node.request_stop()
            await until(functools.partial(refuses_connections, port))  # stops accepting at once
            await held.send_all(body)
            response = await read_response(held)  # the answer, then the server closes
        with trio.fail_after(10):
            await running.node.stopped.wait()
    assert response.startswith(b"HTTP/1.1 201 "), response


async def test_a_stopping_node_reports_not_ready_and_refuses_new_websockets_at_once(
    tmp_path: Path,
) -> None:
    # The HTTP API stops first and waits for a held request: meanwhile the
    # gateway still accepts, so a load balancer must learn from its probe.
    async with open_node(tmp_path, shutdown_grace=60) as running:
        assert running.addresses.http is not None
        gateway = running.gateway_port
        assert (await probe(gateway, "/readyz")).startswith(b"HTTP/1.1 200 ")
        body = orjson.dumps({"username": "latecomer", "password": PASSWORD})
        port = running.addresses.http[1]
        async with (
            await request_awaiting_body(port, "/api/v1/auth/register", len(body)) as held,
            raw_socket(gateway) as connected,  # a WebSocket opened before the stop
        ):
            await connected.send_all(
                upgrade_request(b"/", b"Sec-WebSocket-Protocol: chorus.v1\r\n")
            )
            assert (await connected.receive_some(4096)).startswith(b"HTTP/1.1 101 ")
            running.node.request_stop()
            answer = await probe(gateway, "/readyz")
            async with raw_socket(gateway) as late:
                await late.send_all(UPGRADE)
                refused = await read_until_closed(late)
            # The open one is sent elsewhere at once (4007 with a delay hint).
            close = await read_close(connected)
            await held.send_all(body)
            await read_response(held)
        with trio.fail_after(10):
            await running.node.stopped.wait()
    assert answer.startswith(b"HTTP/1.1 503 "), answer
    assert refused.startswith(b"HTTP/1.1 503 "), refused
    assert close is not None
    assert close[0] == protocol.CloseCode.RECONNECT
    assert close[1].startswith("draining; retry_after_ms="), close


async def test_a_gateway_only_node_has_readiness_on_its_gateway_port(tmp_path: Path) -> None:
    async with open_node(tmp_path, role="gateway") as running:
        assert running.addresses.http is None
        ready = await probe(running.gateway_port, "/readyz")
    assert ready.startswith(b"HTTP/1.1 200 ")
    assert ready.endswith(b'{"status":"ready"}')


async def test_a_restarted_node_serves_resumes_as_soon_as_its_gateway_reports_ready(
    tmp_path: Path,
) -> None:
    ports = {"http_port": free_port(), "gateway_port": free_port()}
    async with open_node(tmp_path, **ports) as running, chat_user(running, "ada") as ada:
        room = await ada.api.create_room("general", "public")
        for n in range(3):
            await ada.api.post(room.id, f"before the restart {n}", f"c{n}")
        assert ada.api.session is not None
        token = ada.api.session.access_token

    async def answers_ready() -> bool:
        try:
            return (await probe(ports["gateway_port"], "/readyz")).startswith(b"HTTP/1.1 200 ")
        except OSError:
            return False  # not listening yet

    stop = trio.Event()

    async def restarted_node() -> None:
        async with open_node(tmp_path, **ports):
            await stop.wait()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(restarted_node)
        await until(answers_ready)  # probing while the node starts: the first "ready" counts
        async with ws_connect(ports["gateway_port"]) as ws:
            await ws.send_message(protocol.encode(protocol.Hello(token=token)).decode())
            assert isinstance(await next_frame(ws), protocol.Ready)
            resume = protocol.Resume(ref="r1", rooms={room.id: 0})
            await ws.send_message(protocol.encode(resume).decode())
            frames = [await next_frame(ws) for _ in range(4)]
        stop.set()
    replayed = [frame.message.body for frame in frames if isinstance(frame, protocol.MessageEvent)]
    assert replayed == [f"before the restart {n}" for n in range(3)]
    assert isinstance(frames[3], protocol.Replayed)
