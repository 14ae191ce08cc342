"""Store contract: appending messages (seqs, atomicity, idempotency) and reading history."""

from __future__ import annotations

from typing import Any

import pytest
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chorus.persistence import Appended, Message, NewMessage, NotFound, Room, Store, User
from tests.persistence.helpers import T0, OpenStore, make_room, make_user, texts


def seqs(results: list[Appended] | list[Message]) -> list[int]:
    return [r.message.seq if isinstance(r, Appended) else r.seq for r in results]


async def all_messages(store: Store, room: Room) -> list[Message]:
    return await store.messages(room.id, after=0, limit=1_000_000)


# -- sequence numbers -----------------------------------------------------------------


async def test_appended_messages_get_contiguous_seqs_across_batches(store: Store) -> None:
    ada = await make_user(store, "ada")
    room = await make_room(store, ada)
    first = await store.append_messages(room.id, texts(ada, "c1", "c2", "c3"))
    second = await store.append_messages(room.id, texts(ada, "c4"))
    third = await store.append_messages(room.id, texts(ada, "c5", "c6"))
    assert seqs(first + second + third) == [1, 2, 3, 4, 5, 6]
    assert not any(a.duplicate for a in first + second + third)
    assert await store.last_seq(room.id) == 6
    stored_room = await store.get_room(room.id)
    assert stored_room is not None
    assert stored_room.last_seq == 6


async def test_each_room_counts_its_own_seqs(store: Store) -> None:
    ada = await make_user(store, "ada")
    one, two = await make_room(store, ada, "one"), await make_room(store, ada, "two")
    await store.append_messages(one.id, texts(ada, "a", "b"))
    assert seqs(await store.append_messages(two.id, texts(ada, "c"))) == [1]
    assert seqs(await store.append_messages(one.id, texts(ada, "d"))) == [3]


async def test_an_appended_message_is_stored_exactly_as_returned(store: Store) -> None:
    ada = await make_user(store, "ada")
    room = await make_room(store, ada)
    new = NewMessage(sender_id=ada.id, body="héllo 👋\nworld", client_id="c1", created_at=T0 + 7)
    [appended] = await store.append_messages(room.id, [new])
    assert appended == Appended(
        message=Message(
            id=appended.message.id,
            room_id=room.id,
            seq=1,
            sender_id=ada.id,
            body="héllo 👋\nworld",
            client_id="c1",
            created_at=T0 + 7,
            edited_at=None,
        ),
        duplicate=False,
    )
    assert appended.message.id.startswith("m_")
    assert await all_messages(store, room) == [appended.message]


async def test_last_seq_is_zero_for_an_empty_room_and_not_found_for_an_unknown_one(
    store: Store,
) -> None:
    ada = await make_user(store, "ada")
    room = await make_room(store, ada)
    assert await store.last_seq(room.id) == 0
    with pytest.raises(NotFound):
        await store.last_seq("r_doesnotexist0000")


async def test_an_empty_batch_stores_nothing(store: Store) -> None:
    ada = await make_user(store, "ada")
    room = await make_room(store, ada)
    assert await store.append_messages(room.id, []) == []
    assert await store.last_seq(room.id) == 0


# -- one batch, one transaction -------------------------------------------------------


async def test_a_batch_for_an_unknown_room_stores_nothing(store: Store) -> None:
    ada = await make_user(store, "ada")
    room = await make_room(store, ada)
    with pytest.raises(NotFound):
        await store.append_messages("r_doesnotexist0000", texts(ada, "c1"))
    # "c1" was not stored anywhere: it is still new.
    [appended] = await store.append_messages(room.id, texts(ada, "c1"))
    assert not appended.duplicate


async def test_a_batch_with_an_unknown_sender_stores_none_of_its_messages(store: Store) -> None:
    ada = await make_user(store, "ada")
    room = await make_room(store, ada)
    await store.append_messages(room.id, texts(ada, "before"))
    ghost = User(id="u_doesnotexist0000", username="ghost", display_name="Ghost", created_at=T0)
    batch = [*texts(ada, "c1"), *texts(ghost, "g1"), *texts(ada, "c2")]

    with pytest.raises(NotFound):
        await store.append_messages(room.id, batch)

    assert await store.last_seq(room.id) == 1
    assert [m.client_id for m in await all_messages(store, room)] == ["before"]
    assert seqs(await store.append_messages(room.id, texts(ada, "c1", "c2"))) == [2, 3]


# -- idempotent client ids ------------------------------------------------------------


async def test_a_retried_client_id_returns_the_original_and_consumes_no_seq(
    store: Store,
) -> None:
    ada = await make_user(store, "ada")
    room = await make_room(store, ada)
    [original] = await store.append_messages(room.id, texts(ada, "c1"))
    retry = NewMessage(sender_id=ada.id, body="edited retry", client_id="c1", created_at=T0 + 9)

    results = await store.append_messages(room.id, [retry, *texts(ada, "c2")])

    assert results[0] == Appended(message=original.message, duplicate=True)
    assert results[1].message.seq == 2
    assert not results[1].duplicate
    assert [m.body for m in await all_messages(store, room)] == ["body of c1", "body of c2"]


async def test_a_client_id_repeated_within_a_batch_resolves_to_its_first_use(
    store: Store,
) -> None:
    ada = await make_user(store, "ada")
    room = await make_room(store, ada)
    results = await store.append_messages(room.id, texts(ada, "c1", "c2", "c1", "c3", "c2"))
    assert [(r.message.client_id, r.message.seq, r.duplicate) for r in results] == [
        ("c1", 1, False),
        ("c2", 2, False),
        ("c1", 1, True),
        ("c3", 3, False),
        ("c2", 2, True),
    ]
    assert results[2].message == results[0].message
    assert seqs(await all_messages(store, room)) == [1, 2, 3]


async def test_retries_mixed_into_a_long_batch_take_no_seqs(store: Store) -> None:
    # Long enough to take several INSERTs on SQLite, with retries in each of them.
    ada = await make_user(store, "ada")
    room = await make_room(store, ada)
    originals = await store.append_messages(room.id, texts(ada, *(f"old{n}" for n in range(150))))
    batch = texts(ada, *(cid for n in range(150) for cid in (f"old{n}", f"new{n}", f"new{n}")))

    results = await store.append_messages(room.id, batch)

    assert [r.message for r in results[0::3]] == [a.message for a in originals]
    assert all(r.duplicate for r in results[0::3] + results[2::3])
    assert not any(r.duplicate for r in results[1::3])
    assert seqs(results[1::3]) == list(range(151, 301))
    assert [r.message for r in results[2::3]] == [r.message for r in results[1::3]]
    stored = await all_messages(store, room)
    assert seqs(stored) == list(range(1, 301))
    assert stored[150:] == [r.message for r in results[1::3]]
    assert await store.last_seq(room.id) == 300


async def test_retries_alone_for_an_unknown_room_raise_not_found(store: Store) -> None:
    ada = await make_user(store, "ada")
    room = await make_room(store, ada)
    await store.append_messages(room.id, texts(ada, "c1"))
    with pytest.raises(NotFound):
        await store.append_messages("r_doesnotexist0000", texts(ada, "c1", "c1"))
    with pytest.raises(NotFound):
        await store.append_messages("r_doesnotexist0000", [])


async def test_client_ids_are_per_sender(store: Store) -> None:
    ada, bob = await make_user(store, "ada"), await make_user(store, "bob")
    room = await make_room(store, ada)
    results = await store.append_messages(room.id, [*texts(ada, "c1"), *texts(bob, "c1")])
    assert [(r.message.sender_id, r.message.seq, r.duplicate) for r in results] == [
        (ada.id, 1, False),
        (bob.id, 2, False),
    ]


async def test_a_client_id_reused_in_another_room_returns_the_original_message(
    store: Store,
) -> None:
    ada = await make_user(store, "ada")
    one, two = await make_room(store, ada, "one"), await make_room(store, ada, "two")
    [original] = await store.append_messages(one.id, texts(ada, "c1"))
    [again] = await store.append_messages(two.id, texts(ada, "c1"))
    assert again == Appended(message=original.message, duplicate=True)
    assert again.message.room_id == one.id
    assert await store.last_seq(two.id) == 0


async def test_concurrent_appends_keep_seqs_contiguous_without_gaps_or_duplicates(
    store: Store,
) -> None:
    users = [await make_user(store, f"user{i}") for i in range(4)]
    room = await make_room(store, users[0])
    tasks, batches, size = 8, 10, 5

    async def sender(task: int) -> None:
        user = users[task % len(users)]
        for batch in range(batches):
            ids = [f"t{task}-b{batch}-{i}" for i in range(size)]
            await store.append_messages(room.id, texts(user, *ids))
            # Every other batch is retried, as after a lost acknowledgement.
            if batch % 2:
                retried = await store.append_messages(room.id, texts(user, *ids))
                assert all(r.duplicate for r in retried)

    async with trio.open_nursery() as nursery:
        for task in range(tasks):
            nursery.start_soon(sender, task)

    stored = await all_messages(store, room)
    total = tasks * batches * size
    assert seqs(stored) == list(range(1, total + 1))
    assert len({(m.sender_id, m.client_id) for m in stored}) == total
    assert await store.last_seq(room.id) == total


# -- reading history ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bounds", "limit", "expected"),
    [
        pytest.param({}, 3, [8, 9, 10], id="latest"),
        pytest.param({}, 50, list(range(1, 11)), id="latest-all"),
        pytest.param({"after": 2}, 3, [3, 4, 5], id="after"),
        pytest.param({"after": 8}, 5, [9, 10], id="after-near-the-end"),
        pytest.param({"after": 10}, 5, [], id="after-the-last"),
        pytest.param({"before": 6}, 3, [3, 4, 5], id="before"),
        pytest.param({"before": 3}, 5, [1, 2], id="before-near-the-start"),
        pytest.param({"before": 1}, 5, [], id="before-the-first"),
        pytest.param({"after": 2, "before": 9}, 3, [3, 4, 5], id="between-first-page"),
        pytest.param({"after": 2, "before": 9}, 50, [3, 4, 5, 6, 7, 8], id="between-all"),
        pytest.param({"after": 4, "before": 5}, 5, [], id="between-nothing"),
        pytest.param({}, 0, [], id="limit-zero"),
    ],
)
async def test_messages_pages_in_ascending_seq_order(
    store: Store, bounds: dict[str, Any], limit: int, expected: list[int]
) -> None:
    ada = await make_user(store, "ada")
    room = await make_room(store, ada)
    await store.append_messages(room.id, texts(ada, *(f"c{i}" for i in range(1, 11))))
    found = await store.messages(room.id, limit=limit, **bounds)
    assert seqs(found) == expected
    assert [m.client_id for m in found] == [f"c{seq}" for seq in expected]


async def test_messages_of_an_unknown_room_is_empty(store: Store) -> None:
    assert await store.messages("r_doesnotexist0000", limit=10) == []


async def test_messages_refuses_a_negative_limit(store: Store) -> None:
    with pytest.raises(ValueError, match="limit"):
        await store.messages("r_doesnotexist0000", limit=-1)


# -- properties -----------------------------------------------------------------------

_SETTINGS = settings(
    max_examples=40,
    deadline=None,
    # `open_store` is function-scoped but gives each example its own database.
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


@_SETTINGS
@given(
    batches=st.lists(
        st.lists(st.tuples(st.integers(0, 1), st.sampled_from("abcdefgh")), max_size=6),
        max_size=5,
    )
)
async def test_appends_agree_with_a_model_of_seqs_and_client_ids(
    open_store: OpenStore, batches: list[list[tuple[int, str]]]
) -> None:
    async with open_store() as store:
        users = [await make_user(store, "ada"), await make_user(store, "bob")]
        room = await make_room(store, users[0])
        model: dict[tuple[int, str], int] = {}
        for batch in batches:
            results = await store.append_messages(
                room.id, [m for sender, cid in batch for m in texts(users[sender], cid)]
            )
            expected = []
            for key in batch:
                duplicate = key in model
                model.setdefault(key, len(model) + 1)
                expected.append((model[key], duplicate))
            assert [(r.message.seq, r.duplicate) for r in results] == expected
        assert seqs(await all_messages(store, room)) == list(range(1, len(model) + 1))


@_SETTINGS
@given(
    count=st.integers(0, 12),
    after=st.none() | st.integers(-1, 14),
    before=st.none() | st.integers(-1, 14),
    limit=st.integers(0, 14),
)
async def test_messages_agrees_with_a_model_of_pagination(
    open_store: OpenStore, count: int, after: int | None, before: int | None, limit: int
) -> None:
    async with open_store() as store:
        ada = await make_user(store, "ada")
        room = await make_room(store, ada)
        await store.append_messages(room.id, texts(ada, *(f"c{i}" for i in range(count))))
        found = await store.messages(room.id, before=before, after=after, limit=limit)
    matching = [
        seq
        for seq in range(1, count + 1)
        if (after is None or seq > after) and (before is None or seq < before)
    ]
    # With `after` the oldest matching come first; otherwise the newest end is wanted.
    expected = matching[:limit] if after is not None else matching[max(0, len(matching) - limit) :]
    assert seqs(found) == (expected if limit else [])
