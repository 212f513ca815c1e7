"""Prediction log and drift on one real stack: a Python model, and one R model served by a
Plumber pool and by rpy2. Shifted inputs raise gateway_feature_drift in /metrics; every request
(sample = 1.0) leaves a log line in which the redacted column never appears."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LinearRegression
from sklearn.pipeline import make_pipeline

from gateway.register import register_artefact, register_model
from tests.integration.conftest import Stack, start_stack
from tests.integration.r_models import r_env

LOG = {"sample": 1.0, "redact": ["ssn"]}
MODELS = {
    "pylm": {"backend": "python", "log_predictions": LOG},
    "rpool": {"backend": "plumber", "workers": 1, "log_predictions": LOG},
    "rembed": {"backend": "rpy2", "log_predictions": LOG},
}
SSN_BASE = 100_000_000  # every ssn sent is above it; the log must hold none of them
REQUESTS = 12  # per model and phase
TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
ROWS = 100


def _frame(rng: np.random.Generator, n: int, mean: float) -> pd.DataFrame:
    return pd.DataFrame({"x": rng.normal(mean, 1.0, n),
                         "ssn": rng.integers(SSN_BASE, 999_999_999, n).astype(float)})


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    directory = tmp_path_factory.mktemp("predlog")
    store = directory / "store"
    sample = _frame(np.random.default_rng(3), 500, 0.0)
    target = 2 * sample["x"] + 1
    keep_x = ColumnTransformer([("x", "passthrough", ["x"])], remainder="drop")
    register_model(make_pipeline(keep_x, LinearRegression()).fit(sample, target), "pylm", sample, store=store)
    csv = directory / "sample.csv"
    sample.assign(y=target).to_csv(csv, index=False)
    rds = directory / "lm.rds"
    subprocess.run(["Rscript", "-e", "a <- commandArgs(TRUE); saveRDS(lm(y ~ x, data = read.csv(a[1])), a[2])",
                    str(csv), str(rds)], env=r_env(), check=True, capture_output=True, timeout=120)
    os.environ.setdefault("R_LIBS", r_env()["R_LIBS"])
    for name in ("rpool", "rembed"):
        register_artefact(store, name, rds, csv, target="y")
    with start_stack(directory, MODELS, {"workers": 2, "threads": 4}, store=store) as running:
        yield running


def _send(gw: Stack, model: str, mean: float, seed: int) -> None:
    rng = np.random.default_rng(seed)
    for _ in range(REQUESTS):
        rows = _frame(rng, ROWS, mean).to_dict(orient="records")
        reply = gw.post(f"/models/{model}/predict", json=rows, headers={"traceparent": TRACEPARENT})
        assert reply.status_code == 200, reply.text


def _drift(gw: Stack) -> dict[tuple[str, str], tuple[float, float]]:
    """(model, column) → (PSI, values it rests on), from a scrape."""
    values: dict[tuple[str, str], list[float]] = {}
    for family in text_string_to_metric_families(gw.get("/metrics").text):
        for sample in family.samples:
            if sample.name in ("gateway_feature_drift", "gateway_drift_window_values"):
                entry = values.setdefault((sample.labels["model"], sample.labels["column"]), [0.0, 0.0])
                entry[0 if sample.name == "gateway_feature_drift" else 1] = sample.value
    return {key: (v[0], v[1]) for key, v in values.items()}


def _wait_for(condition: object, what: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def test_shifted_inputs_raise_psi_for_python_and_r_models(gw: Stack) -> None:
    for index, model in enumerate(MODELS):
        _send(gw, model, 0.0, seed=10 + index)
    # The drift thread bins after the reply: wait until every request sent has been counted.
    _wait_for(lambda: all(_drift(gw).get((m, "x"), (0, 0))[1] >= REQUESTS * ROWS for m in MODELS),
              "the in-distribution windows")
    baseline = _drift(gw)
    for index, model in enumerate(MODELS):
        _send(gw, model, 3.0, seed=20 + index)
    # Each worker's window holds the last 2000 values: the shifted ones push the old ones out.
    _wait_for(lambda: all(_drift(gw)[(m, "x")][0] > 1.0 for m in MODELS), "PSI of x over 1.0 for every model")
    shifted = _drift(gw)
    print("PSI of x, before -> after the shift:",
          {m: (round(baseline[(m, "x")][0], 3), round(shifted[(m, "x")][0], 3)) for m in MODELS})
    for model in MODELS:
        assert baseline[(model, "x")][0] < 0.1, baseline
        assert shifted[(model, "x")][0] > 1.0, shifted
        assert shifted[(model, "ssn")][0] < 0.1  # the column that did not move stays put
    scrape = gw.get("/metrics").text
    assert 'gateway_prediction_value_count{model="pylm",version="1"}' in scrape
    status = {row["name"]: row for row in gw.get("/status.json").json()["models"]}
    assert status["rpool"]["drift"]["column"] == "x" and status["rpool"]["drift"]["psi"] > 1.0


def _lines(gw: Stack, model: str) -> list[dict]:
    path = gw.run_dir / "logs" / f"predictions-{model}.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_every_request_is_logged_with_the_redacted_column_absent(gw: Stack) -> None:
    for model in MODELS:
        reply = gw.post(f"/models/{model}/predict", json=[{"x": 1.0}],  # no ssn: a 422
                        headers={"traceparent": TRACEPARENT})
        assert reply.status_code == 422, reply.text
        _wait_for(lambda m=model: any(line["status"] == 422 for line in _lines(gw, m)), f"{model}'s error line")
    for model in MODELS:
        lines = _lines(gw, model)
        text = (gw.run_dir / "logs" / f"predictions-{model}.jsonl").read_text()
        assert '"ssn"' not in text.replace('"redacted":["ssn"]', "")
        assert not [v for v in json.loads("[" + ",".join(json.dumps(line.get("inputs")) for line in lines) + "]")
                    if v and any(isinstance(x, float) and x >= SSN_BASE for col in v.values() for x in col)]
        ok = [line for line in lines if line["status"] == 200]
        assert ok and all(line["backend"] == MODELS[model]["backend"] and line["redacted"] == ["ssn"] for line in ok)
        assert all(len(line["inputs"]["x"]) == len(line["outputs"]) == line["rows"] for line in ok)
        assert all(line["traceparent"] == TRACEPARENT and line["request_id"] for line in ok)
        (error,) = [line for line in lines if line["status"] == 422]
        assert error["problem"] == "invalid_input" and error["traceparent"] == TRACEPARENT
        assert error["request_id"] and "detail" not in error
        assert (gw.run_dir / "logs" / f"predictions-{model}.jsonl").stat().st_mode & 0o077 == 0
    print("one sampled prediction log line (rpool):", json.dumps(
        {**ok[0], "inputs": {"x": ok[0]["inputs"]["x"][:2]}, "outputs": ok[0]["outputs"][:2]}
        if (ok := [line for line in _lines(gw, "rpool") if line["status"] == 200]) else None))
    def counted() -> dict[tuple[str, str], float]:
        out: dict[tuple[str, str], float] = {}
        for family in text_string_to_metric_families(gw.get("/metrics").text):
            for sample in family.samples:
                if sample.name.startswith("gateway_prediction_log_") and sample.name.endswith("_total"):
                    key = (sample.name, sample.labels["model"])
                    out[key] = out.get(key, 0.0) + sample.value
        return out

    # The counter moves just after the write: wait for it to catch up with the file.
    _wait_for(lambda: all(counted()[("gateway_prediction_log_written_total", m)] == len(_lines(gw, m)) for m in MODELS),
              "gateway_prediction_log_written_total to count every line in the files")
    assert all(counted()[("gateway_prediction_log_dropped_total", m)] == 0 for m in MODELS)  # nothing lost here
    status = {row["name"]: row for row in gw.get("/status.json").json()["models"]}
    assert all(status[m]["prediction_log"] == {"written": len(_lines(gw, m)), "dropped": 0} for m in MODELS)
