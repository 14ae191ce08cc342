"""`AuditLog`: records security-relevant events in the store, and prunes old ones."""

from __future__ import annotations

import contextvars
import datetime
import enum
import json
from collections.abc import Callable
from typing import Any, Final

import structlog
import trio
import trio.lowlevel

from chorus.persistence import AuditEvent, AuditQuery, Store, StoreError

_log = structlog.get_logger("chorus.audit")

client_address: contextvars.ContextVar[str] = contextvars.ContextVar("client_address", default="")
"""The address of the client being served (behind trusted proxies, the forwarded one).

Set by the HTTP API for each request and by a WebSocket connection for its
task, so events recorded deep in a service carry it without threading it through.
"""

MAX_DETAILS_BYTES: Final = 2048
"""Largest `details` of one event, as JSON: details are small facts, never payloads."""
MAX_TARGET_CHARS: Final = 255
PRUNE_BATCH: Final = 1000
"""Events deleted per statement by the retention task (short transactions)."""
PRUNE_INTERVAL: Final = 3600.0
"""Seconds between two retention passes."""
AUDIT_REASON_CHARS: Final = 100
"""A moderator's reason is cut to this in `details` (the ban itself keeps all of it): even
escaped as JSON, it stays well within `MAX_DETAILS_BYTES`."""
_DAY_MS: Final = 86_400_000


class AuditAction(enum.StrEnum):
    """The events Chorus records. Other services may add theirs (any dotted string)."""

    ACCOUNT_CREATED = "account.created"
    LOGIN = "login"
    LOGIN_FAILED = "login.failed"
    LOGIN_CHALLENGED = "login.challenged"
    """The password was right; the second step (a 2FA code) is pending."""
    PASSWORD_CHANGED = "password.changed"
    TWO_FACTOR_ENROLMENT_STARTED = "2fa.enrolment_started"
    TWO_FACTOR_ENABLED = "2fa.enabled"
    TWO_FACTOR_DISABLED = "2fa.disabled"
    TWO_FACTOR_CODE_FAILED = "2fa.code_failed"
    TWO_FACTOR_RECOVERY_CODE_USED = "2fa.recovery_code_used"
    SESSION_REVOKED = "session.revoked"
    REFRESH_REUSED = "session.refresh_reused"
    # Server roles and the admin API (target: the user or room acted on).
    SERVER_ROLE_GRANTED = "role.granted"
    USER_DEACTIVATED = "user.deactivated"
    USER_REACTIVATED = "user.reactivated"
    TWO_FACTOR_RESET = "2fa.reset_by_admin"
    ROOM_DELETED = "room.deleted"
    # Room moderation (target: the user acted on, or the room; `room_id` in details).
    ROOM_ROLE_CHANGED = "room.role_changed"
    ROOM_BANNED = "room.banned"
    ROOM_UNBANNED = "room.unbanned"
    ROOM_KICKED = "room.kicked"
    ROOM_MUTED = "room.muted"
    ROOM_UNMUTED = "room.unmuted"
    ROOM_LOCKED = "room.locked"
    ROOM_UNLOCKED = "room.unlocked"
    ROOM_OWNERSHIP_TRANSFERRED = "room.ownership_transferred"
    ROOM_INVITED = "room.invited"
    ROOM_INVITE_REVOKED = "room.invite_revoked"
    ROOM_INVITE_ACCEPTED = "room.invite_accepted"
    SETTING_CHANGED = "setting.changed"
    """A run-time server setting was set or reset (details: `from`, `to`; null: default)."""


class AuditLog:
    """Appends events to the store's audit log; `run` applies the retention.

    Guarantees: events are only appended (there is no way to change or delete
    one but the retention); each carries the client address of the request or
    connection being served unless given one; `details` are checked to be a
    small JSON object. Callers never put secrets in `details` or `target`
    (passwords, tokens, TOTP secrets or codes, recovery codes): the tests run
    every flow and search the stored rows for them.
    """

    def __init__(
        self,
        store: Store,
        *,
        clock: Callable[[], int],
        retention_days: int | Callable[[], int] = 365,
    ) -> None:
        """`retention_days` is a number of days, or a function read at each pass (a
        setting that may change while the node runs)."""
        self._store = store
        self._clock = clock
        self._retention_days = (
            retention_days if callable(retention_days) else lambda: retention_days
        )

    async def record(
        self,
        action: str,
        actor_id: str | None,
        target: str = "",
        *,
        address: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> AuditEvent:
        """Store one event now; `address` defaults to the current client's.

        Raises `ValueError` for details that are not JSON or larger than
        `MAX_DETAILS_BYTES`, and what the store raises.
        """
        details = {} if details is None else details
        if len(json.dumps(details, separators=(",", ":"))) > MAX_DETAILS_BYTES:
            raise ValueError(f"audit details larger than {MAX_DETAILS_BYTES} bytes")
        return await self._store.append_audit(
            str(action),
            actor_id=actor_id,
            target=target[:MAX_TARGET_CHARS],
            address=client_address.get() if address is None else address,
            details=details,
            now=self._clock(),
        )

    async def events(self, query: AuditQuery) -> list[AuditEvent]:
        """The events `query` selects, newest first (see `Store.list_audit`); for the CLI
        and the admin API, whose callers check who may read them."""
        return await self._store.list_audit(query)

    async def prune(self) -> int:
        """Delete every event older than the retention, in batches; how many.

        Idempotent: a second call right after deletes nothing.
        """
        cutoff = self._clock() - self._retention_days() * _DAY_MS
        deleted = 0
        while (batch := await self._store.prune_audit(cutoff, limit=PRUNE_BATCH)) > 0:
            deleted += batch
            if batch < PRUNE_BATCH:
                break
            await trio.lowlevel.checkpoint()  # let requests in between two batches
        return deleted

    async def run(
        self,
        *,
        interval: float = PRUNE_INTERVAL,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """The retention task (supervised): prune now, then every `interval` seconds.

        Started at once: a store that is briefly away fails a pass, not the node's start.
        """
        task_status.started()
        while True:
            try:
                deleted = await self.prune()
            except StoreError as exc:  # the store is away: try again next time, stay up
                _log.warning("audit.prune_failed", error=str(exc))
            else:
                if deleted:
                    _log.info("audit.pruned", events=deleted)
            await trio.sleep(interval)


async def resolve_actor(store: Store, name_or_id: str) -> str:
    """The user id an audit filter means: a username if a user has that name, else taken as
    a user id (the user may be gone; their events stay)."""
    user = await store.get_user_by_username(name_or_id.lower())
    return name_or_id if user is None else user.id


def event_json(event: AuditEvent) -> dict[str, Any]:
    """An event as a JSON object: what `chorus admin audit` prints, one per line."""
    at = datetime.datetime.fromtimestamp(event.at / 1000, tz=datetime.UTC)
    return {
        "id": event.id,
        "at": at.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "action": event.action,
        "actor_id": event.actor_id,
        "target": event.target,
        "address": event.address,
        "details": event.details,
    }
