"""The key directory of end-to-end encryption: devices, one-time keys and fallback keys.

A device (docs/e2e.md) belongs to the session that registered it and lives
as long as that session: every read joins `sessions` and skips a device
whose session is revoked or expired, so ending a session takes its device
out of the directory in the same instant, on every node, with no second
write to forget. The store keeps public keys and signatures only; checking
the signatures is the caller's job (`chorus.e2e`), before it calls here.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Final, Protocol

import attrs

from .._errors import Conflict, NotFound
from .._rows import Row
from .._sql import Engine, Tx, execute, execute_many, fetch, fetch_one, fetch_value

LIVE: Final = (
    "JOIN sessions s ON s.id = d.session_id AND s.revoked_at IS NULL AND s.expires_at > $1"
)
"""Joins a device `d` to its session `s` if that is live at `$1` (the caller's `now`)."""


@attrs.frozen(kw_only=True)
class Device:
    """One device's public identity, as the directory shows it."""

    user_id: str
    device_id: str
    session_id: str
    display_name: str
    algorithms: tuple[str, ...]
    curve25519: str
    ed25519: str
    signature: str
    """The device's Ed25519 signature of its keys (checked when registered)."""
    created_at: int

    def same_keys(self, other: Device) -> bool:
        """Whether `other` declares the same identity keys and algorithms."""
        return (self.algorithms, self.curve25519, self.ed25519) == (
            other.algorithms,
            other.curve25519,
            other.ed25519,
        )


@attrs.frozen(kw_only=True)
class OneTimeKey:
    """A signed Curve25519 key a peer claims to start an Olm session with the device."""

    key_id: str
    key: str
    signature: str


@attrs.frozen(kw_only=True)
class KeyCounts:
    one_time_keys: int
    """Unclaimed one-time keys."""
    fallback_key: bool
    """Whether the device has a fallback key."""


@attrs.frozen(kw_only=True)
class ClaimedKey:
    """A key taken by `Devices.claim_keys`, and what the device has left."""

    user_id: str
    device_id: str
    key: OneTimeKey
    fallback: bool
    """True when the one-time keys were exhausted and this is the (kept) fallback key."""
    left: KeyCounts


class Devices(Protocol):
    """Devices and their one-time keys (issue #18)."""

    async def register_device(self, device: Device, now: int) -> tuple[Device, bool]:
        """Store `device` for its session; True when created now.

        The same device id with the same keys is the same device: its display
        name is updated and it moves to `device.session_id` (False). Another
        device of that session is removed (a session has at most one). A
        device id whose device is live (in another session) with other keys
        raises `Conflict`; a dead one is replaced, with its keys and queue.
        `NotFound` for an unknown user or session.
        """
        ...

    async def live_device(self, user_id: str, device_id: str, now: int) -> Device | None:
        """The device if its session is live at `now`, else None."""
        ...

    async def live_devices(self, user_ids: Sequence[str], now: int) -> list[Device]:
        """The live devices of these users, by user then creation time."""
        ...

    async def delete_device(self, user_id: str, device_id: str, now: int) -> bool:
        """Remove the device with its keys and queue; False if it was not live."""
        ...

    async def upload_keys(
        self,
        user_id: str,
        device_id: str,
        keys: Sequence[OneTimeKey],
        fallback: OneTimeKey | None,
        *,
        max_unclaimed: int,
    ) -> KeyCounts:
        """Add one-time keys and (if given) replace the fallback key; the counts after.

        A key id names one key: given again (in this call or after an earlier
        one) it must come with the very same key and signature (a retry,
        stored once), else `ValueError`; so must an id given both as a
        one-time and as the fallback key. More than `max_unclaimed` unclaimed
        keys is a `ValueError` too. Nothing is stored when it raises.
        `NotFound` for an unknown device.
        """
        ...

    async def key_counts(self, user_id: str, device_id: str) -> KeyCounts:
        """The device's unclaimed one-time keys and whether it has a fallback key."""
        ...

    async def claim_keys(
        self, devices: Sequence[tuple[str, str]], now: int
    ) -> list[ClaimedKey | None]:
        """One key per (user id, device id), in order; None where the device is not live
        or has no key at all.

        A one-time key is deleted by the statement that returns it, so two
        claims (on any nodes) never get the same one; once they are all
        gone the fallback key is returned (and kept) with `fallback` True.
        """
        ...


class DevicesOnSql(Engine):
    """`Devices` for every engine."""

    async def register_device(self, device: Device, now: int) -> tuple[Device, bool]:
        """See `Devices.register_device`."""
        return await self._write(lambda: register_device(device, now))

    async def live_device(self, user_id: str, device_id: str, now: int) -> Device | None:
        """See `Devices.live_device`."""
        return await self._read(lambda: live_device(user_id, device_id, now))

    async def live_devices(self, user_ids: Sequence[str], now: int) -> list[Device]:
        """See `Devices.live_devices`."""
        return await self._read(lambda: live_devices(list(user_ids), now))

    async def delete_device(self, user_id: str, device_id: str, now: int) -> bool:
        """See `Devices.delete_device`."""
        return await self._write(lambda: delete_device(user_id, device_id, now))

    async def upload_keys(
        self,
        user_id: str,
        device_id: str,
        keys: Sequence[OneTimeKey],
        fallback: OneTimeKey | None,
        *,
        max_unclaimed: int,
    ) -> KeyCounts:
        """See `Devices.upload_keys`."""
        return await self._write(
            lambda: upload_keys(user_id, device_id, list(keys), fallback, max_unclaimed)
        )

    async def key_counts(self, user_id: str, device_id: str) -> KeyCounts:
        """See `Devices.key_counts`."""
        return await self._read(lambda: key_counts(user_id, device_id))

    async def claim_keys(
        self, devices: Sequence[tuple[str, str]], now: int
    ) -> list[ClaimedKey | None]:
        """See `Devices.claim_keys`."""
        return await self._write(lambda: claim_keys(list(devices), now))


_DEVICE = (
    "d.user_id, d.device_id, d.session_id, d.display_name, d.algorithms,"
    " d.curve25519, d.ed25519, d.signature, d.created_at"
)


def _device(row: Row) -> Device:
    return Device(
        user_id=row[0],
        device_id=row[1],
        session_id=row[2],
        display_name=row[3],
        algorithms=tuple(json.loads(row[4])),
        curve25519=row[5],
        ed25519=row[6],
        signature=row[7],
        created_at=int(row[8]),
    )


def register_device(device: Device, now: int) -> Tx[tuple[Device, bool]]:
    row = yield from fetch_one(
        f"SELECT {_DEVICE} FROM devices d WHERE d.user_id = $1 AND d.device_id = $2"
        " FOR NO KEY UPDATE OF d",
        device.user_id,
        device.device_id,
    )
    # A session has one device: another device id of this session makes way.
    yield from execute(
        "DELETE FROM devices WHERE session_id = $1 AND device_id <> $2",
        device.session_id,
        device.device_id,
    )
    if row is not None:
        stored = _device(row)
        if stored.same_keys(device):
            yield from execute(
                "UPDATE devices SET session_id = $3, display_name = $4"
                " WHERE user_id = $1 AND device_id = $2",
                device.user_id,
                device.device_id,
                device.session_id,
                device.display_name,
            )
            return attrs.evolve(
                stored, session_id=device.session_id, display_name=device.display_name
            ), False
        alive = yield from live_device(device.user_id, device.device_id, now)
        if alive is not None:
            raise Conflict(f"device {device.device_id!r} exists with other keys")
        yield from execute(
            "DELETE FROM devices WHERE user_id = $1 AND device_id = $2",
            device.user_id,
            device.device_id,
        )
    session_user = yield from fetch_value(
        "SELECT user_id FROM sessions WHERE id = $1", device.session_id
    )
    if session_user != device.user_id:
        raise NotFound(f"no session {device.session_id!r} of user {device.user_id!r}")
    inserted = yield from fetch_value(
        "INSERT INTO devices (user_id, device_id, session_id, display_name, algorithms,"
        " curve25519, ed25519, signature, created_at)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        " ON CONFLICT (user_id, device_id) DO NOTHING RETURNING 1",
        device.user_id,
        device.device_id,
        device.session_id,
        device.display_name,
        json.dumps(list(device.algorithms)),
        device.curve25519,
        device.ed25519,
        device.signature,
        now,
    )
    if inserted is None:  # registered at this very moment by another request
        raise Conflict(f"device {device.device_id!r} was registered concurrently")
    return attrs.evolve(device, created_at=now), True


def live_device(user_id: str, device_id: str, now: int) -> Tx[Device | None]:
    row = yield from fetch_one(
        f"SELECT {_DEVICE} FROM devices d {LIVE} WHERE d.user_id = $2 AND d.device_id = $3",
        now,
        user_id,
        device_id,
    )
    return None if row is None else _device(row)


def live_devices(user_ids: list[str], now: int) -> Tx[list[Device]]:
    rows = yield from fetch(
        f"SELECT {_DEVICE} FROM devices d {LIVE} WHERE d.user_id = ANY($2)"
        " ORDER BY d.user_id, d.created_at, d.device_id",
        now,
        user_ids,
    )
    return [_device(row) for row in rows]


def delete_device(user_id: str, device_id: str, now: int) -> Tx[bool]:
    alive = yield from live_device(user_id, device_id, now)
    yield from execute(
        "DELETE FROM devices WHERE user_id = $1 AND device_id = $2", user_id, device_id
    )
    return alive is not None


def upload_keys(
    user_id: str,
    device_id: str,
    keys: list[OneTimeKey],
    fallback: OneTimeKey | None,
    max_unclaimed: int,
) -> Tx[KeyCounts]:
    exists = yield from fetch_value(
        "SELECT 1 FROM devices WHERE user_id = $1 AND device_id = $2 FOR NO KEY UPDATE",
        user_id,
        device_id,
    )
    if exists is None:
        raise NotFound(f"no device {device_id!r} of user {user_id!r}")
    keys = _one_per_id(keys, fallback)
    given = [*keys, *([fallback] if fallback is not None else [])]
    stored = yield from fetch(
        "SELECT key_id, key, signature FROM one_time_keys"
        " WHERE user_id = $1 AND device_id = $2 AND key_id = ANY($3)",
        user_id,
        device_id,
        [key.key_id for key in given],
    )
    known = {row[0]: OneTimeKey(key_id=row[0], key=row[1], signature=row[2]) for row in stored}
    for key in given:
        if key.key_id in known and known[key.key_id] != key:
            raise ValueError(f"key id {key.key_id!r} was uploaded before with another key")
    if fallback is not None and fallback.key_id not in known:
        yield from execute(
            "DELETE FROM one_time_keys WHERE user_id = $1 AND device_id = $2 AND fallback",
            user_id,
            device_id,
        )
        yield from _insert_keys(user_id, device_id, [fallback], fallback=True)
    yield from _insert_keys(
        user_id, device_id, [key for key in keys if key.key_id not in known], fallback=False
    )
    counts = yield from key_counts(user_id, device_id)
    if counts.one_time_keys > max_unclaimed:
        raise ValueError(
            f"a device keeps at most {max_unclaimed} unclaimed one-time keys"
            f" ({counts.one_time_keys} with these)"
        )
    return counts


def _one_per_id(keys: list[OneTimeKey], fallback: OneTimeKey | None) -> list[OneTimeKey]:
    """`keys` with identical repeats dropped; `ValueError` if one id names two keys.

    Without this a repeated id reached the insert and failed on the primary
    key, a 500 instead of a refusal.
    """
    unique: dict[str, OneTimeKey] = {}
    for key in keys:
        if unique.setdefault(key.key_id, key) != key:
            raise ValueError(f"key id {key.key_id!r} is given twice with different keys")
    if fallback is not None and fallback.key_id in unique:
        raise ValueError(f"key id {fallback.key_id!r} is given as a one-time and a fallback key")
    return list(unique.values())


def _insert_keys(
    user_id: str, device_id: str, keys: list[OneTimeKey], *, fallback: bool
) -> Tx[None]:
    yield from execute_many(
        "INSERT INTO one_time_keys (user_id, device_id, key_id, key, signature, fallback)"
        " VALUES ($1, $2, $3, $4, $5, $6)",
        [(user_id, device_id, k.key_id, k.key, k.signature, fallback) for k in keys],
    )


def key_counts(user_id: str, device_id: str) -> Tx[KeyCounts]:
    row = yield from fetch_one(
        "SELECT count(*) FILTER (WHERE NOT fallback), count(*) FILTER (WHERE fallback)"
        " FROM one_time_keys WHERE user_id = $1 AND device_id = $2",
        user_id,
        device_id,
    )
    assert row is not None  # an aggregate always has a row
    return KeyCounts(one_time_keys=int(row[0]), fallback_key=bool(row[1]))


# Claims that raced for the same last keys find them gone; with keys left they try
# again (the locking subquery already skips keys deleted under it on PostgreSQL).
_CLAIM_ATTEMPTS: Final = 3


def claim_keys(devices: list[tuple[str, str]], now: int) -> Tx[list[ClaimedKey | None]]:
    claimed: list[ClaimedKey | None] = []
    for user_id, device_id in devices:
        alive = yield from live_device(user_id, device_id, now)
        claimed.append(None if alive is None else (yield from _claim_one(user_id, device_id)))
    return claimed


def _claim_one(user_id: str, device_id: str) -> Tx[ClaimedKey | None]:
    for _ in range(_CLAIM_ATTEMPTS):
        row = yield from fetch_one(
            "DELETE FROM one_time_keys WHERE user_id = $1 AND device_id = $2 AND key_id = ("
            " SELECT k.key_id FROM one_time_keys k"
            " WHERE k.user_id = $1 AND k.device_id = $2 AND NOT k.fallback"
            " ORDER BY k.key_id LIMIT 1 FOR NO KEY UPDATE OF k)"
            " AND NOT fallback RETURNING key_id, key, signature",
            user_id,
            device_id,
        )
        left = yield from key_counts(user_id, device_id)
        if row is not None:
            key = OneTimeKey(key_id=row[0], key=row[1], signature=row[2])
            return ClaimedKey(
                user_id=user_id, device_id=device_id, key=key, fallback=False, left=left
            )
        if left.one_time_keys == 0:
            break
    row = yield from fetch_one(
        "SELECT key_id, key, signature FROM one_time_keys"
        " WHERE user_id = $1 AND device_id = $2 AND fallback",
        user_id,
        device_id,
    )
    if row is None:
        return None
    key = OneTimeKey(key_id=row[0], key=row[1], signature=row[2])
    left = yield from key_counts(user_id, device_id)
    return ClaimedKey(user_id=user_id, device_id=device_id, key=key, fallback=True, left=left)
