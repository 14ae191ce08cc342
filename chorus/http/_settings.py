"""`/api/v1/admin/settings`: the server settings an admin may change while nodes run.

Server admins only (`Action.ADMIN`). The PATCH body is derived from the
declarations of `chorus.runtime` (one field per setting, its type and
bounds), so the published schema is the enforced one. Each change is audited
(`setting.changed`, old and new stored values) and applies on every node at
once (`LiveSettings.change`).
"""

from __future__ import annotations

import enum
from typing import Any

import attrs

from chorus.auth import AuditAction
from chorus.persistence import now_ms
from chorus.protocol import ErrorCode
from chorus.runtime import DECLARATIONS, Declaration, LiveSettings, check_updates
from chorus.services import Services

from ._admin import require_admin
from ._errors import bad_request
from ._input import flag, integer, number, text
from ._output import SettingsView, SettingView
from ._routing import API_PREFIX, Call, Reply, RouteTable

table = RouteTable("admin")

SETTINGS = f"{API_PREFIX}/admin/settings"


class _Unchanged(enum.Enum):
    UNCHANGED = "unchanged"


UNCHANGED = _Unchanged.UNCHANGED
"""A PATCH field left out: the setting stays as it is (null resets it)."""


def _patch_field(declared: Declaration) -> Any:
    description = f"{declared.help}. Null: back to the configured default."
    low, high = declared.bounds.minimum, declared.bounds.maximum
    match declared.kind:
        case "bool":
            return flag(description, default=UNCHANGED, nullable=True)
        case "int" if low is not None and high is not None:
            return integer(int(low), int(high), description, default=UNCHANGED, nullable=True)
        case "float" if low is not None and high is not None:
            return number(low, high, description, default=UNCHANGED, nullable=True)
        case "str" if low is not None and high is not None:
            return text(int(low), int(high), description, default=UNCHANGED, nullable=True)
    raise AssertionError(f"no HTTP field for setting {declared.name} ({declared.kind})")


SettingsPatch: type[Any] = attrs.make_class(
    "SettingsPatch",
    {declared.name: _patch_field(declared) for declared in DECLARATIONS},
    frozen=True,
    kw_only=True,
)
SettingsPatch.__doc__ = (
    "The settings to change: a value sets one, null resets it to the configured default,"
    " a setting left out stays as it is."
)


def settings_view(live: LiveSettings) -> SettingsView:
    kinds = {declared.name: declared for declared in DECLARATIONS}
    return SettingsView(
        settings=[
            SettingView(
                name=state.name,
                value=state.value,
                default=state.default,
                source=state.source,
                kind=kinds[state.name].kind,  # type: ignore[arg-type]
                minimum=kinds[state.name].bounds.minimum,
                maximum=kinds[state.name].bounds.maximum,
                description=kinds[state.name].help,
                updated_at=state.updated_at,
                updated_by=state.updated_by,
            )
            for state in live.states()
        ]
    )


async def update_settings(services: Services, actor_id: str, updates: dict[str, Any]) -> None:
    """Check every value, store them, apply them on every node and audit each change."""
    try:
        checked = check_updates(updates)
    except ValueError as exc:
        raise bad_request(ErrorCode.INVALID_VALUE, str(exc)) from None
    for change in await services.live.change(checked, actor_id, now_ms()):
        await services.auth.audit.record(
            AuditAction.SETTING_CHANGED, actor_id, change.name, details=change.details()
        )


_ADMIN = {403: "The caller is not a server admin."}


@table.route(
    "GET",
    SETTINGS,
    summary="Run-time server settings",
    responses={200: SettingsView},
    errors=_ADMIN,
)
async def admin_settings(call: Call[object]) -> Reply:
    """Each setting's value now, its configured default and where the value comes from
    (`config`, or `store`: set by an admin)."""
    await require_admin(call.services, call.user_id)
    return Reply(200, settings_view(call.services.live))


@table.route(
    "PATCH",
    SETTINGS,
    summary="Change run-time server settings",
    input=SettingsPatch,
    responses={200: SettingsView},
    errors={**_ADMIN, 400: "A value of the wrong type or out of its bounds (names the setting)."},
)
async def admin_update_settings(call: Call[Any]) -> Reply:
    """Sets the settings given (null: back to the configured default). All values are
    checked, then stored together (all or none). The change applies on this node before
    the answer and on every other node at once (at the latest within
    `store_poll_interval` seconds), on open WebSockets too; it survives restarts. Each
    change is audited (`setting.changed`)."""
    await require_admin(call.services, call.user_id)
    given = {
        name: value for name, value in attrs.asdict(call.input).items() if value is not UNCHANGED
    }
    await update_settings(call.services, call.user_id, given)
    return Reply(200, settings_view(call.services.live))
