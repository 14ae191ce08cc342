"""Threads, mentions, edits, deletes, reactions, read markers and notifications over the gateway."""

from __future__ import annotations

import functools
import hashlib
import hmac
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import orjson
import pytest
import trio

from chorus import protocol
from chorus.actors.notifications import SIGNATURE_HEADER
from chorus.client import ApiError, Event
from chorus.persistence import Admit, AdmittedBatch, EventKind, NewMessage
from tests.e2e.node import ChatUser, RunningNode, chat_user, open_node
from tests.pgserver import PgServer, shared_pg_server
from tests.redisserver import running_redis
from tests.wsclient import ws_connect


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """The private PostgreSQL shared with the other suites."""
    with shared_pg_server() as server:
        yield server


@pytest.fixture(params=["sqlite", "postgres"])
async def running(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[RunningNode]:
    """A node on each store: the rich features must behave the same on both."""
    overrides: dict[str, object] = {}
    if request.param == "postgres":
        server: PgServer = request.getfixturevalue("pg_server")
        _, overrides["database_url"] = await server.new_database()
    async with open_node(tmp_path, **overrides) as running:
        yield running


async def shared_room(owner: ChatUser, *others: ChatUser) -> str:
    room = (await owner.api.create_room("rich", "public")).id
    await owner.client.join(room)
    for user in others:
        await user.api.join_room(room)
        await user.client.join(room)
    return room


def is_notification(frame: Event) -> bool:
    return isinstance(frame, protocol.NotificationEvent)


async def test_a_thread_reply_that_mentions_someone_notifies_them(running: RunningNode) -> None:
    async with chat_user(running) as ada, chat_user(running) as bob:
        room = await shared_room(ada, bob)
        root = await ada.client.send(room, "lunch?")
        reply = await bob.client.send(room, f"yes @{ada.api.user.username}!", thread=root.id)
        assert reply.thread == root.id
        notification = await ada.wait_for(is_notification)
        assert isinstance(notification, protocol.NotificationEvent)
        assert (notification.kind, notification.message, notification.sender) == (
            "mention",
            reply.id,
            bob.id,
        )
        assert notification.preview == reply.body
        await ada.wait_for_messages(2, room)
        assert [m.thread for m in ada.messages(room)] == [None, root.id]
        stored = await running.node.services.store.get_message(root.id)
        assert stored is not None
        assert stored.reply_count == 1
        assert not any(is_notification(frame) for frame in bob.received)  # no self-mention


async def test_a_reply_to_a_reply_or_to_nothing_is_refused(running: RunningNode) -> None:
    async with chat_user(running) as ada:
        room = await shared_room(ada)
        root = await ada.client.send(room, "root")
        reply = await ada.client.send(room, "reply", thread=root.id)
        with pytest.raises(ApiError) as nested:
            await ada.client.send(room, "nested", thread=reply.id)
        assert nested.value.code == "invalid_value"
        with pytest.raises(ApiError) as missing:
            await ada.client.send(room, "lost", thread="m_nothing")
        assert missing.value.code == "not_found"


async def test_edits_deletes_and_reactions_are_checked_sequenced_and_replayed(
    running: RunningNode,
) -> None:
    async with chat_user(running) as ada, chat_user(running) as bob, chat_user(running) as eve:
        room = await shared_room(ada, bob, eve)
        bobs = await bob.client.send(room, "first draft")
        assert await eve.client.react(room, bobs.id, "👍") == 2
        assert await eve.client.react(room, bobs.id, "👍") is None  # already there
        assert await bob.client.edit(room, bobs.id, "final text") == 3
        for attempt in (
            eve.client.edit(room, bobs.id, "mine now"),
            eve.client.delete(room, bobs.id),
        ):
            with pytest.raises(ApiError) as refused:
                await attempt
            assert refused.value.code == "forbidden"
        assert await ada.client.delete(room, bobs.id) == 4  # the room's owner
        with pytest.raises(ApiError) as gone:
            await bob.client.edit(room, bobs.id, "too late")
        assert gone.value.code == "gone"
        kinds = [type(frame).TYPE for frame in await eve.wait_for_room_events(room, 4)]
        assert kinds == ["message", "reaction", "edited", "deleted"]
        replayed = await replay(running, eve, room)
        assert [type(frame).TYPE for frame in replayed] == kinds
        message, edited = replayed[0], replayed[2]
        assert isinstance(message, protocol.MessageEvent)
        assert isinstance(edited, protocol.EditedEvent)
        assert message.message.body == edited.body == ""  # deleted text survives nowhere
        events = await running.node.services.store.messages(room, limit=10)
        assert [event.kind for event in events] == [
            EventKind.MESSAGE,
            EventKind.REACTION_ADD,
            EventKind.EDIT,
            EventKind.DELETE,
        ]


async def replay(running: RunningNode, user: ChatUser, room: str) -> list[protocol.ServerFrame]:
    """The room's events as a resume from seq 0 replays them, on a fresh connection."""
    assert user.api.session is not None
    frames: list[protocol.ServerFrame] = []
    async with ws_connect(running.gateway_port) as ws:
        await ws.send_message(
            protocol.encode(protocol.Hello(token=user.api.session.access_token)).decode()
        )
        await ws.send_message(protocol.encode(protocol.Resume(ref="r", rooms={room: 0})).decode())
        with trio.fail_after(10):
            while not isinstance(
                frame := protocol.decode_server_frame(await ws.get_message()), protocol.Replayed
            ):
                if not isinstance(frame, protocol.Ready | protocol.PresenceEvent):
                    frames.append(frame)
    return frames


async def test_read_markers_are_acknowledged_and_shown_where_the_room_allows(
    running: RunningNode,
) -> None:
    async with chat_user(running) as ada, chat_user(running) as bob:
        room = await shared_room(ada, bob)
        for n in range(3):
            await ada.client.send(room, f"m{n}")
        assert await bob.client.mark_read(room, 2) == 2
        assert await bob.client.mark_read(room, 1) == 2  # never backwards
        assert await bob.client.mark_read(room, 99) == 3  # never past the last seq
        receipt = await ada.wait_for(lambda f: isinstance(f, protocol.ReceiptEvent) and f.seq == 3)
        assert receipt == protocol.ReceiptEvent(room=room, user=bob.id, seq=3)
        await running.node.services.store.set_read_receipts(room, False)
        await ada.client.send(room, "m3")
        assert await bob.client.mark_read(room, 4) == 4
        await bob.client.send(room, "after the marker")
        await ada.wait_for_messages(5, room)
        receipts = [f for f in ada.received if isinstance(f, protocol.ReceiptEvent)]
        assert [r.seq for r in receipts] == [2, 2, 3]


@asynccontextmanager
async def webhook_receiver() -> AsyncIterator[
    tuple[str, trio.MemoryReceiveChannel[tuple[dict[str, str], bytes]]]
]:
    """An HTTP endpoint on loopback answering 204; yields its URL and the requests it got."""
    send, receive = trio.open_memory_channel[tuple[dict[str, str], bytes]](10)

    async def handle(stream: trio.SocketStream) -> None:
        data = b""
        while b"\r\n\r\n" not in data:
            data += await stream.receive_some(65536)
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode().split("\r\n")[1:]
        headers = {
            k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)
        }
        while len(body) < int(headers["content-length"]):
            body += await stream.receive_some(65536)
        await stream.send_all(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n")
        await stream.aclose()
        await send.send((headers, body))

    async with trio.open_nursery() as nursery:
        serve = functools.partial(trio.serve_tcp, handle, 0, host="127.0.0.1")
        listeners = await nursery.start(serve)
        port = listeners[0].socket.getsockname()[1]
        yield f"http://127.0.0.1:{port}/push", receive
        nursery.cancel_scope.cancel()


async def test_notifications_reach_other_nodes_and_the_signed_push_webhook(
    tmp_path: Path,
) -> None:
    async with (
        running_redis(tmp_path / "redis") as redis,
        webhook_receiver() as (url, pushed),
        open_node(tmp_path, redis_url=redis.url) as node_a,
        open_node(
            tmp_path,
            redis_url=redis.url,
            notification_webhook_url=url,
            notification_webhook_secret="s3cret",
        ) as node_b,
        chat_user(node_a) as ada,
        chat_user(node_b) as bob,
    ):
        room = await shared_room(ada, bob)
        mention = await bob.client.send(room, f"@{ada.api.user.username} ping")
        notification = await ada.wait_for(is_notification)  # ada is connected to node A
        assert isinstance(notification, protocol.NotificationEvent)
        assert notification.message == mention.id
        with trio.fail_after(10):
            headers, body = await pushed.receive()
        expected = hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
        assert headers[SIGNATURE_HEADER.lower()] == f"sha256={expected}"
        [pushed_one] = orjson.loads(body)["notifications"]
        assert pushed_one["user"] == ada.id
        assert pushed_one["id"] == notification.id
        assert pushed_one["kind"] == "mention"


async def test_edits_and_reactions_reach_members_on_another_node(tmp_path: Path) -> None:
    async with (
        running_redis(tmp_path / "redis") as redis,
        open_node(tmp_path, redis_url=redis.url) as node_a,
        open_node(tmp_path, redis_url=redis.url) as node_b,
        chat_user(node_a) as ada,
        chat_user(node_b) as bob,
    ):
        room = await shared_room(ada, bob)
        message = await ada.client.send(room, "typo")
        await bob.client.react(room, message.id, "🎉")
        await ada.client.edit(room, message.id, "fixed")
        for user in (ada, bob):
            events = await user.wait_for_room_events(room, 3)
            assert [type(event).TYPE for event in events] == ["message", "reaction", "edited"]
            reaction, edited = events[1], events[2]
            assert isinstance(reaction, protocol.ReactionEvent)
            assert isinstance(edited, protocol.EditedEvent)
            assert (reaction.seq, edited.seq, edited.body) == (2, 3, "fixed")


async def test_a_request_the_room_fails_on_is_refused_and_the_room_keeps_serving(
    running: RunningNode, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = running.node.services.store
    append = store.append_admitted

    async def append_with_a_bug(
        room_id: str, batch: Sequence[NewMessage], admit: Admit, now: int, *, known: int | None
    ) -> AdmittedBatch:
        if any(message.body == "boom" for message in batch):
            raise RuntimeError("injected bug")
        return await append(room_id, batch, admit, now, known=known)

    # Fault injection around the real store (the room actor's one call to store a
    # batch): one message trips a "bug" in the room.
    monkeypatch.setattr(store, "append_admitted", append_with_a_bug)
    async with chat_user(running) as ada:
        room = await shared_room(ada)
        with pytest.raises(ApiError) as failed, trio.fail_after(15):
            await ada.client.send(room, "boom")  # tried a few times, then given up
        assert failed.value.code == "internal"
        assert (await ada.client.send(room, "fine")).seq == 1  # the room still serves
        assert running.node.services.rooms.running(room) is not None
