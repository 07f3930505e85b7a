"""The deployment files are valid: Kubernetes manifests against the API schemas (strict: an
unknown or misspelled field fails), and the compose file through `docker-compose config`."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from app.metrics import Metrics

ROOT = Path(__file__).resolve().parents[2]
KUBE = ROOT / "deploy" / "kubernetes"
KUBE_VERSION = "1.30.0"
MANIFESTS = sorted(p for p in KUBE.glob("*.yaml") if p.name != "kustomization.yaml")


def resources(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_kubernetes_manifest_matches_the_api_schema(path: Path) -> None:
    for resource in resources(path):
        kubernetes_validate.validate(resource, KUBE_VERSION, strict=True)


def test_kustomization_lists_every_manifest() -> None:
    listed = yaml.safe_load((KUBE / "kustomization.yaml").read_text())["resources"]
    assert sorted(listed) == [p.name for p in MANIFESTS]


def test_the_kubernetes_set_has_what_production_needs() -> None:
    kinds = {(r["kind"], r["metadata"]["name"]) for p in MANIFESTS for r in resources(p)}
    assert {
        ("Deployment", "atrium-api"),
        ("Service", "atrium-api"),
        ("HorizontalPodAutoscaler", "atrium-api"),
        ("Deployment", "atrium-worker"),
        ("Job", "atrium-migrate"),
        ("ConfigMap", "atrium-config"),
        ("Secret", "atrium-secrets"),
    } <= kinds
    (worker,) = [r for r in resources(KUBE / "worker.yaml") if r["kind"] == "Deployment"]
    limits = worker["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]
    assert limits["nvidia.com/gpu"] == "1"


def test_a_misspelled_field_is_refused() -> None:
    (job,) = resources(KUBE / "migrate-job.yaml")
    job["spec"]["backofLimit"] = job["spec"].pop("backoffLimit")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(job, KUBE_VERSION, strict=True)


def test_compose_file_is_valid() -> None:
    compose = shutil.which("docker-compose")
    if compose is None:
        if os.environ.get("CI") == "true":
            pytest.fail("docker-compose is not installed; .ci/run installs it")
        pytest.skip("docker-compose is not installed")
    result = subprocess.run(
        [compose, "-f", "docker-compose.yml", "config", "-q"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr


def test_compose_runs_the_production_stack() -> None:
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    assert {"postgres", "minio", "minio-init", "migrate", "proxy", "worker"} <= set(services)
    assert {"prometheus", "grafana"} <= set(services)
    apis = [name for name, s in services.items() if s.get("command", [])[:2] == ["atrium", "serve"]]
    assert len(apis) >= 2  # replicas behind the proxy
    gpu = services["worker"]["deploy"]["resources"]["reservations"]["devices"][0]
    assert gpu["capabilities"] == ["gpu"]
    for name in apis:  # the replicas send inference to the worker's port
        remote = services[name]["environment"]["ATRIUM_INFERENCE_REMOTE_WORKERS"]
        assert remote == "worker:7070" and "7070" in services["worker"]["command"]


def test_dashboard_queries_name_metrics_the_server_exports() -> None:
    dashboard = json.loads((ROOT / "deploy/grafana/dashboards/atrium.json").read_text())
    exported = Metrics().expose().decode() + " atrium_db_pool_connections atrium_storage_used_bytes"
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            for name in re.findall(r"atrium_[a-z_]+", target["expr"]):
                if name.startswith("atrium_inference_"):
                    continue  # exported by the inference pool when it runs
                base = re.sub(r"_(bucket|total|count|sum)$", "", name)
                assert base in exported, f"{panel['title']}: {name} is not exported"
