"""The prediction log: a sampled JSON line per predict request, written off the request path.

`begin` decides at the start of a request whether it is sampled (models.<name>.log_predictions
.sample); for a sampled one the service hands `finish` references to the decoded inputs and
the predictions, or the error. `finish` only puts them on a bounded queue (full: the line is
dropped and counted in gateway_prediction_log_dropped_total); a daemon thread per process
builds the lines (redacting, clipping) and writes them in batches to the model's sink
(gateway.predlog_sinks), so the reply never waits for JSON encoding or I/O. Backends play no
part: Python, Plumber and rpy2 models are logged alike.

Redacted columns are dropped from `inputs` (their names listed under `redacted`), and an error's
detail, which may quote a value, is left out for a model with any redacted column.
"""

from __future__ import annotations

import atexit
import os
import queue
import random
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from gateway import context, metrics
from gateway.errors import GatewayError, clip_detail
from gateway.predlog_sinks import FileSink, HttpSink
from gateway.settings import PredictionLogSettings, Settings

QUEUE_SIZE = 1024  # lines waiting per worker; past it they are dropped
BATCH_LINES = 256  # lines per sink write
MAX_ROWS = 1000  # rows of inputs and outputs kept in one line; more: the first ones, truncated = true


@dataclass
class Pending:
    """A sampled request, filled in by the service as it goes."""

    model: str
    backend: str
    started: float
    time: str
    request_id: str | None
    traceparent: str | None
    version: str | None = None
    inputs: dict[str, list[Any]] | None = None
    n_rows: int | None = None


class PredictionLog:
    """One per process (PredictionService owns it)."""

    def __init__(self, settings: Settings) -> None:
        self._config = {name: m.log_predictions for name, m in settings.models.items() if m.log_predictions.sample > 0}
        logs = settings.run_dir / "logs"
        self._sinks: dict[str, FileSink | HttpSink] = {
            name: FileSink(logs / f"predictions-{name}.jsonl", settings.server.log_max_bytes,
                           settings.server.log_backups) if c.sink == "file" else HttpSink(c.sink)
            for name, c in self._config.items()
        }
        for name in self._config:  # the series exist from the start, at 0 (rate() needs a first sample)
            metrics.PREDICTION_LOG_WRITTEN.labels(name)
            for reason in ("queue_full", "sink_error"):
                metrics.PREDICTION_LOG_DROPPED.labels(name, reason)
        self._queue: queue.Queue[tuple[Pending, dict[str, Any]]] | None = None
        self._pid = 0
        self._lock = threading.Lock()
        self._random = random.Random()

    def begin(self, model: str, backend: str) -> Pending | None:
        """A Pending when this request of `model` is sampled, else None (the common, free case)."""
        config = self._config.get(model)
        if config is None or self._random.random() >= config.sample:
            return None
        record = context.current()
        return Pending(model, backend, time.perf_counter(),
                       datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                       record.request_id if record else None, record.traceparent if record else None)

    def finish(self, pending: Pending, outputs: list[Any] | None = None, error: BaseException | None = None) -> None:
        """Queue the line of a finished request; never blocks."""
        if isinstance(error, GatewayError):
            result: dict[str, Any] = {"status": error.status, "problem": error.code, "detail": error.detail}
        elif error is not None:
            result = {"status": 500, "problem": "internal", "detail": type(error).__name__}
        else:
            result = {"status": 200, "problem": None, "outputs": outputs}
        result["duration_ms"] = round((time.perf_counter() - pending.started) * 1000, 3)
        try:
            self._ensure_thread().put_nowait((pending, result))
        except queue.Full:
            metrics.PREDICTION_LOG_DROPPED.labels(pending.model, "queue_full").inc()

    def flush(self, timeout_s: float = 5.0) -> None:
        """Wait until the queue is written (tests, and a worker's exit)."""
        jobs = self._queue
        deadline = time.monotonic() + timeout_s
        while jobs is not None and jobs.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.01)

    def _ensure_thread(self) -> queue.Queue[tuple[Pending, dict[str, Any]]]:
        if self._queue is None or self._pid != os.getpid():  # after a fork: a thread of our own
            with self._lock:
                if self._queue is None or self._pid != os.getpid():
                    self._queue, self._pid = queue.Queue(QUEUE_SIZE), os.getpid()
                    threading.Thread(target=self._drain, args=(self._queue,), name="gateway-predlog",
                                     daemon=True).start()
                    atexit.register(self.flush, 2.0)  # a worker that exits (recycled) writes what it holds
        return self._queue

    def _drain(self, jobs: queue.Queue[tuple[Pending, dict[str, Any]]]) -> None:
        while True:
            batch = [jobs.get()]
            while len(batch) < BATCH_LINES:
                try:
                    batch.append(jobs.get_nowait())
                except queue.Empty:
                    break
            try:
                self._write(batch)
            finally:
                for _ in batch:
                    jobs.task_done()

    def _write(self, batch: list[tuple[Pending, dict[str, Any]]]) -> None:
        by_model: dict[str, list[bytes]] = {}
        for pending, result in batch:
            by_model.setdefault(pending.model, []).append(
                line(pending, result, self._config[pending.model]))
        for model, lines in by_model.items():
            ok = self._sinks[model].write(b"".join(lines))
            if ok:
                metrics.PREDICTION_LOG_WRITTEN.labels(model).inc(len(lines))
            else:
                metrics.PREDICTION_LOG_DROPPED.labels(model, "sink_error").inc(len(lines))


def line(pending: Pending, result: dict[str, Any], config: PredictionLogSettings) -> bytes:
    """One JSON line (with its newline): redacted columns dropped, rows clipped to MAX_ROWS."""
    inputs = pending.inputs
    redacted = sorted(set(config.redact) & set(inputs or ()))
    entry: dict[str, Any] = {
        "time": pending.time, "request_id": pending.request_id, "traceparent": pending.traceparent,
        "model": pending.model, "version": pending.version, "backend": pending.backend,
        "status": result["status"], "problem": result["problem"], "duration_ms": result["duration_ms"],
        "rows": pending.n_rows,
    }
    truncated = pending.n_rows is not None and pending.n_rows > MAX_ROWS
    if inputs is not None:
        entry["inputs"] = {k: v[:MAX_ROWS] for k, v in inputs.items() if k not in config.redact}
    if redacted:
        entry["redacted"] = redacted
    if "outputs" in result:
        entry["outputs"] = result["outputs"][:MAX_ROWS] if result["outputs"] is not None else None
    elif not config.redact:  # a detail may quote a redacted value
        entry["detail"] = clip_detail(str(result["detail"]))
    if truncated:
        entry["truncated"] = True
    return orjson.dumps(entry, default=str, option=orjson.OPT_SERIALIZE_NUMPY) + b"\n"
