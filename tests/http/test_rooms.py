"""Rooms over HTTP: creation, listing, the public directory, joining, invitations, removal, DMs."""

from __future__ import annotations

from typing import Any

from chorus.bots import provision
from chorus.persistence import Role, now_ms
from chorus.text import VISIBLE_RULE
from tests.http.conftest import Account, Server, assert_error, published_rule


async def room_members(server: Server, user: Account, room: str) -> dict[str, Any]:
    response = await server.get(f"/api/v1/rooms/{room}", user)
    assert response.status_code == 200, response.text
    return {member["user_id"]: member for member in response.json()["members"]}


async def add_moderator(server: Server, room: str, user: Account) -> None:
    await server.services.store.add_member(room, user.id, Role.MODERATOR, now_ms())


async def test_room_names_that_could_drive_a_screen_are_refused(
    server: Server, ada: Account
) -> None:
    for name in ("\x1b[2Jwiped", "line\nbreak", "\u202eflipped", "\u200b"):
        refused = await server.post("/api/v1/rooms", ada, json={"name": name, "kind": "public"})
        assert "name" in assert_error(refused, 400, "invalid_value")
    ok = await server.post("/api/v1/rooms", ada, json={"name": "café ☕", "kind": "public"})
    assert ok.status_code == 201


async def test_the_published_room_name_rule_is_the_enforced_one(
    server: Server, ada: Account
) -> None:
    # Names with C1 controls, tabs or bidi controls were schema-valid (issue 12).
    accepts = await published_rule(server, "POST", "/api/v1/rooms")
    for name in ("a\x99b", "tab\there", "para\u2029graph", "x\u2067y", "\x85"):
        body = {"name": name, "kind": "public"}
        assert not accepts(body), name
        refused = await server.post("/api/v1/rooms", ada, json=body)
        assert "name" in assert_error(refused, 400, "invalid_value")
    # The rule the pattern cannot state is the documented refusal, word for word.
    for name in ("\u200b", " ", "\u0301\u20dd"):
        body = {"name": name, "kind": "public"}
        assert accepts(body), name
        refused = await server.post("/api/v1/rooms", ada, json=body)
        assert assert_error(refused, 400, "invalid_value") == f"name: {VISIBLE_RULE}"
    body = {"name": "e\u0301 \U0001f469\u200d\U0001f4bb", "kind": "public"}
    assert accepts(body)
    assert (await server.post("/api/v1/rooms", ada, json=body)).status_code == 201


async def test_the_published_dm_body_is_exactly_one_of_user_id_and_user_ids(
    server: Server, ada: Account, bob: Account
) -> None:
    # `{}` and both fields at once were schema-valid, and refused (issue 12).
    accepts = await published_rule(server, "POST", "/api/v1/dms")
    refused_bodies: list[dict[str, object]] = [
        {},
        {"user_id": None, "user_ids": None},
        {"user_id": bob.id, "user_ids": [bob.id]},
    ]
    for body in refused_bodies:
        assert not accepts(body), body
        refused = await server.post("/api/v1/dms", ada, json=body)
        message = assert_error(refused, 400, "invalid_value")
        assert message == "give exactly one of user_id and user_ids"
    accepted_bodies: list[dict[str, object]] = [
        {"user_id": bob.id, "user_ids": None},
        {"user_id": None, "user_ids": [bob.id]},
    ]
    for body in accepted_bodies:
        assert accepts(body), body
        opened = await server.post("/api/v1/dms", ada, json=body)
        assert opened.status_code in (200, 201), opened.text


async def test_a_path_segment_of_a_sibling_route_is_not_an_id(server: Server, ada: Account) -> None:
    # PATCH /rooms/public reached the {room_id} route, and OPTIONS advertised PATCH (issue 12).
    for method in ("PATCH", "OPTIONS", "DELETE"):
        refused = await server.call(method, "/api/v1/rooms/public", ada, json={})
        assert_error(refused, 405, "method_not_allowed")
        assert set(refused.headers["allow"].split(", ")) == {"GET", "HEAD"}
    accepts = await published_rule(server, "PATCH", "/api/v1/rooms/{room_id}", "room_id")
    assert not accepts("public")
    assert accepts("r_anything")
    listed = await server.get("/api/v1/rooms/public", ada)
    assert listed.status_code == 200


async def test_create_room_makes_the_caller_owner(server: Server, ada: Account) -> None:
    response = await server.post("/api/v1/rooms", ada, json={"name": "general", "kind": "private"})
    assert response.status_code == 201
    room = response.json()
    assert set(room) == {
        "id",
        "name",
        "kind",
        "created_by",
        "created_at",
        "last_seq",
        "read_receipts",
        "encrypted",
    }
    assert (room["name"], room["kind"], room["created_by"], room["last_seq"]) == (
        "general",
        "private",
        ada.id,
        0,
    )
    mine = (await server.get("/api/v1/rooms", ada)).json()["rooms"]
    assert [(r["id"], r["role"], r["read_seq"]) for r in mine] == [(room["id"], "owner", 0)]


async def test_the_public_directory_pages_through_public_rooms_only(
    server: Server, ada: Account, bob: Account
) -> None:
    public = {await server.create_room(ada, f"public {i}") for i in range(5)}
    await server.create_room(ada, "secret", kind="private")
    seen: list[str] = []
    after: str | None = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 2} | ({"after": after} if after else {})
        page = (await server.get("/api/v1/rooms/public", bob, params=params)).json()
        seen += [room["id"] for room in page["rooms"]]
        pages += 1
        after = page["next_after"]
        if after is None:
            break
    assert pages == 3
    assert seen == sorted(public)
    default = (await server.get("/api/v1/rooms/public", bob)).json()
    assert len(default["rooms"]) == 5
    assert default["next_after"] is None


async def test_the_public_directory_hides_the_rooms_of_bot_runs(
    server: Server, ada: Account, bob: Account
) -> None:
    public = await server.create_room(ada, "lobby")
    services = server.services
    await provision(services.store, services.settings, bots=4, rooms=2, room_size=2)
    page = (await server.get("/api/v1/rooms/public", bob)).json()
    assert [room["id"] for room in page["rooms"]] == [public]


async def test_room_details_are_for_members_or_public_rooms(
    server: Server, ada: Account, bob: Account
) -> None:
    public = await server.create_room(ada, "lobby")
    private = await server.create_room(ada, "secret", kind="private")
    await server.services.presence.directory.report(ada.id, "online")
    detail = (await server.get(f"/api/v1/rooms/{public}", bob)).json()
    assert detail["name"] == "lobby"
    assert detail["members"] == [
        {
            "user_id": ada.id,
            "role": "owner",
            "joined_at": detail["members"][0]["joined_at"],
            "status": "online",
            "read_seq": None,  # bob is not a member: no read receipts for him
        }
    ]
    assert_error(await server.get(f"/api/v1/rooms/{private}", bob), 403, "forbidden")
    assert (await server.get(f"/api/v1/rooms/{private}", ada)).status_code == 200
    assert_error(await server.get("/api/v1/rooms/r_nothing", ada), 404, "not_found")


async def test_anyone_joins_public_rooms_but_not_private_ones(
    server: Server, ada: Account, bob: Account
) -> None:
    public = await server.create_room(ada, "lobby")
    private = await server.create_room(ada, "secret", kind="private")
    joined = await server.post(f"/api/v1/rooms/{public}/join", bob)
    assert joined.status_code == 200
    assert (joined.json()["id"], joined.json()["role"]) == (public, "member")
    again = await server.post(f"/api/v1/rooms/{public}/join", bob)
    assert again.json() == joined.json()
    assert_error(await server.post(f"/api/v1/rooms/{private}/join", bob), 403, "forbidden")
    assert_error(await server.post("/api/v1/rooms/r_nothing/join", bob), 404, "not_found")
    assert [r["id"] for r in (await server.get("/api/v1/rooms", bob)).json()["rooms"]] == [public]


async def test_only_the_owner_and_moderators_invite(server: Server, ada: Account) -> None:
    bob, cy, dee = [await server.register(name) for name in ("bob", "cyd", "dee")]
    room = await server.create_room(ada, "secret", kind="private")
    invited = await server.post(f"/api/v1/rooms/{room}/members", ada, json={"user_id": bob.id})
    assert invited.status_code == 201
    assert (invited.json()["user_id"], invited.json()["role"]) == (bob.id, "member")
    repeat = await server.post(f"/api/v1/rooms/{room}/members", ada, json={"user_id": bob.id})
    assert repeat.status_code == 200

    by_member = await server.post(f"/api/v1/rooms/{room}/members", bob, json={"user_id": cy.id})
    assert_error(by_member, 403, "forbidden")
    by_outsider = await server.post(f"/api/v1/rooms/{room}/members", cy, json={"user_id": cy.id})
    assert_error(by_outsider, 403, "forbidden")
    await add_moderator(server, room, dee)
    by_moderator = await server.post(f"/api/v1/rooms/{room}/members", dee, json={"user_id": cy.id})
    assert by_moderator.status_code == 201
    unknown = await server.post(f"/api/v1/rooms/{room}/members", ada, json={"user_id": "u_x"})
    assert_error(unknown, 404, "not_found")
    assert set(await room_members(server, ada, room)) == {ada.id, bob.id, cy.id, dee.id}


async def test_removal_follows_the_role_rules(server: Server, ada: Account) -> None:
    names = ("mod", "mod2", "mem", "mem2")
    mod, mod2, mem, mem2 = [await server.register(name) for name in names]
    room = await server.create_room(ada, "club")
    for user in (mem, mem2):
        assert (await server.post(f"/api/v1/rooms/{room}/join", user)).status_code == 200
    for user in (mod, mod2):
        await add_moderator(server, room, user)

    def remove(caller: Account, target: Account) -> Any:
        return server.delete(f"/api/v1/rooms/{room}/members/{target.id}", caller)

    assert_error(await remove(mem, mem2), 403, "forbidden")  # members remove nobody
    assert_error(await remove(mod, mod2), 403, "forbidden")  # only the owner removes moderators
    assert_error(await remove(mod, ada), 403, "forbidden")  # nobody removes the owner
    assert_error(await remove(ada, ada), 403, "forbidden")  # and the owner cannot leave
    assert (await remove(mod, mem2)).status_code == 204
    assert (await remove(ada, mod2)).status_code == 204
    assert_error(await remove(ada, mem2), 404, "not_found")  # not a member any more
    assert (await remove(mem, mem)).status_code == 204  # leaving
    assert set(await room_members(server, ada, room)) == {ada.id, mod.id}
    assert (await server.get("/api/v1/rooms", mem)).json()["rooms"] == []
    assert_error(await remove(mem, mem), 403, "forbidden")  # no longer a member


async def test_direct_rooms_are_idempotent_and_closed(
    server: Server, ada: Account, bob: Account
) -> None:
    created = await server.post("/api/v1/dms", ada, json={"user_id": bob.id})
    assert created.status_code == 201
    room = created.json()
    assert room["kind"] == "direct"
    again = await server.post("/api/v1/dms", ada, json={"user_id": bob.id})
    assert (again.status_code, again.json()) == (200, room)
    reverse = await server.post("/api/v1/dms", bob, json={"user_id": ada.id})
    assert (reverse.status_code, reverse.json()["id"]) == (200, room["id"])
    assert_error(await server.post("/api/v1/dms", ada, json={"user_id": "u_x"}), 404, "not_found")

    cy = await server.register("cyd")
    assert_error(await server.post(f"/api/v1/rooms/{room['id']}/join", cy), 403, "forbidden")
    invite = await server.post(f"/api/v1/rooms/{room['id']}/members", ada, json={"user_id": cy.id})
    assert_error(invite, 403, "forbidden")
    leave = await server.delete(f"/api/v1/rooms/{room['id']}/members/{ada.id}", ada)
    assert_error(leave, 403, "forbidden")
    assert_error(await server.get(f"/api/v1/rooms/{room['id']}", cy), 403, "forbidden")
    mine = (await server.get("/api/v1/rooms", bob)).json()["rooms"]
    assert [(r["id"], r["kind"]) for r in mine] == [(room["id"], "direct")]
