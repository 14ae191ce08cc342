"""Store contract: edits, deletes and reactions as room events sharing the room's seq."""

from __future__ import annotations

import attrs
import pytest
import trio

from chorus.persistence import (
    Appended,
    Edit,
    EventKind,
    Forbidden,
    Gone,
    Message,
    NotFound,
    Role,
    Room,
    Store,
    User,
)
from tests.persistence.helpers import T0, current, join, make_room, make_user, say, texts


async def log(store: Store, room: Room) -> list[Message]:
    return await store.messages(room.id, after=0, limit=1_000_000)


async def setup(store: Store) -> tuple[User, User, Room, Message]:
    """ada owns a room where bob is a member; ada said "hello"."""
    ada, bob = await make_user(store, "ada"), await make_user(store, "bob")
    room = await make_room(store, ada)
    await join(store, room, bob)
    hello = (await say(store, room, ada, "hello", "c-hello")).message
    return ada, bob, room, hello


# -- one log, one seq -----------------------------------------------------------------


async def test_every_kind_of_event_takes_the_next_seq_of_the_room(store: Store) -> None:
    ada, bob, room, hello = await setup(store)
    edit = await store.edit_message(hello.id, ada.id, "hello!", "e1", T0 + 1)
    react = await store.set_reaction(hello.id, bob.id, "👍", True, "r1", T0 + 2)
    unreact = await store.set_reaction(hello.id, bob.id, "👍", False, "r2", T0 + 3)
    [plain] = await store.append_messages(room.id, texts(bob, "b1"))
    delete = await store.delete_message(hello.id, ada.id, "d1", T0 + 4)
    assert react is not None
    assert unreact is not None

    events = [edit, react, unreact, plain, delete]
    assert [e.message.seq for e in events] == [2, 3, 4, 5, 6]
    assert await store.last_seq(room.id) == 6
    stored = await log(store, room)
    assert [m.seq for m in stored] == [1, 2, 3, 4, 5, 6]
    assert [(m.kind, m.target_id) for m in stored] == [
        (EventKind.MESSAGE, None),
        (EventKind.EDIT, hello.id),
        (EventKind.REACTION_ADD, hello.id),
        (EventKind.REACTION_REMOVE, hello.id),
        (EventKind.MESSAGE, None),
        (EventKind.DELETE, hello.id),
    ]
    # The delete emptied the body of the edit event before it.
    assert stored[1] == attrs.evolve(edit.message, body="")
    assert stored[2:] == [e.message for e in events[1:]]


async def test_concurrent_messages_and_events_keep_seqs_contiguous(store: Store) -> None:
    ada, bob, room, hello = await setup(store)

    async def chat(user: User) -> None:
        for i in range(10):
            await store.append_messages(room.id, texts(user, f"{user.username}-{i}"))

    async def edit() -> None:
        for i in range(10):
            await store.edit_message(hello.id, ada.id, f"v{i}", f"e{i}", T0 + i)

    async def react() -> None:
        for i in range(10):
            await store.set_reaction(hello.id, bob.id, "👍", i % 2 == 0, f"r{i}", T0 + i)

    async with trio.open_nursery() as nursery:
        for task in (lambda: chat(ada), lambda: chat(bob), edit, react):
            nursery.start_soon(task)

    stored = await log(store, room)
    assert [m.seq for m in stored] == list(range(1, 42))
    assert await store.last_seq(room.id) == 41
    assert (await current(store, hello)).body == "v9"


# -- edits ----------------------------------------------------------------------------


async def test_an_edit_updates_the_message_and_keeps_the_previous_bodies(store: Store) -> None:
    ada, _, _, hello = await setup(store)
    first = await store.edit_message(hello.id, ada.id, "hello, world", "e1", T0 + 10)
    second = await store.edit_message(hello.id, ada.id, "hi", "e2", T0 + 20)

    assert first.message.kind is EventKind.EDIT
    assert first.message.body == "hello, world"
    assert first.message.sender_id == ada.id
    assert first.message.created_at == T0 + 10
    assert not first.duplicate
    edited = await current(store, hello)
    assert (edited.body, edited.edited_at, edited.seq) == ("hi", T0 + 20, 1)
    assert await store.edit_history(hello.id) == [
        Edit(body="hello", written_at=T0, replaced_at=T0 + 10, seq=first.message.seq),
        Edit(body="hello, world", written_at=T0 + 10, replaced_at=T0 + 20, seq=second.message.seq),
    ]


async def test_only_the_sender_may_edit(store: Store) -> None:
    ada, bob, room, hello = await setup(store)
    await store.add_member(room.id, (await make_user(store, "mo")).id, Role.MODERATOR, T0)
    for editor in (bob.id, ada.id.replace("u_", "u_x")):
        with pytest.raises(Forbidden):
            await store.edit_message(hello.id, editor, "hacked", "e1", T0)
    assert (await current(store, hello)).body == "hello"
    assert await store.last_seq(room.id) == 1


async def test_editing_an_unknown_or_deleted_message_fails(store: Store) -> None:
    ada, _, room, hello = await setup(store)
    with pytest.raises(NotFound):
        await store.edit_message("m_doesnotexist0000", ada.id, "x", "e1", T0)
    edit = await store.edit_message(hello.id, ada.id, "x", "e1", T0)
    with pytest.raises(NotFound, match="no message"):
        # Events other than messages cannot be edited.
        await store.edit_message(edit.message.id, ada.id, "y", "e2", T0)
    await store.delete_message(hello.id, ada.id, "d1", T0)
    with pytest.raises(Gone):
        await store.edit_message(hello.id, ada.id, "back", "e3", T0)
    assert await store.last_seq(room.id) == 3


async def test_a_retried_edit_returns_the_original_event(store: Store) -> None:
    ada, _, room, hello = await setup(store)
    first = await store.edit_message(hello.id, ada.id, "v1", "e1", T0 + 1)
    again = await store.edit_message(hello.id, ada.id, "v2", "e1", T0 + 2)
    assert again == Appended(message=first.message, duplicate=True)
    assert (await current(store, hello)).body == "v1"
    assert await store.last_seq(room.id) == 2
    # Even after the message is gone, the retry answers as the first call did.
    await store.delete_message(hello.id, ada.id, "d1", T0 + 3)
    assert (await store.edit_message(hello.id, ada.id, "v2", "e1", T0 + 4)).duplicate


# -- deletes --------------------------------------------------------------------------


async def test_a_delete_leaves_a_tombstone_and_erases_every_earlier_text(store: Store) -> None:
    ada, bob, room, hello = await setup(store)
    await store.edit_message(hello.id, ada.id, "secret v2", "e1", T0 + 1)
    await store.edit_message(hello.id, ada.id, "secret v3", "e2", T0 + 2)
    await store.set_reaction(hello.id, bob.id, "👍", True, "r1", T0 + 3)

    deleted = await store.delete_message(hello.id, ada.id, "d1", T0 + 4)

    assert deleted.message.kind is EventKind.DELETE
    assert (deleted.message.body, deleted.message.target_id) == ("", hello.id)
    tombstone = await current(store, hello)
    assert (tombstone.body, tombstone.deleted_at, tombstone.deleted_by) == ("", T0 + 4, ada.id)
    assert (tombstone.seq, tombstone.sender_id) == (hello.seq, ada.id)
    assert await store.edit_history(hello.id) == []
    assert await store.reactions([hello.id]) == {}
    replay = await log(store, room)
    assert not any("secret" in m.body or m.body == "hello" for m in replay)
    assert [m.body for m in replay if m.kind is EventKind.EDIT] == ["", ""]


@pytest.mark.parametrize("role", [Role.OWNER, Role.MODERATOR])
async def test_owners_and_moderators_may_delete_others_messages(store: Store, role: Role) -> None:
    _ada, bob, room, _ = await setup(store)
    mod = await make_user(store, "mod")
    await store.add_member(room.id, mod.id, role, T0)
    bobs = (await say(store, room, bob, "spam", "b1")).message
    deleted = await store.delete_message(bobs.id, mod.id, "d1", T0 + 5)
    assert deleted.message.sender_id == mod.id
    assert (await current(store, bobs)).deleted_by == mod.id


async def test_members_and_strangers_may_not_delete_others_messages(store: Store) -> None:
    _ada, bob, room, hello = await setup(store)
    eve = await make_user(store, "eve")
    for actor in (bob, eve):
        with pytest.raises(Forbidden):
            await store.delete_message(hello.id, actor.id, "d1", T0)
    # A moderator of another room is nobody here.
    other = await make_room(store, eve, "other")
    await store.add_member(other.id, bob.id, Role.MODERATOR, T0)
    with pytest.raises(Forbidden):
        await store.delete_message(hello.id, bob.id, "d2", T0)
    assert (await current(store, hello)).deleted_at is None
    assert await store.last_seq(room.id) == 1


async def test_the_sender_may_delete_their_message_once(store: Store) -> None:
    ada, bob, room, _ = await setup(store)
    bobs = (await say(store, room, bob, "oops", "b1")).message
    first = await store.delete_message(bobs.id, bob.id, "d1", T0)
    assert await store.delete_message(bobs.id, bob.id, "d1", T0) == Appended(
        message=first.message, duplicate=True
    )
    with pytest.raises(Gone):
        await store.delete_message(bobs.id, bob.id, "d2", T0)
    with pytest.raises(Gone):
        await store.delete_message(bobs.id, ada.id, "d3", T0)
    with pytest.raises(NotFound):
        await store.delete_message("m_doesnotexist0000", ada.id, "d4", T0)
    assert await store.last_seq(room.id) == 3


# -- reactions ------------------------------------------------------------------------


async def test_reactions_count_one_per_user_per_emoji(store: Store) -> None:
    ada, bob, room, hello = await setup(store)
    other = (await say(store, room, bob, "other", "b1")).message
    await store.set_reaction(hello.id, bob.id, "👍", True, "r1", T0 + 1)
    await store.set_reaction(hello.id, ada.id, "🎉", True, "r2", T0 + 2)
    await store.set_reaction(hello.id, ada.id, "👍", True, "r3", T0 + 3)
    await store.set_reaction(other.id, ada.id, "❤️", True, "r4", T0 + 4)

    assert await store.reactions([hello.id, other.id, "m_doesnotexist0000"]) == {
        hello.id: {"👍": 2, "🎉": 1},
        other.id: {"❤️": 1},
    }
    assert list((await store.reactions([hello.id]))[hello.id]) == ["👍", "🎉"]
    assert await store.reactors(hello.id, "👍", 10) == [bob.id, ada.id]
    assert await store.reactors(hello.id, "👍", 1) == [bob.id]
    assert await store.reactors(hello.id, "🙈", 10) == []
    assert await store.reactions([]) == {}


async def test_a_reaction_that_changes_nothing_stores_nothing(store: Store) -> None:
    _, bob, room, hello = await setup(store)
    assert await store.set_reaction(hello.id, bob.id, "👍", False, "r1", T0) is None
    added = await store.set_reaction(hello.id, bob.id, "👍", True, "r2", T0)
    assert added is not None
    assert (added.message.kind, added.message.body) == (EventKind.REACTION_ADD, "👍")
    assert await store.set_reaction(hello.id, bob.id, "👍", True, "r3", T0) is None
    removed = await store.set_reaction(hello.id, bob.id, "👍", False, "r4", T0)
    assert removed is not None
    assert removed.message.kind is EventKind.REACTION_REMOVE
    assert await store.last_seq(room.id) == 3
    assert await store.reactions([hello.id]) == {}


async def test_a_retried_reaction_returns_the_original_event(store: Store) -> None:
    _, bob, room, hello = await setup(store)
    first = await store.set_reaction(hello.id, bob.id, "👍", True, "r1", T0)
    assert first is not None
    # Even a retry of the opposite change answers as the first call did.
    again = await store.set_reaction(hello.id, bob.id, "👍", False, "r1", T0)
    assert again == Appended(message=first.message, duplicate=True)
    assert await store.last_seq(room.id) == 2


async def test_reacting_needs_membership_and_a_live_message(store: Store) -> None:
    ada, bob, room, hello = await setup(store)
    eve = await make_user(store, "eve")
    with pytest.raises(Forbidden):
        await store.set_reaction(hello.id, eve.id, "👍", True, "r1", T0)
    with pytest.raises(NotFound):
        await store.set_reaction("m_doesnotexist0000", bob.id, "👍", True, "r2", T0)
    with pytest.raises(ValueError, match="emoji"):
        await store.set_reaction(hello.id, bob.id, "", True, "r3", T0)
    await store.delete_message(hello.id, ada.id, "d1", T0)
    with pytest.raises(Gone):
        await store.set_reaction(hello.id, bob.id, "👍", True, "r4", T0)
    assert await store.last_seq(room.id) == 2


# -- idempotency across kinds ---------------------------------------------------------


async def test_a_client_id_is_used_once_across_every_event_kind(store: Store) -> None:
    ada, _, room, hello = await setup(store)
    # "c-hello" is the message's own client id: an edit reusing it is that message.
    again = await store.edit_message(hello.id, ada.id, "changed", "c-hello", T0)
    assert again == Appended(message=hello, duplicate=True)
    edit = await store.edit_message(hello.id, ada.id, "changed", "e1", T0)
    [as_message] = await store.append_messages(room.id, texts(ada, "e1"))
    assert as_message == Appended(message=edit.message, duplicate=True)
    assert await store.last_seq(room.id) == 2


async def test_get_message_finds_events_of_every_kind(store: Store) -> None:
    ada, _, _, hello = await setup(store)
    edit = await store.edit_message(hello.id, ada.id, "v2", "e1", T0 + 1)
    assert await store.get_message(edit.message.id) == edit.message
    assert (await current(store, hello)).body == "v2"
    assert await store.get_message("m_doesnotexist0000") is None


async def test_a_client_id_is_checked_before_the_target_of_a_change(store: Store) -> None:
    # A retry answers with the original event, even naming a target that is unknown.
    ada, _, _, hello = await setup(store)
    edited = await store.edit_message(hello.id, ada.id, "v1", "e1", T0 + 1)
    reacted = await store.set_reaction(hello.id, ada.id, "👍", True, "r1", T0 + 2)
    deleted = await store.delete_message(hello.id, ada.id, "d1", T0 + 3)
    assert reacted is not None
    retries = [
        await store.edit_message("m_unknown", ada.id, "v", "e1", T0 + 4),
        await store.set_reaction("m_unknown", ada.id, "👍", True, "r1", T0 + 4),
        await store.delete_message("m_unknown", ada.id, "d1", T0 + 4),
    ]
    assert [(r.message.id, r.duplicate) for r in retries if r is not None] == [
        (edited.message.id, True),
        (reacted.message.id, True),
        (deleted.message.id, True),
    ]
