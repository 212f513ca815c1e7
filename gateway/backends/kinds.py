"""What a backend is to the rest of the gateway: one BackendKind object per `backend = "..."`.

The registry (gateway.backends.KINDS) is the only place that lists them; the config, the run
plan, the Gunicorn and Kubernetes renderers and the model registry ask a kind for what they
need, never compare backend names.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from gateway.backends.base import Backend
from gateway.errors import ConfigError
from gateway.settings import ModelSettings, Settings
from gateway.store import ModelStore
from gateway.topology import Plan


@dataclass(frozen=True)
class BuildContext:
    """What building a served model may read: the config, the store and the run plan."""

    settings: Settings
    store: ModelStore
    plan: Plan
    pinned: str | None = None  # the version the last up/reload checked, for `version = "latest"`

    def current(self, model: ModelSettings) -> str:
        """The configured version; "latest" is the one pinned at the last up/reload while stored."""
        if model.version == "latest" and self.pinned is not None and self.pinned in self.store.versions(model.name):
            return self.pinned
        return self.store.resolve(model.name, model.version)


@dataclass
class Resolved:
    """A model's versions as a kind serves them: made on first use (`make`), or made already."""

    current: str
    versions: list[str]
    make: Callable[[str], Backend] | None = None  # version → a backend, not loaded
    backends: dict[str, Backend] = field(default_factory=dict)


@dataclass(frozen=True)
class Saver:
    """How `register_model(..., fmt=...)` writes an estimator in a kind's own artefact format."""

    fmt: str  # the `fmt` argument and the artefact's suffix (model.<fmt>)
    # (estimator, features sample, artefact path) → the outputs to record in model.json
    save: Callable[[Any, Any, Path], dict[str, Any]]
    # `gateway register NAME file.<fmt> --sample CSV`: (file, features sample, artefact path) →
    # the outputs; checks the file fits the sample and copies it to the artefact path
    adopt: Callable[[Path, Any, Path], dict[str, Any]] | None = None


@dataclass(frozen=True)
class BackendKind:
    """One backend, everything the gateway needs to know about it in one object."""

    name: str  # the config's `backend = "..."`, and the `backend` label in /models and /metrics
    language: Literal["python", "r"]  # the `language` of its models in /models and /metrics
    summary: str  # one line: what it serves and where it runs
    build: Callable[[ModelSettings, BuildContext], Resolved]  # a model's versions, checked, not loaded
    preload: tuple[str, ...] = ()  # modules the Gunicorn master imports before forking (shared pages)
    r_pool: bool = False  # served by R worker pools under supervisord (run plan, renderers, k8s)
    keys: tuple[str, ...] = ()  # [models] keys only this kind takes; others refuse them
    saver: Saver | None = None  # register_model's fmt for it, when it has its own format


class KindRegistry:
    """Backend kinds by name; a second kind of the same name is refused, never overwrites."""

    def __init__(self, kinds: Iterable[BackendKind] = ()) -> None:
        self._kinds: dict[str, BackendKind] = {}
        for kind in kinds:
            self.register(kind)

    def register(self, kind: BackendKind) -> None:
        if kind.name in self._kinds:
            raise ValueError(f"backend kind {kind.name!r} is registered twice")
        plain = {f.name for f in dataclasses.fields(ModelSettings) if f.default is not dataclasses.MISSING}
        if unknown := [key for key in kind.keys if key not in plain]:
            raise ValueError(f"backend kind {kind.name!r}: keys {unknown} are not [models] keys with a plain default")
        if kind.saver is not None and any(k.saver and k.saver.fmt == kind.saver.fmt for k in self):
            raise ValueError(f"format {kind.saver.fmt!r} of backend kind {kind.name!r} is registered twice")
        self._kinds[kind.name] = kind

    def get(self, name: str, where: str = "backend") -> BackendKind:
        """The kind, or ConfigError naming the value and the kinds there are."""
        try:
            return self._kinds[name]
        except KeyError:
            raise ConfigError(f"{where}: {name!r} is not one of {', '.join(self.names())}") from None

    def names(self) -> list[str]:
        return sorted(self._kinds)

    def saver(self, fmt: str) -> Saver | None:
        return next((k.saver for k in self if k.saver is not None and k.saver.fmt == fmt), None)

    def __iter__(self) -> Iterator[BackendKind]:
        return iter(self._kinds.values())

    def check_settings(self, settings: Settings) -> None:
        """Every model names a known backend and sets no key that belongs to another one.

        Settings cannot ask the kinds (they sit below them), so the plan, the renderers and the
        registry call this before they read a model's backend."""
        defaults = {f.name: f.default for f in dataclasses.fields(ModelSettings)}  # kinds' keys have plain ones
        for model in settings.models.values():
            where = f"models.{model.name}"
            kind = self.get(model.backend, f"{where}.backend")
            for other in self:
                for key in other.keys:
                    if other is not kind and key not in kind.keys and getattr(model, key) != defaults[key]:
                        raise ConfigError(f"{where}.{key} needs backend = \"{other.name}\"")


def version_order(version: str) -> tuple[int, str]:
    """Numbered versions in number order; a named one ("script") first."""
    return (int(version), "") if version.isdigit() else (-1, version)
