"""ops/prometheus and ops/grafana: promtool's checks and rule tests, and that every metric a
rule or a dashboard panel uses is one that running nodes export."""

from __future__ import annotations

import functools
import json
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
import trio
import yaml

from tests.polling import until
from tests.ports import free_port

REPO = Path(__file__).resolve().parents[2]
PROMETHEUS = REPO / "ops/prometheus"
DASHBOARDS = REPO / "ops/grafana/dashboards"
TOKEN = "scrape-me"
SYNTHESIZED = {"up"}
"""Series Prometheus makes itself for every target (not exported by the node)."""


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["promtool", *args], capture_output=True, text=True, check=False)


def test_promtool_accepts_the_scrape_config_and_its_rule_files() -> None:
    checked = _promtool("check", "config", str(PROMETHEUS / "prometheus.yml"))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 8 rules found" in checked.stdout + checked.stderr


def test_promtool_rule_unit_tests_pass() -> None:
    tests = sorted(str(path) for path in (PROMETHEUS / "tests").glob("*.yml"))
    assert tests
    checked = _promtool("test", "rules", *tests)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_every_required_alert_exists() -> None:
    alerts = {rule["alert"] for rule, _ in _rules()}
    assert alerts == {
        "ChorusNodeDown",
        "ChorusHighErrorRate",
        "ChorusDeliveryLatencyHigh",
        "ChorusStoreLatencyHigh",
        "ChorusBusDisconnected",
        "ChorusSlowConsumerCloses",
        "ChorusRateLimitStorm",
        "ChorusFileScanFailures",
    }


def _rules() -> list[tuple[dict[str, str], str]]:
    found = []
    for path in sorted((PROMETHEUS / "rules").glob("*.yml")):
        for group in yaml.safe_load(path.read_text())["groups"]:
            found += [(rule, f"{path.name}: {rule['alert']}") for rule in group["rules"]]
    return found


def _expressions() -> list[tuple[str, str]]:
    """(PromQL, where it is) of every alert rule and dashboard panel target."""
    found = [(rule["expr"], where) for rule, where in _rules()]
    for path in sorted(DASHBOARDS.glob("*.json")):
        for panel in json.loads(path.read_text())["panels"]:
            found += [(t["expr"], f"{path.name}: {panel['title']}") for t in panel["targets"]]
    return found


_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or"}
_KEYWORDS |= {"unless", "bool", "offset", "inf", "nan"}


def metric_names(expr: str) -> set[str]:
    """The metric names in a PromQL expression, parsed loosely.

    Label matchers, grouping label lists, strings and range durations are
    removed first; what is left that looks like an identifier and is not
    followed by `(` (a function) or a keyword is a metric name.
    """
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)
    expr = re.sub(r"\{[^}]*\}", " ", expr)
    expr = re.sub(r"\[[^\]]*\]", " ", expr)
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", expr)
    names = set()
    for match in re.finditer(r"(?<![\w.$])([a-zA-Z_:][\w:]*)\s*(\(?)", expr):
        name, call = match.groups()
        if not call and name.lower() not in _KEYWORDS:
            names.add(name)
    return names


def test_the_promql_parser_finds_metric_names_and_only_them() -> None:
    expr = (
        "histogram_quantile(0.99, sum by (instance, le) (rate(chorus_delivery_seconds_bucket"
        '{route="/x"}[5m]))) > 0.5 or up{job="chorus"} == 0 unless on (instance) foo_total'
    )
    assert metric_names(expr) == {"chorus_delivery_seconds_bucket", "up", "foo_total"}
    assert all(metric_names(expr) for expr, _ in _expressions())


def _families(exposition: str) -> dict[str, str]:
    """Metric family name -> type, from the `# TYPE` lines (present before any sample)."""
    return dict(re.findall(r"^# TYPE (\S+) (\S+)$", exposition, re.MULTILINE))


_SUFFIXES = {
    # prometheus_client writes a counter's family with its `_total` (`# TYPE x_total counter`).
    "counter": ("", "_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("_sum", "_count", "_created"),
}


def exported(name: str, families: dict[str, str]) -> bool:
    """Whether a series name is one of the families' samples (a counter `x` has `x_total`)."""
    if families.get(name) in ("gauge", "untyped"):
        return True
    return any(
        name == family + suffix
        for family, kind in families.items()
        for suffix in _SUFFIXES.get(kind, ())
    )


def _environ() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("CHORUS_")}


@asynccontextmanager
async def _serving(role: str, data_dir: Path) -> AsyncIterator[str]:
    """A real `chorus serve --role <role>` process; yields the URL of its /metrics."""
    http, gateway = free_port(), free_port()
    argv = [sys.executable, "-m", "chorus", "serve", "--role", role, "--data-dir", str(data_dir)]
    argv += ["--http-port", str(http), "--gateway-port", str(gateway), "--log-format", "json"]
    argv += ["--metrics-token", TOKEN]
    process = await trio.lowlevel.open_process(
        argv, env=_environ(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    port = gateway if role == "gateway" else http
    try:
        await until(functools.partial(_answers, process, port), timeout=30)
        yield f"http://127.0.0.1:{port}/metrics"
    finally:
        process.terminate()
        with trio.fail_after(30):
            await process.wait()


async def _answers(process: trio.Process, port: int) -> bool:
    assert process.returncode is None, f"the node exited with {process.returncode}"
    try:
        async with httpx.AsyncClient() as client:
            response = await client.get(f"http://127.0.0.1:{port}/healthz")
    except httpx.TransportError:
        return False
    return response.status_code == 200


async def _scrape(url: str) -> str:
    async with httpx.AsyncClient() as client:
        refused = await client.get(url)
        wrong = await client.get(url, headers={"Authorization": "Bearer nope"})
        response = await client.get(url, headers={"Authorization": f"Bearer {TOKEN}"})
    assert (refused.status_code, wrong.status_code) == (401, 401)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return response.text


async def test_every_metric_in_rules_and_dashboards_is_exported_by_running_nodes(
    tmp_path: Path,
) -> None:
    # A gateway-only node (metrics on the gateway port) and an API-only node, as deployed;
    # both require the metrics token, as the compose and Kubernetes settings may.
    async with (
        _serving("gateway", tmp_path / "gateway") as gateway,
        _serving("api", tmp_path / "api") as api,
    ):
        families = _families(await _scrape(gateway)) | _families(await _scrape(api))
    assert "chorus_connections" in families
    missing = {
        f"{where}: {name}"
        for expr, where in _expressions()
        for name in metric_names(expr) - SYNTHESIZED
        if not exported(name, families)
    }
    assert missing == set()
    assert not exported("chorus_no_such_metric_total", families)


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("chorus_x_total", True),
        ("chorus_x_bucket", False),
        ("chorus_h_bucket", True),
        ("chorus_h", False),
        ("chorus_g", True),
    ],
)
def test_series_names_map_to_their_families(name: str, ok: bool) -> None:
    families = {"chorus_x_total": "counter", "chorus_h": "histogram", "chorus_g": "gauge"}
    assert exported(name, families) is ok
