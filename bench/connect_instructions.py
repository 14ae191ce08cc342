"""A node's cost per client connection in a cluster on PostgreSQL + Redis: the WebSocket
handshake, `hello` and the `join` of a room, for instruction counts (issue #15,
session 13: the ramp of `cluster-3`).

Usage: python bench/connect_instructions.py [--nodes N] [--rooms R] [--room-size S]
                                            [--valgrind | --cpu | --yappi] [--keep DIR]

Starts a private PostgreSQL and Redis as `bench/run.py` does, provisions
(R+1)*S bots in R+1 rooms of S straight into the shared store and starts N
`chorus serve` on them (the first under callgrind with `--valgrind`, or
`bench/yappi_serve.py` with `--yappi`), as `bench/cluster_instructions.py`
does. The bots of the first room connect first (a warm-up: the node's pools,
its first room actor and presence actor run before the window). Then, in the
measured window on the first node, the R*S bots of the other rooms connect one
after another, bot i to node i % N (as `chorus bots` spreads a room's members in
`cluster-3`), each with the handshake, `hello` (waiting for `ready`) and
`join` of its room (waiting for the `ack`); the window ends when every other
member of the last room has seen the last bot's presence twice (its `hello`'s
announcement and its join's), i.e. with every connection's fan-out done. So
the rooms fill up from empty, as in the ramp, and the figures are per
connection made on any node (N times the first node's count over R*S
connections: the nodes are alike).

- `--valgrind`: instructions of the first node in the window, by thread, with
  `callgrind_annotate --inclusive=yes` of the dumps in the work directory
  (kept with `--keep`); also calls of a few C functions per connection.
- `--yappi`: exact Python call counts and (inflated) seconds per function of
  the first node in the window, `yappi.txt` in the work directory, and the
  inclusive seconds of the connection's steps.
- `--cpu` (the default): the first node's CPU seconds over the window.

Also printed: the frames the bots got in the window, by type, per connection.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import shutil
import signal
import tempfile
from pathlib import Path
from typing import ClassVar

import trio
from cluster_instructions import c_calls, start_node, stop  # siblings: run as `python bench/...`
from dm_instructions import (
    Bot,
    callgrind_control,
    connect,
    cpu_seconds,
    wait_for_gateway,
)
from room_instructions import add_modes, thread_totals
from run import postgres_and_redis

from chorus.bots._provision import BotAccount, provision_node
from chorus.bots._wire import OP_TEXT
from chorus.config import Settings

SETTLE_SECONDS = 600.0
"""How long the last connection's fan-out may take to reach every member (valgrind is slow)."""

STEPS = (
    "gateway/_connection.py Connection.handshake",
    "actors/connection.py ChatConnection._hello",
    "auth/_service.py AuthService.authenticate",
    "auth/_tokens.py TokenSigner.verify",
    "actors/connection.py ChatConnection._report_presence",
    "actors/presence.py _UserPresence.__call__",
    "actors/presence.py Presence.across_nodes",
    "actors/presence.py Presence.announce",
    "actors/connection.py ChatConnection._subscribe",
    "chorus/chat.py membership",
    "actors/connection.py ChatConnection._send_presence_of_members",
    "persistence/roles/rooms.py PostgresStore.members",
    "persistence/roles/rooms.py PostgresStore.member_ids",
    "persistence/roles/rooms.py members",
    "persistence/roles/rooms.py member_ids",
    "cluster/_presence.py RedisDirectory.statuses",
    "actors/connection.py ChatConnection._announce_presence_in",
    "actors/room.py RoomActor._subscribe",
    "actors/room.py RoomActor._handle",
    "cluster/_connection.py RespClient._read",
    "gateway/_outbox.py Flusher._flush",
)
"""The steps whose inclusive yappi seconds are printed (`path function` as yappi names them)."""


class CountingBot(Bot):
    """A bot that also counts the frames it gets, by type, and the presence events per user."""

    frames: ClassVar[collections.Counter[str]] = collections.Counter()
    """Every bot's frames by type (shared: the window's totals)."""
    presence_seen: ClassVar[trio.Event] = trio.Event()
    """Set when any bot gets a presence event (replaced by whoever waits for the next)."""

    def __init__(self, account: BotAccount, sock: trio.SocketStream) -> None:
        super().__init__(account, sock)
        self.presence: collections.Counter[str] = collections.Counter()
        """Presence events this bot got, by the user they were about."""

    def _on_frame(self, opcode: int, buffer: bytearray, start: int, end: int) -> None:
        if opcode == OP_TEXT:
            frame = json.loads(bytes(buffer[start:end]))
            CountingBot.frames[frame["type"]] += 1
            if frame["type"] == "presence":
                self.presence[frame["user"]] += 1
                CountingBot.presence_seen.set()
        super()._on_frame(opcode, buffer, start, end)


async def drive(
    gateways: list[tuple[str, int]],
    warmup: list[BotAccount],
    measured: list[BotAccount],
    args: argparse.Namespace,
    pid: int,
) -> dict[str, float]:
    """Connect the warm-up bots, then the measured ones in the window on the first node
    (`pid`); its CPU seconds over the window."""
    import dm_instructions

    dm_instructions.Bot = CountingBot  # type: ignore[misc]  # `connect` makes these
    async with trio.open_nursery() as nursery:
        for i, account in enumerate(warmup):
            host, port = gateways[i % len(gateways)]
            await connect(host, port, account, nursery)
        if args.valgrind:
            callgrind_control(pid, "--instr=on")
            callgrind_control(pid, "--zero")
        if args.yappi:
            os.kill(pid, signal.SIGUSR1)
        CountingBot.frames.clear()
        before = cpu_seconds(pid)
        bots: list[CountingBot] = []
        for i, account in enumerate(measured):
            host, port = gateways[i % len(gateways)]
            bot = await connect(host, port, account, nursery)
            assert isinstance(bot, CountingBot)
            bots.append(bot)
        last = bots[-1]
        room_mates = [bot for bot in bots if bot.account.rooms[0] == last.account.rooms[0]]
        with trio.fail_after(SETTLE_SECONDS):
            while True:
                CountingBot.presence_seen = trio.Event()
                if all(bot.presence[last.account.user_id] >= 2 for bot in room_mates[:-1]):
                    break
                await CountingBot.presence_seen.wait()
        after = cpu_seconds(pid)
        if args.yappi:
            os.kill(pid, signal.SIGUSR2)
            await trio.sleep(2)  # it writes the file from its signal handler
        if args.valgrind:
            callgrind_control(pid, "--dump=window")
            callgrind_control(pid, "--instr=off")
        nursery.cancel_scope.cancel()
    return {"user": after[0] - before[0], "system": after[1] - before[1]}


def step_seconds(yappi_txt: Path) -> dict[str, tuple[int, float]]:
    """Calls and inclusive seconds of each of `STEPS` in a `yappi_serve.py` output."""
    found: dict[str, tuple[int, float]] = {}
    for line in yappi_txt.read_text().splitlines():
        calls, _own, total, where = line.split("\t", 3)
        path, _, name = where.partition(" ")
        for step in STEPS:
            file, _, function = step.partition(" ")
            if path.rpartition(":")[0].endswith(f"/{file}") and name == function:
                found[step] = (int(calls), float(total))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--nodes", type=int, default=1)
    parser.add_argument("--rooms", type=int, default=4, help="rooms filled in the window")
    parser.add_argument("--room-size", type=int, default=50)
    add_modes(parser)
    args = parser.parse_args()
    work = (
        Path(tempfile.mkdtemp(prefix="connect-instructions-")) if args.keep is None else args.keep
    )
    work.mkdir(parents=True, exist_ok=True)
    with postgres_and_redis(work) as found:
        env = found.env
        settings = Settings(
            data_dir=work / "node0",
            database_url=env["CHORUS_DATABASE_URL"],
            redis_url=env["CHORUS_REDIS_URL"],
        )
        rooms = args.rooms + 1
        accounts = trio.run(
            lambda: provision_node(
                settings, bots=rooms * args.room_size, rooms=rooms, room_size=args.room_size
            )
        ).bots
        first_room = accounts[0].rooms[0]
        warmup = [account for account in accounts if account.rooms[0] == first_room]
        measured = [account for account in accounts if account.rooms[0] != first_room]
        processes = []
        try:
            gateways = []
            for number in range(args.nodes):
                processes.append(
                    start_node(
                        work, number, env, args.valgrind and number == 0, args.yappi and number == 0
                    )
                )
                gateways.append(wait_for_gateway(processes[-1], work / f"node{number}.log"))
            result = trio.run(drive, gateways, warmup, measured, args, processes[0].pid)
        finally:
            for process in processes:
                stop(process)
    n, connections = args.nodes, len(measured)
    cpu = (result["user"] + result["system"]) * 1e6
    print(
        f"{n} node(s): {connections} connections measured (rooms {args.rooms} of"
        f" {args.room_size}, filled from empty), {len(warmup)} before them"
    )
    print(f"first node CPU: x{n}: {n * cpu / connections:.0f} µs per connection")
    print(
        "frames to the bots per connection: "
        + ", ".join(
            f"{kind} {count / connections:.2f}"
            for kind, count in sorted(CountingBot.frames.items())
        )
    )
    if args.valgrind:
        threads = thread_totals(work)
        total = sum(threads.values())
        print(f"first node instructions: x{n}: {n * total / connections:,.0f} per connection")
        for thread, count in threads.items():
            print(f"  thread {thread}: x{n}: {n * count / connections:,.0f} per connection")
        calls = c_calls(work, "01")
        print(
            f"  trio's thread, calls per connection (x{n}): "
            + ", ".join(f"{name} {n * c / connections:.2f}" for name, c in calls.items())
        )
    if args.yappi:
        print(f"steps on the first node (x{n}): calls and inclusive yappi ms per connection")
        steps = step_seconds(work / "yappi.txt")
        for step, (calls_, seconds) in sorted(steps.items(), key=lambda s: STEPS.index(s[0])):
            print(
                f"  {step}: {n * calls_ / connections:.2f} calls,"
                f" {n * seconds * 1e3 / connections:.3f} ms"
            )
    if args.keep is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
