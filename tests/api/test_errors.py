"""Every failure is problem+json with the contract's status and a message naming the problem."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient

from tests.api.conftest import BODY_LIMIT

ROW = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}


def problem(reply, status: int) -> dict:  # type: ignore[no-untyped-def]
    assert reply.status_code == status, reply.get_data(as_text=True)
    assert reply.content_type == "application/problem+json"
    doc = reply.get_json()
    assert doc["status"] == status
    assert doc["request_id"] == reply.headers["X-Request-ID"]
    return doc


@pytest.mark.parametrize(
    ("body", "content_type", "status", "fragment"),
    [
        (b"{not json", "application/json", 400, "JSON"),
        (b'{"rows": []}', "application/json", 400, "instances"),
        (b"42", "application/json", 400, "JSON"),
        (b"a,b\n1", "text/csv", 400, "CSV"),
        (b"<xml/>", "application/xml", 415, "application/xml"),
        (b"[]", "application/json; charset=latin-1", 415, "latin-1"),
    ],
)
def test_malformed_bodies(client: FlaskClient, body: bytes, content_type: str, status: int, fragment: str) -> None:
    doc = problem(client.post("/models/iris/predict", data=body, headers={"Content-Type": content_type}), status)
    assert fragment.lower() in doc["detail"].lower()


def test_missing_column_is_named(client: FlaskClient) -> None:
    row = {k: v for k, v in ROW.items() if k != "petal_width"}
    doc = problem(client.post("/models/iris/predict", json=[row]), 422)
    assert doc["detail"] == "column 'petal_width' is missing"
    assert doc["model"] == "iris"


def test_extra_column_is_named(client: FlaskClient) -> None:
    doc = problem(client.post("/models/iris/predict", json=[{**ROW, "colour": "blue"}]), 422)
    assert doc["detail"] == "column 'colour' is not an input of model 'iris'"


def test_wrong_type_names_column_value_and_row(client: FlaskClient) -> None:
    rows = [ROW, {**ROW, "sepal_width": "wide"}]
    doc = problem(client.post("/models/iris/predict", json=rows), 422)
    assert doc["detail"] == "column 'sepal_width' expects double, got 'wide' at row 2"


def test_unknown_category_names_the_known_ones(client: FlaskClient) -> None:
    doc = problem(client.post("/models/churn/predict", json=[{"tenure": 1, "monthly": 2.0, "plan": "gold"}]), 422)
    assert doc["detail"] == "column 'plan' has unknown level 'gold' at row 1; known levels: basic, plus, pro"


def test_empty_request(client: FlaskClient) -> None:
    assert problem(client.post("/models/iris/predict", json=[]), 422)["detail"] == "the request has no rows"


def test_unknown_param_is_400(client: FlaskClient) -> None:
    doc = problem(client.post("/models/iris/predict", json={"instances": [ROW], "params": {"seed": 1}}), 400)
    assert "seed" in doc["detail"]


def test_probabilities_from_a_regressor_are_refused(client: FlaskClient) -> None:
    body = {"instances": [{"tenure": 1, "monthly": 2.0, "plan": "pro"}], "params": {"type": "prob"}}
    doc = problem(client.post("/models/churn/predict", json=body), 400)
    assert "response" in doc["detail"] and "churn" in doc["detail"]


def test_unknown_model_lists_the_served_ones(client: FlaskClient) -> None:
    doc = problem(client.post("/models/nope/predict", json=[ROW]), 404)
    assert "'nope'" in doc["detail"] and "iris" in doc["detail"]


def test_unknown_version(client: FlaskClient) -> None:
    doc = problem(client.post("/models/iris/versions/9/predict", json=[ROW]), 404)
    assert "'9'" in doc["detail"]


def test_unknown_route_is_json_too(client: FlaskClient) -> None:
    assert "/nowhere" in problem(client.get("/nowhere"), 404)["detail"]


def test_wrong_method_is_json(client: FlaskClient) -> None:
    problem(client.get("/models/iris/predict"), 405)


def test_body_over_the_limit_is_413(client: FlaskClient) -> None:
    body = b"[" + b",".join([b'{"sepal_length": 5.1}'] * (BODY_LIMIT // 20)) + b"]"
    assert len(body) > BODY_LIMIT
    doc = problem(client.post("/models/iris/predict", data=body, headers={"Content-Type": "application/json"}), 413)
    assert str(BODY_LIMIT) in doc["detail"]


def test_python_script_route_is_not_a_plumber_model(client: FlaskClient) -> None:
    doc = problem(client.get("/plumber/iris/hello"), 404)
    assert "not a Plumber script" in doc["detail"]
