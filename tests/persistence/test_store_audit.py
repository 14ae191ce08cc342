"""Store contract: the audit log appends, filters, pages newest first, prunes by age only."""

from __future__ import annotations

import pytest

from chorus.persistence import MAX_AUDIT_PAGE, AuditQuery, Store
from tests.persistence.helpers import T0


async def _record(store: Store, action: str, actor: str | None, at: int) -> int:
    event = await store.append_audit(
        action, actor_id=actor, target="t", address="192.0.2.1", details={"n": at}, now=at
    )
    return event.id


async def test_an_event_is_stored_as_given_and_ids_grow(store: Store) -> None:
    first = await store.append_audit(
        "login.failed",
        actor_id=None,
        target="ada",
        address="2001:db8::1",
        details={"reason": "wrong password", "nested": {"x": [1, 2]}},
        now=T0,
    )
    second = await store.append_audit(
        "login", actor_id="u1", target="s1", address="", details={}, now=T0
    )
    assert second.id > first.id
    assert await store.list_audit(AuditQuery()) == [second, first]
    assert (first.action, first.actor_id, first.target, first.address, first.at) == (
        "login.failed",
        None,
        "ada",
        "2001:db8::1",
        T0,
    )
    assert first.details == {"reason": "wrong password", "nested": {"x": [1, 2]}}


async def test_filters_combine_and_pages_follow_on(store: Store) -> None:
    ids = [
        await _record(store, "login" if i % 2 else "logout", "u1" if i < 6 else "u2", T0 + i)
        for i in range(10)
    ]
    logins_of_u1 = await store.list_audit(AuditQuery(actor_id="u1", action="login"))
    assert [e.id for e in logins_of_u1] == [ids[5], ids[3], ids[1]]
    recent = await store.list_audit(AuditQuery(since=T0 + 7))
    assert [e.id for e in recent] == [ids[9], ids[8], ids[7]]
    page1 = await store.list_audit(AuditQuery(limit=4))
    page2 = await store.list_audit(AuditQuery(limit=4, before_id=page1[-1].id))
    page3 = await store.list_audit(AuditQuery(limit=4, before_id=page2[-1].id))
    assert [e.id for e in page1 + page2 + page3] == ids[::-1]
    assert await store.list_audit(AuditQuery(actor_id="nobody")) == []


async def test_pruning_deletes_only_older_events_in_bounded_batches(store: Store) -> None:
    ids = [await _record(store, "login", "u1", T0 + i) for i in range(5)]
    assert await store.prune_audit(T0 + 3, limit=2) == 2
    assert await store.prune_audit(T0 + 3, limit=2) == 1
    assert await store.prune_audit(T0 + 3, limit=2) == 0  # idempotent once done
    assert [e.id for e in await store.list_audit(AuditQuery())] == [ids[4], ids[3]]
    # Ids are never reused, even for the newest id after a prune.
    assert await store.prune_audit(T0 + 100, limit=10) == 2
    assert await _record(store, "login", "u1", T0 + 200) > ids[4]


async def test_bad_arguments_are_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="limit"):
        await store.list_audit(AuditQuery(limit=MAX_AUDIT_PAGE + 1))
    with pytest.raises(ValueError, match="limit"):
        await store.list_audit(AuditQuery(limit=0))
    with pytest.raises(ValueError, match="JSON"):
        await store.append_audit(
            "x", actor_id=None, target="", address="", details={"bad": object()}, now=T0
        )
