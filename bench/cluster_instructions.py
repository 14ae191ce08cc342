"""One node's cost per message in a cluster of N nodes on PostgreSQL + Redis: for
instruction counts (issue #15 target 1d: cluster-3 against cluster-1).

Usage: python bench/cluster_instructions.py [--nodes N] [--rooms R] [--room-size S]
                                            [--in-flight K] [--messages M] [--warmup W]
                                            [--valgrind | --cpu] [--keep DIR]

`bench/room_instructions.py` for more than one node: starts a private
PostgreSQL and Redis as `bench/run.py` does for its cluster scenarios,
provisions R*S bots in R rooms of S straight into the shared store, starts N
`chorus serve` on them (each with its own data directory and ports), the
first under callgrind (`--valgrind`) and the others natively, and connects
every bot over a real WebSocket to node `i % N` (member i of its room), so
each room's members are spread over the nodes as `chorus bots` spreads them
in `cluster-3`. Then the closed loop of `room_instructions.py`: K sends in
flight, each to a room of its own, the sender going round the room's
members (so a send comes in on every node in turn), each done when the
sender has its `ack` and the S-1 others the `message`. W messages warm up,
then M messages are measured on the first node only:

- `--valgrind`: `--instr-atstart=no --separate-threads=yes`; the counters are
  zeroed and switched on with `callgrind_control` just before the M messages
  and dumped (`node.cg.<part>-<thread>` in the work directory) just after, so
  the figures are the first node's instructions for exactly those messages,
  whatever the machine's load. `callgrind_annotate --inclusive=yes` of the
  dumps (kept with `--keep`) says where.
  Also printed: calls per message of a few C functions of trio's thread
  (`epoll_wait`: scheduler passes; `context_run`: task steps; `recv`, `send`).
- `--yappi`: the first node runs under `bench/yappi_serve.py` (`pip install
  yappi`), profiling exactly the M messages: exact call counts per Python
  function (and inflated CPU seconds) in `yappi.txt`.
- `--cpu` (the default): the first node's CPU time over the M messages.

The nodes are alike (every one has a room actor for each room with local
members, publishes what it stores and takes in its peers' publications),
so N times the first node's figure is the cluster's; `--nodes 3` against
`--nodes 1` is the cross-node ratio of target 1d for this workload.
Printed: the first node's figure per message and per delivery (M*(S-1)
deliveries in all), and N times it.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import trio
from dm_instructions import (  # siblings: run as `python bench/...`
    LIMITS,
    Bot,
    callee_calls,
    callgrind_control,
    connect,
    cpu_seconds,
    wait_for_gateway,
)
from room_instructions import Loop, add_modes, thread_totals
from run import postgres_and_redis

from chorus.bots._provision import BotAccount, provision_node
from chorus.config import Settings


async def drive(
    gateways: list[tuple[str, int]],
    accounts: tuple[BotAccount, ...],
    args: argparse.Namespace,
    pid: int,
) -> dict[str, float]:
    """Connect the bots (member i of a room to gateway i % N), warm up, run the measured
    window on the first node (`pid`); its CPU seconds over the window."""
    async with trio.open_nursery() as nursery:
        by_room: dict[str, list[Bot]] = {}
        for account in accounts:
            members = by_room.setdefault(account.rooms[0], [])
            host, port = gateways[len(members) % len(gateways)]
            members.append(await connect(host, port, account, nursery))
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
            await trio.sleep(2)  # it writes the file from its signal handler
        if args.valgrind:
            callgrind_control(pid, "--dump=window")
            callgrind_control(pid, "--instr=off")
        nursery.cancel_scope.cancel()
    return {"user": after[0] - before[0], "system": after[1] - before[1]}


def start_node(
    work: Path, number: int, env: dict[str, str], valgrind: bool, yappi: bool
) -> subprocess.Popen[bytes]:
    data_dir = work / f"node{number}"
    data_dir.mkdir(exist_ok=True)
    node = ["-m", "chorus"]
    if yappi:
        node = [str(Path(__file__).with_name("yappi_serve.py")), str(work / "yappi.txt")]
    command = [sys.executable, *node, "serve", "--data-dir", str(data_dir)]
    command += ["--http-port", "0", "--gateway-port", "0", "--log-level", "warning", *LIMITS]
    if valgrind:
        command = ["valgrind", "--tool=callgrind", "--instr-atstart=no",
                   "--separate-threads=yes", f"--callgrind-out-file={work / 'node.cg'}",
                   *command]  # fmt: skip
    with (work / f"node{number}.log").open("w") as output:
        return subprocess.Popen(
            command, stdout=output, stderr=subprocess.STDOUT, cwd=work, env=os.environ | env
        )


def c_calls(work: Path, thread: str) -> dict[str, int]:
    """Calls of a few C functions in one thread's dump of the window (the highest part)."""
    dumps = sorted(work.glob(f"node.cg.*-{thread}"), key=lambda path: int(path.name[8:-3]))
    return callee_calls(dumps[-1], ("epoll_wait", "context_run", "recv", "send"))


def stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGINT)
    try:
        process.wait(120)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--rooms", type=int, default=4)
    parser.add_argument("--room-size", type=int, default=51)
    parser.add_argument("--in-flight", type=int, default=4, help="sends in flight (≤ rooms)")
    parser.add_argument("--messages", type=int, default=300, help="messages measured")
    parser.add_argument("--warmup", type=int, default=60, help="messages before measuring")
    add_modes(parser)
    args = parser.parse_args()
    if not 1 <= args.in_flight <= args.rooms:
        parser.error("--in-flight must be between 1 and --rooms")
    work = (
        Path(tempfile.mkdtemp(prefix="cluster-instructions-")) if args.keep is None else args.keep
    )
    work.mkdir(parents=True, exist_ok=True)
    with postgres_and_redis(work) as found:
        env = found.env
        settings = Settings(
            data_dir=work / "node0",
            database_url=env["CHORUS_DATABASE_URL"],
            redis_url=env["CHORUS_REDIS_URL"],
        )
        accounts = trio.run(
            lambda: provision_node(
                settings,
                bots=args.rooms * args.room_size,
                rooms=args.rooms,
                room_size=args.room_size,
            )
        ).bots
        processes: list[subprocess.Popen[bytes]] = []
        try:
            gateways = []
            for number in range(args.nodes):
                processes.append(
                    start_node(
                        work, number, env, args.valgrind and number == 0, args.yappi and number == 0
                    )
                )
                gateways.append(wait_for_gateway(processes[-1], work / f"node{number}.log"))
            result = trio.run(drive, gateways, accounts, args, processes[0].pid)
        finally:
            for process in processes:
                stop(process)
    deliveries = args.messages * (args.room_size - 1)
    n = args.nodes
    cpu = (result["user"] + result["system"]) * 1e6
    print(
        f"{n} node(s): rooms {args.rooms} of {args.room_size}, in flight {args.in_flight},"
        f" messages {args.messages} ({deliveries} deliveries)"
    )
    print(
        f"first node CPU: {cpu / args.messages:.0f} µs per message;"
        f" x{n}: {n * cpu / deliveries:.1f} µs per delivery"
    )
    if args.valgrind:
        threads = thread_totals(work)
        total = sum(threads.values())
        print(
            f"first node instructions: {total / args.messages:,.0f} per message;"
            f" x{n}: {n * total / args.messages:,.0f} per message,"
            f" {n * total / deliveries:,.0f} per delivery"
        )
        for thread, count in threads.items():
            print(f"  thread {thread}: {count / args.messages:,.0f} per message")
        calls = c_calls(work, "01")
        print(
            "  trio's thread, calls per message: "
            + ", ".join(f"{name} {count / args.messages:.2f}" for name, count in calls.items())
        )
    if args.yappi:
        print(f"per-function calls and seconds: {work / 'yappi.txt'} (keep it with --keep)")
    if args.keep is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
