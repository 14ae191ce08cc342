"""The `Bus`: how a node hears about events stored by other nodes (DESIGN.md §6).

Like Phoenix.PubSub's adapter it only moves opaque payloads between nodes;
fan-out to local connections stays with the room actors. A bus is allowed to
lose messages (Redis pub/sub is at-most-once): receivers detect the gap in
sequence numbers and read what they missed from the store.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

Deliver = Callable[[bytes], None]
"""Called with each payload published on a subscribed topic; must not block."""


class Subscription(Protocol):
    async def unsubscribe(self) -> None:
        """Stop delivering; safe to call more than once."""


class Bus(Protocol):
    async def publish(self, topic: str, payload: bytes) -> None:
        """Send `payload` to every node subscribed to `topic` (at most once).

        Returns without waiting for the network: a publication may be lost.
        """

    async def subscribe(self, topic: str, deliver: Deliver) -> Subscription:
        """Call `deliver` for every payload published on `topic` from now on."""


class _LocalSubscription:
    def __init__(self, bus: LocalBus, topic: str, deliver: Deliver) -> None:
        self._bus = bus
        self._topic = topic
        self._deliver = deliver

    async def unsubscribe(self) -> None:
        subscribers = self._bus._topics.get(self._topic)
        if subscribers is not None:
            subscribers.discard(self._deliver)
            if not subscribers:
                del self._bus._topics[self._topic]


class LocalBus:
    """A bus inside one process: links several in-process nodes (tests, and one-node use)."""

    def __init__(self) -> None:
        self._topics: dict[str, set[Deliver]] = {}

    async def publish(self, topic: str, payload: bytes) -> None:
        for deliver in list(self._topics.get(topic, ())):
            deliver(payload)

    async def subscribe(self, topic: str, deliver: Deliver) -> Subscription:
        self._topics.setdefault(topic, set()).add(deliver)
        return _LocalSubscription(self, topic, deliver)

    def topics(self) -> list[str]:
        """Topics with at least one subscriber."""
        return list(self._topics)
