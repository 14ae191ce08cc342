"""`chorus admin`: server roles, users, rooms and the audit log on the node's store, with no
node running."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import pytest
import trio
from trio_websocket import ConnectionClosed

from chorus import protocol
from chorus.auth import AuditLog, InvalidToken
from chorus.cli import main
from chorus.config import Settings
from chorus.node import DATABASE_FILE, open_node_store
from chorus.persistence import (
    AuditEvent,
    AuditQuery,
    Role,
    RoomKind,
    Store,
    now_ms,
    open_sqlite_store,
)
from chorus.protocol import CloseCode
from tests.fixtures import open_test_node
from tests.polling import until
from tests.wsclient import ws_connect

NOW = 1_700_000_000_000
T = TypeVar("T")


def on_store(data_dir: Path, work: Callable[[Store], Awaitable[T]]) -> T:
    """Run `work` on the store the settings of `data_dir` select (as the commands do)."""

    async def run() -> T:
        async with open_node_store(Settings(data_dir=data_dir)) as store:
            return await work(store)

    return trio.run(run)


def admin(capsys: pytest.CaptureFixture[str], data_dir: Path, *argv: str) -> tuple[int, str]:
    code = main(["admin", *argv, "--data-dir", str(data_dir)])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_an_operator_makes_the_first_admin_and_takes_the_role_back(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async def users(store: Store) -> str:
        await store.create_user("ada", "Ada", "hash", NOW)
        return (await store.create_user("bob", "Bob", "hash", NOW)).id

    on_store(tmp_path, users)
    assert admin(capsys, tmp_path, "list-admins") == (0, "no admins or moderators\n")
    assert admin(capsys, tmp_path, "grant-role", "ada", "admin") == (0, "ada is now admin\n")
    assert admin(capsys, tmp_path, "grant-role", "bob", "moderator")[0] == 0
    assert admin(capsys, tmp_path, "list-admins") == (0, "ada\tadmin\nbob\tmoderator\n")

    async def role_of_ada(store: Store) -> str:
        ada = await store.get_user_by_username("ada")
        assert ada is not None
        return await store.server_role(ada.id)

    assert on_store(tmp_path, role_of_ada) == "admin"
    code, out = admin(capsys, tmp_path, "users", "list", "--with-role", "moderator")
    assert code == 0
    assert out.endswith("\tbob\tmoderator\n")
    assert admin(capsys, tmp_path, "revoke-role", "ada") == (0, "ada is now member\n")
    assert on_store(tmp_path, role_of_ada) == "member"
    code, out = admin(capsys, tmp_path, "grant-role", "nobody", "admin")
    assert (code, out) == (1, "chorus admin: no user named 'nobody'\n")


def test_rooms_are_listed_and_transferred_and_2fa_reset(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async def setup(store: Store) -> str:
        ada = await store.create_user("ada", "Ada", "hash", NOW)
        bob = await store.create_user("bob", "Bob", "hash", NOW)
        room = await store.create_room("ops", RoomKind.PRIVATE, ada.id, NOW)
        await store.add_member(room.id, bob.id, Role.MEMBER, NOW)
        await store.begin_totp(bob.id, b"0" * 20, NOW)
        return room.id

    room_id = on_store(tmp_path, setup)
    assert admin(capsys, tmp_path, "rooms", "list") == (0, f"{room_id}\tprivate\tops\n")
    code, out = admin(capsys, tmp_path, "rooms", "transfer", room_id, "bob")
    assert code == 0
    assert out.startswith(f"room {room_id} now belongs to bob")

    async def roles(store: Store) -> dict[str, Role]:
        return {m.user_id: m.role for m in await store.members(room_id)}

    assert sorted(r.value for r in on_store(tmp_path, roles).values()) == ["moderator", "owner"]
    code, out = admin(capsys, tmp_path, "users", "reset-2fa", "bob")
    assert code == 0
    assert out == "bob: two-factor authentication turned off\n"


def test_a_deactivated_user_gets_no_session_until_reactivated(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async def setup(store: Store) -> str:
        ada = await store.create_user("ada", "Ada", "hash", NOW)
        now = now_ms()  # the command ends sessions live at the real time
        await store.create_session(ada.id, "refresh-hash", now, now + 3_600_000)
        return ada.id

    ada_id = on_store(tmp_path, setup)
    assert admin(capsys, tmp_path, "users", "deactivate", "ada") == (
        0,
        "ada deactivated; 1 sessions ended\n",
    )

    async def state(store: Store) -> tuple[int | None, int]:
        live = await store.list_sessions(ada_id, now_ms())
        return await store.deactivated_at(ada_id), len(live)

    at, live = on_store(tmp_path, state)
    assert at is not None
    assert live == 0
    assert admin(capsys, tmp_path, "users", "reactivate", "ada") == (0, "ada reactivated\n")
    assert on_store(tmp_path, state) == (None, 0)


def test_revoke_sessions_ends_every_live_session_of_the_user(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async def setup(store: Store) -> str:
        ada = await store.create_user("ada", "Ada", "hash", NOW)
        now = now_ms()
        for n in range(2):
            await store.create_session(ada.id, f"refresh-{n}", now, now + 3_600_000)
        return ada.id

    ada_id = on_store(tmp_path, setup)
    assert admin(capsys, tmp_path, "users", "revoke-sessions", "ada") == (
        0,
        "ada: 2 sessions ended\n",
    )

    async def live(store: Store) -> int:
        return len(await store.list_sessions(ada_id, now_ms()))

    assert on_store(tmp_path, live) == 0


T0 = 1_700_000_000_000  # 2023-11-14T22:13:20Z


async def _fill(path: Path) -> str:
    async with open_sqlite_store(path) as store:
        ada = await store.create_user("ada", "Ada", "hash", T0)
        clock = [T0]
        audit = AuditLog(store, clock=lambda: clock[0])
        for minute in range(5):
            clock[0] = T0 + minute * 60_000
            await audit.record("login", ada.id, f"s{minute}", address="192.0.2.1")
            await audit.record("login.failed", None, "ada", details={"reason": "wrong_password"})
        return ada.id


def test_audit_prints_the_selected_events_newest_first(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ada_id = trio.run(_fill, tmp_path / DATABASE_FILE)
    argv = ["admin", "audit", "--data-dir", str(tmp_path), "--actor", "ada", "--limit", "3"]
    assert main(argv) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(e["action"], e["actor_id"], e["target"]) for e in lines] == [
        ("login", ada_id, "s4"),
        ("login", ada_id, "s3"),
        ("login", ada_id, "s2"),
    ]
    assert lines[0]["at"] == "2023-11-14T22:17:20.000Z"
    assert lines[0]["address"] == "192.0.2.1"
    since = ["--since", "2023-11-14T22:16:20", "--action", "login.failed"]
    assert main(["admin", "audit", "--data-dir", str(tmp_path), *since]) == 0
    failed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(e["target"], e["details"]) for e in failed] == [
        ("ada", {"reason": "wrong_password"}),
        ("ada", {"reason": "wrong_password"}),
    ]


def test_audit_refuses_bad_arguments(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for bad in (["--since", "yesterday"], ["--limit", "0"]):
        with pytest.raises(SystemExit) as exited:
            main(["admin", "audit", "--data-dir", str(tmp_path), *bad])
        assert exited.value.code == 2
    assert "ISO 8601" in capsys.readouterr().err


def test_every_changing_command_leaves_its_event_with_no_actor_and_via_cli(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async def setup(store: Store) -> tuple[str, str, str, list[str]]:
        ada = await store.create_user("ada", "Ada", "hash", NOW)
        bob = await store.create_user("bob", "Bob", "hash", NOW)
        room = await store.create_room("ops", RoomKind.PRIVATE, ada.id, NOW)
        await store.add_member(room.id, bob.id, Role.MEMBER, NOW)
        now = now_ms()
        sessions = [
            (await store.create_session(bob.id, f"r{n}", now, now + 3_600_000)).id for n in range(2)
        ]
        await store.create_session(ada.id, "ra", now, now + 3_600_000)
        return ada.id, bob.id, room.id, sessions

    ada_id, bob_id, room_id, bob_sessions = on_store(tmp_path, setup)
    commands = [
        ("grant-role", "ada", "admin"),
        ("revoke-role", "ada"),
        ("users", "reset-2fa", "bob"),
        ("users", "revoke-sessions", "bob"),
        ("users", "deactivate", "ada"),
        ("users", "reactivate", "ada"),
        ("rooms", "transfer", room_id, "bob"),
        ("rooms", "delete", room_id),
    ]
    for argv in commands:
        assert admin(capsys, tmp_path, *argv)[0] == 0, argv

    async def events(store: Store) -> list[AuditEvent]:
        return (await store.list_audit(AuditQuery()))[::-1]

    found = on_store(tmp_path, events)
    assert {(e.actor_id, e.address) for e in found} == {(None, "")}
    ada_sessions = [e.target for e in found if e.details.get("reason") == "deactivated"]
    ended_first, ended_then = sorted(bob_sessions, key=[e.target for e in found].index)
    assert [(e.action, e.target, e.details) for e in found] == [
        ("role.granted", ada_id, {"role": "admin", "via": "cli"}),
        ("role.granted", ada_id, {"role": "member", "via": "cli"}),
        ("2fa.reset_by_admin", bob_id, {"was_enabled": False, "via": "cli"}),
        ("session.revoked", ended_first, {"reason": "revoked_by_admin", "via": "cli"}),
        ("session.revoked", ended_then, {"reason": "revoked_by_admin", "via": "cli"}),
        ("user.deactivated", ada_id, {"via": "cli"}),
        ("session.revoked", ada_sessions[0], {"reason": "deactivated", "via": "cli"}),
        ("user.reactivated", ada_id, {"via": "cli"}),
        ("room.ownership_transferred", room_id, {"from": ada_id, "to": bob_id, "via": "cli"}),
        ("room.deleted", room_id, {"members": 2, "via": "cli"}),
    ]
    # A command that fails records nothing.
    assert admin(capsys, tmp_path, "grant-role", "nobody", "admin")[0] == 1
    assert len(on_store(tmp_path, events)) == len(found)


def test_settings_are_shown_set_checked_reset_and_audited(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, shown = admin(capsys, tmp_path, "settings", "show")
    assert code == 0
    assert "registration_open\ttrue\tconfig\tdefault true\n" in shown
    assert admin(capsys, tmp_path, "settings", "set", "max_message_chars", "500") == (
        0,
        "max_message_chars = 500 (running nodes apply it within 5 s)\n",
    )
    assert admin(capsys, tmp_path, "settings", "set", "registration_open", "FALSE")[0] == 0
    notice = ("server_notice", "Maintenance at 22:00 UTC")
    assert admin(capsys, tmp_path, "settings", "set", *notice)[0] == 0
    code, shown = admin(capsys, tmp_path, "settings", "show")
    assert "max_message_chars\t500\tstore\tdefault 4000\n" in shown
    assert "registration_open\tfalse\tstore\tdefault true\n" in shown
    assert 'server_notice\t"Maintenance at 22:00 UTC"\tstore\tdefault ""\n' in shown
    refusals = [
        (("max_message_chars", "5000"), "max_message_chars: must be from 1 to 4000"),
        (("max_message_chars", "many"), "max_message_chars: expected an integer, got 'many'"),
        (("registration_open", "maybe"), "registration_open: expected true or false"),
        (("frames_per_second", "1"), "unknown setting 'frames_per_second'"),
    ]
    for argv, message in refusals:
        code, out = admin(capsys, tmp_path, "settings", "set", *argv)
        assert code == 1
        assert out.startswith(f"chorus admin: {message}"), out
    assert admin(capsys, tmp_path, "settings", "reset", "max_message_chars") == (
        0,
        "max_message_chars: back to the configured default\n",
    )
    code, shown = admin(capsys, tmp_path, "settings", "show")
    assert "max_message_chars\t4000\tconfig\tdefault 4000\n" in shown

    async def events(store: Store) -> list[AuditEvent]:
        return (await store.list_audit(AuditQuery(action="setting.changed")))[::-1]

    assert [(e.actor_id, e.target, e.details) for e in on_store(tmp_path, events)] == [
        (None, "max_message_chars", {"from": None, "to": 500, "via": "cli"}),
        (None, "registration_open", {"from": None, "to": False, "via": "cli"}),
        (None, "server_notice", {"from": None, "to": "Maintenance at 22:00 UTC", "via": "cli"}),
        (None, "max_message_chars", {"from": 500, "to": None, "via": "cli"}),
    ]


async def test_a_running_lone_node_applies_a_cli_setting_within_its_reload_interval(
    tmp_path: Path,
) -> None:
    async with open_test_node(tmp_path, store_poll_interval=0.1) as (node, _):
        assert node.live.current.registration_open is True
        argv = ["admin", "settings", "set", "registration_open", "false"]
        code = await trio.to_thread.run_sync(main, [*argv, "--data-dir", str(tmp_path)])
        assert code == 0

        async def applied() -> bool:
            return node.live.current.registration_open is False

        await until(applied, timeout=5)


@pytest.mark.parametrize(
    "command", [("users", "revoke-sessions", "ada"), ("users", "deactivate", "ada")]
)
async def test_a_running_lone_node_closes_the_sockets_of_sessions_the_cli_ended(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    async with open_test_node(tmp_path, store_poll_interval=0.1) as (node, addresses):
        assert addresses.gateway is not None
        tokens = await node.services.auth.register("ada", "long enough password", None)
        async with ws_connect(addresses.gateway[1]) as ws:
            await ws.send_message(
                protocol.encode(protocol.Hello(token=tokens.access_token)).decode()
            )
            ready = protocol.decode_server_frame(await ws.get_message())
            assert isinstance(ready, protocol.Ready)
            argv = ["admin", *command, "--data-dir", str(tmp_path)]
            assert await trio.to_thread.run_sync(main, argv) == 0
            with trio.fail_after(5), pytest.raises(ConnectionClosed) as closed:
                await ws.get_message()
            assert closed.value.reason is not None
            assert closed.value.reason.code == CloseCode.SESSION_REVOKED
        with pytest.raises(InvalidToken):
            await node.services.auth.authenticate(tokens.access_token)
