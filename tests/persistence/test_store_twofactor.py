"""Store contract: TOTP enrolments, the one-use time steps and recovery codes."""

from __future__ import annotations

import pytest

from chorus.persistence import Conflict, NotFound, Store
from tests.persistence.helpers import T0, make_user


async def test_an_enrolment_is_pending_until_enabled_and_can_be_replaced(store: Store) -> None:
    ada = await make_user(store, "ada")
    assert await store.get_totp(ada.id) is None
    await store.begin_totp(ada.id, b"sealed-1", T0)
    await store.begin_totp(ada.id, b"sealed-2", T0 + 1)
    state = await store.get_totp(ada.id)
    assert state is not None
    assert (state.secret, state.enabled, state.recovery_codes_left) == (b"sealed-2", False, 0)
    assert not await store.use_totp_step(ada.id, 10)  # pending: no code counts yet
    assert not await store.use_recovery_code(ada.id, "h1", T0)
    assert await store.enable_totp(ada.id, 100, ["h1", "h2"], T0 + 2)
    state = await store.get_totp(ada.id)
    assert state is not None
    assert (state.enabled_at, state.last_step, state.recovery_codes_left) == (T0 + 2, 100, 2)
    assert not await store.enable_totp(ada.id, 101, ["h3"], T0 + 3)  # nothing pending
    with pytest.raises(Conflict):
        await store.begin_totp(ada.id, b"sealed-3", T0 + 4)
    with pytest.raises(NotFound):
        await store.begin_totp("u_nobody00000000", b"sealed", T0)


async def test_a_time_step_is_used_once_and_never_an_older_one_after_it(store: Store) -> None:
    ada = await make_user(store, "ada")
    await store.begin_totp(ada.id, b"sealed", T0)
    await store.enable_totp(ada.id, 100, [], T0)
    assert not await store.use_totp_step(ada.id, 100)  # the enabling code's step
    assert await store.use_totp_step(ada.id, 102)
    assert not await store.use_totp_step(ada.id, 102)
    assert not await store.use_totp_step(ada.id, 101)
    assert await store.use_totp_step(ada.id, 103)


async def test_a_recovery_code_is_spent_once(store: Store) -> None:
    ada, bob = await make_user(store, "ada"), await make_user(store, "bob")
    await store.begin_totp(ada.id, b"sealed", T0)
    await store.enable_totp(ada.id, 1, ["h1", "h2"], T0)
    assert not await store.use_recovery_code(bob.id, "h1", T0)  # another user's code
    assert await store.use_recovery_code(ada.id, "h1", T0 + 1)
    assert not await store.use_recovery_code(ada.id, "h1", T0 + 2)
    state = await store.get_totp(ada.id)
    assert state is not None
    assert state.recovery_codes_left == 1


async def test_disable_forgets_the_secret_and_the_codes(store: Store) -> None:
    ada = await make_user(store, "ada")
    await store.begin_totp(ada.id, b"sealed", T0)
    await store.enable_totp(ada.id, 1, ["h1"], T0)
    assert await store.disable_totp(ada.id)
    assert await store.get_totp(ada.id) is None
    assert not await store.use_recovery_code(ada.id, "h1", T0)
    assert not await store.disable_totp(ada.id)
    await store.begin_totp(ada.id, b"again", T0 + 1)  # and may enrol afresh
    assert await store.enable_totp(ada.id, 2, ["h9"], T0 + 1)
    assert not await store.use_recovery_code(ada.id, "h1", T0 + 2)
