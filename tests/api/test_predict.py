"""Every public request form gives the same predictions as the model itself."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from flask.testing import FlaskClient

IRIS_ROWS = [
    {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2},
    {"sepal_length": 6.7, "sepal_width": 3.0, "petal_length": 5.2, "petal_width": 2.3},
    {"sepal_length": 5.9, "sepal_width": 3.0, "petal_length": 4.2, "petal_width": 1.5},
]


def load_estimator(store: Path, name: str, version: str):  # type: ignore[no-untyped-def]
    path = store / name / version / "model.skops"
    return sio.load(path, trusted=sio.get_untrusted_types(file=path))


def expected(store: Path, rows: list[dict]) -> list[str]:
    return load_estimator(store, "iris", "2").predict(pd.DataFrame(rows)).tolist()


def body_forms(rows: list[dict]) -> dict[str, tuple[bytes, str]]:
    columns = list(rows[0])
    csv = ",".join(columns) + "\n" + "\n".join(",".join(str(r[c]) for c in columns) for r in rows)
    as_json = {
        "records": rows,
        "instances": {"instances": rows},
        "inputs": {"inputs": {c: [r[c] for r in rows] for c in columns}},
        "dataframe_split": {"dataframe_split": {"columns": columns, "data": [[r[c] for c in columns] for r in rows]}},
        "dataframe_records": {"dataframe_records": rows},
    }
    forms = {name: (json.dumps(doc).encode(), "application/json") for name, doc in as_json.items()}
    forms["csv"] = (csv.encode(), "text/csv")
    forms["json without content type"] = (json.dumps(rows).encode(), "")
    return forms


@pytest.mark.parametrize("form", list(body_forms(IRIS_ROWS)))
def test_every_request_form_predicts_like_the_estimator(client: FlaskClient, model_store: Path, form: str) -> None:
    body, content_type = body_forms(IRIS_ROWS)[form]
    headers = {"Content-Type": content_type} if content_type else {}
    reply = client.post("/models/iris/predict", data=body, headers=headers)
    assert reply.status_code == 200, reply.get_data(as_text=True)
    doc = reply.get_json()
    assert doc["model"] == "iris"
    assert doc["version"] == "2"
    assert doc["predictions"] == expected(model_store, IRIS_ROWS)
    assert doc["request_id"] == reply.headers["X-Request-ID"]


def test_one_row_is_still_a_list(client: FlaskClient, model_store: Path) -> None:
    reply = client.post("/models/iris/predict", json=IRIS_ROWS[:1])
    assert reply.get_json()["predictions"] == expected(model_store, IRIS_ROWS[:1])


def test_probabilities_are_objects_keyed_by_class_with_full_precision(
    client: FlaskClient, model_store: Path
) -> None:
    reply = client.post("/models/iris/predict", json={"instances": IRIS_ROWS, "params": {"type": "prob"}})
    assert reply.status_code == 200
    estimator = load_estimator(model_store, "iris", "2")
    matrix = estimator.predict_proba(pd.DataFrame(IRIS_ROWS))
    want = [dict(zip(estimator.classes_.tolist(), row, strict=True)) for row in matrix.tolist()]
    assert reply.get_json()["predictions"] == want  # exact float equality: nothing rounded


def test_categorical_pipeline_gets_its_training_dtypes(client: FlaskClient, model_store: Path) -> None:
    rows = [{"tenure": 12, "monthly": 49.5, "plan": "pro"}, {"tenure": 3, "monthly": 20.0, "plan": "basic"}]
    reply = client.post("/models/churn/predict", json=rows)
    assert reply.status_code == 200, reply.get_data(as_text=True)
    estimator = load_estimator(model_store, "churn", "1")
    frame = pd.DataFrame(rows).astype({"plan": pd.CategoricalDtype(["basic", "plus", "pro"])})
    np.testing.assert_array_equal(reply.get_json()["predictions"], estimator.predict(frame))


def test_a_pinned_version_answers_with_its_own_estimator(client: FlaskClient, model_store: Path) -> None:
    reply = client.post("/models/iris/versions/1/predict", json=IRIS_ROWS)
    assert reply.status_code == 200
    assert reply.get_json()["version"] == "1"
    assert reply.get_json()["predictions"] == load_estimator(model_store, "iris", "1").predict(
        pd.DataFrame(IRIS_ROWS)
    ).tolist()


def test_client_request_id_is_echoed(client: FlaskClient) -> None:
    reply = client.post("/models/iris/predict", json=IRIS_ROWS, headers={"X-Request-ID": "abc-123"})
    assert reply.headers["X-Request-ID"] == "abc-123"
    assert reply.get_json()["request_id"] == "abc-123"


def test_null_in_a_non_nullable_column_is_refused_before_the_model_runs(client: FlaskClient) -> None:
    # churn's sample had no missing value, so model.json declares every column non-nullable
    rows = [{"tenure": 12, "monthly": 9.5, "plan": "pro"}, {"tenure": 12, "monthly": None, "plan": "pro"}]
    reply = client.post("/models/churn/predict", json=rows)
    assert reply.status_code == 422
    assert reply.content_type == "application/problem+json"
    assert reply.get_json()["model"] == "churn"
    assert reply.get_json()["type"].endswith("/invalid_input")
    assert reply.get_json()["detail"] == "column 'monthly' does not allow missing values, got null at row 2"
