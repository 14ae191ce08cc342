"""Run-time server settings over HTTP: admins only, checked values, kept across restarts,
audited, and applied by the routes they govern."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from chorus.persistence import AuditQuery
from tests.http.conftest import PASSWORD, Account, Server, assert_error, open_server
from tests.http.test_files import upload

SETTINGS = "/api/v1/admin/settings"


async def admin_of(server: Server, name: str = "root") -> Account:
    account = await server.register(name)
    await server.services.store.set_server_role(account.id, "admin")
    return account


async def patch(server: Server, admin: Account, body: dict[str, Any]) -> dict[str, Any]:
    response = await server.call("PATCH", SETTINGS, admin, json=body)
    assert response.status_code == 200, response.text
    return by_name(response.json())


def by_name(view: dict[str, Any]) -> dict[str, Any]:
    return {setting["name"]: setting for setting in view["settings"]}


async def test_only_admins_read_or_change_settings(server: Server, ada: Account) -> None:
    root = await admin_of(server)
    await server.services.store.set_server_role(ada.id, "moderator")
    assert_error(await server.get(SETTINGS, ada), 403, "forbidden")
    refused = await server.call("PATCH", SETTINGS, ada, json={"registration_open": False})
    assert_error(refused, 403, "forbidden")
    assert_error(await server.get(SETTINGS), 401, "unauthenticated")
    assert server.services.live.current.registration_open is True
    settings = by_name((await server.get(SETTINGS, root)).json())
    assert settings["registration_open"] == {
        "name": "registration_open",
        "value": True,
        "default": True,
        "source": "config",
        "kind": "bool",
        "minimum": None,
        "maximum": None,
        "description": settings["registration_open"]["description"],
        "updated_at": None,
        "updated_by": None,
    }
    assert settings["max_message_chars"]["maximum"] == 4000


async def test_bad_values_are_refused_naming_the_setting_and_nothing_is_stored(
    server: Server,
) -> None:
    root = await admin_of(server)
    cases = [
        ({"max_message_chars": 0}, "invalid_value", "max_message_chars"),
        ({"max_message_chars": 4001}, "invalid_value", "max_message_chars"),
        ({"max_message_chars": 1.5}, "wrong_type", "max_message_chars"),
        ({"registration_open": "no"}, "wrong_type", "registration_open"),
        ({"sends_per_second": 0}, "invalid_value", "sends_per_second"),
        ({"sends_per_second": True}, "wrong_type", "sends_per_second"),
        ({"heartbeat_interval": 5}, "extra_field", "heartbeat_interval"),
        ({"server_notice": "x" * 1025}, "invalid_value", "server_notice"),
        ({"server_notice": 5}, "wrong_type", "server_notice"),
        # A valid value does not go in with an invalid one.
        ({"send_burst": 10, "files_max_bytes": -1}, "invalid_value", "files_max_bytes"),
    ]
    for body, code, name in cases:
        response = await server.call("PATCH", SETTINGS, root, json=body)
        assert name in assert_error(response, 400, code), body
    assert await server.services.store.server_settings() == []
    settings = by_name((await server.get(SETTINGS, root)).json())
    assert {s["source"] for s in settings.values()} == {"config"}


async def test_a_change_applies_at_once_is_audited_and_null_resets_it(
    server: Server, ada: Account
) -> None:
    root = await admin_of(server)
    changed = await patch(server, root, {"sends_per_second": 2, "send_burst": 5})
    assert changed["sends_per_second"]["value"] == 2.0
    assert changed["sends_per_second"]["default"] == 20.0
    assert changed["sends_per_second"]["source"] == "store"
    assert changed["sends_per_second"]["updated_by"] == root.id
    assert changed["send_burst"]["value"] == 5
    assert server.services.live.current.sends_per_second == 2.0
    # Setting a value again changes nothing and records nothing more.
    await patch(server, root, {"send_burst": 5})
    reset = await patch(server, root, {"send_burst": None})
    assert reset["send_burst"] | {"description": ""} == {
        "name": "send_burst",
        "value": 50,
        "default": 50,
        "source": "config",
        "kind": "int",
        "minimum": 1,
        "maximum": 100_000,
        "description": "",
        "updated_at": None,
        "updated_by": None,
    }
    assert reset["sends_per_second"]["value"] == 2.0  # left out: unchanged
    events = await server.services.store.list_audit(AuditQuery(action="setting.changed"))
    assert [(e.actor_id, e.target, e.details) for e in reversed(events)] == [
        (root.id, "sends_per_second", {"from": None, "to": 2.0}),
        (root.id, "send_burst", {"from": None, "to": 5}),
        (root.id, "send_burst", {"from": 5, "to": None}),
    ]


async def test_closed_registration_refuses_sign_up_but_not_sign_in(
    server: Server, ada: Account
) -> None:
    root = await admin_of(server)
    await patch(server, root, {"registration_open": False})
    refused = await server.post(
        "/api/v1/auth/register", json={"username": "eve", "password": PASSWORD}
    )
    assert_error(refused, 403, "registration_closed")
    assert await server.services.store.get_user_by_username("eve") is None
    login = {"username": "ada", "password": PASSWORD}
    assert (await server.post("/api/v1/auth/login", json=login)).status_code == 200
    await patch(server, root, {"registration_open": True})
    await server.register("eve")


async def test_a_message_over_the_new_limit_is_refused_on_post_and_edit(
    server: Server, ada: Account
) -> None:
    root = await admin_of(server)
    room = await server.create_room(ada)
    url = f"/api/v1/rooms/{room}/messages"
    first = await server.post(url, ada, json={"body": "x" * 20, "client_id": "c1"})
    assert first.status_code == 201
    await patch(server, root, {"max_message_chars": 10})
    long = await server.post(url, ada, json={"body": "x" * 11, "client_id": "c2"})
    assert "max_message_chars" in assert_error(long, 400, "invalid_value")
    fits = await server.post(url, ada, json={"body": "x" * 10, "client_id": "c3"})
    assert fits.status_code == 201
    message_id = first.json()["message"]["id"]
    edit = {"body": "y" * 11, "client_id": "c4"}
    edited = await server.call("PATCH", f"{url}/{message_id}", ada, json=edit)
    assert_error(edited, 400, "invalid_value")


async def test_a_smaller_upload_limit_refuses_uploads_at_once(server: Server, ada: Account) -> None:
    root = await admin_of(server)
    assert (await upload(server, ada, b"x" * 2000)).status_code == 202
    await patch(server, root, {"files_max_bytes": 1000})
    assert_error(await upload(server, ada, b"x" * 1001), 413, "file_too_large")
    assert (await upload(server, ada, b"x" * 1000)).status_code == 202


async def test_stored_values_survive_a_restart_and_override_the_configured_default(
    tmp_path: Path,
) -> None:
    async with open_server(tmp_path, max_message_chars=100) as server:
        root = await admin_of(server)
        assert server.services.live.current.max_message_chars == 100
        await patch(server, root, {"max_message_chars": 50, "registration_open": False})
    async with open_server(tmp_path, max_message_chars=200) as server:
        assert server.services.live.current.max_message_chars == 50
        settings = by_name((await server.get(SETTINGS, root)).json())
        assert (
            settings["max_message_chars"]["value"],
            settings["max_message_chars"]["default"],
        ) == (
            50,
            200,
        )
        refused = await server.post(
            "/api/v1/auth/register", json={"username": "eve", "password": PASSWORD}
        )
        assert_error(refused, 403, "registration_closed")
        await patch(server, root, {"max_message_chars": None})
        assert server.services.live.current.max_message_chars == 200
