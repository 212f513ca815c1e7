"""Bulkheads on a real stack: twelve clients of a slow in-process R model (rpy2) do not starve an
unrelated Python model. Before, they held every Gunicorn thread of every worker (each waiting for
its worker's one R) and an iris predict waited seconds behind them."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
import requests

from gateway.demo import build_iris
from tests.integration.conftest import Stack, p99_latency, start_stack
from tests.integration.r_models import FUNCTION_MODELS, rscript

IRIS_ROW = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}
SLOW_S = 0.5  # each call of the slow model sleeps this long in R
HEAVY_CLIENTS = 12
SAMPLES = 80


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    store = tmp_path_factory.mktemp("bulkhead-store")
    build_iris(store)
    rscript(f"gatewayr::save_model({FUNCTION_MODELS['slow']}, commandArgs(TRUE)[1], 'slow', "
            "sample = data.frame(x = c(1.5, 2)))", str(store))
    models = {"iris": {"backend": "python"},
              "slow": {"backend": "rpy2", "timeout_s": 20, "max_in_flight": 1}}
    with start_stack(tmp_path_factory.mktemp("bulkheads"), models, {"workers": 2, "threads": 4},
                     store=store) as running:
        yield running


def test_a_slow_models_clients_do_not_starve_another_model(gw: Stack) -> None:
    idle = p99_latency(gw, "/models/iris/predict", [IRIS_ROW], SAMPLES)
    stop = threading.Event()
    statuses: list[int] = []
    retry_after: set[str] = set()

    def heavy() -> None:
        with requests.Session() as http:
            http.trust_env = False
            while not stop.is_set():
                reply = http.post(gw.url + "/models/slow/predict", json=[{"x": SLOW_S}], timeout=60)
                statuses.append(reply.status_code)
                if reply.status_code == 503:
                    retry_after.add(reply.headers.get("Retry-After", ""))
                    stop.wait(float(reply.headers.get("Retry-After", 1)))  # a polite client

    clients = [threading.Thread(target=heavy) for _ in range(HEAVY_CLIENTS)]
    for client in clients:
        client.start()
    try:
        deadline = time.monotonic() + 30
        while statuses.count(200) < 2 and time.monotonic() < deadline:  # the load is on
            time.sleep(0.05)
        loaded = p99_latency(gw, "/models/iris/predict", [IRIS_ROW], SAMPLES)
    finally:
        stop.set()
        for client in clients:
            client.join()
    print(f"iris p99 idle {idle * 1000:.1f} ms, with {HEAVY_CLIENTS} clients of 'slow' {loaded * 1000:.1f} ms; "
          f"slow: {statuses.count(200)} x 200, {statuses.count(503)} x 503")
    assert set(statuses) <= {200, 503} and statuses.count(200) >= 2, statuses
    assert statuses.count(503) and retry_after == {"1"}
    assert loaded <= 3 * idle, f"iris p99 went from {idle * 1000:.1f} ms to {loaded * 1000:.1f} ms"
