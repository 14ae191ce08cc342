"""Moving `CryptoMachine` outputs between in-process machines, as the server would relay them."""

from __future__ import annotations

from typing import Any

from chorus.client.e2e import CryptoMachine, Device, ToDevice


def listing(machine: CryptoMachine, display_name: str = "") -> dict[str, Any]:
    """The directory entry the server would list for `machine`'s device."""
    return {
        "user_id": machine.user_id,
        "device_id": machine.device_id,
        **machine.device_keys(display_name),
    }


def introduce(machine: CryptoMachine, *others: CryptoMachine) -> None:
    """`machine` fetches the device lists of the others' users (all their listed devices)."""
    users: dict[str, list[dict[str, Any]]] = {}
    for other in others:
        users.setdefault(other.user_id, []).append(listing(other))
    for user_id, entries in users.items():
        machine.update_devices(user_id, entries)


def claim(owner: CryptoMachine, *, fallback: bool = False) -> dict[str, Any]:
    """One published key of `owner`, as `POST /keys/claim` hands it out."""
    key = owner.new_fallback_key() if fallback else owner.new_one_time_keys(1)[0]
    owner.mark_published()
    return {**key, "fallback": fallback}


def device(machine: CryptoMachine) -> Device:
    return machine.own_device


def relay(sender: CryptoMachine, to: CryptoMachine, payload: dict[str, Any]) -> dict[str, Any]:
    """Encrypt `payload` for `to` (opening a session with a fresh key if needed)."""
    if not sender.has_session(to.own_device):
        sender.start_session(to.own_device, claim(to))
    return sender.encrypt_to_device(to.own_device, payload)


def share_room_keys(sender: CryptoMachine, room: str, *readers: CryptoMachine) -> list[ToDevice]:
    """Give every reader the sender's current room key for `room`; what each received."""
    by_key = {r.own_device.key: r for r in readers}
    shares = sender.room_key_shares(room, [r.own_device for r in readers])
    received = []
    for target, payload in shares:
        reader = by_key[target.key]
        envelope = relay(sender, reader, payload)
        result = reader.decrypt_to_device(sender.user_id, sender.device_id, envelope)
        assert result is not None
        received.append(result)
    sender.mark_shared(room, [target for target, _ in shares])
    return received
