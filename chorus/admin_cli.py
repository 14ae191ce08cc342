"""`chorus admin ...`: server roles, users and rooms, straight on the node's store.

Works like `chorus migrate`: the same settings (`--data-dir`,
`--database-url`...) name the store, and no node needs to run. This is how
an operator makes the first admin (`chorus admin grant-role alice admin`):
nobody becomes one by registering first. Each command calls one store
action, the same ones the admin API calls, and records it in the audit log
as the API does, with no actor (nobody signed in) and `{"via": "cli"}` in
its details.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import trio

from chorus.config import Settings
from chorus.persistence import (
    MAX_AUDIT_PAGE,
    SERVER_ROLES,
    AuditQuery,
    NotFound,
    Store,
    StoreError,
    now_ms,
)

if TYPE_CHECKING:
    # chorus.auth (argon2, JWT...) is imported by the commands that use it, not by every
    # `chorus` command (they all build this parser).
    from chorus.auth import AuditAction

Command = Callable[[Store, argparse.Namespace], Awaitable[str]]


async def _user_id(store: Store, username: str) -> str:
    user = await store.get_user_by_username(username)
    if user is None:
        raise NotFound(f"no user named {username!r}")
    return user.id


async def _record(store: Store, action: AuditAction, target: str, **details: object) -> None:
    """Audit a command's action: no actor, no client address, `via: cli`."""
    from chorus.auth import AuditLog

    audit = AuditLog(store, clock=now_ms)
    await audit.record(action, None, target, address="", details={**details, "via": "cli"})


async def _ended(store: Store, sessions: list[str], reason: str) -> None:
    from chorus.auth import AuditAction

    for session_id in sessions:
        await _record(store, AuditAction.SESSION_REVOKED, session_id, reason=reason)


async def grant_role(store: Store, args: argparse.Namespace) -> str:
    from chorus.auth import AuditAction

    user_id = await _user_id(store, args.username)
    await store.set_server_role(user_id, args.role)
    await _record(store, AuditAction.SERVER_ROLE_GRANTED, user_id, role=args.role)
    return f"{args.username} is now {args.role}"


async def revoke_role(store: Store, args: argparse.Namespace) -> str:
    from chorus.auth import AuditAction

    user_id = await _user_id(store, args.username)
    await store.set_server_role(user_id, "member")
    await _record(store, AuditAction.SERVER_ROLE_GRANTED, user_id, role="member")
    return f"{args.username} is now member"


async def list_admins(store: Store, _args: argparse.Namespace) -> str:
    lines = [f"{u.username}\tadmin" for u in await store.users_with_role("admin")]
    lines += [f"{u.username}\tmoderator" for u in await store.users_with_role("moderator")]
    return "\n".join(lines) if lines else "no admins or moderators"


async def list_users(store: Store, args: argparse.Namespace) -> str:
    found = await store.list_users(args.limit, args.after, args.role)
    return "\n".join(f"{u.id}\t{u.username}\t{role}" for u, role in found) or "no users"


async def reset_two_factor(store: Store, args: argparse.Namespace) -> str:
    from chorus.auth import AuditAction

    user_id = await _user_id(store, args.username)
    was_on = await store.disable_totp(user_id)
    await _record(store, AuditAction.TWO_FACTOR_RESET, user_id, was_enabled=was_on)
    return f"{args.username}: two-factor authentication " + ("turned off" if was_on else "was off")


async def deactivate(store: Store, args: argparse.Namespace) -> str:
    from chorus.auth import AuditAction

    user_id = await _user_id(store, args.username)
    now = now_ms()
    await store.set_deactivated(user_id, now)
    await _record(store, AuditAction.USER_DEACTIVATED, user_id)
    ended = await store.revoke_sessions(user_id, now, keep=None)
    await _ended(store, ended, "deactivated")
    return f"{args.username} deactivated; {len(ended)} sessions ended"


async def revoke_sessions(store: Store, args: argparse.Namespace) -> str:
    ended = await store.revoke_sessions(await _user_id(store, args.username), now_ms(), keep=None)
    await _ended(store, ended, "revoked_by_admin")
    return f"{args.username}: {len(ended)} sessions ended"


async def reactivate(store: Store, args: argparse.Namespace) -> str:
    from chorus.auth import AuditAction

    user_id = await _user_id(store, args.username)
    await store.set_deactivated(user_id, None)
    await _record(store, AuditAction.USER_REACTIVATED, user_id)
    return f"{args.username} reactivated"


async def list_rooms(store: Store, args: argparse.Namespace) -> str:
    found = await store.all_rooms(args.limit, args.after)
    return "\n".join(f"{r.id}\t{r.kind.value}\t{r.name}" for r in found) or "no rooms"


async def delete_room(store: Store, args: argparse.Namespace) -> str:
    from chorus.auth import AuditAction

    members = await store.delete_room(args.room_id, now_ms())
    await _record(store, AuditAction.ROOM_DELETED, args.room_id, members=len(members))
    return f"room {args.room_id} deleted ({len(members)} members)"


async def transfer_room(store: Store, args: argparse.Namespace) -> str:
    from chorus.auth import AuditAction

    owner = await _user_id(store, args.username)
    previous = await store.transfer_ownership(args.room_id, owner)
    await _record(
        store, AuditAction.ROOM_OWNERSHIP_TRANSFERRED, args.room_id, to=owner, **{"from": previous}
    )
    return f"room {args.room_id} now belongs to {args.username} (was {previous})"


async def audit_events(store: Store, args: argparse.Namespace) -> str:
    """The audit log's events (filters of `args`), newest first, one JSON object per line."""
    from chorus.auth import event_json, resolve_actor

    actor = None if args.actor is None else await resolve_actor(store, args.actor)
    events = await store.list_audit(
        AuditQuery(actor_id=actor, action=args.action, since=args.since, limit=args.limit)
    )
    return "\n".join(json.dumps(event_json(event), separators=(",", ":")) for event in events)


async def show_settings(store: Store, args: argparse.Namespace) -> str:
    """Each run-time setting: its value, where it comes from, its default (this command's
    configuration gives the defaults: run it with the nodes')."""
    from chorus.runtime import LiveSettings

    live = LiveSettings(args.settings, store, reload_interval=args.settings.store_poll_interval)
    await live.reload()
    return "\n".join(
        f"{s.name}\t{json.dumps(s.value)}\t{s.source}\tdefault {json.dumps(s.default)}"
        for s in live.states()
    )


async def set_setting(store: Store, args: argparse.Namespace) -> str:
    from chorus.runtime import parse

    value = parse(args.name, args.value)
    await _store_setting(store, args.name, value)
    interval = args.settings.store_poll_interval
    return f"{args.name} = {json.dumps(value)} (running nodes apply it within {interval:g} s)"


async def reset_setting(store: Store, args: argparse.Namespace) -> str:
    from chorus.runtime import declaration

    declaration(args.name)
    await _store_setting(store, args.name, None)
    return f"{args.name}: back to the configured default"


async def _store_setting(store: Store, name: str, value: bool | int | float | str | None) -> None:
    from chorus.auth import AuditAction
    from chorus.runtime import store_updates

    for change in await store_updates(store, {name: value}, None, now_ms()):
        await _record(store, AuditAction.SETTING_CHANGED, name, **change.details())


def _instant(text: str) -> int:
    try:
        parsed = datetime.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=datetime.UTC)
    return int(parsed.timestamp() * 1000)


def _limit(text: str) -> int:
    value = int(text)
    if not 1 <= value <= MAX_AUDIT_PAGE:
        raise argparse.ArgumentTypeError(f"1 to {MAX_AUDIT_PAGE}")
    return value


def run_admin_command(args: argparse.Namespace, settings: Settings) -> int:
    """Run one `chorus admin` command; 0 on success, 1 with a message on stderr otherwise."""
    from chorus.node import open_node_store

    command: Command = args.admin_command
    args.settings = settings  # the commands that need more than the store read them here

    async def main() -> str:
        async with open_node_store(settings) as store:
            return await command(store, args)

    try:
        output = trio.run(main)
        if output:
            print(output)
    except (StoreError, ValueError) as exc:
        print(f"chorus admin: {exc}", file=sys.stderr)
        return 1
    return 0


def add_admin_commands(
    admin: argparse.ArgumentParser, add_flags: Callable[[argparse.ArgumentParser], None]
) -> None:
    """The subcommands of `chorus admin`; `add_flags` gives each the settings flags (after
    the command: `chorus admin grant-role alice admin --data-dir /var/chorus`)."""

    def command(
        group: Any, name: str, run: Command, help: str, *positionals: str
    ) -> argparse.ArgumentParser:
        """One command of `group` running `run`, with its positional arguments and the
        settings flags (options are added by the caller)."""
        parser: argparse.ArgumentParser = group.add_parser(name, help=help)
        for positional in positionals:
            parser.add_argument(positional)
        add_flags(parser)
        parser.set_defaults(admin_command=run)
        return parser

    commands = admin.add_subparsers(title="admin commands", metavar="COMMAND", required=True)
    grant = commands.add_parser("grant-role", help="give a user a server role")
    grant.add_argument("username")
    grant.add_argument("role", choices=SERVER_ROLES)
    add_flags(grant)
    grant.set_defaults(admin_command=grant_role)
    command(commands, "revoke-role", revoke_role, "make a user a plain member again", "username")
    command(commands, "list-admins", list_admins, "list server admins and moderators")

    users = commands.add_parser("users", help="users of the server")
    user_commands = users.add_subparsers(title="users commands", metavar="COMMAND", required=True)
    listing = command(user_commands, "list", list_users, "list users by username")
    listing.add_argument("--with-role", dest="role", choices=SERVER_ROLES)
    listing.add_argument("--limit", type=int, default=100)
    listing.add_argument("--after", help="list users after this username")
    sockets_closed = (
        "running nodes close their open sockets within store_poll_interval seconds; the"
        " admin API closes them at once"
    )
    command(
        user_commands,
        "deactivate",
        deactivate,
        "stop a user signing in and end their sessions (their tokens stop working; "
        f"{sockets_closed})",
        "username",
    )
    command(
        user_commands, "reactivate", reactivate, "let a deactivated user sign in again", "username"
    )
    command(
        user_commands,
        "revoke-sessions",
        revoke_sessions,
        f"end every session of a user (their tokens stop working; {sockets_closed})",
        "username",
    )
    command(
        user_commands, "reset-2fa", reset_two_factor, "turn a user's two-factor off", "username"
    )

    audit = command(
        commands,
        "audit",
        audit_events,
        "print audit log events, newest first, one JSON object per line",
    )
    audit.description = (
        "Print the audit log's events (logins and failures, 2FA changes, "
        "session revocations, refresh token reuse, provider sign-ins, password changes, "
        "server roles, moderation and admin actions), "
        "newest first, one JSON object per line. See docs/operations.md."
    )
    audit.add_argument("--actor", metavar="USER", help="only events by this username or user id")
    audit.add_argument("--action", metavar="ACTION", help="only this action (e.g. login.failed)")
    audit.add_argument(
        "--since",
        type=_instant,
        metavar="ISO",
        help="only events at or after this ISO 8601 time (UTC unless it says otherwise)",
    )
    audit.add_argument(
        "--limit",
        type=_limit,
        default=100,
        help=f"most events printed, 1 to {MAX_AUDIT_PAGE} [100]",
    )

    settings = commands.add_parser("settings", help="server settings changed at run time")
    settings.description = (
        "Server settings that may change while nodes run (see docs/operations.md, Run-time"
        " settings). A stored value overrides the configured default on every node; running"
        " nodes read the settings again every store_poll_interval seconds."
    )
    setting_commands = settings.add_subparsers(
        title="settings commands", metavar="COMMAND", required=True
    )
    command(
        setting_commands,
        "show",
        show_settings,
        "print each setting: name, value (JSON), source (config or store), default",
    )
    command(setting_commands, "set", set_setting, "store a setting's value", "name", "value")
    command(setting_commands, "reset", reset_setting, "back to the configured default", "name")

    rooms = commands.add_parser("rooms", help="rooms of the server")
    room_commands = rooms.add_subparsers(title="rooms commands", metavar="COMMAND", required=True)
    room_list = command(room_commands, "list", list_rooms, "list public and private rooms")
    room_list.add_argument("--limit", type=int, default=100)
    room_list.add_argument("--after", help="list rooms after this room id")
    command(
        room_commands,
        "delete",
        delete_room,
        "delete a room and everything in it (members' open sockets learn it at their "
        "next resume; the admin API tells them at once)",
        "room_id",
    )
    command(
        room_commands,
        "transfer",
        transfer_room,
        "give a room to one of its members",
        "room_id",
        "username",
    )
