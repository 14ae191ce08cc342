"""Store contract: group direct rooms (three or more users, fixed membership)."""

from __future__ import annotations

import pytest
import trio

from chorus.persistence import Conflict, NotFound, Role, Room, RoomKind, Store
from tests.persistence.helpers import T0, make_user


async def test_the_same_set_of_users_always_gets_the_same_room(store: Store) -> None:
    ada, bob, cy, dee = [await make_user(store, name) for name in ("ada", "bob", "cy", "dee")]
    room, created = await store.group_room(ada.id, [bob.id, cy.id], T0)
    assert created
    assert room == Room(
        id=room.id, name="", kind=RoomKind.DIRECT, created_by=ada.id, created_at=T0, last_seq=0
    )
    assert await store.group_room(cy.id, [ada.id, bob.id, cy.id, bob.id], T0 + 1) == (
        room,
        False,
    )
    assert {(m.user_id, m.role) for m in await store.members(room.id)} == {
        (ada.id, Role.MEMBER),
        (bob.id, Role.MEMBER),
        (cy.id, Role.MEMBER),
    }
    bigger, created = await store.group_room(ada.id, [bob.id, cy.id, dee.id], T0)
    assert created
    assert bigger.id != room.id
    # A direct room of two of them is another room again.
    pair, _ = await store.direct_room(ada.id, bob.id, T0)
    assert pair.id not in {room.id, bigger.id}


async def test_a_group_room_admits_only_its_users(store: Store) -> None:
    ada, bob, cy, eve = [await make_user(store, name) for name in ("ada", "bob", "cy", "eve")]
    room, _ = await store.group_room(ada.id, [bob.id, cy.id], T0)
    with pytest.raises(Conflict):
        await store.add_member(room.id, eve.id, Role.MEMBER, T0)
    await store.remove_member(room.id, cy.id)
    assert (await store.add_member(room.id, cy.id, Role.MEMBER, T0 + 1)).joined_at == T0 + 1


async def test_a_group_room_needs_three_existing_users(store: Store) -> None:
    ada, bob = await make_user(store, "ada"), await make_user(store, "bob")
    with pytest.raises(ValueError, match="three"):
        await store.group_room(ada.id, [bob.id, bob.id, ada.id], T0)
    with pytest.raises(NotFound):
        await store.group_room(ada.id, [bob.id, "u_doesnotexist0000"], T0)
    assert await store.rooms_of(ada.id) == []


async def test_concurrent_group_room_calls_create_one_room(store: Store) -> None:
    users = [(await make_user(store, name)).id for name in ("ada", "bob", "cy")]
    results: list[tuple[Room, bool]] = []

    async def open_group(i: int) -> None:
        creator = users[i % 3]
        results.append(await store.group_room(creator, users, T0))

    async with trio.open_nursery() as nursery:
        for i in range(9):
            nursery.start_soon(open_group, i)

    assert len({room.id for room, _ in results}) == 1
    assert [created for _, created in results].count(True) == 1
