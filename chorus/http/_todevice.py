"""To-device messages over HTTP: `POST /api/v1/to-device` and a device's queue.

Sending queues opaque Olm envelopes in the store for each recipient device
and wakes the device's connections on every node (`DeviceMail`). A device
reads its queue over its WebSocket (`to_device` frames) or here, and
acknowledges what it processed; nothing leaves the queue otherwise, except
by expiring after `to_device_ttl`. The server relays Olm only: a content of
another algorithm is refused, so nothing travels between devices in
plaintext.
"""

from __future__ import annotations

import attrs

from chorus import e2e, protocol
from chorus.persistence import NewToDevice, QueueFull, now_ms
from chorus.protocol import MAX_CIPHERTEXT_CHARS, MAX_ID_CHARS, MAX_KEY_CHARS

from ._devices import (
    DEVICE_ID,
    OWN_DEVICE_ERRORS,
    DeviceRefView,
    check_pattern,
    own_device,
    within_rate,
)
from ._errors import ApiError
from ._input import choice, integer, nested, nested_list, text, texts
from ._routing import API_PREFIX, Call, Reply, RouteTable

table = RouteTable("to-device")


# -- input -----------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class OlmCiphertextInput:
    """One Olm message."""

    type: int = integer(0, 1, "0: a pre-key message (starts a session); 1: a normal one.")
    body: str = text(
        1, MAX_CIPHERTEXT_CHARS, "The ciphertext (base64).", pattern=e2e.BASE64_PATTERN
    )


@attrs.frozen(kw_only=True)
class OlmEnvelopeInput:
    """Olm ciphertext for one device; the server relays it unread."""

    algorithm: str = choice(protocol.OLM, description="The Olm algorithm, nothing else.")
    sender_key: str = text(
        1,
        MAX_KEY_CHARS,
        "The sending device's Curve25519 identity key.",
        pattern=e2e.BASE64_PATTERN,
    )
    ciphertext: OlmCiphertextInput = nested(OlmCiphertextInput, "The Olm message.")


@attrs.frozen(kw_only=True)
class OutgoingToDevice:
    """One message for one device."""

    user_id: str = text(1, MAX_ID_CHARS, "The recipient user.")
    device_id: str = text(1, MAX_ID_CHARS, "The recipient device.")
    message_id: str = text(1, MAX_ID_CHARS, "Your id for it: a retry is stored once.")
    content: OlmEnvelopeInput = nested(OlmEnvelopeInput, "The Olm envelope.")


@attrs.frozen(kw_only=True)
class ToDeviceBatch:
    """Messages from this session's device to other devices."""

    sender_device: str = text(1, MAX_ID_CHARS, "This session's device.")
    messages: tuple[OutgoingToDevice, ...] = nested_list(OutgoingToDevice, 1, 100, "The messages.")


@attrs.frozen(kw_only=True)
class PendingQuery:
    """How many queued messages to read."""

    limit: int = integer(1, 100, "At most this many, oldest first.", default=100)


@attrs.frozen(kw_only=True)
class ToDeviceAckInput:
    """The messages the device processed."""

    ids: tuple[str, ...] = texts(1, 100, (1, MAX_ID_CHARS), "Their `id`s.", unique=True)


# -- views -----------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class ToDeviceSentView:
    """How many messages were queued now (retries are not counted), and the recipients
    that are not live devices (nothing was queued for them)."""

    queued: int
    undeliverable: list[DeviceRefView]


@attrs.frozen(kw_only=True)
class ToDeviceMessageView:
    """A queued message, as the `to_device` frame has it (without `type`)."""

    id: str
    sender: str
    sender_device: str
    message_id: str
    content: protocol.OlmEnvelope
    sent_at: int


@attrs.frozen(kw_only=True)
class ToDeviceListView:
    """The device's queued messages, oldest first."""

    messages: list[ToDeviceMessageView]


@attrs.frozen(kw_only=True)
class ToDeviceAckedView:
    """How many messages were deleted."""

    deleted: int


def _envelope(index: int, given: OlmEnvelopeInput) -> protocol.OlmEnvelope:
    check_pattern(f"messages[{index}].content.sender_key", given.sender_key)
    check_pattern(f"messages[{index}].content.ciphertext.body", given.ciphertext.body)
    return protocol.OlmEnvelope(
        algorithm=protocol.OLM,
        sender_key=given.sender_key,
        ciphertext=protocol.OlmCiphertext(type=given.ciphertext.type, body=given.ciphertext.body),
    )


# -- routes ----------------------------------------------------------------------------


@table.route(
    "POST",
    f"{API_PREFIX}/to-device",
    summary="Send to-device messages",
    input=ToDeviceBatch,
    responses={200: ToDeviceSentView},
    errors={
        403: "`sender_device` belongs to another of your sessions.",
        404: "You have no such live device.",
        429: f"`queue_full`: a recipient device has {e2e.MAX_QUEUED} messages waiting;"
        f" nothing was stored; or more than {e2e.REQUESTS_PER_SECOND:g} sends a second"
        " (rate_limited).",
    },
)
async def send_to_device(call: Call[ToDeviceBatch]) -> Reply:
    """Queues each message for its recipient device (a retried `message_id` is stored
    once) and wakes the device's connections on every node."""
    await within_rate(call, "to-device")
    sender = await own_device(call, call.input.sender_device)
    batch = [
        NewToDevice(
            user_id=m.user_id,
            device_id=m.device_id,
            message_id=m.message_id,
            content=e2e.olm_content(_envelope(index, m.content)),
        )
        for index, m in enumerate(call.input.messages)
    ]
    ttl_ms = int(call.services.settings.to_device_ttl * 1000)
    try:
        result = await call.services.store.queue_to_device(
            call.user_id,
            sender.device_id,
            batch,
            now_ms(),
            ttl_ms=ttl_ms,
            max_queued=e2e.MAX_QUEUED,
        )
    except QueueFull as exc:
        raise ApiError(429, "queue_full", str(exc)) from exc
    await call.services.device_mail.queued((m.user_id, m.device_id) for m in result.queued)
    undeliverable = [DeviceRefView(user_id=u, device_id=d) for u, d in result.undeliverable]
    return Reply(200, ToDeviceSentView(queued=len(result.queued), undeliverable=undeliverable))


@table.route(
    "GET",
    f"{API_PREFIX}/devices/{{device_id}}/to-device",
    summary="Your device's queued messages",
    input=PendingQuery,
    responses={200: ToDeviceListView},
    errors=OWN_DEVICE_ERRORS,
    path_specs={"device_id": DEVICE_ID},
)
async def list_to_device(call: Call[PendingQuery], device_id: str) -> Reply:
    """The device's unexpired, unacknowledged messages, oldest first: they stay queued
    until acknowledged."""
    await own_device(call, device_id)
    pending = await call.services.store.pending_to_device(
        call.user_id, device_id, now_ms(), call.input.limit
    )
    views = []
    for message in pending:
        event = e2e.to_device_event(message)
        views.append(
            ToDeviceMessageView(
                id=event.id,
                sender=event.sender,
                sender_device=event.sender_device,
                message_id=event.message_id,
                content=event.content,
                sent_at=event.sent_at,
            )
        )
    return Reply(200, ToDeviceListView(messages=views))


@table.route(
    "POST",
    f"{API_PREFIX}/devices/{{device_id}}/to-device/ack",
    summary="Acknowledge your device's messages",
    input=ToDeviceAckInput,
    responses={200: ToDeviceAckedView},
    errors=OWN_DEVICE_ERRORS,
    path_specs={"device_id": DEVICE_ID},
)
async def ack_to_device(call: Call[ToDeviceAckInput], device_id: str) -> Reply:
    """Deletes these messages of the device; ids that are not its own are ignored."""
    await own_device(call, device_id)
    deleted = await call.services.store.ack_to_device(call.user_id, device_id, call.input.ids)
    return Reply(200, ToDeviceAckedView(deleted=deleted))
