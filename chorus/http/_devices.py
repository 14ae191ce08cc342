"""The key directory of end-to-end encryption: `/api/v1/devices`, `/api/v1/keys/...`.

A device belongs to the session that registered it (docs/e2e.md): only that
session uploads its one-time keys or reads its queue, while any signed-in
user reads the public keys of anyone's devices and claims their one-time
keys (to start an Olm session). Every signature is verified here, at the
boundary, before anything is stored; the server never holds a private key.
"""

from __future__ import annotations

from typing import Any, Final

import attrs

from chorus import e2e, protocol
from chorus.persistence import ClaimedKey, Conflict, Device, KeyCounts, OneTimeKey, now_ms
from chorus.protocol import MAX_ID_CHARS, MAX_KEY_CHARS, StrSpec
from chorus.text import NAME_PATTERN, name_problem

from ._errors import ApiError, bad_request, forbidden, not_found
from ._input import nested, nested_list, text, texts
from ._routing import API_PREFIX, Call, Reply, RouteTable

table = RouteTable("devices")

ALGORITHMS: Final = (protocol.OLM, protocol.MEGOLM)
"""What every device speaks: Olm between devices, Megolm in rooms (docs/decisions.md)."""
DEVICE_ID: Final = StrSpec(1, MAX_ID_CHARS, spaceless=True)
"""A device id in a path: 1-64 characters, no whitespace or controls."""
_MAX_DISPLAY_NAME: Final = 64
OWN_DEVICE_ERRORS: Final = {
    403: "The device belongs to another of your sessions.",
    404: "You have no such live device.",
}
"""What a route on one of the caller's devices (`own_device`) may answer."""


# -- input -----------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class IdentityKeys:
    """A device's public identity keys, each the unpadded base64 of 32 bytes."""

    curve25519: str = text(
        1, MAX_KEY_CHARS, "The Olm identity key (Curve25519).", pattern=e2e.KEY_PATTERN
    )
    ed25519: str = text(1, MAX_KEY_CHARS, "The signing key (Ed25519).", pattern=e2e.KEY_PATTERN)


@attrs.frozen(kw_only=True)
class NewDevice:
    """A device of this session, signed by itself (see docs/e2e.md, "Signatures")."""

    display_name: str = text(
        0,
        _MAX_DISPLAY_NAME,
        "Shown to the user's peers: empty, or a name with a visible character (no control,"
        " line break or bidi character).",
        default="",
        pattern=NAME_PATTERN,
    )
    algorithms: tuple[str, ...] = texts(
        2,
        2,
        (1, 64),
        "Both the Olm and the Megolm algorithm, in the order signed.",
        unique=True,
        choices=ALGORITHMS,
    )
    keys: IdentityKeys = nested(IdentityKeys, "The device's public keys.")
    signature: str = text(
        1,
        MAX_KEY_CHARS,
        "Ed25519 signature of {user_id, device_id, algorithms, keys}.",
        pattern=e2e.BASE64_PATTERN,
    )


@attrs.frozen(kw_only=True)
class SignedKey:
    """A Curve25519 key for a peer to start an Olm session, signed by the device."""

    key_id: str = text(1, MAX_ID_CHARS, "The device's id for this key.")
    key: str = text(
        1, MAX_KEY_CHARS, "The public key (unpadded base64 of 32 bytes).", pattern=e2e.KEY_PATTERN
    )
    signature: str = text(
        1,
        MAX_KEY_CHARS,
        "Ed25519 signature of {user_id, device_id, key_id, key, fallback}.",
        pattern=e2e.BASE64_PATTERN,
    )


@attrs.frozen(kw_only=True)
class KeyUpload:
    """One-time keys to add, and a fallback key to replace the current one."""

    one_time_keys: tuple[SignedKey, ...] = nested_list(
        SignedKey, 0, 100, 'Signed one-time keys ("fallback": false).', default=()
    )
    fallback_key: SignedKey | None = nested(
        SignedKey, 'A signed fallback key ("fallback": true).', default=None
    )


@attrs.frozen(kw_only=True)
class DeviceRef:
    """One device of one user."""

    user_id: str = text(1, MAX_ID_CHARS, "The device's user.")
    device_id: str = text(1, MAX_ID_CHARS, "The device.")


@attrs.frozen(kw_only=True)
class KeyClaim:
    """The devices to take one key of each (to start an Olm session with each)."""

    devices: tuple[DeviceRef, ...] = nested_list(DeviceRef, 1, 100, "The devices.")


@attrs.frozen(kw_only=True)
class KeyQuery:
    """The users whose devices to list."""

    user_ids: tuple[str, ...] = texts(1, 100, (1, MAX_ID_CHARS), "The users.", unique=True)


# -- views -----------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class DeviceKeysView:
    curve25519: str
    ed25519: str


@attrs.frozen(kw_only=True)
class DeviceView:
    """A device's public identity. Verify `signature` yourself: the server may lie."""

    user_id: str
    device_id: str
    display_name: str
    algorithms: list[str]
    keys: DeviceKeysView
    signature: str
    created_at: int


@attrs.frozen(kw_only=True)
class DeviceHolderView:
    """A device, as answered to its registration."""

    device: DeviceView


@attrs.frozen(kw_only=True)
class DeviceListView:
    """Devices, by user then registration time."""

    devices: list[DeviceView]


@attrs.frozen(kw_only=True)
class DeviceDirectoryView:
    """The live devices of each user asked about ([] for an unknown user)."""

    devices: dict[str, list[DeviceView]]


@attrs.frozen(kw_only=True)
class KeyCountsView:
    """What the device has left for peers to claim."""

    one_time_key_count: int
    fallback_key: bool


@attrs.frozen(kw_only=True)
class ClaimedKeyView:
    """A key taken for one device; `fallback` when its one-time keys were exhausted."""

    user_id: str
    device_id: str
    key_id: str
    key: str
    signature: str
    fallback: bool


@attrs.frozen(kw_only=True)
class DeviceRefView:
    user_id: str
    device_id: str


@attrs.frozen(kw_only=True)
class ClaimView:
    """One key per device that has any; `missing` lists those without (or not live)."""

    keys: list[ClaimedKeyView]
    missing: list[DeviceRefView]


def device_view(device: Device) -> DeviceView:
    return DeviceView(
        user_id=device.user_id,
        device_id=device.device_id,
        display_name=device.display_name,
        algorithms=list(device.algorithms),
        keys=DeviceKeysView(curve25519=device.curve25519, ed25519=device.ed25519),
        signature=device.signature,
        created_at=device.created_at,
    )


# -- checks ----------------------------------------------------------------------------


def check_device_id(device_id: str) -> None:
    """400 unless `device_id` (from a path) follows `DEVICE_ID`."""
    if (reason := DEVICE_ID.violation(device_id)) is not None:
        raise bad_request(protocol.ErrorCode.INVALID_VALUE, f"device_id: {reason}")


def check_pattern(field: str, value: str, *, key: bool = False) -> None:
    """400 unless `value` follows the published pattern of `field` (a key, or base64)."""
    if not (e2e.is_public_key(value) if key else e2e.is_base64(value)):
        rule = "the base64 of 32 bytes" if key else "base64"
        raise bad_request(protocol.ErrorCode.INVALID_VALUE, f"{field}: must be {rule}")


def bad_signature(what: str) -> ApiError:
    return ApiError(400, "bad_signature", f"the signature of {what} does not verify")


async def own_device(call: Call[Any], device_id: str) -> Device:
    """The caller's live device `device_id`, which must be this session's (else 403).

    404 when the user has no such live device. Another session of the same
    user is refused too: a device's keys and queue belong to the session
    that holds its private keys.
    """
    assert call.principal is not None
    device = await call.services.store.live_device(call.user_id, device_id, now_ms())
    if device is None:
        raise not_found(f"you have no device {device_id}")
    if device.session_id != call.principal.session_id:
        raise forbidden(f"device {device_id} belongs to another of your sessions")
    return device


async def within_rate(call: Call[Any], kind: str) -> None:
    """429 when the caller makes `kind` requests faster than `e2e.REQUESTS_PER_SECOND`."""
    allowed = await call.services.limiter.allow(
        f"limit:{kind}:{call.user_id}", rate=e2e.REQUESTS_PER_SECOND, burst=e2e.REQUEST_BURST
    )
    if not allowed:
        raise ApiError(
            429, protocol.ErrorCode.RATE_LIMITED, f"too many {kind} requests", {"Retry-After": "1"}
        )


def _checked_key(device: Device, key: SignedKey, *, fallback: bool) -> OneTimeKey:
    check_pattern(f"key {key.key_id}", key.key, key=True)
    check_pattern(f"key {key.key_id}: signature", key.signature)
    signed = {
        "user_id": device.user_id,
        "device_id": device.device_id,
        "key_id": key.key_id,
        "key": key.key,
        "fallback": fallback,
    }
    if not e2e.verify(device.ed25519, key.signature, signed):
        raise bad_signature(f"key {key.key_id}")
    return OneTimeKey(key_id=key.key_id, key=key.key, signature=key.signature)


# -- routes ----------------------------------------------------------------------------


@table.route(
    "PUT",
    f"{API_PREFIX}/devices/{{device_id}}",
    summary="Register this session's device",
    input=NewDevice,
    responses={200: DeviceHolderView, 201: DeviceHolderView},
    errors={
        400: "A key is not a 32-byte key, the algorithms are not Olm and Megolm, or"
        " `bad_signature`.",
        409: "`device_exists`: the device id is live in another session with other keys.",
    },
    path_specs={"device_id": DEVICE_ID},
)
async def register_device(call: Call[NewDevice], device_id: str) -> Reply:
    """201 when registered now; 200 when it existed with the same keys (its display name is
    updated, and it moves to this session). A session has one device: registering another
    id replaces it."""
    check_device_id(device_id)
    given = call.input
    check_pattern("keys.curve25519", given.keys.curve25519, key=True)
    check_pattern("keys.ed25519", given.keys.ed25519, key=True)
    check_pattern("signature", given.signature)
    signed = {
        "user_id": call.user_id,
        "device_id": device_id,
        "algorithms": list(given.algorithms),
        "keys": {"curve25519": given.keys.curve25519, "ed25519": given.keys.ed25519},
    }
    if not e2e.verify(given.keys.ed25519, given.signature, signed):
        raise bad_signature("the device keys")
    if given.display_name and (problem := name_problem(given.display_name)) is not None:
        raise bad_request(protocol.ErrorCode.INVALID_VALUE, f"display_name: {problem}")
    assert call.principal is not None
    device = Device(
        user_id=call.user_id,
        device_id=device_id,
        session_id=call.principal.session_id,
        display_name=given.display_name,
        algorithms=given.algorithms,
        curve25519=given.keys.curve25519,
        ed25519=given.keys.ed25519,
        signature=given.signature,
        created_at=0,  # the store's time of registration
    )
    try:
        stored, created = await call.services.store.register_device(device, now_ms())
    except Conflict as exc:
        raise ApiError(409, "device_exists", str(exc)) from exc
    return Reply(201 if created else 200, DeviceHolderView(device=device_view(stored)))


@table.route(
    "GET", f"{API_PREFIX}/devices", summary="Your devices", responses={200: DeviceListView}
)
async def list_my_devices(call: Call[object]) -> Reply:
    """Your live devices, one per live session that registered one."""
    found = await call.services.store.live_devices([call.user_id], now_ms())
    return Reply(200, DeviceListView(devices=[device_view(d) for d in found]))


@table.route(
    "DELETE",
    f"{API_PREFIX}/devices/{{device_id}}",
    summary="Remove one of your devices",
    responses={204: None},
    errors={404: "You have no such live device."},
    path_specs={"device_id": DEVICE_ID},
)
async def delete_device(call: Call[object], device_id: str) -> Reply:
    """Any session of yours may remove any of your devices, with its keys and queue."""
    check_device_id(device_id)
    if not await call.services.store.delete_device(call.user_id, device_id, now_ms()):
        raise not_found(f"you have no device {device_id}")
    return Reply(204)


@table.route(
    "GET",
    f"{API_PREFIX}/users/{{user_id}}/devices",
    summary="A user's devices (the key directory)",
    responses={200: DeviceListView},
    errors={404: "No such user."},
)
async def list_user_devices(call: Call[object], user_id: str) -> Reply:
    """The user's live devices with their public keys, oldest first."""
    store = call.services.store
    if await store.get_user(user_id) is None:
        raise not_found(f"no user {user_id}")
    found = await store.live_devices([user_id], now_ms())
    return Reply(200, DeviceListView(devices=[device_view(d) for d in found]))


@table.route(
    "POST",
    f"{API_PREFIX}/keys/query",
    summary="Several users' devices",
    input=KeyQuery,
    responses={200: DeviceDirectoryView},
)
async def query_keys(call: Call[KeyQuery]) -> Reply:
    """Each user's live devices; an unknown user has none."""
    found = await call.services.store.live_devices(call.input.user_ids, now_ms())
    directory: dict[str, list[DeviceView]] = {user_id: [] for user_id in call.input.user_ids}
    for device in found:
        directory[device.user_id].append(device_view(device))
    return Reply(200, DeviceDirectoryView(devices=directory))


@table.route(
    "POST",
    f"{API_PREFIX}/devices/{{device_id}}/keys",
    summary="Upload one-time keys and a fallback key",
    input=KeyUpload,
    responses={200: KeyCountsView},
    errors={
        400: "A key is not a 32-byte key, a key id names two keys (in this request or"
        " with one uploaded before), more than"
        f" {e2e.MAX_UNCLAIMED_KEYS} unclaimed keys, or `bad_signature`.",
    }
    | OWN_DEVICE_ERRORS,
    path_specs={"device_id": DEVICE_ID},
)
async def upload_keys(call: Call[KeyUpload], device_id: str) -> Reply:
    """Adds the one-time keys (a retry of the same key ids is harmless) and replaces the
    fallback key; answers the counts after."""
    device = await own_device(call, device_id)
    given = call.input
    keys = [_checked_key(device, key, fallback=False) for key in given.one_time_keys]
    fallback = None
    if given.fallback_key is not None:
        fallback = _checked_key(device, given.fallback_key, fallback=True)
    try:
        counts = await call.services.store.upload_keys(
            call.user_id, device_id, keys, fallback, max_unclaimed=e2e.MAX_UNCLAIMED_KEYS
        )
    except ValueError as exc:
        raise bad_request(protocol.ErrorCode.INVALID_VALUE, str(exc)) from exc
    return Reply(
        200,
        KeyCountsView(one_time_key_count=counts.one_time_keys, fallback_key=counts.fallback_key),
    )


@table.route(
    "GET",
    f"{API_PREFIX}/devices/{{device_id}}/keys",
    summary="Your device's key counts",
    responses={200: KeyCountsView},
    errors=OWN_DEVICE_ERRORS,
    path_specs={"device_id": DEVICE_ID},
)
async def key_counts(call: Call[object], device_id: str) -> Reply:
    """How many one-time keys the device has left, and whether it has a fallback key."""
    await own_device(call, device_id)
    counts = await call.services.store.key_counts(call.user_id, device_id)
    return Reply(
        200,
        KeyCountsView(one_time_key_count=counts.one_time_keys, fallback_key=counts.fallback_key),
    )


@table.route(
    "POST",
    f"{API_PREFIX}/keys/claim",
    summary="Claim one key of each device",
    input=KeyClaim,
    responses={200: ClaimView},
    errors={429: f"More than {e2e.REQUESTS_PER_SECOND:g} claims a second (rate_limited)."},
)
async def claim_keys(call: Call[KeyClaim]) -> Reply:
    """Takes one one-time key per device, atomically (never the same key twice, on any node);
    a device out of one-time keys gives its fallback key. A device left with fewer than
    10 one-time keys is told so on its connections (`one_time_keys_low`)."""
    await within_rate(call, "claim")
    wanted = [(ref.user_id, ref.device_id) for ref in call.input.devices]
    claimed = await call.services.store.claim_keys(wanted, now_ms())
    keys: list[ClaimedKeyView] = []
    missing: list[DeviceRefView] = []
    for (user_id, device_id), claim in zip(wanted, claimed, strict=True):
        if claim is None:
            missing.append(DeviceRefView(user_id=user_id, device_id=device_id))
            continue
        keys.append(_claimed_view(claim))
        if claim.left.one_time_keys < e2e.LOW_WATER:
            await call.services.device_mail.keys_low(
                user_id, device_id, claim.left.one_time_keys, claim.left.fallback_key
            )
    return Reply(200, ClaimView(keys=keys, missing=missing))


def _counts_view(counts: KeyCounts) -> KeyCountsView:
    return KeyCountsView(one_time_key_count=counts.one_time_keys, fallback_key=counts.fallback_key)


def _claimed_view(claim: ClaimedKey) -> ClaimedKeyView:
    return ClaimedKeyView(
        user_id=claim.user_id,
        device_id=claim.device_id,
        key_id=claim.key.key_id,
        key=claim.key.key,
        signature=claim.key.signature,
        fallback=claim.fallback,
    )
