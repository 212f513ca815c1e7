"""Arrow IPC streams in and out of predict: types checked against the model's inputs (an
integer input takes Arrow integers only), nulls honoured, rows numbered across chunks and
record batches, predictions back as record batches (Flask test client over a real store)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.api.conftest import make_app
from tests.api.test_predict import load_estimator
from tests.conftest import churn_frame

ARROW = "application/vnd.apache.arrow.stream"
CHUNK = 7  # rows per backend call, so each body spans several chunks and record batches


@pytest.fixture(scope="module")
def arrow_app(model_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Flask:
    models = {name: {"backend": "python", "batch": {"max_size": CHUNK}} for name in ("iris", "churn")}
    return make_app(model_store, tmp_path_factory.mktemp("arrow"), models=models)


@pytest.fixture
def client(arrow_app: Flask) -> FlaskClient:
    return arrow_app.test_client()


def arrow_body(table: pa.Table, batch_rows: int = 5) -> bytes:
    """An IPC stream of `table` in record batches of `batch_rows` (not a multiple of CHUNK)."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        for batch in table.to_batches(max_chunksize=batch_rows):
            writer.write_batch(batch)
    return sink.getvalue().to_pybytes()


def read_arrow(data: bytes) -> pa.Table:
    return pa.ipc.open_stream(data).read_all()


def churn_table(n: int = 40) -> tuple[pd.DataFrame, pa.Table]:
    frame, _ = churn_frame(n)
    table = pa.table({"tenure": pa.array(frame["tenure"], pa.int32()),
                      "monthly": pa.array(frame["monthly"], pa.float64()),
                      "plan": pa.array(frame["plan"].astype(str)).dictionary_encode()})
    return frame, table


def test_arrow_in_arrow_out_equals_the_model_row_for_row(client: FlaskClient, model_store: Path) -> None:
    frame, table = churn_table()
    reply = client.post("/models/churn/predict", data=arrow_body(table), content_type=ARROW,
                        headers={"Accept": ARROW})
    assert reply.status_code == 200, reply.data
    assert reply.content_type == ARROW
    got = read_arrow(reply.data)
    assert got.schema.names == ["prediction"] and got.schema.field("prediction").type == pa.float64()
    expected = load_estimator(model_store, "churn", "1").predict(frame).tolist()
    assert got.column("prediction").to_pylist() == pytest.approx(expected, rel=1e-12)


def test_a_double_column_for_an_integer_input_is_refused_by_its_arrow_type(client: FlaskClient) -> None:
    _, table = churn_table()
    table = table.set_column(0, "tenure", table.column("tenure").cast(pa.float64()))
    reply = client.post("/models/churn/predict", data=arrow_body(table), content_type=ARROW)
    assert reply.status_code == 422
    assert reply.json is not None
    assert reply.json["detail"] == "column 'tenure' expects integer, got Arrow type double"


def test_a_null_is_a_missing_value_named_by_its_row_across_batches_and_chunks(client: FlaskClient) -> None:
    frame, table = churn_table()
    tenure = frame["tenure"].tolist()
    tenure[22] = None  # row 23: in the fourth chunk, the fifth record batch
    table = table.set_column(0, "tenure", pa.array(tenure, pa.int64()))
    reply = client.post("/models/churn/predict", data=arrow_body(table), content_type=ARROW,
                        headers={"Accept": "application/x-ndjson"})
    lines = [json.loads(line) for line in reply.data.splitlines()]
    assert len(lines) == 21 + 1  # three chunks of 7, then the problem
    assert lines[-1]["error"]["detail"] == "column 'tenure' does not allow missing values, got null at row 23"


def test_ndjson_and_csv_in_arrow_out_keep_the_prediction_types(client: FlaskClient, model_store: Path) -> None:
    records = [{"sepal_length": 5.1 + i / 10, "sepal_width": 3.5, "petal_length": 1.4 + i / 5, "petal_width": 0.2}
               for i in range(30)]
    expected = load_estimator(model_store, "iris", "2").predict(pd.DataFrame(records)).tolist()
    body = b"".join(json.dumps(r).encode() + b"\n" for r in records)
    reply = client.post("/models/iris/predict", data=body, content_type="application/x-ndjson",
                        headers={"Accept": ARROW})
    got = read_arrow(reply.data)
    assert got.column("prediction").to_pylist() == expected
    assert got.schema.field("prediction").type == pa.string()
    text = "sepal_length,sepal_width,petal_length,petal_width\n" + "".join(
        f"{r['sepal_length']},{r['sepal_width']},{r['petal_length']},{r['petal_width']}\n" for r in records)
    reply = client.post("/models/iris/predict", data=text, content_type="text/csv", headers={"Accept": ARROW})
    assert read_arrow(reply.data).column("prediction").to_pylist() == expected
    reply = client.post("/models/iris/predict?type=prob", data=body, content_type="application/x-ndjson",
                        headers={"Accept": ARROW})
    probs = read_arrow(reply.data)
    assert probs.num_rows == 30 and probs.schema.names == ["setosa", "versicolor", "virginica"]
    assert all(t == pa.float64() for t in probs.schema.types)


def test_a_body_that_is_not_an_arrow_stream_is_a_400(client: FlaskClient) -> None:
    reply = client.post("/models/churn/predict", data=b'{"inputs": []}', content_type=ARROW)
    assert reply.status_code == 400
    assert reply.json is not None and "not an Arrow IPC stream" in reply.json["detail"]
