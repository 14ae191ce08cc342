"""Every room route, for every standing, answers as the permission table says (403 or not)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx

from chorus.permissions import ROUTE_ACTIONS, Action, Who
from chorus.persistence import Role, now_ms
from tests.http.conftest import Account, Server

Request = Callable[[Server, Account, str, Account, str], Awaitable[httpx.Response]]
"""(server, caller, room, target member, a message id of the room) → the response."""

P = "/api/v1/rooms"
DOC = Path(__file__).parent.parent.parent / "docs" / "permissions.md"


def documented() -> dict[tuple[str, str], bool]:
    """The table of docs/permissions.md: (action, standing) → allowed. The answers are
    checked against the docs, not against the code's table the routes consult."""
    lines = [line for line in DOC.read_text().splitlines() if line.startswith("| ")]
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    cells = {}
    for line in lines[1:]:
        row = [cell.strip() for cell in line.strip("|").split("|")]
        for who, answer in zip(header[1:], row[1:], strict=True):
            cells[(row[0].strip("`"), who)] = answer == "yes"
    return cells


def _calls() -> dict[str, Request]:
    return {
        "get_room": lambda s, c, r, t, m: s.get(f"{P}/{r}", c),
        "update_room": lambda s, c, r, t, m: s.call(
            "PATCH", f"{P}/{r}", c, json={"read_receipts": False}
        ),
        "set_notify_level": lambda s, c, r, t, m: s.call(
            "PUT", f"{P}/{r}/notify", c, json={"level": "none"}
        ),
        "invite_member": lambda s, c, r, t, m: s.post(
            f"{P}/{r}/members", c, json={"user_id": t.id}
        ),
        "remove_member": lambda s, c, r, t, m: s.delete(f"{P}/{r}/members/{t.id}", c),
        "ban": lambda s, c, r, t, m: s.post(f"{P}/{r}/bans", c, json={"user_id": t.id}),
        "list_bans": lambda s, c, r, t, m: s.get(f"{P}/{r}/bans", c),
        "unban": lambda s, c, r, t, m: s.delete(f"{P}/{r}/bans/{t.id}", c),
        "mute": lambda s, c, r, t, m: s.call("PUT", f"{P}/{r}/mutes/{t.id}", c, json={}),
        "unmute": lambda s, c, r, t, m: s.delete(f"{P}/{r}/mutes/{t.id}", c),
        "lock": lambda s, c, r, t, m: s.call("PUT", f"{P}/{r}/lock", c, json={"locked": True}),
        "set_role": lambda s, c, r, t, m: s.call(
            "PUT", f"{P}/{r}/members/{t.id}/role", c, json={"role": "moderator"}
        ),
        "transfer": lambda s, c, r, t, m: s.call(
            "PUT", f"{P}/{r}/owner", c, json={"user_id": t.id}
        ),
        "list_messages": lambda s, c, r, t, m: s.get(f"{P}/{r}/messages", c),
        "post_message": lambda s, c, r, t, m: s.post(
            f"{P}/{r}/messages", c, json={"body": "hi", "client_id": "c1"}
        ),
        "get_message": lambda s, c, r, t, m: s.get(f"{P}/{r}/messages/{m}", c),
        "delete_message": lambda s, c, r, t, m: s.call(
            "DELETE", f"{P}/{r}/messages/{m}", c, params={"client_id": "d1"}
        ),
        "mark_room_read": lambda s, c, r, t, m: s.post(f"{P}/{r}/read", c, json={"seq": 1}),
        "admin_list_users": lambda s, c, r, t, m: s.get("/api/v1/admin/users", c),
        "admin_list_rooms": lambda s, c, r, t, m: s.get("/api/v1/admin/rooms", c),
        "admin_set_role": lambda s, c, r, t, m: s.call(
            "PUT", f"/api/v1/admin/users/{t.id}/role", c, json={"role": "moderator"}
        ),
    }


async def _room_with_every_standing(
    server: Server, users: dict[Who, Account], target: Account
) -> tuple[str, str]:
    """A private room where each user has their standing; `target` is a plain member; the
    owner posted one message (its id is returned with the room's)."""
    store = server.services.store
    room = await server.create_room(users[Who.OWNER], name="matrix", kind="private")
    for who, role in [
        (Who.MEMBER, Role.MEMBER),
        (Who.MUTED, Role.MEMBER),
        (Who.MODERATOR, Role.MODERATOR),
        (Who.SERVER_MODERATOR, Role.MEMBER),
        (Who.ADMIN, Role.MEMBER),
        (Who.BANNED, Role.MEMBER),
    ]:
        await store.add_member(room, users[who].id, role, now_ms())
    await store.add_member(room, target.id, Role.MEMBER, now_ms())
    await store.set_muted(room, users[Who.MUTED].id, 0)
    await store.ban(room, users[Who.BANNED].id, users[Who.OWNER].id, "", now_ms())
    posted = await server.post(
        f"{P}/{room}/messages", users[Who.OWNER], json={"body": "x", "client_id": f"t-{room}"}
    )
    assert posted.status_code in (200, 201), posted.text
    return room, posted.json()["message"]["id"]


async def test_each_room_route_answers_each_standing_as_the_table_says(server: Server) -> None:
    users = {who: await server.register(who.value.replace("_", "")) for who in Who}
    await server.services.store.set_server_role(users[Who.SERVER_MODERATOR].id, "moderator")
    await server.services.store.set_server_role(users[Who.ADMIN].id, "admin")
    calls = _calls()
    table = documented()
    assert set(calls) <= set(ROUTE_ACTIONS)
    wrong = []
    for n, (operation, call) in enumerate(calls.items()):
        action = ROUTE_ACTIONS[operation]
        assert isinstance(action, Action)
        for who, caller in users.items():
            # A fresh room and target per cell: one cell's change never decides another's.
            name = f"t{n}{who.value.replace('_', '')}"
            made = await server.services.store.create_user(name, name, None, now_ms())
            target = Account(
                id=made.id, username=name, access_token="", refresh_token="", session_id=""
            )
            room, message = await _room_with_every_standing(server, users, target)
            response = await call(server, caller, room, target, message)
            expected = table[(action.value, who.value)]
            if (response.status_code != 403) != expected:
                wrong.append((operation, who.value, response.status_code, response.text))
    assert wrong == []
