"""Store contract: encrypted direct rooms are rooms of their own, and search never reads them."""

from __future__ import annotations

from chorus.persistence import Store
from tests.persistence.helpers import T0, make_user, say


async def test_the_encrypted_room_of_two_users_is_not_their_plain_room(store: Store) -> None:
    ada, bob, cyd = [await make_user(store, name) for name in ("ada", "bob", "cyd")]
    plain, _ = await store.direct_room(ada.id, bob.id, T0)
    sealed, created = await store.direct_room(ada.id, bob.id, T0, encrypted=True)
    assert (created, sealed.encrypted, plain.encrypted) == (True, True, False)
    assert sealed.id != plain.id
    again, created = await store.direct_room(bob.id, ada.id, T0, encrypted=True)
    assert (again, created) == (sealed, False)
    group, _ = await store.group_room(ada.id, [bob.id, cyd.id], T0, encrypted=True)
    assert group.encrypted
    assert group.id != (await store.group_room(ada.id, [bob.id, cyd.id], T0))[0].id
    assert await store.get_room(sealed.id) == sealed


async def test_search_never_finds_messages_of_encrypted_rooms(store: Store) -> None:
    ada, bob = await make_user(store, "ada"), await make_user(store, "bob")
    plain, _ = await store.direct_room(ada.id, bob.id, T0)
    sealed, _ = await store.direct_room(ada.id, bob.id, T0, encrypted=True)
    await say(store, plain, ada, "opaque LAPTOP words", "p1")
    await say(store, sealed, ada, '{"device_id": "LAPTOP", "ciphertext": "opaque"}', "s1")
    hits = await store.search(bob.id, "LAPTOP opaque", limit=10, offset=0)
    assert [hit.message.room_id for hit in hits] == [plain.id]
