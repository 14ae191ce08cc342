"""Devices as a client knows them, and how far it trusts each."""

from __future__ import annotations

import enum
from typing import Any

import attrs

from ._wire import ALGORITHMS, signature_valid


class Trust(enum.Enum):
    """How much a device is trusted, for flagging what it sends."""

    OWN = "own"
    """This very device."""
    VERIFIED = "verified"
    """Its keys were compared out of band (`/verify`) and confirmed."""
    UNVERIFIED = "unverified"
    """Listed by the server with a valid self-signature, never verified: the server
    could have made it up."""
    UNKNOWN = "unknown"
    """Not in the directory as fetched, or its keys differ from it."""


@attrs.frozen
class Device:
    """One device of one user, with the public keys the directory gave for it."""

    user_id: str
    device_id: str
    curve25519: str
    ed25519: str
    display_name: str = ""

    @property
    def key(self) -> tuple[str, str]:
        return (self.user_id, self.device_id)

    def to_json(self) -> dict[str, str]:
        return attrs.asdict(self)


def parse_device(user_id: str, obj: Any) -> Device | None:
    """A directory entry for `user_id` if it is well formed and self-signed, else None.

    The signature only proves the entry was not altered after its owner made it,
    not who the owner is: that takes verification.
    """
    if not isinstance(obj, dict) or obj.get("user_id") != user_id:
        return None
    keys = obj.get("keys")
    device_id = obj.get("device_id")
    if not isinstance(keys, dict) or not isinstance(device_id, str):
        return None
    curve, ed = keys.get("curve25519"), keys.get("ed25519")
    if not isinstance(curve, str) or not isinstance(ed, str):
        return None
    signed = {
        "user_id": user_id,
        "device_id": device_id,
        "algorithms": obj.get("algorithms"),
        "keys": {"curve25519": curve, "ed25519": ed},
        "signature": obj.get("signature"),
    }
    if obj.get("algorithms") != list(ALGORITHMS) or not signature_valid(ed, signed):
        return None
    name = obj.get("display_name")
    return Device(user_id, device_id, curve, ed, name if isinstance(name, str) else "")
