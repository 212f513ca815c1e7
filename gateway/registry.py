"""Model name and version → a loaded Backend. Built once per worker process, after the fork."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

from gateway.backends.base import Backend, Health
from gateway.backends.plumber import PlumberBackend
from gateway.backends.python import PythonBackend
from gateway.backends.rpy2 import Rpy2Backend, missing_requirements
from gateway.errors import ConfigError, NotFound, Unavailable
from gateway.meta import ModelMeta
from gateway.routing import Shadow, pick_version
from gateway.settings import ModelSettings, Settings, cluster_secret
from gateway.store import ModelStore
from gateway.topology import Plan

log = logging.getLogger(__name__)


@dataclass
class ServedModel:
    settings: ModelSettings
    current: str  # the version /models/<name>/predict uses
    versions: list[str]  # every version this gateway can serve
    backends: dict[str, Backend] = field(default_factory=dict)
    failure: str | None = None  # why an optional model is not serving
    aliases: dict[str, str] = field(default_factory=dict)  # alias → version
    traffic: list[tuple[str, int]] = field(default_factory=list)  # (version, weight) for unversioned predicts
    shadow: Shadow | None = None
    _factory: object = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def name(self) -> str:
        return self.settings.name

    @property
    def meta(self) -> ModelMeta:
        return self.backend(self.current).meta

    def backend(self, version: str | None = None) -> Backend:
        """The backend for a version, loading an older Python version on first use."""
        if self.failure is not None:
            raise Unavailable(f"model '{self.name}' failed to load: {self.failure}", model=self.name)
        version = self.current if version in (None, "latest") else self.aliases.get(version, version)
        if version not in self.versions:
            raise NotFound(
                f"model '{self.name}' has no version '{version}' here; served: {', '.join(self.versions)}",
                model=self.name,
            )
        if version not in self.backends:
            with self._lock:
                if version not in self.backends:
                    backend = self._factory(version)  # type: ignore[operator]
                    backend.load()
                    self.backends[version] = backend
        return self.backends[version]

    def route(self, routing_key: str | None = None) -> str:
        """The version an unversioned predict goes to: the traffic split, else the current one."""
        if not self.traffic:
            return self.current
        return pick_version(self.traffic, routing_key)

    def health(self) -> Health:
        if self.failure is not None:
            return Health(ready=False, detail=f"failed to load: {self.failure}")
        return self.backend().health()


class Registry:
    def __init__(self, models: dict[str, ServedModel]) -> None:
        self._models = models

    def get(self, name: str) -> ServedModel:
        try:
            return self._models[name]
        except KeyError:
            known = ", ".join(sorted(self._models)) or "none"
            raise NotFound(f"model '{name}' does not exist; served models: {known}", model=name) from None

    def __iter__(self) -> Iterator[ServedModel]:
        return iter(self._models.values())

    def unload(self) -> None:
        for served in self._models.values():
            for backend in served.backends.values():
                backend.unload()


def build_registry(settings: Settings, plan: Plan, *, load: bool = True) -> Registry:
    """Resolve every configured model; with load=True, load its current version now.

    Start-up fails loudly (ConfigError naming the model) unless the model is `optional`.
    """
    store = ModelStore(settings.store_path)
    models: dict[str, ServedModel] = {}
    for model in settings.models.values():
        try:
            served = _served_model(model, settings, store, plan)
            _apply_rollout(served, model)
            if load:
                served.backend()
        except ConfigError as exc:
            if not model.optional:
                raise
            log.warning("optional model %s is not served: %s", model.name, exc)
            served = ServedModel(model, current="-", versions=[], failure=str(exc))
        models[model.name] = served
    return Registry(models)


def _apply_rollout(served: ServedModel, model: ModelSettings) -> None:
    """Aliases, traffic weights and the shadow, each checked against the versions served."""
    where = f"models.{model.name}"

    def resolve(name: str, key: str) -> str:
        version = model.aliases.get(name, name)
        if version not in served.versions:
            hint = "" if model.backend == "python" else " (an R pool starts at `gateway up` per stored version named)"
            raise ConfigError(f"{where}.{key}: {name!r} is not a served version{hint}; "
                              f"served: {', '.join(served.versions)}")
        return version

    served.aliases = {alias: resolve(version, "aliases") for alias, version in model.aliases.items()}
    served.traffic = sorted((resolve(name, "traffic"), weight) for name, weight in model.traffic.items() if weight)
    if model.shadow is not None:
        served.shadow = Shadow(resolve(model.shadow, "shadow"))


def _served_model(model: ModelSettings, settings: Settings, store: ModelStore, plan: Plan) -> ServedModel:
    if model.backend == "python":
        current = store.resolve(model.name, model.version)

        def python_backend(version: str) -> Backend:
            meta = store.read_meta(model.name, version)
            if meta.language != "python":
                raise ConfigError(
                    f"models.{model.name}: version {version} is an R model ({meta.format}); "
                    "use backend = \"plumber\" or \"rpy2\""
                )
            return PythonBackend(meta, store.version_dir(model.name, version), trusted=model.trusted)

        served = ServedModel(model, current=current, versions=store.versions(model.name))
        served._factory = python_backend
        return served
    if model.backend == "plumber":
        pool = plan.pools.get(model.name)
        if pool is None:
            raise ConfigError(f"models.{model.name}: the run plan has no R pool for it; run `gateway up`")
        meta = (
            script_meta(model.name) if pool.version == "script" else store.read_meta(model.name, pool.version)
        )
        if meta.language != "r":
            raise ConfigError(f"models.{model.name}: version {pool.version} is not an R model")
        backends: dict[str, Backend] = {
            pool.version: PlumberBackend(meta, model, pool, plan.internal_url, cluster_secret(settings),
                                         run_dir=plan.run_dir)
        }
        for extra in plan.all_pools:  # the versions its aliases, traffic and shadow name
            if extra.model == model.name and not extra.primary:
                extra_meta = store.read_meta(model.name, extra.version)
                backends[extra.version] = PlumberBackend(extra_meta, model, extra, plan.internal_url,
                                                         cluster_secret(settings), run_dir=plan.run_dir)
        return ServedModel(model, current=pool.version, versions=sorted(backends, key=_version_order),
                           backends=backends)
    if model.backend == "rpy2":
        return _rpy2_model(model, store)
    raise ConfigError(f"models.{model.name}: unknown backend {model.backend!r}; use python, plumber or rpy2")


def _rpy2_model(model: ModelSettings, store: ModelStore) -> ServedModel:
    """Checked here without starting R (`gateway up` runs this in the CLI): R starts on load."""
    problem = missing_requirements()
    if problem is not None:
        raise ConfigError(f"models.{model.name}: backend = \"rpy2\" needs R in-process, but {problem}")
    current = store.resolve(model.name, model.version)

    def rpy2_backend(version: str) -> Backend:
        meta = store.read_meta(model.name, version)
        if meta.language != "r" or meta.format != "rds":
            raise ConfigError(
                f"models.{model.name}: version {version} is a {meta.language} {meta.format} model; "
                "backend = \"rpy2\" serves saved R models (model.rds); use \"python\" or \"plumber\""
            )
        return Rpy2Backend(meta, store.version_dir(model.name, version), model)

    rpy2_backend(current)  # refuse a wrong artefact at start-up, not on the first request
    served = ServedModel(model, current=current, versions=store.versions(model.name))
    served._factory = rpy2_backend
    return served


def script_meta(name: str) -> ModelMeta:
    """Metadata for a script named in the config: no schema, so rows pass as sent."""
    return ModelMeta(
        name=name, version="script", language="r", format="plumber", artefact="plumber.R",
        inputs=(), outputs={}, sha256="", created_at="", framework={},
        description="a Plumber script served as written",
    )


def _version_order(version: str) -> tuple[int, str]:
    return (int(version), "") if version.isdigit() else (-1, version)
