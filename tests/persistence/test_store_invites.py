"""Store contract: pending invitations to rooms (made, listed, accepted, declined, revoked)."""

from __future__ import annotations

import pytest

from chorus.persistence import NotFound, Role, Store
from tests.persistence.helpers import T0, make_room, make_user


async def test_an_invitation_is_pending_until_accepted_and_then_a_membership(store: Store) -> None:
    ada, bob = await make_user(store, "ada"), await make_user(store, "bob")
    room = await make_room(store, ada)
    invitation, created = await store.invite(room.id, bob.id, ada.id, T0)
    assert created
    assert (invitation.invited_by, invitation.created_at) == (ada.id, T0)
    again, created_again = await store.invite(room.id, bob.id, ada.id, T0 + 5)
    assert (again, created_again) == (invitation, False)  # the pending one, unchanged
    assert await store.room_invites(room.id) == [invitation]
    assert [(i, r.id) for i, r in await store.user_invites(bob.id)] == [(invitation, room.id)]
    assert await store.get_membership(room.id, bob.id) is None  # not a member yet
    membership = await store.accept_invite(room.id, bob.id, T0 + 10)
    assert membership is not None
    assert membership.role is Role.MEMBER
    assert await store.get_membership(room.id, bob.id) == membership
    assert await store.room_invites(room.id) == []
    assert await store.user_invites(bob.id) == []
    assert await store.accept_invite(room.id, bob.id, T0 + 11) is None  # used up


async def test_revoked_declined_and_banned_invitations_cannot_be_accepted(store: Store) -> None:
    ada, bob, carol = [await make_user(store, n) for n in ("ada", "bob", "carol")]
    room = await make_room(store, ada)
    await store.invite(room.id, bob.id, ada.id, T0)
    assert await store.revoke_invite(room.id, bob.id)
    assert not await store.revoke_invite(room.id, bob.id)
    assert await store.accept_invite(room.id, bob.id, T0 + 1) is None
    await store.invite(room.id, carol.id, ada.id, T0)
    await store.ban(room.id, carol.id, ada.id, "", T0 + 1)
    assert await store.room_invites(room.id) == []
    assert await store.accept_invite(room.id, carol.id, T0 + 2) is None
    assert await store.get_membership(room.id, carol.id) is None
    with pytest.raises(NotFound):
        await store.invite(room.id, "u_missing", ada.id, T0)
    with pytest.raises(NotFound):
        await store.invite("r_missing", bob.id, ada.id, T0)
