"""The numbers behind the status page: the last minute per model, from the recorded metrics.

The metrics are cumulative and summed over every Gunicorn worker, so "the last minute" is a
difference between now and a snapshot about a minute old. Each process keeps its own short
history of snapshots (of the all-process totals), so whichever worker answers a poll gives the
same kind of answer; a worker younger than a minute reports the window it has (`window_s`).
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry

WINDOW_S = 60.0
_KEEP_S = 3 * WINDOW_S


@dataclass
class Totals:
    """One model's cumulative counts at one moment."""

    requests: float = 0.0
    errors: float = 0.0  # answered 4xx or 5xx
    buckets: dict[float, float] = field(default_factory=dict)  # upper bound → cumulative count
    batch_sum: float = 0.0
    batch_count: float = 0.0
    client_errors: float = 0.0  # of the errors: answered 4xx (the request's fault)
    server_errors: float = 0.0  # answered 5xx (the gateway's, a backend's or a model's fault)

    def minus(self, old: Totals | None) -> Totals:
        if old is None:
            return self
        return Totals(
            self.requests - old.requests, self.errors - old.errors,
            {le: n - old.buckets.get(le, 0.0) for le, n in self.buckets.items()},
            self.batch_sum - old.batch_sum, self.batch_count - old.batch_count,
            self.client_errors - old.client_errors, self.server_errors - old.server_errors,
        )


def totals(registry: CollectorRegistry) -> dict[str, Totals]:
    """Model → cumulative counts, read from the recorded metrics."""
    out: dict[str, Totals] = {}
    for family in registry.collect():
        for sample in family.samples:
            model = sample.labels.get("model")
            if model is None:
                continue
            entry = out.setdefault(model, Totals())
            if sample.name == "gateway_requests_total":
                entry.requests += sample.value
                status = int(sample.labels.get("status", "0"))
                if status >= 400:
                    entry.errors += sample.value
                if 400 <= status < 500:
                    entry.client_errors += sample.value
                elif status >= 500:
                    entry.server_errors += sample.value
            elif sample.name == "gateway_request_duration_seconds_bucket":
                le = float(sample.labels["le"])
                entry.buckets[le] = entry.buckets.get(le, 0.0) + sample.value
            elif sample.name == "gateway_batch_size_sum":
                entry.batch_sum += sample.value
            elif sample.name == "gateway_batch_size_count":
                entry.batch_count += sample.value
    return out


def quantile(q: float, buckets: dict[float, float]) -> float | None:
    """The q-quantile of a cumulative histogram, interpolated within its bucket (as PromQL's
    histogram_quantile does); None without observations; the last finite bound if it is in +Inf."""
    bounds = sorted(buckets)
    if not bounds or buckets[bounds[-1]] <= 0:
        return None
    rank = q * buckets[bounds[-1]]
    lower, below = 0.0, 0.0
    for bound in bounds:
        count = buckets[bound]
        if count >= rank:
            if math.isinf(bound):
                return lower
            inside = count - below
            return lower + (bound - lower) * ((rank - below) / inside if inside else 1.0)
        lower, below = bound, count
    return lower


class StatusWindow:
    """Snapshots of the totals over the last few minutes, in this process.

    Seeded with the totals when the process starts, so a young worker still counts everything
    since its start (served by any worker), and says how long that is.
    """

    def __init__(self, seed: dict[str, Totals], now: float | None = None) -> None:
        self._history: deque[tuple[float, dict[str, Totals]]] = deque(
            [(time.monotonic() if now is None else now, seed)])
        self._lock = threading.Lock()

    def recent(self, now_totals: dict[str, Totals], now: float | None = None) -> tuple[float, dict[str, Totals]]:
        """(window_s, model → counts within it): against the newest snapshot at least WINDOW_S old,
        else the oldest there is (a young process); the current totals are then remembered."""
        now = time.monotonic() if now is None else now
        with self._lock:
            while len(self._history) > 1 and now - self._history[1][0] >= WINDOW_S and \
                    now - self._history[0][0] > _KEEP_S:
                self._history.popleft()
            base_time, base = self._history[0]
            for when, snapshot in self._history:
                if now - when < WINDOW_S:
                    break
                base_time, base = when, snapshot
            if now - self._history[-1][0] >= 1.0:  # many pollers: at most one snapshot a second
                self._history.append((now, now_totals))
        return now - base_time, {m: t.minus(base.get(m)) for m, t in now_totals.items()}


def model_rows(described: Iterable[dict[str, Any]], window_s: float, recent: dict[str, Totals]) -> list[dict]:
    """The status page's rows: what /models says plus the recent traffic of each model."""
    rows = []
    for model in described:
        counts = recent.get(model["name"], Totals())
        p50, p99 = quantile(0.5, counts.buckets), quantile(0.99, counts.buckets)
        rows.append({
            **model,
            "requests": round(counts.requests),
            "errors": round(counts.errors),
            "client_errors": round(counts.client_errors),
            "server_errors": round(counts.server_errors),
            "p50_ms": None if p50 is None else round(p50 * 1000, 3),
            "p99_ms": None if p99 is None else round(p99 * 1000, 3),
            "mean_batch": round(counts.batch_sum / counts.batch_count, 2) if counts.batch_count else None,
        })
    return rows
