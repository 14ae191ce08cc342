"""Store contract: session details, idle and absolute expiry, listing, revoking all others."""

from __future__ import annotations

import attrs

from chorus.persistence import RefreshInvalid, RefreshRotated, Store
from tests.persistence.helpers import T0, make_user

HOUR = 3_600_000


async def test_a_session_keeps_its_client_and_both_deadlines(store: Store) -> None:
    user = await make_user(store, "ada")
    session = await store.create_session(
        user.id,
        "t1",
        T0,
        T0 + HOUR,
        max_expires_at=T0 + 3 * HOUR,
        user_agent="curl/8",
        address="::1",
    )
    assert (session.user_agent, session.address) == ("curl/8", "::1")
    assert (session.expires_at, session.max_expires_at, session.last_seen_at) == (
        T0 + HOUR,
        T0 + 3 * HOUR,
        T0,
    )
    assert await store.get_session(session.id) == session


async def test_each_refresh_pushes_the_idle_deadline_but_never_past_the_absolute_one(
    store: Store,
) -> None:
    user = await make_user(store, "ada")
    session = await store.create_session(user.id, "t1", T0, T0 + HOUR, max_expires_at=T0 + 2 * HOUR)
    rotated = await store.rotate_refresh("t1", "t2", T0 + HOUR - 1, T0 + 2 * HOUR - 1)
    assert rotated == RefreshRotated(
        session=attrs.evolve(session, expires_at=T0 + 2 * HOUR - 1, last_seen_at=T0 + HOUR - 1)
    )
    # Refreshed in time, it outlived its first idle deadline...
    rotated = await store.rotate_refresh("t2", "t3", T0 + HOUR + 1, T0 + 3 * HOUR)
    assert isinstance(rotated, RefreshRotated)
    assert rotated.session.expires_at == T0 + 2 * HOUR  # ...but not its absolute one.
    stored = await store.get_session(session.id)
    assert stored is not None
    assert stored.is_live(T0 + 2 * HOUR - 1)
    assert not stored.is_live(T0 + 2 * HOUR)
    assert await store.rotate_refresh("t3", "t4", T0 + 2 * HOUR, T0 + 4 * HOUR) == RefreshInvalid(
        reason="expired"
    )


async def test_list_sessions_shows_the_live_ones_oldest_first(store: Store) -> None:
    ada, bob = await make_user(store, "ada"), await make_user(store, "bob")
    first = await store.create_session(ada.id, "a1", T0, T0 + HOUR)
    second = await store.create_session(ada.id, "a2", T0 + 1, T0 + HOUR)
    revoked = await store.create_session(ada.id, "a3", T0 + 2, T0 + HOUR)
    await store.create_session(ada.id, "a4", T0 + 3, T0 + 10)  # expired below
    await store.create_session(bob.id, "b1", T0, T0 + HOUR)
    await store.revoke_session(revoked.id, T0 + 5)
    assert await store.list_sessions(ada.id, T0 + 20) == [first, second]
    assert await store.list_sessions("u_nobody00000000", T0) == []


async def test_revoke_sessions_ends_every_live_one_but_the_kept_one(store: Store) -> None:
    ada, bob = await make_user(store, "ada"), await make_user(store, "bob")
    keep = await store.create_session(ada.id, "a1", T0, T0 + HOUR)
    other = await store.create_session(ada.id, "a2", T0, T0 + HOUR)
    another = await store.create_session(ada.id, "a3", T0, T0 + HOUR)
    expired = await store.create_session(ada.id, "a4", T0, T0 + 10)
    bobs = await store.create_session(bob.id, "b1", T0, T0 + HOUR)
    ended = await store.revoke_sessions(ada.id, T0 + 20, keep=keep.id)
    assert ended == sorted([other.id, another.id])
    assert await store.list_sessions(ada.id, T0 + 20) == [keep]
    assert (await store.get_session(expired.id)) == expired  # dead already: left alone
    assert await store.list_sessions(bob.id, T0 + 20) == [bobs]
    assert await store.revoke_sessions(ada.id, T0 + 21, keep=None) == [keep.id]
    assert await store.revoke_sessions(ada.id, T0 + 22, keep=None) == []


async def test_revoked_among_names_the_revoked_sessions_of_those_asked_about(
    store: Store,
) -> None:
    ada = await make_user(store, "ada")
    live = await store.create_session(ada.id, "a1", T0, T0 + HOUR)
    ended = await store.create_session(ada.id, "a2", T0, T0 + HOUR)
    also_ended = await store.create_session(ada.id, "a3", T0, T0 + HOUR)
    await store.revoke_sessions(ada.id, T0 + 1, keep=live.id)
    asked = [live.id, ended.id, "s_unknown0000000"]
    assert await store.revoked_among(asked) == [ended.id]
    assert await store.revoked_among([]) == []
    assert await store.revoked_among([also_ended.id, ended.id]) == sorted([ended.id, also_ended.id])


async def test_set_password_replaces_the_hash_of_users_with_one(store: Store) -> None:
    ada = await make_user(store, "ada")
    oidc = await make_user(store, "oidc", password_hash=None)
    assert await store.set_password(ada.id, "new-hash", T0 + 1)
    assert await store.get_credentials("ada") == (ada, "new-hash")
    assert not await store.set_password(oidc.id, "new-hash", T0 + 1)
    assert await store.get_credentials("oidc") is None
