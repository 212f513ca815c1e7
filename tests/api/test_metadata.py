"""Listing, metadata and health answer what a client needs to build a valid request."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask.testing import FlaskClient

from gateway.store import ModelStore, sha256_of
from tests.api.conftest import check_config, make_app


def test_models_lists_each_configured_model(client: FlaskClient) -> None:
    models = {m["name"]: m for m in client.get("/models").get_json()["models"]}
    assert set(models) == {"iris", "churn"}
    assert models["iris"] == {"name": "iris", "version": "2", "backend": "python", "language": "python", "ready": True}


def test_metadata_holds_the_schema_versions_and_checksum(client: FlaskClient, model_store: Path) -> None:
    doc = client.get("/models/churn").get_json()
    assert doc["versions"] == ["1"]
    assert [(c["name"], c["type"]) for c in doc["inputs"]] == [
        ("tenure", "integer"), ("monthly", "double"), ("plan", "factor")
    ]
    assert doc["inputs"][2]["levels"] == ["basic", "plus", "pro"]
    assert doc["sha256"] == sha256_of(model_store / "churn" / "1" / "model.skops")
    assert doc["params"] == {"type": ["response"]}
    iris = client.get("/models/iris").get_json()
    assert iris["versions"] == ModelStore(model_store).versions("iris")
    assert iris["outputs"]["classes"] == ["setosa", "versicolor", "virginica"]
    assert iris["params"] == {"type": ["response", "prob", "log_prob", "decision"]}  # what LogisticRegression has


def test_health_and_readiness(client: FlaskClient) -> None:
    assert client.get("/healthz").get_json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.get_json()["models"]["iris"] == {"ready": True}


def test_an_optional_model_that_cannot_load_makes_readiness_fail_but_not_the_app(
    model_store: Path, tmp_path: Path
) -> None:
    app = make_app(model_store, tmp_path, {
        "iris": {"backend": "python"},
        "ghost": {"backend": "python", "optional": True},
    })
    client = app.test_client()
    assert client.post("/models/iris/predict", json=[{
        "sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}]).status_code == 200
    ready = client.get("/readyz")
    assert ready.status_code == 503
    assert ready.get_json()["models"]["ghost"]["ready"] is False
    reply = client.post("/models/ghost/predict", json=[{"x": 1}])
    assert reply.status_code == 503
    assert "ghost" in reply.get_json()["detail"]


def test_a_required_model_that_cannot_load_stops_the_start(model_store: Path, tmp_path: Path) -> None:
    from gateway.errors import ConfigError

    models = {"iris": {"backend": "python"}, "ghost": {"backend": "python"}}
    with pytest.raises(ConfigError, match=r"^model 'ghost' has no versions"):
        check_config(model_store, tmp_path, models)
    # A worker that starts anyway (restarted after `up`) serves the rest: the app never raises.
    client = make_app(model_store, tmp_path, models).test_client()
    assert client.post("/models/iris/predict", json=[{
        "sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}]).status_code == 200
    ghost = client.get("/models/ghost")
    assert ghost.status_code == 200
    assert ghost.get_json()["ready"] is False and "no versions" in ghost.get_json()["detail"]
    assert client.get("/openapi.json").status_code == 200  # the document skips what did not load
