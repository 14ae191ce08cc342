"""ops/k8s: every manifest against the Kubernetes schemas, then what the rollout relies on.

No cluster here: `kubectl kustomize` (kustomize built into kubectl) builds the
production overlay, and kubernetes-validate checks each object against the
OpenAPI schemas it bundles (strict: unknown fields are errors), offline.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "ops/k8s"
KUBERNETES = "1.37.0"
PRESTOP_SECONDS = 5


def _build(path: Path) -> list[dict[str, Any]]:
    built = subprocess.run(
        ["kubectl", "kustomize", str(path)], capture_output=True, text=True, check=True
    )
    return [doc for doc in yaml.safe_load_all(built.stdout) if doc]


def _errors(objects: list[dict[str, Any]]) -> list[str]:
    errors = []
    for obj in objects:
        try:
            kubernetes_validate.validate(obj, KUBERNETES, strict=True)
        except kubernetes_validate.ValidationError as exc:
            errors.append(f"{obj['kind']}/{obj['metadata']['name']}: {exc.message}")
    return errors


def _raw_base() -> list[dict[str, Any]]:
    kustomization = yaml.safe_load((K8S / "base/kustomization.yaml").read_text())
    return [
        doc
        for name in kustomization["resources"]
        for doc in yaml.safe_load_all((K8S / "base" / name).read_text())
        if doc
    ]


@pytest.mark.parametrize("overlay", ["base", "overlays/production"])
def test_the_built_manifests_follow_the_kubernetes_schemas(overlay: str) -> None:
    objects = _build(K8S / overlay)
    assert _errors(objects) == []
    kinds = {obj["kind"] for obj in objects}
    assert kinds >= {
        "Deployment",
        "Service",
        "Ingress",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "Job",
        "ConfigMap",
        "Secret",
        "NetworkPolicy",
    }


def test_every_raw_base_manifest_follows_the_schemas_too() -> None:
    assert _errors(_raw_base()) == []


def test_the_validation_catches_a_misplaced_field() -> None:
    deployment = next(obj for obj in _raw_base() if obj["kind"] == "Deployment")
    deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGett"] = {}
    assert len(_errors([deployment])) == 1


def _production() -> dict[tuple[str, str], dict[str, Any]]:
    return {(o["kind"], o["metadata"]["name"]): o for o in _build(K8S / "overlays/production")}


def test_each_role_has_its_deployment_probes_and_drain_budget() -> None:
    objects = _production()
    settings = objects["ConfigMap", "chorus-settings"]["data"]
    grace = float(settings["CHORUS_SHUTDOWN_GRACE"])
    for role, port in (("gateway", "gateway"), ("api", "http")):
        pod = objects["Deployment", f"chorus-{role}"]["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        assert container["args"] == ["serve", "--role", role]
        assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": port}
        assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": port}
        assert container["lifecycle"]["preStop"]["exec"]["command"] == [
            "sleep",
            str(PRESTOP_SECONDS),
        ]
        # Kubernetes kills at terminationGracePeriodSeconds, counted from the start of
        # preStop: the node must have had its whole shutdown_grace by then.
        assert pod["terminationGracePeriodSeconds"] >= PRESTOP_SECONDS + grace + 5
        assert pod["securityContext"]["runAsNonRoot"] is True
        resources = container["resources"]
        assert resources["requests"]["cpu"]
        assert resources["limits"]["memory"]
        refs = {next(iter(source.values()))["name"] for source in container["envFrom"]}
        assert refs == {"chorus-settings", "chorus-secrets"}
        budget = objects["PodDisruptionBudget", f"chorus-{role}"]["spec"]
        labels = objects["Deployment", f"chorus-{role}"]["spec"]["selector"]["matchLabels"]
        assert budget["selector"]["matchLabels"] == labels


def test_the_gateway_scales_on_cpu_and_connections_per_pod() -> None:
    hpa = _production()["HorizontalPodAutoscaler", "chorus-gateway"]["spec"]
    metrics = {m["type"]: m for m in hpa["metrics"]}
    assert metrics["Resource"]["resource"]["name"] == "cpu"
    assert metrics["Pods"]["pods"]["metric"]["name"] == "chorus_connections"
    assert hpa["minReplicas"] == 3  # the production overlay's floor


def test_every_pod_s_whole_pool_fits_in_postgres_default_max_connections() -> None:
    """A serving node opens its whole pool at start: at the autoscalers' maximum, with one
    surge pod per rolling update, the pools and the migration job's one connection fit in
    PostgreSQL's default `max_connections` (100) less its `superuser_reserved_connections` (3)."""
    objects = _production()
    pool = int(objects["ConfigMap", "chorus-settings"]["data"]["CHORUS_DATABASE_POOL_SIZE"])
    pods = 0
    for role in ("gateway", "api"):
        surge = objects["Deployment", f"chorus-{role}"]["spec"]["strategy"]["rollingUpdate"]
        pods += objects["HorizontalPodAutoscaler", f"chorus-{role}"]["spec"]["maxReplicas"]
        pods += surge["maxSurge"]
    assert pods * pool + 1 <= 100 - 3


def test_the_ingress_routes_websockets_to_the_gateway_with_long_timeouts() -> None:
    ingress = _production()["Ingress", "chorus"]
    annotations = ingress["metadata"]["annotations"]
    assert int(annotations["nginx.ingress.kubernetes.io/proxy-read-timeout"]) >= 3600
    backends = {
        rule["host"]: rule["http"]["paths"][0]["backend"]["service"]["name"]
        for rule in ingress["spec"]["rules"]
    }
    settings = _production()["ConfigMap", "chorus-settings"]["data"]
    gateway_host = settings["CHORUS_PUBLIC_GATEWAY_URLS"].split("//")[1].rstrip("/")
    assert backends[gateway_host] == "chorus-gateway"


def test_the_migration_job_runs_chorus_migrate_with_the_node_settings() -> None:
    job = _production()["Job", "chorus-migrate"]["spec"]["template"]["spec"]
    (container,) = job["containers"]
    assert container["args"] == ["migrate"]
    assert job["restartPolicy"] == "OnFailure"
    deployment = _production()["Deployment", "chorus-api"]["spec"]["template"]["spec"]
    assert container["image"] == deployment["containers"][0]["image"]
