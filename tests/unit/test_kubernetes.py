"""Kubernetes manifests from the gateway config: schema-valid, and wired to each other."""

from __future__ import annotations

import dataclasses
import json
import tomllib
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from gateway.cli import main
from gateway.demo import build_iris
from gateway.errors import ConfigError
from gateway.runtime.kubernetes import render_manifests, service_name
from gateway.settings import Settings, settings_from_dict

KUBERNETES_VERSION = "1.30.0"


def fake_r_version(store: Path, name: str, fmt: str = "rds") -> None:
    """A stored R version as far as rendering cares: model.json and an artefact file."""
    directory = store / name / "1"
    directory.mkdir(parents=True)
    artefact = "model.rds" if fmt == "rds" else "plumber.R"
    (directory / artefact).write_bytes(b"not read when rendering")
    meta = {"name": name, "version": "1", "language": "r", "format": fmt, "artefact": artefact, "inputs": []}
    (directory / "model.json").write_text(json.dumps(meta), encoding="utf-8")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    store = tmp_path / "store"
    build_iris(store)
    fake_r_version(store, "mtcars")
    fake_r_version(store, "cars_api", fmt="plumber")
    raw = {
        "store": {"path": str(store)},
        "models": {
            "iris": {"backend": "python"},
            "mtcars": {"backend": "plumber", "workers": 3, "timeout_s": 20},
            "cars_api": {"backend": "plumber", "workers": 1, "predict_route": "/predict"},
        },
        "kubernetes": {"namespace": "models", "max_scale": 2},
    }
    return settings_from_dict(raw, base_dir=tmp_path)


@pytest.fixture
def documents(settings: Settings) -> list[dict[str, Any]]:
    return [doc for docs in render_manifests(settings).values() for doc in docs]


def by_kind(documents: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for doc in documents if doc["kind"] == kind}


def test_every_manifest_validates_against_the_kubernetes_schema(documents: list[dict[str, Any]]) -> None:
    assert len(documents) == 1 + 5 + 4 * 2
    for doc in documents:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        assert doc["metadata"]["namespace"] == "models"


def test_each_service_selects_its_deployments_pods(documents: list[dict[str, Any]]) -> None:
    deployments = by_kind(documents, "Deployment")
    services = by_kind(documents, "Service")
    assert set(services) == set(deployments) == {"gateway", "r-mtcars", "r-cars-api"}
    for name, service in services.items():
        pod_labels = deployments[name]["spec"]["template"]["metadata"]["labels"]
        selector = service["spec"]["selector"]
        assert selector.items() <= pod_labels.items()
        assert deployments[name]["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
        port_names = {p["name"] for c in deployments[name]["spec"]["template"]["spec"]["containers"]
                      for p in c["ports"]}
        assert service["spec"]["ports"][0]["targetPort"] in port_names


def test_the_gateways_upstreams_name_existing_services(documents: list[dict[str, Any]], settings: Settings) -> None:
    config = tomllib.loads(by_kind(documents, "ConfigMap")["gateway-config"]["data"]["gateway.toml"])
    services = by_kind(documents, "Service")
    for model in ("mtcars", "cars_api"):
        entry = config["models"][model]
        assert entry["workers"] == 0  # no R in the gateway pod
        (host,) = entry["hosts"]
        name, port = host.split(":")
        assert name == service_name(model)
        assert int(port) in {p["port"] for p in services[name]["spec"]["ports"]}
    assert config["server"]["host"] == "0.0.0.0"
    assert config["store"]["path"] == "/store"
    settings_from_dict(config, base_dir=Path("/etc/gateway"))  # the pod's config is itself valid


def test_r_pools_scale_from_the_config_and_survive_drains(documents: list[dict[str, Any]]) -> None:
    deployments = by_kind(documents, "Deployment")
    assert deployments["r-mtcars"]["spec"]["replicas"] == 3
    hpa = by_kind(documents, "HorizontalPodAutoscaler")["r-mtcars"]["spec"]
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (3, 6)
    assert by_kind(documents, "PodDisruptionBudget")["r-mtcars"]["spec"]["minAvailable"] == 2
    assert by_kind(documents, "PodDisruptionBudget")["r-cars-api"]["spec"]["maxUnavailable"] == 1
    mtcars = deployments["r-mtcars"]["spec"]["template"]["spec"]["containers"][0]
    assert mtcars["command"][1:] == ["/opt/gateway/plumber/worker.R", "/store/mtcars/1", "0.0.0.0", "8000", "20"]
    assert mtcars["readinessProbe"]["httpGet"]["path"] == "/healthz"
    script = deployments["r-cars-api"]["spec"]["template"]["spec"]["containers"][0]
    assert script["command"][1:3] == ["/opt/gateway/plumber/script.R", "/store/cars_api/1/plumber.R"]
    assert script["readinessProbe"]["httpGet"]["path"] == "/__gateway/healthz"


def test_every_pod_may_load_for_the_configured_time_before_liveness_applies(settings: Settings) -> None:
    slow = dataclasses.replace(settings, kubernetes=dataclasses.replace(settings.kubernetes, load_timeout_s=602))
    documents = [doc for docs in render_manifests(slow).values() for doc in docs]
    for name, deployment in by_kind(documents, "Deployment").items():
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        startup = container["startupProbe"]
        assert startup["periodSeconds"] * startup["failureThreshold"] >= 602, name
        assert startup["httpGet"] == {**container["livenessProbe"]["httpGet"]}, name
    with pytest.raises(ConfigError, match="load_timeout_s"):
        settings_from_dict({"kubernetes": {"load_timeout_s": 0}}, base_dir=Path("/"))


def test_every_pod_mounts_the_store_read_only_and_runs_as_non_root(documents: list[dict[str, Any]]) -> None:
    claim = by_kind(documents, "PersistentVolumeClaim")["model-store"]
    assert claim["spec"]["accessModes"] == ["ReadOnlyMany"]
    for deployment in by_kind(documents, "Deployment").values():
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        store = next(v for v in pod["volumes"] if v["name"] == "store")
        assert store["persistentVolumeClaim"] == {"claimName": "model-store", "readOnly": True}
        for container in pod["containers"]:
            mount = next(m for m in container["volumeMounts"] if m["name"] == "store")
            assert mount["readOnly"] is True


def test_a_config_script_must_be_registered_for_kubernetes(settings: Settings, tmp_path: Path) -> None:
    script = tmp_path / "api" / "plumber.R"
    script.parent.mkdir()
    script.write_text("#* @get /x\nfunction() 1\n")
    raw = {"store": {"path": str(settings.store_path)},
           "models": {"api": {"backend": "plumber", "script": str(script)}}}
    with pytest.raises(ConfigError, match="gateway register api"):
        render_manifests(settings_from_dict(raw, base_dir=tmp_path))


def test_cli_writes_yaml_files(settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text(
        f'[store]\npath = "{settings.store_path}"\n[models.iris]\nbackend = "python"\n'
        '[models.mtcars]\nbackend = "plumber"\n', encoding="utf-8")
    out = tmp_path / "k8s"
    assert main(["--config", str(config), "render", "--target", "kubernetes", "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["gateway.yaml", "r-mtcars.yaml", "store.yaml"]
    for path in out.iterdir():
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
    assert "r-mtcars.yaml" in capsys.readouterr().out


def test_a_pool_that_follows_the_load_maps_onto_the_hpas_range(settings: Settings) -> None:
    scaling = settings_from_dict(
        {"store": {"path": str(settings.store_path)},
         "models": {"mtcars": {"backend": "plumber", "workers": {"min": 0, "max": 5}, "timeout_s": 20}}},
        base_dir=settings.base_dir)
    documents = [doc for docs in render_manifests(scaling).values() for doc in docs]
    assert by_kind(documents, "Deployment")["r-mtcars"]["spec"]["replicas"] == 1  # pods do not scale to zero
    hpa = by_kind(documents, "HorizontalPodAutoscaler")["r-mtcars"]["spec"]
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (1, 5)
