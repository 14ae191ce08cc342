"""The server's limits for end-to-end encryption, and its stored envelopes in wire form."""

from __future__ import annotations

from typing import Final

import attrs
import orjson

from chorus import protocol
from chorus.persistence import ToDeviceMessage

MAX_QUEUED: Final = 1000
"""Most unexpired to-device messages waiting for one device; more are refused (429)."""
MAX_UNCLAIMED_KEYS: Final = 200
"""Most unclaimed one-time keys one device keeps."""
LOW_WATER: Final = 10
"""A claim that leaves a device fewer one-time keys than this alerts it."""
REQUESTS_PER_SECOND: Final = 10.0
REQUEST_BURST: Final = 50
"""Key claims and to-device sends one user may make (each kind counted apart, over all
nodes sharing Redis): claims drain other devices' keys, sends fill their queues."""


def olm_content(envelope: protocol.OlmEnvelope) -> str:
    """The text the store keeps for a to-device message's content (opaque to it)."""
    return orjson.dumps(attrs.asdict(envelope)).decode()


def to_device_event(message: ToDeviceMessage) -> protocol.ToDeviceEvent:
    """A queued message as its device receives it (WebSocket frame and HTTP alike)."""
    content = orjson.loads(message.content)
    return protocol.ToDeviceEvent(
        id=message.id,
        sender=message.sender_id,
        sender_device=message.sender_device,
        message_id=message.message_id,
        content=protocol.OlmEnvelope(
            algorithm=content["algorithm"],
            sender_key=content["sender_key"],
            ciphertext=protocol.OlmCiphertext(**content["ciphertext"]),
        ),
        sent_at=message.sent_at,
    )


def megolm_content(envelope: protocol.MegolmEnvelope) -> str:
    """The text the store keeps as the body of an encrypted message or edit."""
    return orjson.dumps(attrs.asdict(envelope)).decode()


def megolm_envelope(body: str) -> protocol.MegolmEnvelope | None:
    """The envelope an encrypted room's stored body holds; None for "" (deleted)."""
    if not body:
        return None
    return protocol.MegolmEnvelope(**orjson.loads(body))
