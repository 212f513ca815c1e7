"""rpy2 inside real Gunicorn workers: R starts per worker after the fork, threads share it safely,
R's errors leave the worker serving, and an R crash costs only the worker it happened in.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.runtime import stack
from tests.integration.conftest import Stack, start_stack
from tests.integration.r_models import build_r_store, r_predict

MODELS = {name: {"backend": "rpy2", "timeout_s": 20} for name in ("mtcars", "fragile", "crashy")}
ROWS = [
    {"wt": 2.62, "hp": 110, "cyl": 6, "am": "manual"},
    {"wt": 3.215, "hp": 110, "cyl": 6, "am": "auto"},
    {"wt": 0.123456789012, "hp": 245, "cyl": 8, "am": "auto"},
]


@pytest.fixture(scope="module")
def r_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_r_store(tmp_path_factory.mktemp("r") / "store")


@pytest.fixture(scope="module")
def gw(r_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with start_stack(tmp_path_factory.mktemp("rpy2stack"), MODELS, {"workers": 2, "threads": 4},
                     store=r_store) as running:
        yield running


def test_concurrent_clients_get_rs_own_predictions(gw: Stack, r_store: Path) -> None:
    batches = [ROWS[: 1 + i % 3] for i in range(8)]
    expected = {n: r_predict(r_store, "mtcars", ROWS[:n]) for n in (1, 2, 3)}
    wrong: list[str] = []
    answered = 0
    lock = threading.Lock()

    def client(rows: list[dict]) -> None:
        nonlocal answered
        with gw.http.__class__() as http:
            http.trust_env = False
            for _ in range(15):
                reply = http.post(gw.url + "/models/mtcars/predict", json=rows, timeout=30)
                got = reply.json().get("predictions") if reply.status_code == 200 else reply.text
                with lock:
                    answered += 1
                    if got != expected[len(rows)]:
                        wrong.append(f"{reply.status_code} {got}")

    threads = [threading.Thread(target=client, args=(rows,)) for rows in batches]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert (answered, wrong) == (8 * 15, [])
    assert gw.get("/models/mtcars").json()["backend"] == "rpy2"


def test_r_error_is_422_with_rs_words_and_no_worker_dies(gw: Stack) -> None:
    before = gw.gunicorn_workers()
    reply = gw.post("/models/fragile/predict", json=[{"x": 1}, {"x": -3}])
    assert reply.status_code == 422
    assert reply.json()["detail"] == "x must be non-negative, got -3"
    assert gw.post("/models/fragile/predict", json=[{"x": 1.25}]).json()["predictions"] == [2.5]
    assert gw.gunicorn_workers() == before


def test_an_r_crash_costs_one_worker_and_gunicorn_brings_it_back(gw: Stack) -> None:
    before = gw.gunicorn_workers()
    reply = gw.post("/models/crashy/predict", json=[{"x": 999}])
    assert reply.status_code in (502, 503)  # the retry may reach the other worker and crash it too
    assert reply.headers["Content-Type"] == "application/problem+json"
    deadline = time.monotonic() + 30
    while True:  # whole again: as many workers as before, new processes each with a fresh R
        now = gw.gunicorn_workers()
        if len(now) == len(before) and now != before and gw.get("/readyz").status_code == 200:
            break
        assert time.monotonic() < deadline, f"Gunicorn did not replace the crashed worker: {before} → {now}"
        time.sleep(0.2)
    assert gw.post("/models/crashy/predict", json=[{"x": 1}]).json()["predictions"] == [1]
    assert stack.pids(gw.run_dir)["gunicorn"] == gw.pids()["gunicorn"]  # the master lived on
