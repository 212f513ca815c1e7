"""The micro-batcher under real threads, against a fake backend that records every call."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from gateway.backends.python import DEFAULT_BATCH_ROWS as PYTHON_DEFAULT_ROWS
from gateway.batching import MicroBatcher
from gateway.codecs import Table
from gateway.errors import GatewayTimeout, ModelError
from gateway.registry import build_registry
from gateway.runtime.plan import make_plan
from gateway.service import PredictionService
from gateway.settings import load_settings, settings_from_dict


class FakeBackend:
    """predict: x → (tag, x) per row, so a reply names the row it came from.

    A call blocks until `gate` is set, which lets a test hold a call in flight while it queues
    others behind it; x < 0 raises, as a model would on bad data.
    """

    def __init__(self) -> None:
        self.calls: list[tuple[Table, dict[str, Any]]] = []
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()
        self.delay_s = 0.0  # how long a call takes, so concurrent callers overlap
        self._lock = threading.Lock()

    def predict(self, table: Table, params: dict[str, Any]) -> list[Any]:
        with self._lock:
            self.calls.append((table, params))
        self.entered.set()
        assert self.gate.wait(10), "the test never opened the gate"
        if self.delay_s:
            threading.Event().wait(self.delay_s)
        xs = table.columns["x"]
        if any(x < 0 for x in xs):
            raise ModelError(f"x must be non-negative, got {min(xs)}")
        return [(params.get("type", "response"), x) for x in xs]


def table(*xs: float, extra: str | None = None) -> Table:
    columns: dict[str, list[Any]] = {"x": list(xs)}
    if extra is not None:
        columns[extra] = [0.0] * len(xs)
    return Table(columns, len(xs))


def started(fn: Callable[[], Any]) -> tuple[threading.Thread, dict[str, Any]]:
    out: dict[str, Any] = {}

    def run() -> None:
        try:
            out["value"] = fn()
        except Exception as exc:
            out["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    return thread, out


def queue_behind_a_call(batcher: MicroBatcher, fake: FakeBackend,
                        requests: list[tuple[Table, dict[str, Any]]]) -> list[dict[str, Any]]:
    """Hold one call in flight, queue `requests` behind it, release; each request's outcome."""
    fake.gate.clear()
    first, _ = started(lambda: batcher.submit(table(1000.0), {}))
    assert fake.entered.wait(5)
    threads = []
    for t, p in requests:
        threads.append(started(lambda t=t, p=p: batcher.submit(t, p)))
        # each request must be queued before the next one, so the queue order is known
        count = len(threads)
        wait_until(lambda n=count: queued(batcher) == n)
    fake.gate.set()
    first.join(10)
    for thread, _ in threads:
        thread.join(10)
    return [out for _, out in threads]


def queued(batcher: MicroBatcher) -> int:
    with batcher._cond:
        return sum(len(q) for q in batcher._queues.values())


def wait_until(condition: Callable[[], bool], budget: int = 5000) -> None:
    event = threading.Event()
    for _ in range(budget):
        if condition():
            return
        event.wait(0.001)
    raise AssertionError("condition never held")


def test_a_lone_request_is_dispatched_without_queueing() -> None:
    fake = FakeBackend()
    batcher = MicroBatcher(fake.predict, max_size=64, max_wait_ms=1000, slots=1)
    assert batcher.submit(table(1.0, 2.0), {}) == [("response", 1.0), ("response", 2.0)]
    stats = batcher.snapshot()
    # a 1 s window: any wait at all would show; the lone request recorded none
    assert stats["wait_max_ms"] == 0.0
    assert (stats["calls"], stats["requests"], stats["rows"]) == (1, 1, 2)


def test_queued_requests_share_one_call_and_each_gets_its_own_rows_in_order() -> None:
    fake = FakeBackend()
    batcher = MicroBatcher(fake.predict, max_size=64, max_wait_ms=5000, slots=1)
    requests = [(table(1.0, 2.0), {}), (table(3.0), {}), (table(4.0, 5.0, 6.0), {})]
    outcomes = queue_behind_a_call(batcher, fake, requests)
    assert [o["value"] for o in outcomes] == [
        [("response", 1.0), ("response", 2.0)],
        [("response", 3.0)],
        [("response", 4.0), ("response", 5.0), ("response", 6.0)],
    ]
    assert len(fake.calls) == 2  # the held call, then one call for the three queued requests
    assert fake.calls[1][0].columns["x"] == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    assert batcher.snapshot()["batched_calls"] == 1


def test_different_params_or_columns_never_share_a_call() -> None:
    fake = FakeBackend()
    batcher = MicroBatcher(fake.predict, max_size=64, max_wait_ms=5000, slots=1)
    requests = [
        (table(1.0), {"type": "response"}),
        (table(2.0), {"type": "prob"}),
        (table(3.0), {"type": "response"}),
        (table(4.0, extra="y"), {"type": "response"}),
        (table(5.0), {"type": "prob"}),
    ]
    outcomes = queue_behind_a_call(batcher, fake, requests)
    assert [o["value"] for o in outcomes] == [
        [("response", 1.0)], [("prob", 2.0)], [("response", 3.0)], [("response", 4.0)], [("prob", 5.0)]
    ]
    for call_table, params in fake.calls[1:]:
        kind = params.get("type", "response")
        assert all(x in {"response": {1.0, 3.0, 4.0}, "prob": {2.0, 5.0}}[kind] for x in call_table.columns["x"])
        assert list(call_table.columns) in (["x"], ["x", "y"])
        assert ("y" in call_table.columns) == (call_table.columns["x"] == [4.0])
    assert sorted(c[0].columns["x"] for c in fake.calls[1:]) == [[1.0, 3.0], [2.0, 5.0], [4.0]]


def test_a_poisoned_request_fails_alone_and_its_neighbours_succeed() -> None:
    fake = FakeBackend()
    batcher = MicroBatcher(fake.predict, max_size=64, max_wait_ms=5000, slots=1)
    outcomes = queue_behind_a_call(batcher, fake, [(table(1.0), {}), (table(2.0, -7.0), {}), (table(3.0), {})])
    assert outcomes[0]["value"] == [("response", 1.0)]
    assert isinstance(outcomes[1]["error"], ModelError)
    assert "got -7" in outcomes[1]["error"].detail
    assert outcomes[2]["value"] == [("response", 3.0)]
    # the shared call failed, then each request ran alone, in its own thread
    assert fake.calls[1][0].columns["x"] == [1.0, 2.0, -7.0, 3.0]
    assert sorted(c[0].columns["x"] for c in fake.calls[2:]) == [[1.0], [2.0, -7.0], [3.0]]
    assert batcher.snapshot()["solo_retries"] == 3


def test_a_timeout_is_not_retried_alone() -> None:
    calls: list[int] = []

    def predict(t: Table, params: dict[str, Any]) -> list[Any]:
        calls.append(t.n_rows)
        raise GatewayTimeout("too slow")

    fake = FakeBackend()

    def held_then_timeout(t: Table, params: dict[str, Any]) -> list[Any]:
        return fake.predict(t, params) if t.columns["x"] == [1000.0] else predict(t, params)

    batcher = MicroBatcher(held_then_timeout, max_size=64, max_wait_ms=5000, slots=1)
    outcomes = queue_behind_a_call(batcher, fake, [(table(1.0), {}), (table(2.0), {})])
    assert all(isinstance(o["error"], GatewayTimeout) for o in outcomes)
    assert calls == [2]  # one shared call, no solo retries that would time out again


def test_max_size_caps_the_rows_of_a_call() -> None:
    fake = FakeBackend()
    batcher = MicroBatcher(fake.predict, max_size=4, max_wait_ms=5000, slots=1)
    requests = [(table(1.0, 2.0), {}), (table(3.0), {}), (table(4.0, 5.0), {}), (table(6.0), {})]
    outcomes = queue_behind_a_call(batcher, fake, requests)
    assert [o["value"] for o in outcomes] == [[("response", x) for x in t.columns["x"]] for t, _ in requests]
    assert [c[0].columns["x"] for c in fake.calls[1:]] == [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]
    assert all(c[0].n_rows <= 4 for c in fake.calls)


def test_max_size_one_calls_the_backend_directly() -> None:
    fake = FakeBackend()
    batcher = MicroBatcher(fake.predict, max_size=1, max_wait_ms=5000, slots=1)
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda i: batcher.submit(table(float(i)), {}), range(40)))
    assert results == [[("response", float(i))] for i in range(40)]
    assert len(fake.calls) == 40
    assert batcher.snapshot()["calls"] == 0  # the off path keeps no books


def test_a_queued_request_leads_after_max_wait_even_with_every_slot_busy() -> None:
    fake = FakeBackend()
    batcher = MicroBatcher(fake.predict, max_size=64, max_wait_ms=20, slots=1)
    fake.gate.clear()
    first, _ = started(lambda: batcher.submit(table(1000.0), {}))
    assert fake.entered.wait(5)
    fake.entered.clear()
    second, out = started(lambda: batcher.submit(table(1.0), {}))
    assert fake.entered.wait(5)  # the second call started while the first is still held
    assert batcher.snapshot()["overflow_calls"] == 1
    fake.gate.set()
    first.join(10)
    second.join(10)
    assert out["value"] == [("response", 1.0)]
    assert batcher.snapshot()["wait_max_ms"] >= 20


@pytest.mark.parametrize("slots", [1, 2])
def test_sixteen_threads_fifty_requests_each_lose_and_swap_nothing(slots: int) -> None:
    fake = FakeBackend()
    fake.delay_s = 0.001
    batcher = MicroBatcher(fake.predict, max_size=32, max_wait_ms=2, slots=slots)

    def client(worker: int) -> list[bool]:
        ok = []
        for i in range(50):
            n = 1 + (worker + i) % 3
            xs = [float(worker * 1000 + i * 10 + k) for k in range(n)]
            kind = "prob" if (worker + i) % 4 == 0 else "response"
            ok.append(batcher.submit(table(*xs), {"type": kind}) == [(kind, x) for x in xs])
        return ok

    with ThreadPoolExecutor(16) as pool:
        results = [ok for oks in pool.map(client, range(16)) for ok in oks]
    assert len(results) == 800
    assert all(results)
    stats = batcher.snapshot()
    assert stats["requests"] == 800
    assert stats["rows"] == sum(c[0].n_rows for c in fake.calls)
    assert all(c[0].n_rows <= 32 for c in fake.calls)
    assert stats["calls"] == len(fake.calls) < 800  # some requests did share a call


def test_batch_size_unset_means_the_backend_default_and_env_can_set_it(tmp_path: Path) -> None:
    raw = {"models": {"iris": {"backend": "python"}, "mtcars": {"backend": "python", "batch": {"max_wait_ms": 5}}}}
    settings = settings_from_dict(raw, base_dir=tmp_path)
    assert settings.models["iris"].batch.max_size is None
    assert settings.models["mtcars"].batch.max_wait_ms == 5.0
    env = {"GATEWAY_MODELS__IRIS__BATCH__MAX_SIZE": "1"}
    assert load_settings(None, env=env).models["iris"].batch.max_size == 1


def test_the_service_builds_one_batcher_per_version_with_the_backend_default(model_store: Path, tmp_path: Path) -> None:
    raw = {"store": {"path": str(model_store)},
           "models": {"iris": {"backend": "python"}, "churn": {"backend": "python", "batch": {"max_size": 1}}}}
    settings = settings_from_dict(raw, base_dir=tmp_path)
    service = PredictionService(build_registry(settings, make_plan(settings)), settings)
    iris, churn = service.registry.get("iris"), service.registry.get("churn")
    batcher = service.batcher(iris, iris.backend())
    assert batcher is service.batcher(iris, iris.backend())
    assert (batcher.max_size, batcher.slots) == (PYTHON_DEFAULT_ROWS, 1)
    assert not service.batcher(churn, churn.backend()).enabled
    body = b'[{"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}]'
    assert service.predict("iris", None, body, "application/json").predictions == ["setosa"]
    assert [s["requests"] for s in service.batching_snapshot() if s["model"].startswith("iris/")] == [1]
