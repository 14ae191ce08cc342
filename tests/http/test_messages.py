"""Messages over HTTP: posting through the room actor, idempotent retries, history pages."""

from __future__ import annotations

from typing import Any

import orjson
import trio

from chorus import protocol
from chorus.actors import Reply
from chorus.actors.room import Subscribe
from tests.http.conftest import Account, Server, assert_error
from tests.recorder import Recorder

MESSAGE_FIELDS = {
    "id",
    "room",
    "seq",
    "sender",
    "body",
    "client_id",
    "created_at",
    "edited_at",
    "thread",
    "attachments",
    "encrypted",
}


async def post(server: Server, user: Account, room: str, body: str, client_id: str) -> Any:
    return await server.post(
        f"/api/v1/rooms/{room}/messages", user, json={"body": body, "client_id": client_id}
    )


async def history(server: Server, user: Account, room: str, **params: int) -> list[int]:
    response = await server.get(f"/api/v1/rooms/{room}/messages", user, params=params)
    assert response.status_code == 200, response.text
    return [event["seq"] for event in response.json()["events"]]


async def test_a_post_is_stored_with_the_next_seq(server: Server, ada: Account) -> None:
    room = await server.create_room(ada)
    first = await post(server, ada, room, "hello", "c1")
    assert first.status_code == 201
    body = first.json()
    assert body["duplicate"] is False
    message = body["message"]
    assert set(message) == MESSAGE_FIELDS
    assert (message["room"], message["seq"], message["sender"]) == (room, 1, ada.id)
    assert (message["body"], message["client_id"], message["edited_at"]) == ("hello", "c1", None)
    second = await post(server, ada, room, "again", "c2")
    assert second.json()["message"]["seq"] == 2
    assert (await server.get(f"/api/v1/rooms/{room}", ada)).json()["last_seq"] == 2


async def test_a_retried_post_returns_the_original_message(server: Server, ada: Account) -> None:
    room = await server.create_room(ada)
    original = (await post(server, ada, room, "once", "retry-me")).json()["message"]
    retry = await post(server, ada, room, "once, edited in the retry", "retry-me")
    assert retry.status_code == 200
    assert retry.json() == {"message": original, "duplicate": True}
    assert await history(server, ada, room) == [1]


async def test_a_client_id_used_in_another_room_is_a_conflict(server: Server, ada: Account) -> None:
    first, second = await server.create_room(ada, "a"), await server.create_room(ada, "b")
    assert (await post(server, ada, first, "hi", "shared")).status_code == 201
    reused = await post(server, ada, second, "hi", "shared")
    assert "client_id" in assert_error(reused, 409, "client_id_reused")
    assert await history(server, ada, second) == []


async def test_posts_go_through_the_room_actor_to_its_subscribers(
    server: Server, ada: Account
) -> None:
    room = await server.create_room(ada)
    listener = Recorder("conn-test")

    def subscribe(reply: Reply[int]) -> Subscribe:
        return Subscribe(subscriber=listener, after_seq=None, reply=reply)

    await server.services.rooms.ask(room, subscribe, timeout=5)
    posted = (await post(server, ada, room, "fan me out", "c1")).json()["message"]
    # The room broadcasts before it answers the poster: the frame is already there.
    event = protocol.decode_server_frame(orjson.dumps({"type": "message", **posted}))
    assert isinstance(event, protocol.MessageEvent)
    assert listener.messages() == [event.message]


async def test_concurrent_posts_get_distinct_contiguous_seqs(server: Server, ada: Account) -> None:
    room = await server.create_room(ada)
    seqs: list[int] = []

    async def send(n: int) -> None:
        response = await post(server, ada, room, f"message {n}", f"c{n}")
        assert response.status_code == 201
        seqs.append(response.json()["message"]["seq"])

    async with trio.open_nursery() as nursery:
        for n in range(20):
            nursery.start_soon(send, n)
    assert sorted(seqs) == list(range(1, 21))
    assert await history(server, ada, room, limit=100) == list(range(1, 21))


async def test_history_pages_before_after_and_limit(server: Server, ada: Account) -> None:
    room = await server.create_room(ada)
    for n in range(1, 8):
        assert (await post(server, ada, room, f"m{n}", f"c{n}")).status_code == 201
    assert await history(server, ada, room) == [1, 2, 3, 4, 5, 6, 7]
    assert await history(server, ada, room, limit=2) == [6, 7]
    assert await history(server, ada, room, before=4) == [1, 2, 3]
    assert await history(server, ada, room, before=6, limit=2) == [4, 5]
    assert await history(server, ada, room, after=5) == [6, 7]
    assert await history(server, ada, room, after=0, limit=3) == [1, 2, 3]
    assert await history(server, ada, room, after=2, before=6) == [3, 4, 5]
    assert await history(server, ada, room, after=7) == []
    url = f"/api/v1/rooms/{room}/messages"
    assert_error(await server.get(url, ada, params={"limit": 101}), 400, "invalid_value")
    assert_error(await server.get(url, ada, params={"before": 0}), 400, "invalid_value")
    assert_error(await server.get(url, ada, params={"after": "x"}), 400, "wrong_type")


async def test_only_members_read_and_post(server: Server, ada: Account, bob: Account) -> None:
    room = await server.create_room(ada)  # public, but bob has not joined
    assert_error(await server.get(f"/api/v1/rooms/{room}/messages", bob), 403, "forbidden")
    assert_error(await post(server, bob, room, "hi", "c1"), 403, "forbidden")
    assert_error(await post(server, ada, "r_nothing", "hi", "c1"), 404, "not_found")
    assert_error(await server.get("/api/v1/rooms/r_nothing/messages", ada), 404, "not_found")
    await server.post(f"/api/v1/rooms/{room}/join", bob)
    assert (await post(server, bob, room, "hi", "c1")).status_code == 201


async def test_message_bodies_and_client_ids_are_bounded(server: Server, ada: Account) -> None:
    room = await server.create_room(ada)
    longest = await post(server, ada, room, "x" * protocol.MAX_BODY_CHARS, "c1")
    assert longest.status_code == 201
    too_long = await post(server, ada, room, "x" * (protocol.MAX_BODY_CHARS + 1), "c2")
    assert "body" in assert_error(too_long, 400, "invalid_value")
    assert_error(await post(server, ada, room, "", "c3"), 400, "invalid_value")
    long_id = await post(server, ada, room, "hi", "c" * 65)
    assert "client_id" in assert_error(long_id, 400, "invalid_value")
