"""A whole node's cost per message in rooms of S, on SQLite or on PostgreSQL + Redis:
for instruction counts (issue #15 target 1a: cluster-1 against sqlite-1).

Usage: python bench/room_instructions.py [--backend sqlite|cluster] [--rooms R]
                                         [--room-size S] [--in-flight K] [--messages N]
                                         [--warmup W] [--valgrind | --cpu] [--keep DIR]

`bench/dm_instructions.py` for rooms of more than two members and for the
cluster's backends: starts `chorus serve` on a fresh SQLite data directory
(`sqlite`) or on a private PostgreSQL and Redis (`cluster`, started as
`bench/run.py` starts them for `cluster-1`), provisions R*S bots in R rooms of
S straight into its store, connects every bot over a real WebSocket (hello,
join), then runs a closed loop: K sends in flight, each to a room of its own,
each done when the sender has its `ack` and the S-1 other members have the
`message`. W messages warm the node up, then N messages are measured.

- `--valgrind`: the node runs under `valgrind --tool=callgrind
  --instr-atstart=no --separate-threads=yes`; the counters are zeroed and
  switched on just before the N messages and dumped just after, so the
  figures are the node's instructions (per thread: trio's, the asyncio
  bridge's loop, SQLite's writer) for exactly those N messages, which the
  machine's load does not change. `callgrind_annotate --inclusive=yes` of the
  dumps (kept with `--keep`) shows where.
- `--cpu` (the default): the node's CPU time over the N messages, divided by N.

Printed: per message and per delivery (N*(S-1) deliveries).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import trio
from dm_instructions import (  # a sibling: run as `python bench/...`
    LIMITS,
    Bot,
    callgrind_control,
    connect,
    cpu_seconds,
    wait_for_gateway,
)

from chorus.bots._provision import BotAccount, provision_node
from chorus.config import Settings


class Loop:
    """The closed loop: lane k sends in rooms k, k+K, k+2K... one message at a time,
    the sender going round the room's members."""

    def __init__(self, rooms: list[list[Bot]], in_flight: int) -> None:
        self.rooms = rooms
        self.in_flight = in_flight
        self.sent = 0

    async def run(self, messages: int) -> None:
        per_lane, extra = divmod(messages, self.in_flight)
        async with trio.open_nursery() as nursery:
            for lane in range(self.in_flight):
                nursery.start_soon(self._lane, lane, per_lane + (lane < extra))

    async def _lane(self, lane: int, count: int) -> None:
        rooms = self.rooms[lane :: self.in_flight]
        for number in range(count):
            members = rooms[number % len(rooms)]
            sender = members[(number // len(rooms)) % len(members)]
            self.sent += 1
            client_id = f"m{lane}-{self.sent}"
            waits = [sender.expect(f"ack:{client_id}")]
            waits += [bot.expect(f"message:{client_id}") for bot in members if bot is not sender]
            await sender.send(
                {
                    "type": "send",
                    "ref": client_id,
                    "room": sender.account.rooms[0],
                    "client_id": client_id,
                    "body": "x" * 100,
                }
            )
            for event in waits:
                await event.wait()


async def drive(
    host: str,
    port: int,
    accounts: tuple[BotAccount, ...],
    args: argparse.Namespace,
    pid: int,
) -> dict[str, float]:
    async with trio.open_nursery() as nursery:
        bots = [await connect(host, port, account, nursery) for account in accounts]
        by_room: dict[str, list[Bot]] = {}
        for bot in bots:
            by_room.setdefault(bot.account.rooms[0], []).append(bot)
        loop = Loop(list(by_room.values()), args.in_flight)
        await loop.run(args.warmup)
        if args.valgrind:
            callgrind_control(pid, "--instr=on")
            callgrind_control(pid, "--zero")
        if args.yappi:
            os.kill(pid, signal.SIGUSR1)
        before = cpu_seconds(pid)
        await loop.run(args.messages)
        after = cpu_seconds(pid)
        if args.yappi:
            os.kill(pid, signal.SIGUSR2)
        if args.valgrind:
            callgrind_control(pid, "--dump=window")
            callgrind_control(pid, "--instr=off")
        nursery.cancel_scope.cancel()
    return {"user": after[0] - before[0], "system": after[1] - before[1]}


def thread_totals(out_dir: Path) -> dict[str, int]:
    """Instructions of the window's dump per thread (`--separate-threads=yes` writes one
    file per thread, `node.cg.<part>-<thread>`), keyed by thread number."""
    totals: dict[str, int] = {}
    for dump in out_dir.glob("node.cg.*-*"):
        part, _, thread = dump.name.removeprefix("node.cg.").partition("-")
        for line in dump.read_text().splitlines():
            if line.startswith(("totals:", "summary:")):
                totals[f"{part}-{thread}"] = int(line.split()[1])
                break
    last = max(int(key.split("-")[0]) for key in totals)
    return {k.split("-")[1]: v for k, v in sorted(totals.items()) if int(k.split("-")[0]) == last}


@contextlib.contextmanager
def backends(kind: str, work: Path) -> Iterator[dict[str, str]]:
    if kind == "sqlite":
        yield {}
        return
    from run import postgres_and_redis  # a sibling: bench/run.py

    with postgres_and_redis(work) as found:
        yield found.env


def add_modes(parser: argparse.ArgumentParser) -> None:
    """How the node is measured (--valgrind, --cpu, --yappi) and where its output is kept."""
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--valgrind", action="store_true", help="count instructions (callgrind)")
    mode.add_argument("--cpu", action="store_true", help="CPU seconds (the default)")
    mode.add_argument(
        "--yappi", action="store_true", help="call counts per function (bench/yappi_serve.py)"
    )
    parser.add_argument("--keep", type=Path, help="keep the data and callgrind output here")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--backend", choices=("sqlite", "cluster"), default="sqlite")
    parser.add_argument("--rooms", type=int, default=4)
    parser.add_argument("--room-size", type=int, default=50)
    parser.add_argument("--in-flight", type=int, default=4, help="sends in flight (≤ rooms)")
    parser.add_argument("--messages", type=int, default=200, help="messages measured")
    parser.add_argument("--warmup", type=int, default=100, help="messages before measuring")
    add_modes(parser)
    args = parser.parse_args()
    if not 1 <= args.in_flight <= args.rooms:
        parser.error("--in-flight must be between 1 and --rooms")
    work = Path(tempfile.mkdtemp(prefix="room-instructions-")) if args.keep is None else args.keep
    work.mkdir(parents=True, exist_ok=True)
    data_dir = work / "data"
    with backends(args.backend, work) as env:
        settings = Settings(
            data_dir=data_dir,
            database_url=env.get("CHORUS_DATABASE_URL", ""),
            redis_url=env.get("CHORUS_REDIS_URL", ""),
        )
        accounts = trio.run(
            lambda: provision_node(
                settings,
                bots=args.rooms * args.room_size,
                rooms=args.rooms,
                room_size=args.room_size,
            )
        ).bots
        node = ["-m", "chorus"]
        if args.yappi:
            node = [str(Path(__file__).with_name("yappi_serve.py")), str(work / "yappi.txt")]
        command = [sys.executable, *node, "serve", "--data-dir", str(data_dir)]
        command += ["--http-port", "0", "--gateway-port", "0", "--log-level", "warning", *LIMITS]
        if args.valgrind:
            out = str(work / "node.cg")
            command = ["valgrind", "--tool=callgrind", "--instr-atstart=no",
                       "--separate-threads=yes", f"--callgrind-out-file={out}",
                       *command]  # fmt: skip
        log = work / "node.log"
        with log.open("w") as output:
            process = subprocess.Popen(
                command, stdout=output, stderr=subprocess.STDOUT, cwd=work, env=os.environ | env
            )
        try:
            host, port = wait_for_gateway(process, log)
            result = trio.run(drive, host, port, accounts, args, process.pid)
        finally:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(120)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    deliveries = args.messages * (args.room_size - 1)
    cpu = (result["user"] + result["system"]) * 1e6
    print(
        f"{args.backend}: rooms {args.rooms} of {args.room_size}, in flight {args.in_flight},"
        f" messages {args.messages} ({deliveries} deliveries)"
    )
    per_message, per_delivery = cpu / args.messages, cpu / deliveries
    print(f"node CPU: {per_message:.0f} µs per message, {per_delivery:.1f} per delivery")
    if args.yappi:
        print(f"per-function calls and seconds: {work / 'yappi.txt'} (keep it with --keep)")
    if args.valgrind:
        threads = thread_totals(work)
        total = sum(threads.values())
        print(
            f"node instructions: {total / args.messages:,.0f} per message,"
            f" {total / deliveries:,.0f} per delivery"
        )
        for thread, count in threads.items():
            print(f"  thread {thread}: {count / args.messages:,.0f} per message")
    if args.keep is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
