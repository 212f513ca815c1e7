"""The MLflow and vetiver codecs, as tables of (input, expected)."""

from __future__ import annotations

import json

import pytest

from gateway.codecs.mlflow import decode_mlflow_request, encode_mlflow_error
from gateway.codecs.vetiver import decode_vetiver_request, prototype
from gateway.errors import BadRequest, GatewayError, InvalidInput, UnsupportedMediaType
from gateway.meta import InputSpec, ModelMeta

SPLIT = json.dumps({"dataframe_split": {"index": [0, 1], "columns": ["x"], "data": [[1.5], [2]]}}).encode()


@pytest.mark.parametrize(("content_type", "error"), [
    ("application/json", None),
    ("application/json; charset=utf-8", None),
    ("Application/JSON; charset=UTF-8", None),
    (None, UnsupportedMediaType),
    ("text/plain", UnsupportedMediaType),
    ("application/json; charset=latin-1", UnsupportedMediaType),
    ("application/json; format=pandas-split", UnsupportedMediaType),
])
def test_mlflow_media_types(content_type: str | None, error: type[GatewayError] | None) -> None:
    if error is None:
        assert decode_mlflow_request(SPLIT, content_type).table.columns == {"x": [1.5, 2]}
    else:
        with pytest.raises(error):
            decode_mlflow_request(SPLIT, content_type)


@pytest.mark.parametrize(("body", "columns", "params"), [
    ({"dataframe_records": [{"x": 1}]}, {"x": [1]}, {}),
    ({"instances": [{"x": 1}], "params": {"type": "prob"}}, {"x": [1]}, {"type": "prob"}),
    ({"inputs": {"x": [1, 2]}}, {"x": [1, 2]}, {}),
    ({"dataframe_split": {"columns": ["x"], "data": [[3]]}}, {"x": [3]}, {}),
])
def test_mlflow_forms(body: dict, columns: dict, params: dict) -> None:
    decoded = decode_mlflow_request(json.dumps(body).encode(), "application/json")
    assert (decoded.table.columns, decoded.params) == (columns, params)


@pytest.mark.parametrize("body", [[{"x": 1}], {}, {"x": [1]}, {"inputs": {"x": [1]}, "instances": [{"x": 1}]}, 1])
def test_mlflow_bodies_of_no_form(body: object) -> None:
    with pytest.raises(BadRequest, match="exactly one of the input fields"):
        decode_mlflow_request(json.dumps(body).encode(), "application/json")


@pytest.mark.parametrize(("error", "code"), [
    (BadRequest("x"), "BAD_REQUEST"), (InvalidInput("x"), "INVALID_PARAMETER_VALUE"),
    (UnsupportedMediaType("x"), "BAD_REQUEST"), (GatewayError("x"), "INTERNAL_ERROR"),
])
def test_mlflow_error_codes(error: GatewayError, code: str) -> None:
    assert json.loads(encode_mlflow_error(error, "rid")) == {"error_code": code, "message": "x", "request_id": "rid"}


META = ModelMeta(
    name="m", version="1", language="r", format="rds", artefact="model.rds",
    inputs=(InputSpec("wt", "double"), InputSpec("cyl", "integer"), InputSpec("am", "factor", ("auto", "manual")),
            InputSpec("day", "date", nullable=False)),
    outputs={}, sha256="", created_at="", framework={"r": "4.2", "stats": "4.2"},
)


@pytest.mark.parametrize(("content_type", "rows", "columns"), [
    (None, [{"wt": "NA", "cyl": 4, "am": "NA"}], {"wt": [None], "cyl": [4], "am": ["NA"]}),
    ("application/x-www-form-urlencoded", [{"wt": 1.5, "cyl": "NA"}], {"wt": [1.5], "cyl": [None]}),
    ("application/json", [{"wt": 2.0}], {"wt": [2.0]}),
])
def test_vetiver_na_is_missing_in_numeric_columns_only(content_type: str | None, rows: list, columns: dict) -> None:
    assert decode_vetiver_request(json.dumps(rows).encode(), content_type, META).table.columns == columns


def test_vetiver_refuses_other_media_types() -> None:
    with pytest.raises(UnsupportedMediaType):
        decode_vetiver_request(b"wt\n1", "text/csv", META)


def test_vetiver_prototype_from_model_json() -> None:
    assert prototype(META) == {
        "properties": {"wt": {"type": "number"}, "cyl": {"type": "integer"},
                       "am": {"type": "string", "enum": ["auto", "manual"]},
                       "day": {"type": "string", "format": "date"}},
        "required": ["wt", "cyl", "am", "day"], "title": "prototype", "type": "object"}
