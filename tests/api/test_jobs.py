"""Bulk jobs through the Flask app and the job runner's loop, in this process over a real store:
202 and Location, progress, the result in NDJSON, CSV and Arrow, ownership by API key, the
per-key limit, cancel. The runner as a supervisord program (kill -9, resume) is tested in
tests/integration/test_jobs_stack.py."""

from __future__ import annotations

import io
import json
import os
import time
from pathlib import Path

import pytest
from flask import Flask

from gateway.app import create_app
from gateway.auth import new_entry, write_keys
from gateway.errors import ConfigError, TooManyRequests
from gateway.job_runner import SWEEP_S, Runner
from gateway.jobs import UPLOAD_STALL_S, JobState, JobStore
from gateway.runtime.plan import make_plan
from gateway.settings import settings_from_dict
from tests.api.test_arrow import ARROW, arrow_body, churn_table, read_arrow
from tests.api.test_predict import load_estimator

CHUNK = 7


@pytest.fixture(scope="module")
def keyed(model_store: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Flask, Runner, dict[str, str]]:
    tmp = tmp_path_factory.mktemp("jobs")
    keys_file = tmp / "keys.json"
    made = {name: new_entry(name, "predict") for name in ("alice", "bob")}
    write_keys(keys_file, [entry for _, entry in made.values()])
    raw = {"server": {"run_dir": str(tmp / "run"), "api_keys_file": str(keys_file), "jobs_per_key": 2},
           "store": {"path": str(model_store)},
           "models": {name: {"backend": "python", "batch": {"max_size": CHUNK}} for name in ("iris", "churn")}}
    settings = settings_from_dict(raw, base_dir=tmp)
    app = create_app(settings, make_plan(settings))
    runner = Runner(lambda: app.extensions["gateway"], JobStore(settings.run_dir))
    return app, runner, {name: f"Bearer {key}" for name, (key, _) in made.items()}


def test_a_job_is_scored_chunk_by_chunk_and_its_result_comes_in_three_forms(
    keyed: tuple[Flask, Runner, dict[str, str]], model_store: Path
) -> None:
    app, runner, keys = keyed
    client = app.test_client()
    frame, table = churn_table(40)
    reply = client.post("/models/churn/jobs", data=arrow_body(table), content_type=ARROW,
                        headers={"Authorization": keys["alice"]})
    assert reply.status_code == 202, reply.data
    location = reply.headers["Location"]
    assert reply.json is not None and location == f"/jobs/{reply.json['id']}"
    assert reply.json["status"] == "queued"
    early = client.get(f"{location}/result", headers={"Authorization": keys["alice"]})
    assert early.status_code == 409 and early.content_type == "application/problem+json"
    assert runner.run_once()
    status = client.get(location, headers={"Authorization": keys["alice"]}).json
    assert status is not None
    assert (status["status"], status["rows_done"], status["rows_total"]) == ("done", 40, 40)
    expected = load_estimator(model_store, "churn", "1").predict(frame).tolist()
    ndjson = client.get(f"{location}/result", headers={"Authorization": keys["alice"]})
    assert ndjson.content_type == "application/x-ndjson"
    assert [json.loads(line)["prediction"] for line in ndjson.data.splitlines()] == pytest.approx(expected)
    arrow = client.get(f"{location}/result", headers={"Authorization": keys["alice"], "Accept": ARROW})
    assert read_arrow(arrow.data).column("prediction").to_pylist() == pytest.approx(expected)
    csv = client.get(f"{location}/result", headers={"Authorization": keys["alice"], "Accept": "text/csv"})
    assert csv.data.decode().splitlines()[0] == "prediction" and len(csv.data.splitlines()) == 41
    state_dir = Path(app.extensions["gateway.jobs"].root) / status["id"]
    assert {p.stat().st_mode & 0o777 for p in state_dir.iterdir()} == {0o600}


def test_a_json_body_is_a_job_too_and_a_bad_row_fails_it_naming_the_row(
    keyed: tuple[Flask, Runner, dict[str, str]],
) -> None:
    app, runner, keys = keyed
    client = app.test_client()
    rows = [{"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}] * 20
    rows[15] = {**rows[15], "petal_width": "wide"}
    reply = client.post("/models/iris/jobs", json={"inputs": rows}, headers={"Authorization": keys["bob"]})
    assert reply.status_code == 202, reply.data
    assert runner.run_once()
    status = client.get(reply.headers["Location"], headers={"Authorization": keys["bob"]}).json
    assert status is not None and status["status"] == "failed" and status["rows_done"] == 14
    assert "'wide' at row 16" in status["error"]["detail"]


def test_jobs_belong_to_their_key_are_limited_per_key_and_cancel(
    keyed: tuple[Flask, Runner, dict[str, str]],
) -> None:
    app, runner, keys = keyed
    client = app.test_client()
    body = b'{"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}\n' * 10
    post = {"data": body, "content_type": "application/x-ndjson"}
    first = client.post("/models/iris/jobs", headers={"Authorization": keys["alice"]}, **post)
    second = client.post("/models/iris/jobs", headers={"Authorization": keys["alice"]}, **post)
    third = client.post("/models/iris/jobs", headers={"Authorization": keys["alice"]}, **post)
    assert (first.status_code, second.status_code, third.status_code) == (202, 202, 429)
    assert third.content_type == "application/problem+json" and third.json is not None
    assert "server.jobs_per_key = 2" in third.json["detail"]
    assert client.post("/models/iris/jobs", headers={"Authorization": keys["bob"]}, **post).status_code == 202
    job = first.headers["Location"]
    assert client.get(job, headers={"Authorization": keys["bob"]}).status_code == 404
    assert client.delete(job, headers={"Authorization": keys["bob"]}).status_code == 404
    assert client.delete(job, headers={"Authorization": keys["alice"]}).status_code == 204
    assert client.get(job, headers={"Authorization": keys["alice"]}).status_code == 404
    while runner.run_once():  # removes the cancelled job, scores the others
        pass
    assert not (Path(app.extensions["gateway.jobs"].root) / job.rsplit("/", 1)[1]).exists()
    done = client.get(second.headers["Location"], headers={"Authorization": keys["alice"]}).json
    assert done is not None and done["status"] == "done"
    assert client.post("/models/iris/jobs", headers={"Authorization": keys["alice"]}, **post).status_code == 202


def test_an_unknown_param_or_body_type_is_refused_before_the_body_is_kept(
    keyed: tuple[Flask, Runner, dict[str, str]],
) -> None:
    app, _, keys = keyed
    client = app.test_client()
    reply = client.post("/models/iris/jobs?kind=x", data=b"{}\n", content_type="application/x-ndjson",
                        headers={"Authorization": keys["bob"]})
    assert reply.status_code == 400
    reply = client.post("/models/iris/jobs", data=b"x", content_type="text/plain",
                        headers={"Authorization": keys["bob"]})
    assert reply.status_code == 415


def test_an_upload_cut_off_stops_counting_against_its_key(tmp_path: Path) -> None:
    store = JobStore(tmp_path)
    spec = {"owner": "k", "model": "iris", "version": "2", "content_type": "application/x-ndjson", "params": {},
            "chunk_rows": CHUNK}
    job = store.create(spec, io.BytesIO(b"{}\n"), limit=1)
    with pytest.raises(TooManyRequests):
        store.create(spec, io.BytesIO(b"{}\n"), limit=1)
    partial = tmp_path / "jobs" / job.id / "body.part"
    store.body_path(job).rename(partial)  # as a Gunicorn worker killed mid-upload leaves it
    assert not store.abandoned(job) and store.pending() == []  # still arriving; not the runner's yet
    stalled = time.time() - UPLOAD_STALL_S - 1
    os.utime(partial, (stalled, stalled))
    assert store.abandoned_jobs() == [job]
    store.create(spec, io.BytesIO(b"{}\n"), limit=1)  # its place is free again


def test_a_finished_job_is_removed_once_past_jobs_keep_s_and_an_active_one_never(tmp_path: Path) -> None:
    store = JobStore(tmp_path)
    spec = {"owner": "k", "model": "iris", "version": "2", "content_type": "application/x-ndjson", "params": {},
            "chunk_rows": CHUNK}
    jobs = {status: store.create(spec, io.BytesIO(b"{}\n"), limit=10) for status in ("done", "failed", "running")}
    for status, job in jobs.items():
        store.save_state(job, JobState(status=status))
    finished_at = store.state(jobs["done"]).updated_at
    runner = Runner(lambda: pytest.fail("no model is needed to remove jobs"), store, keep_s=3600)
    runner.remove_expired(now=finished_at + 3599)
    assert store.pending() == [jobs["running"]] and store.state(jobs["done"]).status == "done"
    Runner(lambda: pytest.fail("unused"), store, keep_s=0).remove_expired(now=finished_at + 10**9)
    assert store.state(jobs["failed"]).status == "failed"  # 0: kept until DELETE
    runner.remove_expired(now=finished_at + 3601)
    assert store.state(jobs["done"]).status == "done"  # swept a moment ago: not again before SWEEP_S
    runner.remove_expired(now=finished_at + 3601 + SWEEP_S)
    assert not (tmp_path / "jobs" / jobs["done"].id).exists()
    assert not (tmp_path / "jobs" / jobs["failed"].id).exists()
    assert store.pending() == [jobs["running"]]  # running for days is not finished


def test_jobs_keep_s_cannot_be_negative(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"server\.jobs_keep_s must be >= 0"):
        settings_from_dict({"server": {"jobs_keep_s": -1}, "models": {}}, base_dir=tmp_path)
