"""Problems a model names itself, through a live stack: an R model in a Plumber pool and one
in rpy2 call gatewayr::problem(), a Python model raises gateway.ModelProblem; each protocol's
envelope carries the status and type, and /metrics counts them by model and type."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from typing import Any

import pandas as pd
import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway.register import register_model
from tests.integration.conftest import Stack, start_stack
from tests.integration.r_models import rscript

R_MODEL = ('function(newdata, type) { if (any(newdata$x == 409)) gatewayr::problem(409, "stale_features", '
           'paste("features for x =", 409, "are a day old")); newdata$x }')
# The Python model's class lives in a module next to gateway.toml: Gunicorn's workers run there.
PY_MODULE = '''
from gateway import ModelProblem


class StaleFeatures:
    def predict(self, frame):
        if (frame["x"] == 409).any():
            raise ModelProblem(409, "stale_features", "features for x = 409 are a day old")
        return frame["x"].to_numpy()
'''
MODELS = {
    "stale_pool": {"backend": "plumber", "workers": 1, "timeout_s": 20},
    "stale_rpy2": {"backend": "rpy2", "timeout_s": 20},
    "stale_py": {"backend": "python", "trusted": True},
}


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    directory = tmp_path_factory.mktemp("problems")
    store = directory / "store"
    for name in ("stale_pool", "stale_rpy2"):
        rscript(f"gatewayr::save_model({R_MODEL}, commandArgs(TRUE)[1], '{name}', sample = data.frame(x = c(0, 2)))",
                str(store))
    (directory / "mp_stale_model.py").write_text(PY_MODULE, encoding="utf-8")
    sys.path.insert(0, str(directory))
    try:
        model = importlib.import_module("mp_stale_model").StaleFeatures()
        register_model(model, "stale_py", pd.DataFrame({"x": [0.0, 2.0]}), store=store, fmt="joblib")
    finally:
        sys.path.remove(str(directory))
    with start_stack(directory, MODELS, store=store) as running:
        yield running


def rows(xs: list[float]) -> list[dict[str, float]]:
    return [{"x": x} for x in xs]


CALLS: dict[str, tuple[str, Any]] = {
    "native": ("/models/{}/predict", rows),
    "mlflow": ("/models/{}/invocations", lambda xs: {"dataframe_records": rows(xs)}),
    "v2": ("/v2/models/{}/infer", lambda xs: {"inputs": [{"name": "x", "shape": [len(xs)], "datatype": "FP64",
                                                            "data": xs}]}),
}


def problems_counted(gw: Stack) -> dict[str, float]:
    counted = {}
    for family in text_string_to_metric_families(gw.get("/metrics").text):
        for sample in family.samples:
            if sample.name == "gateway_model_problems_total":
                counted[f'{sample.labels["model"]}/{sample.labels["type"]}'] = sample.value
    return counted


@pytest.mark.parametrize("model", sorted(MODELS))
def test_every_backend_answers_the_models_problem_in_each_envelope(gw: Stack, model: str) -> None:
    before = problems_counted(gw).get(f"{model}/stale_features", 0.0)
    for protocol, (path, body) in CALLS.items():
        reply = gw.post(path.format(model), json=body([1.0, 409.0]))
        assert reply.status_code == 409, (protocol, reply.text)
        document = reply.json()
        if protocol == "mlflow":
            assert document["error_code"] == "STALE_FEATURES" and "a day old" in document["message"]
        elif protocol == "v2":
            assert document == {"error": "stale_features: features for x = 409 are a day old"}
        else:
            assert reply.headers["Content-Type"].startswith("application/problem+json")
            assert document["type"].endswith("/stale_features")
            assert (document["status"], document["model"]) == (409, model)
            assert document["detail"] == "features for x = 409 are a day old"
        assert gw.post(path.format(model), json=body([1.0, 2.0])).status_code == 200, protocol
    assert problems_counted(gw)[f"{model}/stale_features"] == before + len(CALLS)
