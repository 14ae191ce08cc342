"""Invitations to private rooms over HTTP: invite, list, accept, decline, revoke, audit."""

from __future__ import annotations

from chorus.persistence import AuditQuery, Role, now_ms
from tests.http.conftest import Account, Server, assert_error

P = "/api/v1/rooms"
ME = "/api/v1/me/invites"


async def _post(server: Server, room: str, user: Account, body: str) -> None:
    json = {"body": body, "client_id": f"{user.id}-{body}"}
    assert (await server.post(f"{P}/{room}/messages", user, json=json)).status_code == 201


async def test_an_accepted_invitation_makes_a_member_who_reads_the_room(
    server: Server, ada: Account, bob: Account
) -> None:
    room = await server.create_room(ada, "ops", "private")
    made = await server.post(f"{P}/{room}/invites", ada, json={"user_id": bob.id})
    assert made.status_code == 201
    assert made.json()["user_id"] == bob.id
    assert made.json()["invited_by"] == ada.id
    again = await server.post(f"{P}/{room}/invites", ada, json={"user_id": bob.id})
    assert (again.status_code, again.json()) == (200, made.json())
    listed = (await server.get(f"{P}/{room}/invites", ada)).json()["invites"]
    assert [i["user_id"] for i in listed] == [bob.id]
    mine = (await server.get(ME, bob)).json()["invites"]
    assert [(i["room"]["id"], i["invited_by"]) for i in mine] == [(room, ada.id)]
    # Pending is not a member: no history yet.
    assert_error(await server.get(f"{P}/{room}/messages", bob), 403, "forbidden")
    await _post(server, room, ada, "before")
    accepted = await server.post(f"{ME}/{room}/accept", bob)
    assert accepted.status_code == 200
    assert (accepted.json()["id"], accepted.json()["role"]) == (room, "member")
    await _post(server, room, ada, "after")
    history = await server.get(f"{P}/{room}/messages", bob)
    bodies = [e["body"] for e in history.json()["events"] if "body" in e]
    assert bodies == ["before", "after"]
    assert (await server.get(ME, bob)).json()["invites"] == []
    assert (await server.get(f"{P}/{room}/invites", ada)).json()["invites"] == []
    assert_error(await server.post(f"{ME}/{room}/accept", bob), 404, "not_found")
    member = await server.post(f"{P}/{room}/invites", ada, json={"user_id": bob.id})
    assert_error(member, 409, "conflict")
    events = await server.services.store.list_audit(AuditQuery(limit=100))
    mine_events = [
        (e.action, e.actor_id, e.target, e.details.get("room_id"))
        for e in events
        if e.action.startswith("room.invite")
    ]
    assert sorted(mine_events) == [
        ("room.invite_accepted", bob.id, bob.id, room),
        ("room.invited", ada.id, bob.id, room),
    ]


async def test_revoked_and_declined_invitations_cannot_be_accepted(
    server: Server, ada: Account, bob: Account
) -> None:
    carol = await server.register("carol")
    room = await server.create_room(ada, "ops", "private")
    for user in (bob, carol):
        invited = await server.post(f"{P}/{room}/invites", ada, json={"user_id": user.id})
        assert invited.status_code == 201
    assert (await server.delete(f"{P}/{room}/invites/{bob.id}", ada)).status_code == 204
    assert_error(await server.delete(f"{P}/{room}/invites/{bob.id}", ada), 404, "not_found")
    assert_error(await server.post(f"{ME}/{room}/accept", bob), 404, "not_found")
    assert (await server.post(f"{ME}/{room}/decline", carol)).status_code == 204
    assert_error(await server.post(f"{ME}/{room}/accept", carol), 404, "not_found")
    assert_error(await server.post(f"{ME}/{room}/decline", carol), 404, "not_found")
    store = server.services.store
    assert await store.get_membership(room, bob.id) is None
    assert await store.get_membership(room, carol.id) is None
    revoked = await store.list_audit(AuditQuery(action="room.invite_revoked"))
    assert [(e.actor_id, e.target) for e in revoked] == [(ada.id, bob.id)]


async def test_who_may_invite_and_whom(server: Server, ada: Account, bob: Account) -> None:
    carol, dan = await server.register("carol"), await server.register("dan")
    room = await server.create_room(ada, "ops", "private")
    store = server.services.store
    await store.add_member(room, bob.id, Role.MEMBER, now_ms())
    plain = await server.post(f"{P}/{room}/invites", bob, json={"user_id": carol.id})
    assert_error(plain, 403, "forbidden")
    assert_error(await server.get(f"{P}/{room}/invites", bob), 403, "forbidden")
    await store.ban(room, dan.id, ada.id, "", now_ms())
    banned = await server.post(f"{P}/{room}/invites", ada, json={"user_id": dan.id})
    assert "banned" in assert_error(banned, 403, "forbidden")
    # Banning a user with a pending invitation deletes it.
    assert (await server.post(f"{P}/{room}/invites", ada, json={"user_id": carol.id})).is_success
    ban = await server.post(f"{P}/{room}/bans", ada, json={"user_id": carol.id})
    assert ban.status_code == 204
    assert_error(await server.post(f"{ME}/{room}/accept", carol), 404, "not_found")
    public = await server.create_room(ada, "lobby", "public")
    open_room = await server.post(f"{P}/{public}/invites", ada, json={"user_id": carol.id})
    assert_error(open_room, 403, "forbidden")
    unknown = await server.post(f"{P}/{room}/invites", ada, json={"user_id": "u_nobody"})
    assert_error(unknown, 404, "not_found")


async def test_a_deactivated_user_cannot_accept_an_invitation_with_a_session_still_cached(
    server: Server, ada: Account, bob: Account
) -> None:
    # `chorus admin users deactivate` writes the store directly: until the node's session
    # cache forgets bob's session, his token still authenticates. The membership must not.
    room = await server.create_room(ada, "ops", "private")
    assert (await server.post(f"{P}/{room}/invites", ada, json={"user_id": bob.id})).is_success
    assert (await server.get(ME, bob)).status_code == 200  # his session is now cached
    await server.services.store.set_deactivated(bob.id, now_ms())
    refused = await server.post(f"{ME}/{room}/accept", bob)
    assert "deactivated" in assert_error(refused, 403, "forbidden")
    assert [m.user_id for m in await server.services.store.members(room)] == [ada.id]
    assert [i.user_id for i in await server.services.store.room_invites(room)] == [bob.id]
