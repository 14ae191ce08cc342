"""`chorus bots`: provision, run the swarm, report; exit 1 if the run failed."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import trio
from rich.console import Console
from rich.live import Live
from rich.text import Text

from chorus.config import ConfigError, load_settings

from ._provision import provision_node
from ._report import live_line, print_final, write_html, write_json
from ._swarm import SAFE_RATE_PER_BOT, SwarmOptions, failures, find_server_pid, run_swarm


def run_bots_command(args: argparse.Namespace) -> int:
    """The `chorus bots` handler (arguments as built in chorus/cli.py)."""
    console = Console(stderr=True)
    try:
        settings = load_settings(args)
    except ConfigError as exc:
        console.print(f"chorus bots: {exc}")
        return 2
    workers = args.workers
    if args.storm_at is not None and not 0 <= args.storm_at < args.duration:
        console.print("chorus bots: --storm-at must fall within --duration")
        return 2
    access_ttl = int(args.ramp_up + args.duration + args.drain + 3600)
    console.print(f"provisioning {args.bots} bots in {args.rooms} rooms ({settings.data_dir})")
    provisioned = trio.run(
        lambda: provision_node(
            settings,
            bots=args.bots,
            rooms=args.rooms,
            room_size=args.room_size,
            distribution=args.room_dist,
            access_ttl=access_ttl,
            run_id=args.run_id,
        )
    )
    if args.provision_only:
        for bot in provisioned.bots:
            print(f"{bot.username}\t{bot.user_id}\t{','.join(bot.rooms)}\t{bot.token}")
        return 0
    senders = max(1, round(sum(1 for b in provisioned.bots if b.rooms) * (1 - args.passive)))
    per_bot = args.rate / senders
    if per_bot > SAFE_RATE_PER_BOT:
        console.print(
            f"[yellow]warning: {per_bot:.1f} sends/s per bot; the server's default limit is "
            "20 frames/s per connection (expect rate_limited errors)[/]"
        )
    gateways = tuple(args.gateway or ["ws://127.0.0.1:8081/"])
    server_pid = args.server_pid if args.server_pid else find_server_pid(gateways[0])
    if server_pid is None:
        console.print("no local server found on the gateway's port: --server-pid samples one")
    options = SwarmOptions(
        gateways=gateways,
        rate=args.rate,
        size=args.size,
        duration=args.duration,
        ramp_up=args.ramp_up,
        passive=args.passive,
        workers=workers,
        reconnect_rate=args.reconnects,
        typing_rate=args.typing,
        presence_rate=args.presence,
        drain=args.drain,
        storm_at=args.storm_at,
        latency_every=args.sample_every,
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
