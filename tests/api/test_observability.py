"""Request ids, the JSON request log and /metrics, in one process through Flask's test client."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families

from gateway.instrument import REQUEST_LOG
from tests.api.conftest import make_app

IRIS_ROW = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}


def request_lines(caplog: pytest.LogCaptureFixture) -> list[dict]:
    return [json.loads(r.getMessage()) for r in caplog.records if r.name == REQUEST_LOG]


def requests_total(client: FlaskClient, **labels: str) -> float:
    text = client.get("/metrics").get_data(as_text=True)
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "gateway_requests_total" and labels.items() <= sample.labels.items()
    )


@pytest.mark.parametrize("supplied", ["a" * 129, "with:colon", "with space", "semi;colon", "caf\u00e9"])
def test_an_insane_request_id_is_replaced(client: FlaskClient, supplied: str) -> None:
    reply = client.post("/models/iris/predict", json=[IRIS_ROW], headers={"X-Request-ID": supplied.encode()})
    replaced = reply.headers["X-Request-ID"]
    assert replaced != supplied
    assert reply.get_json()["request_id"] == replaced


def test_a_sane_request_id_of_128_characters_is_kept(client: FlaskClient) -> None:
    supplied = "A-z_0.9" * 18 + "xy"
    assert len(supplied) == 128
    assert client.get("/models/nope", headers={"X-Request-ID": supplied}).headers["X-Request-ID"] == supplied


def test_one_json_log_line_per_predict(client: FlaskClient, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=REQUEST_LOG)
    client.post("/models/iris/predict", json=[IRIS_ROW, IRIS_ROW], headers={"X-Request-ID": "log-1"})
    client.post("/models/iris/predict", json=[{"sepal_length": 1}], headers={"X-Request-ID": "log-2"})
    client.get("/models", headers={"X-Request-ID": "log-3"})  # reaches no model: not a request line
    ok, bad = request_lines(caplog)
    assert {k: ok[k] for k in ("request_id", "model", "version", "backend", "protocol", "status", "rows")} == {
        "request_id": "log-1", "model": "iris", "version": "2", "backend": "python", "protocol": "native",
        "status": 200, "rows": 2}
    assert ok["duration_ms"] > 0
    assert (bad["request_id"], bad["status"], bad["rows"]) == ("log-2", 422, None)
    assert "sepal_width" in bad["error"]


def test_requests_are_counted_by_model_version_and_status(client: FlaskClient) -> None:
    labels = {"model": "iris", "backend": "python", "protocol": "native"}
    ok_before = requests_total(client, **labels, version="1", status="200")
    bad_before = requests_total(client, **labels, version="2", status="422")
    client.post("/models/iris/versions/1/predict", json=[IRIS_ROW])
    client.post("/models/iris/predict", json=[{"sepal_length": 1}])
    assert requests_total(client, **labels, version="1", status="200") == ok_before + 1
    assert requests_total(client, **labels, version="2", status="422") == bad_before + 1


def test_made_up_names_do_not_become_labels(client: FlaskClient) -> None:
    before = requests_total(client, model="_unknown", status="404")
    client.post("/models/no_such_model_123/predict", json=[IRIS_ROW])
    client.post("/models/iris/versions/99/predict", json=[IRIS_ROW])
    assert requests_total(client, model="_unknown", status="404") == before + 1
    assert requests_total(client, model="iris", version="_unknown", status="404") >= 1
    assert "no_such_model_123" not in client.get("/metrics").get_data(as_text=True)


def test_model_info_is_exported_for_every_model(client: FlaskClient) -> None:
    text = client.get("/metrics").get_data(as_text=True)
    info = {tuple(s.labels[k] for k in ("model", "version", "language"))
            for f in text_string_to_metric_families(text) for s in f.samples if s.name == "gateway_model_info"}
    assert info == {("iris", "2", "python"), ("churn", "1", "python")}


def test_closed_metrics_answer_404(model_store: Path, tmp_path: Path) -> None:
    app = make_app(model_store, tmp_path, server={"metrics": "closed"})
    reply = app.test_client().get("/metrics")
    assert reply.status_code == 404
    assert "server.metrics" in reply.get_json()["detail"]


def test_status_json_counts_recent_requests_per_model(client: FlaskClient) -> None:
    before = {m["name"]: m for m in client.get("/status.json").get_json()["models"]}
    client.post("/models/iris/predict", json=[IRIS_ROW])
    client.post("/models/iris/predict", json=[{"sepal_length": 1}])
    data = client.get("/status.json").get_json()
    iris = next(m for m in data["models"] if m["name"] == "iris")
    assert iris["requests"] == before["iris"]["requests"] + 2
    assert iris["errors"] == before["iris"]["errors"] + 1
    assert iris["p50_ms"] > 0 and iris["p99_ms"] >= iris["p50_ms"]
    assert {k: iris[k] for k in ("version", "backend", "language", "ready", "workers")} == {
        "version": "2", "backend": "python", "language": "python", "ready": True, "workers": None}
    assert data["window_s"] >= 0


def test_status_page_is_self_contained(client: FlaskClient) -> None:
    page = client.get("/")
    assert page.status_code == 200
    assert page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    assert "status.json" in html
    assert "http://" not in html.replace("http://www.w3.org/2000/svg", "")  # no CDN, no remote asset
    assert "<script src" not in html and "<link" not in html


def test_closed_metrics_close_the_status_page_too(model_store: Path, tmp_path: Path) -> None:
    client = make_app(model_store, tmp_path, server={"metrics": "closed"}).test_client()
    assert client.get("/").status_code == 404
    assert client.get("/status.json").status_code == 404
