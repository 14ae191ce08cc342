"""Search over HTTP: hits with snippets, filters, paging, and never another user's rooms."""

from __future__ import annotations

from typing import Any

from chorus.persistence import HIGHLIGHT_END, HIGHLIGHT_START
from tests.http.conftest import Account, Server, assert_error, published_rule
from tests.http.test_rich import post, shared_room, url


def newest_first(*messages: dict[str, Any]) -> list[str]:
    """Message ids in the order search returns them (by time, then id, descending)."""
    ordered = sorted(messages, key=lambda m: (m["created_at"], m["id"]), reverse=True)
    return [m["id"] for m in ordered]


async def search(server: Server, user: Account, **params: Any) -> dict[str, Any]:
    response = await server.get("/api/v1/search", user, params=params)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def test_search_finds_highlighted_messages_with_filters_and_pages(
    server: Server, ada: Account, bob: Account
) -> None:
    room = await shared_room(server, ada, bob)
    other = await shared_room(server, ada, bob)
    first = await post(server, ada, room, "the deploy is green", "c1")
    second = await post(server, bob, room, "deploy again tomorrow", "c2")
    third = await post(server, bob, other, "deploy elsewhere", "c3")
    await post(server, ada, room, "nothing to see", "c4")
    found = await search(server, ada, q="deploy")
    assert [hit["message"]["id"] for hit in found["hits"]] == newest_first(first, second, third)
    snippets = {hit["message"]["id"]: hit["snippet"] for hit in found["hits"]}
    assert snippets[first["id"]] == f"the {HIGHLIGHT_START}deploy{HIGHLIGHT_END} is green"
    assert found["next_offset"] is None
    in_room = await search(server, ada, q="deploy", room=room)
    assert [h["message"]["id"] for h in in_room["hits"]] == newest_first(first, second)
    by_bob = await search(server, ada, q="deploy", sender=bob.id, room=room)
    assert [h["message"]["id"] for h in by_bob["hits"]] == [second["id"]]
    window = await search(
        server, ada, q="deploy", since=first["created_at"], until=first["created_at"] + 1
    )
    assert first["id"] in [h["message"]["id"] for h in window["hits"]]
    page = await search(server, ada, q="deploy", limit=2)
    assert (page["hits"], page["next_offset"]) == (found["hits"][:2], 2)
    rest = await search(server, ada, q="deploy", limit=2, offset=2)
    assert (rest["hits"], rest["next_offset"]) == (found["hits"][2:], None)
    # Deleted and edited messages are searched by their current text.
    await server.delete(url(room, second["id"]), bob, params={"client_id": "d1"})
    await server.call(
        "PATCH", url(room, first["id"]), ada, json={"body": "all good", "client_id": "e1"}
    )
    assert [h["message"]["id"] for h in (await search(server, ada, q="deploy"))["hits"]] == [
        third["id"]
    ]
    assert_error(await server.get("/api/v1/search", ada), 400, "missing_field")
    assert_error(await server.get("/api/v1/search", ada, params={"q": ""}), 400, "invalid_value")


async def test_search_never_shows_rooms_the_caller_is_not_in(
    server: Server, ada: Account, bob: Account
) -> None:
    private = await shared_room(server, ada)
    public = await server.create_room(ada, "lobby")
    await post(server, ada, private, "secret launch plans", "c1")
    await post(server, ada, public, "public launch party", "c2")
    assert (await search(server, bob, q="launch"))["hits"] == []
    assert (await search(server, bob, q="launch", sender=ada.id))["hits"] == []
    assert_error(
        await server.get("/api/v1/search", bob, params={"q": "launch", "room": private}),
        403,
        "forbidden",
    )
    assert_error(
        await server.get("/api/v1/search", bob, params={"q": "launch", "room": public}),
        403,
        "forbidden",
    )
    await server.post(f"/api/v1/rooms/{public}/join", bob)
    hits = (await search(server, bob, q="launch"))["hits"]
    assert [h["message"]["room"] for h in hits] == [public]
    # Leaving a room takes its messages out of the caller's results.
    await server.delete(f"/api/v1/rooms/{public}/members/{bob.id}", bob)
    assert (await search(server, bob, q="launch"))["hits"] == []


async def test_the_published_query_rule_is_the_enforced_one(server: Server, ada: Account) -> None:
    # A query of spaces was schema-valid, and refused as empty (issue 12).
    valid = await published_rule(server, "GET", "/api/v1/search", "q")
    for q in (" ", "\u3000\t", "\x1c \x85"):
        assert not valid(q), repr(q)
        refused = await server.get("/api/v1/search", ada, params={"q": q})
        assert assert_error(refused, 400, "invalid_value") == "q: the search query is empty"
    for q in ("x", " word ", "\ufeff"):
        assert valid(q), repr(q)
        assert (await server.get("/api/v1/search", ada, params={"q": q})).status_code == 200
