"""Codec tables for what real clients send and expect (issue 17): MLflow's bare NaN, vetiver's
epoch milliseconds and R prototype, multi-output rows, CSV "" against column types, non-nullable
columns, and the `params.type` methods recorded at registration."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import IsolationForest
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.svm import SVC

from gateway.codecs import Table, predictions_from_array, validate_table
from gateway.codecs.mlflow import decode_mlflow_request
from gateway.codecs.vetiver import decode_vetiver_request, ping_body, prototype_r
from gateway.errors import BadRequest, InvalidInput
from gateway.meta import InputSpec, ModelMeta
from gateway.schema_infer import infer_outputs
from tests.unit.test_store_register import iris_frame

JSON = "application/json"


def meta(*inputs: InputSpec) -> ModelMeta:
    return ModelMeta.from_json({"name": "m", "version": "1", "language": "python", "format": "skops",
                                "artefact": "x", "inputs": [spec.to_json() for spec in inputs]})


NAN_BODIES = [
    (b'{"dataframe_split": {"columns": ["x"], "data": [[NaN], [1.5]]}}', {"x": [None, 1.5]}),
    (b'{"dataframe_records": [{"x": NaN}]}', {"x": [None]}),
    (b'{"inputs": {"x": [1.0, NaN]}}', {"x": [1.0, None]}),
]


@pytest.mark.parametrize(("body", "columns"), NAN_BODIES)
def test_mlflow_route_reads_bare_nan_as_missing(body: bytes, columns: dict[str, Any]) -> None:
    assert decode_mlflow_request(body, JSON).table.columns == columns


@pytest.mark.parametrize("body", [b'{"inputs": {"x": [Infinity]}}', b'{"inputs": {"x": [-Infinity, NaN]}}',
                                  b'{"inputs": {"x": [NaN]'])
def test_mlflow_route_still_refuses_infinity_and_broken_json(body: bytes) -> None:
    with pytest.raises(BadRequest, match="malformed JSON"):
        decode_mlflow_request(body, JSON)


EPOCHS = [
    ("datetime", 1709296200000, "2024-03-01T12:30:00Z"),
    ("datetime", 1709296200123, "2024-03-01T12:30:00.123000Z"),
    ("datetime", -86400000, "1969-12-31T00:00:00Z"),
    ("date", 1709251200000, "2024-03-01"),
    ("datetime", "2024-03-01T12:30:00Z", "2024-03-01T12:30:00Z"),  # ISO still works
]


@pytest.mark.parametrize(("kind", "sent", "cast"), EPOCHS)
def test_vetiver_route_reads_epoch_milliseconds(kind: str, sent: Any, cast: str) -> None:
    model = meta(InputSpec("t", kind))  # type: ignore[arg-type]
    decoded = decode_vetiver_request(f'[{{"t": {sent!r}}}]'.replace("'", '"').encode(), None, model)
    assert validate_table(decoded.table, model.inputs, "m").columns == {"t": [cast]}


def test_an_epoch_beyond_year_9999_is_named_by_the_validator() -> None:
    model = meta(InputSpec("t", "datetime"))
    decoded = decode_vetiver_request(b'[{"t": 1e20}]', None, model)
    with pytest.raises(InvalidInput, match=r"column 't' expects datetime, got 1e\+20 at row 1"):
        validate_table(decoded.table, model.inputs, "m")


def test_vetiver_r_prototype_and_ping() -> None:
    model = meta(InputSpec("x", "double"), InputSpec("n", "integer"), InputSpec("f", "factor", ("a", "b")),
                 InputSpec("s", "string"), InputSpec("d", "date"), InputSpec("t", "datetime"),
                 InputSpec("l", "logical"))
    assert prototype_r(model) == {
        "x": {"type": "numeric", "default": None, "details": []},
        "n": {"type": "integer", "default": None, "details": []},
        "f": {"type": "factor", "default": None, "details": {"levels": ["a", "b"]}},
        "s": {"type": "character", "default": None, "details": []},
        "d": {"type": "Date", "default": None, "details": []},
        "t": {"type": "POSIXct", "default": None, "details": {"tzone": "UTC"}},
        "l": {"type": "logical", "default": None, "details": []},
    }
    assert ping_body(datetime(2024, 3, 1, 12, 30, 5, tzinfo=UTC)) == {
        "ping": "pong", "status": "online", "time": "2024-03-01 12:30:05"}


CSV_CELLS = [  # (column, CSV cells as decoded, validated values)
    (InputSpec("s", "string"), ["", None, "x"], ["", None, "x"]),
    (InputSpec("x", "double"), ["", None, "1.5"], [None, None, 1.5]),  # pandas QUOTE_NONNUMERIC writes ""
    (InputSpec("f", "factor", ("", "a")), ["", "a"], ["", "a"]),
    (InputSpec("f", "factor", ("a",)), ["", "a"], [None, "a"]),
]


@pytest.mark.parametrize(("spec", "cells", "cast"), CSV_CELLS, ids=[c[0].type for c in CSV_CELLS])
def test_csv_empty_string_counts_as_text_only_where_text_can_be_empty(spec: InputSpec, cells: list, cast: list) -> None:
    table = Table({spec.name: cells}, len(cells), from_text=True)
    assert validate_table(table, (spec,), "m").columns == {spec.name: cast}


def test_null_in_a_non_nullable_column_names_column_and_row() -> None:
    specs = (InputSpec("a", "double", nullable=False), InputSpec("s", "string", nullable=False))
    with pytest.raises(InvalidInput, match=r"^column 's' does not allow missing values, got null at row 3$"):
        validate_table(Table({"a": [1.0, 2.0, 3.0], "s": ["x", "", None]}, 3), specs, "m")
    csv_blank = Table({"a": ["1", ""], "s": ["x", "y"]}, 2, from_text=True)
    with pytest.raises(InvalidInput, match=r"^column 'a' does not allow missing values, got null at row 2$"):
        validate_table(csv_blank, specs, "m")


MULTI = [
    (np.array([[1.0, 2.0], [3.0, np.nan]]), ["y1", "y2"], [{"y1": 1.0, "y2": 2.0}, {"y1": 3.0, "y2": None}]),
    (np.array([[1.0, 2.0]]), None, [{"0": 1.0, "1": 2.0}]),
    (np.array([[1.5], [2.5]]), None, [1.5, 2.5]),  # one column is one value per row
]


@pytest.mark.parametrize(("values", "targets", "rows"), MULTI)
def test_multi_output_rows_are_keyed_by_target(values: np.ndarray, targets: list[str] | None, rows: list) -> None:
    assert predictions_from_array(values, targets) == rows


def test_methods_recorded_are_those_the_estimator_answers() -> None:
    frame, labels = iris_frame()
    assert infer_outputs(LogisticRegression(max_iter=500).fit(frame, labels), frame)["methods"] == [
        "response", "prob", "log_prob", "decision"]
    assert infer_outputs(SVC().fit(frame, labels), frame)["methods"] == ["response", "decision"]  # no probability
    assert infer_outputs(IsolationForest(n_estimators=5, random_state=0).fit(frame), frame)["methods"] == [
        "response", "decision", "score"]
    two = LinearRegression().fit(frame, np.c_[frame["sepal_length"], frame["petal_length"]])
    outputs = infer_outputs(two, frame, ["sepal", "petal"])
    assert (outputs["targets"], outputs["methods"]) == (["sepal", "petal"], ["response"])
    with pytest.raises(ValueError, match="targets names 1 outputs, but predict returns 2 per row"):
        infer_outputs(two, frame, ["only"])


def test_a_callable_answering_a_dataframe_names_its_targets() -> None:
    frame, _ = iris_frame()

    def both(data: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame({"area": data["sepal_length"] * data["sepal_width"], "ratio": data["petal_width"]})

    assert infer_outputs(both, frame)["targets"] == ["area", "ratio"]
    assert predictions_from_array(both(frame.head(1))) == [{"area": 5.1 * 3.5, "ratio": 0.2}]
