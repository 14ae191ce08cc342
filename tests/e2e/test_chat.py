"""Single-node chat end to end: SDK clients, the gateway, room actors and SQLite."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import trio
import trio.testing
from prometheus_client import REGISTRY
from trio_websocket import ConnectionClosed, WebSocketConnection

from chorus import protocol
from chorus.client import ApiError, ConnectionLost, HttpApi, RealtimeClient, Reconnected
from chorus.protocol import CloseCode, ErrorCode
from tests.e2e.node import PASSWORD, ChatUser, RunningNode, chat_user, connected_user, open_node
from tests.gateway.test_gateway import closed_code, masked_frame, read_close_code, upgraded
from tests.ports import free_port
from tests.wsclient import ws_connect


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[RunningNode]:
    async with open_node(tmp_path) as node:
        yield node


async def shared_room(owner: ChatUser, *others: ChatUser) -> str:
    room = await owner.api.create_room("general", "public")
    await owner.client.join(room.id)
    for other in others:
        await other.api.join_room(room.id)
        await other.client.join(room.id)
    return room.id


async def next_frame(ws: WebSocketConnection) -> protocol.ServerFrame:
    """The next server frame that is not presence (which arrives whenever members change)."""
    while True:
        frame = protocol.decode_server_frame(await ws.get_message())
        if not isinstance(frame, protocol.PresenceEvent):
            return frame


def seqs(messages: list[protocol.Message]) -> list[int]:
    return [message.seq for message in messages]


async def test_three_users_chat_in_one_room(running: RunningNode) -> None:
    async with chat_user(running) as ada, chat_user(running) as bob, chat_user(running) as cy:
        room = await shared_room(ada, bob, cy)
        sent = await ada.client.send(room, "hello everyone")
        await bob.client.send(room, "hi ada")
        for user in (ada, bob, cy):
            await user.wait_for_messages(2, room)
            assert [m.body for m in user.messages(room)] == ["hello everyone", "hi ada"]
            assert seqs(user.messages(room)) == [1, 2]
        assert sent.seq == 1
        assert sent.sender == ada.id


async def test_the_ack_comes_after_the_message_is_stored(running: RunningNode) -> None:
    async with chat_user(running) as ada:
        room = await shared_room(ada)
        acked = await ada.client.send(room, "durable")
        history = await ada.api.history(room)
        assert [m.id for m in history] == [acked.id]


async def test_concurrent_senders_see_one_order_without_gaps_or_duplicates(
    running: RunningNode,
) -> None:
    per_sender = 30
    async with chat_user(running) as ada, chat_user(running) as bob, chat_user(running) as cy:
        users = (ada, bob, cy)
        room = await shared_room(*users)

        async def burst(user: ChatUser) -> None:
            for n in range(per_sender):
                await user.client.send(room, f"{user.id} {n}")

        async with trio.open_nursery() as nursery:
            for user in users:
                nursery.start_soon(burst, user)
        total = per_sender * len(users)
        orders = []
        for user in users:
            await user.wait_for_messages(total, room)
            assert seqs(user.messages(room)) == list(range(1, total + 1))
            orders.append([m.id for m in user.messages(room)])
            # Each sender's own messages keep the order it sent them in.
            for sender in users:
                mine = [m.body for m in user.messages(room) if m.sender == sender.id]
                assert mine == [f"{sender.id} {n}" for n in range(per_sender)]
        assert orders[0] == orders[1] == orders[2]


async def test_a_retried_send_returns_the_original_and_is_delivered_once(
    running: RunningNode,
) -> None:
    async with chat_user(running) as ada, chat_user(running) as bob:
        room = await shared_room(ada, bob)
        first = await ada.client.send(room, "only once", client_id="retry-1")
        again = await ada.client.send(room, "only once", client_id="retry-1")
        over_http = await ada.api.post(room, "only once", "retry-1")
        assert first == again == over_http
        await ada.client.send(room, "marker")
        await bob.wait_for_messages(2, room)
        assert [m.body for m in bob.messages(room)] == ["only once", "marker"]


async def test_a_reconnecting_client_gets_exactly_the_missed_messages(
    running: RunningNode,
) -> None:
    async with chat_user(running) as ada, chat_user(running) as bob:
        room = await shared_room(ada, bob)
        await ada.client.send(room, "before")
        await bob.wait_for_messages(1, room)
        # Drop bob's connection on the server side; his SDK reconnects and resumes.
        assert bob.api.session is not None
        for connection in running.node.sessions.connections(bob.api.session.session_id):
            connection.close(CloseCode.GOING_AWAY, "the test drops you")
        for n in range(5):
            await ada.client.send(room, f"missed {n}")
        await bob.wait_for_messages(6, room)
        await ada.client.send(room, "after")
        await bob.wait_for_messages(7, room)
        assert [m.body for m in bob.messages(room)] == [
            "before",
            *(f"missed {n}" for n in range(5)),
            "after",
        ]
        assert seqs(bob.messages(room)) == list(range(1, 8))


async def test_resume_replays_after_the_given_seq_then_marks_the_end(
    running: RunningNode,
) -> None:
    async with chat_user(running) as ada:
        room = await shared_room(ada)
        for n in range(4):
            await ada.client.send(room, f"m{n}")
        assert ada.api.session is not None
        async with ws_connect(running.gateway_port) as ws:
            await ws.send_message(
                protocol.encode(protocol.Hello(token=ada.api.session.access_token)).decode()
            )
            assert isinstance(await next_frame(ws), protocol.Ready)
            resume = protocol.Resume(ref="r1", rooms={room: 2})
            await ws.send_message(protocol.encode(resume).decode())
            frames = [await next_frame(ws) for _ in range(4)]
        replayed = [f.message.seq for f in frames if isinstance(f, protocol.MessageEvent)]
        assert replayed == [3, 4]
        assert protocol.Replayed(room=room, after_seq=2, last_seq=4, count=2) in frames
        assert protocol.Ack(ref="r1") in frames


async def test_resume_past_the_limit_answers_too_far(tmp_path: Path) -> None:
    async with open_node(tmp_path, resume_limit=3) as running, chat_user(running) as ada:
        room = await shared_room(ada)
        for n in range(5):
            await ada.client.send(room, f"m{n}")
        assert ada.api.session is not None
        async with ws_connect(running.gateway_port) as ws:
            await ws.send_message(
                protocol.encode(protocol.Hello(token=ada.api.session.access_token)).decode()
            )
            await ws.get_message()
            await ws.send_message(
                protocol.encode(protocol.Resume(ref="r", rooms={room: 0})).decode()
            )
            frames = [await next_frame(ws) for _ in range(2)]
        assert frames == [
            protocol.TooFar(room=room, after_seq=0, last_seq=5),
            protocol.Ack(ref="r"),
        ]


async def test_non_members_cannot_join_private_rooms_post_or_receive(
    running: RunningNode,
) -> None:
    async with chat_user(running) as ada, chat_user(running) as eve:
        private = await ada.api.create_room("secret", "private")
        await ada.client.join(private.id)
        with pytest.raises(ApiError) as refused:
            await eve.client.join(private.id)
        assert refused.value.code == ErrorCode.FORBIDDEN
        with pytest.raises(ApiError) as not_joined:
            await eve.client.send(private.id, "let me in")
        assert not_joined.value.code == ErrorCode.NOT_JOINED
        with pytest.raises(ApiError) as http_refused:
            await eve.api.history(private.id)
        assert http_refused.value.status == 403
        await ada.client.send(private.id, "for members only")
        await ada.wait_for_messages(1, private.id)
        await trio.testing.wait_all_tasks_blocked()
        assert eve.messages() == []


async def test_logout_closes_that_sessions_sockets(running: RunningNode) -> None:
    # A bare session: an SDK client on it would (rightly) stop with session_revoked too.
    async with HttpApi(running.http_url) as api:
        await api.register("leaver", PASSWORD)
        assert api.session is not None
        token = api.session.access_token
        async with ws_connect(running.gateway_port) as ws:
            await ws.send_message(protocol.encode(protocol.Hello(token=token)).decode())
            await ws.get_message()
            await api.logout()
            assert await closed_code(ws) == CloseCode.SESSION_REVOKED


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("{not json", ErrorCode.INVALID_JSON),
        ('{"type":"teleport","ref":"x"}', ErrorCode.UNKNOWN_TYPE),
        (
            '{"type":"send","ref":"x","room":"r","client_id":"c","body":"","extra":1}',
            ErrorCode.EXTRA_FIELD,
        ),
        ('{"type":"join","ref":"x"}', ErrorCode.MISSING_FIELD),
    ],
)
async def test_bad_frames_get_an_error_and_the_connection_stays_open(
    running: RunningNode, frame: str, code: ErrorCode
) -> None:
    async with chat_user(running) as ada:
        assert ada.api.session is not None
        async with ws_connect(running.gateway_port) as ws:
            await ws.send_message(
                protocol.encode(protocol.Hello(token=ada.api.session.access_token)).decode()
            )
            await ws.get_message()
            await ws.send_message(frame)
            error = await next_frame(ws)
            assert isinstance(error, protocol.ErrorReply)
            assert error.code == code
            await ws.send_message(protocol.encode(protocol.Ping(nonce="still here")).decode())
            assert await next_frame(ws) == protocol.Pong(nonce="still here")


async def test_frames_before_hello_and_bad_tokens_close_the_connection(
    running: RunningNode,
) -> None:
    port = running.gateway_port
    async with ws_connect(port) as ws:
        await ws.send_message(protocol.encode(protocol.Ping()).decode())
        error = await next_frame(ws)
        assert isinstance(error, protocol.ErrorReply)
        assert error.code == ErrorCode.UNAUTHENTICATED
        with pytest.raises(ConnectionClosed) as closed:
            await ws.get_message()
        assert closed.value.reason is not None
        assert closed.value.reason.code == CloseCode.UNAUTHENTICATED
    async with ws_connect(port) as ws:
        await ws.send_message(protocol.encode(protocol.Hello(token="forged")).decode())
        error = await next_frame(ws)
        assert isinstance(error, protocol.ErrorReply)
        assert error.code == ErrorCode.INVALID_TOKEN
        with pytest.raises(ConnectionClosed) as closed:
            await ws.get_message()
        assert closed.value.reason is not None
        assert closed.value.reason.code == CloseCode.AUTH_FAILED


async def test_a_client_that_stops_reading_is_closed_and_others_keep_chatting(
    tmp_path: Path,
) -> None:
    async with (
        open_node(tmp_path, max_outbox_bytes=64 * 1024) as running,
        chat_user(running) as ada,
        chat_user(running) as bob,
    ):
        room = await shared_room(ada, bob)
        assert bob.api.session is not None
        async with upgraded(running.gateway_port, rcvbuf=4096) as stalled:
            hello = protocol.Hello(token=bob.api.session.access_token)
            join = protocol.Join(ref="j", room=room)
            await stalled.send_all(masked_frame(0x1, protocol.encode(hello)))
            await stalled.send_all(masked_frame(0x1, protocol.encode(join)))
            # Enough to fill the kernel's socket buffers too (several MB on loopback):
            # posted over HTTP, which has no per-connection frame rate limit.
            body, count = "x" * 3900, 1500

            async def poster(start: int) -> None:
                for n in range(start, count, 10):
                    await ada.api.post(room, f"{n} {body}", f"flood-{n}")

            async with trio.open_nursery() as nursery:
                for start in range(10):
                    nursery.start_soon(poster, start)
            # Generous: a loaded machine (the whole suite, other work) slows this flood.
            await ada.wait_for_messages(count, room, timeout=90)
            await bob.wait_for_messages(count, room, timeout=90)
            # Disconnected: it finds 4004 behind its backlog, or (if it stayed stalled past
            # the close deadline, as under load) the server has dropped the connection.
            assert await read_close_code(stalled) in (CloseCode.SLOW_CONSUMER, None)


async def test_typing_and_presence_reach_the_other_members(running: RunningNode) -> None:
    async with chat_user(running) as ada, chat_user(running) as bob:
        room = await shared_room(ada, bob)
        await ada.client.typing(room)
        with trio.fail_after(10):
            while not any(isinstance(e, protocol.TypingEvent) for e in bob.received):
                await bob.changed.wait()
        typing = next(e for e in bob.received if isinstance(e, protocol.TypingEvent))
        assert (typing.room, typing.user) == (room, ada.id)
        await ada.client.set_presence("idle")
        with trio.fail_after(10):
            while protocol.PresenceEvent(user=ada.id, status="idle") not in bob.received:
                await bob.changed.wait()


async def test_restarting_the_server_keeps_accounts_rooms_and_history(tmp_path: Path) -> None:
    async with open_node(tmp_path) as first, chat_user(first, "keeper") as ada:
        room = await shared_room(ada)
        await ada.client.send(room, "remember me")
    async with open_node(tmp_path) as second, HttpApi(second.http_url) as api:
        await api.login("keeper", PASSWORD)
        assert [r.id for r in await api.my_rooms()] == [room]
        assert [m.body for m in await api.history(room)] == ["remember me"]


async def test_messages_sent_while_disconnected_are_delivered_once_after_reconnect(
    running: RunningNode,
) -> None:
    async with chat_user(running) as ada, chat_user(running) as bob:
        room = await shared_room(ada, bob)
        assert ada.api.session is not None
        for connection in running.node.sessions.connections(ada.api.session.session_id):
            connection.close(CloseCode.GOING_AWAY, "the test drops you")
        # Sent while the connection is going down: kept in the outbox, re-sent after it is back.
        async with trio.open_nursery() as nursery:
            for n in range(3):
                send = functools.partial(ada.client.send, client_id=f"offline-{n}")
                nursery.start_soon(send, room, f"offline {n}")
        assert ada.client.unacknowledged == 0
        await ada.client.send(room, "online again")
        await bob.wait_for_messages(4, room)
        await trio.testing.wait_all_tasks_blocked()
        bodies = [m.body for m in bob.messages(room)]
        assert sorted(bodies[:3]) == ["offline 0", "offline 1", "offline 2"]
        assert bodies[3:] == ["online again"]
        assert seqs(bob.messages(room)) == [1, 2, 3, 4]


async def test_a_client_hears_of_its_own_presence_once(running: RunningNode) -> None:
    # The server sends a status once per room it is heard in: the snapshot of each
    # joined room's members, the announcement to each room joined, the broadcast.
    async with chat_user(running) as ada:
        await shared_room(ada)
        second = (await ada.api.create_room("second", "public")).id
        await ada.client.join(second)
        await ada.client.send(second, "both rooms joined and announced before this")
        await ada.wait_for_messages(1, second)
        mine = [
            e for e in ada.received if isinstance(e, protocol.PresenceEvent) and e.user == ada.id
        ]
        assert mine == [protocol.PresenceEvent(user=ada.id, status="online")]


async def test_an_outage_is_reported_once_with_the_messages_caught_up(tmp_path: Path) -> None:
    ports = {"http_port": free_port(), "gateway_port": free_port()}
    async with trio.open_nursery() as nursery:
        async with open_node(tmp_path, **ports) as first:
            bob: ChatUser = await nursery.start(connected_user, first, "bob")
            room = await shared_room(bob)
        # Stopped gracefully; while bob retries, an API-only node stores two messages.
        async with (
            open_node(tmp_path, role="api", **ports) as api_only,
            HttpApi(api_only.http_url) as ada,
        ):
            await ada.register("ada", PASSWORD)
            await ada.join_room(room)
            for n in range(2):
                await ada.post(room, f"missed {n}", client_id=f"missed-{n}")
        assert [type(state) for state in bob.outages] == [ConnectionLost]
        assert isinstance(lost := bob.outages[0], ConnectionLost)
        assert lost.code == CloseCode.RECONNECT  # drained: sent elsewhere at once
        async with open_node(tmp_path, **ports):
            with trio.fail_after(15):
                while len(bob.outages) < 2:
                    await bob.changed.wait()
            assert bob.outages[1:] == [Reconnected(caught_up=2)]
            assert [m.body for m in bob.messages(room)] == ["missed 0", "missed 1"]
        nursery.cancel_scope.cancel()


async def test_members_see_a_newcomer_come_online_when_they_join(running: RunningNode) -> None:
    async with chat_user(running) as ada, chat_user(running) as bob:
        room = await shared_room(ada)
        await bob.api.join_room(room)
        await bob.client.join(room)
        with trio.fail_after(10):
            while protocol.PresenceEvent(user=bob.id, status="online") not in ada.received:
                await ada.changed.wait()


async def test_a_silent_connection_is_closed_for_not_authenticating(tmp_path: Path) -> None:
    async with (
        open_node(tmp_path, auth_timeout=0.2) as running,
        ws_connect(running.gateway_port) as ws,
    ):
        assert await closed_code(ws) == CloseCode.AUTH_TIMEOUT


async def test_a_connection_without_heartbeats_is_closed(tmp_path: Path) -> None:
    async with (
        open_node(tmp_path, heartbeat_interval=0.2) as running,
        chat_user(running) as ada,
        ws_connect(running.gateway_port) as ws,
    ):
        assert ada.api.session is not None
        await ws.send_message(
            protocol.encode(protocol.Hello(token=ada.api.session.access_token)).decode()
        )
        ready = await next_frame(ws)
        assert isinstance(ready, protocol.Ready)
        assert ready.heartbeat_interval_ms == 200
        assert await closed_code(ws) == CloseCode.HEARTBEAT_TIMEOUT


async def test_flooding_gets_rate_limited_then_disconnected(running: RunningNode) -> None:
    async with chat_user(running) as ada, ws_connect(running.gateway_port) as ws:
        room = await shared_room(ada)
        assert ada.api.session is not None
        await ws.send_message(
            protocol.encode(protocol.Hello(token=ada.api.session.access_token)).decode()
        )
        await ws.get_message()
        typing = protocol.encode(protocol.Typing(room=room)).decode()
        for _ in range(100):
            await ws.send_message(typing)
        errors: list[ErrorCode] = []

        async def read_errors() -> None:
            while True:
                frame = await next_frame(ws)
                if isinstance(frame, protocol.ErrorReply):
                    errors.append(frame.code)

        with pytest.raises(ConnectionClosed) as closed:
            await read_errors()
        assert errors
        assert set(errors) == {ErrorCode.RATE_LIMITED}
        assert closed.value.reason is not None
        assert closed.value.reason.code == CloseCode.RATE_LIMITED


async def test_metrics_count_frames_messages_and_deliveries(running: RunningNode) -> None:
    def sample(name: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(name, labels) or 0.0

    names = [
        ("chorus_frames_out_total", {"kind": "broadcast"}),
        ("chorus_frames_out_total", {"kind": "direct"}),
        ("chorus_messages_stored_total", {}),
        ("chorus_deliveries_total", {}),
        ("chorus_frames_in_total", {"type": "send"}),
    ]
    before = [sample(name, **labels) for name, labels in names]
    async with chat_user(running) as ada, chat_user(running) as bob:
        room = await shared_room(ada, bob)
        await ada.client.send(room, "counted")
        await bob.wait_for_messages(1, room)
    after = [sample(name, **labels) for name, labels in names]
    broadcast, direct, stored, deliveries, sends = (
        now - then for now, then in zip(after, before, strict=True)
    )
    assert (stored, deliveries, sends) == (1, 2, 1)
    assert broadcast >= 2  # the message to both members, plus presence and the like
    assert direct >= 4  # ready, join acks and the send ack at least
    async with httpx.AsyncClient() as http:
        text = (await http.get(running.http_url + "/metrics")).text
    assert 'chorus_frames_out_total{kind="broadcast"}' in text


async def test_the_sdk_tries_the_next_listed_gateway_when_one_is_down(tmp_path: Path) -> None:
    port, dead = free_port(), free_port()
    urls = (f"ws://127.0.0.1:{dead}/", f"ws://127.0.0.1:{port}/")
    async with (
        open_node(tmp_path, gateway_port=port, public_gateway_urls=urls) as running,
        HttpApi(running.http_url) as api,
    ):
        assert await api.gateway_urls() == list(urls)
        await api.register("traveller", PASSWORD)
        client = RealtimeClient(api)  # no URL given: it asks the server
        async with trio.open_nursery() as nursery:
            with trio.fail_after(10):
                await nursery.start(client.run)
            assert client.ready is not None
            nursery.cancel_scope.cancel()
