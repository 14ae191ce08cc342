"""Store contract: run-time server settings overridden by admins (any backend)."""

from __future__ import annotations

from chorus.persistence import Store, StoredSetting
from tests.persistence.helpers import T0


async def test_settings_are_stored_replaced_and_deleted_returning_the_previous_values(
    store: Store,
) -> None:
    assert await store.server_settings() == []
    assert await store.put_server_settings({"send_burst": "5"}, "u_admin", T0) == {
        "send_burst": None
    }
    assert await store.put_server_settings({"registration_open": "false"}, None, T0 + 1) == {
        "registration_open": None
    }
    assert await store.put_server_settings({"send_burst": "7"}, None, T0 + 2) == {"send_burst": "5"}
    assert await store.server_settings() == [
        StoredSetting(name="registration_open", value="false", updated_at=T0 + 1, updated_by=None),
        StoredSetting(name="send_burst", value="7", updated_at=T0 + 2, updated_by=None),
    ]
    both = {"send_burst": None, "max_message_chars": "10"}
    assert await store.put_server_settings(both, "u_admin", T0 + 3) == {
        "send_burst": "7",
        "max_message_chars": None,
    }
    assert await store.put_server_settings({"send_burst": None}, None, T0 + 4) == {
        "send_burst": None
    }
    assert [s.name for s in await store.server_settings()] == [
        "max_message_chars",
        "registration_open",
    ]
