"""To-device messages and key alerts reach a device's open connections, on every node.

A device (end-to-end encryption, docs/e2e.md) connects with `hello`'s
`device_id`, to any node. Its to-device messages are queued in the store;
`DeviceMail.queued` wakes the device's connections here and publishes a
wake-up on the bus for the other nodes, whose connections then read the
store. The bus carries only ids and never a message's content, so losing a
publication delays nothing for long: the device gets every queued message
when it next connects (or fetches them over HTTP). `keys_low` sends the
`one_time_keys_low` frame the same way.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Callable, Iterable, Sequence
from typing import Final, Protocol

import structlog
import trio

from chorus import protocol
from chorus.cluster import Bus

_log = structlog.get_logger("chorus.devices")

DEVICES_TOPIC: Final = "devices"
"""Bus topic every node listens to: `<origin node> <user id> <device id> <payload>`, the
payload being `wake` or a `one_time_keys_low` frame."""
QUEUE_LIMIT: Final = 10_000
"""Wake-ups from other nodes waiting here; beyond it they are dropped (the device still
gets its messages at its next connection or HTTP fetch)."""
_WAKE: Final = b"wake"


class DeviceConnection(Protocol):
    """What a connection offers (a `ChatConnection` fits)."""

    @property
    def device_id(self) -> str | None: ...

    def send(self, payload: bytes) -> bool: ...

    async def deliver_to_device(self) -> None:
        """Send the device's queued messages this connection has not sent yet."""


ConnectionsOf = Callable[[str], Sequence[DeviceConnection]]


class DeviceMail:
    """Wakes devices' connections here and elsewhere; each node reads the store itself."""

    def __init__(self, connections_of: ConnectionsOf, bus: Bus | None) -> None:
        self._connections_of = connections_of
        self._bus = bus
        self._origin = secrets.token_hex(6).encode()
        self._incoming, self._received = trio.open_memory_channel[tuple[str, str]](QUEUE_LIMIT)

    async def queued(self, recipients: Iterable[tuple[str, str]]) -> None:
        """Messages were queued for these (user id, device id): deliver them where connected."""
        for user_id, device_id in dict.fromkeys(recipients):
            await self._wake(user_id, device_id)
            await self._publish(user_id, device_id, _WAKE)

    async def keys_low(self, user_id: str, device_id: str, count: int, fallback_key: bool) -> None:
        """The device has `count` one-time keys left: ask its connections to upload more."""
        payload = protocol.encode(
            protocol.OneTimeKeysLow(device_id=device_id, count=count, fallback_key=fallback_key)
        )
        self._tell(user_id, device_id, payload)
        await self._publish(user_id, device_id, payload)

    def delivered_elsewhere(self, envelope: bytes) -> None:
        """A bus envelope from `DEVICES_TOPIC`: act on it for this node's connections."""
        origin, _, rest = envelope.partition(b" ")
        if origin == self._origin:
            return  # done here already
        user, _, rest = rest.partition(b" ")
        device, _, payload = rest.partition(b" ")
        user_id, device_id = user.decode(errors="replace"), device.decode(errors="replace")
        if payload == _WAKE:
            try:
                self._incoming.send_nowait((user_id, device_id))
            except trio.WouldBlock:
                _log.warning("devices.wake_dropped", reason="queue full")
            return
        try:
            frame = protocol.decode_server_frame(payload)
        except protocol.ProtocolError as exc:  # not from a Chorus node of ours
            _log.warning("devices.dropped", reason="malformed", error=str(exc))
            return
        if isinstance(frame, protocol.OneTimeKeysLow):
            self._tell(user_id, device_id, payload)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Deliver what other nodes queued, in order, until cancelled."""
        task_status.started()
        if self._bus is None:
            await trio.sleep(math.inf)
        async for user_id, device_id in self._received:
            await self._wake(user_id, device_id)

    def _connections(self, user_id: str, device_id: str) -> list[DeviceConnection]:
        return [c for c in self._connections_of(user_id) if c.device_id == device_id]

    async def _wake(self, user_id: str, device_id: str) -> None:
        for connection in self._connections(user_id, device_id):
            await connection.deliver_to_device()

    def _tell(self, user_id: str, device_id: str, payload: bytes) -> None:
        for connection in self._connections(user_id, device_id):
            connection.send(payload)

    async def _publish(self, user_id: str, device_id: str, payload: bytes) -> None:
        if self._bus is None:
            return
        envelope = b" ".join((self._origin, user_id.encode(), device_id.encode(), payload))
        try:
            await self._bus.publish(DEVICES_TOPIC, envelope)
        except Exception as exc:  # best effort: the store holds the queue
            _log.warning("devices.not_published", error=str(exc))
