"""Model name and version → a loaded Backend. Built once per worker process, after the fork."""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from gateway.backends import KINDS
from gateway.backends.base import Backend, Health
from gateway.backends.kinds import BackendKind, BuildContext
from gateway.backends.kinds import version_order as _version_order
from gateway.errors import ConfigError, GatewayError, NotFound, Unavailable
from gateway.meta import ModelMeta
from gateway.private_files import write_private
from gateway.routing import Shadow, pick_version
from gateway.settings import ModelSettings, Settings
from gateway.store import ModelStore
from gateway.topology import Plan

log = logging.getLogger(__name__)
PINNED_FILE = "versions.json"  # in the run dir


@dataclass
class ServedModel:
    settings: ModelSettings
    current: str  # the version /models/<name>/predict uses
    versions: list[str]  # every version this gateway can serve
    backends: dict[str, Backend] = field(default_factory=dict)
    failure: str | None = None  # why the model cannot serve at all (its config or store)
    failures: dict[str, str] = field(default_factory=dict)  # version → why it did not load
    aliases: dict[str, str] = field(default_factory=dict)  # alias → version
    traffic: list[tuple[str, int]] = field(default_factory=list)  # (version, weight) for unversioned predicts
    shadow: Shadow | None = None
    _factory: object = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def name(self) -> str:
        return self.settings.name

    @property
    def kind(self) -> BackendKind:
        return KINDS.get(self.settings.backend)

    @property
    def language(self) -> str:
        return self.kind.language

    @property
    def meta(self) -> ModelMeta:
        return self.backend(self.current).meta

    @property
    def named_versions(self) -> list[str]:
        """The versions the config names (current, aliases, traffic, shadow): checked at start."""
        named = {self.current, *self.aliases.values(), *(v for v, _ in self.traffic)}
        if self.shadow is not None:
            named.add(self.shadow.version)
        return sorted(named & set(self.versions), key=_version_order)

    def backend(self, version: str | None = None) -> Backend:
        """The backend for a version, loading an unnamed older Python version on first use.

        Raises Unavailable (503) naming the model, version and reason when it cannot load."""
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
                if version not in self.backends and version not in self.failures:
                    try:
                        backend = self.make(version)
                        backend.load()
                    except Exception as exc:  # one bad artefact never escapes as a 500
                        self.failures[version] = _reason(exc).removeprefix(f"model '{self.name}' version {version}: ")
                        log.error("model %s version %s failed to load: %s", self.name, version,
                                  self.failures[version])
                    else:
                        self.backends[version] = backend
        if version in self.failures:
            raise Unavailable(f"model '{self.name}' version {version} failed to load: {self.failures[version]}",
                              model=self.name)
        return self.backends[version]

    def make(self, version: str) -> Backend:
        """A backend for a version, not loaded; ConfigError when its metadata does not fit."""
        if version in self.backends:
            return self.backends[version]
        return self._factory(version)  # type: ignore[operator]

    def route(self, routing_key: str | None = None) -> str:
        """The version an unversioned predict goes to: the traffic split, else the current one."""
        if not self.traffic:
            return self.current
        return pick_version(self.traffic, routing_key)

    def problem(self) -> str | None:
        """Why this model is not fully serving (the model, or a version the config names), or None."""
        if self.failure is not None:
            return self.failure
        failed = [f"version {v}: {self.failures[v]}" for v in self.named_versions if v in self.failures]
        return "; ".join(failed) or None

    def health(self) -> Health:
        problem = self.problem()
        if problem is not None:
            return Health(ready=False, detail=f"failed to load: {problem}")
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


def build_registry(settings: Settings, plan: Plan, *, load: bool = True, isolate: bool = False,
                   pinned: bool = True) -> Registry:
    """Resolve every configured model; with load=True, load every version its config names.

    Start-up fails loudly (ConfigError naming the model) unless the model is `optional`, or
    `isolate` is set (a serving process): then a model that cannot load is only marked not
    ready, with its reason, and every other model serves. With pinned=False, "latest" is the
    store's newest version even where the last up/reload pinned another (see pinned_versions).
    """
    KINDS.check_settings(settings)
    store = ModelStore(settings.store_path)
    pins = pinned_versions(plan) if pinned else {}
    models: dict[str, ServedModel] = {}
    for model in settings.models.values():
        try:
            served = _served_model(model, settings, store, plan, pins.get(model.name))
            _apply_rollout(served, model)
        except Exception as exc:  # isolated below unless the start must fail
            if not isolate and not (model.optional and isinstance(exc, ConfigError)):
                raise
            log.warning("model %s is not served: %s", model.name, _reason(exc))
            served = ServedModel(model, current="-", versions=[], failure=_reason(exc))
        if load and served.failure is None:
            for version in served.named_versions:
                with contextlib.suppress(Unavailable):
                    served.backend(version)
            if not (model.optional or isolate) and (problem := served.problem()) is not None:
                raise ConfigError(f"model '{model.name}': {problem}")
        models[model.name] = served
    return Registry(models)


@dataclass(frozen=True)
class Checked:
    problems: dict[str, str]  # optional model → why it cannot serve
    versions: dict[str, str]  # Python and rpy2 model → the current version that was checked


def check_models(settings: Settings, plan: Plan) -> Checked:
    """Check every version each model's config names, without loading or running any artefact
    (sha256, a script's directory hash, skops trust). Raises ConfigError, the cause in one
    line, for a model that fails unless it is optional."""
    problems: dict[str, str] = {}
    versions: dict[str, str] = {}
    registry = build_registry(settings, plan, load=False, isolate=True, pinned=False)
    for served in registry:
        problem = served.failure
        for version in served.named_versions if problem is None else ():
            try:
                served.make(version).check()
            except Exception as exc:  # a corrupt file raises whatever its reader raises
                problem = _reason(exc)
                break
        if problem is None:
            if not served.kind.r_pool:  # a pool's version is fixed in the run plan instead
                versions[served.name] = served.current
            continue
        if not served.settings.optional:
            prefix = f"model '{served.name}'"
            raise ConfigError(problem if problem.startswith(prefix) else f"{prefix}: {problem}")
        problems[served.name] = problem
    return Checked(problems, versions)


def pinned_versions(plan: Plan) -> dict[str, str]:
    """model → version fixed by the last `gateway up` or `reload` (after they were checked), so
    a worker restarted later never picks up an unchecked newer version; {} outside a stack."""
    path = Path(plan.run_dir) / PINNED_FILE
    try:
        pinned = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in pinned.items()} if isinstance(pinned, dict) else {}


def pin_versions(plan: Plan, checked: Checked) -> None:
    """Record the versions check_models checked, for the workers (see pinned_versions)."""
    # Private like the rest of the run dir; on reload it keeps the owner privileges.grant gave it
    # at up (the service user, whose Gunicorn workers read it).
    write_private(Path(plan.run_dir) / PINNED_FILE, json.dumps(checked.versions, indent=2), keep_owner=True)


def _reason(exc: BaseException) -> str:
    """One line: a ConfigError's own words, else the exception's type and message."""
    text = str(exc) if isinstance(exc, ConfigError | GatewayError) else f"{type(exc).__name__}: {exc}"
    return " ".join(text.split())[:1000]


def _apply_rollout(served: ServedModel, model: ModelSettings) -> None:
    """Aliases, traffic weights and the shadow, each checked against the versions served."""
    where = f"models.{model.name}"

    def resolve(name: str, key: str) -> str:
        version = model.aliases.get(name, name)
        if version not in served.versions:
            pool = KINDS.get(model.backend).r_pool
            hint = " (an R pool starts at `gateway up` or `reload` per stored version named)" if pool else ""
            raise ConfigError(f"{where}.{key}: {name!r} is not a served version{hint}; "
                              f"served: {', '.join(served.versions)}")
        return version

    served.aliases = {alias: resolve(version, "aliases") for alias, version in model.aliases.items()}
    served.traffic = sorted((resolve(name, "traffic"), weight) for name, weight in model.traffic.items() if weight)
    if model.shadow is not None:
        served.shadow = Shadow(resolve(model.shadow, "shadow"))


def _served_model(model: ModelSettings, settings: Settings, store: ModelStore, plan: Plan,
                  pinned: str | None = None) -> ServedModel:
    resolved = KINDS.get(model.backend).build(model, BuildContext(settings, store, plan, pinned))
    served = ServedModel(model, current=resolved.current, versions=resolved.versions, backends=resolved.backends)
    served._factory = resolved.make
    return served
