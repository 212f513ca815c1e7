"""codecs/v2: Open Inference Protocol tensors ⇄ tables, as tables of (input, expected)."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest

from gateway.codecs.v2 import (
    decode_infer_request,
    encode_infer_response,
    output_metadata,
    tensor_metadata,
)
from gateway.codecs.v2_binary import split_binary
from gateway.errors import BadRequest
from gateway.meta import InputSpec, ModelMeta


def col(name: str, datatype: str, data: Any, shape: list[int] | None = None) -> dict[str, Any]:
    return {"name": name, "datatype": datatype, "shape": shape if shape is not None else [len(data)], "data": data}


DECODED = [
    # (request, columns, params, id, outputs)
    ({"inputs": [col("x", "FP64", [1.5, 2])]}, {"x": [1.5, 2]}, {}, None, None),
    ({"id": "42", "inputs": [col("cyl", "INT64", [4, 6]), col("am", "BYTES", ["auto", "manual"])]},
     {"cyl": [4, 6], "am": ["auto", "manual"]}, {}, "42", None),
    ({"inputs": [col("flag", "BOOL", [True, None])]}, {"flag": [True, None]}, {}, None, None),  # null: missing
    ({"inputs": [col("x", "FP32", [[1.0], [2.0]], [2, 1])]}, {"x": [1.0, 2.0]}, {}, None, None),  # nested [n, 1]
    ({"inputs": [col("x", "INT32", [7])], "parameters": {"type": "prob"}}, {"x": [7]}, {"type": "prob"}, None, None),
    # tritonclient's own parameters are the protocol's, never the model's
    ({"inputs": [col("x", "FP64", [1.0])], "parameters": {"binary_data_output": True, "priority": 1}},
     {"x": [1.0]}, {}, None, None),
    ({"inputs": [col("x", "FP64", [1.0])], "parameters": {"content_type": "pd", "headers": {}}},  # MLServer's
     {"x": [1.0]}, {}, None, None),
    ({"inputs": [col("x", "FP64", [1.0])], "outputs": [{"name": "predictions", "parameters": {"binary_data": True}}]},
     {"x": [1.0]}, {}, None, ("predictions",)),
]


@pytest.mark.parametrize(("request_body", "columns", "params", "request_id", "outputs"), DECODED)
def test_decode(request_body: dict, columns: dict, params: dict, request_id: str | None,
                outputs: tuple[str, ...] | None) -> None:
    decoded = decode_infer_request(request_body)
    assert decoded.table.columns == columns
    assert decoded.table.n_rows == len(next(iter(columns.values())))
    assert (decoded.params, decoded.id, decoded.outputs) == (params, request_id, outputs)


REFUSED = [
    ([], "inference request object"),
    ({"inputs": []}, "non-empty list"),
    ({"id": 42, "inputs": [col("x", "FP64", [1.0])]}, "'id' must be a string"),
    ({"inputs": [col("x", "FP64", [1.0]), col("x", "FP64", [2.0])]}, "'x' is given twice"),
    ({"inputs": [col("x", "FP64", [1.0]), col("y", "FP64", [1.0, 2.0])]}, "different lengths [1, 2]"),
    ({"inputs": [col("x", "FLOAT", [1.0])]}, "datatype 'FLOAT'"),
    ({"inputs": [col("x", "FP64", [1.0, 2.0], [3])]}, "shape [3] but 2 elements"),
    ({"inputs": [col("x", "FP64", [1.0, 2.0], [1, 2])]}, "shape [rows] or [rows, 1]"),
    ({"inputs": [col("x", "FP64", [1.0], [-1])]}, "non-negative integers"),
    ({"inputs": [col("x", "INT64", [1.5])]}, "INT64 but element 1 is 1.5"),
    ({"inputs": [col("x", "BOOL", [1])]}, "BOOL but element 1 is 1"),
    ({"inputs": [col("x", "BYTES", [3])]}, "BYTES but element 1 is 3"),
    ({"inputs": [col("x", "FP64", [True])]}, "FP64 but element 1 is True"),
    ({"inputs": [{"name": "x", "datatype": "FP64", "shape": [1]}]}, "has no 'data'"),
    ({"inputs": [col("x", "FP64", [[[1.0]]], [1, 1])]}, "nested deeper than a [rows, 1] column"),
    ({"inputs": [col("x", "FP64", {"a": 1}, [1])]}, "data of type dict"),
    ({"inputs": [col("x", "FP64", [{"a": 1}], [1])]}, "FP64 but element 1 is {'a': 1}"),
    ({"inputs": [{**col("x", "FP64", [1.0]), "parameters": {"binary_data_size": 8}}]}, "but 0 bytes are left"),
    ({"inputs": [col("x", "FP64", [1.0])], "parameters": []}, "'parameters' must be an object"),
    ({"inputs": [col("x", "FP64", [1.0])], "outputs": ["predictions"]}, "objects with a 'name'"),
]


@pytest.mark.parametrize(("request_body", "message"), REFUSED)
def test_refused(request_body: Any, message: str) -> None:
    with pytest.raises(BadRequest) as caught:
        decode_infer_request(request_body)
    assert message in caught.value.detail


def binary_input(name: str, datatype: str, raw: bytes, rows: int) -> dict[str, Any]:
    return {"name": name, "datatype": datatype, "shape": [rows], "parameters": {"binary_data_size": len(raw)}}


def strings(*values: bytes) -> bytes:
    return b"".join(len(v).to_bytes(4, "little") + v for v in values)


BINARY = [
    # (datatype, raw bytes, rows, values): the binary tensor data extension, as tritonclient sends it
    ("FP64", np.array([1.5, np.nan], dtype="<f8").tobytes(), 2, [1.5, None]),
    ("FP32", np.array([0.25], dtype="<f4").tobytes(), 1, [0.25]),
    ("INT64", np.array([4, -6], dtype="<i8").tobytes(), 2, [4, -6]),
    ("INT32", np.array([7], dtype="<i4").tobytes(), 1, [7]),
    ("BOOL", np.array([True, False], dtype="?").tobytes(), 2, [True, False]),
    ("BYTES", strings(b"auto", b"", "caf\u00e9".encode()), 3, ["auto", "", "caf\u00e9"]),
]


@pytest.mark.parametrize(("datatype", "raw", "rows", "values"), BINARY)
def test_decode_binary(datatype: str, raw: bytes, rows: int, values: list) -> None:
    tail = np.array([9] * rows, dtype="<i8").tobytes()  # a second binary input: offsets must add up
    document = {"inputs": [binary_input("a", datatype, raw, rows), binary_input("b", "INT64", tail, rows)]}
    decoded = decode_infer_request(document, raw + tail)
    assert decoded.table.columns == {"a": values, "b": [9] * rows}


@pytest.mark.parametrize(("document", "binary", "message"), [
    ({"inputs": [binary_input("a", "FP64", b"\0" * 8, 1)]}, b"\0" * 9, "1 bytes of binary data"),
    ({"inputs": [binary_input("a", "FP64", b"\0" * 7, 1)]}, b"\0" * 7, "not a whole number of FP64"),
    ({"inputs": [binary_input("a", "FP64", b"\0" * 16, 1)]}, b"\0" * 16, "shape [1] but 2 elements"),
    ({"inputs": [binary_input("a", "BYTES", strings(b"\xff"), 1)]}, strings(b"\xff"), "not UTF-8"),
    ({"inputs": [binary_input("a", "BYTES", b"\5\0\0\0ab", 1)]}, b"\5\0\0\0ab", "runs past the data"),
])
def test_binary_refused(document: dict, binary: bytes, message: str) -> None:
    with pytest.raises(BadRequest, match=re.escape(message)):
        decode_infer_request(document, binary)


def test_split_binary() -> None:
    assert split_binary(b'{"a":1}xyz', "7") == (b'{"a":1}', b"xyz")
    assert split_binary(b'{"a":1}', None) == (b'{"a":1}', b"")
    for bad in ("-1", "99", "x", "\u00b2", ""):
        with pytest.raises(BadRequest, match="Inference-Header-Content-Length"):
            split_binary(b"{}", bad)


ENCODED = [
    # (predictions, output tensors)
    ([21.5, 18], [{"name": "predictions", "datatype": "FP64", "shape": [2], "data": [21.5, 18]}]),
    ([1, 2], [{"name": "predictions", "datatype": "INT64", "shape": [2], "data": [1, 2]}]),
    (["setosa", None], [{"name": "predictions", "datatype": "BYTES", "shape": [2], "data": ["setosa", None]}]),
    ([True], [{"name": "predictions", "datatype": "BOOL", "shape": [1], "data": [True]}]),
    ([{"auto": 0.25, "manual": 0.75}, {"auto": 1.0, "manual": 0.0}],
     [{"name": "auto", "datatype": "FP64", "shape": [2], "data": [0.25, 1.0]},
      {"name": "manual", "datatype": "FP64", "shape": [2], "data": [0.75, 0.0]}]),
]


@pytest.mark.parametrize(("predictions", "tensors"), ENCODED)
def test_encode(predictions: list, tensors: list) -> None:
    assert encode_infer_response("m", "3", "abc", predictions, None) == {
        "model_name": "m", "model_version": "3", "id": "abc", "outputs": tensors,
    }


def test_encode_only_the_requested_outputs_in_their_order() -> None:
    response = encode_infer_response("m", "1", "i", [{"a": 0.5, "b": 0.5}], ("b",))
    assert [t["name"] for t in response["outputs"]] == ["b"]
    with pytest.raises(BadRequest, match=r"output 'a' is not produced here; outputs: predictions.*prob"):
        encode_infer_response("m", "1", "i", [0.5], ("a",))


def meta(inputs: tuple[InputSpec, ...], outputs: dict[str, Any]) -> ModelMeta:
    return ModelMeta("m", "1", "r", "rds", "model.rds", inputs, outputs, "", "", {})


def test_metadata_datatypes_follow_the_input_types() -> None:
    specs = tuple(InputSpec(t, t) for t in ("double", "integer", "logical", "string", "factor", "date", "datetime"))  # type: ignore[arg-type]
    assert [(t["name"], t["datatype"], t["shape"]) for t in tensor_metadata(specs)] == [
        ("double", "FP64", [-1]), ("integer", "INT64", [-1]), ("logical", "BOOL", [-1]), ("string", "BYTES", [-1]),
        ("factor", "BYTES", [-1]), ("date", "BYTES", [-1]), ("datetime", "BYTES", [-1]),
    ]


@pytest.mark.parametrize(("outputs", "expected"), [
    ({"kind": "regression"}, [("predictions", "FP64")]),  # R records only the kind
    ({"kind": "regression", "type": "integer", "classes": None}, [("predictions", "INT64")]),
    ({"kind": "classification", "classes": ["auto", "manual"]},
     [("predictions", "BYTES"), ("auto", "FP64"), ("manual", "FP64")]),
    ({"kind": "classification", "type": "integer", "classes": [0, 1]},
     [("predictions", "INT64"), ("0", "FP64"), ("1", "FP64")]),
])
def test_output_metadata(outputs: dict, expected: list) -> None:
    assert [(t["name"], t["datatype"]) for t in output_metadata(meta((), outputs))] == expected
