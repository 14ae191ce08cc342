"""Store contract: full-text search (permissions, filters, paging, hostile queries)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chorus.persistence import (
    HIGHLIGHT_END,
    HIGHLIGHT_START,
    Room,
    RoomKind,
    SearchHit,
    Store,
    User,
)
from tests.persistence.helpers import T0, OpenStore, join, make_room, make_user, say


def bodies(hits: list[SearchHit]) -> list[str]:
    return [hit.message.body for hit in hits]


async def setup(store: Store) -> tuple[User, User, Room, Room]:
    """ada and bob share `shared`; only bob is in `secret`."""
    ada, bob = await make_user(store, "ada"), await make_user(store, "bob")
    shared = await make_room(store, ada, "shared")
    await join(store, shared, bob)
    secret = await make_room(store, bob, "secret", RoomKind.PRIVATE)
    return ada, bob, shared, secret


async def test_search_finds_words_newest_first_with_highlights(store: Store) -> None:
    ada, bob, shared, _ = await setup(store)
    await say(store, shared, ada, "the Deploy went fine", "c1", at=T0 + 1)
    await say(store, shared, bob, "nothing to see", "c2", at=T0 + 2)
    await say(store, shared, bob, "deploy again tomorrow", "c3", at=T0 + 3)

    hits = await store.search(ada.id, "deploy", limit=10)

    assert bodies(hits) == ["deploy again tomorrow", "the Deploy went fine"]
    assert hits[1].snippet == f"the {HIGHLIGHT_START}Deploy{HIGHLIGHT_END} went fine"
    assert hits[0].message == (await store.messages(shared.id, limit=1))[0]


async def test_search_only_ever_finds_messages_of_the_users_rooms(store: Store) -> None:
    ada, bob, shared, secret = await setup(store)
    await say(store, secret, bob, "launch codes", "s1")
    await say(store, shared, bob, "launch party", "s2")
    dm, _ = await store.direct_room(bob.id, (await make_user(store, "cy")).id, T0)
    await say(store, dm, bob, "launch secret", "s3")

    assert bodies(await store.search(ada.id, "launch", limit=10)) == ["launch party"]
    # Filters cannot widen what the user may see.
    assert await store.search(ada.id, "launch", room_id=secret.id, limit=10) == []
    assert await store.search(ada.id, "launch", room_id=dm.id, limit=10) == []
    assert len(await store.search(bob.id, "launch", limit=10)) == 3
    await store.remove_member(shared.id, ada.id)
    assert await store.search(ada.id, "launch", limit=10) == []
    assert await store.search("u_doesnotexist0000", "launch", limit=10) == []


async def test_search_follows_edits_and_deletes_and_skips_other_events(store: Store) -> None:
    ada, _, shared, _ = await setup(store)
    message = (await say(store, shared, ada, "draft alpha", "c1")).message
    assert len(await store.search(ada.id, "alpha", limit=10)) == 1
    await store.edit_message(message.id, ada.id, "final beta", "e1", T0 + 1)
    assert await store.search(ada.id, "alpha", limit=10) == []
    [hit] = await store.search(ada.id, "beta", limit=10)
    assert hit.message.id == message.id  # the message, not its edit event
    await store.set_reaction(message.id, ada.id, "beta", True, "r1", T0)
    assert len(await store.search(ada.id, "beta", limit=10)) == 1
    await store.delete_message(message.id, ada.id, "d1", T0 + 2)
    assert await store.search(ada.id, "beta", limit=10) == []


async def test_an_edit_made_before_any_search_is_what_search_finds(store: Store) -> None:
    ada, _, shared, _ = await setup(store)
    message = (await say(store, shared, ada, "draft alpha", "c1")).message
    await store.edit_message(message.id, ada.id, "final beta", "e1", T0 + 1)
    assert await store.search(ada.id, "alpha", limit=10) == []
    assert len(await store.search(ada.id, "beta", limit=10)) == 1


async def test_search_filters_and_pages(store: Store) -> None:
    ada, bob, shared, _ = await setup(store)
    other = await make_room(store, ada, "other")
    for i in range(6):
        await say(store, shared, (ada, bob)[i % 2], f"report {i}", f"c{i}", at=T0 + i)
    await say(store, other, ada, "report other", "o1", at=T0 + 10)

    async def search(**filters: Any) -> list[str]:
        return bodies(await store.search(ada.id, "report", limit=10, **filters))

    assert len(await search()) == 7
    assert await search(room_id=other.id) == ["report other"]
    assert await search(sender_id=bob.id) == ["report 5", "report 3", "report 1"]
    assert await search(since=T0 + 2, until=T0 + 4) == ["report 3", "report 2"]
    pages = [
        bodies(await store.search(ada.id, "report", room_id=shared.id, limit=4, offset=offset))
        for offset in (0, 4, 8)
    ]
    assert pages == [
        ["report 5", "report 4", "report 3", "report 2"],
        ["report 1", "report 0"],
        [],
    ]


async def test_search_syntax_words_phrases_and_exclusions(store: Store) -> None:
    ada, _, shared, _ = await setup(store)
    for i, body in enumerate(["red apple pie", "green apple", "apple red", "or else"]):
        await say(store, shared, ada, body, f"c{i}", at=T0 + i)

    async def find(query: str) -> list[str]:
        return sorted(bodies(await store.search(ada.id, query, limit=10)))

    assert await find("apple red") == ["apple red", "red apple pie"]
    assert await find('"red apple"') == ["red apple pie"]
    assert await find("apple -red") == ["green apple"]
    assert await find('apple -"apple red"') == ["green apple", "red apple pie"]
    assert await find("APPLE Pie") == ["red apple pie"]
    assert await find("or") == ["or else"]
    assert await find("green or red") == []
    assert await find("-apple") == []
    assert await find("appl") == []  # whole words only


@pytest.mark.parametrize(
    "query",
    [
        '"',
        '"unbalanced',
        "*",
        "apple*",
        "NEAR(apple red",
        "NEAR(apple, red)",
        "-",
        "--apple",
        "apple -",
        "a:b",
        "body:apple",
        "^apple",
        "(apple",
        "apple)",
        "AND",
        "apple OR",
        "NOT apple",
        "'; DROP TABLE messages; --",
        "\\",
        "%_",
        "!@#$%^&*()",
        "日本語",
        "café 🍎",
        "\u200b",
        "nul\x00byte",
        "a" * 500,
    ],
)
async def test_hostile_queries_never_raise(store: Store, query: str) -> None:
    ada, _, shared, _ = await setup(store)
    await say(store, shared, ada, "apple red café 日本語 🍎", "c1")
    hits = await store.search(ada.id, query, limit=10)
    assert all(hit.message.body == "apple red café 日本語 🍎" for hit in hits)


async def test_search_refuses_empty_queries_and_bad_limits(store: Store) -> None:
    ada, _, _, _ = await setup(store)
    for query in ("", "   ", "\n\t"):
        with pytest.raises(ValueError, match="empty"):
            await store.search(ada.id, query, limit=10)
    with pytest.raises(ValueError, match="limit"):
        await store.search(ada.id, "x", limit=-1)
    with pytest.raises(ValueError, match="offset"):
        await store.search(ada.id, "x", limit=1, offset=-1)


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(query=st.text(min_size=1, max_size=40).filter(lambda q: q.strip() != ""))
async def test_any_text_is_a_valid_query(open_store: OpenStore, query: str) -> None:
    async with open_store() as store:
        ada = await make_user(store, "ada")
        room = await make_room(store, ada)
        await say(store, room, ada, "some text to find", "c1")
        await store.search(ada.id, query, limit=5)
