"""Open Inference Protocol v2 REST through Flask's test client: every route and every error form."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from flask.testing import FlaskClient

from gateway.auth import write_keys
from gateway.instrument import REQUEST_LOG
from tests.api.conftest import BODY_LIMIT, make_app
from tests.api.test_auth import make_auth_app
from tests.conftest import churn_frame

IRIS = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
SETOSA, VIRGINICA = [5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]


def iris_request(**extra: Any) -> dict[str, Any]:
    inputs = [{"name": n, "shape": [2], "datatype": "FP64", "data": [SETOSA[i], VIRGINICA[i]]}
              for i, n in enumerate(IRIS)]
    return {"inputs": inputs, **extra}


def v2_error(reply, status: int) -> str:  # type: ignore[no-untyped-def]
    """The protocol's error form: `{"error": "..."}` and nothing else, as JSON, with our request id."""
    assert reply.status_code == status, reply.get_data(as_text=True)
    assert reply.content_type == "application/json"
    body = reply.get_json()
    assert list(body) == ["error"] and isinstance(body["error"], str)
    assert reply.headers["X-Request-ID"]
    return body["error"]


def test_server_metadata_live_and_ready(client: FlaskClient) -> None:
    meta = client.get("/v2").get_json()
    assert meta["name"] == "gateway" and meta["extensions"] == [] and meta["version"]
    assert client.get("/v2/health/live").get_json() == {"live": True}
    ready = client.get("/v2/health/ready")
    assert (ready.status_code, ready.get_json()) == (200, {"ready": True})


def test_model_metadata_lists_column_tensors_and_outputs(client: FlaskClient) -> None:
    iris = client.get("/v2/models/iris").get_json()
    assert iris["name"] == "iris" and iris["versions"] == ["1", "2"] and iris["platform"] == "python_skops"
    assert iris["inputs"] == [{"name": n, "datatype": "FP64", "shape": [-1]} for n in IRIS]
    assert iris["outputs"] == [{"name": "predictions", "datatype": "BYTES", "shape": [-1]}] + [
        {"name": c, "datatype": "FP64", "shape": [-1]} for c in ("setosa", "versicolor", "virginica")]
    churn = client.get("/v2/models/churn/versions/1").get_json()
    assert [(t["name"], t["datatype"]) for t in churn["inputs"]] == [
        ("tenure", "INT64"), ("monthly", "FP64"), ("plan", "BYTES")]
    assert churn["outputs"] == [{"name": "predictions", "datatype": "FP64", "shape": [-1]}]


def test_model_ready(client: FlaskClient) -> None:
    assert client.get("/v2/models/iris/ready").get_json() == {"name": "iris", "ready": True}
    assert client.get("/v2/models/iris/versions/1/ready").status_code == 200


def test_infer_echoes_the_id_and_answers_tensors(client: FlaskClient) -> None:
    reply = client.post("/v2/models/iris/infer", json=iris_request(id="req-7"))
    assert reply.status_code == 200
    assert reply.get_json() == {"model_name": "iris", "model_version": "2", "id": "req-7", "outputs": [
        {"name": "predictions", "datatype": "BYTES", "shape": [2], "data": ["setosa", "virginica"]}]}
    native = client.post("/models/iris/predict", json={"instances": [dict(zip(IRIS, SETOSA, strict=True)),
                                                                      dict(zip(IRIS, VIRGINICA, strict=True))]})
    assert native.get_json()["predictions"] == ["setosa", "virginica"]


def test_infer_without_an_id_answers_with_the_request_id(client: FlaskClient) -> None:
    reply = client.post("/v2/models/iris/versions/1/infer", json=iris_request())
    assert reply.get_json()["id"] == reply.headers["X-Request-ID"]
    assert reply.get_json()["model_version"] == "1"


def test_probabilities_are_one_tensor_per_class_and_match_native(client: FlaskClient) -> None:
    reply = client.post("/v2/models/iris/infer", json=iris_request(parameters={"type": "prob"})).get_json()
    assert [t["name"] for t in reply["outputs"]] == ["setosa", "versicolor", "virginica"]
    rows = [dict(zip(IRIS, SETOSA, strict=True)), dict(zip(IRIS, VIRGINICA, strict=True))]
    native = client.post("/models/iris/predict", json={"instances": rows, "params": {"type": "prob"}}).get_json()
    for tensor in reply["outputs"]:
        assert tensor["datatype"] == "FP64" and tensor["shape"] == [2]
        assert tensor["data"] == [row[tensor["name"]] for row in native["predictions"]]  # full precision


def test_requested_outputs_select_tensors(client: FlaskClient) -> None:
    body = iris_request(parameters={"type": "prob"}, outputs=[{"name": "virginica"}])
    reply = client.post("/v2/models/iris/infer", json=body).get_json()
    assert [t["name"] for t in reply["outputs"]] == ["virginica"]
    message = v2_error(client.post("/v2/models/iris/infer", json=iris_request(outputs=[{"name": "setosa"}])), 400)
    assert "output 'setosa'" in message and "prob" in message


def test_integer_and_string_columns(client: FlaskClient) -> None:
    frame, _ = churn_frame(3)
    inputs = [
        {"name": "tenure", "shape": [3], "datatype": "INT64", "data": frame["tenure"].tolist()},
        {"name": "monthly", "shape": [3, 1], "datatype": "FP64", "data": [[v] for v in frame["monthly"]]},
        {"name": "plan", "shape": [3], "datatype": "BYTES", "data": frame["plan"].astype(str).tolist()},
    ]
    reply = client.post("/v2/models/churn/infer", json={"inputs": inputs}).get_json()
    native = client.post("/models/churn/predict", json=json.loads(frame.astype({"plan": str}).to_json(
        orient="records"))).get_json()
    assert reply["outputs"] == [{"name": "predictions", "datatype": "FP64", "shape": [3],
                                 "data": native["predictions"]}]


def test_binary_inputs_as_tritonclient_sends_them(client: FlaskClient) -> None:
    raw = [np.array([SETOSA[i], VIRGINICA[i]], dtype="<f8").tobytes() for i in range(4)]
    header = json.dumps({"inputs": [{"name": n, "shape": [2], "datatype": "FP64",
                                     "parameters": {"binary_data_size": 16}} for n in IRIS],
                         "parameters": {"binary_data_output": True}}).encode()
    reply = client.post("/v2/models/iris/infer", data=header + b"".join(raw),
                        headers={"Inference-Header-Content-Length": str(len(header))})
    assert reply.status_code == 200, reply.get_data(as_text=True)
    assert reply.get_json()["outputs"][0]["data"] == ["setosa", "virginica"]


@pytest.mark.parametrize(("path", "status", "fragment"), [
    ("/v2/models/nope", 404, "model 'nope' does not exist"),
    ("/v2/models/nope/ready", 404, "model 'nope' does not exist"),
    ("/v2/models/iris/versions/9", 404, "no version '9'"),
    ("/v2/models/iris/versions/9/ready", 404, "no version '9'"),
    ("/v2/models/Bad-Name", 400, "not valid"),
    ("/v2/health/nope", 404, "the v2 routes are"),
    ("/v2/models/iris/infer", 404, "no route GET"),  # infer is POST only
])
def test_get_errors(client: FlaskClient, path: str, status: int, fragment: str) -> None:
    assert fragment in v2_error(client.get(path), status)


@pytest.mark.parametrize(("body", "headers", "status", "fragment"), [
    (b"{not json", {"Content-Type": "application/json"}, 400, "JSON"),
    (b'{"inputs": 3}', {"Content-Type": "application/json"}, 400, "'inputs' must be a non-empty list"),
    (b'{"inputs": [], "inputs": []}', {"Content-Type": "application/json"}, 400, "inputs"),
    (b"<xml/>", {"Content-Type": "application/xml"}, 415, "application/json"),
    (b"{}", {"Content-Type": "application/json; charset=latin-1"}, 415, "UTF-8"),
    (b"{}", {"Inference-Header-Content-Length": "9"}, 400, "Inference-Header-Content-Length"),
])
def test_malformed_bodies(client: FlaskClient, body: bytes, headers: dict, status: int, fragment: str) -> None:
    assert fragment in v2_error(client.post("/v2/models/iris/infer", data=body, headers=headers), status)


def test_data_that_do_not_fit_the_model_are_400_naming_the_problem(client: FlaskClient) -> None:
    """Our 422 becomes the protocol's 400; the message is the native one."""
    missing = iris_request()
    missing["inputs"].pop()
    assert v2_error(client.post("/v2/models/iris/infer", json=missing), 400) == "column 'petal_width' is missing"
    native = client.post("/models/iris/predict", json=[dict(zip(IRIS[:3], SETOSA, strict=False))])
    assert native.status_code == 422 and native.get_json()["detail"] == "column 'petal_width' is missing"
    extra = iris_request()
    extra["inputs"].append({"name": "colour", "shape": [2], "datatype": "BYTES", "data": ["a", "b"]})
    assert "column 'colour' is not an input" in v2_error(client.post("/v2/models/iris/infer", json=extra), 400)
    level = {"inputs": [{"name": "tenure", "shape": [1], "datatype": "INT64", "data": [3]},
                        {"name": "monthly", "shape": [1], "datatype": "FP64", "data": [20.5]},
                        {"name": "plan", "shape": [1], "datatype": "BYTES", "data": ["gold"]}]}
    assert "unknown level 'gold'" in v2_error(client.post("/v2/models/churn/infer", json=level), 400)


def test_params_are_checked_like_native(client: FlaskClient) -> None:
    reply = client.post("/v2/models/iris/infer", json=iris_request(parameters={"colour": "red"}))
    assert "unknown param 'colour'" in v2_error(reply, 400)
    reply = client.post("/v2/models/churn/infer", json={"inputs": [], "parameters": {"type": "prob"}})
    assert "non-empty list" in v2_error(reply, 400)


def test_unknown_model_and_version_on_infer(client: FlaskClient) -> None:
    assert "does not exist" in v2_error(client.post("/v2/models/nope/infer", json=iris_request()), 404)
    assert "no version '7'" in v2_error(client.post("/v2/models/iris/versions/7/infer", json=iris_request()), 404)


def test_body_over_the_limit_is_413(client: FlaskClient) -> None:
    body = b'{"inputs": [' + b" " * BODY_LIMIT + b"]}"
    message = v2_error(client.post("/v2/models/iris/infer", data=body, headers={"Content-Type": "application/json"}),
                       413)
    assert str(BODY_LIMIT) in message


def test_an_unloadable_model_makes_server_and_model_not_ready(model_store: Path, tmp_path: Path) -> None:
    client = make_app(model_store, tmp_path, {"iris": {"backend": "python"},
                                              "ghost": {"backend": "python", "optional": True}}).test_client()
    ready = client.get("/v2/health/ready")
    assert (ready.status_code, ready.get_json()) == (503, {"ready": False})
    assert client.get("/v2/health/live").status_code == 200
    assert "failed to load" in v2_error(client.get("/v2/models/ghost/ready"), 503)
    assert client.get("/v2/models/iris/ready").status_code == 200


def test_auth_errors_take_the_v2_form(model_store: Path, tmp_path: Path) -> None:
    keys_file = tmp_path / "keys.json"
    write_keys(keys_file, [])
    client = make_auth_app(model_store, tmp_path, keys_file).test_client()
    reply = client.post("/v2/models/iris/infer", json=iris_request())
    assert "needs an API key" in v2_error(reply, 401)
    assert reply.headers["WWW-Authenticate"].startswith("Bearer")


def test_infer_is_counted_and_logged_as_v2(client: FlaskClient, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger=REQUEST_LOG):
        client.post("/v2/models/iris/infer", json=iris_request())
        missing = iris_request()
        missing["inputs"].pop()
        client.post("/v2/models/iris/infer", json=missing)
    entries = [json.loads(r.getMessage()) for r in caplog.records if r.name == REQUEST_LOG]
    assert [(e["protocol"], e["model"], e["status"], e["rows"]) for e in entries] == [
        ("v2", "iris", 200, 2), ("v2", "iris", 400, None)]
    assert entries[1]["error"] == "column 'petal_width' is missing"
    metrics = client.get("/metrics").get_data(as_text=True)
    assert 'protocol="v2"' in metrics


@pytest.mark.parametrize("depth", [3, 500, 5000])
def test_deeply_nested_data_is_a_400_not_a_crash(client: FlaskClient, depth: int) -> None:
    data = "[" * depth + "1.0" + "]" * depth
    body = '{"inputs": [{"name": "sepal_length", "shape": [1, 1], "datatype": "FP64", "data": ' + data + "}]}"
    reply = client.post("/v2/models/iris/infer", data=body, headers={"Content-Type": "application/json"})
    assert reply.status_code == 400
    assert v2_error(reply, 400)
