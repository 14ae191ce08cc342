"""The audit log through the HTTP API: the real client address, behind a trusted proxy."""

from __future__ import annotations

import json
from pathlib import Path

from chorus.auth import event_json
from chorus.persistence import AuditQuery
from tests.http.conftest import PASSWORD, open_server

FORWARDED = {"X-Forwarded-For": "203.0.113.7"}


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
