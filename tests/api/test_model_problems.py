"""A Python model that raises gateway.ModelProblem: each protocol's envelope carries the status
and type the model asked for, and /metrics counts it by type."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from flask import Flask
from prometheus_client.parser import text_string_to_metric_families

from gateway import ModelProblem
from gateway.register import register_model
from tests.api.conftest import make_app


class StaleFeatures:
    """x == 409 names a problem (409 stale_features); x == 500 asks for a status not allowed."""

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        if (frame["x"] == 409).any():
            raise ModelProblem(409, "stale_features", "features for x = 409 are a day old")
        if (frame["x"] == 500).any():
            raise ModelProblem(500, "Not A Token", "asked for too much")
        return frame["x"].to_numpy()


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Flask:
    tmp = tmp_path_factory.mktemp("problems")
    register_model(StaleFeatures(), "stale", pd.DataFrame({"x": [1.0, 2.0]}), store=tmp / "store", fmt="joblib")
    return make_app(tmp / "store", tmp, {"stale": {"backend": "python", "trusted": True}})


# protocol → (path, body for rows of x)
CALLS: dict[str, tuple[str, Any]] = {
    "native": ("/models/stale/predict", lambda xs: [{"x": x} for x in xs]),
    "mlflow": ("/models/stale/invocations", lambda xs: {"dataframe_records": [{"x": x} for x in xs]}),
    "vetiver": ("/vetiver/stale/predict", lambda xs: [{"x": x} for x in xs]),
    "v2": ("/v2/models/stale/infer",
           lambda xs: {"inputs": [{"name": "x", "shape": [len(xs)], "datatype": "FP64", "data": xs}]}),
}


def problems_counted(app: Flask, type_: str) -> float:
    text = app.test_client().get("/metrics").get_data(as_text=True)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "gateway_model_problems_total" and sample.labels == {"model": "stale", "type": type_}:
                return sample.value
    return 0.0


@pytest.mark.parametrize("protocol", sorted(CALLS))
def test_each_envelope_carries_the_models_status_and_type(app: Flask, protocol: str) -> None:
    path, body = CALLS[protocol]
    before = problems_counted(app, "stale_features")
    reply = app.test_client().post(path, json=body([1.0, 409.0]))
    assert reply.status_code == 409, reply.get_data(as_text=True)
    document = reply.get_json(force=True)
    if protocol == "mlflow":
        assert document["error_code"] == "STALE_FEATURES"
        assert "a day old" in document["message"]
    elif protocol == "v2":
        assert document == {"error": "stale_features: features for x = 409 are a day old"}
    else:
        assert reply.content_type == "application/problem+json"
        assert document["type"].endswith("/stale_features")
        assert (document["status"], document["model"]) == (409, "stale")
        assert document["detail"] == "features for x = 409 are a day old"
    assert problems_counted(app, "stale_features") == before + 1
    assert app.test_client().post(path, json=body([1.0, 2.0])).status_code == 200


def test_a_status_and_type_outside_the_allow_list_become_422_model_error(app: Flask) -> None:
    reply = app.test_client().post("/models/stale/predict", json=[{"x": 500.0}])
    assert reply.status_code == 422
    document = reply.get_json(force=True)
    assert document["type"].endswith("/model_error")
    assert "asked for status 500" in document["detail"] and "not a token" in document["detail"]
