"""Kubernetes manifests rendered from the same gateway config as the local stack.

The gateway Deployment runs what `gateway up` runs (NGINX and Gunicorn under supervisord) but no
R processes: each R model becomes its own Deployment of one-R-process pods behind a Service, and
the gateway's config lists that Service as the pool's remote host. The model store is a volume
every pod mounts read-only.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import yaml

from gateway.backends import KINDS
from gateway.errors import ConfigError
from gateway.runtime.tomlwrite import settings_to_toml
from gateway.settings import KubernetesSettings, ModelSettings, Settings
from gateway.store import ModelStore

PART_OF = "gateway"
STORE_MOUNT = "/store"
CONFIG_MOUNT = "/etc/gateway"
APP_DIR = "/opt/gateway"  # where the images put the repository (plumber/ entrypoints)
GATEWAY_PORT = 8080
RUN_AS = 10001  # the non-root user both images create
_STARTUP_PERIOD_S = 5  # startupProbe period: a loaded model is noticed within 5 s


def render_manifests(settings: Settings) -> dict[str, list[dict[str, Any]]]:
    """File name → the documents it holds. Versions are pinned from the store now."""
    k8s = settings.kubernetes
    store = ModelStore(settings.store_path)
    KINDS.check_settings(settings)
    pools = [m for m in settings.models.values() if KINDS.get(m.backend).r_pool]
    files: dict[str, list[dict[str, Any]]] = {
        "store.yaml": [_store_claim(k8s)],
        "gateway.yaml": _gateway(settings, k8s, pools),
    }
    for model in pools:
        files[f"r-{_dns(model.name)}.yaml"] = _r_pool(model, store, k8s)
    return files


def write_manifests(settings: Settings, out_dir: str | Path) -> dict[str, Path]:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = {}
    for name, documents in render_manifests(settings).items():
        path = out / name
        path.write_text(yaml.safe_dump_all(documents, sort_keys=False), encoding="utf-8")
        written[name] = path
    return written


def service_name(model: str) -> str:
    return f"r-{_dns(model)}"


def _gateway(settings: Settings, k8s: KubernetesSettings, pools: list[ModelSettings]) -> list[dict[str, Any]]:
    in_cluster = _in_cluster_settings(settings, k8s, pools)
    labels = _labels("gateway")
    config_map = _meta("ConfigMap", "gateway-config", k8s, labels) | {
        "data": {"gateway.toml": settings_to_toml(in_cluster)},
    }
    container = {
        "name": "gateway",
        "image": k8s.gateway_image,
        "args": ["up", "--exec", "--config", f"{CONFIG_MOUNT}/gateway.toml"],
        "ports": [{"name": "http", "containerPort": GATEWAY_PORT}],
        "startupProbe": _startup_probe("/healthz", "http", k8s),
        "readinessProbe": _probe("/readyz", "http", period_s=5),
        "livenessProbe": _probe("/healthz", "http", period_s=10, failures=3),
        "resources": _resources(k8s.gateway_cpu, k8s.gateway_memory),
        "volumeMounts": [
            {"name": "config", "mountPath": CONFIG_MOUNT, "readOnly": True},
            {"name": "store", "mountPath": STORE_MOUNT, "readOnly": True},
            {"name": "run", "mountPath": "/run/gateway"},
        ],
        "securityContext": _container_security(),
    }
    volumes = [
        {"name": "config", "configMap": {"name": "gateway-config"}},
        _store_volume(k8s),
        {"name": "run", "emptyDir": {}},
    ]
    return [
        config_map,
        _deployment("gateway", k8s, labels, k8s.gateway_replicas, [container], volumes),
        _service("gateway", k8s, labels, port=80, target="http"),
        _autoscaler("gateway", k8s, k8s.gateway_replicas, k8s.gateway_replicas * k8s.max_scale),
        _disruption_budget("gateway", k8s, labels, k8s.gateway_replicas),
    ]


def _in_cluster_settings(settings: Settings, k8s: KubernetesSettings, pools: list[ModelSettings]) -> Settings:
    """The gateway pod's own config: public on all interfaces, R pools reached by Service name."""
    models = dict(settings.models)
    for model in pools:
        if model.script is not None:
            raise ConfigError(
                f"models.{model.name}.script: in Kubernetes every pod reads the model store, so "
                f"register the script first (`gateway register {model.name} {model.script}`) "
                "and drop `script` from the config"
            )
        models[model.name] = dataclasses.replace(
            model, workers=0, hosts=(f"{service_name(model.name)}:{k8s.worker_port}",)
        )
    server = dataclasses.replace(settings.server, host="0.0.0.0", port=GATEWAY_PORT, run_dir="/run/gateway")
    return dataclasses.replace(
        settings,
        server=server,
        store=dataclasses.replace(settings.store, path=STORE_MOUNT),
        models=models,
        base_dir=Path(CONFIG_MOUNT),
        config_path=None,
    )


def _r_pool(model: ModelSettings, store: ModelStore, k8s: KubernetesSettings) -> list[dict[str, Any]]:
    version = store.resolve(model.name, model.version)
    meta = store.read_meta(model.name, version)
    version_dir = f"{STORE_MOUNT}/{model.name}/{version}"
    if meta.format == "plumber":
        entry, target, health = "script.R", f"{version_dir}/{meta.artefact}", "/__gateway/healthz"
    else:
        entry, target, health = "worker.R", version_dir, "/healthz"
    name = service_name(model.name)
    labels = _labels(name) | {"gateway/model": model.name, "gateway/version": version}
    container = {
        "name": "plumber",
        "image": k8s.worker_image,
        "command": ["Rscript", f"{APP_DIR}/plumber/{entry}", target, "0.0.0.0", str(k8s.worker_port),
                    *([f"{model.timeout_s:g}"] if entry == "worker.R" else [])],
        "ports": [{"name": "plumber", "containerPort": k8s.worker_port}],
        # One R process answers one request at a time: a busy worker is still alive, so the
        # liveness probe is lenient and readiness alone takes a stuck pod out of the Service.
        "startupProbe": _startup_probe(health, "plumber", k8s),
        "readinessProbe": _probe(health, "plumber", period_s=5),
        "livenessProbe": _probe(health, "plumber", period_s=20, failures=6, timeout_s=int(model.timeout_s)),
        "resources": _resources(k8s.worker_cpu, k8s.worker_memory),
        "volumeMounts": [{"name": "store", "mountPath": STORE_MOUNT, "readOnly": True},
                         {"name": "tmp", "mountPath": "/tmp"}],
        "securityContext": _container_security(),
    }
    volumes = [_store_volume(k8s), {"name": "tmp", "emptyDir": {}}]
    selector = _labels(name)
    # A pool that follows the load (workers = {min, max}) maps onto the HPA's range; pods cannot
    # scale to zero here, so min 0 becomes 1.
    scale = model.scale
    low, high = (max(1, scale.min), scale.max) if scale else (model.pool_size, model.pool_size * k8s.max_scale)
    return [
        _deployment(name, k8s, labels, low, [container], volumes, selector=selector),
        _service(name, k8s, selector, port=k8s.worker_port, target="plumber"),
        _autoscaler(name, k8s, low, max(low, high)),
        _disruption_budget(name, k8s, selector, low),
    ]


def _deployment(name: str, k8s: KubernetesSettings, labels: dict[str, str], replicas: int,
                containers: list[dict[str, Any]], volumes: list[dict[str, Any]],
                selector: dict[str, str] | None = None) -> dict[str, Any]:
    return _meta("Deployment", name, k8s, labels, api="apps/v1") | {
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": selector or labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "securityContext": {"runAsNonRoot": True, "runAsUser": RUN_AS, "runAsGroup": RUN_AS,
                                        "fsGroup": RUN_AS},
                    "containers": containers,
                    "volumes": volumes,
                },
            },
        },
    }


def _service(name: str, k8s: KubernetesSettings, selector: dict[str, str], *, port: int,
             target: str) -> dict[str, Any]:
    return _meta("Service", name, k8s, selector) | {
        "spec": {"selector": selector, "ports": [{"name": target, "port": port, "targetPort": target}]},
    }


def _autoscaler(name: str, k8s: KubernetesSettings, low: int, high: int) -> dict[str, Any]:
    return _meta("HorizontalPodAutoscaler", name, k8s, _labels(name), api="autoscaling/v2") | {
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "minReplicas": low,
            "maxReplicas": max(low, high),
            "metrics": [{"type": "Resource", "resource": {
                "name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}}],
        },
    }


def _disruption_budget(name: str, k8s: KubernetesSettings, selector: dict[str, str], replicas: int) -> dict[str, Any]:
    # Keep all but one pod through a drain; a single-pod pool may still be moved (else drains hang).
    spec: dict[str, Any] = {"selector": {"matchLabels": selector}}
    spec["minAvailable" if replicas > 1 else "maxUnavailable"] = replicas - 1 if replicas > 1 else 1
    return _meta("PodDisruptionBudget", name, k8s, _labels(name), api="policy/v1") | {"spec": spec}


def _store_claim(k8s: KubernetesSettings) -> dict[str, Any]:
    return _meta("PersistentVolumeClaim", k8s.store_claim, k8s, _labels("model-store")) | {
        "spec": {"accessModes": ["ReadOnlyMany"], "resources": {"requests": {"storage": k8s.store_size}}},
    }


def _store_volume(k8s: KubernetesSettings) -> dict[str, Any]:
    return {"name": "store", "persistentVolumeClaim": {"claimName": k8s.store_claim, "readOnly": True}}


def _probe(path: str, port: str, *, period_s: int, failures: int = 1, timeout_s: int = 2) -> dict[str, Any]:
    return {"httpGet": {"path": path, "port": port}, "periodSeconds": period_s,
            "timeoutSeconds": max(1, timeout_s), "failureThreshold": failures}


def _startup_probe(path: str, port: str, k8s: KubernetesSettings) -> dict[str, Any]:
    """Liveness waits until this passes once: a pod loading a large R model for minutes is
    given kubernetes.load_timeout_s, then the usual lenient liveness takes over."""
    return _probe(path, port, period_s=_STARTUP_PERIOD_S, failures=-(-k8s.load_timeout_s // _STARTUP_PERIOD_S))


def _resources(cpu: str, memory: str) -> dict[str, Any]:
    return {"requests": {"cpu": cpu, "memory": memory}, "limits": {"memory": memory}}


def _container_security() -> dict[str, Any]:
    return {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}


def _meta(kind: str, name: str, k8s: KubernetesSettings, labels: dict[str, str], api: str = "v1") -> dict[str, Any]:
    return {"apiVersion": api, "kind": kind,
            "metadata": {"name": name, "namespace": k8s.namespace, "labels": dict(labels)}}


def _labels(name: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": name, "app.kubernetes.io/part-of": PART_OF}


def _dns(name: str) -> str:
    """Model names allow '_'; Kubernetes names are DNS labels."""
    return name.replace("_", "-")
