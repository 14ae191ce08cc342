"""The audit log at the service: what each flow records, no secrets, retention."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from chorus.auth import (
    AuditAction,
    AuditLog,
    AuthService,
    Challenge,
    Device,
    InvalidCode,
    InvalidCredentials,
    Principal,
    RefreshReused,
    TokenSigner,
    code_at,
    event_json,
    time_step,
)
from chorus.persistence import AuditEvent, AuditQuery, Store, open_sqlite_store
from tests.auth.test_auth import CHEAP, KEY, Clock
from tests.polling import until

PASSWORD = "correct horse battery"
NEW_PASSWORD = "another long password"
WRONG_PASSWORD = "hunter2 wrong guess"
DAY_MS = 86_400_000
HERE = Device(user_agent="test", address="198.51.100.7")


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    async with open_sqlite_store(tmp_path / "chorus.db") as opened:
        yield opened


async def everything(store: Store) -> list[AuditEvent]:
    return (await store.list_audit(AuditQuery(limit=1000)))[::-1]


async def test_every_flow_is_recorded_and_no_secret_is_stored(store: Store) -> None:
    clock = Clock()
    auth = AuthService(
        store, TokenSigner(KEY, access_ttl=900), CHEAP, refresh_ttl=3600, clock=clock
    )
    secrets: list[str] = [PASSWORD, NEW_PASSWORD, WRONG_PASSWORD]
    ada = await auth.register("ada", PASSWORD, None, HERE)
    secrets += [ada.access_token, ada.refresh_token]
    with pytest.raises(InvalidCredentials):
        await auth.login("ada", WRONG_PASSWORD, HERE)
    with pytest.raises(InvalidCredentials):
        await auth.login("nobody", WRONG_PASSWORD, HERE)
    second = await auth.login("ada", PASSWORD, HERE)
    assert not isinstance(second, Challenge)
    secrets += [second.access_token, second.refresh_token]
    # Refresh token reuse.
    rotated = await auth.refresh(second.refresh_token)
    secrets.append(rotated.refresh_token)
    with pytest.raises(RefreshReused):
        await auth.refresh(second.refresh_token)
    # 2FA: enrol, a wrong code, confirm, a challenge, a recovery code, disable.
    enrolment = await auth.two_factor.enrol(ada.user, PASSWORD)
    secrets += [enrolment.secret, enrolment.otpauth_uri]
    with pytest.raises(InvalidCode):
        await auth.two_factor.confirm(ada.user.id, "000000")
    first_code = code_at(enrolment.secret, time_step(clock.now))
    recovery = await auth.two_factor.confirm(ada.user.id, first_code)
    secrets += [first_code, *recovery]
    outcome = await auth.login("ada", PASSWORD, HERE)
    assert isinstance(outcome, Challenge)
    secrets.append(outcome.challenge_token)
    third = await auth.complete_login(outcome.challenge_token, recovery[0], HERE)
    secrets += [third.access_token, third.refresh_token]
    clock.now += 60_000
    disable_code = code_at(enrolment.secret, time_step(clock.now))
    secrets.append(disable_code)
    await auth.two_factor.disable(ada.user, PASSWORD, disable_code)
    # Sessions: revoke one, change the password (revokes the others), log out.
    me = Principal(user_id=ada.user.id, session_id=ada.session_id)
    await auth.revoke(me, third.session_id)
    fourth = await auth.login("ada", PASSWORD, HERE)
    assert not isinstance(fourth, Challenge)
    assert await auth.change_password(me, PASSWORD, NEW_PASSWORD) == 1
    await auth.logout(ada.session_id, actor_id=ada.user.id)

    events = await everything(store)
    actions = [(e.action, e.details.get("reason")) for e in events]
    assert actions == [
        ("account.created", None),
        ("login", None),
        ("login.failed", "wrong_password"),
        ("login.failed", "unknown_username"),
        ("login", None),
        ("session.refresh_reused", None),
        ("2fa.enrolment_started", None),
        ("2fa.code_failed", "wrong_code"),
        ("2fa.enabled", None),
        ("login.challenged", None),
        ("2fa.recovery_code_used", None),
        ("login", None),
        ("2fa.disabled", None),
        ("session.revoked", "revoked"),
        ("login", None),
        ("password.changed", None),
        ("session.revoked", "password_changed"),
        ("session.revoked", "logout"),
    ]
    failed = [e for e in events if e.action == AuditAction.LOGIN_FAILED]
    assert [(e.actor_id, e.target) for e in failed] == [(None, "ada"), (None, "nobody")]
    assert all(e.address == HERE.address for e in events if e.action.startswith("login"))
    logins = [e.details["method"] for e in events if e.action == AuditAction.LOGIN]
    assert logins == ["password", "password", "password+2fa", "password"]
    revoked = [e.target for e in events if e.action == AuditAction.SESSION_REVOKED]
    assert revoked == [third.session_id, fourth.session_id, ada.session_id]
    stored = json.dumps([event_json(e) for e in events])
    for secret in secrets:
        assert secret not in stored
    # Nor a TOTP code of any step of the test, nor a part of a recovery code.
    for step in range(time_step(clock.now) - 5, time_step(clock.now) + 5):
        assert code_at(enrolment.secret, step) not in stored


async def test_events_carry_the_current_client_address_unless_given(store: Store) -> None:
    from chorus.auth import client_address

    audit = AuditLog(store, clock=Clock())
    client_address.set("203.0.113.9")
    implicit = await audit.record("admin.thing", "u1", "room1", details={"n": 1})
    explicit = await audit.record("admin.thing", "u1", "room1", address="192.0.2.1")
    assert (implicit.address, explicit.address) == ("203.0.113.9", "192.0.2.1")
    with pytest.raises(ValueError, match="larger"):
        await audit.record("admin.thing", None, details={"blob": "x" * 5000})


async def test_retention_deletes_only_old_events_in_batches_and_is_idempotent(
    store: Store,
) -> None:
    clock = Clock()
    audit = AuditLog(store, clock=clock, retention_days=30)
    start = clock.now
    for day in range(40):
        clock.now = start + day * DAY_MS
        for _ in range(30):
            await audit.record("login", "u1")
    clock.now = start + 45 * DAY_MS  # events of days 0 to 14 are past 30 days old
    assert await audit.prune() == 15 * 30
    assert await audit.prune() == 0
    left = await store.list_audit(AuditQuery(limit=1000))
    assert len(left) == 25 * 30
    assert min(e.at for e in left) == start + 15 * DAY_MS


async def test_the_retention_task_prunes_when_started(store: Store) -> None:
    import trio

    clock = Clock()
    audit = AuditLog(store, clock=clock, retention_days=1)
    await audit.record("login", "u1")
    clock.now += 2 * DAY_MS
    await audit.record("login", "u2")
    async with trio.open_nursery() as nursery:
        await nursery.start(audit.run)

        async def pruned() -> bool:
            return len(await store.list_audit(AuditQuery())) == 1

        await until(pruned, timeout=5)
        nursery.cancel_scope.cancel()
    assert [e.actor_id for e in await store.list_audit(AuditQuery())] == ["u2"]


async def test_a_retention_given_as_a_function_is_read_at_each_pass(store: Store) -> None:
    clock = Clock()
    days = [30]
    audit = AuditLog(store, clock=clock, retention_days=lambda: days[0])
    await audit.record("login", "u1")
    clock.now += 10 * DAY_MS
    assert await audit.prune() == 0
    days[0] = 5  # an admin shortened it (a run-time setting)
    assert await audit.prune() == 1
