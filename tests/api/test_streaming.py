"""Streamed predict: NDJSON or CSV in, NDJSON or CSV out, chunk by chunk, rows numbered across
the whole body (Flask test client over a real store; the live stack test is in integration/)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pandas as pd
import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.api.conftest import make_app
from tests.api.test_predict import IRIS_ROWS, load_estimator

CHUNK = 7  # rows per backend call: small, so every stream here spans several chunks


@pytest.fixture(scope="module")
def stream_app(model_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Flask:
    return make_app(model_store, tmp_path_factory.mktemp("stream"),
                    models={"iris": {"backend": "python", "batch": {"max_size": CHUNK}}})


@pytest.fixture
def client(stream_app: Flask) -> FlaskClient:
    return stream_app.test_client()


def rows(n: int) -> list[dict[str, float]]:
    return [{**IRIS_ROWS[i % 3], "sepal_length": 4.0 + (i % 40) / 10} for i in range(n)]


def ndjson(records: list[dict]) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in records)


def as_csv(records: list[dict]) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(records[0]))
    writer.writeheader()
    writer.writerows(records)
    return out.getvalue().encode()


def test_ndjson_in_ndjson_out_equals_the_model_row_for_row(client: FlaskClient, model_store: Path) -> None:
    records = rows(50)
    reply = client.post("/models/iris/predict", data=ndjson(records), content_type="application/x-ndjson")
    assert reply.status_code == 200, reply.data
    assert reply.content_type == "application/x-ndjson"
    assert reply.headers["X-Model-Version"] == "2"
    lines = [json.loads(line) for line in reply.data.splitlines()]
    expected = load_estimator(model_store, "iris", "2").predict(pd.DataFrame(records)).tolist()
    assert [line["prediction"] for line in lines] == expected


def test_csv_in_csv_out_with_probabilities(client: FlaskClient, model_store: Path) -> None:
    records = rows(20)
    reply = client.post("/models/iris/predict?type=prob", data=as_csv(records), content_type="text/csv",
                        headers={"Accept": "text/csv"})
    assert reply.status_code == 200, reply.data
    table = list(csv.DictReader(io.StringIO(reply.data.decode())))
    model = load_estimator(model_store, "iris", "2")
    expected = model.predict_proba(pd.DataFrame(records))
    assert list(table[0]) == [str(c) for c in model.classes_]
    assert [[float(row[str(c)]) for c in model.classes_] for row in table] == expected.tolist()


def test_csv_without_a_streaming_accept_keeps_the_json_reply(client: FlaskClient) -> None:
    reply = client.post("/models/iris/predict", data=as_csv(rows(3)), content_type="text/csv")
    assert reply.status_code == 200
    assert len(reply.get_json()["predictions"]) == 3


def test_a_bad_row_in_a_later_chunk_ends_the_stream_with_a_problem_naming_its_row(client: FlaskClient) -> None:
    records = rows(30)
    records[22]["petal_width"] = "wide"  # row 23, in the fourth chunk of 7
    reply = client.post("/models/iris/predict", data=ndjson(records), content_type="application/x-ndjson")
    assert reply.status_code == 200
    lines = [json.loads(line) for line in reply.data.splitlines()]
    assert len(lines) == 21 + 1  # three whole chunks, then the problem
    problem = lines[-1]["error"]
    assert problem["status"] == 422
    assert "at row 23" in problem["detail"] and "petal_width" in problem["detail"]
    assert problem["model"] == "iris"


def test_on_error_fail_sends_nothing_but_the_problem(client: FlaskClient) -> None:
    records = rows(30)
    records[22]["petal_width"] = "wide"
    reply = client.post("/models/iris/predict?on_error=fail", data=ndjson(records),
                        content_type="application/x-ndjson")
    assert reply.status_code == 422
    assert reply.content_type == "application/problem+json"
    assert "at row 23" in reply.get_json()["detail"]


def test_a_problem_in_the_first_chunk_is_a_plain_error_reply(client: FlaskClient) -> None:
    body = b'{"sepal_length": 1}\nnot json\n'
    reply = client.post("/models/iris/predict", data=body, content_type="application/x-ndjson")
    assert reply.status_code == 400
    assert "line 2 of the NDJSON body is not JSON" in reply.get_json()["detail"]


def test_an_unknown_param_and_an_empty_body_are_refused_before_any_byte(client: FlaskClient) -> None:
    reply = client.post("/models/iris/predict?colour=red", data=ndjson(rows(2)), content_type="application/x-ndjson")
    assert reply.status_code == 400 and "colour" in reply.get_json()["detail"]
    reply = client.post("/models/iris/predict", data=b"\n\n", content_type="application/x-ndjson")
    assert reply.status_code == 400 and "no records" in reply.get_json()["detail"]
    header_only = ",".join(IRIS_ROWS[0]).encode() + b"\n"
    reply = client.post("/models/iris/predict", data=header_only, content_type="text/csv",
                        headers={"Accept": "text/csv"})
    assert reply.status_code == 400 and "no data rows" in reply.get_json()["detail"]


def test_the_stream_limit_is_separate_from_the_body_limit(client: FlaskClient) -> None:
    from tests.api.conftest import BODY_LIMIT

    body = ndjson(rows(BODY_LIMIT // 60 + 100))
    assert len(body) > BODY_LIMIT
    reply = client.post("/models/iris/predict", data=body, content_type="application/x-ndjson")
    assert reply.status_code == 200
    json_reply = client.post("/models/iris/predict", data=json.dumps(rows(BODY_LIMIT // 60 + 100)),
                             content_type="application/json")
    assert json_reply.status_code == 413
