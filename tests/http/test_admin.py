"""The admin API: server admins only; users, sessions, deactivation, 2FA reset, rooms."""

from __future__ import annotations

from chorus.http import all_routes
from chorus.persistence import Role, now_ms
from tests.http.conftest import PASSWORD, Account, Server, assert_error


async def make_admin(server: Server, account: Account) -> Account:
    await server.services.store.set_server_role(account.id, "admin")
    return account


async def test_every_admin_route_refuses_members_and_server_moderators(
    server: Server, ada: Account, bob: Account
) -> None:
    await server.services.store.set_server_role(bob.id, "moderator")
    admin_routes = [r for r in all_routes() if r.path.startswith("/api/v1/admin/")]
    assert len(admin_routes) >= 8
    bodies = {"admin_set_role": {"role": "admin"}, "admin_transfer_room": {"user_id": ada.id}}
    for route in admin_routes:
        path = route.path.replace("{user_id}", ada.id).replace("{room_id}", "r_x")
        body = bodies.get(route.operation_id) if route.method in ("PUT", "POST") else None
        for caller in (ada, bob):
            refused = await server.call(route.method, path, caller, json=body)
            assert_error(refused, 403, "forbidden")


async def test_admins_list_users_by_role_a_page_at_a_time_and_grant_roles(
    server: Server, ada: Account, bob: Account
) -> None:
    await make_admin(server, ada)
    carol = await server.register("carol")
    first = (await server.get("/api/v1/admin/users", ada, params={"limit": 2})).json()
    assert [(u["user"]["username"], u["role"]) for u in first["users"]] == [
        ("ada", "admin"),
        ("bob", "member"),
    ]
    assert first["next_after"] == "bob"
    rest = await server.get("/api/v1/admin/users", ada, params={"after": "bob"})
    assert [u["user"]["id"] for u in rest.json()["users"]] == [carol.id]
    assert rest.json()["next_after"] is None
    granted = await server.call(
        "PUT", f"/api/v1/admin/users/{bob.id}/role", ada, json={"role": "moderator"}
    )
    assert granted.status_code == 204
    moderators = await server.get("/api/v1/admin/users", ada, params={"role": "moderator"})
    assert [u["user"]["id"] for u in moderators.json()["users"]] == [bob.id]
    missing = await server.call(
        "PUT", "/api/v1/admin/users/u_missing/role", ada, json={"role": "admin"}
    )
    assert_error(missing, 404, "not_found")


async def test_a_deactivated_user_cannot_sign_in_or_refresh_until_reactivated(
    server: Server, ada: Account, bob: Account
) -> None:
    await make_admin(server, ada)
    login = {"username": "bob", "password": PASSWORD}
    ended = await server.post(f"/api/v1/admin/users/{bob.id}/deactivate", ada)
    assert ended.status_code == 200
    assert ended.json() == {"revoked_sessions": 1}
    assert_error(await server.get("/api/v1/users/me", bob), 401, "invalid_token")
    assert_error(await server.post("/api/v1/auth/login", json=login), 401, "invalid_credentials")
    refreshed = await server.post("/api/v1/auth/refresh", json={"refresh_token": bob.refresh_token})
    assert refreshed.status_code == 401
    back = await server.post(f"/api/v1/admin/users/{bob.id}/reactivate", ada)
    assert back.status_code == 204
    assert (await server.post("/api/v1/auth/login", json=login)).status_code == 200


async def test_admins_end_a_users_sessions_and_reset_their_two_factor(
    server: Server, ada: Account, bob: Account
) -> None:
    await make_admin(server, ada)
    await server.services.store.begin_totp(bob.id, b"k" * 20, now_ms())
    assert await server.services.store.enable_totp(bob.id, 1, [], now_ms())
    assert await server.services.store.get_totp(bob.id) is not None
    reset = await server.post(f"/api/v1/admin/users/{bob.id}/reset-2fa", ada)
    assert reset.status_code == 204
    assert await server.services.store.get_totp(bob.id) is None
    revoked = await server.post(f"/api/v1/admin/users/{bob.id}/revoke-sessions", ada)
    assert revoked.json() == {"revoked_sessions": 1}
    assert_error(await server.get("/api/v1/users/me", bob), 401, "invalid_token")


async def test_admins_list_rooms_and_transfer_them(
    server: Server, ada: Account, bob: Account
) -> None:
    await make_admin(server, ada)
    carol = await server.register("carol")
    room = await server.create_room(bob, "ops", "private")
    await server.services.store.add_member(room, carol.id, Role.MEMBER, now_ms())
    listed = (await server.get("/api/v1/admin/rooms", ada)).json()
    assert [r["id"] for r in listed["rooms"]] == [room]
    moved = await server.call(
        "PUT", f"/api/v1/admin/rooms/{room}/owner", ada, json={"user_id": carol.id}
    )
    assert moved.status_code == 204
    roles = {m.user_id: m.role for m in await server.services.store.members(room)}
    assert roles == {bob.id: Role.MODERATOR, carol.id: Role.OWNER}
    not_member = await server.call(
        "PUT", f"/api/v1/admin/rooms/{room}/owner", ada, json={"user_id": ada.id}
    )
    assert_error(not_member, 404, "not_found")


async def test_admins_delete_rooms_but_not_direct_ones(
    server: Server, ada: Account, bob: Account
) -> None:
    await make_admin(server, ada)
    room = await server.create_room(bob, "gone")
    deleted = await server.delete(f"/api/v1/admin/rooms/{room}", ada)
    assert deleted.status_code == 204
    assert_error(await server.get(f"/api/v1/rooms/{room}", bob), 404, "not_found")
    assert_error(await server.delete(f"/api/v1/admin/rooms/{room}", ada), 404, "not_found")
    dm = (await server.post("/api/v1/dms", bob, json={"user_id": ada.id})).json()["id"]
    assert_error(await server.delete(f"/api/v1/admin/rooms/{dm}", ada), 400, "invalid_value")
