"""Adaptive micro-batching: concurrent predicts for one model version share one backend call.

Why: a Plumber worker (or sklearn) pays a fixed cost per call (HTTP, JSON, data.frame build,
input checks) and little per row, so many small requests cost far more one by one than together.

How (leader/follower, no timer thread): a request that finds a free call slot and nobody queued
runs at once, alone, so an idle model adds no latency. Requests that arrive while every slot is
busy queue by key (params + column names); when a slot frees, the oldest queued request leads:
it takes its key's queue (up to `max_size` rows), makes one call, and hands each follower its
own rows. A queued request never waits longer than `max_wait_ms` for a slot: past that it leads
anyway with whatever has gathered, so a slow backend cannot hold the queue hostage.

Correctness: requests with different params or columns never share a call; rows come back in
order; if a shared call fails with an error that could be one request's fault (a 422 from the
model, a crashed worker), every request is retried alone so only the poisoned one fails.
One batcher per model version per process; the threads of a Gunicorn gthread worker share it.

Traces (gateway/tracing.py): each backend call is a `gateway.backend` span in the thread that
makes it, linked to the span of every caller it carries; a caller that queued gets a
`gateway.batch_wait` span (enqueued to its call's start) linked to the call that served it.
"""

from __future__ import annotations

import bisect
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

from gateway import tracing
from gateway.codecs.table import Table
from gateway.errors import GatewayTimeout, Unavailable

PredictFn = Callable[[Table, dict[str, Any]], list[Any]]

# Errors a solo retry cannot cure (the pool is down or too slow): retrying each request alone
# would only multiply the load on a struggling backend, so these go to every caller as is.
_NO_SOLO_RETRY = (GatewayTimeout, Unavailable)

WAIT_BUCKETS_MS = (0.0, 0.1, 0.5, 1.0, 2.0, 5.0, 10.0, 50.0)  # upper bounds; one more for "above"
SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)  # rows per call


@dataclass
class _Item:
    """One caller's request while it is queued or in a call."""

    table: Table
    params: dict[str, Any]
    key: Hashable
    enqueued: float
    taken: bool = False  # in a leader's batch, waiting for its reply
    done: bool = False
    solo: bool = False  # the shared call failed: this caller retries alone, in its own thread
    result: list[Any] | None = None
    error: BaseException | None = None
    trace: Any = None  # the caller's span context (tracing on), linked from the call's span
    enqueued_ns: int = 0  # wall clock, for the batch_wait span (0: tracing off)
    started_ns: int = 0  # when its call started
    call: Any = None  # the span context of the call that served it


@dataclass
class _Stats:
    calls: int = 0
    requests: int = 0
    rows: int = 0
    batched_calls: int = 0  # calls that carried more than one request
    solo_retries: int = 0  # requests retried alone after a shared call failed
    overflow_calls: int = 0  # calls started past max_wait_ms with every slot busy
    wait_total_ms: float = 0.0
    wait_max_ms: float = 0.0
    wait_hist: list[int] = field(default_factory=lambda: [0] * (len(WAIT_BUCKETS_MS) + 1))
    size_hist: list[int] = field(default_factory=lambda: [0] * (len(SIZE_BUCKETS) + 1))


class MicroBatcher:
    """Coalesces concurrent `submit` calls into fewer `predict` calls. Thread-safe.

    `slots` is how many backend calls may run at once before requests queue (the R pool's
    worker count; 1 for an in-process model, which holds the GIL anyway).
    """

    def __init__(
        self, predict: PredictFn, *, max_size: int, max_wait_ms: float, slots: int = 1, name: str = "",
        on_batch: Callable[[int, float], None] | None = None,
    ) -> None:
        if max_size < 1 or max_wait_ms < 0 or slots < 1:
            raise ValueError("max_size >= 1, max_wait_ms >= 0 and slots >= 1")
        self.name = name
        self.max_size = max_size
        self.max_wait_s = max_wait_ms / 1e3
        self.slots = slots
        self._predict = predict
        self._on_batch = on_batch  # (rows, oldest wait in s) per call: the metrics histograms
        self._cond = threading.Condition(threading.Lock())
        self._inflight = 0
        self._queues: dict[Hashable, deque[_Item]] = {}
        self._stats = _Stats()

    @property
    def enabled(self) -> bool:
        return self.max_size > 1

    def submit(self, table: Table, params: dict[str, Any]) -> list[Any]:
        """Predictions for this table's rows, in order; raises what a solo call would raise."""
        if self.max_size <= 1 or table.n_rows >= self.max_size:  # nothing to gain: no locks, no bookkeeping
            if not tracing.enabled():
                return self._predict(table, params)
            with tracing.span("gateway.backend", {"gateway.batch.requests": 1, "gateway.batch.rows": table.n_rows}):
                return self._predict(table, params)
        item = _Item(table, params, _key(table, params), time.monotonic(), trace=tracing.current(),
                     enqueued_ns=tracing.now_ns())
        queued = False
        with self._cond:
            if self._inflight < self.slots and item.key not in self._queues:
                self._inflight += 1
                self._record_start([item], item.enqueued, overflow=False)  # never queued
                batch: list[_Item] | None = [item]
            else:
                queued = True
                self._queues.setdefault(item.key, deque()).append(item)
                batch = self._await_turn(item)
        if batch is not None:
            self._run(batch)
        if queued:
            tracing.record("gateway.batch_wait", item.enqueued_ns, item.started_ns, links=[item.call])
        if item.solo:
            with tracing.span("gateway.backend", {"gateway.batch.requests": 1, "gateway.batch.rows": table.n_rows,
                                                  "gateway.batch.solo_retry": True}):
                return self._predict(item.table, item.params)
        if item.error is not None:
            raise item.error
        assert item.result is not None
        return item.result

    def snapshot(self) -> dict[str, Any]:
        """Counters for the metrics surface: batch sizes and queue waits since start."""
        with self._cond:
            s = self._stats
            return {
                "model": self.name,
                "max_size": self.max_size,
                "max_wait_ms": self.max_wait_s * 1e3,
                "slots": self.slots,
                "calls": s.calls,
                "requests": s.requests,
                "rows": s.rows,
                "batched_calls": s.batched_calls,
                "solo_retries": s.solo_retries,
                "overflow_calls": s.overflow_calls,
                "mean_rows_per_call": s.rows / s.calls if s.calls else 0.0,
                "mean_requests_per_call": s.requests / s.calls if s.calls else 0.0,
                "wait_mean_ms": s.wait_total_ms / s.requests if s.requests else 0.0,
                "wait_max_ms": s.wait_max_ms,
                "wait_ms_buckets": _buckets(WAIT_BUCKETS_MS, s.wait_hist),
                "rows_per_call_buckets": _buckets(SIZE_BUCKETS, s.size_hist),
            }

    def _await_turn(self, item: _Item) -> list[_Item] | None:
        """Hold the lock's condition until another leader served `item` (None) or it leads."""
        deadline = item.enqueued + self.max_wait_s
        while True:
            if item.done:
                return None
            queue = self._queues.get(item.key)
            if not item.taken and queue and queue[0] is item:
                now = time.monotonic()
                if self._inflight < self.slots or now >= deadline:
                    overflow = self._inflight >= self.slots
                    batch = self._take(queue)
                    if not queue:
                        del self._queues[item.key]
                    self._inflight += 1
                    self._record_start(batch, now, overflow=overflow)
                    self._cond.notify_all()  # the next in line is now the head of its queue
                    return batch
                self._cond.wait(deadline - now)
            else:
                self._cond.wait()

    def _take(self, queue: deque[_Item]) -> list[_Item]:
        batch = [queue.popleft()]
        rows = batch[0].table.n_rows
        while queue and rows + queue[0].table.n_rows <= self.max_size:
            rows += queue[0].table.n_rows
            batch.append(queue.popleft())
        for member in batch:
            member.taken = True
        return batch

    def _run(self, batch: list[_Item]) -> None:
        """One backend call for the batch; outside the lock. Every item ends done."""
        if not tracing.enabled():
            self._call(batch)
            return
        attributes = {"gateway.batch.requests": len(batch), "gateway.batch.rows": sum(i.table.n_rows for i in batch)}
        with tracing.span("gateway.backend", attributes, links=[member.trace for member in batch]):
            call = tracing.current()
            for member in batch:
                member.call = call
            self._call(batch)

    def _call(self, batch: list[_Item]) -> None:
        try:
            if len(batch) == 1:
                only = batch[0]
                try:
                    only.result = self._predict(only.table, only.params)
                except BaseException as exc:
                    only.error = exc
                return
            try:
                merged = _concat([i.table for i in batch])
                predictions = self._predict(merged, batch[0].params)
                if len(predictions) != merged.n_rows:
                    raise ValueError(f"{len(predictions)} predictions for {merged.n_rows} rows")
            except _NO_SOLO_RETRY as exc:
                for member in batch:
                    member.error = exc
            except Exception:
                for member in batch:
                    member.solo = True
            except BaseException as exc:  # e.g. SystemExit in the leader: nobody may wait forever
                for member in batch:
                    member.error = exc
                raise
            else:
                start = 0
                for member in batch:
                    member.result = predictions[start:start + member.table.n_rows]
                    start += member.table.n_rows
        finally:
            with self._cond:
                self._inflight -= 1
                if batch[0].solo:
                    self._stats.solo_retries += len(batch)
                for member in batch:
                    member.done = True
                self._cond.notify_all()

    def _record_start(self, batch: list[_Item], now: float, *, overflow: bool) -> None:
        s = self._stats
        rows = sum(i.table.n_rows for i in batch)
        s.calls += 1
        s.requests += len(batch)
        s.rows += rows
        s.batched_calls += len(batch) > 1
        s.overflow_calls += overflow
        s.size_hist[bisect.bisect_left(SIZE_BUCKETS, rows)] += 1
        started_ns = tracing.now_ns()
        for member in batch:
            member.started_ns = started_ns
            wait_ms = (now - member.enqueued) * 1e3
            s.wait_total_ms += wait_ms
            s.wait_max_ms = max(s.wait_max_ms, wait_ms)
            s.wait_hist[bisect.bisect_left(WAIT_BUCKETS_MS, wait_ms)] += 1
        if self._on_batch is not None:
            self._on_batch(rows, max(now - member.enqueued for member in batch))


def _key(table: Table, params: dict[str, Any]) -> Hashable:
    """Requests may share a call only with identical params and the same columns in order."""
    try:
        frozen: Hashable = tuple(sorted(params.items()))
        hash(frozen)
    except TypeError:  # unhashable param values: compare by their text
        frozen = repr(sorted(params.items(), key=lambda kv: kv[0]))
    return (frozen, tuple(table.columns), table.from_text)


def _concat(tables: list[Table]) -> Table:
    columns: dict[str, list[Any]] = {name: [] for name in tables[0].columns}
    for table in tables:
        for name, values in table.columns.items():
            columns[name].extend(values)
    return Table(columns, sum(t.n_rows for t in tables), tables[0].from_text)


def _buckets(bounds: tuple[float, ...], counts: list[int]) -> dict[str, int]:
    labels = [f"<={b:g}" for b in bounds] + [f">{bounds[-1]:g}"]
    return dict(zip(labels, counts, strict=True))
