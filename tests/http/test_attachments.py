"""Attachments in messages (issue #13 item 5), on a whole node: WebSocket and HTTP alike.

Members post files they uploaded; every member's `message` event, the
history, replays, threads and search carry the files' metadata; members
(and only they) see the files and fetch their bytes; refusals are precise
and refuse one post only; deleting the message stops delivery at once.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import attrs
import httpx
import orjson
import pytest
import trio
from trio_websocket import ConnectionClosed, WebSocketConnection

from chorus import protocol
from tests.files.samples import image_bytes
from tests.fixtures import open_test_node
from tests.http.conftest import Account, Server, assert_error
from tests.http.test_file_delivery import fetch, ready_file, url_of
from tests.http.test_files import FILES, TEXT, upload
from tests.polling import until
from tests.ports import free_port
from tests.wsclient import ws_connect

TIMEOUT = 15.0
PNG = image_bytes((640, 480), "PNG")


@attrs.define(eq=False)
class Socket:
    """A member's raw WebSocket connection and every frame it received, in order."""

    ws: WebSocketConnection
    frames: list[protocol.ServerFrame] = attrs.field(factory=list)
    changed: trio.Event = attrs.field(factory=trio.Event)

    async def read(self) -> None:
        try:
            while True:
                self.frames.append(protocol.decode_server_frame(await self.ws.get_message()))
                self.changed.set()
                self.changed = trio.Event()
        except ConnectionClosed:
            return

    async def wait_for(self, found: Callable[[protocol.ServerFrame], bool]) -> Any:
        """The first frame received for which `found` holds, waiting for it if needed."""
        with trio.fail_after(TIMEOUT):
            while True:
                for frame in self.frames:
                    if found(frame):
                        return frame
                await self.changed.wait()

    async def send(self, frame: protocol.ClientFrame) -> None:
        await self.ws.send_message(protocol.encode(frame).decode())

    async def answer(self, ref: str) -> protocol.Ack | protocol.ErrorReply:
        answer: protocol.Ack | protocol.ErrorReply = await self.wait_for(
            lambda f: isinstance(f, protocol.Ack | protocol.ErrorReply) and f.ref == ref
        )
        return answer

    async def request(self, frame: protocol.Join | protocol.Send | protocol.Resume) -> Any:
        await self.send(frame)
        return await self.answer(frame.ref)

    def messages(self) -> list[protocol.Message]:
        return [f.message for f in self.frames if isinstance(f, protocol.MessageEvent)]

    async def message(self, message_id: str) -> protocol.Message:
        event: protocol.MessageEvent = await self.wait_for(
            lambda f: isinstance(f, protocol.MessageEvent) and f.message.id == message_id
        )
        return event.message


@attrs.frozen
class Chat:
    server: Server
    gateway_port: int

    def connect(
        self, user: Account, *rooms: str, device_id: str | None = None
    ) -> AbstractAsyncContextManager[Socket]:
        """`user` connected (hello, with `device_id` if given; ready) and joined to `rooms`."""
        return connect_socket(self.gateway_port, user.access_token, *rooms, device_id=device_id)


@asynccontextmanager
async def connect_socket(
    port: int, token: str, *rooms: str, device_id: str | None = None
) -> AsyncIterator[Socket]:
    """A socket to the gateway on `port`, signed in with `token` (ready) and joined to `rooms`."""
    async with ws_connect(port) as ws, trio.open_nursery() as nursery:
        hello = protocol.Hello(token=token, device_id=device_id)
        await ws.send_message(protocol.encode(hello).decode())
        socket = Socket(ws)
        nursery.start_soon(socket.read)
        await socket.wait_for(lambda f: isinstance(f, protocol.Ready))
        for room in rooms:
            ack = await socket.request(protocol.Join(ref=f"join-{room}", room=room))
            assert isinstance(ack, protocol.Ack), ack
        yield socket
        nursery.cancel_scope.cancel()


@asynccontextmanager
async def chat_node(tmp_path: Path, **settings: Any) -> AsyncIterator[Chat]:
    """A whole node (gateway and HTTP API) with `settings`."""
    async with open_test_node(tmp_path, **settings) as (node, addresses):
        assert addresses.http is not None
        assert addresses.gateway is not None
        host, port = addresses.http
        async with httpx.AsyncClient(base_url=f"http://{host}:{port}") as http:
            yield Chat(Server(node.services, addresses.http, http), addresses.gateway[1])


@pytest.fixture
async def chat(tmp_path: Path) -> AsyncIterator[Chat]:
    async with chat_node(tmp_path) as chat:
        yield chat


async def room_of(server: Server, owner: Account, *members: Account) -> str:
    room = await server.create_room(owner)
    for member in members:
        joined = await server.post(f"/api/v1/rooms/{room}/join", member)
        assert joined.status_code in (200, 201), joined.text
    return room


async def post(
    server: Server, user: Account, room: str, client_id: str, *files: object, **extra: Any
) -> httpx.Response:
    body = {"body": "", "client_id": client_id, "attachments": list(files)} | extra
    return await server.post(f"/api/v1/rooms/{room}/messages", user, json=body)


def as_json(message: protocol.Message) -> dict[str, Any]:
    """The message as the HTTP API writes it (the `message` frame's fields)."""
    frame: dict[str, Any] = orjson.loads(protocol.encode(protocol.MessageEvent(message=message)))
    del frame["type"]
    return frame


def send(ref: str, room: str, *files: str, body: str = "") -> protocol.Send:
    return protocol.Send(ref=ref, room=room, client_id=ref, body=body, attachments=files)


async def test_a_websocket_send_delivers_the_files_to_every_member(chat: Chat) -> None:
    server = chat.server
    ada, bob, eve = [await server.register(name) for name in ("ada", "bob", "eve")]
    room = await room_of(server, ada, bob)
    image = await ready_file(server, ada, PNG, name="map.png", content_type="image/png")
    notes = await ready_file(server, ada, TEXT)
    # Before it is posted, only the uploader sees a file.
    assert_error(await server.get(f"{FILES}/{image['id']}", bob), 404, "not_found")
    assert_error(await server.get(f"{FILES}/{notes['id']}/url", bob), 404, "not_found")

    async with chat.connect(ada, room) as ada_ws, chat.connect(bob, room) as bob_ws:
        ack = await ada_ws.request(send("s1", room, str(image["id"]), str(notes["id"])))
        assert isinstance(ack, protocol.Ack), ack
        sent = ack.message
        assert sent is not None
        assert (sent.body, [f.id for f in sent.attachments]) == ("", [image["id"], notes["id"]])
        # Each attachment is the file view (`GET /files/{id}`), in the order sent.
        assert as_json(sent)["attachments"] == [image, notes]
        assert sent.attachments[0].thumbnails
        assert sent.attachments[0].width == 640
        assert await bob_ws.message(sent.id) == sent
        assert await ada_ws.message(sent.id) == sent
        # A retried send (same client_id) answers the original, attachments and all.
        retried = await ada_ws.request(
            attrs.evolve(send("s1", room, str(image["id"]), str(notes["id"])), ref="s1-again")
        )
        assert isinstance(retried, protocol.Ack), retried
        assert retried.message == sent

    # Now every member sees the files and fetches their bytes; others still do not.
    seen = await server.get(f"{FILES}/{notes['id']}", bob)
    assert seen.status_code == 200
    assert seen.json() == notes
    got = await fetch(await url_of(server, bob, notes["id"]))
    assert (got.status_code, got.content) == (200, TEXT)
    thumbnail = await fetch(await url_of(server, bob, image["id"], "320"))
    assert thumbnail.status_code == 200
    assert thumbnail.headers["content-type"].startswith("image/")
    for path in (f"{FILES}/{notes['id']}", f"{FILES}/{notes['id']}/url"):
        assert_error(await server.get(path, eve), 404, "not_found")


async def test_an_http_post_carries_the_files_everywhere_a_message_is_read(chat: Chat) -> None:
    server = chat.server
    ada, bob = await server.register("ada"), await server.register("bob")
    room = await room_of(server, ada, bob)
    notes = await ready_file(server, ada, TEXT, name="minutes.txt")
    reply_file = await ready_file(server, ada, b"appendix\n", name="appendix.txt")

    async with chat.connect(bob, room) as bob_ws:
        posted = await post(server, ada, room, "h1", notes["id"], body="quarterly minutes")
        assert posted.status_code == 201, posted.text
        message = posted.json()["message"]
        assert message["attachments"] == [notes]
        assert as_json(await bob_ws.message(message["id"])) == message
        # A retry answers the original message, with its attachments.
        retry = await post(server, ada, room, "h1", notes["id"], body="quarterly minutes")
        assert retry.status_code == 200
        assert retry.json() == {"message": message, "duplicate": True}
        reply = await post(server, ada, room, "h2", reply_file["id"], thread=message["id"])
        assert reply.status_code == 201, reply.text
        assert reply.json()["message"]["attachments"] == [reply_file]

    # An edit keeps the attachments.
    edited = await server.call(
        "PATCH",
        f"/api/v1/rooms/{room}/messages/{message['id']}",
        ada,
        json={"body": "quarterly minutes (final)", "client_id": "e1"},
    )
    assert edited.status_code == 200, edited.text
    history = await server.get(f"/api/v1/rooms/{room}/messages", bob)
    [first, second, _] = history.json()["events"]
    assert first["attachments"] == [notes]
    assert first["edited_at"] is not None
    assert second["attachments"] == [reply_file]
    detail = await server.get(f"/api/v1/rooms/{room}/messages/{message['id']}", bob)
    assert detail.json()["message"]["attachments"] == [notes]
    thread = await server.get(f"/api/v1/rooms/{room}/messages/{message['id']}/thread", bob)
    assert thread.json()["root"]["message"]["attachments"] == [notes]
    assert [m["attachments"] for m in thread.json()["messages"]] == [[reply_file]]
    found = await server.get("/api/v1/search", bob, params={"q": "quarterly"})
    assert [hit["message"]["attachments"] for hit in found.json()["hits"]] == [[notes]]

    # A resume replays the messages with their attachments (and the edit after them).
    async with chat.connect(bob) as again:
        resumed = await again.request(protocol.Resume(ref="r", rooms={room: 0}))
        assert isinstance(resumed, protocol.Ack), resumed
        await again.wait_for(lambda f: isinstance(f, protocol.Replayed))
        replayed = again.messages()
        assert [as_json(m)["attachments"] for m in replayed] == [[notes], [reply_file]]


async def test_refusals_are_precise_and_refuse_only_their_post(chat: Chat) -> None:
    server = chat.server
    ada, bob = await server.register("ada"), await server.register("bob")
    room = await room_of(server, ada, bob)
    mine = [await ready_file(server, ada, f"file {n}\n".encode()) for n in range(3)]
    theirs = await ready_file(server, bob, TEXT)
    rejected_id = (await upload(server, ada, b"", name="empty.txt")).json()["id"]

    async def rejected() -> bool:
        found = await server.services.store.get_file(rejected_id)
        return found is not None and found.state.value == "rejected"

    await until(rejected, timeout=TIMEOUT)
    deleted = await ready_file(server, ada, TEXT)
    assert (await server.delete(f"{FILES}/{deleted['id']}", ada)).status_code == 204
    attached = await ready_file(server, ada, TEXT)
    assert (await post(server, ada, room, "first", attached["id"])).status_code == 201

    bad = {
        "b-theirs": (theirs["id"], "it is not a file you uploaded"),
        "b-nothing": ("f_nothing", "it is not a file you uploaded"),
        "b-rejected": (rejected_id, "it was rejected (empty)"),
        "b-deleted": (deleted["id"], "it was deleted"),
        "b-attached": (attached["id"], "it is attached to a message already"),
    }
    good: dict[str, object] = {f"g{n}": file["id"] for n, file in enumerate(mine)}
    good |= {"g-text": None}
    goods = [
        send(ref, room, *([] if file is None else [str(file)]), body="ok")
        for ref, file in good.items()
    ]
    bads = [send(ref, room, str(file)) for ref, (file, _) in bad.items()]
    async with chat.connect(ada, room) as ws:
        # Sent at once (answers are awaited after), good and bad interleaved: however
        # the room batches them, each refusal refuses its own post only.
        for pair in itertools.zip_longest(goods, bads):
            for frame in pair:
                if frame is not None:
                    await ws.send(frame)
        for ref, file_id in good.items():
            ack = await ws.answer(ref)
            assert isinstance(ack, protocol.Ack), ack
            assert ack.message is not None
            assert [f.id for f in ack.message.attachments] == ([] if file_id is None else [file_id])
        for ref, (file_id, why) in bad.items():
            error = await ws.answer(ref)
            assert isinstance(error, protocol.ErrorReply), error
            assert error.code is protocol.ErrorCode.FORBIDDEN
            assert error.message == f"file {file_id!r} cannot be attached: {why}"

    history = (await server.get(f"/api/v1/rooms/{room}/messages", ada)).json()["events"]
    # Stored in the order sent: a post with attachments is stored on its own, in turn.
    assert [event["client_id"] for event in history] == ["first", *good]
    # The refused files are as they were: the attached one still on its first message.
    assert history[0]["attachments"] == [attached]
    refused = await post(server, bob, room, "bob-1", mine[0]["id"], body="mine now?")
    assert "it is not a file you uploaded" in assert_error(refused, 403, "forbidden")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"body": ""}, "body: must not be empty when attachments and encrypted are empty"),
        (
            {"body": "", "attachments": []},
            "body: must not be empty when attachments and encrypted are empty",
        ),
        ({"attachments": [f"f_{n}" for n in range(11)]}, "attachments: must hold 0 to 10 items"),
        ({"attachments": ["f_1", "f_2", "f_1"]}, "attachments: item 2 repeats 'f_1'"),
    ],
)
async def test_malformed_attachments_are_refused_over_http(
    chat: Chat, body: dict[str, Any], message: str
) -> None:
    ada = await chat.server.register("ada")
    room = await chat.server.create_room(ada)
    refused = await chat.server.post(
        f"/api/v1/rooms/{room}/messages", ada, json={"body": "hi", "client_id": "c"} | body
    )
    assert assert_error(refused, 400, "invalid_value") == message


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"body": ""}, "send.body: must not be empty when attachments and encrypted are empty"),
        (
            {"attachments": [f"f_{n}" for n in range(11)]},
            "send.attachments: must have between 0 and 10 items",
        ),
        (
            {"attachments": ["f_1", "f_1"]},
            "send.attachments: must not repeat an item ('f_1' is there twice)",
        ),
    ],
)
async def test_malformed_attachments_are_refused_over_the_websocket(
    chat: Chat, fields: dict[str, Any], message: str
) -> None:
    ada = await chat.server.register("ada")
    room = await chat.server.create_room(ada)
    frame = {"type": "send", "ref": "s", "room": room, "client_id": "c", "body": "hi"} | fields
    async with chat.connect(ada, room) as ws:
        await ws.ws.send_message(orjson.dumps(frame).decode())
        error = await ws.answer("s")
        assert isinstance(error, protocol.ErrorReply)
        assert (error.code, error.message) == (protocol.ErrorCode.INVALID_VALUE, message)
        ok = await ws.request(send("ok", room, body="still connected"))
        assert isinstance(ok, protocol.Ack)


async def test_a_file_still_being_checked_is_not_ready(tmp_path: Path) -> None:
    # clamd is configured but not there: the file waits, quarantined (fail closed).
    settings = {"scanner": "clamd", "clamd_address": f"tcp://127.0.0.1:{free_port()}"}
    async with chat_node(tmp_path, **settings) as chat:
        server = chat.server
        ada = await server.register("ada")
        room = await server.create_room(ada)
        file_id = (await upload(server, ada, TEXT)).json()["id"]
        state = (await server.get(f"{FILES}/{file_id}", ada)).json()["state"]
        assert state in ("pending", "scanning")
        refused = assert_error(await post(server, ada, room, "h", file_id), 409, "file_not_ready")
        assert refused.startswith(f"file {file_id!r} is not ready yet (")
        async with chat.connect(ada, room) as ws:
            error = await ws.request(send("w", room, file_id))
            assert isinstance(error, protocol.ErrorReply)
            assert error.code is protocol.ErrorCode.FILE_NOT_READY
        assert (await server.get(f"/api/v1/rooms/{room}/messages", ada)).json()["events"] == []


async def test_deleting_the_message_stops_delivering_its_files_at_once(chat: Chat) -> None:
    server = chat.server
    ada, bob = await server.register("ada"), await server.register("bob")
    room = await room_of(server, ada, bob)
    notes = await ready_file(server, ada, TEXT)
    message = (await post(server, ada, room, "h1", notes["id"])).json()["message"]
    url = await url_of(server, bob, notes["id"])
    assert (await fetch(url)).status_code == 200

    async with chat.connect(bob, room) as bob_ws:
        async with chat.connect(ada, room) as ada_ws:
            ref = "d1"
            await ada_ws.send(
                protocol.Delete(ref=ref, room=room, message=message["id"], client_id=ref)
            )
            assert isinstance(await ada_ws.answer(ref), protocol.Ack)
        await bob_ws.wait_for(lambda f: isinstance(f, protocol.DeletedEvent))

    # The URL issued before stops working at once, and the file is gone for everyone.
    assert (await fetch(url)).status_code == 404
    for user in (ada, bob):
        assert_error(await server.get(f"{FILES}/{notes['id']}", user), 404, "not_found")
        assert_error(await server.get(f"{FILES}/{notes['id']}/url", user), 404, "not_found")
    [shown, _] = (await server.get(f"/api/v1/rooms/{room}/messages", bob)).json()["events"]
    assert (shown["body"], shown["attachments"]) == ("", [])
