"""Live notifications: to every connection of the notified user on any node, and to a push hook.

Room actors hand the notifications an append created to `Notifier.notify`,
which never waits: it writes to this node's connections of each user at
once and queues the rest (the bus, for the user's connections on other
nodes, and the operator's push webhook) for the notifier's own task. The
persistent inbox is the store's; this is only the live path, best effort:
a user who was offline reads the inbox.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
from collections.abc import Callable, Sequence
from typing import Protocol

import httpx
import orjson
import structlog
import trio

from chorus import protocol
from chorus.cluster import Bus
from chorus.persistence import Message, Notification

_log = structlog.get_logger("chorus.notifications")

NOTIFICATIONS_TOPIC = "notifications"
"""Bus topic every node listens to: `<origin node> <user id> <notification frame JSON>`."""
QUEUE_LIMIT = 10_000
"""Notifications waiting for the bus or the webhook; beyond it they are dropped (logged)."""
SIGNATURE_HEADER = "X-Chorus-Signature"
"""`sha256=<hex HMAC-SHA256 of the body with the webhook secret>` on every webhook request."""
WEBHOOK_ATTEMPTS = 3
WEBHOOK_TIMEOUT = 5.0


class Recipient(Protocol):
    """What a connection offers the notifier (a `ChatConnection` fits)."""

    def send(self, payload: bytes) -> bool: ...


UserConnections = Callable[[str], Sequence[Recipient]]


def notification_frame(notification: Notification, message: Message) -> protocol.NotificationEvent:
    """The frame telling a user about `notification` (of `message`)."""
    return protocol.NotificationEvent(
        id=notification.id,
        room=notification.room_id,
        message=notification.message_id,
        seq=notification.seq,
        kind=notification.kind.value,
        sender=message.sender_id,
        created_at=notification.created_at,
        preview=message.body[: protocol.MAX_PREVIEW_CHARS],
    )


class Notifier:
    """Routes notifications to users' live connections and to the push webhook.

    `connections_of(user_id)` gives the user's connections on this node.
    With a bus, every node delivers to its own connections of the user; the
    node that stored the message also calls the webhook, so each
    notification is pushed once (unless the webhook fails `WEBHOOK_ATTEMPTS`
    times: then it is logged and dropped).
    """

    def __init__(
        self,
        connections_of: UserConnections,
        *,
        bus: Bus | None = None,
        webhook_url: str = "",
        webhook_secret: str = "",
    ) -> None:
        self._connections_of = connections_of
        self._bus = bus
        self._origin = secrets.token_hex(6).encode()
        """Tells this node's envelopes apart on the bus."""
        self._webhook_url = webhook_url
        self._webhook_secret = webhook_secret.encode()
        self._outgoing, self._queued = trio.open_memory_channel[tuple[bytes, bytes]](QUEUE_LIMIT)
        self._needs_task = bus is not None or bool(webhook_url)

    def notify(self, notifications: Sequence[Notification], message: Message) -> None:
        """Deliver to this node's connections now; queue the bus and webhook work. Never waits."""
        hook: list[object] = []
        for notification in notifications:
            frame = notification_frame(notification, message)
            payload = protocol.encode(frame)
            user = notification.user_id.encode()
            self._deliver(user, payload)
            if self._bus is not None:
                self._queue(b"bus", self._origin + b" " + user + b" " + payload)
            if self._webhook_url:
                hook.append({"user": notification.user_id, **orjson.loads(payload)})
        if hook:
            self._queue(b"hook", orjson.dumps({"notifications": hook}))

    def delivered_elsewhere(self, envelope: bytes) -> None:
        """A bus envelope from `NOTIFICATIONS_TOPIC`: deliver it to this node's connections."""
        origin, _, rest = envelope.partition(b" ")
        if origin == self._origin:
            return  # delivered here already
        user, _, payload = rest.partition(b" ")
        self._deliver(user, payload)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Publish and push what `notify` queued, until cancelled."""
        task_status.started()
        if not self._needs_task:
            await trio.sleep(math.inf)
        async with httpx.AsyncClient(timeout=WEBHOOK_TIMEOUT) as client:
            async for kind, body in self._queued:
                if kind == b"bus":
                    await self._publish(body)
                else:
                    await self._push(client, body)

    def _deliver(self, user: bytes, payload: bytes) -> None:
        for connection in self._connections_of(user.decode()):
            connection.send(payload)

    def _queue(self, kind: bytes, body: bytes) -> None:
        try:
            self._outgoing.send_nowait((kind, body))
        except trio.WouldBlock:
            _log.warning("notifications.dropped", reason="queue full", kind=kind.decode())

    async def _publish(self, envelope: bytes) -> None:
        assert self._bus is not None
        try:
            await self._bus.publish(NOTIFICATIONS_TOPIC, envelope)
        except Exception as exc:  # best effort: the inbox has it
            _log.warning("notifications.not_published", error=str(exc))

    async def _push(self, client: httpx.AsyncClient, body: bytes) -> None:
        signature = hmac.new(self._webhook_secret, body, hashlib.sha256).hexdigest()
        headers = {"Content-Type": "application/json", SIGNATURE_HEADER: f"sha256={signature}"}
        for attempt in range(WEBHOOK_ATTEMPTS):
            try:
                response = await client.post(self._webhook_url, content=body, headers=headers)
            except httpx.HTTPError as exc:
                problem = str(exc) or type(exc).__name__
            else:
                if response.is_success:
                    return
                problem = f"HTTP {response.status_code}"
            if attempt < WEBHOOK_ATTEMPTS - 1:
                await trio.sleep(0.5 * 2**attempt)
        _log.warning("notifications.webhook_failed", error=problem, attempts=WEBHOOK_ATTEMPTS)
