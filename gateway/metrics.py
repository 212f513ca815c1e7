"""Prometheus metrics: every metric the gateway exports is defined here, and nowhere else.

Counters and histograms are recorded per process. Under Gunicorn, `PROMETHEUS_MULTIPROC_DIR`
(set by the rendered supervisord config to `run_dir/metrics`, wiped at `gateway up`) makes
prometheus_client write them to files that a scrape adds up across every worker, dead ones
included. Gauges that describe the stack now (model info, pool workers, restarts) are not
recorded at all: they are computed at scrape time by `StackCollector`, so no worker's stale
copy can disagree with another's.

The other issues call in here: the batcher calls `observe_batch`, nothing else.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# From half a millisecond (an in-process sklearn predict) to a minute (a slow R model).
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                   1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
BATCH_SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
METRICS_DIR = "metrics"  # under run_dir: prometheus_client's per-process files where no /dev/shm
RESTARTS_FILE = "restarts.json"  # under run_dir: kept by gateway.runtime.restarts
UNKNOWN = "_unknown"  # the label for a model or version that does not exist (bounded cardinality)
_SHM = Path("/dev/shm")


def metrics_dir(run_dir: str | Path) -> Path:
    """Where Gunicorn's workers keep prometheus_client's mmapped per-process files.

    In memory (/dev/shm), one directory per run_dir: a worker that writes a metric into an
    mmapped page of a full disk dies of SIGBUS, so these never live under run_dir (whose disk
    also takes the logs). run_dir/metrics only where the host has no /dev/shm.
    """
    root = Path(run_dir).resolve()
    if not _SHM.is_dir():
        return root / METRICS_DIR
    return _SHM / f"gateway-metrics-{hashlib.sha256(os.fsencode(root)).hexdigest()[:16]}"


# Recorded metrics live in a registry of our own, not prometheus_client's global one, so that
# importing the package never exports anything by accident.
_RECORDED = CollectorRegistry(auto_describe=True)

REQUESTS = Counter(
    "gateway_requests", "Requests per model, by protocol and HTTP status.",
    ["model", "version", "backend", "protocol", "status"], registry=_RECORDED,
)
REQUEST_DURATION = Histogram(
    "gateway_request_duration_seconds", "Time from request to response inside the gateway app.",
    ["model", "backend"], buckets=LATENCY_BUCKETS, registry=_RECORDED,
)
BACKEND_DURATION = Histogram(
    "gateway_backend_duration_seconds",
    "Time inside the backend call; the gateway's own overhead is the request duration minus this.",
    ["model", "backend"], buckets=LATENCY_BUCKETS, registry=_RECORDED,
)
ROWS = Counter("gateway_rows", "Rows predicted successfully.", ["model"], registry=_RECORDED)
BATCH_SIZE = Histogram(
    "gateway_batch_size", "Rows per batch the micro-batcher sent to the backend.",
    ["model"], buckets=BATCH_SIZE_BUCKETS, registry=_RECORDED,
)
BATCH_WAIT = Histogram(
    "gateway_batch_wait_seconds", "Time a request waited in the micro-batcher's queue.",
    ["model"], buckets=LATENCY_BUCKETS, registry=_RECORDED,
)

MODEL_PROBLEMS = Counter(
    "gateway_model_problems", "Problems a model named itself (gateway.ModelProblem, gatewayr::problem), by type.",
    ["model", "type"], registry=_RECORDED,
)


# Read by the scaler (gateway.poolstate.in_flight) to tell when every worker of a pool is busy.
POOL_IN_FLIGHT = Gauge(
    "gateway_pool_in_flight", "Calls in flight to each R pool (a pool key: model, or model--v<version>).",
    ["model", "pool"], multiprocess_mode="livesum", registry=_RECORDED,
)
# When a call last found no worker of a scaling pool running (Unix time): the scaler starts one
# even if that call gave up between two of its rounds.
POOL_COLD_WAIT = Gauge(
    "gateway_pool_cold_wait_time_seconds", "When a call last waited for a worker of a pool with none running.",
    ["model", "pool"], multiprocess_mode="max", registry=_RECORDED,
)
PREDICTION_LOG_WRITTEN = Counter(
    "gateway_prediction_log_written", "Prediction log lines the sink took (a file, or a 2xx from the URL).",
    ["model"], registry=_RECORDED,
)
PREDICTION_LOG_DROPPED = Counter(
    "gateway_prediction_log_dropped",
    "Sampled prediction log lines lost: queue_full (the writer fell behind) or sink_error.",
    ["model", "reason"], registry=_RECORDED,
)
# Each worker's sliding window of live inputs, as counts per reference bin. livesum: a scrape adds
# up the windows of the live workers; gateway.drift turns them into gateway_feature_drift (PSI)
# at scrape time and these raw counts are not exported.
DRIFT_WINDOW = Gauge(
    "gateway_drift_window", "Live values per reference bin in this worker's window (not exported).",
    ["model", "version", "column", "bin"], multiprocess_mode="livesum", registry=_RECORDED,
)
DRIFT_WINDOW_NAME = "gateway_drift_window"
# Predictions of regression models: values over many magnitudes, either sign.
PREDICTION_BUCKETS = (-1e6, -1e4, -1e3, -100.0, -10.0, -1.0, -0.1, 0.0, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0,
                      10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1e3, 1e4, 1e5, 1e6)
PREDICTION_VALUE = Histogram(
    "gateway_prediction_value", "Predicted values of regression models.",
    ["model", "version"], buckets=PREDICTION_BUCKETS, registry=_RECORDED,
)
PREDICTED_CLASS = Counter(
    "gateway_predicted_class", "Predicted classes of classification models (labels not in model.json: _other).",
    ["model", "version", "class"], registry=_RECORDED,
)


def observe_request(model: str, version: str, backend: str, protocol: str, status: int,
                    seconds: float | None) -> None:
    """One finished HTTP request for a model; `seconds` is None when it never reached a model."""
    REQUESTS.labels(model, version, backend, protocol, str(status)).inc()
    if seconds is not None:
        REQUEST_DURATION.labels(model, backend).observe(seconds)


def observe_backend(model: str, backend: str, seconds: float, rows: int | None) -> None:
    """One backend call; rows counted only for a successful predict (None for pass-through)."""
    BACKEND_DURATION.labels(model, backend).observe(seconds)
    if rows:
        ROWS.labels(model).inc(rows)


def observe_model_problem(model: str, type: str) -> None:
    """One client answered with a problem its model named (once per response, solo retries aside)."""
    MODEL_PROBLEMS.labels(model, type).inc()


def observe_batch(model: str, size: int, wait_s: float) -> None:
    """For the micro-batcher: one batch of `size` rows, whose oldest request waited `wait_s`."""
    BATCH_SIZE.labels(model).observe(size)
    BATCH_WAIT.labels(model).observe(wait_s)


@dataclass(frozen=True)
class ModelState:
    """What a scrape says about one model now."""

    name: str
    version: str
    backend: str
    language: str
    sha256: str
    ready: bool
    timeout_s: float
    live: int | None = None  # pools only
    total: int | None = None
    states: dict[str, int] | None = None  # pools that follow the load: running/starting/stopped


class StackCollector(Collector):
    """Gauges computed at scrape time from the live registry and the restart counts.

    `models` yields a ModelState per model; `restarts` returns model → restarts so far.
    """

    def __init__(self, models: Callable[[], Iterable[ModelState]],
                 restarts: Callable[[], dict[str, int]],
                 hosts: Callable[[], Iterable[HostSample]] = tuple) -> None:
        self._models = models
        self._restarts = restarts
        self._hosts = hosts

    def collect(self) -> Iterator[Any]:
        info = GaugeMetricFamily("gateway_model_info", "The model version each name serves (always 1).",
                                 labels=["model", "version", "backend", "language", "sha256"])
        ready = GaugeMetricFamily("gateway_model_ready", "1 when the model answers predictions (as /readyz).",
                                  labels=["model"])
        timeout = GaugeMetricFamily("gateway_model_timeout_seconds", "The model's configured timeout_s.",
                                    labels=["model"])
        workers = GaugeMetricFamily("gateway_pool_workers",
                                    "R pool workers: live (accepting connections) and total (configured); for "
                                    "pools that follow the load also running, starting and stopped.",
                                    labels=["model", "state"])
        restarts = CounterMetricFamily(
            "gateway_worker_restarts",
            "R workers that supervisord started again after they exited (see gateway.runtime.restarts).",
            labels=["model"],
        )
        counts = self._restarts()
        for model in self._models():
            info.add_metric([model.name, model.version, model.backend, model.language, model.sha256], 1)
            ready.add_metric([model.name], 1 if model.ready else 0)
            timeout.add_metric([model.name], model.timeout_s)
            if model.total is not None:
                workers.add_metric([model.name, "live"], model.live or 0)
                workers.add_metric([model.name, "total"], model.total)
                for state, count in (model.states or {}).items():
                    workers.add_metric([model.name, state], count)
                restarts.add_metric([model.name], counts.get(model.name, 0))
        yield from (info, ready, timeout, workers, restarts)
        yield from _host_families(self._hosts())


@dataclass(frozen=True)
class HostSample:
    """One worker host of one pool as the host prober last saw it (gateway/hoststate.py)."""

    pool: str  # the pool key: the model, or <model>--v<version> for a rollout version
    host: str
    up: bool
    in_upstream: bool
    latency_s: float
    failures: int


def _host_families(samples: Iterable[HostSample]) -> Iterator[Any]:
    labels = ["pool", "host"]
    up = GaugeMetricFamily("gateway_host_up", "1 when the worker host answered its last health probe.", labels=labels)
    routed = GaugeMetricFamily("gateway_host_in_upstream",
                               "1 while NGINX sends the pool's requests to the host (0: the prober took it out).",
                               labels=labels)
    latency = GaugeMetricFamily("gateway_host_probe_seconds", "How long the last health probe took.", labels=labels)
    failures = CounterMetricFamily("gateway_host_probe_failures", "Health probes the host failed.", labels=labels)
    for sample in samples:
        key = [sample.pool, sample.host]
        up.add_metric(key, 1 if sample.up else 0)
        routed.add_metric(key, 1 if sample.in_upstream else 0)
        latency.add_metric(key, sample.latency_s)
        failures.add_metric(key, sample.failures)
    yield from (up, routed, latency, failures)


def initialise(models: Iterable[tuple[str, str]]) -> None:
    """Create the per-model series at zero for (model, backend) pairs, so that every series a
    dashboard queries exists from the start (rate() needs a first sample; batch ones too)."""
    for name, backend in models:
        REQUEST_DURATION.labels(name, backend)
        BACKEND_DURATION.labels(name, backend)
        ROWS.labels(name)
        BATCH_SIZE.labels(name)
        BATCH_WAIT.labels(name)


def exposition(stack: Collector, drift: Callable[[Metric], Iterable[Metric]] | None = None) -> bytes:
    """The text a scrape returns: recorded metrics (summed over processes) plus `stack`.

    `drift` turns the summed drift windows into what is exported (gateway.drift); without it
    they are left out."""
    registry = CollectorRegistry()
    registry.register(_WindowsFolded(recorded(), drift))
    registry.register(stack)
    return generate_latest(registry)


class _WindowsFolded(Collector):
    """The recorded metrics, the drift windows replaced by what `drift` makes of them."""

    def __init__(self, inner: CollectorRegistry, drift: Callable[[Metric], Iterable[Metric]] | None) -> None:
        self._inner, self._drift = inner, drift

    def collect(self) -> Iterator[Any]:
        for family in self._inner.collect():
            if family.name != DRIFT_WINDOW_NAME:
                yield family
            elif self._drift is not None:
                yield from self._drift(family)


def recorded() -> CollectorRegistry:
    """A registry holding the recorded metrics: every process's under Gunicorn, else this one's."""
    registry = CollectorRegistry()
    directory = os.environ.get(MULTIPROC_ENV)
    if directory:
        multiprocess.MultiProcessCollector(registry, path=directory)
    else:
        registry.register(_RecordedHere())
    return registry


class _RecordedHere(Collector):
    """This process's recorded metrics, for a single process (tests, `flask run`)."""

    def collect(self) -> Iterator[Any]:
        yield from _RECORDED.collect()


def read_restarts(path: Path) -> dict[str, int]:
    """Model → restarts from the file gateway.runtime.restarts keeps; {} when there is none yet."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {str(k): int(v) for k, v in raw.items()} if isinstance(raw, dict) else {}
