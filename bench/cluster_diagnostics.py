"""Samples of a multi-node scenario's processes, every 0.2 s: for finding why it queues.

Not part of a normal run: `bench/run.py` starts a `Sampler` around the swarm
of a `cluster` scenario only when `BENCH_DIAGNOSE` names a folder, and then
also names each node's PostgreSQL connections (`application_name=nodeN`),
runs PostgreSQL with `BENCH_PG_SETTINGS` added (e.g. `log_lock_waits=on
log_min_duration_statement=50`) and copies its log into that folder. One
JSON object a line in `samples.jsonl`, each with `wall` (Unix seconds) and:
`threads` every node's threads' CPU ticks (`/proc/PID/task/*/stat`: utime +
stime, by thread name and id), `postgres` and `redis` the trees' CPU ticks,
`pressure` the kernel's CPU and I/O stall totals (µs, `/proc/pressure`),
`disk` the root disk's completed writes and flushes and the ms spent on them
(`/proc/diskstats`), `activity` PostgreSQL's client backends (application,
state, wait event, ms since the statement and the transaction started, the statement's start: one
persistent `psql`), `redis_clients` Redis's clients' names or addresses with
their query and output buffers (`CLIENT LIST` on one connection).
`bench/cluster_diagnostics_report.py` reads it against the swarm's timeline.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

PERIOD = 0.2
MAX_SAMPLES = 1500
"""At most 300 s of samples, whatever happens to the swarm."""

_ACTIVITY = (
    "SELECT application_name, state, coalesce(wait_event_type, ''), coalesce(wait_event, ''),"
    " round(extract(epoch FROM clock_timestamp() - query_start) * 1000),"
    " round(extract(epoch FROM clock_timestamp() - xact_start) * 1000), left(query, 40)"
    " FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid();"
)
_END = "--end--"


def _ticks(path: Path) -> tuple[str, int]:
    text = path.read_text()
    name = text[text.index("(") + 1 : text.rindex(")")]
    fields = text.rsplit(")", 1)[1].split()
    return name, int(fields[11]) + int(fields[12])


def _threads(pid: int) -> dict[str, list[Any]]:
    found: dict[str, list[Any]] = {}
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return found
    for task in tasks:
        try:
            name, ticks = _ticks(task / "stat")
        except (OSError, ValueError):
            continue
        found[task.name] = [name, ticks]
    return found


def _tree(pid: int) -> int:
    """CPU ticks of `pid` and its live children (PostgreSQL's backends), reaped ones too."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return 0
    total = sum(int(fields[i]) for i in (11, 12, 13, 14))
    for child in children:
        with contextlib.suppress(OSError, ValueError):
            total += _ticks(Path(f"/proc/{child}/stat"))[1]
    return total


def _pressure() -> dict[str, int]:
    totals = {}
    for kind in ("cpu", "io"):
        try:
            for line in Path(f"/proc/pressure/{kind}").read_text().splitlines():
                fields = dict(part.split("=") for part in line.split()[1:])
                totals[f"{kind}_{line.split()[0]}"] = int(fields["total"])
        except OSError:
            pass
    return totals


def _disk() -> dict[str, int]:
    for line in Path("/proc/diskstats").read_text().splitlines():
        fields = line.split()
        if fields[2] in ("vda", "sda", "nvme0n1", "xvda"):
            values = [int(f) for f in fields[3:]]
            disk = {"writes": values[4], "write_ms": values[7], "in_flight": values[8]}
            if len(values) >= 17:
                disk |= {"flushes": values[15], "flush_ms": values[16]}
            return disk
    return {}


class Sampler:
    """A thread sampling the processes of a multi-node run until `stop` (or `MAX_SAMPLES`)."""

    def __init__(
        self,
        out: Path,
        nodes: list[int],
        others: dict[str, int | None],
        psql: list[str],
        redis_port: int | None,
    ) -> None:
        self.out = out
        self.nodes = nodes
        self.others = others
        self.psql = subprocess.Popen(
            [*psql, "--no-psqlrc", "--quiet", "--tuples-only", "--no-align", "--field-separator=|"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        self.redis: socket.socket | None = None
        if redis_port is not None:
            self.redis = socket.create_connection(("127.0.0.1", redis_port), timeout=2)
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> Sampler:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.done.set()
        self.thread.join(10)
        assert self.psql.stdin is not None
        self.psql.stdin.close()
        self.psql.wait(10)
        if self.redis is not None:
            self.redis.close()

    def _activity(self) -> list[list[str]]:
        assert self.psql.stdin is not None
        assert self.psql.stdout is not None
        self.psql.stdin.write(f"{_ACTIVITY}\n\\echo {_END}\n")
        self.psql.stdin.flush()
        rows = []
        for _ in range(1000):
            line = self.psql.stdout.readline()
            if not line or line.strip() == _END:
                break
            if line.strip():
                rows.append(line.rstrip("\n").split("|"))
        return rows

    def _redis_clients(self) -> list[dict[str, str]]:
        if self.redis is None:
            return []
        self.redis.sendall(b"CLIENT LIST\r\n")
        data = b""
        while b"\r\n" not in data:
            data += self.redis.recv(65536)
        header, rest = data.split(b"\r\n", 1)
        size = int(header[1:])
        while len(rest) < size + 2:
            rest += self.redis.recv(65536)
        clients = []
        for line in rest[:size].decode().splitlines():
            fields = dict(part.split("=", 1) for part in line.split() if "=" in part)
            keep = ("addr", "name", "cmd", "qbuf", "omem", "tot-mem", "sub")
            clients.append({k: fields.get(k, "") for k in keep})
        return clients

    def _loop(self) -> None:
        with (self.out / "samples.jsonl").open("w") as output:
            for _ in range(MAX_SAMPLES):
                began = time.monotonic()
                sample: dict[str, Any] = {"wall": time.time()}
                sample["threads"] = {str(pid): _threads(pid) for pid in self.nodes}
                for name, pid in self.others.items():
                    sample[name] = _tree(pid) if pid is not None else 0
                sample["pressure"] = _pressure()
                sample["disk"] = _disk()
                sample["activity"] = self._activity()
                sample["redis_clients"] = self._redis_clients()
                sample["took"] = time.monotonic() - began
                output.write(json.dumps(sample) + "\n")
                if self.done.wait(max(0.0, PERIOD - (time.monotonic() - began))):
                    return


def enabled() -> Path | None:
    """The folder `BENCH_DIAGNOSE` names (created), or None."""
    folder = os.environ.get("BENCH_DIAGNOSE")
    if not folder:
        return None
    path = Path(folder)
    path.mkdir(parents=True, exist_ok=True)
    return path
