"""Every room route, for every standing, answers as the permission table says (403 or not)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import attrs
import httpx

from chorus.permissions import ROUTE_ACTIONS, Action, Who
from chorus.persistence import NewMessage, Role, now_ms
from tests.http.conftest import Account, Server


@attrs.frozen
class Cell:
    """One cell's request context."""

    caller: Account
    room: str
    target: Account
    """A plain member of the room, the object of moderation routes."""
    message: str
    """The owner's message."""
    mine: str
    """The caller's own message (the owner's for an outsider)."""


Request = Callable[[Server, Cell], Awaitable[httpx.Response]]

P = "/api/v1/rooms"
DOC = Path(__file__).parent.parent.parent / "docs" / "permissions.md"
PUBLIC_ROOM_ROUTES = {"join_room"}
"""Routes asked about a public room (private rooms are never joined)."""


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
    """A request per route that asks the table about a room or the admin API."""
    return {
        "get_room": lambda s, c: s.get(f"{P}/{c.room}", c.caller),
        "update_room": lambda s, c: s.call(
            "PATCH", f"{P}/{c.room}", c.caller, json={"read_receipts": False}
        ),
        "set_notify_level": lambda s, c: s.call(
            "PUT", f"{P}/{c.room}/notify", c.caller, json={"level": "none"}
        ),
        "join_room": lambda s, c: s.post(f"{P}/{c.room}/join", c.caller),
        "invite_member": lambda s, c: s.post(
            f"{P}/{c.room}/members", c.caller, json={"user_id": c.target.id}
        ),
        "create_invite": lambda s, c: s.post(
            f"{P}/{c.room}/invites", c.caller, json={"user_id": c.target.id}
        ),
        "list_invites": lambda s, c: s.get(f"{P}/{c.room}/invites", c.caller),
        "revoke_invite": lambda s, c: s.delete(f"{P}/{c.room}/invites/{c.target.id}", c.caller),
        "remove_member": lambda s, c: s.delete(f"{P}/{c.room}/members/{c.target.id}", c.caller),
        "ban": lambda s, c: s.post(f"{P}/{c.room}/bans", c.caller, json={"user_id": c.target.id}),
        "list_bans": lambda s, c: s.get(f"{P}/{c.room}/bans", c.caller),
        "unban": lambda s, c: s.delete(f"{P}/{c.room}/bans/{c.target.id}", c.caller),
        "mute": lambda s, c: s.call("PUT", f"{P}/{c.room}/mutes/{c.target.id}", c.caller, json={}),
        "unmute": lambda s, c: s.delete(f"{P}/{c.room}/mutes/{c.target.id}", c.caller),
        "lock": lambda s, c: s.call("PUT", f"{P}/{c.room}/lock", c.caller, json={"locked": True}),
        "set_role": lambda s, c: s.call(
            "PUT", f"{P}/{c.room}/members/{c.target.id}/role", c.caller, json={"role": "moderator"}
        ),
        "transfer": lambda s, c: s.call(
            "PUT", f"{P}/{c.room}/owner", c.caller, json={"user_id": c.target.id}
        ),
        "list_messages": lambda s, c: s.get(f"{P}/{c.room}/messages", c.caller),
        "post_message": lambda s, c: s.post(
            f"{P}/{c.room}/messages", c.caller, json={"body": "hi", "client_id": "c1"}
        ),
        "get_message": lambda s, c: s.get(f"{P}/{c.room}/messages/{c.message}", c.caller),
        "edit_message": lambda s, c: s.call(
            "PATCH",
            f"{P}/{c.room}/messages/{c.mine}",
            c.caller,
            json={"body": "edited", "client_id": "e1"},
        ),
        "delete_message": lambda s, c: s.call(
            "DELETE", f"{P}/{c.room}/messages/{c.message}", c.caller, params={"client_id": "d1"}
        ),
        "message_history": lambda s, c: s.get(
            f"{P}/{c.room}/messages/{c.message}/history", c.caller
        ),
        "add_reaction": lambda s, c: s.call(
            "PUT",
            f"{P}/{c.room}/messages/{c.message}/reactions/👍",
            c.caller,
            params={"client_id": "r1"},
        ),
        "remove_reaction": lambda s, c: s.call(
            "DELETE",
            f"{P}/{c.room}/messages/{c.message}/reactions/👍",
            c.caller,
            params={"client_id": "r2"},
        ),
        "list_reactors": lambda s, c: s.get(
            f"{P}/{c.room}/messages/{c.message}/reactions/👍", c.caller
        ),
        "get_thread": lambda s, c: s.get(f"{P}/{c.room}/messages/{c.message}/thread", c.caller),
        "mark_room_read": lambda s, c: s.post(f"{P}/{c.room}/read", c.caller, json={"seq": 1}),
        "admin_list_users": lambda s, c: s.get("/api/v1/admin/users", c.caller),
        "admin_set_role": lambda s, c: s.call(
            "PUT", f"/api/v1/admin/users/{c.target.id}/role", c.caller, json={"role": "moderator"}
        ),
        "admin_revoke_sessions": lambda s, c: s.post(
            f"/api/v1/admin/users/{c.target.id}/revoke-sessions", c.caller
        ),
        "admin_reset_two_factor": lambda s, c: s.post(
            f"/api/v1/admin/users/{c.target.id}/reset-2fa", c.caller
        ),
        "admin_deactivate": lambda s, c: s.post(
            f"/api/v1/admin/users/{c.target.id}/deactivate", c.caller
        ),
        "admin_reactivate": lambda s, c: s.post(
            f"/api/v1/admin/users/{c.target.id}/reactivate", c.caller
        ),
        "admin_list_rooms": lambda s, c: s.get("/api/v1/admin/rooms", c.caller),
        "admin_delete_room": lambda s, c: s.delete(f"/api/v1/admin/rooms/{c.room}", c.caller),
        "admin_transfer_room": lambda s, c: s.call(
            "PUT", f"/api/v1/admin/rooms/{c.room}/owner", c.caller, json={"user_id": c.target.id}
        ),
        "admin_audit": lambda s, c: s.get("/api/v1/admin/audit", c.caller),
        "admin_settings": lambda s, c: s.get("/api/v1/admin/settings", c.caller),
        "admin_update_settings": lambda s, c: s.call(
            "PATCH", "/api/v1/admin/settings", c.caller, json={"send_burst": 60}
        ),
    }


async def _room_with_every_standing(
    server: Server, users: dict[Who, Account], target: Account, kind: str
) -> tuple[str, dict[Who, str]]:
    """A room where each user has their standing and `target` is a plain member. Each
    member posted a message before any ban or mute: their ids by standing (the outsider's
    is the owner's)."""
    store = server.services.store
    owner = users[Who.OWNER]
    room = await server.create_room(owner, name="matrix", kind=kind)
    posted: dict[Who, str] = {}
    for who, user in users.items():
        if who is not Who.OUTSIDER:
            role = Role.MODERATOR if who is Who.MODERATOR else Role.MEMBER
            await store.add_member(room, user.id, role, now_ms())
            message = NewMessage(
                sender_id=user.id, body=who.value, client_id=f"{room}-{who.value}", created_at=1
            )
            (appended,) = await store.append_messages(room, [message])
            posted[who] = appended.message.id
    posted[Who.OUTSIDER] = posted[Who.OWNER]
    await store.add_member(room, target.id, Role.MEMBER, now_ms())
    await store.set_muted(room, users[Who.MUTED].id, 0)
    await store.ban(room, users[Who.BANNED].id, owner.id, "", now_ms())
    return room, posted


async def test_each_room_and_admin_route_answers_each_standing_as_documented(
    server: Server,
) -> None:
    users = {who: await server.register(who.value.replace("_", "")) for who in Who}
    await server.services.store.set_server_role(users[Who.SERVER_MODERATOR].id, "moderator")
    await server.services.store.set_server_role(users[Who.ADMIN].id, "admin")
    calls = _calls()
    table = documented()
    # Every route the table decides by its action is exercised here: a new one without a
    # request fails this line.
    assert set(calls) == {k for k, v in ROUTE_ACTIONS.items() if isinstance(v, Action)}
    wrong = []
    for n, (operation, call) in enumerate(calls.items()):
        action = ROUTE_ACTIONS[operation]
        assert isinstance(action, Action)
        kind = "public" if operation in PUBLIC_ROOM_ROUTES else "private"
        for who, caller in users.items():
            # A fresh room and target per cell: one cell's change never decides another's.
            name = f"t{n}{who.value.replace('_', '')}"
            made = await server.services.store.create_user(name, name, None, now_ms())
            target = Account(
                id=made.id, username=name, access_token="", refresh_token="", session_id=""
            )
            room, posted = await _room_with_every_standing(server, users, target, kind)
            cell = Cell(caller, room, target, posted[Who.OWNER], posted[who])
            response = await call(server, cell)
            expected = table[(action.value, who.value)]
            if (response.status_code != 403) != expected:
                wrong.append((operation, who.value, response.status_code, response.text))
    assert wrong == []
