"""The audit log: security-relevant events, append-only, pruned only by age (issue #14)."""

from __future__ import annotations

import json
from typing import Any, Final, Protocol

import attrs

from .._sql import Engine, Tx, fetch, fetch_one

MAX_AUDIT_PAGE: Final = 1000
"""Most events one `list_audit` call returns."""


@attrs.frozen(kw_only=True)
class AuditEvent:
    """One recorded event."""

    id: int
    """Grows with each event (never reused): orders events and pages listings."""
    at: int
    action: str
    actor_id: str | None
    """The user who acted, or None (a failed login, the server itself)."""
    target: str
    """What the event is about (a user, session or room id, a username tried), or ''."""
    address: str
    """The client address (behind trusted proxies, the forwarded one), or ''."""
    details: dict[str, Any]
    """Small, non-secret facts (a JSON object)."""


@attrs.frozen(kw_only=True)
class AuditQuery:
    """Which events `list_audit` returns: newest first, every filter given must hold."""

    actor_id: str | None = None
    action: str | None = None
    since: int | None = None
    """Only events at or after this time (ms)."""
    before_id: int | None = None
    """Only events older than this one: the next page after a page ending with it."""
    limit: int = 100
    """1 to `MAX_AUDIT_PAGE`."""


class AuditLog(Protocol):
    """Append-only storage of audit events: no method changes or deletes one event."""

    async def append_audit(
        self,
        action: str,
        *,
        actor_id: str | None,
        target: str,
        address: str,
        details: dict[str, Any],
        now: int,
    ) -> AuditEvent:
        """Store one event at `now`; raises `ValueError` if `details` is not JSON-able."""
        ...

    async def list_audit(self, query: AuditQuery) -> list[AuditEvent]:
        """The events `query` selects, newest (highest id) first.

        Raises `ValueError` for a limit outside 1 to `MAX_AUDIT_PAGE`.
        """
        ...

    async def prune_audit(self, before: int, *, limit: int) -> int:
        """Delete at most `limit` of the oldest events recorded before `before`; how many."""
        ...


class AuditLogOnSql(Engine):
    """`AuditLog` for every engine."""

    async def append_audit(
        self,
        action: str,
        *,
        actor_id: str | None,
        target: str,
        address: str,
        details: dict[str, Any],
        now: int,
    ) -> AuditEvent:
        """See `AuditLog.append_audit`."""
        try:
            encoded = json.dumps(details, separators=(",", ":"), sort_keys=True)
        except TypeError as exc:
            raise ValueError(f"audit details must be JSON: {exc}") from None
        return await self._write(
            lambda: append_audit(action, actor_id, target, address, encoded, now),
            one_statement=True,
        )

    async def list_audit(self, query: AuditQuery) -> list[AuditEvent]:
        """See `AuditLog.list_audit`."""
        if not 1 <= query.limit <= MAX_AUDIT_PAGE:
            raise ValueError(f"limit: 1 to {MAX_AUDIT_PAGE}")
        return await self._read(lambda: list_audit(query))

    async def prune_audit(self, before: int, *, limit: int) -> int:
        """See `AuditLog.prune_audit`."""
        if limit < 1:
            raise ValueError("limit: at least 1")
        return await self._write(lambda: prune_audit(before, limit), one_statement=True)


_COLUMNS: Final = "id, at, action, actor_id, target, address, details"


def _event(row: Any) -> AuditEvent:
    return AuditEvent(
        id=int(row[0]),
        at=int(row[1]),
        action=row[2],
        actor_id=row[3],
        target=row[4],
        address=row[5],
        details=json.loads(row[6]),
    )


def append_audit(
    action: str, actor_id: str | None, target: str, address: str, details: str, now: int
) -> Tx[AuditEvent]:
    row = yield from fetch_one(
        "INSERT INTO audit_log (at, action, actor_id, target, address, details)"
        f" VALUES ($1, $2, $3, $4, $5, $6) RETURNING {_COLUMNS}",
        now,
        action,
        actor_id,
        target,
        address,
        details,
    )
    assert row is not None
    return _event(row)


def list_audit(query: AuditQuery) -> Tx[list[AuditEvent]]:
    # Only the filters given become conditions, so each query can use its index.
    conditions: list[str] = []
    args: list[Any] = []
    for column, operator, value in (
        ("actor_id", "=", query.actor_id),
        ("action", "=", query.action),
        ("at", ">=", query.since),
        ("id", "<", query.before_id),
    ):
        if value is not None:
            args.append(value)
            conditions.append(f"{column} {operator} ${len(args)}")
    where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
    args.append(query.limit)
    rows = yield from fetch(
        f"SELECT {_COLUMNS} FROM audit_log{where} ORDER BY id DESC LIMIT ${len(args)}", *args
    )
    return [_event(row) for row in rows]


def prune_audit(before: int, limit: int) -> Tx[int]:
    rows = yield from fetch(
        "DELETE FROM audit_log WHERE id IN"
        " (SELECT id FROM audit_log WHERE at < $1 ORDER BY id LIMIT $2) RETURNING id",
        before,
        limit,
    )
    return len(rows)
