"""The audit log through the HTTP API: the real client address behind a trusted proxy, an
exact event for each moderation and admin action, and `GET /api/v1/admin/audit`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from chorus.auth import event_json
from chorus.persistence import AuditQuery, Role, now_ms
from tests.http.conftest import PASSWORD, Account, Server, assert_error, open_server

FORWARDED = {"X-Forwarded-For": "203.0.113.7"}
R = "/api/v1/rooms"
A = "/api/v1/admin"


async def test_events_carry_the_forwarded_client_address_and_no_secret(tmp_path: Path) -> None:
    async with open_server(tmp_path, trusted_proxies=("127.0.0.1",)) as server:
        ada = await server.register("ada")
        wrong = await server.post(
            "/api/v1/auth/login",
            json={"username": "ada", "password": "not the password at all"},
            headers=FORWARDED,
        )
        assert wrong.status_code == 401
        # Logout has no device: its address comes from the request being served.
        out = await server.post("/api/v1/auth/logout", ada, headers=FORWARDED)
        assert out.status_code == 204
        events = await server.services.store.list_audit(AuditQuery())
        by_action = {e.action: e for e in events}
        assert by_action["login.failed"].address == "203.0.113.7"
        assert by_action["login.failed"].target == "ada"
        assert by_action["session.revoked"].address == "203.0.113.7"
        assert by_action["session.revoked"].actor_id == ada.id
        assert by_action["session.revoked"].details == {"reason": "logout"}
        stored = json.dumps([event_json(e) for e in events])
        for secret in (PASSWORD, "not the password at all", ada.access_token, ada.refresh_token):
            assert secret not in stored


Seen = tuple[str, str | None, str, dict[str, Any]]
"""An event as the tests compare it: action, actor, target, details."""


async def _new_events(server: Server, after: int) -> list[Seen]:
    """(action, actor, target, details) of the events recorded after event `after`, oldest
    first."""
    events = await server.services.store.list_audit(AuditQuery(limit=1000))
    return [(e.action, e.actor_id, e.target, e.details) for e in reversed(events) if e.id > after]


async def _last_id(server: Server) -> int:
    return (await server.services.store.list_audit(AuditQuery(limit=1)))[0].id


async def test_each_moderation_action_leaves_its_exact_event(
    server: Server, ada: Account, bob: Account
) -> None:
    carol = await server.register("carol")
    room = await server.create_room(ada, "ops", "private")
    for user in (bob, carol):
        await server.services.store.add_member(room, user.id, Role.MEMBER, now_ms())
    start = await _last_id(server)
    long_reason = "spam " * 40
    steps = [
        ("PUT", f"{R}/{room}/members/{bob.id}/role", {"role": "moderator"}),
        ("PUT", f"{R}/{room}/mutes/{carol.id}", {"minutes": 5}),
        ("DELETE", f"{R}/{room}/mutes/{carol.id}", None),
        ("PUT", f"{R}/{room}/mutes/{carol.id}", {}),
        ("PUT", f"{R}/{room}/lock", {"locked": True}),
        ("PUT", f"{R}/{room}/lock", {"locked": False}),
        ("DELETE", f"{R}/{room}/members/{carol.id}", None),
        ("POST", f"{R}/{room}/bans", {"user_id": carol.id, "reason": long_reason}),
        ("DELETE", f"{R}/{room}/bans/{carol.id}", None),
        ("PUT", f"{R}/{room}/owner", {"user_id": bob.id}),
    ]
    before_mute = now_ms()
    for method, path, body in steps:
        answer = await server.call(method, path, ada, json=body)
        assert answer.status_code in (200, 204), (path, answer.text)
    events = await _new_events(server, start)
    muted_until = events[1][3]["until"]
    assert before_mute + 5 * 60_000 <= muted_until <= now_ms() + 5 * 60_000
    assert events == [
        ("room.role_changed", ada.id, bob.id, {"room_id": room, "role": "moderator"}),
        ("room.muted", ada.id, carol.id, {"room_id": room, "until": muted_until}),
        ("room.unmuted", ada.id, carol.id, {"room_id": room}),
        ("room.muted", ada.id, carol.id, {"room_id": room, "until": None}),
        ("room.locked", ada.id, room, {}),
        ("room.unlocked", ada.id, room, {}),
        ("room.kicked", ada.id, carol.id, {"room_id": room}),
        ("room.banned", ada.id, carol.id, {"room_id": room, "reason": long_reason[:100]}),
        ("room.unbanned", ada.id, carol.id, {"room_id": room}),
        ("room.ownership_transferred", ada.id, room, {"from": ada.id, "to": bob.id}),
    ]
    # Refused actions change nothing and record nothing; blocks are not audited.
    end = await _last_id(server)
    refused = await server.post(f"{R}/{room}/bans", carol, json={"user_id": ada.id})
    assert_error(refused, 403, "forbidden")
    assert (await server.call("PUT", f"/api/v1/users/me/blocks/{bob.id}", carol)).status_code == 204
    assert await _new_events(server, end) == []


async def test_each_admin_action_leaves_its_exact_event(
    server: Server, ada: Account, bob: Account
) -> None:
    await server.services.store.set_server_role(ada.id, "admin")
    room = await server.create_room(bob, "ops", "private")
    carol = await server.register("carol")
    await server.services.store.add_member(room, carol.id, Role.MEMBER, now_ms())
    second = await server.post("/api/v1/auth/login", json={"username": "bob", "password": PASSWORD})
    bob_sessions = [bob.session_id, second.json()["session_id"]]
    await server.services.store.begin_totp(bob.id, b"k" * 20, now_ms())
    assert await server.services.store.enable_totp(bob.id, 1, [], now_ms())
    start = await _last_id(server)
    steps = [
        ("PUT", f"/api/v1/admin/users/{bob.id}/role", {"role": "moderator"}),
        ("POST", f"/api/v1/admin/users/{bob.id}/reset-2fa", None),
        ("POST", f"/api/v1/admin/users/{bob.id}/revoke-sessions", None),
        ("POST", f"/api/v1/admin/users/{carol.id}/deactivate", None),
        ("POST", f"/api/v1/admin/users/{carol.id}/reactivate", None),
        ("PUT", f"/api/v1/admin/rooms/{room}/owner", {"user_id": carol.id}),
        ("DELETE", f"/api/v1/admin/rooms/{room}", None),
    ]
    for method, path, body in steps:
        answer = await server.call(method, path, ada, json=body)
        assert answer.status_code in (200, 204), (path, answer.text)
    events = await _new_events(server, start)
    # Both of bob's sessions, in the order the store ended them.
    ended_first, ended_then = sorted(bob_sessions, key=[e[2] for e in events].index)
    assert events == [
        ("role.granted", ada.id, bob.id, {"role": "moderator"}),
        ("2fa.reset_by_admin", ada.id, bob.id, {"was_enabled": True}),
        ("session.revoked", ada.id, ended_first, {"reason": "revoked_by_admin"}),
        ("session.revoked", ada.id, ended_then, {"reason": "revoked_by_admin"}),
        ("user.deactivated", ada.id, carol.id, {}),
        ("session.revoked", ada.id, carol.session_id, {"reason": "deactivated"}),
        ("user.reactivated", ada.id, carol.id, {}),
        ("room.ownership_transferred", ada.id, room, {"from": bob.id, "to": carol.id}),
        ("room.deleted", ada.id, room, {"members": 2}),
    ]


async def test_admins_read_the_log_with_filters_a_page_at_a_time_and_no_secret(
    server: Server, ada: Account, bob: Account
) -> None:
    await server.services.store.set_server_role(ada.id, "admin")
    for _ in range(3):
        wrong = await server.post(
            "/api/v1/auth/login", json={"username": "bob", "password": "a wrong password here"}
        )
        assert wrong.status_code == 401
    refused = await server.get(f"{A}/audit", bob)
    assert_error(refused, 403, "forbidden")
    everything = (await server.get(f"{A}/audit", ada)).json()
    stored = await server.services.store.list_audit(AuditQuery())
    assert everything == {
        "events": [
            {
                "id": e.id,
                "at": e.at,
                "action": e.action,
                "actor_id": e.actor_id,
                "target": e.target,
                "address": e.address,
                "details": e.details,
            }
            for e in stored
        ],
        "next_before": None,
    }
    text = json.dumps(everything)
    for secret in (PASSWORD, "a wrong password here", ada.access_token, bob.refresh_token):
        assert secret not in text
    # Filters: by actor (username or id), by action, since a time.
    by_name = (await server.get(f"{A}/audit", ada, params={"actor": "bob"})).json()["events"]
    by_id = (await server.get(f"{A}/audit", ada, params={"actor": bob.id})).json()["events"]
    assert by_name == by_id
    assert {e["action"] for e in by_name} == {"account.created", "login"}
    assert {e["actor_id"] for e in by_name} == {bob.id}
    failed = await server.get(f"{A}/audit", ada, params={"action": "login.failed"})
    assert [e["target"] for e in failed.json()["events"]] == ["bob"] * 3
    newest = stored[0]
    since = await server.get(f"{A}/audit", ada, params={"since": newest.at})
    assert [e["id"] for e in since.json()["events"]] == [e.id for e in stored if e.at >= newest.at]
    # Pages of 2 from newest to oldest, ending with a null cursor.
    seen: list[int] = []
    params: dict[str, object] = {"limit": 2}
    for _ in range(len(stored)):
        page = (await server.get(f"{A}/audit", ada, params=params)).json()
        assert 1 <= len(page["events"]) <= 2
        seen += [e["id"] for e in page["events"]]
        if page["next_before"] is None:
            break
        assert page["next_before"] == seen[-1]
        params = {"limit": 2, "before": page["next_before"]}
    assert seen == [e.id for e in stored]
    exact = await server.get(f"{A}/audit", ada, params={"limit": len(stored)})
    assert exact.json()["next_before"] is None  # a full last page has no next one
    for bad, code in (
        ({"limit": 0}, "invalid_value"),
        ({"limit": 1001}, "invalid_value"),
        ({"before": 0}, "invalid_value"),
        ({"actor": ""}, "invalid_value"),
        ({"since": "yesterday"}, "wrong_type"),
        ({"actor_id": bob.id}, "extra_field"),
    ):
        assert_error(await server.get(f"{A}/audit", ada, params=bad), 400, code)
