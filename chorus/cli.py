"""The `chorus` command line: `chorus --help` lists every subcommand."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from chorus import __version__

Handler = Callable[[argparse.Namespace], int]


def _cmd_version(_args: argparse.Namespace) -> int:
    print(f"chorus {__version__}")
    return 0


def _cmd_serve(_args: argparse.Namespace) -> int:
    print(
        f"chorus {__version__}: the server is not serving yet. This build has the foundation "
        "(supervisors, actors, protocol v1); `chorus serve` arrives with the single-node chat.",
    )
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

    serve = commands.add_parser("serve", help="run a Chorus node")
    serve.set_defaults(handler=_cmd_serve)

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
