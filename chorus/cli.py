"""The `chorus` command line: `chorus --help` lists every subcommand."""

from __future__ import annotations

import argparse
import functools
import os
import signal
import sqlite3
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import trio

from chorus import __version__
from chorus.config import ConfigError, Settings, add_flags, load_settings
from chorus.errortracking import (
    ErrorTrackingUnavailable,
    report_unhandled,
    start_error_tracking,
    stop_error_tracking,
)
from chorus.logs import configure_logging, redact_url, silence_logging, unbuffered, write_line
from chorus.persistence import StoreError
from chorus.supervisors import SupervisorError

Handler = Callable[[argparse.Namespace], int]


def _cmd_version(_args: argparse.Namespace) -> int:
    print(f"chorus {__version__}")
    return 0


def _settings(args: argparse.Namespace) -> Settings | None:
    try:
        return load_settings(args)
    except ConfigError as exc:
        print(f"chorus: {exc}", file=sys.stderr)
        return None


def _cmd_serve(args: argparse.Namespace) -> int:
    settings = _settings(args)
    if settings is None:
        return 2
    # Unbuffered, so that a full or broken stdout/stderr loses only the lines written
    # while it fails, instead of failing every later write and the exit (issue #12).
    sys.stdout, sys.stderr = unbuffered(sys.stdout), unbuffered(sys.stderr)
    report = None
    if settings.sentry_dsn:
        try:
            report = start_error_tracking(settings.sentry_dsn)
        except ErrorTrackingUnavailable as exc:
            print(f"chorus: {exc}", file=sys.stderr)
            return 2
    configure_logging(settings.log_format, settings.log_level, report=report)
    try:
        trio.run(_serve_and_announce, settings)
    except Exception as exc:
        cause = _root_cause(exc)
        if isinstance(cause, OSError):  # typically: a port is taken
            print(f"chorus: cannot serve: {cause}", file=sys.stderr)
            return 1
        if isinstance(cause, StoreError):
            print(f"chorus: cannot open the database: {cause}", file=sys.stderr)
            return 1
        if report is not None:
            report_unhandled(exc)
        raise
    finally:
        if report is not None:
            stop_error_tracking()
    write_line(sys.stderr, "chorus: stopped")
    return 0


def _root_cause(exc: BaseException) -> BaseException:
    """The error behind supervisor escalations and single-error exception groups."""
    while True:
        if isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
            exc = exc.exceptions[0]
        elif isinstance(exc, SupervisorError) and exc.__cause__ is not None:
            exc = exc.__cause__
        else:
            return exc


async def _serve_and_announce(settings: Settings) -> None:
    from chorus.node import serve

    async with trio.open_nursery() as nursery:
        addresses = await nursery.start(serve, settings)
        lines = [f"chorus {__version__} is serving (role: {settings.role})"]
        secure = "s" if settings.tls_cert_file else ""
        if addresses.http is not None:
            host, port = addresses.http
            lines.append(f"  HTTP API   http{secure}://{host}:{port}/api/v1  (docs: /openapi.json)")
            lines.append(f"  web client http{secure}://{host}:{port}/  (open it in a browser)")
        if addresses.gateway is not None:
            host, port = addresses.gateway
            lines.append(f"  gateway    ws{secure}://{host}:{port}/  (subprotocol chorus.v1)")
        store = redact_url(settings.database_url) or settings.data_dir.resolve()
        lines += [f"  data       {store}", "Press Ctrl+C to stop."]
        write_line(sys.stdout, "\n".join(lines))  # lost if stdout fails: the node serves on


def _cmd_migrate(args: argparse.Namespace) -> int:
    settings = _settings(args)
    if settings is None:
        return 2
    from chorus.node import DATABASE_FILE, is_postgres_url
    from chorus.persistence import migrate_postgres, migrate_sqlite

    try:
        if is_postgres_url(settings.database_url):
            where = redact_url(settings.database_url)
            applied = trio.run(migrate_postgres, settings.database_url)
        else:
            path = settings.data_dir / DATABASE_FILE
            where = str(path)
            settings.data_dir.mkdir(parents=True, exist_ok=True)
            applied = trio.run(migrate_sqlite, path)
    except StoreError as exc:
        print(f"chorus: {exc}", file=sys.stderr)
        return 1
    if applied:
        print(f"{where}: applied migrations {', '.join(map(str, applied))}")
    else:
        print(f"{where}: already up to date")
    return 0


def _cmd_admin(args: argparse.Namespace) -> int:
    settings = _settings(args)
    if settings is None:
        return 2
    from chorus.admin_cli import run_admin_command

    return run_admin_command(args, settings)


def _cmd_backup(args: argparse.Namespace) -> int:
    from chorus.backup import BackupError, backup

    settings = _embedded_settings(args, "backup")
    if settings is None:
        return 2
    try:
        summary = backup(settings.data_dir, args.dest, _progress)
    except (BackupError, OSError, sqlite3.Error) as exc:
        print(f"chorus backup: {exc}", file=sys.stderr)
        return 1
    print(f"backed up {settings.data_dir} to {args.dest}: {summary.files} files")
    return 0


def _cmd_restore(args: argparse.Namespace) -> int:
    from chorus.backup import BackupError, restore

    settings = _embedded_settings(args, "restore")
    if settings is None:
        return 2
    try:
        summary = restore(args.source, settings.data_dir, _progress, force=args.force)
    except (BackupError, OSError, sqlite3.Error) as exc:
        print(f"chorus restore: {exc}", file=sys.stderr)
        return 1
    print(f"restored {args.source} into {settings.data_dir}: {summary.files} files")
    return 0


def _embedded_settings(args: argparse.Namespace, command: str) -> Settings | None:
    """The settings, if they select the embedded store (SQLite and local files)."""
    from chorus.node import is_postgres_url

    settings = _settings(args)
    if settings is not None and is_postgres_url(settings.database_url):
        print(
            f"chorus {command}: the database is PostgreSQL: use pg_dump or point-in-time "
            "recovery (docs/operations.md, Backups)",
            file=sys.stderr,
        )
        return None
    if settings is not None and settings.storage != "local":
        print(
            f"chorus {command}: note: files are in {settings.storage}, not in the data dir: "
            "only the database is copied (docs/operations.md, Backups)",
            file=sys.stderr,
        )
    return settings


def _progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _data_home() -> Path:
    """Where user data goes (the XDG base directory specification's data home)."""
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")


def _cmd_chat(args: argparse.Namespace) -> int:
    import httpx

    from chorus.client.terminal import StdinKeys, run_chat

    # The screen is the chat: log lines (e.g. each reconnection) go to a file or nowhere.
    if args.log_file is None:
        silence_logging()
    else:
        log = open(args.log_file, "a", encoding="utf-8")  # noqa: SIM115 (open until exit)
        configure_logging("json", "info", log)
    if args.ca_file is not None:
        # Both httpx and Python's ssl (the WebSocket) trust the CA file this names.
        os.environ["SSL_CERT_FILE"] = args.ca_file
    keys = StdinKeys(sys.stdin.fileno())
    key_dir = None if args.no_e2e else Path(args.keys_dir)
    try:
        return trio.run(
            functools.partial(run_chat, key_dir=key_dir), args.server, args.user, keys, sys.stdout
        )
    except httpx.HTTPError as exc:
        print(f"chorus chat: cannot reach {args.server}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0


def _cmd_protocol_schema(args: argparse.Namespace) -> int:
    from chorus.protocol import json_schema_document

    sys.stdout.write(json_schema_document(indent=not args.compact))
    sys.stdout.write("\n")
    return 0


def _cmd_bots(args: argparse.Namespace) -> int:
    from chorus.bots import run_bots_command

    if args.ca_file is not None:
        # wss:// and https:// (catch-ups) in this process and its workers trust this CA.
        os.environ["SSL_CERT_FILE"] = args.ca_file

    return run_bots_command(args)


def _run_id(text: str) -> str:
    from chorus.bots import check_run_id

    try:
        return check_run_id(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def build_parser() -> argparse.ArgumentParser:
    """Return the parser for the whole command line (also used by the tests)."""
    parser = argparse.ArgumentParser(
        prog="chorus",
        description="Chorus: an actor-based real-time chat server on trio.",
    )
    parser.add_argument("-V", "--version", action="version", version=f"chorus {__version__}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    version = commands.add_parser("version", help="print the version and exit")
    version.set_defaults(handler=_cmd_version)

    serve = commands.add_parser(
        "serve",
        help="run a Chorus node",
        description="Run one Chorus node. Settings: defaults < TOML file (--config) "
        "< CHORUS_* environment < these flags.",
    )
    add_flags(serve)
    serve.set_defaults(handler=_cmd_serve)

    migrate = commands.add_parser(
        "migrate", help="create or upgrade the database schema (serve also does this)"
    )
    add_flags(migrate)
    migrate.set_defaults(handler=_cmd_migrate)

    admin = commands.add_parser(
        "admin",
        help="server roles, users and rooms on the node's store",
        description="Work on the node's store (same settings as `chorus serve`): make the "
        "first admin with `chorus admin grant-role USERNAME admin`.",
    )
    from chorus.admin_cli import add_admin_commands

    add_admin_commands(admin, add_flags)
    admin.set_defaults(handler=_cmd_admin)

    backup = commands.add_parser(
        "backup",
        help="copy the embedded database and local files into a new directory",
        description="Copy the node's SQLite database (online backup API: consistent while "
        "the node serves) and its local files into DEST, with progress on stderr. For "
        "PostgreSQL and S3 see docs/operations.md (Backups).",
    )
    backup.add_argument("dest", type=Path, metavar="DEST", help="a new or empty directory")
    add_flags(backup)
    backup.set_defaults(handler=_cmd_backup)

    restore = commands.add_parser(
        "restore",
        help="restore a `chorus backup` into a data directory",
        description="Copy the backup in SRC into --data-dir. Refuses a data dir that a "
        "running `chorus serve` uses, and a non-empty one unless --force is given.",
    )
    restore.add_argument("source", type=Path, metavar="SRC", help="a `chorus backup` directory")
    restore.add_argument(
        "--force",
        action="store_true",
        help="replace the database, files and node name of a non-empty data dir",
    )
    add_flags(restore)
    restore.set_defaults(handler=_cmd_restore)

    chat = commands.add_parser(
        "chat",
        help="chat in the terminal",
        description="Log in (or, if you say so, register) and chat; /help lists the "
        "commands. Without a terminal, the answers to the questions (password, and "
        "for a new account: y, the password again; then the passphrase of the "
        "encryption keys unless --no-e2e) are the first input lines.",
    )
    chat.add_argument(
        "--server", default="http://127.0.0.1:8080", help="HTTP address of a Chorus node"
    )
    chat.add_argument("--user", help="username (asked for if omitted)")
    chat.add_argument(
        "--log-file", metavar="FILE", help="append the client's log lines here (default: none)"
    )
    chat.add_argument(
        "--ca-file",
        metavar="FILE",
        help="PEM file of the CA to trust for an https:// server (and its wss:// gateway) "
        "instead of the system's CAs",
    )
    chat.add_argument(
        "--keys-dir",
        metavar="DIR",
        default=str(_data_home() / "chorus" / "keys"),
        help="where this device's end-to-end encryption keys are kept, sealed with a "
        "passphrase asked after logging in (default: %(default)s)",
    )
    chat.add_argument(
        "--no-e2e",
        action="store_true",
        help="no end-to-end encryption: encrypted rooms show as unreadable, /edm is off",
    )
    chat.set_defaults(handler=_cmd_chat)

    bots = commands.add_parser(
        "bots",
        help="load-test a node with a swarm of simulated users",
        description="Provision bot users, rooms and tokens straight into the node's store "
        "(same --data-dir and settings as `chorus serve`), then drive them from worker "
        "processes against the gateway: open-loop sends, latency from the scheduled send "
        "time, per-room order checks. Exits 1 unless every bot stayed connected, every "
        "send was acknowledged and delivered, and nothing was lost, duplicated or "
        "reordered. The run's users and rooms are marked as bots (listed nowhere) and "
        "removed at the end unless --keep is given. See docs/benchmarks.md.",
    )
    bots.add_argument(
        "--gateway",
        action="append",
        metavar="URL",
        help="gateway URL (ws:// or wss://); repeat for several nodes (default: from "
        "--gateway-host and "
        "--gateway-port of the server settings below). Each bot starts on one (round "
        "robin) and, after a failed connect or a lost connection, tries the next one "
        "after a jittered exponential backoff (at most 2 s)",
    )
    bots.add_argument(
        "--api",
        action="append",
        metavar="URL",
        help="HTTP API base URL (http://host:port) a bot catches a room up from after "
        "`too_far`; repeat for several nodes, in the order of --gateway (default: from "
        "--http-host and --http-port of the server settings below)",
    )
    bots.add_argument(
        "--ca-file",
        metavar="FILE",
        help="PEM file of the CA to trust for wss:// gateways and https:// APIs "
        "instead of the system's CAs",
    )
    bots.add_argument("--bots", type=int, default=1000, help="simulated users [1000]")
    bots.add_argument("--rooms", type=int, default=10, help="rooms [10]")
    bots.add_argument("--room-size", type=int, default=100, help="members per room [100]")
    bots.add_argument(
        "--room-dist",
        choices=("fixed", "zipf"),
        default="fixed",
        help="room sizes: fixed (all --room-size) or zipf (room k: size/(k+1)) [fixed]",
    )
    bots.add_argument(
        "--rate", type=float, default=1000.0, help="messages per second, all senders [1000]"
    )
    bots.add_argument(
        "--order",
        choices=("interleaved", "grouped"),
        default="interleaved",
        help="who sends next: interleaved (consecutive sends go to different rooms, like real"
        " traffic) or grouped (senders in bot order: each room's members in a row, bursts"
        " that flatter the server's batching) [interleaved]",
    )
    bots.add_argument("--size", type=int, default=100, help="message body bytes [100]")
    bots.add_argument("--duration", type=float, default=30.0, help="seconds of sending [30]")
    bots.add_argument("--ramp-up", type=float, default=5.0, help="seconds to connect [5]")
    bots.add_argument(
        "--passive", type=float, default=0.5, help="share of bots that only read [0.5]"
    )
    bots.add_argument("--workers", type=int, default=1, help="worker processes [1]")
    bots.add_argument(
        "--reconnects", type=float, default=0.0, help="forced reconnects per second (churn) [0]"
    )
    bots.add_argument("--typing", type=float, default=0.0, help="typing signals per second [0]")
    bots.add_argument(
        "--presence", type=float, default=0.0, help="presence changes per second (churn) [0]"
    )
    bots.add_argument(
        "--storm-at",
        type=float,
        metavar="SECONDS",
        help="every bot drops its connection this long after sending starts, then all "
        "reconnect and resume at once (a reconnect storm) [none]",
    )
    bots.add_argument(
        "--drain", type=float, default=5.0, help="max seconds to wait for deliveries after [5]"
    )
    bots.add_argument(
        "--sample-every",
        type=int,
        default=10,
        help="every n-th bot measures latency (the rest only count and check order) [10]",
    )
    bots.add_argument(
        "--run-id", type=_run_id, help="bot name prefix, a-z 0-9 _ . - (default: random)"
    )
    bots.add_argument("--server-pid", type=int, help="pid of a local server to sample")
    bots.add_argument("--json", action="store_true", help="print the report as JSON")
    bots.add_argument("--json-file", metavar="FILE", help="also write JSON here")
    bots.add_argument("--report", metavar="FILE", help="write an HTML report")
    bots.add_argument(
        "--provision-only",
        action="store_true",
        help="only create the bots (kept); print username, user id, rooms and token per line",
    )
    bots.add_argument(
        "--keep",
        action="store_true",
        help="keep the run's bot users and rooms after the run (default: removed)",
    )
    bots.add_argument(
        "--cleanup",
        type=_run_id,
        metavar="RUN_ID",
        help="only remove the bot users, rooms, memberships, messages and sessions of "
        "that run, then exit",
    )
    add_flags(
        bots.add_argument_group(
            "server settings",
            "The node's settings, as for `chorus serve`: where its store is, and its gateway.",
        )
    )
    bots.set_defaults(handler=_cmd_bots)

    protocol = commands.add_parser("protocol", help="inspect the wire protocol")
    protocol_commands = protocol.add_subparsers(title="protocol commands", metavar="COMMAND")
    schema = protocol_commands.add_parser(
        "schema", help="print the JSON Schema of every protocol v1 frame"
    )
    schema.add_argument("--compact", action="store_true", help="print on one line")
    schema.set_defaults(handler=_cmd_protocol_schema)
    protocol.set_defaults(handler=lambda _args: _usage(protocol))

    parser.set_defaults(handler=lambda _args: _usage(parser))
    return parser


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return 2


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit status."""
    args = build_parser().parse_args(argv)
    handler: Handler = args.handler
    try:
        status = handler(args)
        sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's last flush
    except BrokenPipeError:
        # The reader is gone (`chorus protocol schema | head`): stop quietly with the
        # status of a Unix tool killed by SIGPIPE, and keep Python's exit from
        # flushing into the dead pipe again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + signal.SIGPIPE
    return status
