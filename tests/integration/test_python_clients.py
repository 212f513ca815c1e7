"""Users' own scikit-learn models, and the clients they already use, against one real stack.

The stack serves the families of tests/integration/py_families.py (GradientBoosting,
HistGradientBoosting with NaN, IsolationForest, a 2-target regressor, a Tfidf pipeline, a model
with a datetime input); `server.default_model` names one for MLflow's unprefixed routes.
Clients: MLflow's ScoringServerClient, vetiver's Python client, tritonclient, R's httr.
"""

from __future__ import annotations

import json
import subprocess
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import tritonclient.http as triton

from tests.clients import MLFLOW_VERSION, ScoringServerClient, mlflow_client, vetiver
from tests.integration.conftest import Stack, start_stack
from tests.integration.py_families import FAMILY_MODELS, build_families
from tests.integration.r_models import r_env

DEFAULT_MODEL = "histgb"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("families") / "store"


@pytest.fixture(scope="module")
def built(store: Path) -> dict[str, tuple[Any, pd.DataFrame]]:
    return build_families(store)


@pytest.fixture(scope="module")
def gw(built: dict[str, Any], store: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with start_stack(tmp_path_factory.mktemp("familystack"), FAMILY_MODELS, {"default_model": DEFAULT_MODEL},
                     store=store) as running:
        yield running


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as JSON sends them (NaN → null, datetimes ISO), so local and remote see equal data."""
    return json.loads(frame.to_json(orient="records", date_format="iso", double_precision=15))


def sent(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame as the gateway rebuilds it from records(frame), for the local prediction."""
    return pd.DataFrame(records(frame), columns=frame.columns).astype(frame.dtypes.to_dict())


def predict(gw: Stack, model: str, body: Any) -> list[Any]:
    reply = gw.post(f"/models/{model}/predict", json=body)
    assert reply.status_code == 200, reply.text
    return reply.json()["predictions"]


def as_rows(values: np.ndarray, keys: list[str]) -> list[dict[str, float]]:
    return [dict(zip(keys, row, strict=True)) for row in np.asarray(values, dtype=float).tolist()]


def local(estimator: Any, frame: pd.DataFrame, kind: str, targets: list[str] | None = None) -> list[Any]:
    """What the estimator answers here, in the gateway's JSON form."""
    method = {"response": "predict", "prob": "predict_proba", "log_prob": "predict_log_proba",
              "decision": "decision_function", "score": "score_samples"}[kind]
    values = getattr(estimator, method)(frame)
    if kind in ("prob", "log_prob"):
        return as_rows(values, [str(c) for c in estimator.classes_])
    if np.ndim(values) == 2:
        return as_rows(values, targets or [str(i) for i in range(values.shape[1])])
    return [None if isinstance(v, float) and np.isnan(v) else v for v in np.asarray(values).tolist()]


# (model, params.type, rows): every family, and each method beyond predict, against local predict.
FAMILY_CASES = [
    ("gboost", "response"), ("gboost", "prob"), ("gboost", "decision"),
    ("histgb", "response"),
    ("outliers", "response"), ("outliers", "score"), ("outliers", "decision"),
    ("two_targets", "response"), ("two_anon", "response"),
    ("texts", "response"), ("texts", "prob"),
]
TARGETS = {"two_targets": ["spend", "visits"]}


@pytest.mark.parametrize(("model", "kind"), FAMILY_CASES, ids=[f"{m}-{k}" for m, k in FAMILY_CASES])
def test_each_family_predicts_through_the_gateway_as_it_does_locally(gw: Stack, built: dict[str, Any],
                                                                      model: str, kind: str) -> None:
    estimator, sample = built[model]
    rows = sample.iloc[:12]
    got = predict(gw, model, {"dataframe_records": records(rows), "params": {"type": kind}})
    expected = local(estimator, sent(rows), kind, TARGETS.get(model))
    assert_same(got, expected)


def assert_same(got: list[Any], expected: list[Any]) -> None:
    """Labels equal; numbers equal to 1e-12 (objects: same keys in the same order)."""
    if isinstance(expected[0], dict):
        assert [list(row) for row in got] == [list(row) for row in expected]
    if isinstance(expected[0], float | dict):
        np.testing.assert_allclose(pd.DataFrame(got).to_numpy(dtype=float),
                                   pd.DataFrame(expected).to_numpy(dtype=float), rtol=1e-12, atol=1e-12)
    else:
        assert got == expected


def test_histgb_takes_missing_values_as_nan_in_every_body_form(gw: Stack, built: dict[str, Any]) -> None:
    estimator, sample = built["histgb"]
    rows = sample.iloc[:15]
    assert rows["a"].isna().any() and rows["c"].isna().any()
    expected = estimator.predict(rows).tolist()
    assert predict(gw, "histgb", records(rows)) == pytest.approx(expected, rel=1e-12)
    csv = rows.to_csv(index=False, float_format="%.17g")  # NaN as an empty unquoted field
    reply = gw.post("/models/histgb/predict", data=csv, headers={"Content-Type": "text/csv"})
    assert reply.status_code == 200, reply.text
    assert reply.json()["predictions"] == pytest.approx(expected, rel=1e-12)


def test_mlflow_client_passes_params_type(gw: Stack, built: dict[str, Any]) -> None:
    estimator, sample = built["outliers"]
    rows = sample.iloc[:5]
    response = mlflow_client(gw.url, "outliers").invoke(rows, params={"type": "score"})
    got = response.get_predictions(predictions_format="ndarray").tolist()
    np.testing.assert_allclose(got, estimator.score_samples(rows), rtol=1e-12)


def test_methods_are_listed_in_metadata_and_openapi(gw: Stack) -> None:
    assert gw.get("/models/outliers").json()["params"] == {"type": ["response", "decision", "score"]}
    assert gw.get("/models/gboost").json()["params"] == {"type": ["response", "prob", "log_prob", "decision"]}
    assert gw.get("/models/histgb").json()["params"] == {"type": ["response"]}
    schemas = gw.get("/openapi.json").json()["components"]["schemas"]
    assert schemas["outliers_params"]["properties"]["type"]["enum"] == ["response", "decision", "score"]
    refused = gw.post("/models/histgb/predict", json={"inputs": {"a": [1.0], "b": [1.0], "c": [1.0]},
                                                      "params": {"type": "prob"}})
    assert refused.status_code == 400 and "must be one of response" in refused.json()["detail"]


def test_multi_output_is_one_object_per_row_in_every_protocol(gw: Stack, built: dict[str, Any]) -> None:
    estimator, sample = built["two_targets"]
    rows = sample.iloc[:3]
    expected = as_rows(estimator.predict(sent(rows)), ["spend", "visits"])
    native = predict(gw, "two_targets", records(rows))
    assert_same(native, expected)
    client = mlflow_client(gw.url, "two_targets")
    got = client.invoke(sent(rows)).get_predictions(predictions_format="dataframe")
    assert got.to_dict(orient="records") == native
    vetiver_frame = vetiver.predict(f"{gw.url}/vetiver/two_targets/predict", sent(rows))
    np.testing.assert_allclose(pd.DataFrame(vetiver_frame["predict"].tolist()).to_numpy(),  # sent with 10 digits
                               pd.DataFrame(native).to_numpy(), rtol=1e-8)
    anon = predict(gw, "two_anon", records(rows))
    assert [list(row) for row in anon] == [["0", "1"]] * 3
    assert gw.get("/v2/models/two_targets").json()["outputs"] == [
        {"name": "spend", "datatype": "FP64", "shape": [-1]}, {"name": "visits", "datatype": "FP64", "shape": [-1]}]
    v2 = triton.InferenceServerClient(url=gw.url.removeprefix("http://"))
    try:
        inputs = []
        for name in ("a", "b", "c"):
            tensor = triton.InferInput(name, [len(rows)], "FP64")
            tensor.set_data_from_numpy(sent(rows)[name].to_numpy(dtype=np.float64))
            inputs.append(tensor)
        result = v2.infer("two_targets", inputs)
        assert result.as_numpy("spend").tolist() == [row["spend"] for row in native]  # one tensor per target
        assert result.as_numpy("visits").tolist() == [row["visits"] for row in native]
    finally:
        v2.close()


def test_csv_quoted_empty_string_is_text_and_a_blank_is_missing(gw: Stack, built: dict[str, Any]) -> None:
    estimator, _ = built["texts"]
    reply = gw.post("/models/texts/predict", data='text\n""\n"great value"\n', headers={"Content-Type": "text/csv"})
    assert reply.status_code == 200, reply.text
    assert reply.json()["predictions"] == estimator.predict(pd.DataFrame({"text": ["", "great value"]})).tolist()
    # gboost's sample had no missing value: a blank field is a missing value, refused before the model
    missing = gw.post("/models/gboost/predict", data="a,b,c\n1,2,3\n1,,3\n", headers={"Content-Type": "text/csv"})
    assert missing.status_code == 422
    assert missing.json()["detail"] == "column 'b' does not allow missing values, got null at row 2"


@pytest.mark.parametrize("route", ["/models/gboost/predict", "/models/gboost/invocations", "/vetiver/gboost/predict"])
def test_null_in_a_non_nullable_column_is_a_422_before_the_model(gw: Stack, route: str) -> None:
    body = {"dataframe_split": {"columns": ["a", "b", "c"], "data": [[0.1, 0.2, 3.0], [0.1, None, 3.0]]}}
    reply = gw.post(route, json=body)
    assert reply.status_code == 422, reply.text
    text = reply.json().get("detail") or reply.json().get("message")
    assert text == "column 'b' does not allow missing values, got null at row 2"


def test_mlflow_client_sends_nan_and_the_native_route_still_refuses_it(gw: Stack, built: dict[str, Any]) -> None:
    estimator, sample = built["histgb"]
    rows = sample.iloc[:8]
    client = mlflow_client(gw.url, "histgb")
    got = client.invoke(rows).get_predictions(predictions_format="ndarray").tolist()  # bare NaN on the wire
    assert got == pytest.approx(estimator.predict(rows).tolist(), rel=1e-12)
    body = '{"dataframe_split": {"columns": ["a", "b", "c"], "data": [[NaN, 0.5, 1.0]]}}'
    native = gw.post("/models/histgb/predict", data=body, headers={"Content-Type": "application/json"})
    assert native.status_code == 400 and "NaN and Infinity are not JSON" in native.json()["detail"]


def test_unprefixed_mlflow_routes_serve_the_default_model(gw: Stack, built: dict[str, Any]) -> None:
    estimator, sample = built[DEFAULT_MODEL]
    client = ScoringServerClient("127.0.0.1", 0)
    client.url_prefix = gw.url  # what `mlflow models serve` clients call: /ping, /version, /invocations
    client.wait_server_ready(timeout=10)
    assert client.get_version() == MLFLOW_VERSION
    got = client.invoke(sample.iloc[:4]).get_predictions(predictions_format="ndarray").tolist()
    assert got == pytest.approx(estimator.predict(sample.iloc[:4]).tolist(), rel=1e-12)
    assert gw.get("/health").status_code == 200


def test_vetiver_client_sends_datetimes_as_epoch_ms(gw: Stack, built: dict[str, Any]) -> None:
    estimator, sample = built["stamped"]
    rows = sample.iloc[:3]
    with warnings.catch_warnings():  # pandas warns that to_json's epoch default will change
        warnings.simplefilter("ignore")
        assert '"when":1704067200000' in rows.to_json(orient="records")  # what vetiver really sends
        frame = vetiver.predict(f"{gw.url}/vetiver/stamped/predict", rows)
    assert frame["predict"].tolist() == pytest.approx(estimator.predict(rows).tolist(), rel=1e-8)  # 10 digits sent
    epoch = gw.post("/models/stamped/predict", json=[{"x": 0.5, "when": 1704067200000}])
    assert epoch.status_code == 422 and "expects datetime" in epoch.json()["detail"]  # native: ISO only


def test_vetiver_ping_prototype_and_pin_url(gw: Stack) -> None:
    pong = gw.get("/vetiver/stamped/ping").json()
    assert pong["ping"] == "pong" and pong["status"] == "online" and len(pong["time"]) == 19
    assert gw.get("/vetiver/stamped/prototype").json()["properties"]["when"] == {"type": "string",
                                                                                 "format": "date-time"}
    assert gw.get("/vetiver/stamped/prototype?format=r").json() == {
        "x": {"type": "numeric", "default": None, "details": []},
        "when": {"type": "POSIXct", "default": None, "details": {"tzone": "UTC"}}}
    pin = gw.get("/vetiver/stamped/pin-url")
    assert pin.status_code == 200 and pin.json() is None


R_CLIENT = r"""
args <- commandArgs(TRUE)
base <- args[1]
post <- function(path, body) httr::POST(paste0(base, path), body = body, encode = "json", httr::config(proxy = ""))
# httr unboxes length-one vectors: {"inputs": {"a": 0.5, ...}} and dataframe_split with scalars
scalars <- list(inputs = list(a = 0.5, b = -1.25, c = 3))
for (path in c("/models/histgb/predict", "/models/histgb/invocations", "/vetiver/histgb/predict")) {
  reply <- post(path, scalars)
  cat(path, httr::status_code(reply), httr::content(reply, as = "text", encoding = "UTF-8"), "\n")
}
split <- list(dataframe_split = list(columns = c("a", "b", "c"), data = list(c(0.5, -1.25, 3))))
reply <- post("/models/histgb/invocations", split)
cat("split", httr::status_code(reply), httr::content(reply, as = "text", encoding = "UTF-8"), "\n")
# a problem+json reply: httr's own parser gives up, gatewayr's gives a condition with the detail
bad <- post("/models/gboost/predict", list(inputs = list(a = 0.5, b = 1)))
parsed <- tryCatch(httr::content(bad, as = "parsed"), error = function(e) paste("httr:", conditionMessage(e)))
cat("parsed:", if (is.character(parsed)) parsed else "a list", "\n")
caught <- tryCatch(gatewayr::gateway_content(bad), gateway_error = function(e) e)
cat("condition:", class(caught)[1], caught$status, conditionMessage(caught), "\n")
# vetiver for R's health check reads `status` from /ping
pong <- httr::content(httr::GET(paste0(base, "/vetiver/histgb/ping"), httr::config(proxy = "")), as = "parsed")
cat("ping:", pong$status, pong$ping, "\n")
"""


def test_r_httr_unboxed_scalars_and_gatewayr_problem_conditions(gw: Stack, built: dict[str, Any]) -> None:
    estimator, _ = built["histgb"]
    one = estimator.predict(pd.DataFrame({"a": [0.5], "b": [-1.25], "c": [3.0]}))[0]
    result = subprocess.run(["Rscript", "-e", R_CLIENT, gw.url], capture_output=True, text=True,
                            env={**r_env(), "no_proxy": "*"}, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    native, invocations, vetiver_line, split, parsed, condition, ping = lines
    assert json.loads(native.split(" ", 2)[2])["predictions"] == [pytest.approx(one, rel=1e-12)]
    assert json.loads(invocations.split(" ", 2)[2])["predictions"] == [pytest.approx(one, rel=1e-12)]
    assert json.loads(vetiver_line.split(" ", 2)[2])["predict"] == [pytest.approx(one, rel=1e-12)]
    assert json.loads(split.split(" ", 2)[2])["predictions"] == [pytest.approx(one, rel=1e-12)]
    assert parsed.startswith("parsed: httr:")  # httr cannot parse application/problem+json
    assert condition == "condition: gateway_error 422 column 'c' is missing (HTTP 422) "
    assert ping == "ping: online pong "


def test_registering_records_methods_and_targets(built: dict[str, Any], store: Path) -> None:
    outputs = json.loads((store / "two_targets" / "1" / "model.json").read_text())["outputs"]
    assert outputs["targets"] == ["spend", "visits"] and outputs["methods"] == ["response"]
    outputs = json.loads((store / "outliers" / "1" / "model.json").read_text())["outputs"]
    assert outputs["methods"] == ["response", "decision", "score"]
