"""A whole node's cost per message in rooms of 2, over real WebSockets: for instruction counts.

Usage: python bench/dm_instructions.py [--rooms R] [--in-flight K] [--messages N]
                                       [--warmup W] [--valgrind | --strace | --cpu]

Starts `chorus serve` on a fresh SQLite data directory (a temporary one),
provisions 2*R bots in R rooms of 2 straight into its store, connects every
bot over a real WebSocket (hello, join), then runs a closed loop: K sends in
flight, each to a room of its own, each counted as done when the sender has
its `ack` and the other member has the `message`; the next send goes out
only then. W messages warm the node up, then N messages are measured:

- `--valgrind`: the node runs under `valgrind --tool=callgrind
  --instr-atstart=no`; instrumentation is switched on (and the counters
  zeroed) with `callgrind_control` just before the N messages and the
  counters are dumped just after them, so the figure is the instructions
  of the whole node (every thread) for exactly those N messages, which the
  machine's load does not change. Printed: instructions per message, and
  from the same dump the calls per message of `epoll_wait` (trio scheduler
  passes), of the sqlite3 module's statement execution, and of socket calls.
- `--strace`: `strace -f -ff` is attached to every thread of the node just
  before the N messages and detached just after them; printed are the
  system calls per message, by thread (named as the node names them) and by
  call. Counts, which the machine's load changes little (how writes group
  into commits and rounds can move with the node's pace, which strace slows).
- `--cpu` (the default): the node runs natively; printed is its CPU time
  (user + system, every thread, from /proc) over the N messages divided by
  N. Timed, so it moves with the load of the machine.

Every mode also prints each thread's context switches per message
(voluntary: it waited; involuntary: it was preempted; under `--strace`
the tracer's stops add to them), its time on a CPU and its time runnable
but waiting for a CPU (the machine's load, or the node's other thread), from
/proc.

The figure covers everything the node does for a message: reading and
parsing the frame, decoding, the rate limits, the room actor, the store's
group commit and its worker thread, the ack and the broadcast to the other
member, and the metrics. See docs/benchmarks.md, "Small rooms, server CPU
per message".
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

import trio

from chorus.bots._provision import BotAccount, provision_node
from chorus.bots._wire import (
    OP_CLOSE,
    OP_TEXT,
    FrameReader,
    check_handshake_response,
    client_frame,
    handshake_request,
)
from chorus.config import Settings

START_SECONDS = 600.0
"""How long the node may take to start (under valgrind it is ~50 times slower)."""
LIMITS = [
    # The closed loop sends as fast as the node answers: per-connection and per-user
    # limits would refuse it, and the node counts them either way.
    *("--frames-per-second", "1000000", "--frame-burst", "1000000"),
    *("--sends-per-second", "1000000", "--send-burst", "1000000"),
    *("--max-connections", "1000000", "--max-connections-per-address", "1000000"),
    # Under valgrind, connecting every bot can take longer than two heartbeats.
    *("--heartbeat-interval", "3600", "--auth-timeout", "3600"),
]
SUBPROTOCOL = "chorus.v1"


class Bot:
    """One client connection: sends frames, and wakes whoever waits for a frame's answer."""

    def __init__(self, account: BotAccount, sock: trio.SocketStream) -> None:
        self.account = account
        self.stream = sock
        self.waiting: dict[str, trio.Event] = {}
        """Key (`ack:<ref>`, `message:<client id>`, `ready`, `ack:join`) -> event to set."""
        self.reader = FrameReader(self._on_frame)

    def expect(self, key: str) -> trio.Event:
        event = self.waiting[key] = trio.Event()
        return event

    async def send(self, frame: dict[str, object]) -> None:
        await self.stream.send_all(client_frame(json.dumps(frame).encode()))

    def _on_frame(self, opcode: int, buffer: bytearray, start: int, end: int) -> None:
        if opcode == OP_CLOSE:
            code = int.from_bytes(buffer[start : start + 2], "big") if end - start >= 2 else None
            raise SystemExit(f"{self.account.username}: the node closed the connection ({code})")
        if opcode != OP_TEXT:
            return
        frame = json.loads(bytes(buffer[start:end]))
        kind = frame["type"]
        if kind == "ack":
            key = f"ack:{frame['ref']}"
        elif kind == "message":
            key = f"message:{frame['client_id']}"
        elif kind == "ready":
            key = "ready"
        elif kind == "error":
            raise SystemExit(f"{self.account.username}: error frame {frame}")
        else:
            return
        event = self.waiting.pop(key, None)
        if event is not None:
            event.set()

    async def read(self) -> None:
        while True:
            data = await self.stream.receive_some(65536)
            if not data:
                return
            self.reader.feed_bytes(data)


async def connect(host: str, port: int, account: BotAccount, nursery: trio.Nursery) -> Bot:
    stream = await trio.open_tcp_stream(host, port)
    stream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    request, accept = handshake_request(host, port, "/", SUBPROTOCOL)
    await stream.send_all(request)
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = await stream.receive_some(4096)
        if not chunk:
            raise SystemExit("the node closed the connection during the handshake")
        head += chunk
    head, _, rest = head.partition(b"\r\n\r\n")
    if (problem := check_handshake_response(head, accept, SUBPROTOCOL)) is not None:
        raise SystemExit(f"handshake refused: {problem}")
    bot = Bot(account, stream)
    bot.reader.feed_bytes(rest)
    nursery.start_soon(bot.read)
    ready = bot.expect("ready")
    await bot.send({"type": "hello", "token": account.token})
    await ready.wait()
    joined = bot.expect("ack:join")
    await bot.send({"type": "join", "ref": "join", "room": account.rooms[0]})
    await joined.wait()
    return bot


class Loop:
    """The closed loop: `lane` k sends in rooms k, k+K, k+2K... one message at a time."""

    def __init__(self, pairs: list[tuple[Bot, Bot]], in_flight: int) -> None:
        self.pairs = pairs
        self.in_flight = in_flight
        self.sent = 0

    async def run(self, messages: int) -> None:
        """Send `messages` messages (spread over the lanes) and wait until all are done."""
        per_lane, extra = divmod(messages, self.in_flight)
        async with trio.open_nursery() as nursery:
            for lane in range(self.in_flight):
                nursery.start_soon(self._lane, lane, per_lane + (lane < extra))

    async def _lane(self, lane: int, count: int) -> None:
        rooms = self.pairs[lane :: self.in_flight]
        for number in range(count):
            first, second = rooms[number % len(rooms)]
            # Alternate the sender within the room, as a conversation does.
            sender, receiver = (first, second) if number % 2 == 0 else (second, first)
            self.sent += 1
            client_id = f"m{lane}-{self.sent}"
            acked = sender.expect(f"ack:{client_id}")
            delivered = receiver.expect(f"message:{client_id}")
            room = sender.account.rooms[0]
            await sender.send(
                {
                    "type": "send",
                    "ref": client_id,
                    "room": room,
                    "client_id": client_id,
                    "body": "x" * 100,
                }
            )
            await acked.wait()
            await delivered.wait()


def cpu_seconds(pid: int) -> tuple[float, float]:
    """User and system CPU seconds of every thread of `pid` so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / ticks, int(fields[12]) / ticks


def thread_counters(pid: int) -> dict[str, tuple[int, ...]]:
    """Per thread of `pid` so far, by thread name (threads of one name summed; a thread
    that ended is not counted): voluntary and involuntary context switches, and
    nanoseconds on a CPU and runnable but waiting for one (`schedstat`), and user and
    system CPU in clock ticks (`stat`)."""
    counters: dict[str, tuple[int, ...]] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            status = (task / "status").read_text()
            on_cpu, waiting = (task / "schedstat").read_text().split()[:2]
            user, system = (task / "stat").read_text().rsplit(")", 1)[1].split()[11:13]
        except FileNotFoundError:  # the thread ended meanwhile
            continue
        fields = dict(line.split(":\t", 1) for line in status.splitlines())
        name = fields["Name"].strip()
        mine = (
            int(fields["voluntary_ctxt_switches"]),
            int(fields["nonvoluntary_ctxt_switches"]),
            int(on_cpu),
            int(waiting),
            int(user),
            int(system),
        )
        counters[name] = tuple(map(sum, zip(counters.get(name, (0,) * 6), mine, strict=True)))
    return counters


def thread_names(pid: int) -> dict[int, str]:
    """Each live thread of `pid`: its id and name."""
    names = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            names[int(task.name)] = (task / "comm").read_text().strip()
        except FileNotFoundError:
            continue
    return names


def attach_strace(pid: int, out_dir: Path) -> subprocess.Popen[bytes]:
    """`strace -f -ff` on every thread of `pid`, writing `out_dir/trace.<tid>`; returns
    once every thread is traced (files of an earlier run in `out_dir` are removed first)."""
    for stale in out_dir.glob("trace.*"):
        stale.unlink()
    tracer = subprocess.Popen(
        ["strace", "-f", "-ff", "-qq", "-o", str(out_dir / "trace"), "-p", str(pid)],
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        traced = [
            (task / "status").read_text().split("TracerPid:\t", 1)[1].split("\n", 1)[0] != "0"
            for task in Path(f"/proc/{pid}/task").iterdir()
        ]
        if all(traced):
            return tracer
        time.sleep(0.05)
    tracer.kill()
    raise SystemExit("strace did not attach to every thread in 30 s")


def syscalls_by_thread(out_dir: Path, names: dict[int, str]) -> dict[str, dict[str, int]]:
    """The system calls in each `out_dir/trace.<tid>` file, by thread name and call."""
    counts: dict[str, dict[str, int]] = {}
    for trace in out_dir.glob("trace.*"):
        name = names.get(int(trace.name.split(".")[-1]), "(ended)")
        calls = counts.setdefault(name, {})
        for line in trace.read_text(errors="replace").splitlines():
            call = line.partition("(")[0]
            if call.isidentifier():
                calls[call] = calls.get(call, 0) + 1
    return counts


def callgrind_control(pid: int, *flags: str) -> str:
    done = subprocess.run(
        ["callgrind_control", *flags, str(pid)], capture_output=True, text=True, check=True
    )
    return done.stdout


def wait_for_gateway(process: subprocess.Popen[bytes], log: Path) -> tuple[str, int]:
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        for line in log.read_text(errors="replace").splitlines():
            if line.strip().startswith("gateway") and "ws://" in line:
                address = line.split()[1].removeprefix("ws://").rstrip("/")
                host, _, port = address.rpartition(":")
                return host, int(port)
        if process.poll() is not None:
            break
        time.sleep(0.2)
    raise SystemExit(f"the node did not start:\n{log.read_text(errors='replace')[-3000:]}")


class Window:
    """What the node did over the measured messages, besides its CPU time."""

    def __init__(self, work: Path) -> None:
        self.work = work
        """Where `--strace` writes its files."""
        self.threads: dict[str, tuple[int, ...]] = {}
        """Thread name -> its `thread_counters` over the window."""
        self.thread_names: dict[int, str] = {}
        """Thread id -> name, at the window's end (to name `--strace`'s files)."""


async def drive(
    host: str,
    port: int,
    accounts: tuple[BotAccount, ...],
    args: argparse.Namespace,
    pid: int,
    window: Window,
) -> dict[str, float]:
    async with trio.open_nursery() as nursery:
        bots = [await connect(host, port, account, nursery) for account in accounts]
        pairs = [(bots[2 * k], bots[2 * k + 1]) for k in range(args.rooms)]
        loop = Loop(pairs, args.in_flight)
        await loop.run(args.warmup)
        if args.valgrind:
            callgrind_control(pid, "--instr=on")
            callgrind_control(pid, "--zero")
        tracer = attach_strace(pid, window.work) if args.strace else None
        threads_before = thread_counters(pid)
        cpu_before = cpu_seconds(pid)
        started = time.monotonic()
        await loop.run(args.messages)
        elapsed = time.monotonic() - started
        (user_before, system_before), (user, system) = cpu_before, cpu_seconds(pid)
        threads = thread_counters(pid)
        window.thread_names = thread_names(pid)
        if tracer is not None:
            tracer.send_signal(signal.SIGINT)  # detaches from the node, which runs on
            tracer.wait(60)
        window.threads = {
            name: tuple(
                a - b for a, b in zip(after, threads_before.get(name, (0,) * 6), strict=True)
            )
            for name, after in threads.items()
        }
        result = {
            "messages": args.messages,
            "seconds": elapsed,
            "user_seconds": user - user_before,
            "system_seconds": system - system_before,
        }
        if args.valgrind:
            callgrind_control(pid, "--dump=window")
            callgrind_control(pid, "--instr=off")
        nursery.cancel_scope.cancel()
    return result


def total_instructions(out_dir: Path) -> int:
    """The `totals:` of the window's dump (the file whose name has the highest part number)."""
    dumps = sorted(out_dir.glob("node.cg.*"), key=lambda path: int(path.name.split(".")[-1]))
    for line in dumps[-1].read_text().splitlines():
        if line.startswith(("totals:", "summary:")):
            return int(line.split()[1])
    raise SystemExit(f"no totals in {dumps[-1]}")


def callee_calls(dump: Path, wanted: Iterable[str]) -> dict[str, int]:
    """How many times the functions named `wanted` were called in one callgrind dump."""
    names: dict[str, str] = {}  # callgrind compresses names: "(id) name" once, then "(id)"
    counts = dict.fromkeys(sorted(wanted), 0)
    callee = None
    for line in dump.read_text().splitlines():
        if line.startswith(("fn=", "cfn=")):
            ident, _, name = line.partition("=")[2].partition(" ")
            if name:
                names[ident] = name
            callee = names.get(ident) if line.startswith("cfn=") else None
        elif line.startswith("calls=") and callee is not None:
            if callee in counts:
                counts[callee] += int(line.split()[0].removeprefix("calls="))
            callee = None
    return counts


def calls_per_message(out_dir: Path, messages: int) -> dict[str, float]:
    """Calls of a few C functions in the window's dump, per message: `epoll_wait` (one per
    trio scheduler pass; no other thread of the node polls), `_pysqlite_query_execute` (one
    per SQL statement executed, `executemany` included) and the node's socket calls."""
    dumps = sorted(out_dir.glob("node.cg.*"), key=lambda path: int(path.name.split(".")[-1]))
    wanted = ("epoll_wait", "_pysqlite_query_execute", "send", "recv", "epoll_ctl")
    counts = callee_calls(dumps[-1], wanted)
    return {name: count / messages for name, count in counts.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rooms", type=int, default=50)
    parser.add_argument("--in-flight", type=int, default=10, help="sends in flight (≤ rooms)")
    parser.add_argument("--messages", type=int, default=1000, help="messages measured")
    parser.add_argument("--warmup", type=int, default=200, help="messages before measuring")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--valgrind", action="store_true", help="count instructions (callgrind)")
    mode.add_argument("--strace", action="store_true", help="count system calls (strace)")
    mode.add_argument("--cpu", action="store_true", help="CPU seconds (the default)")
    parser.add_argument("--keep", type=Path, help="keep the data and callgrind output here")
    args = parser.parse_args()
    if not 1 <= args.in_flight <= args.rooms:
        parser.error("--in-flight must be between 1 and --rooms")
    work = Path(tempfile.mkdtemp(prefix="dm-instructions-")) if args.keep is None else args.keep
    work.mkdir(parents=True, exist_ok=True)
    data_dir = work / "data"
    accounts = trio.run(
        lambda: provision_node(
            Settings(data_dir=data_dir), bots=2 * args.rooms, rooms=args.rooms, room_size=2
        )
    ).bots
    command = [sys.executable, "-m", "chorus", "serve", "--data-dir", str(data_dir)]
    command += ["--http-port", "0", "--gateway-port", "0", "--log-level", "warning", *LIMITS]
    if args.valgrind:
        out = str(work / "node.cg")
        command = ["valgrind", "--tool=callgrind", "--instr-atstart=no",
                   f"--callgrind-out-file={out}", *command]  # fmt: skip
    log = work / "node.log"
    window = Window(work)
    with log.open("w") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, cwd=work)
    try:
        host, port = wait_for_gateway(process, log)
        result = trio.run(drive, host, port, accounts, args, process.pid, window)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(120)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    user, system = (
        result[key] / result["messages"] * 1e6 for key in ("user_seconds", "system_seconds")
    )
    print(f"rooms {args.rooms}, in flight {args.in_flight}, messages {args.messages}")
    print(
        f"node CPU per message: {user + system:.0f} µs (user {user:.0f}, system {system:.0f};"
        f" {args.messages / result['seconds']:.0f} messages/s)"
    )
    if args.valgrind:
        instructions = total_instructions(work)
        print(f"node instructions per message: {instructions / result['messages']:,.0f}")
        calls = calls_per_message(work, args.messages)
        print(
            f"per message: {calls['epoll_wait']:.2f} scheduler passes (epoll_wait),"
            f" {calls['_pysqlite_query_execute']:.2f} SQL statements,"
            f" {calls['send']:.2f} send, {calls['recv']:.2f} recv,"
            f" {calls['epoll_ctl']:.2f} epoll_ctl"
        )
    tick_us = 1e6 / os.sysconf("SC_CLK_TCK")
    for name, counts in sorted(window.threads.items()):
        voluntary, involuntary, on_cpu, waiting, user_ticks, system_ticks = counts
        print(
            f"per message, thread {name}: {voluntary / args.messages:.2f} voluntary and"
            f" {involuntary / args.messages:.2f} involuntary context switches;"
            f" {on_cpu / 1e3 / args.messages:.0f} µs on a CPU (user"
            f" {user_ticks * tick_us / args.messages:.0f}, system"
            f" {system_ticks * tick_us / args.messages:.0f}),"
            f" {waiting / 1e3 / args.messages:.0f} µs runnable waiting for one"
        )
    if args.strace:
        by_thread = syscalls_by_thread(work, window.thread_names)
        total = sum(sum(calls.values()) for calls in by_thread.values())
        print(f"system calls per message: {total / args.messages:.2f}")
        for name, made in sorted(by_thread.items()):
            listed = ", ".join(
                f"{call} {count / args.messages:.2f}"
                for call, count in sorted(made.items(), key=lambda item: -item[1])
            )
            print(f"  {name}: {sum(made.values()) / args.messages:.2f} ({listed})")
    if args.keep is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
