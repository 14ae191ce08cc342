"""`chorus bots`: provision, run the swarm, report, remove the bots; exit 1 if the run failed."""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import trio
from rich.console import Console
from rich.live import Live
from rich.text import Text

from chorus.config import ConfigError, Settings, load_settings
from chorus.persistence import Conflict, StoreError

from ._provision import Provisioned, new_run_id, provision_node, remove_node_bots
from ._report import live_line, print_final, write_html, write_json
from ._swarm import SAFE_RATE_PER_BOT, SwarmOptions, failures, find_server_pid, run_swarm

T = TypeVar("T")


class CommandFailed(Exception):
    """Ends the command with `status` after printing the message (no traceback)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def run_bots_command(args: argparse.Namespace) -> int:
    """The `chorus bots` handler (arguments as built in chorus/cli.py).

    Exits 0 only for a run that passed (`failures` found nothing), 1 for a run
    that failed or a store that cannot be used, 2 for bad arguments or settings;
    every reason is printed, never a traceback.
    """
    console = Console(stderr=True)
    try:
        return _run(args, console)
    except CommandFailed as failed:
        console.print(f"[red]chorus bots: {failed}", highlight=False)
        return failed.status


def _run(args: argparse.Namespace, console: Console) -> int:
    try:
        settings = load_settings(args)
    except ConfigError as exc:
        raise CommandFailed(str(exc), 2) from None
    if args.cleanup is not None:
        _remove(settings, args.cleanup, console)
        return 0
    if args.provision_only:
        for bot in _provision(args, settings, console).bots:
            print(f"{bot.username}\t{bot.user_id}\t{','.join(bot.rooms)}\t{bot.token}")
        return 0
    if args.storm_at is not None and not 0 <= args.storm_at < args.duration:
        raise CommandFailed("--storm-at must fall within --duration", 2)
    gateways = tuple(args.gateway) if args.gateway else (settings_gateway(settings),)
    apis = tuple(args.api) if args.api else settings_api(settings)
    provisioned = _provision(args, settings, console)
    try:
        return _swarm(args, console, gateways, apis, provisioned)
    finally:
        if args.keep:
            console.print(
                f"bots of run {provisioned.run_id} kept: remove them with "
                f"`chorus bots --cleanup {provisioned.run_id}`"
            )
        else:
            _remove(settings, provisioned.run_id, console)


def _provision(args: argparse.Namespace, settings: Settings, console: Console) -> Provisioned:
    run_id = args.run_id or new_run_id()
    access_ttl = int(args.ramp_up + args.duration + args.drain + 3600)
    console.print(
        f"provisioning {args.bots} bots in {args.rooms} rooms, run {run_id} ({settings.data_dir})"
    )
    try:
        return _in_store(
            lambda: provision_node(
                settings,
                bots=args.bots,
                rooms=args.rooms,
                room_size=args.room_size,
                distribution=args.room_dist,
                access_ttl=access_ttl,
                run_id=run_id,
            )
        )
    except Conflict:
        raise CommandFailed(
            f"run id {run_id} was used before in this store: choose another --run-id, "
            f"or remove its bots with `chorus bots --cleanup {run_id}`",
            2,
        ) from None
    except ValueError as exc:
        raise CommandFailed(str(exc), 2) from None


def _swarm(
    args: argparse.Namespace,
    console: Console,
    gateways: tuple[str, ...],
    apis: tuple[str, ...],
    provisioned: Provisioned,
) -> int:
    """Run the swarm, show and write the report; 1 if the run failed."""
    senders = max(1, round(sum(1 for b in provisioned.bots if b.rooms) * (1 - args.passive)))
    per_bot = args.rate / senders
    if per_bot > SAFE_RATE_PER_BOT:
        console.print(
            f"[yellow]warning: {per_bot:.1f} sends/s per bot; the server's default limit is "
            "20 frames/s per connection (expect rate_limited errors)[/]"
        )
    server_pid = args.server_pid if args.server_pid else find_server_pid(gateways[0])
    if server_pid is None:
        console.print("no local server found on the gateway's port: --server-pid samples one")
    options = SwarmOptions(
        gateways=gateways,
        apis=apis,
        rate=args.rate,
        size=args.size,
        duration=args.duration,
        ramp_up=args.ramp_up,
        passive=args.passive,
        workers=args.workers,
        reconnect_rate=args.reconnects,
        typing_rate=args.typing,
        presence_rate=args.presence,
        drain=args.drain,
        storm_at=args.storm_at,
        latency_every=args.sample_every,
        order=args.order,
        server_pid=server_pid,
    )
    with Live(Text("starting workers..."), console=console, refresh_per_second=4) as live:

        def progress(state: dict[str, Any]) -> None:
            live.update(Text(live_line(state)))

        report = run_swarm(options, provisioned, progress)
    if args.json:
        print(write_json(report, None))
    else:
        print_final(report)
    if args.json_file is not None:
        write_json(report, Path(args.json_file))
    if args.report is not None:
        write_html(report, Path(args.report))
        console.print(f"report written to {args.report}")
    reasons = failures(report)
    for reason in reasons:
        console.print(f"[red]chorus bots: {reason}", highlight=False)
    return 1 if reasons else 0


def settings_gateway(settings: Settings) -> str:
    """The gateway URL of the node these settings describe, as seen from this machine.

    Raises `CommandFailed` when the port is 0 (the node picks one at start: only
    `--gateway` can name it).
    """
    if settings.gateway_port == 0:
        raise CommandFailed("the gateway port is 0 (chosen at start): give --gateway URL", 2)
    return f"ws://{_reachable(settings.gateway_host)}:{settings.gateway_port}/"


def settings_api(settings: Settings) -> tuple[str, ...]:
    """The HTTP API base URL of the node these settings describe (none if its port is 0)."""
    if settings.http_port == 0:
        return ()
    return (f"http://{_reachable(settings.http_host)}:{settings.http_port}",)


def _reachable(host: str) -> str:
    """`host` as seen from this machine: a node listening on every interface is on loopback."""
    if host in ("", "0.0.0.0", "::"):
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


def _remove(settings: Settings, run_id: str, console: Console) -> None:
    removed = _in_store(lambda: remove_node_bots(settings, run_id))
    console.print(f"removed run {run_id}: {removed.users} bot users, {removed.rooms} rooms")


def _in_store(work: Callable[[], Awaitable[T]]) -> T:
    """Run `work` (which opens the node's store) in a new trio loop.

    A store that cannot be used raises `CommandFailed` saying why; `Conflict`
    goes to the caller, which knows what it means.
    """
    try:
        return trio.run(work)
    except Exception as exc:
        cause: BaseException = exc
        # Nurseries on the way may wrap the error in single-exception groups.
        while isinstance(cause, BaseExceptionGroup) and len(cause.exceptions) == 1:
            cause = cause.exceptions[0]
        if isinstance(cause, Conflict):
            raise cause from None
        if isinstance(cause, StoreError):
            raise CommandFailed(f"cannot use the database: {cause}", 1) from None
        raise
