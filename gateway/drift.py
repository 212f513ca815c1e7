"""Input drift and prediction distributions, per model version, off the request path.

Each Gunicorn worker keeps, per column of a version whose model.json has a `reference`, a
sliding window of the bins of its last WINDOW live values, and publishes the window's counts as
the `gateway_drift_window` gauge (prometheus multiprocess mode, livesum: a scrape adds up the
live workers' windows). At scrape time `families` turns the summed counts into
`gateway_feature_drift{model,version,column}`, the PSI against the reference (gateway.psi),
and `gateway_drift_window_values`, the number of values it rests on (the alert and the status
page wait for enough of them). Predictions are counted too: a histogram of values for
regression, counts per class for classification.

`observe` only appends the request's table to a bounded deque (dropped when full: drift is a
statistic, a missed request changes nothing); a daemon thread per process bins what came in
every DRAIN_S. A queue.Queue woken per request cost a fifth of a Gunicorn worker's GIL time on a
1-row Python predict under load (py-spy --gil): each put handed the GIL to the drain thread.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.core import GaugeMetricFamily, Metric

from gateway import metrics
from gateway.meta import ModelMeta
from gateway.psi import Binner, psi

WINDOW = 2000  # live values kept per column per worker
ROWS_PER_REQUEST = 200  # a larger request contributes an even spread of this many rows
MIN_VALUES = 50  # the status page shows a PSI once the summed window holds this many values
QUEUE_SIZE = 256  # requests waiting to be binned per worker
DRAIN_S = 0.25  # how often the drain thread bins what came in
_MAX_CLASSES = 100  # class labels counted for a model whose model.json lists none


@dataclass
class _Column:
    binner: Binner
    bins: deque[int] = field(default_factory=lambda: deque(maxlen=WINDOW))
    counts: list[int] = field(default_factory=list)


class DriftMonitor:
    """One per process (PredictionService owns it). `lookup(model, version)` finds a version's
    metadata, so a worker that has not served a version yet can still compute its PSI; `served()`
    yields (model, metadata) of the versions served now, whose series exist from the start (NaN
    until a value arrives), as every other series a dashboard or an alert queries."""

    def __init__(self, lookup: Callable[[str, str], ModelMeta | None] | None = None,
                 served: Callable[[], Iterable[tuple[str, ModelMeta]]] | None = None) -> None:
        self._lookup, self._served = lookup, served
        self._windows: dict[tuple[str, str], dict[str, _Column]] = {}
        self._references: dict[tuple[str, str], dict[str, Binner]] = {}
        self._classes: dict[tuple[str, str], set[str]] = {}
        self._touched: set[tuple[str, str, str]] = set()  # columns binned since the last publish
        self._lock = threading.Lock()
        self._pending: deque[tuple[str, ModelMeta, dict[str, list[Any]], int, list[Any]]] | None = None
        self._pid = 0

    def observe(self, model: str, meta: ModelMeta, columns: dict[str, list[Any]], n_rows: int,
                predictions: list[Any]) -> None:
        """Queue one successful predict's inputs and outputs; never blocks, never wakes a thread."""
        pending = self._ensure_thread()
        if len(pending) < QUEUE_SIZE:  # deque.append is atomic: no lock on the request path
            pending.append((model, meta, columns, n_rows, predictions))

    def families(self, summed: Metric) -> Iterator[Metric]:
        """The summed drift windows of every worker → gateway_feature_drift (PSI) per column, and
        gateway_drift_window_values (how many values it rests on: few values, a noisy PSI)."""
        drift = GaugeMetricFamily(
            "gateway_feature_drift",
            "Population stability index of each input column's recent values against model.json's reference "
            "(< 0.1 stable, > 0.25 shifted).",
            labels=["model", "version", "column"],
        )
        values = GaugeMetricFamily(
            "gateway_drift_window_values", "Recent values (all live workers' windows) each PSI is computed from.",
            labels=["model", "version", "column"],
        )
        for (model, version, column), (value, count) in sorted(self._psi(summed).items()):
            drift.add_metric([model, version, column], round(value, 6))
            values.add_metric([model, version, column], count)
        yield drift
        yield values

    def _psi(self, summed: Metric) -> dict[tuple[str, str, str], tuple[float, float]]:
        """(model, version, column) → (PSI, values in the summed window); NaN without values."""
        counts: dict[tuple[str, str, str], dict[str, float]] = {}
        for model, current in self._served() if self._served is not None else ():
            self.register(model, current)
            for column in self._references.get((model, current.version), {}):
                counts[(model, current.version, column)] = {}
        for sample in summed.samples:
            labels = sample.labels
            key = (labels["model"], labels["version"], labels["column"])
            counts.setdefault(key, {})[labels["bin"]] = sample.value
        out = {}
        for (model, version, column), by_bin in counts.items():
            if (model, version) not in self._references and self._lookup is not None:
                meta = self._lookup(model, version)
                if meta is not None:
                    self.register(model, meta)
            binner = self._references.get((model, version), {}).get(column)
            if binner is None:
                continue
            value = psi(binner.expected, [by_bin.get(label, 0.0) for label in binner.labels])
            out[(model, version, column)] = (math.nan if value is None else value, sum(by_bin.values()))
        return out

    def register(self, model: str, meta: ModelMeta) -> None:
        """Know a version's reference (so any worker can compute PSI at scrape time)."""
        key = (model, meta.version)
        if key in self._references or not meta.reference:
            return
        binners = {}
        for column, reference in (meta.reference.get("columns") or {}).items():
            try:
                binners[str(column)] = Binner(reference)
            except (TypeError, ValueError, AttributeError):
                continue  # a reference this code cannot read: no drift for that column
        self._references[key] = binners

    def psi_by_column(self, summed: Metric) -> dict[tuple[str, str, str], float]:
        """(model, version, column) → PSI, where the summed window holds MIN_VALUES values."""
        return {key: value for key, (value, count) in self._psi(summed).items() if count >= MIN_VALUES}

    def status(self, families: Iterable[Metric]) -> dict[str, dict[str, Any]]:
        """Model → {"drift": {"psi", "column"} (the largest now) or None, "prediction_log":
        {"written", "dropped"} or None}, from the recorded metrics, for the status page."""
        out: dict[str, dict[str, Any]] = {}

        def entry(model: str) -> dict[str, Any]:
            return out.setdefault(model, {"drift": None, "prediction_log": None})

        for family in families:
            if family.name == metrics.DRIFT_WINDOW_NAME:
                for (model, _version, column), value in self.psi_by_column(family).items():
                    current = entry(model)["drift"]
                    if current is None or value > current["psi"]:
                        entry(model)["drift"] = {"psi": round(value, 4), "column": column}
            elif family.name in ("gateway_prediction_log_written", "gateway_prediction_log_dropped"):
                key = "written" if family.name.endswith("written") else "dropped"
                for sample in family.samples:
                    if sample.name.endswith("_total"):
                        log = entry(sample.labels["model"])
                        log["prediction_log"] = log["prediction_log"] or {"written": 0, "dropped": 0}
                        log["prediction_log"][key] += int(sample.value)
        return out

    def _ensure_thread(self) -> deque[Any]:
        if self._pending is None or self._pid != os.getpid():  # after a fork: a thread of our own
            with self._lock:
                if self._pending is None or self._pid != os.getpid():
                    self._pending, self._pid = deque(), os.getpid()
                    threading.Thread(target=self._drain, args=(self._pending,), name="gateway-drift",
                                     daemon=True).start()
        return self._pending

    def _drain(self, pending: deque[Any]) -> None:
        while True:
            time.sleep(DRAIN_S)
            while pending:
                model, meta, columns, n_rows, predictions = pending.popleft()
                try:
                    self._bin(model, meta, columns, n_rows)
                    self._count_predictions(model, meta, predictions)
                except Exception:
                    continue
            self._publish()

    def _bin(self, model: str, meta: ModelMeta, columns: dict[str, list[Any]], n_rows: int) -> None:
        self.register(model, meta)
        binners = self._references.get((model, meta.version))
        if not binners or n_rows == 0:
            return
        windows = self._windows.setdefault((model, meta.version), {})
        step = max(1, n_rows // ROWS_PER_REQUEST)
        for name, binner in binners.items():
            values = columns.get(name)
            if values is None:
                continue
            window = windows.get(name)
            if window is None:
                window = windows[name] = _Column(binner, counts=[0] * len(binner.labels))
            for value in values[::step][:ROWS_PER_REQUEST]:
                if len(window.bins) == WINDOW:
                    window.counts[window.bins[0]] -= 1
                index = binner.index(value)
                window.bins.append(index)
                window.counts[index] += 1
            self._touched.add((model, meta.version, name))

    def _publish(self) -> None:
        """The windows binned since the last round → the shared gauge, once per column per round
        (setting every bin's gauge after each request cost 5 % of a worker's GIL time)."""
        for model, version, name in self._touched:
            window = self._windows[(model, version)][name]
            for label, count in zip(window.binner.labels, window.counts, strict=True):
                metrics.DRIFT_WINDOW.labels(model, version, name, label).set(count)
        self._touched.clear()

    def _count_predictions(self, model: str, meta: ModelMeta, predictions: list[Any]) -> None:
        kind = meta.outputs.get("kind")
        step = max(1, len(predictions) // ROWS_PER_REQUEST)
        sample = predictions[::step][:ROWS_PER_REQUEST]
        if kind == "classification":
            known = self._classes.setdefault((model, meta.version), set(meta.classes or ()))
            for value in sample:
                if isinstance(value, dict | list):
                    return  # probabilities: no class to count
                label = str(value)
                if label not in known:
                    if meta.classes or len(known) >= _MAX_CLASSES:
                        label = "_other"
                    else:
                        known.add(label)
                metrics.PREDICTED_CLASS.labels(model, meta.version, label).inc()
        elif kind == "regression" or kind is None:
            for value in sample:
                if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
                    metrics.PREDICTION_VALUE.labels(model, meta.version).observe(value)


def drift_rows(psi_values: dict[tuple[str, str, str], float]) -> dict[str, dict[str, Any]]:
    """Model → its largest PSI now and the column it is in, for the status page."""
    out: dict[str, dict[str, Any]] = {}
    for (model, _version, column), value in psi_values.items():
        if model not in out or value > out[model]["psi"]:
            out[model] = {"psi": value, "column": column}
    return out

