"""Store contract: devices bound to sessions, one-time keys claimed atomically, to-device queues."""

from __future__ import annotations

import attrs
import pytest
import trio

from chorus.persistence import (
    Conflict,
    Device,
    NewToDevice,
    OneTimeKey,
    QueueFull,
    Store,
    User,
)
from tests.persistence.helpers import T0, make_user

HOUR = 3_600_000


async def _device(store: Store, user: User, device_id: str, *, key: str = "K") -> Device:
    session = await store.create_session(user.id, f"r-{user.id}-{device_id}", T0, T0 + HOUR)
    device = Device(
        user_id=user.id,
        device_id=device_id,
        session_id=session.id,
        display_name=device_id.lower(),
        algorithms=("m.olm.v1.curve25519-aes-sha2", "m.megolm.v1.aes-sha2"),
        curve25519=f"curve-{key}",
        ed25519=f"ed-{key}",
        signature="sig",
        created_at=0,
    )
    stored, created = await store.register_device(device, T0)
    assert created
    return stored


def _keys(*ids: str) -> list[OneTimeKey]:
    return [OneTimeKey(key_id=i, key=f"otk-{i}", signature=f"sig-{i}") for i in ids]


async def test_a_device_lives_as_long_as_its_session(store: Store) -> None:
    ada = await make_user(store, "ada")
    laptop = await _device(store, ada, "LAPTOP")
    assert laptop.created_at == T0
    assert await store.live_devices([ada.id], T0) == [laptop]
    assert await store.live_device(ada.id, "LAPTOP", T0) == laptop
    await store.revoke_sessions(ada.id, T0 + 1, keep=None)
    assert await store.live_devices([ada.id], T0 + 2) == []
    assert await store.claim_keys([(ada.id, "LAPTOP")], T0 + 2) == [None]


async def test_a_device_id_alive_elsewhere_keeps_its_keys(store: Store) -> None:
    ada = await make_user(store, "ada")
    laptop = await _device(store, ada, "LAPTOP")
    other = await store.create_session(ada.id, "other", T0, T0 + HOUR)
    forged = attrs.evolve(laptop, session_id=other.id, curve25519="attacker")
    with pytest.raises(Conflict):
        await store.register_device(forged, T0)
    # The same keys from a new session are the same device, moved to it.
    moved, created = await store.register_device(
        attrs.evolve(laptop, session_id=other.id, display_name="renamed"), T0
    )
    assert not created
    assert (moved.session_id, moved.display_name) == (other.id, "renamed")
    assert await store.live_devices([ada.id], T0) == [moved]


async def test_a_session_has_one_device(store: Store) -> None:
    ada = await make_user(store, "ada")
    laptop = await _device(store, ada, "LAPTOP")
    phone = attrs.evolve(laptop, device_id="PHONE", curve25519="c2", ed25519="e2")
    await store.register_device(phone, T0)
    assert [d.device_id for d in await store.live_devices([ada.id], T0)] == ["PHONE"]


async def test_claims_take_each_key_once_then_the_fallback(store: Store) -> None:
    ada = await make_user(store, "ada")
    await _device(store, ada, "LAPTOP")
    counts = await store.upload_keys(
        ada.id, "LAPTOP", _keys("A1", "A2"), _keys("FB")[0], max_unclaimed=10
    )
    assert (counts.one_time_keys, counts.fallback_key) == (2, True)
    claims = [(await store.claim_keys([(ada.id, "LAPTOP")], T0))[0] for _ in range(3)]
    assert [(c.key.key_id, c.fallback) if c else None for c in claims] == [
        ("A1", False),
        ("A2", False),
        ("FB", True),
    ]
    assert [c.left.one_time_keys if c else None for c in claims] == [1, 0, 0]
    # The fallback key stays until replaced.
    assert (await store.key_counts(ada.id, "LAPTOP")).fallback_key


async def test_upload_is_idempotent_and_bounded(store: Store) -> None:
    ada = await make_user(store, "ada")
    await _device(store, ada, "LAPTOP")
    await store.upload_keys(ada.id, "LAPTOP", _keys("A1"), None, max_unclaimed=2)
    again = await store.upload_keys(ada.id, "LAPTOP", _keys("A1"), None, max_unclaimed=2)
    assert again.one_time_keys == 1
    changed = [OneTimeKey(key_id="A1", key="other", signature="sig-A1")]
    with pytest.raises(ValueError, match="uploaded before"):
        await store.upload_keys(ada.id, "LAPTOP", changed, None, max_unclaimed=2)
    with pytest.raises(ValueError, match="at most 2"):
        await store.upload_keys(ada.id, "LAPTOP", _keys("A2", "A3"), None, max_unclaimed=2)
    assert (await store.key_counts(ada.id, "LAPTOP")).one_time_keys == 1


async def test_a_key_id_repeated_in_one_upload_is_stored_once_or_refused(store: Store) -> None:
    ada = await make_user(store, "ada")
    await _device(store, ada, "LAPTOP")
    counts = await store.upload_keys(ada.id, "LAPTOP", _keys("A1", "A1"), None, max_unclaimed=10)
    assert counts.one_time_keys == 1
    clash = [*_keys("A2"), OneTimeKey(key_id="A2", key="other", signature="sig-A2")]
    with pytest.raises(ValueError, match="given twice"):
        await store.upload_keys(ada.id, "LAPTOP", clash, None, max_unclaimed=10)
    [fallback] = _keys("A3")
    with pytest.raises(ValueError, match="one-time and a fallback"):
        await store.upload_keys(ada.id, "LAPTOP", _keys("A3"), fallback, max_unclaimed=10)
    assert await store.key_counts(ada.id, "LAPTOP") == counts


async def test_concurrent_claims_of_the_last_keys_never_share_one(store: Store) -> None:
    # On PostgreSQL the claims run on several pooled connections at once.
    ada = await make_user(store, "ada")
    await _device(store, ada, "LAPTOP")
    await store.upload_keys(
        ada.id, "LAPTOP", _keys("A1", "A2", "A3"), _keys("FB")[0], max_unclaimed=10
    )
    got: list[str] = []

    async def claim() -> None:
        [claimed] = await store.claim_keys([(ada.id, "LAPTOP")], T0)
        assert claimed is not None
        got.append(claimed.key.key_id)

    async with trio.open_nursery() as nursery:
        for _ in range(8):
            nursery.start_soon(claim)
    # Three one-time keys, each once; the other claims got the fallback key.
    assert sorted(got) == ["A1", "A2", "A3", *["FB"] * 5]


def _olm(user: User, device_id: str, message_id: str) -> NewToDevice:
    return NewToDevice(
        user_id=user.id, device_id=device_id, message_id=message_id, content=f"opaque {message_id}"
    )


async def test_to_device_messages_wait_until_acknowledged(store: Store) -> None:
    ada, bob = await make_user(store, "ada"), await make_user(store, "bob")
    await _device(store, ada, "LAPTOP")
    await _device(store, bob, "PHONE")
    sent = await store.queue_to_device(
        ada.id,
        "LAPTOP",
        [_olm(bob, "PHONE", "m1"), _olm(bob, "PHONE", "m2"), _olm(bob, "GHOST", "m3")],
        T0,
        ttl_ms=HOUR,
        max_queued=10,
    )
    assert [m.message_id for m in sent.queued] == ["m1", "m2"]
    assert sent.undeliverable == [(bob.id, "GHOST")]
    # A retry with the same message ids stores nothing new.
    retry = await store.queue_to_device(
        ada.id, "LAPTOP", [_olm(bob, "PHONE", "m1")], T0, ttl_ms=HOUR, max_queued=10
    )
    assert retry.queued == []
    pending = await store.pending_to_device(bob.id, "PHONE", T0, 100)
    assert pending == sent.queued
    assert (pending[0].sender_id, pending[0].sender_device) == (ada.id, "LAPTOP")
    # Another user's device cannot acknowledge them; the recipient can, once.
    assert await store.ack_to_device(ada.id, "LAPTOP", [pending[0].id]) == 0
    assert await store.ack_to_device(bob.id, "PHONE", [pending[0].id]) == 1
    assert await store.ack_to_device(bob.id, "PHONE", [pending[0].id]) == 0
    assert await store.pending_to_device(bob.id, "PHONE", T0, 100) == pending[1:]


async def test_to_device_messages_expire(store: Store) -> None:
    ada, bob = await make_user(store, "ada"), await make_user(store, "bob")
    await _device(store, ada, "LAPTOP")
    await _device(store, bob, "PHONE")
    await store.queue_to_device(
        ada.id, "LAPTOP", [_olm(bob, "PHONE", "m1")], T0, ttl_ms=1000, max_queued=10
    )
    assert len(await store.pending_to_device(bob.id, "PHONE", T0 + 999, 100)) == 1
    assert await store.pending_to_device(bob.id, "PHONE", T0 + 1000, 100) == []
    assert await store.purge_to_device(T0 + 1000) == 1


async def test_a_full_queue_refuses_the_whole_request(store: Store) -> None:
    ada, bob = await make_user(store, "ada"), await make_user(store, "bob")
    await _device(store, ada, "LAPTOP")
    await _device(store, bob, "PHONE")
    batch = [_olm(bob, "PHONE", f"m{i}") for i in range(3)]
    with pytest.raises(QueueFull):
        await store.queue_to_device(ada.id, "LAPTOP", batch, T0, ttl_ms=HOUR, max_queued=2)
    assert await store.pending_to_device(bob.id, "PHONE", T0, 100) == []
