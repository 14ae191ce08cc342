"""Where an idle connection's memory goes: a node in this process, N then 2N idle clients.

Usage: .venv/bin/python bench/idle_heap.py [--connections N] [--rooms-each K] [--frames F]
                                           [--no-trace]

Runs a default node (`chorus.node.serve`, SQLite in a temporary data directory,
heartbeats every 10 minutes so nothing times out meanwhile) in this process with
`tracemalloc` on, and a client in a subprocess (plain blocking sockets) that opens
idle WebSocket connections: handshake, `hello`, then `join` of K rooms each (bots
provisioned straight into the store, as `chorus bots` does). After N connections
and again after 2N, it takes a heap snapshot, counts trio tasks, objects by type
(`gc`) and reads RSS; the differences divided by N are the cost of one idle
authenticated connection, printed grouped by the allocating line (the innermost
frame in chorus, trio or wsproto). `--no-trace` leaves tracemalloc off, for an
RSS figure without its own overhead.
"""

from __future__ import annotations

import argparse
import collections
import gc
import json
import os
import subprocess
import sys
import tempfile
import tracemalloc
from pathlib import Path
from typing import Any

import trio

from chorus.bots._provision import provision_node
from chorus.config import Settings
from chorus.logs import configure_logging
from chorus.node import serve

_FRAMES = 12
_CLIENT = r"""
import base64, json, os, socket, struct, sys
tokens = json.load(open(sys.argv[1]))  # [[token, [room, ...]], ...]
port = int(sys.argv[2])
held = []

def frame(text):
    data = text.encode()
    mask = os.urandom(4)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
    size = len(data)
    if size < 126:
        head = bytes([0x81, 0x80 | size])
    else:
        head = bytes([0x81, 0xFE]) + struct.pack("!H", size)
    return head + mask + masked

def read_until(sock, needle, count):
    seen = b""
    while seen.count(needle) < count:
        chunk = sock.recv(65536)
        if not chunk:
            raise SystemExit("server closed a connection")
        seen += chunk

def connect(token, rooms):
    sock = socket.create_connection(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n"
        "Sec-WebSocket-Protocol: chorus.v1\r\n\r\n" % key).encode())
    read_until(sock, b"\r\n\r\n", 1)
    sock.sendall(frame(json.dumps({"type": "hello", "token": token})))
    read_until(sock, b'"ready"', 1)
    if rooms:
        sock.sendall(b"".join(frame(json.dumps({"type": "join", "ref": "j%d" % i, "room": room}))
                              for i, room in enumerate(rooms)))
        read_until(sock, b'"ack"', len(rooms))
    held.append(sock)

cursor = 0
for line in sys.stdin:
    for token, rooms in tokens[cursor : cursor + int(line)]:
        connect(token, rooms)
    cursor += int(line)
    print("held", len(held), flush=True)
"""


def rss_kib() -> int:
    """This process's resident set size, in KiB."""
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024


def count_tasks() -> int:
    """Every trio task of this run."""
    root = trio.lowlevel.current_root_task()
    assert root is not None  # called from inside trio.run
    stack, count = [root], 0
    while stack:
        task = stack.pop()
        count += 1
        for nursery in task.child_nurseries:
            stack.extend(nursery.child_tasks)
    return count


def type_counts() -> collections.Counter[str]:
    gc.collect()
    return collections.Counter(type(o).__qualname__ for o in gc.get_objects())


class Sample:
    def __init__(self, tracing: bool) -> None:
        self.rss = rss_kib()
        self.tasks = count_tasks()
        self.types = type_counts()
        self.snapshot: Path | None = None
        if tracing:  # kept on disk: a snapshot in memory is thousands of objects
            self.snapshot = Path(tempfile.mkstemp(suffix=".snapshot")[1])
            tracemalloc.take_snapshot().dump(str(self.snapshot))


def _short(frame: tracemalloc.Frame) -> str:
    name = frame.filename
    for package in ("chorus", "trio", "wsproto", "structlog", "attr"):
        if f"/{package}/" in name:
            name = name[name.rfind(f"/{package}/") + 1 :]
    return f"{name}:{frame.lineno}"


def _where(trace: tracemalloc.Traceback) -> str:
    """The allocating line, and the innermost line of chorus that led to it."""
    frames = list(reversed(trace))  # most recent call first
    ours = next((f for f in frames if "/chorus/" in f.filename), None)
    if ours is None or ours is frames[0]:
        return _short(frames[0])
    return f"{_short(frames[0])} <- {_short(ours)}"


def report(first: Sample, second: Sample, n: int, top: int) -> dict[str, Any]:
    out: dict[str, Any] = {
        "connections_added": n,
        "rss_kib_per_connection": round((second.rss - first.rss) / n, 2),
        "trio_tasks_per_connection": round((second.tasks - first.tasks) / n, 2),
    }
    types = second.types.copy()
    types.subtract(first.types)
    out["objects_per_connection"] = {
        name: round(count / n, 2) for name, count in types.most_common(25) if count >= n / 2
    }
    if first.snapshot is not None and second.snapshot is not None:
        before = tracemalloc.Snapshot.load(str(first.snapshot))
        diff = tracemalloc.Snapshot.load(str(second.snapshot)).compare_to(before, "traceback")
        by_line: collections.Counter[str] = collections.Counter()
        for stat in diff:
            by_line[_where(stat.traceback)] += stat.size_diff
        total = sum(stat.size_diff for stat in diff)
        out["heap_bytes_per_connection"] = round(total / n)
        by_ours: collections.Counter[str] = collections.Counter()
        for stat in diff:
            ours = next((f for f in reversed(stat.traceback) if "/chorus/" in f.filename), None)
            by_ours["(not under chorus)" if ours is None else _short(ours)] += stat.size_diff
        out["heap_by_chorus_line"] = {
            where: round(size / n) for where, size in by_ours.most_common(top) if size / n >= 16
        }
        out["heap_by_line"] = {
            where: round(size / n) for where, size in by_line.most_common(top) if size / n >= 16
        }
    return out


async def measure(settings: Settings, args: argparse.Namespace, tokens: str) -> dict[str, Any]:
    async with trio.open_nursery() as nursery:
        addresses = await nursery.start(serve, settings)
        port = addresses.gateway[1]
        client = subprocess.Popen(  # noqa: ASYNC220 (started once, before the measurement)
            [sys.executable, "-c", _CLIENT, tokens, str(port)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        commands, replies = client.stdin, client.stdout
        assert commands is not None
        assert replies is not None

        async def add(count: int) -> None:
            commands.write(f"{count}\n")
            commands.flush()
            line = await trio.to_thread.run_sync(replies.readline)
            if not line.startswith("held"):
                raise SystemExit(f"the client failed: {line!r}")
            await trio.sleep(0.5)  # let the node settle (presence coalescing, flushes)

        n = args.connections
        try:
            await add(n)
            first = Sample(not args.no_trace)
            await add(n)
            second = Sample(not args.no_trace)
        finally:
            client.kill()
            client.wait()
        nursery.cancel_scope.cancel()
    return report(first, second, n, args.top)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--connections", type=int, default=500, help="N (2N are opened)")
    parser.add_argument("--rooms-each", type=int, default=3, help="rooms each client joins")
    parser.add_argument("--room-size", type=int, default=50)
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--no-trace", action="store_true")
    args = parser.parse_args()
    configure_logging("json", "warning")
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            data_dir=Path(tmp) / "data",
            http_port=0,
            gateway_port=0,
            log_format="json",
            log_level="warning",
            heartbeat_interval=600.0,
            max_connections=1_000_000,  # every client is 127.0.0.1: lift the caps
            max_connections_per_address=1_000_000,
        )
        bots = 2 * args.connections
        rooms = max(1, bots * args.rooms_each // args.room_size) if args.rooms_each else 1
        provisioned = trio.run(
            lambda: provision_node(settings, bots=bots, rooms=rooms, room_size=args.room_size)
        )
        tokens = str(Path(tmp) / "tokens.json")
        Path(tokens).write_text(
            json.dumps(
                [[bot.token, list(bot.rooms[: args.rooms_each])] for bot in provisioned.bots]
            )
        )
        if not args.no_trace:
            tracemalloc.start(_FRAMES)
        result = trio.run(measure, settings, args, tokens)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
