"""Named benchmark scenarios: a fresh `chorus serve` each, the bot swarm against it, one table.

Usage: .venv/bin/python bench/run.py [SCENARIO ...] [--quick] [--results-dir DIR] [--list]

With no SCENARIO every one runs, in the order of `SCENARIOS`. Each scenario
starts its own default `chorus serve` (SQLite in a temporary data directory,
free ports) pinned to one core, runs `chorus bots` pinned to another (when
the machine has two or more), reads the swarm's JSON, stops the server and
writes `<results-dir>/<date>-<scenario>.json`. `--quick` makes every scenario
tiny (a few seconds: for CI) and adds `-quick` to the file names. The exit
status is 1 when a scenario failed (a server that did not start, or a swarm
run that `chorus bots` itself fails: see `chorus.bots.failures`) and 0
otherwise. For the multi-node scenarios, `BENCH_DIAGNOSE=DIR` samples the
nodes, PostgreSQL and Redis every 0.2 s into DIR (bench/cluster_diagnostics.py)
and `BENCH_PG_SETTINGS="name=value ..."` adds PostgreSQL settings (e.g.
`log_lock_waits=on`); neither changes the load. See docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import functools
import json
import os
import platform
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import attrs
from rich.console import Console
from rich.table import Table

from chorus.bots import failures, raise_open_files_limit

sys.path.insert(0, str(Path(__file__).resolve().parent))
import cluster_diagnostics

BENCH = Path(__file__).resolve().parent
SERVER_START_SECONDS = 30.0
SERVER_STOP_SECONDS = 20.0
IDLE_CONNECTIONS = 20_000
LIFTED_CAPS = ["--max-connections", "1000000", "--max-connections-per-address", "1000000"]
"""Every bot connects from 127.0.0.1: a node's per-address and total caps are lifted."""


@attrs.frozen
class Scenario:
    """One named workload: `chorus bots` arguments for the full and the quick run."""

    name: str
    about: str
    full: tuple[str, ...]
    quick: tuple[str, ...]
    kind: str = "swarm"
    """`swarm`, `idle` (connections and RSS per connection), `store` (store_append.py),
    `cluster` (`nodes` nodes on PostgreSQL, with Redis unless `redis` is false) or
    `failover` (three nodes on PostgreSQL and Redis, one killed, one drained) or
    `upload` (files_upload.py against one node)."""
    faults: tuple[Faults, Faults] | None = None
    """For `failover`: when the faults happen, in the full and in the quick run."""
    nodes: int = 1
    """For `cluster`: how many `chorus serve` share the database (and Redis)."""
    redis: bool = True
    """For `cluster`: whether the nodes use a Redis bus (more than one node needs it)."""
    pinned: bool = True
    """Whether the server(s) and the swarm are pinned to a core each (when there are two);
    unpinned, every process of the scenario shares all cores."""


@attrs.frozen
class Faults:
    """The failover scenario's faults, in seconds after the swarm's bots are all connected
    (its sending starts then): node 1 SIGKILLed at `kill_at` and restarted on its old
    ports `restart_after` later; node 2 sent SIGTERM at `drain_at` (drained, not restarted)."""

    kill_at: float
    restart_after: float
    drain_at: float


def _flags(**values: object) -> tuple[str, ...]:
    """`chorus bots` flags from keywords: room_size=10 -> ("--room-size", "10")."""
    return tuple(
        part for key, value in values.items() for part in (f"--{key.replace('_', '-')}", str(value))
    )


FULL = {"duration": 20, "ramp_up": 5, "size": 100, "workers": 1}
QUICK = {"duration": 1.5, "ramp_up": 0.5, "size": 64, "workers": 1, "drain": 3}


_CLUSTER_WORKLOAD = (
    _flags(bots=600, rooms=12, room_size=50, rate=600, passive=0, **FULL),
    _flags(bots=30, rooms=3, room_size=10, rate=15, passive=0, **QUICK),
)
"""Issue 15's scale-out workload (full, quick): the same on SQLite (`sqlite-1`) and on the
cluster scenarios, so CPU per delivery compares in one sitting."""


def _cluster(name: str, nodes: int, *, redis: bool = True, pinned: bool = True) -> Scenario:
    """Issue 15's scale-out workload: 600 bots in 12 rooms of 50, 600 sends/s (30,000
    deliveries/s), on `nodes` nodes sharing one PostgreSQL (and one Redis)."""
    where = "PostgreSQL + Redis" if redis else "PostgreSQL, no Redis"
    spread = ", bots spread over the gateways" if nodes > 1 else ""
    cores = "" if pinned else ", nothing pinned (nodes, databases and swarm share every core)"
    return Scenario(
        name,
        f"{nodes} node{'s' if nodes > 1 else ''} on {where}{spread}: 600 bots in 12 rooms of 50,"
        f" 600 sends/s (30,000 deliveries/s){cores}",
        *_CLUSTER_WORKLOAD,
        kind="cluster",
        nodes=nodes,
        redis=redis,
        pinned=pinned,
    )


def _fanout(size: int, rate: int, passive: float, name: str = "") -> Scenario:
    quick_size = min(size, 20)
    senders = "every member sends" if passive == 0 else f"{1 - passive:.0%} of them send"
    return Scenario(
        name or f"fanout-{size}",
        f"1,000 bots in rooms of {size}, {senders}, {rate:,} sends/s in total (open loop)",
        _flags(bots=1000, rooms=1000 // size, room_size=size, rate=rate, passive=passive, **FULL),
        _flags(bots=40, rooms=40 // quick_size, room_size=quick_size, rate=40, passive=passive)
        + _flags(**QUICK),
    )


SCENARIOS = {
    scenario.name: scenario
    for scenario in (
        _fanout(1, 1000, 0.0),
        _fanout(10, 2000, 0.0),
        _fanout(100, 1000, 0.5),
        _fanout(1000, 100, 0.5),
        # Issue 15 item 2: every member of a room of 100 sends (interleaved, the
        # default order), at 100,000 deliveries/s (the p50 target) and at 200,000
        # (the throughput target).
        _fanout(100, 1000, 0.0, "fanout-100-all"),
        _fanout(100, 2000, 0.0, "fanout-100-all-200k"),
        Scenario(
            "dm",
            "1,000 bots in 500 one-to-one rooms (rooms of 2), 1,000 sends/s",
            _flags(bots=1000, rooms=500, room_size=2, rate=1000, passive=0, **FULL),
            _flags(bots=40, rooms=20, room_size=2, rate=40, passive=0, **QUICK),
        ),
        # Issue 15 item 3's target: 10,000 stored messages/s in rooms of 2 with p99 < 50 ms.
        *(
            Scenario(
                f"dm-{rate // 1000}k",
                f"1,000 bots in 500 one-to-one rooms (rooms of 2), {rate:,} sends/s",
                _flags(bots=1000, rooms=500, room_size=2, rate=rate, passive=0, **FULL),
                _flags(bots=40, rooms=20, room_size=2, rate=80, passive=0, **QUICK),
            )
            for rate in (5000, 10000)
        ),
        Scenario(
            "presence",
            "1,000 bots in rooms of 100: 200 typing and 100 presence changes/s, 100 sends/s",
            _flags(bots=1000, rooms=10, room_size=100, rate=100, typing=200, presence=100, **FULL),
            _flags(bots=40, rooms=2, room_size=20, rate=20, typing=20, presence=20, **QUICK),
        ),
        Scenario(
            "reconnect-storm",
            "1,000 bots in rooms of 100, 500 sends/s; every bot drops and resumes at 10 s",
            _flags(bots=1000, rooms=10, room_size=100, rate=500, storm_at=10, drain=15, **FULL),
            _flags(bots=40, rooms=2, room_size=20, rate=40, storm_at=0.5, **QUICK),
        ),
        Scenario(
            "failover",
            "3 nodes on PostgreSQL + Redis, 600 bots in rooms of 50 over the 3 gateways, "
            "600 sends/s, 3 reconnects/s; node 1 SIGKILLed at 10 s and restarted 4 s later, "
            "node 2 drained (SIGTERM) at 20 s",
            _flags(
                bots=600,
                rooms=12,
                room_size=50,
                rate=600,
                reconnects=3,
                duration=30,
                ramp_up=5,
                size=100,
                workers=1,
                drain=20,
            ),
            _flags(bots=60, rooms=3, room_size=20, rate=30, reconnects=1, duration=8, ramp_up=1)
            + _flags(size=64, workers=1, drain=15),
            kind="failover",
            faults=(Faults(10, 4, 20), Faults(2, 2, 5)),
        ),
        Scenario(
            "sqlite-1",
            "1 node on the embedded SQLite (the default): the cluster scenarios' workload,"
            " 600 bots in 12 rooms of 50, 600 sends/s (30,000 deliveries/s)",
            _CLUSTER_WORKLOAD[0],
            _CLUSTER_WORKLOAD[1],
        ),
        _cluster("pg-1", 1, redis=False),
        _cluster("cluster-1", 1),
        _cluster("cluster-3", 3),
        # Issue 15 item 1 words the three nodes' target as sharing the machine's two
        # cores; `cluster-3` puts all three on the server core, this one pins nothing.
        _cluster("cluster-3-shared", 3, pinned=False),
        Scenario(
            "idle",
            f"{IDLE_CONNECTIONS:,} idle authenticated connections (no rooms)",
            # One room of one member is the least `chorus bots` provisions: bot 0 joins
            # it, every other bot only authenticates (hello) and then sends nothing but
            # heartbeats. Two workers hold half the sockets each: the swarm's own
            # open-file limit must not be what runs out before the server's.
            _flags(
                bots=IDLE_CONNECTIONS,
                rooms=1,
                room_size=1,
                rate=0,
                passive=1,
                workers=2,
                duration=15,
                ramp_up=IDLE_CONNECTIONS / 800,
                drain=1,
            ),
            _flags(
                bots=200, rooms=1, room_size=1, rate=0, passive=1, duration=1, ramp_up=1, drain=1
            ),
            kind="idle",
        ),
        Scenario(
            "upload",
            "upload MB/s and server peak RSS: a 100 MB file, 50 concurrent 1 MB images,"
            " a 500 MB file (median of 3 runs, a fresh node each)",
            ("--big", "100000000", "--images", "50", "--bigger", "500000000", "--repeat", "3"),
            ("--big", "5000000", "--images", "5", "--repeat", "1"),
            kind="upload",
        ),
        Scenario(
            "store",
            "messages stored per second in one busy room, batches of 1, 10 and 100",
            ("--seconds", "3", "--rooms", "1"),
            ("--seconds", "0.2", "--rooms", "1"),
            kind="store",
        ),
    )
}


def chorus_executable() -> str:
    """The `chorus` next to this interpreter (the venv's), else the one on PATH."""
    beside = Path(sys.executable).parent / "chorus"
    found = str(beside) if beside.exists() else shutil.which("chorus")
    if found is None:
        raise SystemExit("bench/run.py: no `chorus` command (run it with the venv's python)")
    return found


def core_pins() -> tuple[list[str], list[str]]:
    """`taskset` prefixes for the server and the swarm: two different cores, if there are."""
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < 2 or shutil.which("taskset") is None:
        return [], []
    return ["taskset", "-c", str(cores[0])], ["taskset", "-c", str(cores[1])]


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    memory_kib = next(
        int(line.split()[1])
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal:")
    )
    commit = subprocess.run(
        ["git", "-C", str(BENCH), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return {
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "memory_gib": round(memory_kib / 2**20, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "commit": commit or None,
    }


def rss_kib(pid: int) -> int | None:
    """The resident set size of `pid` in KiB (VmRSS in /proc/<pid>/status)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    return next(
        (int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")), None
    )


@attrs.frozen
class Server:
    """A running `chorus serve`."""

    pid: int
    gateway: str
    data_dir: Path
    log: Path
    command: str


@contextmanager
def running_server(
    work: Path, pin: list[str], chorus: str, extra: tuple[str, ...] = ()
) -> Iterator[Server]:
    """Start a default node on free ports; stop it with SIGINT (then SIGKILL) at the end.

    Its connection caps are lifted: every bot connects from 127.0.0.1, and the
    idle scenario holds 20,000 connections (the open-file headroom still applies).
    """
    data_dir = work / "data"
    log = work / "server.log"
    command = [*pin, chorus, "serve", "--data-dir", str(data_dir)]
    command += ["--http-port", "0", "--gateway-port", "0"]
    command += [*LIFTED_CAPS, *extra]
    with log.open("w") as output:
        process = subprocess.Popen(
            command, stdout=output, stderr=subprocess.STDOUT, cwd=work, start_new_session=True
        )
    try:
        gateway = _wait_for_gateway(process, log)
        yield Server(process.pid, gateway, data_dir, log, shlex.join(command))
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(SERVER_STOP_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_for_gateway(process: subprocess.Popen[bytes], log: Path) -> str:
    deadline = time.monotonic() + SERVER_START_SECONDS
    while time.monotonic() < deadline:
        for line in log.read_text(errors="replace").splitlines():
            if line.strip().startswith("gateway") and "ws://" in line:
                return line.split()[1]
        if process.poll() is not None:
            break
        time.sleep(0.1)
    tail = "\n".join(log.read_text(errors="replace").splitlines()[-20:])
    raise ScenarioFailed(f"the server did not start within {SERVER_START_SECONDS:g} s:\n{tail}")


class ScenarioFailed(Exception):
    """A scenario could not produce a result (the message says why)."""


def _option(args: tuple[str, ...], name: str) -> float:
    return float(args[args.index(name) + 1])


def run_swarm(
    args: tuple[str, ...],
    server: Server,
    work: Path,
    pin: list[str],
    *,
    env: dict[str, str] | None = None,
    gateway: bool = True,
) -> tuple[str, dict[str, Any]]:
    """Run `chorus bots` against `server` (its gateway unless `gateway` is false: then
    `args` name them), with `env` added to the environment; return its command line
    and its JSON report."""
    report_file = work / "swarm.json"
    command = [*pin, chorus_executable(), "bots", "--data-dir", str(server.data_dir)]
    if gateway:
        command += ["--gateway", server.gateway]
    command += ["--server-pid", str(server.pid)]
    command += ["--json-file", str(report_file), *args]
    # Provisioning (about 2 s per 1,000 bots on SQLite), the run itself, and slack.
    bots = _option(args, "--bots")
    duration = _option(args, "--ramp-up") + _option(args, "--duration")
    drain = _option(args, "--drain") if "--drain" in args else 5.0
    deadline = 60 + bots / 200 + duration + drain
    with (work / "swarm.log").open("w") as output:
        try:
            subprocess.run(
                command,
                stdout=output,
                stderr=subprocess.STDOUT,
                timeout=deadline,
                check=False,
                env=os.environ | (env or {}),
            )
        except subprocess.TimeoutExpired:
            raise ScenarioFailed(f"`chorus bots` did not finish within {deadline:.0f} s") from None
    if not report_file.exists():
        tail = "\n".join((work / "swarm.log").read_text(errors="replace").splitlines()[-20:])
        raise ScenarioFailed(f"`chorus bots` wrote no report:\n{tail}")
    report: dict[str, Any] = json.loads(report_file.read_text())
    return shlex.join(command), report


def swarm_summary(report: dict[str, Any]) -> dict[str, Any]:
    """The figures every swarm scenario reports (see docs/benchmarks.md)."""
    latency = report["latency_ms"]
    server = report["server"] or {}
    swarm = report["swarm"]
    return {
        "connections_held": report["connections"]["held"],
        "sent_per_s": report["messages"]["sent_per_s"],
        "deliveries_per_s": report["messages"]["deliveries_per_s"],
        "latency_ms": {key: latency[key] for key in ("p50", "p99", "p99_9", "max")},
        "server_cpu_us_per_delivery": server.get("cpu_us_per_delivery"),
        "server_window_cpu_share": server.get("window_cpu_share"),
        "server_rss_mib": server.get("rss_mib"),
        "swarm_cpu_share": swarm["cpu_share"],
        "swarm_cpu_us_per_delivery": swarm["cpu_us_per_delivery"],
        "swarm_max_send_lag_ms": swarm["max_send_lag_ms"],
        "correctness": report["correctness"],
        "errors": report["errors"],
    }


def run_scenario(
    scenario: Scenario, quick: bool, pins: tuple[list[str], list[str]]
) -> dict[str, Any]:
    """Run one scenario in a fresh temporary directory; return its result record."""
    args = scenario.quick if quick else scenario.full
    if not scenario.pinned:
        pins = ([], [])
    result: dict[str, Any] = {
        "scenario": scenario.name,
        "about": scenario.about,
        "quick": quick,
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "load_average_before": [round(load, 2) for load in os.getloadavg()],
        "pinned": bool(pins[0]),
        "ok": False,
        "failure": None,
    }
    with tempfile.TemporaryDirectory(prefix=f"chorus-bench-{scenario.name}-") as folder:
        work = Path(folder)
        try:
            if scenario.kind == "store":
                result |= run_store(args, pins[0])
            elif scenario.kind == "upload":
                result |= run_upload(args, work, pins)
            elif scenario.kind == "failover":
                assert scenario.faults is not None
                faults = scenario.faults[1] if quick else scenario.faults[0]
                result |= run_failover(args, faults, work, pins)
            elif scenario.kind == "cluster":
                result |= run_cluster(args, scenario.nodes, scenario.redis, work, pins)
            else:
                runner = run_idle if scenario.kind == "idle" else run_plain
                result |= runner(args, work, pins)
        except ScenarioFailed as exc:
            result["failure"] = str(exc)
    result["load_average_after"] = [round(load, 2) for load in os.getloadavg()]
    return result


def run_plain(
    args: tuple[str, ...], work: Path, pins: tuple[list[str], list[str]]
) -> dict[str, Any]:
    """A swarm scenario: fan-out, one-to-one rooms, presence churn, reconnect storm."""
    with running_server(work, pins[0], chorus_executable()) as server:
        command, report = run_swarm(args, server, work, pins[1])
    summary = swarm_summary(report)
    summary["signals"] = report["signals"]
    if report["storm"] is not None:
        summary["storm"] = report["storm"]
    return _outcome(server, command, summary, report, problems(report))


_SERIOUS = ('"level": "error"', '"level": "warning"', '"level": "critical"', "Traceback")


def problems(report: dict[str, Any]) -> list[str]:
    """Why a swarm run does not count as a result (empty: it does)."""
    found = failures(report)
    storm = report["storm"]
    if storm is not None and storm["resumed"] < storm["dropped"]:
        found.append(f"only {storm['resumed']:,} of {storm['dropped']:,} bots resumed")
    if found and report["errors"]:
        found.append("errors: " + ", ".join(f"{k}={v}" for k, v in report["errors"].items()))
    return found


def _outcome(
    server: Server,
    command: str,
    summary: dict[str, Any],
    report: dict[str, Any],
    failures: list[str],
) -> dict[str, Any]:
    """A scenario's record; a failed one keeps the end of the server's log."""
    outcome = {
        "server_command": server.command,
        "command": command,
        "summary": summary,
        "ok": not failures,
        "failure": "; ".join(failures) or None,
        "swarm": report,
    }
    if failures:
        lines = server.log.read_text(errors="replace").splitlines()
        serious = [line for line in lines if any(mark in line for mark in _SERIOUS)]
        outcome["server_log_tail"] = (serious or lines)[-30:]
    return outcome


def run_idle(
    args: tuple[str, ...], work: Path, pins: tuple[list[str], list[str]]
) -> dict[str, Any]:
    """Idle connections: how many one node holds, and its RSS per connection.

    This process raises its open-file limit before starting the server, which
    inherits it; each swarm worker raises its own. RSS per connection is
    (the highest RSS while the connections were held - the RSS before) / held.
    """
    wanted = int(_option(args, "--bots"))
    limit = raise_open_files_limit(wanted + 1024)
    with running_server(work, pins[0], chorus_executable()) as server:
        before = rss_kib(server.pid)
        command, report = run_swarm(args, server, work, pins[1])
    held = report["connections"]["held"]
    timeline = (report["server"] or {}).get("timeline") or []
    peak_mib = max((row["rss_mib"] for row in timeline), default=None)
    per_connection = (
        round((peak_mib * 1024 - before) / held, 2)
        if held and before is not None and peak_mib is not None
        else None
    )
    log = server.log.read_text(errors="replace")
    # Connection limits hit (logged once per episode) or accept() failing otherwise.
    accept_failures = log.count("admission.limit_reached") + log.count("admission.accept_failed")
    failures = problems(report)
    if failures:
        failures.append(
            f"server connection limits hit or accept failures: {accept_failures},"
            f" open-file limit {limit}"
        )
    summary = swarm_summary(report) | {
        "connections_wanted": wanted,
        "open_files_limit": limit,
        "server_rss_before_mib": round(before / 1024, 1) if before is not None else None,
        "server_rss_held_mib": peak_mib,
        "server_rss_per_connection_kib": per_connection,
        "connect_rate_per_s": report["connections"]["connect_rate_per_s"],
        "server_accept_failures": accept_failures,
    }
    return _outcome(server, command, summary, report, failures)


@attrs.frozen
class Backends:
    """The shared PostgreSQL (and Redis) of a multi-node scenario."""

    env: dict[str, str]
    """`CHORUS_DATABASE_URL` (and `CHORUS_REDIS_URL`) for the nodes and the swarm."""
    postgres_pid: int | None
    """The postmaster: its CPU time and its backends' is PostgreSQL's."""
    redis_pid: int | None
    redis_port: int | None = None
    psql: tuple[str, ...] = ()
    """A `psql` command line on the `chorus` database (for `bench/cluster_diagnostics.py`)."""


@contextmanager
def postgres_and_redis(work: Path, *, redis: bool = True) -> Iterator[Backends]:
    """A private PostgreSQL and (unless `redis` is false) Redis on free loopback ports, as the
    tests start them, with the `chorus` database migrated; both stopped and removed after."""
    sys.path.insert(0, str(BENCH.parent))  # the repository: tests/ holds the helpers
    from tests.pgserver import PgServer
    from tests.ports import free_port

    redis_server = shutil.which("redis-server")
    if redis and redis_server is None:
        raise ScenarioFailed("this scenario needs redis-server (Debian package redis-server)")
    try:
        # Diagnostics only (bench/cluster_diagnostics.py): e.g. "log_lock_waits=on".
        pg = PgServer(durable=True, settings=tuple(os.environ.get("BENCH_PG_SETTINGS", "").split()))
        pg.init()
        pg.start()
    except RuntimeError as exc:
        raise ScenarioFailed(f"this scenario needs PostgreSQL: {exc}") from None
    process = None
    if redis and redis_server is not None:
        redis_port = free_port()
        argv = [redis_server, "--port", str(redis_port), "--bind", "127.0.0.1", "--save", ""]
        argv += ["--appendonly", "no", "--dir", str(work)]
        process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        pg.psql("CREATE DATABASE chorus")
        env = {"CHORUS_DATABASE_URL": pg.database_url("chorus")}
        if process is not None:
            env["CHORUS_REDIS_URL"] = f"redis://127.0.0.1:{redis_port}/0"
        migrate = subprocess.run(
            [chorus_executable(), "migrate", "--data-dir", str(work / "migrate")],
            env=os.environ | env,
            capture_output=True,
            text=True,
            check=False,
        )
        if migrate.returncode != 0:
            raise ScenarioFailed(f"chorus migrate failed:\n{migrate.stderr[-2000:]}")
        postmaster = pg.data_dir / "postmaster.pid"
        postgres_pid = int(postmaster.read_text().split()[0]) if postmaster.exists() else None
        psql = (str(pg.bin_dir / "psql"), pg.database_url("chorus"))
        redis_pid = process.pid if process is not None else None
        yield Backends(
            env, postgres_pid, redis_pid, redis_port if process is not None else None, psql
        )
    finally:
        if process is not None:
            process.terminate()
            process.wait()
        pg.stop()
        if (diagnose := cluster_diagnostics.enabled()) is not None and pg.log_file.exists():
            shutil.copy(pg.log_file, diagnose / "postgres.log")
        pg.remove()


def tree_cpu_seconds(pid: int | None) -> float | None:
    """CPU seconds of `pid`, its reaped children and its live children (Linux /proc)."""
    if pid is None:
        return None
    ticks = os.sysconf("SC_CLK_TCK")

    def spent(process: int, *, reaped: bool) -> int:
        try:
            fields = Path(f"/proc/{process}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0
        return sum(int(fields[i]) for i in ((11, 12, 13, 14) if reaped else (11, 12)))

    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return None
    total = spent(pid, reaped=True) + sum(spent(int(c), reaped=False) for c in children)
    return total / ticks


@attrs.define
class ClusterNode:
    """One `chorus serve` of a multi-node scenario, on fixed ports (kept over a restart)."""

    data_dir: Path
    http_port: int
    gateway_port: int
    env: dict[str, str]
    pin: list[str]
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def log(self) -> Path:
        """The output of the latest start (one file per start)."""
        return self.data_dir / f"server-{self.starts}.log"

    @property
    def command(self) -> list[str]:
        ports = ["--http-port", str(self.http_port), "--gateway-port", str(self.gateway_port)]
        serve = [chorus_executable(), "serve", "--data-dir", str(self.data_dir), *ports]
        return [*self.pin, *serve, *LIFTED_CAPS]

    def start(self) -> None:
        self.starts += 1
        with self.log.open("w") as output:
            self.process = subprocess.Popen(
                self.command,
                stdout=output,
                stderr=subprocess.STDOUT,
                env=os.environ | self.env,
                start_new_session=True,
            )
        _wait_for_gateway(self.process, self.log)

    def signal(self, number: int) -> None:
        assert self.process is not None
        self.process.send_signal(number)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(SERVER_STOP_SECONDS)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def established(ports: set[int]) -> int:
    """Established TCP connections whose local port is one of `ports` (Linux /proc)."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] == "01" and int(fields[1].rsplit(":", 1)[1], 16) in ports:
                count += 1
    return count


def inject_faults(nodes: list[ClusterNode], bots: int, faults: Faults) -> dict[str, Any]:
    """In a thread: wait until the swarm's bots are connected, then kill, restart, drain.

    Returns the moments (seconds after the bots were all connected) it acted at.
    """
    ports = {node.gateway_port for node in nodes}
    deadline = time.monotonic() + 120
    while established(ports) < bots and time.monotonic() < deadline:
        time.sleep(0.05)
    begin = time.monotonic()
    victim, drained = nodes[1], nodes[2]
    moments: dict[str, Any] = {"connected": established(ports) >= bots}
    time.sleep(faults.kill_at)
    victim.signal(signal.SIGKILL)
    assert victim.process is not None
    victim.process.wait()
    moments["killed_at_s"] = round(time.monotonic() - begin, 2)
    time.sleep(max(0.0, begin + faults.kill_at + faults.restart_after - time.monotonic()))
    victim.start()
    moments["restarted_at_s"] = round(time.monotonic() - begin, 2)
    time.sleep(max(0.0, begin + faults.drain_at - time.monotonic()))
    drained.signal(signal.SIGTERM)
    moments["drain_started_at_s"] = round(time.monotonic() - begin, 2)
    assert drained.process is not None
    drained.process.wait(SERVER_STOP_SECONDS + 30)
    moments["drained_at_s"] = round(time.monotonic() - begin, 2)
    moments["drained_exit_status"] = drained.process.returncode
    return moments


@contextmanager
def running_cluster(
    work: Path, count: int, backends: Backends, pin: list[str]
) -> Iterator[list[ClusterNode]]:
    """`count` nodes on `backends`, each on its own free ports, started in turn; all
    stopped (SIGINT, then SIGKILL) at the end."""
    sys.path.insert(0, str(BENCH.parent))
    from tests.ports import free_port

    nodes = []
    for n in range(count):
        (work / f"node{n}").mkdir(exist_ok=True)
        env = backends.env
        if cluster_diagnostics.enabled() is not None:  # name each node's connections
            env = env | {
                "CHORUS_DATABASE_URL": f"{env['CHORUS_DATABASE_URL']}?application_name=node{n}"
            }
        nodes.append(ClusterNode(work / f"node{n}", free_port(), free_port(), env, pin))
    try:
        for node in nodes:
            node.start()
        yield nodes
    finally:
        for node in nodes:
            node.stop()


def first_node(nodes: list[ClusterNode]) -> Server:
    """The first node as a `Server`: the swarm provisions through its data directory and
    samples its CPU."""
    node = nodes[0]
    assert node.process is not None
    gateway = f"ws://127.0.0.1:{node.gateway_port}/"
    return Server(node.process.pid, gateway, node.data_dir, node.log, shlex.join(node.command))


def spread_over(nodes: list[ClusterNode]) -> tuple[str, ...]:
    """`chorus bots` flags that spread the bots over every node's gateway and HTTP API."""
    flags: tuple[str, ...] = ()
    for node in nodes:
        flags += ("--gateway", f"ws://127.0.0.1:{node.gateway_port}/")
        flags += ("--api", f"http://127.0.0.1:{node.http_port}")
    return flags


def run_cluster(
    args: tuple[str, ...], count: int, redis: bool, work: Path, pins: tuple[list[str], list[str]]
) -> dict[str, Any]:
    """`count` nodes on one PostgreSQL (and one Redis) under the swarm, bots spread over them.

    The swarm samples the first node's CPU over the sending window
    (`server_cpu_us_per_delivery`); the runner adds the CPU seconds every node,
    PostgreSQL and Redis spent during the whole swarm run, and scales the
    first node's figure by all nodes' CPU over its own
    (`cluster_cpu_us_per_delivery`: the nodes' CPU per delivery, the basis of
    issue 15's "cross-node overhead").
    """
    with (
        postgres_and_redis(work, redis=redis) as backends,
        running_cluster(work, count, backends, pins[0]) as nodes,
    ):
        server = first_node(nodes)
        pids = [node.process.pid for node in nodes if node.process is not None]
        others = (backends.postgres_pid, backends.redis_pid)
        before = [tree_cpu_seconds(pid) or 0.0 for pid in (*pids, *others)]
        with contextlib.ExitStack() as stack:
            if (diagnose := cluster_diagnostics.enabled()) is not None:
                stack.enter_context(
                    cluster_diagnostics.Sampler(
                        diagnose,
                        pids,
                        {"postgres": backends.postgres_pid, "redis": backends.redis_pid},
                        list(backends.psql),
                        backends.redis_port,
                    )
                )
            command, report = run_swarm(
                (*spread_over(nodes), *args), server, work, pins[1], env=backends.env, gateway=False
            )
        after = [tree_cpu_seconds(pid) or 0.0 for pid in (*pids, *others)]
    spent = [round(b - a, 2) for a, b in zip(before, after, strict=True)]
    nodes_cpu, (postgres_cpu, redis_cpu) = spent[:count], spent[count:]
    summary = swarm_summary(report)
    first = summary["server_cpu_us_per_delivery"]
    summary |= {
        "nodes": count,
        "redis": redis,
        "nodes_cpu_seconds": nodes_cpu,
        "postgres_cpu_seconds": postgres_cpu,
        "redis_cpu_seconds": redis_cpu if redis else None,
        "cluster_cpu_us_per_delivery": round(first * sum(nodes_cpu) / nodes_cpu[0], 3)
        if first is not None and nodes_cpu[0] > 0
        else None,
    }
    return _outcome(server, command, summary, report, problems(report))


def run_failover(
    args: tuple[str, ...], faults: Faults, work: Path, pins: tuple[list[str], list[str]]
) -> dict[str, Any]:
    """Three nodes on one PostgreSQL and Redis under the swarm; one killed, one drained.

    The bots are spread over the three gateways (and their HTTP APIs, for
    catch-ups after `too_far`). Faults are timed from the moment every bot is
    connected (`established` connections on the gateway ports).
    """
    with (
        postgres_and_redis(work) as backends,
        running_cluster(work, 3, backends, pins[0]) as nodes,
    ):
        server = first_node(nodes)
        moments: dict[str, Any] = {}
        bots = int(_option(args, "--bots"))
        injector = threading.Thread(
            target=lambda: moments.update(inject_faults(nodes, bots, faults)), daemon=True
        )
        injector.start()
        command, report = run_swarm(
            (*spread_over(nodes), *args), server, work, pins[1], env=backends.env, gateway=False
        )
        injector.join(SERVER_STOP_SECONDS + 30)
    summary = swarm_summary(report) | {
        "faults": attrs.asdict(faults) | moments,
        "recovery": report["recovery"],
        "catch_up": report["catch_up"],
    }
    found = problems(report)
    recovery = report["recovery"]
    if recovery["not_back"]:
        found.append(f"{recovery['not_back']} bots were not back after losing their connection")
    if "killed_at_s" not in moments or moments.get("drained_exit_status") is None:
        found.append(f"the faults were not all injected: {moments}")
    return _outcome(server, command, summary, report, found)


UPLOAD_SERVER_FLAGS = (
    # 600 MB files, 10 GB per user, 64 uploads at once: the limits stay out of the way.
    *("--files-max-bytes", "600000000", "--files-quota-bytes", "10000000000"),
    *("--files-concurrent-uploads", "64"),
)


def run_upload(
    args: tuple[str, ...], work: Path, pins: tuple[list[str], list[str]]
) -> dict[str, Any]:
    """Upload throughput and server RSS, `--repeat` times on a fresh node each; medians."""
    import trio
    from files_upload import measure

    big, images = int(_option(args, "--big")), int(_option(args, "--images"))
    bigger = int(_option(args, "--bigger")) if "--bigger" in args else None
    if pins[1]:  # this process is the client: keep it off the server's core
        os.sched_setaffinity(0, {int(pins[1][-1])})
    runs, failures = [], []
    for number in range(int(_option(args, "--repeat"))):
        folder = work / f"run-{number}"
        folder.mkdir()
        with running_server(folder, pins[0], chorus_executable(), UPLOAD_SERVER_FLAGS) as server:
            base = _http_url(server.log)
            runs.append(
                trio.run(
                    functools.partial(
                        measure,
                        base,
                        server.pid,
                        big=big,
                        images=images,
                        image_size=1_000_000,
                        bigger=bigger,
                    )
                )
            )
        log = server.log.read_text(errors="replace").splitlines()
        # The warning that files are not scanned is expected: the default node has no clamd.
        failures += [
            line
            for line in log
            if any(mark in line for mark in _SERIOUS) and "node.files_not_scanned" not in line
        ]
    median: dict[str, Any] = {}
    for index, first in enumerate(runs[0]["phases"]):
        rows = [run["phases"][index] for run in runs]
        median[first["phase"]] = {
            "bytes": first["bytes"],
            "mb_per_s": statistics.median(row["mb_per_s"] for row in rows),
            "server_peak_rss_mib": statistics.median(row["server_peak_rss_mib"] for row in rows),
        }
    return {
        "ok": not failures,
        "failure": "\n".join(failures[:5]) or None,
        "command": f"{server.command} ; bench/files_upload.py {shlex.join(args)}",
        "summary": {
            "median": median,
            "server_idle_rss_mib": statistics.median(r["server_idle_rss_mib"] for r in runs),
            "server_vmhwm_mib": statistics.median(r["server_vmhwm_mib"] for r in runs),
        },
        "runs": runs,
    }


def _http_url(log: Path) -> str:
    """The node's HTTP address from its start-up banner (`HTTP API   http://...`)."""
    for line in log.read_text(errors="replace").splitlines():
        if line.strip().startswith("HTTP API"):
            return line.split()[2].removesuffix("/api/v1")
    raise ScenarioFailed("the server printed no HTTP API address")


def run_store(args: tuple[str, ...], pin: list[str]) -> dict[str, Any]:
    """`bench/store_append.py`: the store's own append rate, pinned like the server."""
    command = [*pin, sys.executable, str(BENCH / "store_append.py"), *args, "--json"]
    seconds = _option(args, "--seconds")
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=60 + 10 * seconds, check=False
        )
    except subprocess.TimeoutExpired:
        raise ScenarioFailed("store_append.py did not finish in time") from None
    if done.returncode != 0:
        raise ScenarioFailed(f"store_append.py failed:\n{done.stderr[-2000:]}")
    measured: dict[str, Any] = json.loads(done.stdout)
    return {"command": shlex.join(command), "summary": measured, "ok": True}


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f}"


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def _notes(result: dict[str, Any]) -> str:
    summary = result.get("summary") or {}
    if result["failure"]:
        return f"[red]{result['failure'].splitlines()[0]}[/]"
    if result["scenario"] == "upload":
        return "; ".join(
            f"{name}: {row['mb_per_s']} MB/s, peak RSS {row['server_peak_rss_mib']} MiB"
            for name, row in summary["median"].items()
        )
    if result["scenario"] == "store":
        rates = summary["messages_per_s"]
        return "stored/s by batch: " + ", ".join(f"{k}: {v:,.0f}" for k, v in rates.items())
    notes = []
    if "server_rss_per_connection_kib" in summary:
        notes.append(
            f"held {summary['connections_held']:,}/{summary['connections_wanted']:,}, "
            f"{summary['server_rss_per_connection_kib']} KiB/conn, "
            f"{summary['connect_rate_per_s']:,.0f} connects/s"
        )
    if "nodes_cpu_seconds" in summary:
        notes.append(
            f"CPU s: nodes {summary['nodes_cpu_seconds']}, PostgreSQL "
            f"{summary['postgres_cpu_seconds']}, Redis {summary['redis_cpu_seconds'] or '-'}; "
            f"nodes µs/deliv. {_ms(summary['cluster_cpu_us_per_delivery'])}"
        )
    if "storm" in summary:
        storm = summary["storm"]
        notes.append(
            f"storm: {storm['resumed']}/{storm['dropped']} resumed, "
            f"99 % in {storm['seconds_to_99_percent']} s"
        )
    if "recovery" in summary:
        recovery, caught = summary["recovery"], summary["catch_up"]
        notes.append(
            f"{recovery['outages']} connections lost: 99 % back in "
            f"{recovery['seconds_to_99_percent']} s, all in {recovery['seconds_to_all']} s; "
            f"{caught['too_far']} too_far, {caught['messages']} messages caught up"
        )
    signals = summary.get("signals") or {}
    if signals.get("typing_sent") or signals.get("presence_sent"):
        notes.append(
            f"typing {signals['typing_received_per_s']:,.0f}/s, "
            f"presence {signals['presence_received_per_s']:,.0f}/s received"
        )
    errors = summary.get("errors") or {}
    if errors:
        notes.append("errors: " + ", ".join(f"{k}={v}" for k, v in errors.items()))
    return "; ".join(notes)


def summary_table(results: list[dict[str, Any]]) -> Table:
    """One row per scenario."""
    table = Table(title="chorus bench")
    for column in (
        "scenario",
        "deliv./s",
        "p50 ms",
        "p99 ms",
        "p99.9 ms",
        "max ms",
        "server µs/deliv.",
        "server CPU",
        "swarm CPU",
        "lost/dup/reord",
    ):
        table.add_column(
            column, justify="left" if column == "scenario" else "right", min_width=len(column)
        )
    for result in results:
        summary = result.get("summary") or {}
        latency = summary.get("latency_ms") or {}
        checks = summary.get("correctness")
        table.add_row(
            ("" if result["ok"] else "[red]✗ [/]") + result["scenario"],
            _ms(summary.get("deliveries_per_s")),
            _ms(latency.get("p50")),
            _ms(latency.get("p99")),
            _ms(latency.get("p99_9")),
            _ms(latency.get("max")),
            _ms(summary.get("server_cpu_us_per_delivery")),
            _share(summary.get("server_window_cpu_share")),
            _share(summary.get("swarm_cpu_share")),
            "-" if checks is None else "/".join(str(checks[k]) for k in checks),
        )
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("scenarios", nargs="*", metavar="SCENARIO", help="default: all")
    parser.add_argument("--quick", action="store_true", help="tiny runs (seconds), for CI")
    parser.add_argument(
        "--results-dir", type=Path, default=BENCH / "results", help="[bench/results]"
    )
    parser.add_argument("--list", action="store_true", help="list the scenarios and exit")
    args = parser.parse_args(argv)
    console = Console(width=max(shutil.get_terminal_size().columns, 120))
    if args.list:
        for scenario in SCENARIOS.values():
            console.print(f"{scenario.name:<16} {scenario.about}")
        return 0
    unknown = [name for name in args.scenarios if name not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario(s) {', '.join(unknown)}; --list shows them")
    names = args.scenarios or list(SCENARIOS)
    pins = core_pins()
    args.results_dir.mkdir(parents=True, exist_ok=True)
    results = []
    for name in names:
        console.print(f"[bold]{name}[/]: {SCENARIOS[name].about}{' (quick)' if args.quick else ''}")
        result = run_scenario(SCENARIOS[name], args.quick, pins)
        day = result["date"][:10]
        path = args.results_dir / f"{day}-{name}{'-quick' if args.quick else ''}.json"
        path.write_text(json.dumps(result, indent=2) + "\n")
        console.print(f"  {'ok' if result['ok'] else 'FAILED'}: {path}")
        results.append(result)
    console.print(summary_table(results))
    for result in results:
        console.print(f"[bold]{result['scenario']}[/]: {_notes(result) or '-'}")
    return 0 if all(result["ok"] for result in results) else 1


if __name__ == "__main__":
    sys.exit(main())
