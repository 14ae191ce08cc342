"""`LiveSettings`: the run-time settings a node applies now, kept current on every node.

Precedence, lowest first: the node's configuration (defaults < file <
environment < flags, `chorus.config`) gives each setting's default; a value
stored by an admin (`PATCH /api/v1/admin/settings`, `chorus admin settings
set`) overrides it on every node; resetting deletes the stored value, and
the configured default applies again.

A change made through a node applies on that node before the call returns,
and the node announces it on the bus (`SETTINGS_TOPIC`): every other node
reads the settings again at once. The bus may lose a message, and the CLI
writes the store with no node involved, so each node also reads them every
`store_poll_interval` seconds.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from typing import Any, Literal

import attrs
import structlog
import trio

from chorus.cluster import Bus
from chorus.config import Settings
from chorus.persistence import Store, StoredSetting, StoreError

from ._declared import RuntimeValues, check, declaration, from_json, to_json

_log = structlog.get_logger("chorus.runtime")

SETTINGS_TOPIC = "settings:changed"
"""Bus topic on which a node announces that it stored a run-time setting."""

Value = bool | int | float | str


@attrs.frozen(kw_only=True)
class SettingState:
    """One setting as `GET /api/v1/admin/settings` shows it."""

    name: str
    value: Value
    default: Value
    """The node's configured value."""
    source: Literal["config", "store"]
    """`config` (the default applies) or `store` (an admin's value overrides it)."""
    updated_at: int | None
    updated_by: str | None
    """The admin's user id; None for the CLI, or when not overridden."""


@attrs.frozen(kw_only=True)
class SettingChange:
    """One stored change, for the audit log: stored values before and after (None: the
    configured default applies)."""

    name: str
    old: Value | None
    new: Value | None

    def details(self) -> dict[str, Any]:
        return {"from": self.old, "to": self.new}


def check_updates(updates: Mapping[str, object]) -> dict[str, Value | None]:
    """Every value checked (None: reset) before anything is stored; `ValueError` naming
    the first setting that is unknown or refuses its value."""
    return {name: None if value is None else check(name, value) for name, value in updates.items()}


async def store_updates(
    store: Store, updates: Mapping[str, Value | None], by: str | None, now: int
) -> list[SettingChange]:
    """Store checked `updates` (None deletes: back to the default), all or none; the
    changes, for the caller to audit (a setting set to its stored value is none)."""
    texts = {name: None if value is None else to_json(value) for name, value in updates.items()}
    previous_texts = await store.put_server_settings(texts, by, now)
    changes = []
    for name, value in updates.items():
        stored, previous = texts[name], previous_texts[name]
        if previous != stored:
            old = None if previous is None else _loaded(name, previous)
            changes.append(SettingChange(name=name, old=old, new=value))
    return changes


def _loaded(name: str, text: str) -> Value | None:
    try:
        return from_json(name, text)
    except ValueError:
        return None


class LiveSettings:
    """The node's run-time settings: `current` is what applies now (read it at each use)."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        bus: Bus | None = None,
        *,
        reload_interval: float,
        on_change: Callable[[RuntimeValues, RuntimeValues], None] | None = None,
    ) -> None:
        """`on_change(before, after)` is called (and must not block) each time the values
        in use change on this node, whoever changed them."""
        self.defaults = RuntimeValues.configured(settings)
        self._on_change = on_change
        self.current = self.defaults
        self._stored: dict[str, StoredSetting] = {}
        self._store = store
        self._bus = bus
        self._interval = reload_interval
        # One pending wake-up is enough: a reload reads everything stored so far.
        self._wake_send, self._wake = trio.open_memory_channel[None](1)

    def states(self) -> list[SettingState]:
        """Every setting: its value now, its default and where the value comes from."""
        return [
            SettingState(
                name=field.name,
                value=getattr(self.current, field.name),
                default=getattr(self.defaults, field.name),
                source="store" if (row := self._stored.get(field.name)) else "config",
                updated_at=row.updated_at if row else None,
                updated_by=row.updated_by if row else None,
            )
            for field in attrs.fields(RuntimeValues)
        ]

    async def reload(self) -> None:
        """Read the stored values; each one that is unknown or no longer valid is ignored
        (logged), so its default applies. Raises what the store raises."""
        rows = await self._store.server_settings()
        values: dict[str, Any] = {}
        stored = {}
        for row in rows:
            try:
                declaration(row.name)
                values[row.name] = from_json(row.name, row.value)
            except ValueError as exc:
                _log.warning("settings.stored_value_ignored", setting=row.name, error=str(exc))
                continue
            stored[row.name] = row
        current = attrs.evolve(self.defaults, **values)
        before, self.current, self._stored = self.current, current, stored
        if current != before:
            _log.info("settings.applied", overridden=sorted(stored))
            if self._on_change is not None:
                self._on_change(before, current)

    async def change(
        self, updates: Mapping[str, Value | None], by: str | None, now: int
    ) -> list[SettingChange]:
        """Store checked `updates` (see `check_updates`), apply them here, and tell the
        other nodes; the changes made. Raises what the store raises."""
        changes = await store_updates(self._store, updates, by, now)
        await self.reload()
        if changes and self._bus is not None:
            try:
                await self._bus.publish(SETTINGS_TOPIC, b"")
            except Exception as exc:  # best effort: the other nodes reload on their interval
                _log.warning("settings.change_not_published", error=str(exc))
        return changes

    def changed_elsewhere(self, _payload: bytes) -> None:
        """The bus's delivery: another node stored a setting; reload soon (never blocks)."""
        with contextlib.suppress(trio.WouldBlock):  # a reload is already pending
            self._wake_send.send_nowait(None)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Reload when another node says so, and every `reload_interval` seconds (supervised).

        A store that is away fails one reload, not the task: the values in use stay.
        """
        task_status.started()
        while True:
            with trio.move_on_after(self._interval):
                await self._wake.receive()
            try:
                await self.reload()
            except StoreError as exc:
                _log.warning("settings.reload_failed", error=str(exc))
