"""Threads, edits, deletes, reactions and read positions over HTTP, through the room actor."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import orjson

from chorus import protocol
from chorus.actors import Reply
from chorus.actors.room import Subscribe
from chorus.persistence import Role, now_ms
from tests.http.conftest import Account, Server, assert_error, published_rule
from tests.recorder import Recorder

THUMBS = "👍"


async def post(
    server: Server, user: Account, room: str, body: str, client_id: str, **extra: Any
) -> dict[str, Any]:
    response = await server.post(
        url(room), user, json={"body": body, "client_id": client_id} | extra
    )
    assert response.status_code == 201, response.text
    message: dict[str, Any] = response.json()["message"]
    return message


async def shared_room(server: Server, owner: Account, *others: Account) -> str:
    room = await server.create_room(owner, "team", kind="private")
    for other in others:
        body = {"user_id": other.id}
        invited = await server.post(f"/api/v1/rooms/{room}/members", owner, json=body)
        assert invited.status_code == 201, invited.text
    return room


def url(room: str, message: str = "", tail: str = "") -> str:
    path = f"/api/v1/rooms/{room}/messages"
    return path + (f"/{message}" if message else "") + tail


def reaction_url(room: str, message: str, emoji: str = THUMBS) -> str:
    return url(room, message, "/reactions/" + quote(emoji, safe=""))


async def edit(server: Server, user: Account, room: str, message: str, body: str, cid: str) -> Any:
    return await server.call(
        "PATCH", url(room, message), user, json={"body": body, "client_id": cid}
    )


async def events(server: Server, user: Account, room: str) -> list[dict[str, Any]]:
    response = await server.get(url(room), user, params={"limit": 100})
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["events"]
    return found


async def test_history_replays_every_change_as_its_frame(
    server: Server, ada: Account, bob: Account
) -> None:
    room = await shared_room(server, ada, bob)
    first = await post(server, ada, room, "hello", "c1")
    second = await post(server, bob, room, "hi ada", "c2")
    edited = await edit(server, ada, room, first["id"], "hello all", "e1")
    assert edited.status_code == 200, edited.text
    assert edited.json()["duplicate"] is False
    assert (edited.json()["event"]["type"], edited.json()["event"]["seq"]) == ("edited", 3)
    reacted = await server.call(
        "PUT", reaction_url(room, first["id"]), bob, params={"client_id": "r1"}
    )
    assert reacted.status_code == 200, reacted.text
    deleted = await server.delete(url(room, second["id"]), bob, params={"client_id": "d1"})
    assert deleted.status_code == 200, deleted.text
    history = await events(server, ada, room)
    assert [(e["type"], e["seq"]) for e in history] == [
        ("message", 1),
        ("message", 2),
        ("edited", 3),
        ("reaction", 4),
        ("deleted", 5),
    ]
    # Each entry is the frame the gateway sends for that event.
    frames = [protocol.decode_server_frame(orjson.dumps(event)) for event in history]
    assert frames[3] == protocol.ReactionEvent(
        room=room,
        seq=4,
        message=first["id"],
        user=bob.id,
        emoji=THUMBS,
        present=True,
        at=history[3]["at"],
        client_id="r1",
    )
    assert history[4] == deleted.json()["event"]
    # Messages show their current state: edited, and a tombstone.
    assert (history[0]["body"], history[0]["edited_at"]) == ("hello all", history[2]["edited_at"])
    assert history[1]["body"] == ""


async def test_edits_and_deletes_are_broadcast_and_idempotent(server: Server, ada: Account) -> None:
    room = await server.create_room(ada)
    message = await post(server, ada, room, "draft", "c1")
    listener = Recorder("conn-test")

    def subscribe(reply: Reply[int]) -> Subscribe:
        return Subscribe(subscriber=listener, after_seq=None, reply=reply)

    await server.services.rooms.ask(room, subscribe, timeout=5)
    first = (await edit(server, ada, room, message["id"], "final", "e1")).json()
    retry = (await edit(server, ada, room, message["id"], "other", "e1")).json()
    assert retry == {"event": first["event"], "duplicate": True}
    deleted = await server.delete(url(room, message["id"]), ada, params={"client_id": "d1"})
    again = await server.delete(url(room, message["id"]), ada, params={"client_id": "d1"})
    assert again.json() == deleted.json() | {"duplicate": True}
    # The room broadcast each change before answering.
    assert [type(f) for f in listener.frames] == [protocol.EditedEvent, protocol.DeletedEvent]
    assert_error(await edit(server, ada, room, message["id"], "too late", "e2"), 410, "gone")
    gone = await server.delete(url(room, message["id"]), ada, params={"client_id": "d2"})
    assert_error(gone, 410, "gone")
    detail = (await server.get(url(room, message["id"]), ada)).json()
    assert detail["message"]["body"] == ""
    assert (detail["deleted_by"], detail["deleted_at"]) == (
        ada.id,
        deleted.json()["event"]["deleted_at"],
    )


async def test_only_the_sender_edits_and_only_sender_owner_or_moderator_delete(
    server: Server, ada: Account, bob: Account
) -> None:
    carol = await server.register("carol")
    room = await shared_room(server, ada, bob, carol)
    by_bob = await post(server, bob, room, "bob's", "b1")
    by_carol = await post(server, carol, room, "carol's", "k1")
    assert_error(await edit(server, ada, room, by_bob["id"], "owner edit", "e1"), 403, "forbidden")
    assert_error(await edit(server, carol, room, by_bob["id"], "x", "e2"), 403, "forbidden")
    denied = await server.delete(url(room, by_bob["id"]), carol, params={"client_id": "d1"})
    assert_error(denied, 403, "forbidden")
    # Outsiders are refused before anything else, even the message's existence.
    dave = await server.register("dave")
    assert_error(await edit(server, dave, room, by_bob["id"], "x", "e3"), 403, "forbidden")
    assert_error(await server.get(url(room, by_bob["id"]), dave), 403, "forbidden")
    # The owner and a moderator delete others' messages.
    owner = await server.delete(url(room, by_bob["id"]), ada, params={"client_id": "d2"})
    assert owner.status_code == 200, owner.text
    await server.services.store.remove_member(room, bob.id)
    await server.services.store.add_member(room, bob.id, Role.MODERATOR, now_ms())
    moderator = await server.delete(url(room, by_carol["id"]), bob, params={"client_id": "d3"})
    assert moderator.status_code == 200, moderator.text
    # Unknown messages and messages of other rooms are not found.
    other = await server.create_room(ada, "other")
    elsewhere = await post(server, ada, other, "elsewhere", "o1")
    assert_error(await edit(server, ada, room, elsewhere["id"], "x", "e4"), 404, "not_found")
    assert_error(await server.get(url(room, "m_nothing"), ada), 404, "not_found")


async def test_edit_history_is_kept_for_members(server: Server, ada: Account, bob: Account) -> None:
    room = await server.create_room(ada)
    message = await post(server, ada, room, "one", "c1")
    await edit(server, ada, room, message["id"], "two", "e1")
    await edit(server, ada, room, message["id"], "three", "e2")
    response = await server.get(url(room, message["id"], "/history"), ada)
    assert response.status_code == 200, response.text
    edits = response.json()["edits"]
    assert [(e["body"], e["seq"]) for e in edits] == [("one", 2), ("two", 3)]
    assert edits[0]["replaced_at"] == edits[1]["written_at"]
    assert (await server.get(url(room, message["id"]), ada)).json()["message"]["body"] == "three"
    assert_error(await server.get(url(room, message["id"], "/history"), bob), 403, "forbidden")


async def test_reactions_count_once_per_user_and_list_who(
    server: Server, ada: Account, bob: Account
) -> None:
    room = await shared_room(server, ada, bob)
    message = await post(server, ada, room, "react to me", "c1")
    target = reaction_url(room, message["id"])
    for user, cid in ((ada, "r1"), (bob, "r2"), (bob, "r3")):
        response = await server.call("PUT", target, user, params={"client_id": cid})
        assert response.status_code == 200, response.text
    # bob's second reaction changed nothing: no event.
    assert response.json() == {"event": None, "duplicate": False}
    party = reaction_url(room, message["id"], ":party:")
    await server.call("PUT", party, bob, params={"client_id": "r4"})
    detail = (await server.get(url(room, message["id"]), ada)).json()
    assert detail["reactions"] == {THUMBS: 2, ":party:": 1}
    who = (await server.get(target, ada)).json()["users"]
    assert sorted(who) == sorted([ada.id, bob.id])  # earliest first (ties: by user id)
    first = (await server.get(target, ada, params={"limit": 1})).json()
    assert first == {"users": who[:1]}
    removed = await server.delete(target, bob, params={"client_id": "u1"})
    assert removed.json()["event"]["present"] is False
    detail = (await server.get(url(room, message["id"]), ada)).json()
    assert detail["reactions"] == {THUMBS: 1, ":party:": 1}


async def test_reactions_follow_the_emoji_rule_and_membership(
    server: Server, ada: Account, bob: Account
) -> None:
    room = await server.create_room(ada)  # public, but bob is not in it
    message = await post(server, ada, room, "hi", "c1")
    spaced = reaction_url(room, message["id"], "thumbs up")
    reason = assert_error(
        await server.call("PUT", spaced, ada, params={"client_id": "r1"}), 400, "invalid_value"
    )
    assert "emoji" in reason
    target = reaction_url(room, message["id"])
    assert_error(
        await server.call("PUT", target, bob, params={"client_id": "r2"}), 403, "forbidden"
    )
    assert_error(await server.get(target, bob), 403, "forbidden")
    assert_error(await server.call("PUT", target, ada), 400, "missing_field")
    await server.delete(url(room, message["id"]), ada, params={"client_id": "d1"})
    assert_error(await server.call("PUT", target, ada, params={"client_id": "r3"}), 410, "gone")


async def test_the_published_emoji_rule_is_the_enforced_one(server: Server, ada: Account) -> None:
    # The {emoji} parameter was published as any id: a spaced emoji was schema-valid (issue 12).
    room = await server.create_room(ada)
    message = await post(server, ada, room, "hi", "c1")
    path = "/api/v1/rooms/{room_id}/messages/{message_id}/reactions/{emoji}"
    for method in ("PUT", "DELETE", "GET"):
        accepts = await published_rule(server, method, path, "emoji")
        params = {} if method == "GET" else {"client_id": f"r-{method}"}
        for emoji in ("thumbs up", "x\u3000", "tab\t", "new\nline"):
            assert not accepts(emoji), (method, emoji)
            target = reaction_url(room, message["id"], emoji)
            refused = await server.call(method, target, ada, params=params)
            assert "emoji" in assert_error(refused, 400, "invalid_value")
        for index, emoji in enumerate((THUMBS, ":party:", "👩\u200d💻")):
            assert accepts(emoji), (method, emoji)
            target = reaction_url(room, message["id"], emoji)
            params = {} if method == "GET" else {"client_id": f"r-{method}-{index}"}
            answered = await server.call(method, target, ada, params=params)
            assert answered.status_code == 200, answered.text


async def test_an_integer_may_be_written_with_a_zero_fraction(
    server: Server, ada: Account, bob: Account
) -> None:
    # JSON Schema counts 2.0 as an integer; the server refused it as a number (issue 12).
    room = await shared_room(server, ada, bob)
    await post(server, ada, room, "one", "c1")
    await post(server, ada, room, "two", "c2")
    read = await server.post(f"/api/v1/rooms/{room}/read", bob, json={"seq": 2.0})
    assert read.status_code == 200, read.text
    assert read.json()["read_seq"] == 2
    fraction = await server.post(f"/api/v1/rooms/{room}/read", bob, json={"seq": 1.5})
    assert "seq" in assert_error(fraction, 400, "wrong_type")
    huge = await server.post(f"/api/v1/rooms/{room}/read", bob, json={"seq": 1e300})
    assert "seq" in assert_error(huge, 400, "invalid_value")


async def test_threads_count_replies_and_are_followed(
    server: Server, ada: Account, bob: Account
) -> None:
    room = await shared_room(server, ada, bob)
    root = await post(server, ada, room, "topic", "c1")
    replies = [
        await post(server, bob, room, f"reply {n}", f"t{n}", thread=root["id"]) for n in range(3)
    ]
    assert {reply["thread"] for reply in replies} == {root["id"]}
    await post(server, ada, room, "unrelated", "c2")
    thread = (await server.get(url(room, root["id"], "/thread"), ada)).json()
    assert [m["body"] for m in thread["messages"]] == ["reply 0", "reply 1", "reply 2"]
    assert (thread["root"]["reply_count"], thread["root"]["last_reply_at"]) == (
        3,
        replies[2]["created_at"],
    )
    page = await server.get(url(room, root["id"], "/thread"), ada, params={"limit": 2})
    assert [m["seq"] for m in page.json()["messages"]] == [replies[1]["seq"], replies[2]["seq"]]
    before = await server.get(
        url(room, root["id"], "/thread"), ada, params={"before": replies[1]["seq"]}
    )
    assert [m["seq"] for m in before.json()["messages"]] == [replies[0]["seq"]]
    for user in (ada, bob):
        followed = (await server.get("/api/v1/threads", user)).json()["threads"]
        assert [t["message"]["id"] for t in followed] == [root["id"]]
    # Replies to replies, and to deleted roots, are refused.
    nested = await server.post(
        url(room), bob, json={"body": "x", "client_id": "n1", "thread": replies[0]["id"]}
    )
    assert_error(nested, 400, "invalid_value")
    missing = await server.post(
        url(room), bob, json={"body": "x", "client_id": "n2", "thread": "m_no"}
    )
    assert_error(missing, 404, "not_found")
    await server.delete(url(room, root["id"]), ada, params={"client_id": "d1"})
    late = await server.post(
        url(room), bob, json={"body": "x", "client_id": "n3", "thread": root["id"]}
    )
    assert_error(late, 410, "gone")
    carol = await server.register("carol")
    assert_error(await server.get(url(room, root["id"], "/thread"), carol), 403, "forbidden")
    assert (await server.get("/api/v1/threads", carol)).json() == {"threads": []}


async def test_read_markers_receipts_and_unread_counts(
    server: Server, ada: Account, bob: Account
) -> None:
    room = await shared_room(server, ada, bob)
    for n in range(3):
        await post(server, ada, room, f"m{n}", f"c{n}")
    listener = Recorder("conn-test")

    def subscribe(reply: Reply[int]) -> Subscribe:
        return Subscribe(subscriber=listener, after_seq=None, reply=reply)

    await server.services.rooms.ask(room, subscribe, timeout=5)
    read = await server.post(f"/api/v1/rooms/{room}/read", bob, json={"seq": 2})
    assert read.json() == {"read_seq": 2}
    # Never backwards, never past the end.
    assert (await server.post(f"/api/v1/rooms/{room}/read", bob, json={"seq": 1})).json() == {
        "read_seq": 2
    }
    assert (await server.post(f"/api/v1/rooms/{room}/read", ada, json={"seq": 99})).json() == {
        "read_seq": 3
    }
    unread = (await server.get("/api/v1/unread", bob)).json()["rooms"]
    assert unread == [{"room": room, "unread": 1, "mentions": 0}]
    members = {
        m["user_id"]: m["read_seq"]
        for m in (await server.get(f"/api/v1/rooms/{room}", ada)).json()["members"]
    }
    assert members == {ada.id: 3, bob.id: 2}
    await listener.wait_for(3, protocol.ReceiptEvent)
    receipts = [f for f in listener.frames if isinstance(f, protocol.ReceiptEvent)]
    assert receipts == [
        protocol.ReceiptEvent(room=room, user=bob.id, seq=2),
        protocol.ReceiptEvent(room=room, user=bob.id, seq=2),
        protocol.ReceiptEvent(room=room, user=ada.id, seq=3),
    ]
    # The owner hides receipts: markers disappear from the details, none are sent.
    assert_error(
        await server.call("PATCH", f"/api/v1/rooms/{room}", bob, json={"read_receipts": False}),
        403,
        "forbidden",
    )
    hidden = await server.call("PATCH", f"/api/v1/rooms/{room}", ada, json={"read_receipts": False})
    assert hidden.json()["read_receipts"] is False
    members = {
        m["user_id"]: m["read_seq"]
        for m in (await server.get(f"/api/v1/rooms/{room}", ada)).json()["members"]
    }
    assert members == {ada.id: None, bob.id: None}
    await server.post(f"/api/v1/rooms/{room}/read", bob, json={"seq": 3})
    # A receipt would be in the room's mailbox before this post: the post's event comes after.
    await post(server, ada, room, "later", "c9")
    await listener.wait_for(1, protocol.MessageEvent)
    assert len([f for f in listener.frames if isinstance(f, protocol.ReceiptEvent)]) == 3
    carol = await server.register("carol")
    assert_error(
        await server.post(f"/api/v1/rooms/{room}/read", carol, json={"seq": 1}), 403, "forbidden"
    )
