"""Profiles: display names and avatars (one of the user's ready image files)."""

from __future__ import annotations

from tests.files.samples import image_bytes
from tests.http.conftest import Account, Server, assert_error
from tests.http.test_files import FILES, TEXT, final, upload


async def test_a_user_changes_their_display_name_with_the_registration_rules(
    server: Server, ada: Account, bob: Account
) -> None:
    changed = await server.call("PATCH", "/api/v1/users/me", ada, json={"display_name": " Ada L "})
    assert changed.status_code == 200
    assert changed.json()["display_name"] == "Ada L"
    seen = await server.get(f"/api/v1/users/{ada.id}", bob)
    assert seen.json()["display_name"] == "Ada L"
    blank = await server.call("PATCH", "/api/v1/users/me", ada, json={"display_name": "\u200b"})
    assert_error(blank, 400, "invalid_value")


async def test_an_avatar_is_a_ready_image_of_the_users_own_shown_to_everyone(
    server: Server, ada: Account, bob: Account
) -> None:
    png = await upload(
        server, ada, image_bytes((64, 64), "PNG"), name="me.png", content_type="image/png"
    )
    image_id = png.json()["id"]
    assert (await final(server, ada, image_id))["state"] == "ready"
    text = await upload(server, ada, TEXT)
    text_id = text.json()["id"]
    await final(server, ada, text_id)
    assert (await server.get(f"{FILES}/{image_id}", bob)).status_code == 404  # not yet shown
    not_image = await server.call("PUT", "/api/v1/users/me/avatar", ada, json={"file_id": text_id})
    assert_error(not_image, 400, "invalid_value")
    not_hers = await server.call("PUT", "/api/v1/users/me/avatar", bob, json={"file_id": image_id})
    assert_error(not_hers, 404, "not_found")
    chosen = await server.call("PUT", "/api/v1/users/me/avatar", ada, json={"file_id": image_id})
    assert chosen.status_code == 200, chosen.text
    profile = (await server.get(f"/api/v1/users/{ada.id}/profile", bob)).json()
    assert profile["user"]["id"] == ada.id
    assert profile["avatar"]["id"] == image_id
    assert profile["avatar"]["state"] == "ready"
    assert (await server.get(f"{FILES}/{image_id}", bob)).status_code == 200
    assert (await server.delete("/api/v1/users/me/avatar", ada)).status_code == 204
    assert (await server.get(f"/api/v1/users/{ada.id}/profile", bob)).json()["avatar"] is None
    assert (await server.get(f"{FILES}/{image_id}", bob)).status_code == 404
