"""Store contract: rooms, memberships, direct rooms and read markers (any backend)."""

from __future__ import annotations

import pytest
import trio

from chorus.persistence import (
    Conflict,
    Membership,
    NotFound,
    Role,
    Room,
    RoomKind,
    Store,
)
from tests.persistence.helpers import T0, make_room, make_user, texts

# -- rooms ----------------------------------------------------------------------------


async def test_create_room_makes_the_creator_its_owner(store: Store) -> None:
    ada = await make_user(store, "ada")
    room = await store.create_room("general", RoomKind.PUBLIC, ada.id, T0)
    assert room == Room(
        id=room.id,
        name="general",
        kind=RoomKind.PUBLIC,
        created_by=ada.id,
        created_at=T0,
        last_seq=0,
    )
    assert room.id.startswith("r_")
    assert await store.get_room(room.id) == room
    assert await store.members(room.id) == [
        Membership(room_id=room.id, user_id=ada.id, role=Role.OWNER, joined_at=T0, read_seq=0)
    ]


async def test_create_room_refuses_direct_rooms_and_unknown_creators(store: Store) -> None:
    ada = await make_user(store, "ada")
    with pytest.raises(ValueError, match="direct_room"):
        await store.create_room("dm", RoomKind.DIRECT, ada.id, T0)
    with pytest.raises(NotFound):
        await store.create_room("general", RoomKind.PUBLIC, "u_doesnotexist0000", T0)


async def test_get_room_of_an_unknown_id_is_none(store: Store) -> None:
    assert await store.get_room("r_doesnotexist0000") is None


async def test_public_rooms_pages_through_every_public_room_once_in_id_order(
    store: Store,
) -> None:
    ada = await make_user(store, "ada")
    public = {(await make_room(store, ada, f"public {i}")).id for i in range(7)}
    await make_room(store, ada, "secret", RoomKind.PRIVATE)
    await store.direct_room(ada.id, (await make_user(store, "bob")).id, T0)

    pages: list[list[str]] = []
    after: str | None = None
    while True:
        page = [room.id for room in await store.public_rooms(3, after)]
        pages.append(page)
        if len(page) < 3:
            break
        after = page[-1]

    assert [len(page) for page in pages] == [3, 3, 1]
    listed = [room_id for page in pages for room_id in page]
    assert listed == sorted(public)


async def test_public_rooms_refuses_a_negative_limit(store: Store) -> None:
    with pytest.raises(ValueError, match="limit"):
        await store.public_rooms(-1)


# -- memberships ----------------------------------------------------------------------


async def test_add_member_is_idempotent_and_keeps_the_first_membership(store: Store) -> None:
    ada, bob = await make_user(store, "ada"), await make_user(store, "bob")
    room = await make_room(store, ada)
    first = await store.add_member(room.id, bob.id, Role.MEMBER, T0 + 1)
    again = await store.add_member(room.id, bob.id, Role.MODERATOR, T0 + 2)
    assert (
        first
        == again
        == Membership(
            room_id=room.id, user_id=bob.id, role=Role.MEMBER, joined_at=T0 + 1, read_seq=0
        )
    )
    assert await store.get_membership(room.id, bob.id) == first
    assert [m.user_id for m in await store.members(room.id)] == [ada.id, bob.id]


async def test_add_member_to_an_unknown_room_or_of_an_unknown_user_is_not_found(
    store: Store,
) -> None:
    ada = await make_user(store, "ada")
    room = await make_room(store, ada)
    with pytest.raises(NotFound):
        await store.add_member("r_doesnotexist0000", ada.id, Role.MEMBER, T0)
    with pytest.raises(NotFound):
        await store.add_member(room.id, "u_doesnotexist0000", Role.MEMBER, T0)


async def test_remove_member_ends_the_membership_once(store: Store) -> None:
    ada, bob = await make_user(store, "ada"), await make_user(store, "bob")
    room = await make_room(store, ada)
    await store.add_member(room.id, bob.id, Role.MEMBER, T0)
    assert await store.remove_member(room.id, bob.id)
    assert not await store.remove_member(room.id, bob.id)
    assert await store.get_membership(room.id, bob.id) is None
    assert [m.user_id for m in await store.members(room.id)] == [ada.id]
    assert await store.rooms_of(bob.id) == []


async def test_rooms_of_lists_each_room_with_the_membership_oldest_joined_first(
    store: Store,
) -> None:
    ada, bob = await make_user(store, "ada"), await make_user(store, "bob")
    later = await store.create_room("later", RoomKind.PRIVATE, ada.id, T0 + 10)
    earlier = await store.create_room("earlier", RoomKind.PUBLIC, bob.id, T0)
    joined = await store.add_member(earlier.id, ada.id, Role.MODERATOR, T0 + 5)
    await make_room(store, bob, "bob only")

    assert await store.rooms_of(ada.id) == [
        (earlier, joined),
        (
            later,
            Membership(
                room_id=later.id, user_id=ada.id, role=Role.OWNER, joined_at=T0 + 10, read_seq=0
            ),
        ),
    ]


async def test_members_of_an_unknown_room_is_empty(store: Store) -> None:
    assert await store.members("r_doesnotexist0000") == []
    assert await store.member_ids("r_doesnotexist0000") == []


async def test_member_ids_are_the_members_ids_in_their_order(store: Store) -> None:
    # Joined out of the ids' order, two at once (the tie broken by id), one gone again.
    ada, bob, cy, dee = [await make_user(store, name) for name in ("ada", "bob", "cy", "dee")]
    room = await make_room(store, dee)
    for user, joined in ((cy, T0 + 5), (bob, T0 + 9), (ada, T0 + 9)):
        await store.add_member(room.id, user.id, Role.MEMBER, joined)
    await store.remove_member(room.id, cy.id)
    ids = await store.member_ids(room.id)
    assert ids == [m.user_id for m in await store.members(room.id)]
    assert ids == [dee.id, *sorted([ada.id, bob.id])]


# -- direct rooms ---------------------------------------------------------------------


async def test_direct_room_is_created_once_and_is_symmetric(store: Store) -> None:
    ada, bob = await make_user(store, "ada"), await make_user(store, "bob")
    room, created = await store.direct_room(ada.id, bob.id, T0)
    assert created
    assert room.kind is RoomKind.DIRECT
    assert room.created_by == ada.id
    assert await store.direct_room(ada.id, bob.id, T0 + 1) == (room, False)
    assert await store.direct_room(bob.id, ada.id, T0 + 2) == (room, False)
    assert {(m.user_id, m.role) for m in await store.members(room.id)} == {
        (ada.id, Role.MEMBER),
        (bob.id, Role.MEMBER),
    }
    assert [r for r, _ in await store.rooms_of(bob.id)] == [room]


async def test_direct_rooms_of_different_pairs_are_different(store: Store) -> None:
    ada, bob, cy = [await make_user(store, name) for name in ("ada", "bob", "cy")]
    ab, _ = await store.direct_room(ada.id, bob.id, T0)
    ac, _ = await store.direct_room(ada.id, cy.id, T0)
    bc, _ = await store.direct_room(cy.id, bob.id, T0)
    assert len({ab.id, ac.id, bc.id}) == 3


async def test_concurrent_direct_room_calls_create_one_room(store: Store) -> None:
    ada, bob = await make_user(store, "ada"), await make_user(store, "bob")
    results: list[tuple[Room, bool]] = []

    async def open_dm(a: str, b: str) -> None:
        results.append(await store.direct_room(a, b, T0))

    async with trio.open_nursery() as nursery:
        for i in range(10):
            pair = (ada.id, bob.id) if i % 2 else (bob.id, ada.id)
            nursery.start_soon(open_dm, *pair)

    assert len({room.id for room, _ in results}) == 1
    assert [created for _, created in results].count(True) == 1


async def test_a_direct_room_with_oneself_has_one_member(store: Store) -> None:
    ada = await make_user(store, "ada")
    room, created = await store.direct_room(ada.id, ada.id, T0)
    assert created
    assert [m.user_id for m in await store.members(room.id)] == [ada.id]


async def test_direct_room_with_an_unknown_user_is_not_found(store: Store) -> None:
    ada = await make_user(store, "ada")
    with pytest.raises(NotFound):
        await store.direct_room(ada.id, "u_doesnotexist0000", T0)


async def test_a_direct_room_admits_only_its_two_users(store: Store) -> None:
    ada, bob, eve = [await make_user(store, name) for name in ("ada", "bob", "eve")]
    room, _ = await store.direct_room(ada.id, bob.id, T0)
    with pytest.raises(Conflict):
        await store.add_member(room.id, eve.id, Role.MEMBER, T0)
    await store.remove_member(room.id, bob.id)
    rejoined = await store.add_member(room.id, bob.id, Role.MEMBER, T0 + 1)
    assert rejoined.joined_at == T0 + 1


# -- read markers ---------------------------------------------------------------------


async def test_read_seq_only_moves_forward_and_not_past_the_last_message(store: Store) -> None:
    ada = await make_user(store, "ada")
    room = await make_room(store, ada)
    await store.append_messages(room.id, texts(ada, "c1", "c2", "c3", "c4", "c5"))

    assert await store.advance_read_seq(room.id, ada.id, 3) == 3
    assert await store.advance_read_seq(room.id, ada.id, 2) == 3
    assert await store.advance_read_seq(room.id, ada.id, 99) == 5
    membership = await store.get_membership(room.id, ada.id)
    assert membership is not None
    assert membership.read_seq == 5
    assert [m.read_seq for _, m in await store.rooms_of(ada.id)] == [5]


async def test_advance_read_seq_of_a_non_member_is_not_found(store: Store) -> None:
    ada, bob = await make_user(store, "ada"), await make_user(store, "bob")
    room = await make_room(store, ada)
    with pytest.raises(NotFound):
        await store.advance_read_seq(room.id, bob.id, 1)
