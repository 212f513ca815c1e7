"""MLflow scoring protocol on a Python model, with bodies built by MLflow's own client code."""

from __future__ import annotations

import ast
import json

import pandas as pd
import pytest
from flask.testing import FlaskClient

from tests.clients import (
    ERROR_CODE_TO_HTTP_STATUS,
    MLFLOW_VERSION,
    REQUIRED_INPUT_FORMAT,
    ErrorCode,
    PredictionsResponse,
    dump_input_data,
)

ROWS = pd.DataFrame({"tenure": [3, 10, 40], "monthly": [50.5, 99.9, 20.25], "plan": ["basic", "pro", "plus"]})
IRIS = pd.DataFrame({"sepal_length": [5.1, 6.7], "sepal_width": [3.5, 3.0], "petal_length": [1.4, 5.2],
                     "petal_width": [0.2, 2.3]})


def native(client: FlaskClient, model: str, frame: pd.DataFrame, **params: str) -> list:
    body = {"dataframe_records": frame.to_dict(orient="records"), **({"params": params} if params else {})}
    reply = client.post(f"/models/{model}/predict", json=body)
    assert reply.status_code == 200, reply.get_data(as_text=True)
    return reply.get_json()["predictions"]


def invoke(client: FlaskClient, model: str, body: str | bytes, content_type: str = "application/json"):
    return client.post(f"/models/{model}/invocations", data=body, content_type=content_type)


def assert_mlflow_error(reply, status: int, code: str) -> dict:
    """MLflow's error shape; the code is one MLflow knows, and maps to our status where MLflow has one."""
    assert reply.status_code == status, reply.get_data(as_text=True)
    assert reply.mimetype == "application/json"
    body = reply.get_json()
    assert body["error_code"] == code and isinstance(body["message"], str)
    ErrorCode.Value(body["error_code"])  # raises for a name MLflow does not know
    assert ERROR_CODE_TO_HTTP_STATUS.get(code, status) in (status, 400)  # 415 and 422 travel as BAD_REQUEST kin
    return body


def test_mlflow_client_payload_predicts_like_the_native_route(client: FlaskClient) -> None:
    body = dump_input_data(ROWS)  # MLflow's serialisation: dataframe_split with pandas' index
    assert "dataframe_split" in json.loads(body)
    reply = invoke(client, "churn", body)
    assert reply.status_code == 200, reply.get_data(as_text=True)
    assert set(reply.get_json()) == {"predictions"}
    got = PredictionsResponse.from_json(reply.get_data(as_text=True)).get_predictions(predictions_format="ndarray")
    assert got.tolist() == native(client, "churn", ROWS)


@pytest.mark.parametrize("form", ["dataframe_records", "instances", "inputs", "csv"])
def test_every_mlflow_form_gives_the_same_predictions(client: FlaskClient, form: str) -> None:
    if form == "csv":
        reply = invoke(client, "churn", ROWS.to_csv(index=False), "text/csv")
    else:
        orient = "list" if form == "inputs" else "records"
        reply = invoke(client, "churn", json.dumps({form: ROWS.to_dict(orient=orient)}))
    assert reply.status_code == 200, reply.get_data(as_text=True)
    assert reply.get_json()["predictions"] == native(client, "churn", ROWS)


def test_params_ask_for_probabilities_as_mlflow_writes_frames(client: FlaskClient) -> None:
    reply = invoke(client, "iris", dump_input_data(IRIS, params={"type": "prob"}))
    assert reply.status_code == 200, reply.get_data(as_text=True)
    frame = PredictionsResponse.from_json(reply.get_data(as_text=True)).get_predictions()
    assert list(frame.columns) == ["setosa", "versicolor", "virginica"]
    assert frame.to_dict(orient="records") == native(client, "iris", IRIS, type="prob")


def test_one_row_is_a_list_of_one(client: FlaskClient) -> None:
    reply = invoke(client, "churn", dump_input_data(ROWS.iloc[:1]))
    assert len(reply.get_json()["predictions"]) == 1


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded",
                                          "application/json; charset=latin-1", "application/json; format=pandas-split"])
def test_other_media_types_charsets_and_parameters_are_415(client: FlaskClient, content_type: str) -> None:
    reply = invoke(client, "churn", dump_input_data(ROWS), content_type)
    assert_mlflow_error(reply, 415, "BAD_REQUEST")


def test_utf8_charset_is_accepted(client: FlaskClient) -> None:
    assert invoke(client, "churn", dump_input_data(ROWS), "application/json; charset=UTF-8").status_code == 200


@pytest.mark.parametrize("body", [
    ROWS.to_json(orient="records"),  # a bare list: the native route takes it, MLflow does not
    json.dumps({"data": [[1, 2, 3]]}),
    json.dumps({"instances": [], "inputs": {}}),
    "42",
])
def test_a_body_of_no_form_is_400_with_mlflows_hint(client: FlaskClient, body: str) -> None:
    message = assert_mlflow_error(invoke(client, "churn", body), 400, "BAD_REQUEST")["message"]
    assert hint_fields(message) == hint_fields(REQUIRED_INPUT_FORMAT)
    assert message.startswith(REQUIRED_INPUT_FORMAT.split("{")[0])


def hint_fields(text: str) -> set[str]:
    """The field names MLflow's hint lists (it prints a Python set, so their order varies)."""
    start, end = text.index("{"), text.index("}")
    return set(ast.literal_eval(text[start:end + 1]))


def test_malformed_json_and_unknown_params_are_400(client: FlaskClient) -> None:
    assert_mlflow_error(invoke(client, "churn", "{not json"), 400, "BAD_REQUEST")
    reply = invoke(client, "churn", dump_input_data(ROWS, params={"temperature": 1}))
    assert "unknown param 'temperature'" in assert_mlflow_error(reply, 400, "BAD_REQUEST")["message"]


def test_data_that_does_not_fit_is_422_and_unknown_model_404(client: FlaskClient) -> None:
    reply = invoke(client, "churn", dump_input_data(ROWS.drop(columns=["plan"])))
    assert "plan" in assert_mlflow_error(reply, 422, "INVALID_PARAMETER_VALUE")["message"]
    assert_mlflow_error(invoke(client, "nosuch", dump_input_data(ROWS)), 404, "ENDPOINT_NOT_FOUND")
    assert ERROR_CODE_TO_HTTP_STATUS["ENDPOINT_NOT_FOUND"] == 404


def test_ping_health_and_version_as_mlflow_serves_them(client: FlaskClient) -> None:
    for route in ("ping", "health"):
        reply = client.get(f"/models/iris/{route}")
        assert (reply.status_code, reply.get_data(), reply.mimetype) == (200, b"\n", "application/json")
    reply = client.get("/models/iris/version")
    assert reply.status_code == 200 and reply.get_data(as_text=True) == MLFLOW_VERSION
    assert_mlflow_error(client.get("/models/nosuch/ping"), 404, "ENDPOINT_NOT_FOUND")


def test_requests_are_counted_under_the_mlflow_protocol(client: FlaskClient) -> None:
    invoke(client, "churn", dump_input_data(ROWS))
    text = client.get("/metrics").get_data(as_text=True)
    assert 'protocol="mlflow"' in text and 'model="churn"' in text
