"""The per-user message limit: shared by all of a user's connections (the gateway end to end)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import attrs
import pytest
import trio
from prometheus_client import REGISTRY
from trio_websocket import ConnectionClosed, WebSocketConnection

from chorus import protocol
from chorus.protocol import CloseCode, ErrorCode
from chorus.ratelimit import LocalRateLimiter
from tests.e2e.node import ChatUser, RunningNode, chat_user, open_node
from tests.gateway.test_gateway import masked_frame, read_close_code, upgraded
from tests.wsclient import ws_connect

FOREVER = 1e-6
"""A rate so low that nothing refills during a test: only the burst counts."""
SEND_BURST = 4


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[RunningNode]:
    async with open_node(tmp_path, sends_per_second=FOREVER, send_burst=SEND_BURST) as running:
        # Quick strikes (not a setting); connections made after this use them.
        node = running.node
        chat = node._chat
        limits = attrs.evolve(chat.limits, strikes_before_close=3)
        node._chat = attrs.evolve(chat, limits=limits, send_limiter=LocalRateLimiter())
        yield running


@asynccontextmanager
async def joined(running: RunningNode, user: ChatUser, room: str) -> AsyncIterator[Connection]:
    """Another raw connection of `user`, joined to `room`."""
    assert user.api.session is not None
    async with ws_connect(running.gateway_port) as ws:
        connection = Connection(ws)
        await connection.send(protocol.Hello(token=user.api.session.access_token))
        assert isinstance(await connection.next_reply(), protocol.Ready)
        await connection.send(protocol.Join(ref="j", room=room))
        assert isinstance(await connection.reply_to("j"), protocol.Ack)
        yield connection


@attrs.define
class Connection:
    ws: WebSocketConnection

    async def send(self, frame: protocol.ClientFrame) -> None:
        await self.ws.send_message(protocol.encode(frame).decode())

    async def next_reply(self) -> protocol.ServerFrame:
        return protocol.decode_server_frame(await self.ws.get_message())

    async def reply_to(self, ref: str) -> protocol.Ack | protocol.ErrorReply:
        """The ack or error answering `ref` (skipping events in between)."""
        while True:
            frame = await self.next_reply()
            if isinstance(frame, protocol.Ack | protocol.ErrorReply) and frame.ref == ref:
                return frame

    async def post(self, room: str, ref: str) -> protocol.Ack | protocol.ErrorReply:
        await self.send(protocol.Send(ref=ref, room=room, client_id=ref, body=f"message {ref}"))
        return await self.reply_to(ref)


async def test_a_users_sends_share_one_budget_across_connections(running: RunningNode) -> None:
    async with chat_user(running) as ada, chat_user(running) as bob:
        room = (await ada.api.create_room("general", "public")).id
        await bob.api.join_room(room)
        async with joined(running, ada, room) as first, joined(running, ada, room) as second:
            replies = [await first.post(room, f"a{n}") for n in range(3)]
            assert all(isinstance(reply, protocol.Ack) for reply in replies)
            replies = [await second.post(room, f"b{n}") for n in range(2)]
            assert isinstance(replies[0], protocol.Ack)  # the 4th message of the user
            refused = replies[1]
            assert isinstance(refused, protocol.ErrorReply)
            assert refused.code == ErrorCode.RATE_LIMITED
            refused = await first.post(room, "a3")  # the other connection is over it too
            assert isinstance(refused, protocol.ErrorReply)
            assert refused.code == ErrorCode.RATE_LIMITED
            # Other frames and other users are not limited by ada's message budget.
            await first.send(protocol.Leave(ref="l", room=room))
            assert isinstance(await first.reply_to("l"), protocol.Ack)
            async with joined(running, bob, room) as bobs:
                assert isinstance(await bobs.post(room, "bob"), protocol.Ack)
            # Refused sends count as strikes: the 3rd in a row closes the connection.
            assert isinstance(await second.post(room, "b2"), protocol.ErrorReply)
            await second.send(protocol.Send(ref="b3", room=room, client_id="b3", body="x"))
            with pytest.raises(ConnectionClosed) as closed:
                await second.reply_to("b3")
            assert closed.value.reason is not None
            assert closed.value.reason.code == CloseCode.RATE_LIMITED
        history = await bob.api.history(room)
        assert sorted(m.body for m in history) == [
            "message a0",
            "message a1",
            "message a2",
            "message b0",
            "message bob",
        ]


FRAME_BURST = 5


@pytest.fixture
async def strict(tmp_path: Path) -> AsyncIterator[RunningNode]:
    """A node whose connections may send `FRAME_BURST` frames, then nothing more."""
    async with open_node(tmp_path) as running:
        node = running.node
        chat = node._chat
        limits = attrs.evolve(
            chat.limits,
            frames_per_second=FOREVER,
            frame_burst=FRAME_BURST,
            strikes_before_close=3,
        )
        node._chat = attrs.evolve(chat, limits=limits)
        yield running


async def answers_until_closed(connection: Connection) -> tuple[list[str], int | None]:
    """The types (error codes for errors) of the frames received, then the close code."""
    answers: list[str] = []
    with trio.fail_after(10):
        try:
            while True:
                frame = await connection.next_reply()
                answers.append(frame.code if isinstance(frame, protocol.ErrorReply) else frame.TYPE)
        except ConnectionClosed as closed:
            return answers, None if closed.reason is None else closed.reason.code


@pytest.mark.parametrize(
    ("flood", "answer"),
    [('{"type":"ping","nonce":"n"}', "pong"), ("not json", ErrorCode.INVALID_JSON)],
)
async def test_a_flood_of_pings_or_invalid_frames_is_refused_then_closed(
    strict: RunningNode, flood: str, answer: str
) -> None:
    refused = REGISTRY.get_sample_value("chorus_rate_limited_total") or 0.0
    async with chat_user(strict) as ada:
        assert ada.api.session is not None
        async with ws_connect(strict.gateway_port) as ws:
            connection = Connection(ws)
            await connection.send(protocol.Hello(token=ada.api.session.access_token))
            for _ in range(50):
                await ws.send_message(flood)
            answers, code = await answers_until_closed(connection)
    # hello takes one token of the burst, the frames after the burst are strikes.
    limited = [ErrorCode.RATE_LIMITED] * 2
    assert answers == ["ready", *[answer] * (FRAME_BURST - 1), *limited]
    assert code == CloseCode.RATE_LIMITED
    # Every refused frame is counted, the closing one too (the rate-limit storm alert).
    assert REGISTRY.get_sample_value("chorus_rate_limited_total") == refused + len(limited) + 1


async def test_a_flood_of_websocket_pings_is_closed_too(strict: RunningNode) -> None:
    async with chat_user(strict) as ada, upgraded(strict.gateway_port) as raw:
        assert ada.api.session is not None
        hello = protocol.encode(protocol.Hello(token=ada.api.session.access_token))
        pings = [masked_frame(0x9, b"%d" % n) for n in range(50)]
        await raw.send_all(b"".join([masked_frame(0x1, hello), *pings]))
        assert await read_close_code(raw) == CloseCode.RATE_LIMITED
