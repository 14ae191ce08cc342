"""Store contract: mentions, notification levels, the notification inbox and unread counts."""

from __future__ import annotations

import pytest
import trio
import trio.lowlevel

from chorus.persistence import (
    NewMessage,
    NotFound,
    Notification,
    NotificationKind,
    NotifyLevel,
    Room,
    Store,
    Unread,
    User,
)
from tests.persistence.helpers import T0, join, make_room, make_user, say, texts


async def setup(store: Store) -> tuple[User, User, User, Room]:
    """ada owns a room with members bob and cy."""
    ada, bob, cy = [await make_user(store, name) for name in ("ada", "bob", "cy")]
    room = await make_room(store, ada)
    await join(store, room, bob, cy)
    return ada, bob, cy, room


def kinds(notified: tuple[Notification, ...] | list[Notification]) -> dict[str, NotificationKind]:
    return {n.user_id: n.kind for n in notified}


# -- mentions and notifications -------------------------------------------------------


async def test_a_mention_notifies_members_only_and_never_the_sender(store: Store) -> None:
    ada, bob, cy, room = await setup(store)
    await make_user(store, "eve")  # exists, but not a member
    appended = await say(
        store, room, ada, "@bob @eve @ada @nobody", "c1", mentions={"bob", "eve", "ada", "nobody"}
    )
    [notification] = appended.notified
    assert notification == Notification(
        id=notification.id,
        user_id=bob.id,
        room_id=room.id,
        message_id=appended.message.id,
        seq=appended.message.seq,
        kind=NotificationKind.MENTION,
        created_at=T0,
        read_at=None,
    )
    assert notification.id.startswith("n_")
    assert await store.notifications(bob.id, limit=10) == [notification]
    assert await store.notifications(cy.id, limit=10) == []
    assert await store.notifications(ada.id, limit=10) == []
    counts = await store.unread_counts(bob.id)
    assert counts == {room.id: Unread(unread=1, mentions=1)}


async def test_room_mentions_notify_every_member_but_the_sender(store: Store) -> None:
    ada, bob, cy, room = await setup(store)
    appended = await say(store, room, bob, "@room hi", "c1", mentions={"cy"}, mentions_room=True)
    assert kinds(appended.notified) == {
        ada.id: NotificationKind.ROOM_MENTION,
        cy.id: NotificationKind.MENTION,
    }
    assert (await store.unread_counts(ada.id))[room.id] == Unread(unread=1, mentions=1)
    assert (await store.unread_counts(bob.id))[room.id] == Unread(unread=0, mentions=0)


async def test_notification_levels_filter_notifications_not_mention_counts(store: Store) -> None:
    ada, bob, cy, room = await setup(store)
    updated = await store.set_notify_level(room.id, bob.id, NotifyLevel.NONE)
    assert updated.notify is NotifyLevel.NONE
    assert (await store.get_membership(room.id, bob.id)) == updated
    await store.set_notify_level(room.id, cy.id, NotifyLevel.MENTIONS)

    appended = await say(store, room, ada, "@room @bob", "c1", mentions={"bob"}, mentions_room=True)

    assert kinds(appended.notified) == {cy.id: NotificationKind.ROOM_MENTION}
    assert (await store.unread_counts(bob.id))[room.id] == Unread(unread=1, mentions=1)
    with pytest.raises(NotFound, match="not a member"):
        await store.set_notify_level(room.id, "u_doesnotexist0000", NotifyLevel.ALL)


async def test_thread_followers_get_reply_notifications(store: Store) -> None:
    ada, bob, cy, room = await setup(store)
    root = (await say(store, room, ada, "topic", "r")).message
    first = await say(store, room, bob, "re", "t1", thread=root)
    # The root's sender follows from the first reply on.
    assert kinds(first.notified) == {ada.id: NotificationKind.REPLY}
    second = await say(store, room, cy, "@bob re", "t2", thread=root, mentions={"bob"})
    assert kinds(second.notified) == {
        ada.id: NotificationKind.REPLY,
        bob.id: NotificationKind.MENTION,
    }
    await store.set_notify_level(room.id, ada.id, NotifyLevel.NONE)
    third = await say(store, room, bob, "more", "t3", thread=root)
    assert kinds(third.notified) == {cy.id: NotificationKind.REPLY}
    # A follower who left the room is not notified.
    await store.remove_member(room.id, cy.id)
    assert (await say(store, room, bob, "more", "t4", thread=root)).notified == ()


async def test_plain_messages_and_duplicates_notify_nobody(store: Store) -> None:
    ada, bob, _, room = await setup(store)
    assert (await say(store, room, ada, "hi", "c1")).notified == ()
    first = await say(store, room, ada, "@bob", "c2", mentions={"bob"})
    again = await say(store, room, ada, "@bob", "c2", mentions={"bob"})
    assert len(first.notified) == 1
    assert again.duplicate
    assert again.notified == ()
    assert len(await store.notifications(bob.id, limit=10)) == 1
    assert (await store.unread_counts(bob.id))[room.id] == Unread(unread=2, mentions=1)


async def test_a_batch_fans_out_each_message(store: Store) -> None:
    ada, bob, cy, room = await setup(store)
    batch = [
        NewMessage(
            sender_id=ada.id, body="a", client_id="a", created_at=T0, mentions=frozenset({"bob"})
        ),
        *texts(ada, "plain"),
        NewMessage(
            sender_id=ada.id, body="c", client_id="c", created_at=T0, mentions=frozenset({"cy"})
        ),
    ]
    results = await store.append_messages(room.id, batch)
    assert [kinds(r.notified) for r in results] == [
        {bob.id: NotificationKind.MENTION},
        {},
        {cy.id: NotificationKind.MENTION},
    ]


async def test_deleting_a_message_removes_its_mentions_and_notifications(store: Store) -> None:
    ada, bob, _, room = await setup(store)
    mention = (await say(store, room, ada, "@bob", "c1", mentions={"bob"})).message
    await say(store, room, ada, "@bob again", "c2", mentions={"bob"})
    await store.delete_message(mention.id, ada.id, "d1", T0)
    assert [n.message_id for n in await store.notifications(bob.id, limit=10)] != [mention.id]
    assert len(await store.notifications(bob.id, limit=10)) == 1
    assert (await store.unread_counts(bob.id))[room.id] == Unread(unread=1, mentions=1)


# -- the inbox ------------------------------------------------------------------------


async def test_the_inbox_pages_newest_first_and_marks_read(store: Store) -> None:
    ada, bob, _, room = await setup(store)
    for i in range(5):
        await say(store, room, ada, f"@bob {i}", f"c{i}", at=T0 + i, mentions={"bob"})
    inbox = await store.notifications(bob.id, limit=10)
    assert [n.created_at for n in inbox] == [T0 + i for i in reversed(range(5))]
    page = await store.notifications(bob.id, limit=2, before_id=inbox[1].id)
    assert page == inbox[2:4]

    assert await store.mark_notifications_read(bob.id, [inbox[0].id, inbox[1].id], T0 + 9) == 2
    assert await store.mark_notifications_read(bob.id, [inbox[0].id], T0 + 10) == 0
    # Somebody else's notification is not theirs to mark.
    assert await store.mark_notifications_read(ada.id, [inbox[2].id], T0 + 10) == 0
    unread = await store.notifications(bob.id, limit=10, unread_only=True)
    assert unread == inbox[2:]
    read = await store.notifications(bob.id, limit=10)
    assert [n.read_at for n in read[:2]] == [T0 + 9, T0 + 9]
    assert await store.mark_notifications_read(bob.id, None, T0 + 11) == 3
    assert await store.notifications(bob.id, limit=10, unread_only=True) == []
    with pytest.raises(ValueError, match="limit"):
        await store.notifications(bob.id, limit=-1)


# -- unread counts --------------------------------------------------------------------


async def test_unread_counts_follow_reads_edits_and_deletes(store: Store) -> None:
    ada, bob, _, room = await setup(store)
    other = await make_room(store, bob, "other")
    assert await store.unread_counts(bob.id) == {
        room.id: Unread(unread=0, mentions=0),
        other.id: Unread(unread=0, mentions=0),
    }
    first = (await say(store, room, ada, "one", "c1")).message
    await say(store, room, bob, "mine", "b1")  # one's own messages are never unread
    await say(store, room, ada, "@bob two", "c2", mentions={"bob"})
    await store.edit_message(first.id, ada.id, "one!", "e1", T0)  # events are not messages
    await store.set_reaction(first.id, ada.id, "👍", True, "r1", T0)
    assert (await store.unread_counts(bob.id))[room.id] == Unread(unread=2, mentions=1)

    await store.advance_read_seq(room.id, bob.id, first.seq)
    assert (await store.unread_counts(bob.id))[room.id] == Unread(unread=1, mentions=1)
    third = (await say(store, room, ada, "three", "c3")).message
    await store.delete_message(third.id, ada.id, "d1", T0)
    assert (await store.unread_counts(bob.id))[room.id] == Unread(unread=1, mentions=1)
    await store.advance_read_seq(room.id, bob.id, 99)
    assert (await store.unread_counts(bob.id))[room.id] == Unread(unread=0, mentions=0)
    assert await store.unread_counts("u_doesnotexist0000") == {}


async def test_unread_counts_are_exact_under_concurrent_appends(store: Store) -> None:
    ada, bob, cy, room = await setup(store)

    async def send(user: User, mention: bool) -> None:
        for i in range(15):
            await say(
                store,
                room,
                user,
                "x",
                f"{user.username}-{i}",
                mentions={"bob"} if mention and i % 3 == 0 else (),
            )

    async def read() -> None:
        for _ in range(10):
            await store.advance_read_seq(room.id, bob.id, await store.last_seq(room.id))
            await trio.lowlevel.checkpoint()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(send, ada, True)
        nursery.start_soon(send, cy, False)
        nursery.start_soon(send, bob, False)
        nursery.start_soon(read)

    membership = await store.get_membership(room.id, bob.id)
    assert membership is not None
    log = await store.messages(room.id, after=membership.read_seq, limit=1000)
    expected_unread = sum(m.sender_id != bob.id for m in log)
    expected_mentions = sum(m.sender_id == ada.id and int(m.client_id[4:]) % 3 == 0 for m in log)
    assert (await store.unread_counts(bob.id))[room.id] == Unread(
        unread=expected_unread, mentions=expected_mentions
    )
    await store.advance_read_seq(room.id, bob.id, 0)  # never moves back
    total = await store.unread_counts(cy.id)
    assert total[room.id].unread == 30
    assert total[room.id].mentions == 0


async def test_read_receipts_are_a_room_setting(store: Store) -> None:
    _ada, _, _, room = await setup(store)
    assert room.read_receipts
    off = await store.set_read_receipts(room.id, False)
    assert not off.read_receipts
    assert await store.get_room(room.id) == off
    assert (await store.set_read_receipts(room.id, True)).read_receipts
    with pytest.raises(NotFound, match="no room"):
        await store.set_read_receipts("r_doesnotexist0000", False)
