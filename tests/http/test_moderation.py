"""Moderation over HTTP: who outranks whom, and staff who moderate rooms they are not in."""

from __future__ import annotations

from chorus.persistence import Role, now_ms
from tests.http.conftest import Account, Server, assert_error

P = "/api/v1/rooms"


async def test_moderators_act_only_on_those_they_outrank_and_nobody_removes_the_owner(
    server: Server, ada: Account, bob: Account
) -> None:
    carol, dan = await server.register("carol"), await server.register("dan")
    room = await server.create_room(ada, "ops", "private")
    store = server.services.store
    for user, role in ((bob, Role.MODERATOR), (carol, Role.MODERATOR), (dan, Role.MEMBER)):
        await store.add_member(room, user.id, role, now_ms())
    peer = await server.post(f"{P}/{room}/bans", bob, json={"user_id": carol.id})
    assert "cannot ban a moderator" in assert_error(peer, 403, "forbidden")
    owner = await server.delete(f"{P}/{room}/members/{ada.id}", bob)
    assert_error(owner, 403, "forbidden")
    promote = await server.call(
        "PUT", f"{P}/{room}/members/{dan.id}/role", bob, json={"role": "moderator"}
    )
    assert_error(promote, 403, "forbidden")  # only the owner (or an admin) sets roles
    assert (await server.call("PUT", f"{P}/{room}/mutes/{dan.id}", bob, json={})).status_code == 204
    assert (await server.delete(f"{P}/{room}/members/{dan.id}", bob)).status_code == 204
    demoted = await server.call(
        "PUT", f"{P}/{room}/members/{bob.id}/role", ada, json={"role": "member"}
    )
    assert demoted.json()["role"] == "member"
    # The change applies at once: bob is no longer a moderator.
    again = await server.post(f"{P}/{room}/bans", bob, json={"user_id": carol.id})
    assert_error(again, 403, "forbidden")
    transfer = await server.call("PUT", f"{P}/{room}/owner", ada, json={"user_id": carol.id})
    assert transfer.status_code == 204
    roles = {m.user_id: m.role for m in await store.members(room)}
    assert (roles[ada.id], roles[carol.id]) == (Role.MODERATOR, Role.OWNER)


async def test_a_server_moderator_moderates_a_private_room_without_joining_it(
    server: Server, ada: Account, bob: Account
) -> None:
    staff = await server.register("staff")
    await server.services.store.set_server_role(staff.id, "moderator")
    room = await server.create_room(ada, "ops", "private")
    await server.services.store.add_member(room, bob.id, Role.MEMBER, now_ms())
    assert (await server.get(f"{P}/{room}", staff)).status_code == 200
    assert_error(await server.get(f"{P}/{room}/messages", staff), 403, "forbidden")
    banned = await server.post(f"{P}/{room}/bans", staff, json={"user_id": bob.id, "reason": "x"})
    assert banned.status_code == 204
    invite = await server.post(f"{P}/{room}/members", ada, json={"user_id": bob.id})
    assert "banned" in assert_error(invite, 403, "forbidden")
    owner = await server.call("PUT", f"{P}/{room}/mutes/{ada.id}", staff, json={})
    assert "never muted" in assert_error(owner, 403, "forbidden")
    settings = await server.call("PATCH", f"{P}/{room}", staff, json={"read_receipts": False})
    assert_error(settings, 403, "forbidden")  # owner-only, admins aside
