"""Store contract: thread replies, reply counts and followed threads."""

from __future__ import annotations

import pytest

from chorus.persistence import NewMessage, Room, Store, User
from tests.persistence.helpers import T0, current, join, make_room, make_user, say


async def setup(store: Store) -> tuple[User, User, User, Room]:
    ada, bob, cy = [await make_user(store, name) for name in ("ada", "bob", "cy")]
    room = await make_room(store, ada)
    await join(store, room, bob, cy)
    return ada, bob, cy, room


async def test_replies_count_on_their_root_and_page_by_seq(store: Store) -> None:
    ada, bob, cy, room = await setup(store)
    root = (await say(store, room, ada, "topic", "r")).message
    replies = [
        (await say(store, room, (bob, cy)[i % 2], f"reply {i}", f"t{i}", at=T0 + i, thread=root))
        for i in range(1, 6)
    ]
    await say(store, room, ada, "unrelated", "u")

    assert all(r.message.thread_id == root.id for r in replies)
    updated = await current(store, root)
    assert (updated.reply_count, updated.last_reply_at) == (5, T0 + 5)
    assert updated.thread_id is None
    page = await store.thread_messages(root.id, limit=3)
    assert [m.body for m in page] == ["reply 3", "reply 4", "reply 5"]
    older = await store.thread_messages(root.id, before=page[0].seq, limit=10)
    assert [m.body for m in older] == ["reply 1", "reply 2"]
    newer = await store.thread_messages(root.id, after=older[0].seq, limit=2)
    assert [m.body for m in newer] == ["reply 2", "reply 3"]
    assert await store.thread_messages("m_doesnotexist0000", limit=5) == []
    # Replies are messages of the room's log as well.
    assert len(await store.messages(room.id, limit=100)) == 7


async def test_a_deleted_reply_stops_counting_but_stays_as_a_tombstone(store: Store) -> None:
    ada, bob, _, room = await setup(store)
    root = (await say(store, room, ada, "topic", "r")).message
    reply = (await say(store, room, bob, "hm", "t1", thread=root)).message
    await say(store, room, bob, "ok", "t2", thread=root)
    await store.delete_message(reply.id, bob.id, "d1", T0)
    assert (await current(store, root)).reply_count == 1
    thread = await store.thread_messages(root.id, limit=10)
    assert [(m.body, m.deleted_at) for m in thread] == [("", T0), ("ok", None)]


@pytest.mark.parametrize("kind", ["unknown", "reply", "other room", "deleted", "event"])
async def test_a_reply_to_an_invalid_root_stores_nothing_of_the_batch(
    store: Store, kind: str
) -> None:
    ada, bob, _, room = await setup(store)
    root = (await say(store, room, ada, "topic", "r")).message
    reply = (await say(store, room, bob, "re", "t1", thread=root)).message
    other = await make_room(store, ada, "other")
    elsewhere = (await say(store, other, ada, "there", "o1")).message
    gone = (await say(store, room, ada, "gone", "g1")).message
    await store.delete_message(gone.id, ada.id, "d1", T0)
    edit = await store.edit_message(root.id, ada.id, "topic!", "e1", T0)
    bad_root = {
        "unknown": "m_doesnotexist0000",
        "reply": reply.id,
        "other room": elsewhere.id,
        "deleted": gone.id,
        "event": edit.message.id,
    }[kind]
    before = await store.last_seq(room.id)
    batch = [
        NewMessage(sender_id=bob.id, body="fine", client_id="ok", created_at=T0),
        NewMessage(
            sender_id=bob.id, body="bad", client_id="bad", created_at=T0, thread_id=bad_root
        ),
    ]
    with pytest.raises(ValueError, match="cannot have replies"):
        await store.append_messages(room.id, batch)
    assert await store.last_seq(room.id) == before
    assert (await current(store, root)).reply_count == 1


async def test_repliers_and_the_root_sender_follow_the_thread(store: Store) -> None:
    ada, bob, cy, room = await setup(store)
    first = (await say(store, room, ada, "first", "r1")).message
    second = (await say(store, room, cy, "second", "r2")).message
    assert await store.followed_threads(ada.id, 10) == []

    await say(store, room, bob, "re first", "t1", at=T0 + 1, thread=first)
    await say(store, room, bob, "re second", "t2", at=T0 + 2, thread=second)

    assert [m.id for m in await store.followed_threads(bob.id, 10)] == [second.id, first.id]
    assert [m.id for m in await store.followed_threads(bob.id, 1)] == [second.id]
    assert [m.id for m in await store.followed_threads(ada.id, 10)] == [first.id]
    assert [m.id for m in await store.followed_threads(cy.id, 10)] == [second.id]
    # New activity moves a thread to the front; the roots show their counts.
    await say(store, room, ada, "again", "t3", at=T0 + 3, thread=first)
    followed = await store.followed_threads(bob.id, 10)
    assert [(m.id, m.reply_count) for m in followed] == [(first.id, 2), (second.id, 1)]
    # Threads of rooms the user left are not listed.
    await store.remove_member(room.id, bob.id)
    assert await store.followed_threads(bob.id, 10) == []
