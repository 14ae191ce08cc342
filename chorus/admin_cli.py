"""`chorus admin ...`: operator commands run on the node's store (no server needed)."""

from __future__ import annotations

import argparse
import datetime
import json
import sys
from typing import Any

import trio

from chorus.config import ConfigError, Settings, add_flags, load_settings
from chorus.persistence import MAX_AUDIT_PAGE, AuditQuery, StoreError


def add_admin_commands(commands: Any) -> Any:
    """Add the `admin` group to `commands` (a subparsers object); its own subparsers,
    where further admin commands are added."""
    admin = commands.add_parser(
        "admin",
        help="operator commands on the node's store",
        description="Operator commands that read or change the node's store directly "
        "(the same --data-dir or --database-url as `chorus serve`).",
    )
    admin_commands = admin.add_subparsers(title="admin commands", metavar="COMMAND")
    audit = admin_commands.add_parser(
        "audit",
        help="print audit log events, newest first, one JSON object per line",
        description="Print the audit log's events (logins and failures, 2FA changes, "
        "session revocations, refresh token reuse, provider sign-ins, password changes), "
        "newest first, one JSON object per line. See docs/operations.md.",
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
    add_flags(audit.add_argument_group("server settings", "Where the node's store is."))
    audit.set_defaults(handler=_cmd_audit)
    admin.set_defaults(handler=lambda _args: _usage(admin))
    return admin_commands


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return 2


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


def _cmd_audit(args: argparse.Namespace) -> int:
    try:
        settings = load_settings(args)
    except ConfigError as exc:
        print(f"chorus: {exc}", file=sys.stderr)
        return 2
    try:
        lines = trio.run(_audit_lines, settings, args)
    except StoreError as exc:
        print(f"chorus: {exc}", file=sys.stderr)
        return 1
    for line in lines:
        sys.stdout.write(line + "\n")
    return 0


async def _audit_lines(settings: Settings, args: argparse.Namespace) -> list[str]:
    from chorus.auth import event_json
    from chorus.node import open_node_store

    async with open_node_store(settings) as store:
        actor_id = args.actor
        if actor_id is not None:
            # A username if there is one by that name, else taken as a user id (the
            # user may be gone; their events stay).
            user = await store.get_user_by_username(actor_id.lower())
            actor_id = user.id if user is not None else actor_id
        events = await store.list_audit(
            AuditQuery(actor_id=actor_id, action=args.action, since=args.since, limit=args.limit)
        )
    return [json.dumps(event_json(event), separators=(",", ":")) for event in events]
