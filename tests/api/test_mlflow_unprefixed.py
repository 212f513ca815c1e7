"""MLflow's unprefixed routes (/invocations, /ping, /health, /version): the only model, or
server.default_model; with several models and none chosen, a 404 in MLflow's shape that says how."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.errors import ConfigError
from tests.api.conftest import make_app
from tests.api.test_observability import requests_total

ROWS = {"dataframe_records": [{"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}]}


def test_the_only_model_answers_unprefixed(model_store: Path, tmp_path: Path) -> None:
    client = make_app(model_store, tmp_path, models={"iris": {"backend": "python"}}).test_client()
    assert client.post("/invocations", json=ROWS).get_json() == {"predictions": ["setosa"]}
    assert client.get("/ping").data == b"\n" and client.get("/health").status_code == 200
    assert client.get("/version").status_code == 200
    paths = client.get("/openapi.json").get_json()["paths"]
    assert {"/invocations", "/ping", "/health", "/version"} <= set(paths)
    # Counted as MLflow's, like /models/iris/invocations (it was not counted at all before).
    before = requests_total(client, model="iris", protocol="mlflow", status="200")
    client.post("/invocations", json=ROWS)
    assert requests_total(client, model="iris", protocol="mlflow", status="200") == before + 1


def test_several_models_need_a_default(model_store: Path, tmp_path: Path) -> None:
    client = make_app(model_store, tmp_path).test_client()  # iris and churn
    reply = client.post("/invocations", json=ROWS)
    assert reply.status_code == 404 and reply.get_json()["error_code"] == "ENDPOINT_NOT_FOUND"
    assert "set server.default_model" in reply.get_json()["message"]
    assert "/invocations" not in client.get("/openapi.json").get_json()["paths"]
    chosen = make_app(model_store, tmp_path / "b", server={"default_model": "iris"}).test_client()
    assert chosen.post("/invocations", json=ROWS).get_json() == {"predictions": ["setosa"]}


def test_an_unknown_default_model_fails_at_start(model_store: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"server\.default_model: 'nope' is not a configured model"):
        make_app(model_store, tmp_path, server={"default_model": "nope"})
