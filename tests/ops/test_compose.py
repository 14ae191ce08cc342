"""ops/compose: the Compose Specification's schema, then what the deployment relies on."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import jsonschema_rs
import yaml

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "ops/compose/compose.yaml"
HAPROXY = REPO / "ops/haproxy/haproxy.cfg"
PROMETHEUS = REPO / "ops/prometheus/prometheus.yml"
SCHEMA = Path(__file__).with_name("compose-spec.json")  # see compose-spec.README


def _compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return document


def _nodes(role: str) -> dict[str, dict[str, Any]]:
    """The Chorus services that run `serve --role <role>`."""
    return {
        name: service
        for name, service in _compose()["services"].items()
        if service.get("command") == ["serve", "--role", role]
    }


def test_the_compose_file_follows_the_compose_specification() -> None:
    validator = jsonschema_rs.validator_for(json.loads(SCHEMA.read_text()))
    errors = [f"{list(e.instance_path)}: {e.message}" for e in validator.iter_errors(_compose())]
    assert errors == []


def test_the_schema_catches_a_misspelt_key() -> None:
    # The check above can fail: a typo in a service is refused.
    document = _compose()
    document["services"]["api-1"]["restrat"] = "always"
    validator = jsonschema_rs.validator_for(json.loads(SCHEMA.read_text()))
    assert not validator.is_valid(document)


def test_every_chorus_service_runs_the_same_image() -> None:
    services = _compose()["services"]
    chorus = {name: s for name, s in services.items() if s.get("image", "").startswith("chorus:")}
    assert set(chorus) >= {"migrate", *_nodes("gateway"), *_nodes("api")}
    assert len({s["image"] for s in chorus.values()}) == 1
    assert all(s["build"]["context"] == "../.." for s in chorus.values())


def test_there_are_two_or_more_nodes_of_each_role_and_they_start_after_migrate() -> None:
    services = _compose()["services"]
    assert services["migrate"]["command"] == ["migrate"]
    assert services["migrate"]["restart"] == "no"
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for role in ("gateway", "api"):
        nodes = _nodes(role)
        assert len(nodes) >= 2, role
        for name, node in nodes.items():
            assert node["depends_on"]["migrate"] == {
                "condition": "service_completed_successfully"
            }, name
            assert node["restart"] == "unless-stopped"
            assert node["environment"]["CHORUS_DATABASE_URL"].startswith("postgresql://")
            assert node["environment"]["CHORUS_REDIS_URL"].startswith("redis://")


def test_nodes_get_longer_than_their_shutdown_grace_to_stop() -> None:
    for name, node in {**_nodes("gateway"), **_nodes("api")}.items():
        grace = float(node["environment"]["CHORUS_SHUTDOWN_GRACE"])
        assert float(node["stop_grace_period"].removesuffix("s")) > grace, name


def test_the_backing_services_have_healthchecks() -> None:
    services = _compose()["services"]
    for name in ("postgres", "redis", "minio", "clamd", "haproxy", "prometheus", "grafana"):
        assert services[name]["healthcheck"]["test"], name


def _haproxy_servers(backend: str) -> list[str]:
    servers, current = [], None
    for line in HAPROXY.read_text().splitlines():
        words = line.split()
        if words[:1] == ["backend"]:
            current = words[1]
        elif words[:1] == ["server"] and current == backend:
            servers.append(words[2])
    return servers


def test_haproxy_balances_every_node_on_its_port_and_checks_readyz() -> None:
    assert sorted(_haproxy_servers("gateways")) == sorted(f"{n}:8081" for n in _nodes("gateway"))
    assert sorted(_haproxy_servers("api")) == sorted(f"{n}:8080" for n in _nodes("api"))
    text = HAPROXY.read_text()
    assert text.count("option httpchk GET /readyz") == 2
    assert re.search(r"use_backend gateways if websocket", text)
    assert re.search(r"timeout tunnel", text)  # upgraded WebSockets outlive `timeout client`
    proxies = _compose()["services"]["api-1"]["environment"]["CHORUS_TRUSTED_PROXIES"]
    assert _compose()["services"]["haproxy"]["networks"]["default"]["ipv4_address"] == proxies


def test_haproxy_accepts_the_configuration() -> None:
    # Service names do not resolve here: HAProxy warns and starts them disabled.
    checked = subprocess.run(
        ["haproxy", "-c", "-f", str(HAPROXY)], capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stderr


def test_prometheus_scrapes_every_node_where_it_serves_metrics() -> None:
    config = yaml.safe_load(PROMETHEUS.read_text())
    (job,) = [job for job in config["scrape_configs"] if job["job_name"] == "chorus"]
    targets = {target for group in job["static_configs"] for target in group["targets"]}
    nodes = {f"{n}:8081" for n in _nodes("gateway")} | {f"{n}:8080" for n in _nodes("api")}
    assert targets == nodes


def test_grafana_is_provisioned_with_the_datasource_and_the_dashboards() -> None:
    grafana = _compose()["services"]["grafana"]
    mounts = {volume.split(":")[1]: volume.split(":")[0] for volume in grafana["volumes"]}
    provisioning = (COMPOSE.parent / mounts["/etc/grafana/provisioning"]).resolve()
    datasources = yaml.safe_load((provisioning / "datasources/prometheus.yml").read_text())
    assert datasources["datasources"][0]["url"] == "http://prometheus:9090"
    providers = yaml.safe_load((provisioning / "dashboards/chorus.yml").read_text())
    path = providers["providers"][0]["options"]["path"]
    dashboards = (COMPOSE.parent / mounts[path]).resolve()
    assert list(dashboards.glob("*.json"))
