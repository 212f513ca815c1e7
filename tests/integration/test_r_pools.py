"""R models in real Plumber pools under supervisord, behind the internal NGINX, through the gateway.

One stack serves every R model here (starting R pools costs seconds); tests that break workers
wait for the pool to be whole again before they end, so the next test starts from a full pool.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.runtime import stack
from tests.integration.conftest import Stack, start_stack
from tests.integration.r_models import build_r_store, r_predict

MTCARS_ROWS = [
    {"wt": 2.62, "hp": 110, "cyl": 6, "am": "manual"},
    {"wt": 3.215, "hp": 110, "cyl": 6, "am": "auto"},
    {"wt": 0.123456789012, "hp": 245, "cyl": 8, "am": "auto"},
]
TRANSMISSION_ROWS = [
    {"mpg": 21.0, "hp": 110, "wt": 2.62, "engine": "V-shaped"},
    {"mpg": 32.4, "hp": 66, "wt": 2.2, "engine": "straight"},
    {"mpg": 14.3, "hp": 245, "wt": 3.57, "engine": "V-shaped"},
]
MODELS = {
    "mtcars": {"backend": "plumber", "workers": 2, "timeout_s": 20},
    "transmission": {"backend": "plumber", "workers": 2, "timeout_s": 20},
    "fragile": {"backend": "plumber", "workers": 1, "timeout_s": 20},
    "slow": {"backend": "plumber", "workers": 2, "timeout_s": 1},
    "spinning": {"backend": "plumber", "workers": 1, "timeout_s": 1, "batch": {"max_size": 1}},
    "crashy": {"backend": "plumber", "workers": 2, "timeout_s": 20},
    "cars": {"backend": "plumber", "workers": 1, "predict_route": "/predict", "input_format": "records"},
}
RESTART_BUDGET_S = 5.0


@pytest.fixture(scope="module")
def r_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_r_store(tmp_path_factory.mktemp("r") / "store")


@pytest.fixture(scope="module")
def gw(r_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with start_stack(tmp_path_factory.mktemp("rstack"), MODELS, store=r_store) as running:
        yield running


def wait_pool_whole(gw: Stack, model: str, budget_s: float = 15.0) -> float:
    """Seconds until /models/<model> reports every worker live again."""
    start = time.monotonic()
    while time.monotonic() - start < budget_s:
        workers = gw.get(f"/models/{model}").json().get("workers", {})
        if workers and workers["live"] == workers["total"]:
            return time.monotonic() - start
        time.sleep(0.1)
    raise AssertionError(f"pool {model} not whole after {budget_s} s")


def wait_gone(pid: int, budget_s: float = 5.0) -> None:
    deadline = time.monotonic() + budget_s
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.02)
    raise AssertionError(f"pid {pid} still alive")


def worker_pids(gw: Stack, model: str) -> dict[str, int]:
    return {name: pid for name, pid in gw.pids().items() if name.startswith(f"plumber-{model}-")}


def test_lm_predictions_equal_rs_own_predict(gw: Stack, r_store: Path) -> None:
    reply = gw.post("/models/mtcars/predict", json=MTCARS_ROWS)
    assert reply.status_code == 200, reply.text
    doc = reply.json()
    assert (doc["model"], doc["version"]) == ("mtcars", "1")
    want = r_predict(r_store, "mtcars", MTCARS_ROWS)
    assert len(doc["predictions"]) == len(want)
    for got, expected in zip(doc["predictions"], want, strict=True):
        assert abs(got - expected) <= 1e-12 * max(1.0, abs(expected))


def test_every_request_form_gives_the_same_r_predictions(gw: Stack) -> None:
    records = gw.post("/models/mtcars/predict", json=MTCARS_ROWS).json()["predictions"]
    columns = {c: [r[c] for r in MTCARS_ROWS] for c in MTCARS_ROWS[0]}
    csv = "wt,hp,cyl,am\n" + "\n".join(f"{r['wt']},{r['hp']},{r['cyl']},{r['am']}" for r in MTCARS_ROWS)
    forms = [
        {"json": {"instances": MTCARS_ROWS}},
        {"json": {"inputs": columns}},
        {"json": {"dataframe_split": {"columns": list(columns), "data": [list(r.values()) for r in MTCARS_ROWS]}}},
        {"data": csv, "headers": {"Content-Type": "text/csv"}},
    ]
    for form in forms:
        reply = gw.post("/models/mtcars/predict", **form)
        assert reply.status_code == 200, reply.text
        assert reply.json()["predictions"] == records


def test_one_row_is_a_list_of_one(gw: Stack) -> None:
    assert len(gw.post("/models/mtcars/predict", json=MTCARS_ROWS[:1]).json()["predictions"]) == 1


def test_classifier_labels_and_probabilities_keyed_by_level(gw: Stack, r_store: Path) -> None:
    labels = gw.post("/models/transmission/predict", json=TRANSMISSION_ROWS).json()["predictions"]
    assert labels == r_predict(r_store, "transmission", TRANSMISSION_ROWS)
    reply = gw.post("/models/transmission/predict", json={"instances": TRANSMISSION_ROWS, "params": {"type": "prob"}})
    assert reply.status_code == 200, reply.text
    assert reply.json()["predictions"] == r_predict(r_store, "transmission", TRANSMISSION_ROWS, prob=True)


def test_r_models_describe_themselves_like_python_ones(gw: Stack) -> None:
    doc = gw.get("/models/transmission").json()
    assert (doc["backend"], doc["language"]) == ("plumber", "r")
    assert doc["workers"] == {"live": 2, "total": 2}
    assert {c["name"]: c["levels"] for c in doc["inputs"]}["engine"] == ["V-shaped", "straight"]
    # The values randomForest's predict accepts, found at registration; R's default first-class.
    assert doc["params"] == {"type": ["response", "prob", "vote", "class"]}
    assert doc["param_defaults"] == {"type": "response"}
    listed = {m["name"]: m for m in gw.get("/models").json()["models"]}
    assert listed["mtcars"]["language"] == "r" and listed["mtcars"]["ready"] is True


@pytest.mark.parametrize(
    ("row", "detail"),
    [
        ({"hp": 110, "cyl": 6, "am": "manual"}, "column 'wt' is missing"),
        ({"wt": 2.6, "hp": 110, "cyl": 6, "am": "semi"},
         "column 'am' has unknown level 'semi' at row 1; known levels: auto, manual"),
        ({"wt": "heavy", "hp": 110, "cyl": 6, "am": "auto"}, "column 'wt' expects double, got 'heavy' at row 1"),
    ],
)
def test_bad_rows_get_the_same_422_as_python(gw: Stack, row: dict, detail: str) -> None:
    reply = gw.post("/models/mtcars/predict", json=[row])
    assert reply.status_code == 422
    assert reply.headers["Content-Type"] == "application/problem+json"
    assert reply.json()["detail"] == detail
    assert reply.json()["model"] == "mtcars"


def test_r_error_is_422_with_rs_message_and_the_worker_serves_on(gw: Stack) -> None:
    (pid_before,) = worker_pids(gw, "fragile").values()
    reply = gw.post("/models/fragile/predict", json=[{"x": 1}, {"x": -3}])
    assert reply.status_code == 422
    assert reply.json()["detail"] == "x must be non-negative, got -3"
    again = gw.post("/models/fragile/predict", json=[{"x": 1.25}])
    assert again.status_code == 200
    assert again.json()["predictions"] == [2.5]
    assert worker_pids(gw, "fragile") == {"plumber-fragile-1": pid_before}  # the same process answered


def test_slow_model_is_504_and_the_pool_keeps_serving(gw: Stack) -> None:
    started = time.monotonic()
    reply = gw.post("/models/slow/predict", json=[{"x": 8}])  # holds its worker for 8 s
    elapsed = time.monotonic() - started
    assert reply.status_code == 504
    assert "timeout of 1 s" in reply.json()["detail"]
    assert elapsed < 3.5  # the gateway gave up at the model's timeout, not NGINX's or Gunicorn's
    # The other worker is free. Its first predict can pass this model's 1 s timeout on a busy
    # host (a cold R process), which is the timeout working, not the pool failing: poll for it.
    deadline = time.monotonic() + 30
    while (quick := gw.post("/models/slow/predict", json=[{"x": 0.01}])).status_code != 200:
        assert quick.status_code == 504 and time.monotonic() < deadline, quick.text
    assert quick.json()["predictions"] == [0.01]
    assert time.monotonic() - started < 8, "the answer waited for the busy worker instead of the free one"
    wait_pool_whole(gw, "slow")


def test_an_r_loop_past_its_timeout_is_stopped_by_r_and_the_worker_serves_on(gw: Stack) -> None:
    """R's time limit frees the only worker at the timeout; without it, the next request would
    queue behind the loop until the watchdog killed the worker (timeout + 10 s and more)."""
    before = worker_pids(gw, "spinning")
    started = time.monotonic()
    reply = gw.post("/models/spinning/predict", json=[{"x": 60}])
    assert reply.status_code == 504
    assert reply.json()["detail"] == "model 'spinning' did not answer within its timeout of 1 s"
    assert time.monotonic() - started < 5
    quick = gw.post("/models/spinning/predict", json=[{"x": 0.01}])
    assert quick.status_code == 200, quick.text
    assert quick.json()["predictions"] == [0.01]
    assert worker_pids(gw, "spinning") == before  # the same R process: stopped by R, not recycled


def test_kill_9_one_worker_while_requests_flow_loses_nothing(gw: Stack) -> None:
    errors: list[str] = []
    answered = 0
    stop = threading.Event()

    def client() -> None:
        nonlocal answered
        with gw.http.__class__() as http:
            http.trust_env = False
            while not stop.is_set():
                reply = http.post(gw.url + "/models/mtcars/predict", json=MTCARS_ROWS, timeout=30)
                if reply.status_code != 200:
                    errors.append(f"{reply.status_code} {reply.text}")
                answered += 1

    threads = [threading.Thread(target=client) for _ in range(4)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(0.5)
        victim_name, victim = sorted(worker_pids(gw, "mtcars").items())[0]
        os.kill(victim, signal.SIGKILL)
        wait_gone(victim)
        restarted_after_s = wait_pool_whole(gw, "mtcars", budget_s=RESTART_BUDGET_S + 5)
        time.sleep(0.5)  # and the restarted worker takes its share of the load
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
    assert answered > 20
    assert errors == []
    new_pid = worker_pids(gw, "mtcars")[victim_name]
    assert new_pid != victim
    assert restarted_after_s <= RESTART_BUDGET_S


def test_every_worker_down_is_503_naming_the_model_then_the_pool_recovers(gw: Stack) -> None:
    # Stopped through supervisord, not killed: a killed worker is restarted at once and can be
    # serving again (R loads in about 1 s) before the request below arrives, which made this
    # test depend on timing. A crash and its restart are the test above.
    victims = worker_pids(gw, "mtcars")
    stack._rpc(gw.run_dir, "stopProcessGroup", "plumber-mtcars", True)
    for pid in victims.values():
        wait_gone(pid)
    started = time.monotonic()
    reply = gw.post("/models/mtcars/predict", json=MTCARS_ROWS)
    assert time.monotonic() - started < 5  # an answer, not a hang
    assert reply.status_code == 503, reply.text
    assert reply.headers["Content-Type"] == "application/problem+json"
    assert "mtcars" in reply.json()["detail"]
    ready = gw.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["models"]["mtcars"]["ready"] is False
    stack._rpc(gw.run_dir, "startProcessGroup", "plumber-mtcars", False)
    deadline = time.monotonic() + 15
    while gw.post("/models/mtcars/predict", json=MTCARS_ROWS).status_code != 200:
        assert time.monotonic() < deadline, "the pool did not recover"
        time.sleep(0.2)
    assert gw.get("/readyz").status_code in (200, 503)  # the other worker may still be starting
    wait_pool_whole(gw, "mtcars")
    assert gw.get("/readyz").status_code == 200


def test_a_worker_crashing_mid_request_never_takes_the_gateway_down(gw: Stack) -> None:
    reply = gw.post("/models/crashy/predict", json=[{"x": 999}])
    assert reply.status_code in (502, 503)  # the retry on the other worker crashed it too
    assert reply.headers["Content-Type"] == "application/problem+json"
    assert "crashy" in reply.json()["detail"]
    assert gw.get("/healthz").status_code == 200
    assert gw.post("/models/mtcars/predict", json=MTCARS_ROWS).status_code == 200
    wait_pool_whole(gw, "crashy")
    assert gw.post("/models/crashy/predict", json=[{"x": 1}]).json()["predictions"] == [1]


def test_plumber_script_predicts_through_the_public_contract(gw: Stack, r_store: Path) -> None:
    coefficients = dict(
        line.split(",") for line in (r_store / "cars" / "1" / "coefficients.csv").read_text().replace('"', "")
        .splitlines()[1:]
    )
    intercept, slope = float(coefficients["intercept"]), float(coefficients["slope"])
    reply = gw.post("/models/cars/predict", json=[{"speed": 10}, {"speed": 21.5}])
    assert reply.status_code == 200, reply.text
    for got, speed in zip(reply.json()["predictions"], (10, 21.5), strict=True):
        assert got == pytest.approx(intercept + slope * speed, rel=1e-12)
    one = gw.post("/models/cars/predict", json=[{"speed": 4}]).json()["predictions"]
    assert len(one) == 1


def test_plumber_script_error_is_422_with_its_message(gw: Stack) -> None:
    reply = gw.post("/models/cars/predict", json=[{"distance": 3}])
    assert reply.status_code == 422
    assert "speed is required" in reply.json()["detail"]


def test_plumber_script_routes_pass_through_unchanged(gw: Stack) -> None:
    hello = gw.get("/plumber/cars/hello/world?greeting=hi")
    assert hello.status_code == 200
    assert hello.json() == {"message": ["hi world"]}
    assert hello.headers["X-Cars-Api"] == "1"  # the script's own filter ran
    stored = gw.post("/plumber/cars/feedback", json={"speed": 12, "observed": 30.5})
    assert stored.status_code == 201
    assert stored.json() == {"stored": {"speed": [12], "observed": [30.5]}}
    refused = gw.post("/plumber/cars/feedback", json={"speed": 12})
    assert refused.status_code == 400
    assert refused.json() == {"error": ["send speed and observed"]}
    assert refused.headers["Content-Type"].startswith("application/json")
    stats = gw.get("/plumber/cars/stats")
    assert stats.status_code == 200
    assert stats.headers["Content-Type"].startswith("text/csv")
    assert stats.text.splitlines()[0] == '"variable","min","mean","max"'
    missing = gw.get("/plumber/cars/nope")
    assert missing.status_code == 404


def test_gateway_status_shows_the_pools(gw: Stack) -> None:
    result = subprocess.run(
        [str(Path(sys.executable).parent / "gateway"), "status", "--config", str(gw.settings.config_path)],
        capture_output=True, text=True, timeout=30, check=False,
    )
    assert result.returncode == 0, result.stderr
    table = [line.split() for line in result.stdout.splitlines()]
    header = next(row for row in table if row[:1] == ["model"])
    assert header == ["model", "version", "backend", "ready", "workers"]
    rows = {row[0]: row for row in table if row and row[0] in MODELS}
    assert rows["mtcars"] == ["mtcars", "1", "plumber", "yes", "2/2", "live"]
    assert rows["cars"][:4] == ["cars", "1", "plumber", "yes"]


def test_a_worker_stuck_past_its_timeout_is_recycled(gw: Stack) -> None:
    wait_pool_whole(gw, "slow")
    before = worker_pids(gw, "slow")
    log = gw.run_dir / "logs" / "watchdog.log"
    kills_before = log.read_text(encoding="utf-8").count("killed plumber-slow") if log.exists() else 0
    reply = gw.post("/models/slow/predict", json=[{"x": 120}])  # sleeps 2 minutes: stuck
    assert reply.status_code == 504
    # timeout + grace + two 5 s ticks and a restart when idle; the rest is room for a busy host.
    deadline = time.monotonic() + 1 + 10 + 15 + 30
    while (set(worker_pids(gw, "slow").values()) >= set(before.values())
           or log.read_text(encoding="utf-8").count("killed plumber-slow") == kills_before):
        assert time.monotonic() < deadline, "the stuck worker was never recycled"
        time.sleep(0.5)
    assert log.read_text(encoding="utf-8").count("killed plumber-slow") == kills_before + 1
    wait_pool_whole(gw, "slow")
    # A fresh R process's first predict can take longer than this model's 1 s timeout on a busy
    # host: a 504 then is the timeout working, not the pool failing; poll for the answer.
    deadline = time.monotonic() + 30
    while (quick := gw.post("/models/slow/predict", json=[{"x": 0.01}])).status_code != 200:
        assert quick.status_code == 504 and time.monotonic() < deadline, quick.text
    assert quick.json()["predictions"] == [0.01]
