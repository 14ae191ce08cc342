"""To-device messages: opaque Olm envelopes queued per recipient device until acknowledged.

The queue is the store, not the bus: a message survives the loss of any
node and waits for its device to connect (anywhere) or fetch it over HTTP.
It leaves the queue when the device acknowledges it (`ack_to_device`) or
when it expires; an expired message is never returned, and
`purge_to_device` deletes them for good. The content is stored as the
text the sender gave: the store never looks inside it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import attrs

from .._errors import StoreError
from .._model import new_ids
from .._rows import Row
from .._sql import Engine, Tx, fetch, fetch_one, fetch_value
from .devices import LIVE


class QueueFull(StoreError):
    """A recipient device has too many queued messages; nothing of the call was stored."""

    def __init__(self, user_id: str, device_id: str, limit: int) -> None:
        super().__init__(
            f"device {device_id!r} of user {user_id!r} has {limit} queued messages already"
        )
        self.user_id = user_id
        self.device_id = device_id


@attrs.frozen(kw_only=True)
class NewToDevice:
    """One message to queue for the device `device_id` of `user_id`."""

    user_id: str
    device_id: str
    message_id: str
    """Chosen by the sender: a retry with the same id (same sender device) is stored once."""
    content: str
    """The Olm envelope as JSON text, opaque to the store."""


@attrs.frozen(kw_only=True)
class ToDeviceMessage:
    id: str
    user_id: str
    device_id: str
    sender_id: str
    sender_device: str
    message_id: str
    content: str
    sent_at: int
    expires_at: int


@attrs.frozen(kw_only=True)
class Queued:
    """What `ToDevice.queue_to_device` did."""

    queued: list[ToDeviceMessage]
    """The messages stored now (retries of stored ones are not listed again)."""
    undeliverable: list[tuple[str, str]]
    """(user id, device id) of recipients that are not live devices: nothing queued."""


class ToDevice(Protocol):
    """The per-device queues of to-device messages (issue #18)."""

    async def queue_to_device(
        self,
        sender_id: str,
        sender_device: str,
        messages: Sequence[NewToDevice],
        now: int,
        *,
        ttl_ms: int,
        max_queued: int,
    ) -> Queued:
        """Queue each message for its (live) recipient device until `now + ttl_ms`.

        All or nothing: a recipient that would have more than `max_queued`
        unexpired messages raises `QueueFull`. Queueing for one device is
        serialised (its row is locked), so the bound holds across nodes.
        """
        ...

    async def pending_to_device(
        self, user_id: str, device_id: str, now: int, limit: int
    ) -> list[ToDeviceMessage]:
        """The device's unexpired, unacknowledged messages, oldest first, at most `limit`."""
        ...

    async def ack_to_device(self, user_id: str, device_id: str, ids: Sequence[str]) -> int:
        """Delete these messages of the device (others' and unknown ids are ignored); how many."""
        ...

    async def purge_to_device(self, now: int) -> int:
        """Delete every message expired at `now`; how many."""
        ...


class ToDeviceOnSql(Engine):
    """`ToDevice` for every engine."""

    async def queue_to_device(
        self,
        sender_id: str,
        sender_device: str,
        messages: Sequence[NewToDevice],
        now: int,
        *,
        ttl_ms: int,
        max_queued: int,
    ) -> Queued:
        """See `ToDevice.queue_to_device`."""
        batch = list(messages)
        return await self._write(
            lambda: queue_to_device(sender_id, sender_device, batch, now, ttl_ms, max_queued)
        )

    async def pending_to_device(
        self, user_id: str, device_id: str, now: int, limit: int
    ) -> list[ToDeviceMessage]:
        """See `ToDevice.pending_to_device`."""
        return await self._read(lambda: pending_to_device(user_id, device_id, now, limit))

    async def ack_to_device(self, user_id: str, device_id: str, ids: Sequence[str]) -> int:
        """See `ToDevice.ack_to_device`."""
        wanted = list(ids)
        return await self._write(
            lambda: ack_to_device(user_id, device_id, wanted), one_statement=True
        )

    async def purge_to_device(self, now: int) -> int:
        """See `ToDevice.purge_to_device`."""
        return await self._write(lambda: purge_to_device(now), one_statement=True)


_MESSAGE = (
    "t.id, t.user_id, t.device_id, t.sender_id, t.sender_device, t.message_id, t.content,"
    " t.sent_at, t.expires_at"
)


def _message(row: Row) -> ToDeviceMessage:
    return ToDeviceMessage(
        id=row[0],
        user_id=row[1],
        device_id=row[2],
        sender_id=row[3],
        sender_device=row[4],
        message_id=row[5],
        content=row[6],
        sent_at=int(row[7]),
        expires_at=int(row[8]),
    )


def queue_to_device(
    sender_id: str,
    sender_device: str,
    messages: list[NewToDevice],
    now: int,
    ttl_ms: int,
    max_queued: int,
) -> Tx[Queued]:
    queued: list[ToDeviceMessage] = []
    undeliverable: list[tuple[str, str]] = []
    live: dict[tuple[str, str], bool] = {}
    ids = iter(new_ids("t", len(messages)))
    # Lock each recipient device once, in a fixed order, so that two senders to
    # the same devices never wait for each other in a cycle.
    for recipient in sorted({(m.user_id, m.device_id) for m in messages}):
        locked = yield from fetch_value(
            f"SELECT 1 FROM devices d {LIVE} WHERE d.user_id = $2 AND d.device_id = $3"
            " FOR NO KEY UPDATE OF d",
            now,
            *recipient,
        )
        live[recipient] = locked is not None
    for message in messages:
        recipient = (message.user_id, message.device_id)
        if not live[recipient]:
            if recipient not in undeliverable:
                undeliverable.append(recipient)
            continue
        stored = ToDeviceMessage(
            id=next(ids),
            user_id=message.user_id,
            device_id=message.device_id,
            sender_id=sender_id,
            sender_device=sender_device,
            message_id=message.message_id,
            content=message.content,
            sent_at=now,
            expires_at=now + ttl_ms,
        )
        row = yield from fetch_one(
            "INSERT INTO to_device_messages (id, user_id, device_id, sender_id, sender_device,"
            " message_id, content, sent_at, expires_at)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
            " ON CONFLICT (user_id, device_id, sender_id, sender_device, message_id) DO NOTHING"
            " RETURNING 1",
            stored.id,
            stored.user_id,
            stored.device_id,
            stored.sender_id,
            stored.sender_device,
            stored.message_id,
            stored.content,
            stored.sent_at,
            stored.expires_at,
        )
        if row is not None:
            queued.append(stored)
    for recipient in {(m.user_id, m.device_id) for m in queued}:
        count = yield from fetch_value(
            "SELECT count(*) FROM to_device_messages"
            " WHERE user_id = $1 AND device_id = $2 AND expires_at > $3",
            *recipient,
            now,
        )
        if int(count) > max_queued:
            raise QueueFull(*recipient, max_queued)
    return Queued(queued=queued, undeliverable=undeliverable)


def pending_to_device(
    user_id: str, device_id: str, now: int, limit: int
) -> Tx[list[ToDeviceMessage]]:
    rows = yield from fetch(
        f"SELECT {_MESSAGE} FROM to_device_messages t"
        " WHERE t.user_id = $1 AND t.device_id = $2 AND t.expires_at > $3"
        " ORDER BY t.id LIMIT $4",
        user_id,
        device_id,
        now,
        limit,
    )
    return [_message(row) for row in rows]


def ack_to_device(user_id: str, device_id: str, ids: list[str]) -> Tx[int]:
    rows = yield from fetch(
        "DELETE FROM to_device_messages WHERE user_id = $1 AND device_id = $2 AND id = ANY($3)"
        " RETURNING 1",
        user_id,
        device_id,
        ids,
    )
    return len(rows)


def purge_to_device(now: int) -> Tx[int]:
    rows = yield from fetch(
        "DELETE FROM to_device_messages WHERE expires_at <= $1 RETURNING 1", now
    )
    return len(rows)
