"""Store contract: concurrent calls that race for one row keep every rule of the calls made alone.

On SQLite calls take turns, so these hold by construction; on PostgreSQL
they exercise its row locks, ON CONFLICT and the retry of client-id races.
Either way each is one rule, so it runs against both engines (issue #11).
"""

from __future__ import annotations

import trio

from chorus.persistence import (
    Appended,
    EventKind,
    NewMessage,
    RefreshInvalid,
    RefreshReused,
    RefreshRotated,
    Role,
    Store,
)
from tests.persistence.helpers import T0, join, make_room, make_user, say


async def test_one_client_id_appended_to_two_rooms_at_once_is_stored_once(store: Store) -> None:
    ada = await make_user(store, "ada")
    rooms = [await make_room(store, ada, f"room-{n}") for n in range(2)]
    for attempt in range(5):
        client_id = f"twice-{attempt}"
        results: list[Appended] = []

        async def send(room_id: str, cid: str = client_id, out: list[Appended] = results) -> None:
            new = NewMessage(sender_id=ada.id, body="hi", client_id=cid, created_at=T0)
            out.extend(await store.append_messages(room_id, [new]))

        async with trio.open_nursery() as nursery:
            for room in rooms:
                nursery.start_soon(send, room.id)
        stored = [r for r in results if not r.duplicate]
        assert len(stored) == 1
        assert {r.message for r in results} == {stored[0].message}


async def test_one_client_id_of_edits_in_two_rooms_at_once_is_stored_once(store: Store) -> None:
    ada = await make_user(store, "ada")
    rooms = [await make_room(store, ada, f"room-{n}") for n in range(2)]
    said = [(await say(store, room, ada, "hello", f"c-{room.id}")).message for room in rooms]
    for attempt in range(5):
        results: list[Appended] = []

        async def edit(
            message_id: str, cid: str = f"edit-{attempt}", out: list[Appended] = results
        ) -> None:
            out.append(await store.edit_message(message_id, ada.id, "v", cid, T0 + 1))

        async with trio.open_nursery() as nursery:
            for message in said:
                nursery.start_soon(edit, message.id)
        stored = [r for r in results if not r.duplicate]
        assert len(stored) == 1
        assert stored[0].message.kind is EventKind.EDIT
        assert {r.message for r in results} == {stored[0].message}
    # Each stored edit took the next seq of its own room, with no gaps.
    for room in rooms:
        seqs = [m.seq for m in await store.messages(room.id, after=0, limit=100)]
        assert seqs == list(range(1, len(seqs) + 1))


async def test_concurrent_rotations_of_one_token_rotate_it_once(store: Store) -> None:
    ada = await make_user(store, "ada")
    session = await store.create_session(ada.id, "h0", T0, T0 + 60_000)
    outcomes: list[object] = []

    async def rotate(n: int) -> None:
        outcomes.append(await store.rotate_refresh("h0", f"h1-{n}", T0 + 1))

    async with trio.open_nursery() as nursery:
        for n in range(6):
            nursery.start_soon(rotate, n)
    assert sum(isinstance(o, RefreshRotated) for o in outcomes) == 1
    # The next presented a used token, which revoked the session for the rest.
    assert sum(isinstance(o, RefreshReused) for o in outcomes) == 1
    assert outcomes.count(RefreshInvalid(reason="revoked")) == 4
    revoked = await store.get_session(session.id)
    assert revoked is not None
    assert revoked.revoked_at is not None


async def test_concurrent_add_member_calls_keep_one_membership(store: Store) -> None:
    ada, bob = await make_user(store, "ada"), await make_user(store, "bob")
    room = await make_room(store, ada)
    roles = [Role.MEMBER, Role.MODERATOR] * 4
    memberships = []

    async def add(role: Role) -> None:
        memberships.append(await store.add_member(room.id, bob.id, role, T0))

    async with trio.open_nursery() as nursery:
        for role in roles:
            nursery.start_soon(add, role)
    assert len(set(memberships)) == 1
    assert await store.get_membership(room.id, bob.id) == memberships[0]


async def test_concurrent_read_markers_never_move_backwards(store: Store) -> None:
    ada, bob = await make_user(store, "ada"), await make_user(store, "bob")
    room = await make_room(store, ada)
    await join(store, room, bob)
    for n in range(10):
        await say(store, room, ada, f"m{n}", f"c{n}")

    async with trio.open_nursery() as nursery:
        for seq in (3, 9, 1, 7, 10, 2, 5):
            nursery.start_soon(store.advance_read_seq, room.id, bob.id, seq)
    membership = await store.get_membership(room.id, bob.id)
    assert membership is not None
    assert membership.read_seq == 10
