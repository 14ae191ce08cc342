"""The SDK's profile calls: display name and avatar, against a real node."""

from __future__ import annotations

import io
from pathlib import Path

from tests.e2e.node import chat_user, open_node
from tests.files.samples import image_bytes


async def test_the_sdk_sets_a_display_name_and_an_avatar_others_see(tmp_path: Path) -> None:
    async with open_node(tmp_path) as node, chat_user(node) as ada, chat_user(node) as bob:
        renamed = await ada.api.set_display_name("Ada L.")
        assert renamed.display_name == "Ada L."
        uploaded = await ada.api.upload_file(
            io.BytesIO(image_bytes((32, 32), "PNG")), name="me.png", content_type="image/png"
        )
        ready = await ada.api.wait_for_file(uploaded.id, timeout=30)
        assert ready.state == "ready"
        avatar = await ada.api.set_avatar(ready.id)
        assert avatar.id == ready.id
        user, seen = await bob.api.profile(ada.id)
        assert (user.display_name, seen is not None and seen.id) == ("Ada L.", ready.id)
        assert (await bob.api.file(ready.id)).id == ready.id  # an avatar is visible to all
        await ada.api.remove_avatar()
        assert (await bob.api.profile(ada.id))[1] is None
