"""The protocol-free core: resolve the model, decode, validate, predict. No Flask here."""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import urllib3

from gateway import context, metrics, tracing
from gateway.backends.base import Backend, Forwarder
from gateway.batching import MicroBatcher
from gateway.bulkhead import Bulkheads
from gateway.codecs import DecodedRequest, Table, decode_request, validate_table
from gateway.drift import DriftMonitor
from gateway.errors import BadGateway, GatewayError, InvalidInput, NotFound, PayloadTooLarge, UnknownParam
from gateway.meta import ModelMeta
from gateway.predlog import Pending, PredictionLog
from gateway.registry import Registry, ServedModel
from gateway.settings import Settings


@dataclass(frozen=True)
class Prediction:
    model: str
    version: str
    predictions: list[Any]


class PredictionService:
    def __init__(self, registry: Registry, settings: Settings) -> None:
        self.registry = registry
        self.settings = settings
        self._batchers: dict[tuple[str, str], MicroBatcher] = {}
        self._batchers_lock = threading.Lock()
        self._bulkheads = Bulkheads({name: m.max_in_flight for name, m in settings.models.items()})
        self.prediction_log = PredictionLog(settings)
        self.drift = DriftMonitor(self._meta_of, self._served_metas)

    def predict(
        self, name: str, version: str | None, body: bytes, content_type: str | None,
        routing_key: str | None = None,
    ) -> Prediction:
        """Predict from a raw public body. Raises GatewayErrors with the contract's statuses.

        Without a version the model's traffic split chooses one (sticky per routing key); a
        configured shadow version gets a copy after the live reply is computed.
        """
        return self.predict_decoded(name, version, lambda _meta: decode_request(body, content_type), routing_key)

    def predict_decoded(
        self, name: str, version: str | None, decode: Callable[[ModelMeta], DecodedRequest],
        routing_key: str | None = None,
    ) -> Prediction:
        """As `predict`, for a protocol that decodes its own body form: `decode` gets the chosen
        version's metadata (model.json) and returns the table and params."""
        served = self.registry.get(name)
        logged = self.prediction_log.begin(served.name, served.settings.backend)
        try:
            with self._bulkheads.enter(served.name):  # decoding a large body is part of the load
                backend = served.backend(version if version is not None else served.route(routing_key))
                with tracing.span("gateway.decode"):
                    decoded = decode(backend.meta)
                table, params = decoded.table, decoded.params
                if logged is not None:
                    logged.version, logged.backend, logged.inputs = backend.meta.version, backend.kind, table.columns
                    logged.n_rows = table.n_rows
                if table.n_rows > self.settings.server.max_rows:
                    raise PayloadTooLarge(f"the request has {table.n_rows} rows, more than the limit of "
                                          f"{self.settings.server.max_rows} (server.max_rows); split it", model=name)
                result = self.predict_table(served, backend.meta.version, table, params, logged)
        except Exception as exc:
            if logged is not None:
                self.prediction_log.finish(logged, error=exc)
            raise
        if logged is not None:
            self.prediction_log.finish(logged, outputs=result.predictions)
        shadow = served.shadow
        if shadow is not None and version is None and shadow.version != result.version:
            shadow.submit(lambda: self.predict_table(served, shadow.version, table, params).predictions,
                          result.predictions, served.name)
        return result

    def predict_routed(
        self, name: str, version: str | None, table: Table, params: dict[str, Any],
        routing_key: str | None = None,
    ) -> Prediction:
        """As `predict`, for a protocol that has already built its table (v2 tensors)."""
        return self.predict_decoded(name, version, lambda _meta: DecodedRequest(table, params), routing_key)

    def predict_table(
        self, served: ServedModel, version: str, table: Table, params: dict[str, Any],
        logged: Pending | None = None,
    ) -> Prediction:
        """Validate and predict one table with a chosen version; `logged`, a sampled request's
        prediction log entry, gets the validated inputs."""
        backend = served.backend(version)
        meta = backend.meta
        with tracing.span("gateway.validate"):
            params = check_params(params, meta.allowed_types if meta.inputs else (), served.name)
            if meta.inputs:
                table = validate_table(
                    table, meta.inputs, served.name, extra_columns=self.settings.server.extra_columns
                )
            elif table.n_rows == 0:
                raise InvalidInput("the request has no rows", model=served.name)
        if logged is not None:
            logged.inputs = table.columns
        record = context.current()
        if record is not None:
            record.version, record.backend = meta.version, backend.kind
        started, rows = time.perf_counter(), None
        try:
            predictions = self.batcher(served, backend).submit(table, params)
            rows = table.n_rows if len(predictions) == table.n_rows else None  # else a 502 below
        finally:
            # Failed calls are timed too: a timing-out R model must show in the histogram.
            metrics.observe_backend(served.name, backend.kind, time.perf_counter() - started, rows)
        if record is not None:
            record.rows = rows
        if len(predictions) != table.n_rows:
            raise BadGateway(
                f"model '{served.name}' returned {len(predictions)} predictions for {table.n_rows} rows",
                model=served.name,
            )
        self.drift.observe(served.name, meta, table.columns, table.n_rows, predictions)
        return Prediction(served.name, meta.version, predictions)

    def _served_metas(self) -> Iterator[tuple[str, ModelMeta]]:
        """(model, metadata) of each model's current version that loaded."""
        for served in self.registry:
            try:
                yield served.name, served.meta
            except GatewayError:
                continue

    def _meta_of(self, name: str, version: str) -> ModelMeta | None:
        """A loaded version's metadata (None when not loaded here: a scrape loads nothing)."""
        try:
            backend = self.registry.get(name).backends.get(version)
        except GatewayError:
            return None
        return None if backend is None else backend.meta

    def forward(self, name: str, method: str, path: str, query: bytes, headers: list[tuple[str, str]],
                body: bytes) -> urllib3.BaseHTTPResponse:
        """`/plumber/<name>/<path>`: a Plumber script's own route, passed through and timed."""
        backend = self.registry.get(name).backend()
        if not isinstance(backend, Forwarder):
            raise NotFound(f"model '{name}' is not a Plumber script; use /models/{name}/predict", model=name)
        record = context.current()
        if record is not None:
            record.version, record.backend = backend.meta.version, backend.kind
        started = time.perf_counter()
        try:
            with self._bulkheads.enter(name):
                return backend.forward(method, path, query, headers, body)
        finally:
            metrics.observe_backend(name, backend.kind, time.perf_counter() - started, None)

    def batcher(self, served: ServedModel, backend: Backend) -> MicroBatcher:
        """The one batcher of this model version in this process, made on first use."""
        key = (served.name, backend.meta.version)
        batcher = self._batchers.get(key)
        if batcher is None:
            with self._batchers_lock:
                batcher = self._batchers.get(key)
                if batcher is None:
                    default = backend.batching()
                    config = served.settings.batch
                    batcher = MicroBatcher(
                        backend.predict,
                        max_size=default.max_size if config.max_size is None else config.max_size,
                        max_wait_ms=default.max_wait_ms if config.max_wait_ms is None else config.max_wait_ms,
                        slots=default.slots,
                        name=f"{served.name}/{backend.meta.version}",
                        on_batch=functools.partial(metrics.observe_batch, served.name),
                    )
                    self._batchers[key] = batcher
        return batcher

    def batching_snapshot(self) -> list[dict[str, Any]]:
        """Batch-size and queue-wait counters of every batcher in this process."""
        with self._batchers_lock:
            batchers = list(self._batchers.values())
        return [b.snapshot() for b in batchers]

    def readiness(self) -> tuple[bool, dict[str, dict[str, Any]]]:
        detail: dict[str, dict[str, Any]] = {}
        for served in self.registry:
            health = served.health()
            entry: dict[str, Any] = {"ready": health.ready}
            if health.total is not None:
                entry["workers"] = {"live": health.live, "total": health.total, **(health.states or {})}
            if health.on_demand:
                entry["on_demand"] = True
            if health.hosts is not None:
                entry["hosts"] = health.hosts
            if health.detail:
                entry["detail"] = health.detail
            detail[served.name] = entry
        return all(entry["ready"] for entry in detail.values()), detail

    def describe(self, served: ServedModel, *, full: bool) -> dict[str, Any]:
        health = served.health()
        summary: dict[str, Any] = {
            "name": served.name,
            "version": served.current,
            "backend": served.settings.backend,
            "language": served.language,
            "ready": health.ready,
        }
        if not health.ready and health.detail:
            summary["detail"] = health.detail
        if not full:
            return summary
        try:
            meta = served.meta
        except GatewayError:  # the current version did not load: the reason is all there is
            return {**summary, "versions": served.versions}
        summary.update(
            versions=served.versions,
            description=served.settings.description or meta.description,
            inputs=[
                {k: v for k, v in col.to_json().items() if k != "pandas_dtype"} for col in meta.inputs
            ],
            outputs=meta.outputs,
            params={"type": list(meta.allowed_types)} if meta.inputs else {},
            **({"param_defaults": {"type": meta.default_type}} if meta.default_type else {}),
            sha256=meta.sha256,
            created_at=meta.created_at,
            framework=meta.framework,
        )
        if served.aliases:
            summary["aliases"] = served.aliases
        if served.traffic:
            summary["traffic"] = dict(served.traffic)
        if served.shadow is not None:
            summary["shadow"] = {"version": served.shadow.version, **vars(served.shadow.stats)}
        if health.total is not None:
            summary["workers"] = {"live": health.live, "total": health.total}
        if health.hosts is not None:
            summary["hosts"] = health.hosts
        return summary


def check_params(params: dict[str, Any], allowed_types: tuple[str, ...], model: str) -> dict[str, Any]:
    """Only `type` exists, and only with the values this model supports; anything else is a 400.

    No type is filled in: without one the model predicts as its own predict does by default
    (R's default differs by class: a glm's link scale, rpart's probabilities, ...).
    """
    for key in params:
        if key != "type" or not allowed_types:
            accepted = "type" if allowed_types else "no params"
            raise UnknownParam(f"unknown param '{key}'; model '{model}' accepts: {accepted}", model=model)
    if "type" not in params:
        return {}
    kind = params["type"]
    if kind not in allowed_types:
        raise UnknownParam(
            f"param 'type' must be one of {', '.join(allowed_types)} for model '{model}'; got {kind!r}",
            model=model,
        )
    return {"type": kind}
