"""Store contract: external identities linked to local users (any backend, issue #14)."""

from __future__ import annotations

import pytest

from chorus.persistence import Conflict, NotFound, Store
from tests.persistence.helpers import T0

CLERK = "https://clerk.example.com"
OTHER = "https://login.example.org"


async def test_a_first_sign_in_creates_a_passwordless_user_linked_to_the_subject(
    store: Store,
) -> None:
    assert await store.get_external_user(CLERK, "user_1") is None
    made = await store.create_external_user(CLERK, "user_1", "Ada", "Ada L.", None, T0)
    assert made.username == "ada"
    assert await store.get_external_user(CLERK, "user_1") == made
    assert await store.get_user(made.id) == made
    # No password: it can never log in with one.
    assert await store.get_credentials("ada") is None


async def test_the_same_subject_at_another_issuer_is_another_identity(store: Store) -> None:
    await store.create_external_user(CLERK, "user_1", "ada", "Ada", None, T0)
    assert await store.get_external_user(OTHER, "user_1") is None
    assert await store.get_external_user(CLERK, "USER_1") is None  # subjects are exact


async def test_a_taken_username_or_a_linked_identity_is_a_conflict_that_creates_nothing(
    store: Store,
) -> None:
    first = await store.create_external_user(CLERK, "user_1", "ada", "Ada", None, T0)
    with pytest.raises(Conflict):
        await store.create_external_user(CLERK, "user_2", "ADA", "Ada 2", None, T0)
    assert await store.get_external_user(CLERK, "user_2") is None
    with pytest.raises(Conflict):
        await store.create_external_user(CLERK, "user_1", "ada2", "Ada", None, T0)
    assert await store.get_user_by_username("ada2") is None
    assert await store.get_external_user(CLERK, "user_1") == first


async def test_an_identity_links_to_an_existing_user_once(store: Store) -> None:
    ada = await store.create_user("ada", "Ada", "hash", T0)
    assert await store.link_external_identity(OTHER, "sub-9", ada.id, None, T0) == ada
    assert await store.get_external_user(OTHER, "sub-9") == ada
    with pytest.raises(Conflict):
        await store.link_external_identity(OTHER, "sub-9", ada.id, None, T0)
    with pytest.raises(NotFound):
        await store.link_external_identity(OTHER, "sub-10", "u_missing", None, T0)


async def test_users_are_found_by_stored_email_only_among_the_given_issuers(
    store: Store,
) -> None:
    ada = await store.create_external_user(CLERK, "user_1", "ada", "Ada", "Ada@Example.com", T0)
    await store.create_external_user(OTHER, "x", "bob", "Bob", None, T0 + 1)
    assert await store.find_user_by_external_email("ada@example.COM", [CLERK]) == ada
    assert await store.find_user_by_external_email("ada@example.com", [OTHER]) is None
    assert await store.find_user_by_external_email("ada@example.com", []) is None
    assert await store.find_user_by_external_email("bob@example.com", [CLERK, OTHER]) is None
