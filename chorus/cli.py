"""The `chorus` command line: `chorus --help` lists every subcommand."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

import trio

from chorus import __version__
from chorus.config import ConfigError, Settings, add_flags, load_settings
from chorus.logs import configure_logging
from chorus.persistence import StoreError

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
    configure_logging(settings.log_format, settings.log_level)
    try:
        trio.run(_serve_and_announce, settings)
    except OSError as exc:  # typically: the port is taken
        print(f"chorus: cannot serve: {exc}", file=sys.stderr)
        return 1
    except StoreError as exc:
        print(f"chorus: cannot open the database: {exc}", file=sys.stderr)
        return 1
    print("chorus: stopped", file=sys.stderr)
    return 0


async def _serve_and_announce(settings: Settings) -> None:
    from chorus.node import serve

    async with trio.open_nursery() as nursery:
        addresses = await nursery.start(serve, settings)
        http_host, http_port = addresses.http
        gateway_host, gateway_port = addresses.gateway
        print(
            f"chorus {__version__} is serving\n"
            f"  HTTP API   http://{http_host}:{http_port}/api/v1  (docs: /openapi.json)\n"
            f"  gateway    ws://{gateway_host}:{gateway_port}/  (subprotocol chorus.v1)\n"
            f"  data       {settings.data_dir.resolve()}\n"
            "Press Ctrl+C to stop.",
            flush=True,
        )


def _cmd_migrate(args: argparse.Namespace) -> int:
    settings = _settings(args)
    if settings is None:
        return 2
    from chorus.node import DATABASE_FILE
    from chorus.persistence import migrate_sqlite

    path = settings.data_dir / DATABASE_FILE
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    try:
        applied = trio.run(migrate_sqlite, path)
    except StoreError as exc:
        print(f"chorus: {exc}", file=sys.stderr)
        return 1
    if applied:
        print(f"{path}: applied migrations {', '.join(map(str, applied))}")
    else:
        print(f"{path}: already up to date")
    return 0


def _cmd_chat(args: argparse.Namespace) -> int:
    import httpx

    from chorus.client.terminal import read_password, run_chat

    try:
        username = args.user or input("username: ")
        password = read_password(sys.stdin)
    except (EOFError, KeyboardInterrupt):
        return 1
    try:
        return trio.run(run_chat, args.server, username, password, sys.stdin, sys.stdout)
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

    chat = commands.add_parser(
        "chat",
        help="chat in the terminal",
        description="Log in (an unknown username is registered) and chat. "
        "Without a terminal, the first input line is the password.",
    )
    chat.add_argument(
        "--server", default="http://127.0.0.1:8080", help="HTTP address of a Chorus node"
    )
    chat.add_argument("--user", help="username (asked for if omitted)")
    chat.set_defaults(handler=_cmd_chat)

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
    return handler(args)
