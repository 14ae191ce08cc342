"""Store contract: run-time server settings overridden by admins (any backend)."""

from __future__ import annotations

from chorus.persistence import Store, StoredSetting
from tests.persistence.helpers import T0


async def test_a_setting_is_stored_replaced_and_deleted_returning_the_previous_value(
    store: Store,
) -> None:
    assert await store.server_settings() == []
    assert await store.put_server_setting("send_burst", "5", "u_admin", T0) is None
    assert await store.put_server_setting("registration_open", "false", None, T0 + 1) is None
    assert await store.put_server_setting("send_burst", "7", None, T0 + 2) == "5"
    assert await store.server_settings() == [
        StoredSetting(name="registration_open", value="false", updated_at=T0 + 1, updated_by=None),
        StoredSetting(name="send_burst", value="7", updated_at=T0 + 2, updated_by=None),
    ]
    assert await store.put_server_setting("send_burst", None, "u_admin", T0 + 3) == "7"
    assert await store.put_server_setting("send_burst", None, "u_admin", T0 + 4) is None
    assert [s.name for s in await store.server_settings()] == ["registration_open"]
