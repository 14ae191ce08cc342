"""Store contract: users, credentials, sessions and refresh-token rotation (any backend)."""

from __future__ import annotations

import attrs
import pytest

from chorus.persistence import (
    Conflict,
    NotFound,
    RefreshInvalid,
    RefreshReused,
    RefreshRotated,
    Session,
    Store,
)
from tests.persistence.helpers import T0, make_user

HOUR = 3_600_000

# -- users and credentials ----------------------------------------------------------


async def test_create_user_stores_the_username_lower_case(store: Store) -> None:
    user = await store.create_user("Ada.Lovelace", "Ada Lovelace", "hash", T0)
    assert user.username == "ada.lovelace"
    assert user.display_name == "Ada Lovelace"
    assert user.created_at == T0
    assert user.id.startswith("u_")
    assert len(user.id) == 2 + 16
    assert await store.get_user(user.id) == user


async def test_a_username_taken_in_any_letter_case_is_a_conflict(store: Store) -> None:
    await store.create_user("ada", "Ada", "hash", T0)
    with pytest.raises(Conflict):
        await store.create_user("ADA", "Another Ada", "other", T0)
    assert await store.get_credentials("ada") is not None


async def test_get_user_of_an_unknown_id_is_none(store: Store) -> None:
    assert await store.get_user("u_doesnotexist0000") is None


async def test_get_user_by_username_finds_any_user_in_any_letter_case(store: Store) -> None:
    user = await store.create_user("grace", "Grace", None, T0)  # passwordless users too
    assert await store.get_user_by_username("GrAcE") == user
    assert await store.get_user_by_username("nobody") is None


async def test_get_credentials_finds_the_user_in_any_letter_case(store: Store) -> None:
    user = await store.create_user("grace", "Grace", "argon2-hash", T0)
    assert await store.get_credentials("GrAcE") == (user, "argon2-hash")


async def test_get_credentials_is_none_for_unknown_and_passwordless_users(store: Store) -> None:
    await store.create_user("oidc-user", "Via OIDC", None, T0)
    assert await store.get_credentials("oidc-user") is None
    assert await store.get_credentials("nobody") is None


# -- sessions -------------------------------------------------------------------------


async def test_create_session_is_live_until_it_expires(store: Store) -> None:
    user = await make_user(store, "ada")
    session = await store.create_session(user.id, "t1", T0, T0 + HOUR)
    assert session == Session(
        id=session.id, user_id=user.id, created_at=T0, expires_at=T0 + HOUR, revoked_at=None
    )
    assert session.id.startswith("s_")
    assert await store.get_session(session.id) == session
    assert session.is_live(T0 + HOUR - 1)
    assert not session.is_live(T0 + HOUR)


async def test_create_session_for_an_unknown_user_is_not_found(store: Store) -> None:
    with pytest.raises(NotFound):
        await store.create_session("u_doesnotexist0000", "t1", T0, T0 + HOUR)


async def test_a_refresh_hash_cannot_be_stored_twice(store: Store) -> None:
    user = await make_user(store, "ada")
    await store.create_session(user.id, "t1", T0, T0 + HOUR)
    with pytest.raises(Conflict):
        await store.create_session(user.id, "t1", T0, T0 + HOUR)


async def test_get_session_of_an_unknown_id_is_none(store: Store) -> None:
    assert await store.get_session("s_doesnotexist0000") is None


async def test_revoke_session_is_true_once(store: Store) -> None:
    user = await make_user(store, "ada")
    session = await store.create_session(user.id, "t1", T0, T0 + HOUR)
    assert await store.revoke_session(session.id, T0 + 5)
    assert not await store.revoke_session(session.id, T0 + 6)
    assert not await store.revoke_session("s_doesnotexist0000", T0)
    revoked = await store.get_session(session.id)
    assert revoked is not None
    assert revoked.revoked_at == T0 + 5


# -- refresh-token rotation -----------------------------------------------------------


async def test_rotation_makes_the_new_token_the_current_one(store: Store) -> None:
    user = await make_user(store, "ada")
    session = await store.create_session(user.id, "t1", T0, T0 + HOUR)
    seen = attrs.evolve(session, last_seen_at=T0 + 1)
    assert await store.rotate_refresh("t1", "t2", T0 + 1) == RefreshRotated(session=seen)
    seen = attrs.evolve(session, last_seen_at=T0 + 2)
    assert await store.rotate_refresh("t2", "t3", T0 + 2) == RefreshRotated(session=seen)
    assert await store.get_session(session.id) == seen


async def test_reusing_a_used_token_revokes_the_session_so_even_the_newest_token_fails(
    store: Store,
) -> None:
    user = await make_user(store, "ada")
    session = await store.create_session(user.id, "t1", T0, T0 + HOUR)
    await store.rotate_refresh("t1", "t2", T0 + 1)

    outcome = await store.rotate_refresh("t1", "stolen-next", T0 + 2)

    reused = attrs.evolve(session, revoked_at=T0 + 2, last_seen_at=T0 + 1)
    assert outcome == RefreshReused(session=reused)
    assert await store.rotate_refresh("t2", "t3", T0 + 3) == RefreshInvalid(reason="revoked")
    assert await store.rotate_refresh("stolen-next", "t4", T0 + 3) == RefreshInvalid(
        reason="unknown"
    )
    stored = await store.get_session(session.id)
    assert stored is not None
    assert stored.revoked_at == T0 + 2


async def test_rotating_an_unknown_token_is_invalid(store: Store) -> None:
    assert await store.rotate_refresh("never-issued", "t2", T0) == RefreshInvalid(reason="unknown")


async def test_an_expired_session_refuses_rotation_and_changes_nothing(store: Store) -> None:
    user = await make_user(store, "ada")
    session = await store.create_session(user.id, "t1", T0, T0 + HOUR)
    assert await store.rotate_refresh("t1", "t2", T0 + HOUR) == RefreshInvalid(reason="expired")
    assert await store.get_session(session.id) == session
    # "t2" was not stored: a fresh session may use it.
    await store.create_session(user.id, "t2", T0 + HOUR, T0 + 2 * HOUR)


async def test_a_revoked_session_refuses_rotation(store: Store) -> None:
    user = await make_user(store, "ada")
    session = await store.create_session(user.id, "t1", T0, T0 + HOUR)
    await store.revoke_session(session.id, T0 + 1)
    assert await store.rotate_refresh("t1", "t2", T0 + 2) == RefreshInvalid(reason="revoked")


async def test_rotation_to_an_already_stored_hash_is_a_conflict_and_changes_nothing(
    store: Store,
) -> None:
    user = await make_user(store, "ada")
    await store.create_session(user.id, "other", T0, T0 + HOUR)
    session = await store.create_session(user.id, "t1", T0, T0 + HOUR)
    with pytest.raises(Conflict):
        await store.rotate_refresh("t1", "other", T0 + 1)
    # The failed rotation did not mark "t1" used.
    rotated = await store.rotate_refresh("t1", "t2", T0 + 2)
    assert rotated == RefreshRotated(session=attrs.evolve(session, last_seen_at=T0 + 2))
