"""Pools that follow the load, on a real stack: a Plumber pool goes from min to max workers under
a bounded load and back to min once idle; a pool at min 0 is ready on demand and its first
request starts a worker and succeeds.

The workers over time are printed (`pytest -s`); the scaler's own log says why it acted.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from tests.integration.conftest import Stack, start_stack
from tests.integration.r_models import FUNCTION_MODELS, rscript

MAX = 3
IDLE_S = 4.0
CLIENTS = 6  # Gunicorn: 2 workers x 4 threads, so every client is served at once
SLEEP_S = 0.2  # each R call of the slow model sleeps this long


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    store = tmp_path_factory.mktemp("autoscale-store")
    for name in ("busy", "cold", "brief"):
        rscript(f"gatewayr::save_model({FUNCTION_MODELS['slow']}, commandArgs(TRUE)[1], '{name}', "
                "sample = data.frame(x = c(0.5, 2)))", str(store))
    models = {
        "busy": {"backend": "plumber", "timeout_s": 20, "workers": {"min": 1, "max": MAX, "idle_s": IDLE_S}},
        "cold": {"backend": "plumber", "timeout_s": 20, "cold_start_s": 60,
                 "workers": {"min": 0, "max": 1, "idle_s": 600}},
        # No R starts within 50 ms (Rscript alone takes longer): the first call gets the 503.
        "brief": {"backend": "plumber", "timeout_s": 20, "cold_start_s": 0.05,
                  "workers": {"min": 0, "max": 1, "idle_s": 600}},
    }
    with start_stack(tmp_path_factory.mktemp("autoscale"), models, {"workers": 2, "threads": 4},
                     store=store) as running:
        yield running


def workers(gw: Stack, model: str) -> dict[str, Any]:
    """The model's workers in /readyz: live, total and, from the scaler, running/starting/stopped."""
    return gw.get("/readyz").json()["models"][model]["workers"]


def poll(what: str, until: Callable[[], bool], deadline_s: float) -> None:
    deadline = time.monotonic() + deadline_s
    while not until():
        assert time.monotonic() < deadline, f"gave up after {deadline_s:g} s waiting for {what}"
        time.sleep(0.2)


def test_a_pool_at_min_0_is_ready_on_demand_and_its_first_request_starts_a_worker(gw: Stack) -> None:
    ready = gw.get("/readyz")
    entry = ready.json()["models"]["cold"]
    assert ready.status_code == 200, ready.text
    assert entry["ready"] and entry["on_demand"] and "ready on demand" in entry["detail"], entry
    assert entry["workers"]["live"] == 0 and entry["workers"].get("running", 0) == 0, entry

    started = time.monotonic()
    reply = gw.post("/models/cold/predict", json=[{"x": 0.01}], timeout=90)
    took = time.monotonic() - started
    assert reply.status_code == 200, reply.text
    assert reply.json()["predictions"] == [0.01]
    print(f"\ncold start: the first request to a pool at min 0 answered 200 after {took:.2f} s")
    poll("the started worker in /readyz", lambda: workers(gw, "cold").get("running") == 1, 30)
    after = gw.get("/readyz").json()["models"]["cold"]
    assert after["ready"] and "on_demand" not in after and after["workers"]["live"] == 1, after


def test_a_call_that_finds_no_worker_within_cold_start_s_is_a_503_with_retry_after_and_starts_one(
        gw: Stack) -> None:
    body = {"dataframe_records": [{"x": 0.01}]}
    first = gw.post("/models/brief/invocations", json=body)
    assert first.status_code == 503, first.text
    assert first.headers["Retry-After"] == "5"
    assert first.json()["error_code"] == "TEMPORARILY_UNAVAILABLE"  # MLflow's envelope: MLflow was called
    assert "cold_start_s = 0.05 s" in first.json()["message"]
    replies: list[requests.Response] = []
    poll("a worker started by the call that gave up",
         lambda: replies.append(gw.post("/models/brief/invocations", json=body)) or replies[-1].status_code == 200,
         60)
    assert replies[-1].json() == {"predictions": [0.01]}
    print(f"\ncold start with cold_start_s = 0.05: 503 Retry-After 5, then {len(replies)} retries to the first 200")


def test_a_pool_grows_to_max_under_load_and_shrinks_to_min_when_idle(gw: Stack) -> None:
    timeline: list[tuple[float, dict[str, Any]]] = []
    t0 = time.monotonic()

    def sample() -> dict[str, Any]:
        seen = workers(gw, "busy")
        if not timeline or timeline[-1][1] != seen:
            timeline.append((time.monotonic() - t0, seen))
        return seen

    poll("min workers running", lambda: sample().get("running") == 1, 30)
    stop = threading.Event()
    statuses: list[int] = []

    def client() -> None:
        with requests.Session() as http:
            http.trust_env = False
            while not stop.is_set():
                reply = http.post(gw.url + "/models/busy/predict", json=[{"x": SLEEP_S}], timeout=60)
                statuses.append(reply.status_code)

    clients = [threading.Thread(target=client) for _ in range(CLIENTS)]
    load_from = time.monotonic() - t0
    for thread in clients:
        thread.start()
    try:
        poll(f"{MAX} workers running under load", lambda: sample().get("running") == MAX, 90)
        loaded_at = len(statuses)
        poll("20 more answers at max", lambda: sample() is not None and len(statuses) >= loaded_at + 20, 60)
    finally:
        stop.set()
        for thread in clients:
            thread.join()
    idle_from = time.monotonic() - t0
    poll("the pool back at min once idle", lambda: sample().get("running") == 1 and sample().get("live") == 1,
         IDLE_S + 60)
    print(f"\nworkers of 'busy' over time (min 1, max {MAX}, idle_s {IDLE_S:g}; {CLIENTS} clients "
          f"from {load_from:.1f} s to {idle_from:.1f} s, each call {SLEEP_S} s in R):")
    for at, seen in timeline:
        print(f"  {at:6.1f} s  running {seen.get('running')}  starting {seen.get('starting')}  "
              f"stopped {seen.get('stopped')}  live {seen['live']}/{seen['total']}")
    print(f"  {len(statuses)} requests under load: {statuses.count(200)} x 200")
    assert statuses and set(statuses) == {200}, f"not every request under load answered 200: {set(statuses)}"
    # The last clients finish their calls just before idle_from: fewer calls than workers a
    # moment earlier, so the first stop may come up to that moment sooner than idle_s after it.
    first_stop = next(at for at, seen in timeline if at > idle_from and seen.get("running", MAX) < MAX)
    assert first_stop - idle_from >= IDLE_S - 2, f"a worker stopped {first_stop - idle_from:.1f} s after the load"
    scrape = gw.get("/metrics").text
    assert 'gateway_pool_workers{model="busy",state="running"} 1.0' in scrape
    assert f'gateway_pool_workers{{model="busy",state="stopped"}} {MAX - 1}.0' in scrape
