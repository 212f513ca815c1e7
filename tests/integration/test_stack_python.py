"""The whole stack with Python models: client → NGINX → Gunicorn → Flask, under supervisord."""

from __future__ import annotations

import os
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.errors import ConfigError
from gateway.runtime import procs, stack
from gateway.settings import load_settings
from tests.integration.conftest import Stack, start_stack

BODY_LIMIT = 2048
PYTHON_MODELS = {"iris": {"backend": "python"}, "churn": {"backend": "python"}}
IRIS_ROWS = [
    {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2},
    {"sepal_length": 6.7, "sepal_width": 3.0, "petal_length": 5.2, "petal_width": 2.3},
]
PROBLEM_JSON = "application/problem+json"


@pytest.fixture(scope="module")
def python_stack(tmp_path_factory: pytest.TempPathFactory, model_store: Path) -> Iterator[Stack]:
    with start_stack(tmp_path_factory.mktemp("py"), PYTHON_MODELS,
                     {"body_limit_bytes": BODY_LIMIT}, store=model_store) as running:
        yield running


def test_probes_answer_through_nginx(python_stack: Stack) -> None:
    health = python_stack.get("/healthz")
    assert health.status_code == 200
    assert health.json() == {"status": "ok"}
    assert health.headers["Server"] == "nginx"
    ready = python_stack.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["models"] == {"iris": {"ready": True}, "churn": {"ready": True}}


def test_predict_through_nginx_echoes_the_request_id(python_stack: Stack) -> None:
    reply = python_stack.post("/models/iris/predict", json=IRIS_ROWS, headers={"X-Request-ID": "it-42"})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["predictions"] == ["setosa", "virginica"]
    assert body["request_id"] == "it-42"
    assert reply.headers["X-Request-ID"] == "it-42"


def test_the_apps_own_errors_pass_through_nginx(python_stack: Stack) -> None:
    reply = python_stack.post("/models/nope/predict", json=IRIS_ROWS)
    assert reply.status_code == 404
    assert reply.headers["Content-Type"] == PROBLEM_JSON
    assert "served models: churn, iris" in reply.json()["detail"]


def test_a_body_over_the_limit_is_a_413_problem_from_nginx(python_stack: Stack) -> None:
    rows = IRIS_ROWS * 40
    reply = python_stack.post("/models/iris/predict", json=rows, headers={"X-Request-ID": "big-1"})
    assert reply.status_code == 413
    assert reply.headers["Content-Type"] == PROBLEM_JSON
    assert reply.headers["X-Request-ID"] == "big-1"
    body = reply.json()
    assert body["status"] == 413
    assert body["detail"] == f"the request body is larger than the limit of {BODY_LIMIT} bytes"
    assert body["request_id"] == "big-1"
    assert '"big-1"' not in _gunicorn_log(python_stack)  # NGINX answered; the app never saw it


def test_a_killed_gunicorn_is_a_503_until_supervisord_restarts_it(python_stack: Stack) -> None:
    master = python_stack.pids()["gunicorn"]
    assert os.getpgid(master) == master  # supervisord gives every program its own group
    os.killpg(master, signal.SIGKILL)  # the master and its workers, as the OOM killer might

    down = _poll(python_stack, lambda r: r.status_code == 503, deadline_s=15)
    assert down.headers["Content-Type"] == PROBLEM_JSON
    assert down.headers["X-Request-ID"] == "probe"
    assert down.json()["status"] == 503
    assert "not running" in down.json()["detail"]

    back = _poll(python_stack, lambda r: r.status_code == 200, deadline_s=60)
    assert back.json()["predictions"] == ["setosa", "virginica"]
    assert python_stack.pids()["gunicorn"] != master


def test_down_stops_every_process_and_frees_the_port(tmp_path: Path, model_store: Path) -> None:
    with start_stack(tmp_path, {"iris": {"backend": "python"}}, store=model_store) as running:
        family = procs.family(stack._supervisord_pid(running.run_dir) or -1)
        assert len(family) >= 4  # supervisord, nginx master and worker(s), gunicorn and a worker
        with pytest.raises(stack.StackError, match="already running"):
            stack.up(running.settings)
        stack.down(running.run_dir)
        assert not procs.alive(family)
        with socket.socket() as sock:  # as the next NGINX would bind it (TIME_WAIT is no owner)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((running.plan.public.host, running.plan.public.port))
            sock.listen()
        stack.down(running.run_dir)  # idempotent
        assert stack.status(running.run_dir).startswith("no stack is running")


def test_a_missing_model_fails_before_anything_starts(tmp_path: Path, model_store: Path) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text(f'[store]\npath = "{model_store}"\n[models.ghost]\nbackend = "python"\n')
    with pytest.raises(ConfigError, match="ghost"):
        stack.up(load_settings(config, env={}))
    assert not (tmp_path / ".run" / "supervisord.pid").exists()


def _poll(running: Stack, done: Any, deadline_s: float) -> Any:
    """Predict until `done(reply)`; every reply on the way must be a 200 or a 503 problem."""
    deadline = time.monotonic() + deadline_s
    seen = []
    while time.monotonic() < deadline:
        reply = running.post("/models/iris/predict", json=IRIS_ROWS, headers={"X-Request-ID": "probe"},
                             timeout=10)
        seen.append(reply.status_code)
        assert reply.status_code in (200, 503), reply.text
        if done(reply):
            return reply
        time.sleep(0.02)
    pytest.fail(f"no matching reply within {deadline_s} s; statuses seen: {sorted(set(seen))}")


def _gunicorn_log(running: Stack) -> str:
    return (running.run_dir / "logs" / "gunicorn.log").read_text()


def _forms(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    columns = list(rows[0])
    csv = ",".join(columns) + "\n" + "\n".join(",".join(str(r[c]) for c in columns) for r in rows)
    return {
        "records": {"json": rows},
        "instances": {"json": {"instances": rows}},
        "inputs": {"json": {"inputs": {c: [r[c] for r in rows] for c in columns}}},
        "dataframe_split": {"json": {"dataframe_split": {"columns": columns,
                                                         "data": [[r[c] for c in columns] for r in rows]}}},
        "dataframe_records": {"json": {"dataframe_records": rows}},
        "csv": {"data": csv, "headers": {"Content-Type": "text/csv"}},
    }


@pytest.mark.parametrize("form", list(_forms(IRIS_ROWS)))
def test_every_request_form_through_nginx(python_stack: Stack, form: str) -> None:
    expected = python_stack.post("/models/iris/predict", json=IRIS_ROWS).json()["predictions"]
    reply = python_stack.post("/models/iris/versions/2/predict", **_forms(IRIS_ROWS)[form])
    assert reply.status_code == 200, reply.text
    assert reply.json()["predictions"] == expected
    assert reply.json()["version"] == "2"


def test_listing_and_metadata_through_nginx(python_stack: Stack) -> None:
    listed = python_stack.get("/models", allow_redirects=False)
    assert listed.status_code == 200
    assert {m["name"] for m in listed.json()["models"]} == {"iris", "churn"}
    meta = python_stack.get("/models/churn", allow_redirects=False)
    assert meta.status_code == 200
    assert [c["name"] for c in meta.json()["inputs"]] == ["tenure", "monthly", "plan"]
