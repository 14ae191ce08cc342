"""Issue 16: a real-process rehearsal of the deployment topology.

HAProxy (with ops/haproxy/local.cfg) in front of three `chorus serve`
processes on one private PostgreSQL and one Redis; the bundled swarm (the
code of `chorus bots`) connects through HAProxy only. While it sends, node 2
is drained with SIGTERM and node 1 is killed with SIGKILL. The swarm must
report nothing lost, duplicated or reordered and every bot back; the drained
node must have sent its clients away with 4007 and exited within its
`shutdown_grace`; Prometheus (ops/prometheus/local.yml) scrapes the nodes and
its node-down alert must fire for the killed node.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import trio

from chorus.bots import SwarmOptions, failures, provision_node, run_swarm
from chorus.config import Settings
from tests.cluster.nodes import NodeProcess, running_nodes
from tests.cluster.test_failover import at_swarm_time
from tests.pgserver import PgServer
from tests.polling import until
from tests.ports import free_port
from tests.redisserver import RedisServer

OPS = Path(__file__).parents[2] / "ops"
HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
GRACE = 5.0
ENV = {"CHORUS_SHUTDOWN_GRACE": str(GRACE), "CHORUS_RESUME_LIMIT": "50"}
RAMP_UP = 2.0
DRAIN_AT = RAMP_UP + 3.0
"""Seconds after the swarm starts (its clock) when node 2 gets SIGTERM..."""
KILL_AT = RAMP_UP + 6.0
"""...and when node 1 gets SIGKILL."""
BOTS = 30


@asynccontextmanager
async def process(argv: list[str], log: Path, env: dict[str, str]) -> AsyncIterator[trio.Process]:
    """A helper server of the test (HAProxy, Prometheus), killed by its own PID after."""
    with log.open("wb") as output:
        proc = await trio.lowlevel.open_process(
            argv, stdout=output, stderr=subprocess.STDOUT, env={**os.environ, **env}
        )
    try:
        yield proc
    finally:
        with trio.CancelScope(shield=True):
            proc.kill()
            await proc.wait()


async def answers(url: str) -> bool:
    try:
        async with httpx.AsyncClient(timeout=1) as client:
            return (await client.get(url)).status_code == 200
    except httpx.HTTPError:
        return False


async def firing(prometheus: str, instance: str) -> bool:
    """Whether Prometheus' node-down alert fires for `instance`."""
    async with httpx.AsyncClient(timeout=2) as client:
        alerts = (await client.get(f"{prometheus}/api/v1/alerts")).json()["data"]["alerts"]
    return any(
        alert["labels"].get("alertname") == "ChorusNodeDown"
        and alert["labels"].get("instance") == instance
        and alert["state"] == "firing"
        for alert in alerts
    )


async def test_haproxy_three_nodes_a_drain_and_a_kill_lose_nothing_and_alert(
    tmp_path: Path, pg_server: PgServer, redis: RedisServer
) -> None:
    _, database_url = await pg_server.new_database()
    async with running_nodes(
        tmp_path / "nodes", 3, database_url=database_url, redis_url=redis.url, env=ENV
    ) as nodes:
        lb_gateway, lb_api, prom_port = free_port(), free_port(), free_port()
        lb_env = {"CHORUS_LB_GATEWAY": f"127.0.0.1:{lb_gateway}"}
        lb_env["CHORUS_LB_API"] = f"127.0.0.1:{lb_api}"
        for n, node in enumerate(nodes, start=1):
            lb_env[f"CHORUS_NODE{n}_GATEWAY"] = f"127.0.0.1:{node.gateway_port}"
            lb_env[f"CHORUS_NODE{n}_HTTP"] = f"127.0.0.1:{node.http_port}"
        prom_dir = tmp_path / "prometheus"
        prom_dir.mkdir()
        for name in ("local.yml", "local-rules.yml"):
            shutil.copy(OPS / "prometheus" / name, prom_dir / name)
        targets = [f"127.0.0.1:{node.http_port}" for node in nodes]
        (prom_dir / "local-targets.json").write_text(json.dumps([{"targets": targets}]))
        prometheus = f"http://127.0.0.1:{prom_port}"
        haproxy_argv = [HAPROXY, "-db", "-f", str(OPS / "haproxy" / "local.cfg")]
        prometheus_argv = [
            PROMETHEUS,
            f"--config.file={prom_dir / 'local.yml'}",
            f"--storage.tsdb.path={prom_dir / 'data'}",
            f"--web.listen-address=127.0.0.1:{prom_port}",
        ]
        async with (
            process(haproxy_argv, tmp_path / "haproxy.log", lb_env),
            process(prometheus_argv, tmp_path / "prometheus.log", {}),
        ):
            await until(lambda: answers(f"http://127.0.0.1:{lb_gateway}/readyz"), timeout=20)
            await until(lambda: answers(f"{prometheus}/-/ready"), timeout=30)
            report, drain_seconds = await rehearse(nodes, database_url, lb_gateway, lb_api)
            victim, drained = nodes[0], nodes[1]
            # The alert may need a scrape or two after the kill: poll, bounded.
            await until(lambda: firing(prometheus, f"127.0.0.1:{victim.http_port}"), timeout=30)

    summary = {key: report[key] for key in ("connections", "messages", "correctness", "errors")}
    print("rehearsal:", summary, report["recovery"])  # shown on failure
    assert victim.process.returncode == -9
    assert drained.process.returncode == 0, drained.log()[-3000:]
    assert drain_seconds < GRACE + 1  # exited within its shutdown_grace (and a process exit)
    assert failures(report) == []
    assert report["correctness"] == {"lost": 0, "duplicated": 0, "reordered": 0}
    assert report["messages"]["acked"] == report["messages"]["sent"] > 0
    assert report["connections"]["held"] == BOTS
    # The drained node sent its bots elsewhere with 4007 (each honoured the delay hint).
    assert report["errors"].get("close_4007", 0) >= 1, report["errors"]
    recovery = report["recovery"]
    assert recovery["outages"] >= 2, recovery
    assert recovery["not_back"] == 0


async def rehearse(
    nodes: list[NodeProcess], database_url: str, lb_gateway: int, lb_api: int
) -> tuple[dict[str, Any], float]:
    """Run the swarm through HAProxy; drain node 2 and kill node 1 meanwhile."""
    settings = Settings(data_dir=nodes[0].data_dir, database_url=database_url)
    provisioned = await provision_node(settings, bots=BOTS, rooms=3, room_size=10, access_ttl=600)
    options = SwarmOptions(
        gateways=(f"ws://127.0.0.1:{lb_gateway}/",),
        apis=(f"http://127.0.0.1:{lb_api}",),
        rate=30.0,
        size=64,
        duration=10.0,
        ramp_up=RAMP_UP,
        passive=0.5,
        workers=0,
        drain=15.0,
    )
    clock = {"t": 0.0}

    def progress(state: dict[str, Any]) -> None:
        clock["t"] = max(clock["t"], state["t"])

    report: dict[str, Any] = {}
    drain_seconds = 0.0

    async def swarm() -> None:
        report.update(await trio.to_thread.run_sync(run_swarm, options, provisioned, progress))

    async def drain(node: NodeProcess) -> None:
        nonlocal drain_seconds
        await at_swarm_time(clock, DRAIN_AT)
        started = trio.current_time()
        node.process.terminate()
        with trio.fail_after(GRACE + 10):
            await node.process.wait()
        drain_seconds = trio.current_time() - started

    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(swarm)
            nursery.start_soon(drain, nodes[1])
            await at_swarm_time(clock, KILL_AT)
            await nodes[0].kill9()
    return report, drain_seconds
