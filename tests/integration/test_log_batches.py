"""Request log lines leave Gunicorn and R workers in batches, and a graceful stop loses none.

A stack with a long batch delay (server.log_flush_ms = 5000): the lines of requests answered
just before Gunicorn is stopped can only reach gunicorn.log through the flush at the worker's
exit (its worker_exit hook). An R worker's lines arrive by its batch (later's callback).
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

from gateway.demo import build_iris
from gateway.runtime import stack
from tests.integration.conftest import start_stack, wait_for
from tests.integration.r_models import build_r_store

MODELS = {"iris": {"backend": "python"}, "mtcars": {"backend": "plumber", "workers": 1, "timeout_s": 20}}
IRIS_ROW = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}
MTCARS_ROW = {"wt": 2.62, "hp": 110, "cyl": 6, "am": "manual"}
DELAY_S = 5.0  # longer than Gunicorn's graceful stop (its gthread worker notices SIGTERM within 1 s)


def logged_ids(path: Path) -> set[str]:
    if not path.exists():
        return set()
    return {json.loads(line).get("request_id") for line in path.read_text(encoding="utf-8").splitlines()
            if line.startswith("{")}


def test_a_graceful_stop_writes_every_buffered_request_line(tmp_path: Path) -> None:
    store = build_r_store(tmp_path / "store")
    build_iris(store)
    with start_stack(tmp_path, MODELS, {"workers": 2, "threads": 4, "log_flush_ms": DELAY_S * 1000},
                     store=store) as gw:
        logs = gw.run_dir / "logs"
        r_ids = [f"batch-r-{uuid.uuid4().hex[:8]}" for _ in range(6)]
        for request_id in r_ids:
            reply = gw.post("/models/mtcars/predict", json=[MTCARS_ROW], headers={"X-Request-ID": request_id})
            assert reply.status_code == 200, reply.text
        python_ids = [f"batch-py-{uuid.uuid4().hex[:8]}" for _ in range(12)]
        started = time.monotonic()
        for request_id in python_ids:
            reply = gw.post("/models/iris/predict", json=[IRIS_ROW], headers={"X-Request-ID": request_id})
            assert reply.status_code == 200, reply.text
        waiting = set(python_ids) - logged_ids(logs / "gunicorn.log")
        quick = time.monotonic() - started < DELAY_S / 2
        stack._rpc(gw.run_dir, "stopProcess", "gunicorn")  # SIGTERM: a graceful stop; returns once stopped
        stopped_within_delay = time.monotonic() - started < DELAY_S
        if quick:  # a host this slow may have written some lines on time already
            assert waiting == set(python_ids), "request lines were written before the batch's delay"
        assert set(python_ids) <= logged_ids(logs / "gunicorn.log"), stopped_within_delay
        assert wait_for(lambda: set(r_ids) <= logged_ids(logs / "plumber-mtcars-1.log"), budget_s=DELAY_S + 10)
