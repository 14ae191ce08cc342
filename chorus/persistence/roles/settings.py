"""Server settings changed at run time: one row per setting an admin overrode.

The store keeps names and JSON texts only; which names exist, their types and
bounds are `chorus.runtime`'s (the caller checks a value before storing it,
and checks again what it reads back: a row may predate a tighter bound).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

import attrs

from .._sql import Engine, Tx, execute, fetch, fetch_value


@attrs.frozen(kw_only=True)
class StoredSetting:
    """One overridden setting: its JSON text, when and by whom (None: the CLI) it was set."""

    name: str
    value: str
    updated_at: int
    updated_by: str | None


class ServerSettings(Protocol):
    """Overrides of the configured defaults of run-time settings."""

    async def server_settings(self) -> list[StoredSetting]:
        """Every overridden setting, by name."""
        ...

    async def put_server_settings(
        self, values: Mapping[str, str | None], by: str | None, now: int
    ) -> dict[str, str | None]:
        """Store each value (JSON text) under its name, or delete the name's row when None
        (back to the default), all in one transaction; returns each name's previous JSON
        text (None: it was not overridden)."""
        ...


class ServerSettingsOnSql(Engine):
    """`ServerSettings` for every engine."""

    async def server_settings(self) -> list[StoredSetting]:
        """See `ServerSettings.server_settings`."""
        return await self._read(server_settings)

    async def put_server_settings(
        self, values: Mapping[str, str | None], by: str | None, now: int
    ) -> dict[str, str | None]:
        """See `ServerSettings.put_server_settings`."""
        return await self._write(lambda: put_server_settings(values, by, now))


def server_settings() -> Tx[list[StoredSetting]]:
    rows = yield from fetch(
        "SELECT name, value, updated_at, updated_by FROM server_settings ORDER BY name"
    )
    return [
        StoredSetting(name=row[0], value=row[1], updated_at=row[2], updated_by=row[3])
        for row in rows
    ]


def put_server_settings(
    values: Mapping[str, str | None], by: str | None, now: int
) -> Tx[dict[str, str | None]]:
    previous = {}
    for name, value in values.items():
        previous[name] = yield from put_server_setting(name, value, by, now)
    return previous


def put_server_setting(name: str, value: str | None, by: str | None, now: int) -> Tx[str | None]:
    # The row is locked by the read, so two admins changing one setting at once each see
    # the other's value as "previous" in the audit log, in some order.
    previous: str | None = yield from fetch_value(
        "SELECT value FROM server_settings WHERE name = $1 FOR NO KEY UPDATE", name
    )
    if value is None:
        yield from execute("DELETE FROM server_settings WHERE name = $1", name)
    else:
        yield from execute(
            "INSERT INTO server_settings (name, value, updated_at, updated_by)"
            " VALUES ($1, $2, $3, $4) ON CONFLICT (name) DO UPDATE"
            " SET value = excluded.value, updated_at = excluded.updated_at,"
            " updated_by = excluded.updated_by",
            name,
            value,
            now,
            by,
        )
    return previous
