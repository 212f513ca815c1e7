"""The status page's latency chart: p50 and p95 per model over the last minutes, one point per
interval, the same whichever Gunicorn worker serves the page.

The recorded metrics are cumulative and shared by every worker (prometheus_client's files), so a
point is the difference between two snapshots of their totals. The snapshots live in one small
file beside those files (the metrics dir, in /dev/shm under a stack), at most one per interval
whichever worker takes it. A worker takes one after serving a model request (after the reply is
sent, at most once per interval per worker) and when the page polls: the chart shows the last
minutes' traffic even if nobody was watching. Without a metrics dir (one process: tests, `flask
run`) the snapshots stay in memory.
"""

from __future__ import annotations

import fcntl
import itertools
import math
import threading
import time
from pathlib import Path
from typing import Any

import orjson

from gateway.private_files import write_private
from gateway.status import Totals, quantile

SERIES_FILE = "status-series.json"
LOCK_FILE = "status-series.lock"
SPAN_S = 300.0  # the chart's width: five minutes

Snapshot = tuple[float, dict[str, Totals]]  # (wall-clock time, model → cumulative totals)


class Series:
    """Snapshots of the totals, every `interval_s`, over the last SPAN_S. Thread-safe; shared
    between processes through `directory` when given."""

    def __init__(self, directory: Path | None, interval_s: float) -> None:
        self.interval_s = interval_s
        self._directory = directory
        self._memory: list[Snapshot] = []
        self._next_due = 0.0  # monotonic: when this process may next take a snapshot
        self._lock = threading.Lock()

    def due(self) -> bool:
        """Whether this process should take a snapshot now (cheap: for the request path). Says
        yes once per interval, to one caller."""
        now = time.monotonic()
        with self._lock:
            if now < self._next_due:
                return False
            self._next_due = now + self.interval_s
            return True

    def take(self, totals: dict[str, Totals], now: float | None = None) -> None:
        """Remember the totals as of now, unless a snapshot younger than the interval exists
        (another worker took it)."""
        now = time.time() if now is None else now
        if self._directory is None:
            with self._lock:
                self._memory = _append(self._memory, (now, totals), self.interval_s)
            return
        if _young(self._read(), now, self.interval_s):  # the common case for a poll: no lock, no write
            return
        with open(self._directory / LOCK_FILE, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                snapshots = self._read()
                if not _young(snapshots, now, self.interval_s):
                    kept = _append(snapshots, (now, totals), self.interval_s)
                    write_private(self._directory / SERIES_FILE, orjson.dumps([_encode(s) for s in kept]))
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def points(self, current: dict[str, Totals], now: float | None = None) -> dict[str, list[list[Any]]]:
        """model → [[time, p50 ms, p95 ms, requests], ...], oldest first, one per interval with
        traffic; the last covers the newest snapshot to `current`."""
        now = time.time() if now is None else now
        snapshots = [s for s in self.snapshots() if s[0] < now] + [(now, current)]
        out: dict[str, list[list[Any]]] = {}
        for (_, before), (when, after) in itertools.pairwise(snapshots):
            if when <= now - SPAN_S:
                continue
            for model, totals in after.items():
                point = _point(when, totals, before.get(model))
                if point is not None:
                    out.setdefault(model, []).append(point)
        return out

    def snapshots(self) -> list[Snapshot]:
        if self._directory is None:
            with self._lock:
                return list(self._memory)
        return self._read()

    def _read(self) -> list[Snapshot]:
        try:
            raw = (self._directory / SERIES_FILE).read_bytes() if self._directory else b"[]"
            return [_decode(s) for s in orjson.loads(raw)]
        except FileNotFoundError:
            return []
        except (orjson.JSONDecodeError, ValueError, KeyError, TypeError):
            return []  # a file from another version of the gateway: start again


def _young(snapshots: list[Snapshot], now: float, interval_s: float) -> bool:
    """The newest snapshot is within this interval (0.9 of it: two workers at one boundary)."""
    return bool(snapshots) and now - snapshots[-1][0] < interval_s * 0.9


def _append(snapshots: list[Snapshot], new: Snapshot, interval_s: float) -> list[Snapshot]:
    if _young(snapshots, new[0], interval_s):
        return snapshots
    # One snapshot older than the span is kept: the base of the chart's first point.
    kept = [s for s in snapshots if s[0] >= new[0] - SPAN_S - interval_s]
    return [*kept, new]


def _point(when: float, after: Totals, before: Totals | None) -> list[Any] | None:
    within = after.minus(before)
    if within.requests <= 0:  # no traffic in this interval (or counters from before a restart)
        return None
    p50, p95 = quantile(0.5, within.buckets), quantile(0.95, within.buckets)
    if p50 is None or p95 is None:
        return None
    return [round(when, 3), round(p50 * 1000, 3), round(p95 * 1000, 3), round(within.requests)]


def _encode(snapshot: Snapshot) -> dict[str, Any]:
    when, models = snapshot
    return {"t": when, "models": {
        name: {"requests": t.requests, "buckets": {repr(le): n for le, n in t.buckets.items()}}
        for name, t in models.items()
    }}


def _decode(raw: dict[str, Any]) -> Snapshot:
    models = {
        name: Totals(requests=float(t["requests"]), buckets={float(le): float(n) for le, n in t["buckets"].items()})
        for name, t in raw["models"].items()
    }
    if not math.isfinite(float(raw["t"])):
        raise ValueError("a snapshot without a time")
    return float(raw["t"]), models
