"""Mentions, the notification inbox, notify levels, exact unread counts and group DMs."""

from __future__ import annotations

from typing import Any

import trio

from tests.http.conftest import Account, Server, assert_error, published_rule
from tests.http.test_rich import post, shared_room, url


async def inbox(server: Server, user: Account, **params: Any) -> list[dict[str, Any]]:
    response = await server.get("/api/v1/notifications", user, params=params)
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["notifications"]
    return found


async def unread(server: Server, user: Account) -> dict[str, tuple[int, int]]:
    response = await server.get("/api/v1/unread", user)
    assert response.status_code == 200, response.text
    return {r["room"]: (r["unread"], r["mentions"]) for r in response.json()["rooms"]}


async def test_mentions_fill_the_inbox_which_pages_and_marks_read(
    server: Server, ada: Account, bob: Account
) -> None:
    room = await shared_room(server, ada, bob)
    mentions = [await post(server, ada, room, f"@bob look {n}", f"c{n}") for n in range(3)]
    await post(server, ada, room, "no mention", "c9")
    found = await inbox(server, bob)
    # Newest first by id: ids order by millisecond, so posts within one may swap.
    assert sorted((n["message"], n["kind"], n["read_at"]) for n in found) == sorted(
        (m["id"], "mention", None) for m in mentions
    )
    assert await inbox(server, ada) == []  # nobody sees another's notifications
    first = (await server.get("/api/v1/notifications", bob, params={"limit": 2})).json()
    assert first["notifications"] == found[:2]
    rest = await inbox(server, bob, before=first["next_before"])
    assert rest == found[2:]
    marked = await server.post("/api/v1/notifications/read", bob, json={"ids": [found[0]["id"]]})
    assert marked.json() == {"marked": 1}
    # Another user's ids are skipped.
    assert (
        await server.post("/api/v1/notifications/read", ada, json={"ids": [found[1]["id"]]})
    ).json() == {"marked": 0}
    assert len(await inbox(server, bob, unread_only="true")) == 2
    assert (await server.post("/api/v1/notifications/read", bob, json={"all": True})).json() == {
        "marked": 2
    }
    assert await inbox(server, bob, unread_only="true") == []
    for body in ({}, {"all": True, "ids": ["n_x"]}, {"all": False}):
        response = await server.post("/api/v1/notifications/read", bob, json=body)
        assert_error(response, 400, "invalid_value")
    assert_error(
        await server.get("/api/v1/notifications", bob, params={"unread_only": "1"}),
        400,
        "wrong_type",
    )


async def test_a_muted_room_notifies_nobody(server: Server, ada: Account, bob: Account) -> None:
    room = await shared_room(server, ada, bob)
    muted = await server.call("PUT", f"/api/v1/rooms/{room}/notify", bob, json={"level": "none"})
    assert muted.status_code == 200, muted.text
    assert muted.json()["notify"] == "none"
    await post(server, ada, room, "@bob are you there", "c1")
    assert await inbox(server, bob) == []
    rooms = (await server.get("/api/v1/rooms", bob)).json()["rooms"]
    assert [r["notify"] for r in rooms] == ["none"]
    carol = await server.register("carol")
    response = await server.call(
        "PUT", f"/api/v1/rooms/{room}/notify", carol, json={"level": "all"}
    )
    assert_error(response, 403, "forbidden")


async def test_unread_counts_stay_exact_through_edits_deletes_and_concurrent_posts(
    server: Server, ada: Account, bob: Account
) -> None:
    carol = await server.register("carol")
    room = await shared_room(server, ada, bob, carol)
    posted: list[dict[str, Any]] = []

    async def send(user: Account, n: int) -> None:
        body = f"@bob message {n}" if n % 3 == 0 else f"message {n}"
        posted.append(await post(server, user, room, body, f"{user.username}-{n}"))

    async with trio.open_nursery() as nursery:
        for n in range(12):
            nursery.start_soon(send, ada if n % 2 else carol, n)
    # 12 messages by others, 4 of them (n = 0, 3, 6, 9) mention bob.
    assert (await unread(server, bob))[room] == (12, 4)
    own = await post(server, bob, room, "mine do not count", "b1")
    assert (await unread(server, bob))[room] == (12, 4)
    # Edits change nothing: mentions are counted as sent.
    mention = next(p for p in posted if p["body"].startswith("@bob"))
    plain = next(p for p in posted if not p["body"].startswith("@bob"))
    author = ada if mention["sender"] == ada.id else carol
    edited = await server.call(
        "PATCH", url(room, mention["id"]), author, json={"body": "edited", "client_id": "e1"}
    )
    assert edited.status_code == 200, edited.text
    assert (await unread(server, bob))[room] == (12, 4)
    # Deletes remove the message and its mention.
    for message, cid in ((mention, "d1"), (plain, "d2")):
        deleted = await server.delete(url(room, message["id"]), ada, params={"client_id": cid})
        assert deleted.status_code == 200, deleted.text
    assert (await unread(server, bob))[room] == (10, 3)
    # Reading up to bob's own message (after all of them) clears both counts.
    await server.post(f"/api/v1/rooms/{room}/read", bob, json={"seq": own["seq"]})
    assert (await unread(server, bob))[room] == (0, 0)
    gone = {mention["id"], plain["id"]}
    others = [p for p in posted if p["sender"] != ada.id and p["id"] not in gone]
    assert (await unread(server, ada))[room] == (len(others) + 1, 0)  # carol's and bob's


async def test_group_direct_rooms_are_stable_and_named_by_their_members(
    server: Server, ada: Account, bob: Account
) -> None:
    carol = await server.register("carol", display_name="Carol C")
    created = await server.post("/api/v1/dms", ada, json={"user_ids": [bob.id, carol.id]})
    assert created.status_code == 201, created.text
    group = created.json()
    assert group["kind"] == "direct"
    again = await server.post("/api/v1/dms", carol, json={"user_ids": [bob.id, ada.id, carol.id]})
    assert (again.status_code, again.json()["id"]) == (200, group["id"])
    pair = await server.post("/api/v1/dms", ada, json={"user_ids": [bob.id]})
    same_pair = await server.post("/api/v1/dms", bob, json={"user_id": ada.id})
    assert same_pair.json()["id"] == pair.json()["id"] != group["id"]
    rooms = {r["id"]: r for r in (await server.get("/api/v1/rooms", ada)).json()["rooms"]}
    others = [(u["id"], u["display_name"]) for u in rooms[group["id"]]["others"]]
    assert sorted(others) == sorted([(bob.id, "bob"), (carol.id, "Carol C")])
    assert [u["id"] for u in rooms[pair.json()["id"]]["others"]] == [bob.id]
    public = await server.create_room(ada)
    rooms = {r["id"]: r for r in (await server.get("/api/v1/rooms", ada)).json()["rooms"]}
    assert rooms[public]["others"] is None


async def test_group_size_and_shape_are_checked(server: Server, ada: Account) -> None:
    limit = server.services.settings.max_group_size
    users = [await server.register(f"user{n}") for n in range(limit)]
    too_many = await server.post("/api/v1/dms", ada, json={"user_ids": [u.id for u in users]})
    assert str(limit) in assert_error(too_many, 400, "invalid_value")
    largest = await server.post("/api/v1/dms", ada, json={"user_ids": [u.id for u in users[1:]]})
    assert largest.status_code == 201, largest.text
    for body in ({}, {"user_id": users[0].id, "user_ids": [users[1].id]}, {"user_ids": [ada.id]}):
        assert_error(await server.post("/api/v1/dms", ada, json=body), 400, "invalid_value")
    unknown = await server.post("/api/v1/dms", ada, json={"user_ids": [users[0].id, "u_nobody"]})
    assert_error(unknown, 404, "not_found")


async def test_the_published_mark_read_body_is_ids_or_all(server: Server, ada: Account) -> None:
    # `{}`, `{"all": false}` and `ids` with `all: true` were schema-valid, and refused (issue 12).
    accepts = await published_rule(server, "POST", "/api/v1/notifications/read")
    refused_bodies: list[dict[str, object]] = [
        {},
        {"all": False},
        {"ids": None},
        {"ids": ["n_x"], "all": True},
    ]
    for body in refused_bodies:
        assert not accepts(body), body
        refused = await server.post("/api/v1/notifications/read", ada, json=body)
        assert assert_error(refused, 400, "invalid_value") == "give exactly one of ids and all"
    accepted_bodies: list[dict[str, object]] = [
        {"all": True},
        {"ids": ["n_x"]},
        {"ids": ["n_x"], "all": False},
        {"ids": None, "all": True},
    ]
    for body in accepted_bodies:
        assert accepts(body), body
        marked = await server.post("/api/v1/notifications/read", ada, json=body)
        assert marked.status_code == 200, marked.text
