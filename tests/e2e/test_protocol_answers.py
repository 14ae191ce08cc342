"""The gateway answers as docs/protocol.md says, and as the HTTP API does for the same case.

Each test speaks raw frames to a real node, so what is asserted is the wire.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trio
from trio_websocket import WebSocketConnection

from chorus import protocol
from chorus.client import ApiError, HttpApi
from chorus.protocol import CloseCode, ErrorCode
from tests.e2e.node import ChatUser, RunningNode, chat_user, open_node
from tests.gateway.test_gateway import closed_code
from tests.wsclient import ws_connect


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[RunningNode]:
    async with open_node(tmp_path) as running:
        yield running


@asynccontextmanager
async def signed_in(node: RunningNode, api: HttpApi) -> AsyncIterator[WebSocketConnection]:
    """A raw gateway connection that has said `hello` and got `ready`."""
    assert api.session is not None
    async with ws_connect(node.gateway_port) as ws:
        await write(ws, protocol.Hello(token=api.session.access_token))
        assert isinstance(await read(ws), protocol.Ready)
        yield ws


async def write(ws: WebSocketConnection, frame: protocol.ClientFrame) -> None:
    await ws.send_message(protocol.encode(frame).decode())


async def read(ws: WebSocketConnection) -> protocol.ServerFrame:
    with trio.fail_after(10):
        return protocol.decode_server_frame(await ws.get_message())


async def answer(ws: WebSocketConnection, frame: protocol.ClientFrame) -> protocol.ServerFrame:
    """The `ack` or `error` answering `frame` (other frames on the way are skipped)."""
    await write(ws, frame)
    ref = getattr(frame, "ref", None)
    while True:
        reply = await read(ws)
        if isinstance(reply, protocol.Ack | protocol.ErrorReply) and reply.ref == ref:
            return reply


def code_of(reply: protocol.ServerFrame) -> ErrorCode:
    assert isinstance(reply, protocol.ErrorReply), reply
    return reply.code


async def http_code(call: object) -> tuple[int, str]:
    with pytest.raises(ApiError) as refused:
        await call  # type: ignore[misc]
    return refused.value.status, refused.value.code


@asynccontextmanager
async def two_users(node: RunningNode) -> AsyncIterator[tuple[ChatUser, ChatUser]]:
    async with chat_user(node) as ada, chat_user(node) as bob:
        yield ada, bob


async def test_leaving_a_room_not_joined_is_acknowledged(node: RunningNode) -> None:
    async with chat_user(node) as ada, signed_in(node, ada.api) as ws:
        room = await ada.api.create_room("lobby")
        for room_id in (room.id, "r_nowhere"):
            reply = await answer(ws, protocol.Leave(ref="l", room=room_id))
            assert reply == protocol.Ack(ref="l", room=room_id)


async def test_a_missing_room_is_not_found_and_a_closed_one_forbidden_over_ws_and_http(
    node: RunningNode,
) -> None:
    async with two_users(node) as (ada, bob), signed_in(node, bob.api) as ws:
        private = await ada.api.create_room("ops", "private")
        cases = [("r_nowhere", ErrorCode.NOT_FOUND, 404), (private.id, ErrorCode.FORBIDDEN, 403)]
        for room_id, code, status in cases:
            assert code_of(await answer(ws, protocol.Join(ref="j", room=room_id))) == code
            assert await http_code(bob.api.join_room(room_id)) == (status, code)
            read_frame = protocol.MarkRead(ref="m", room=room_id, seq=1)
            assert code_of(await answer(ws, read_frame)) == code
            marked = bob.api._call("POST", f"/rooms/{room_id}/read", {"seq": 1})
            assert await http_code(marked) == (status, code)


async def test_a_client_id_reused_in_another_room_is_refused_alike_over_ws_and_http(
    node: RunningNode,
) -> None:
    async with chat_user(node) as ada, signed_in(node, ada.api) as ws:
        first, second = await ada.api.create_room("one"), await ada.api.create_room("two")
        original = await ada.api.post(first.id, "hello", "c-shared")
        for room in (first, second):
            assert isinstance(await answer(ws, protocol.Join(ref="j", room=room.id)), protocol.Ack)
        send = protocol.Send(ref="s", room=second.id, client_id="c-shared", body="again")
        assert code_of(await answer(ws, send)) == ErrorCode.CLIENT_ID_REUSED
        reposted = ada.api.post(second.id, "again", "c-shared")
        assert await http_code(reposted) == (409, ErrorCode.CLIENT_ID_REUSED)
        mine = await ada.api.post(second.id, "in two", "c-two")
        edit = protocol.Edit(
            ref="e", room=second.id, message=mine.id, client_id="c-shared", body="x"
        )
        assert code_of(await answer(ws, edit)) == ErrorCode.CLIENT_ID_REUSED
        retried = protocol.Send(ref="r", room=first.id, client_id="c-shared", body="hello")
        ack = await answer(ws, retried)
        assert isinstance(ack, protocol.Ack)
        assert ack.message is not None
        assert ack.message.id == original.id
        assert [m.id for m in await ada.api.history(second.id)] == [mine.id]


async def test_a_reply_to_a_reply_is_invalid_over_ws_and_http(node: RunningNode) -> None:
    async with chat_user(node) as ada, signed_in(node, ada.api) as ws:
        room = await ada.api.create_room("threads")
        root = await ada.api.post(room.id, "root", "c-root")
        assert isinstance(await answer(ws, protocol.Join(ref="j", room=room.id)), protocol.Ack)
        reply = await answer(
            ws, protocol.Send(ref="s1", room=room.id, client_id="c1", body="re", thread=root.id)
        )
        assert isinstance(reply, protocol.Ack)
        assert reply.message is not None
        nested = protocol.Send(
            ref="s2", room=room.id, client_id="c2", body="re re", thread=reply.message.id
        )
        assert code_of(await answer(ws, nested)) == ErrorCode.INVALID_VALUE
        body = {"body": "re re", "client_id": "c3", "thread": reply.message.id}
        posted = ada.api._call("POST", f"/rooms/{room.id}/messages", body)
        assert await http_code(posted) == (400, ErrorCode.INVALID_VALUE)


async def test_a_message_of_another_room_is_not_found_over_ws_and_http(
    node: RunningNode,
) -> None:
    async with chat_user(node) as ada, signed_in(node, ada.api) as ws:
        here, there = await ada.api.create_room("here"), await ada.api.create_room("there")
        elsewhere = (await ada.api.post(there.id, "elsewhere", "c-there")).id
        assert isinstance(await answer(ws, protocol.Join(ref="j", room=here.id)), protocol.Ack)
        frames: list[protocol.ClientFrame] = [
            protocol.Edit(ref="e", room=here.id, message=elsewhere, client_id="c1", body="x"),
            protocol.Delete(ref="d", room=here.id, message=elsewhere, client_id="c2"),
            protocol.React(ref="r", room=here.id, message=elsewhere, client_id="c3", emoji="ok"),
            protocol.Send(ref="s", room=here.id, client_id="c4", body="re", thread=elsewhere),
        ]
        for frame in frames:
            assert code_of(await answer(ws, frame)) == ErrorCode.NOT_FOUND, frame
        path = f"/rooms/{here.id}/messages/{elsewhere}"
        reply = {"body": "re", "client_id": "c8", "thread": elsewhere}
        calls = [
            ada.api._call("PATCH", path, {"body": "x", "client_id": "c5"}),
            ada.api._call("DELETE", path, params={"client_id": "c6"}),
            ada.api._call("PUT", f"{path}/reactions/ok", params={"client_id": "c7"}),
            ada.api._call("POST", f"/rooms/{here.id}/messages", reply),
            ada.api.message(here.id, elsewhere),
            ada.api.thread(here.id, elsewhere),
            ada.api.reactors(here.id, elsewhere, "ok"),
            ada.api.edit_history(here.id, elsewhere),
        ]
        for call in calls:
            assert await http_code(call) == (404, ErrorCode.NOT_FOUND)
        assert await ada.api.history(here.id) == []


async def test_a_read_marker_shows_a_receipt_alike_over_ws_and_http(node: RunningNode) -> None:
    async with (
        two_users(node) as (ada, bob),
        signed_in(node, ada.api) as ada_ws,
        signed_in(node, bob.api) as bob_ws,
    ):
        room = await ada.api.create_room("lobby")
        await bob.api.join_room(room.id)
        for n in range(2):
            await ada.api.post(room.id, f"m{n}", f"c{n}")
        assert isinstance(await answer(ada_ws, protocol.Join(ref="j", room=room.id)), protocol.Ack)
        # Bob's connection has not joined the room: his marker is shown all the same.
        marked = await answer(bob_ws, protocol.MarkRead(ref="m", room=room.id, seq=1))
        assert marked == protocol.Ack(ref="m", room=room.id, seq=1)
        await bob.api._call("POST", f"/rooms/{room.id}/read", {"seq": 2})
        receipts: list[protocol.ServerFrame] = []
        while len(receipts) < 2:
            if isinstance(frame := await read(ada_ws), protocol.ReceiptEvent):
                receipts.append(frame)
        assert receipts == [
            protocol.ReceiptEvent(room=room.id, user=bob.id, seq=1),
            protocol.ReceiptEvent(room=room.id, user=bob.id, seq=2),
        ]


async def test_a_second_hello_is_refused_and_the_connection_stays_open(
    node: RunningNode,
) -> None:
    async with chat_user(node) as ada, signed_in(node, ada.api) as ws:
        assert ada.api.session is not None
        await write(ws, protocol.Hello(token=ada.api.session.access_token))
        error = await read(ws)
        assert isinstance(error, protocol.ErrorReply)
        assert (error.ref, error.code) == (None, ErrorCode.INVALID_VALUE)
        await write(ws, protocol.Ping(nonce="still"))
        assert await read(ws) == protocol.Pong(nonce="still")


async def test_an_empty_token_is_refused_like_an_invalid_one(node: RunningNode) -> None:
    async with ws_connect(node.gateway_port) as ws:
        await ws.send_message('{"type": "hello", "token": ""}')
        error = await read(ws)
        assert isinstance(error, protocol.ErrorReply)
        assert error.code == ErrorCode.INVALID_TOKEN
        assert await closed_code(ws) == CloseCode.AUTH_FAILED


async def test_typing_in_a_room_not_joined_is_ignored(node: RunningNode) -> None:
    async with (
        two_users(node) as (ada, bob),
        signed_in(node, ada.api) as ada_ws,
        signed_in(node, bob.api) as bob_ws,
    ):
        room = await ada.api.create_room("lobby")
        await bob.api.join_room(room.id)
        assert isinstance(await answer(bob_ws, protocol.Join(ref="j", room=room.id)), protocol.Ack)
        await write(ada_ws, protocol.Typing(room=room.id))  # ada is a member, but not joined here
        await write(ada_ws, protocol.Ping(nonce="after"))
        before_pong = []
        while (frame := await read(ada_ws)) != protocol.Pong(nonce="after"):
            before_pong.append(frame)
        assert not any(isinstance(f, protocol.ErrorReply) for f in before_pong)
        # Joining announces ada to the room after anything the typing could have caused.
        assert isinstance(await answer(ada_ws, protocol.Join(ref="j", room=room.id)), protocol.Ack)
        seen_by_bob: list[protocol.ServerFrame] = []
        while (frame := await read(bob_ws)) != protocol.PresenceEvent(user=ada.id, status="online"):
            seen_by_bob.append(frame)
        assert not any(isinstance(f, protocol.TypingEvent) for f in seen_by_bob)
