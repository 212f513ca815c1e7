"""codecs/v2 against the bodies tritonclient itself builds and parses, for generated columns.

No server: `InferenceServerClient.generate_request_body` writes what the client would send (JSON
or binary tensors) and `parse_response_body` reads our reply as the client would.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
import tritonclient.http as triton
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.codecs import dumps
from gateway.codecs.request import parse_json
from gateway.codecs.v2 import decode_infer_request, encode_infer_response
from gateway.codecs.v2_binary import split_binary

KINDS: dict[str, tuple[Any, Any]] = {  # datatype → (element strategy, numpy dtype)
    "FP64": (st.floats(allow_nan=False, allow_infinity=False), np.float64),
    "INT64": (st.integers(-(2**63), 2**63 - 1), np.int64),
    "BOOL": (st.booleans(), np.bool_),
    "BYTES": (st.text(st.characters(exclude_categories=("Cs",))), np.object_),
}


@st.composite
def tables(draw: st.DrawFn) -> dict[str, tuple[str, list[Any]]]:
    rows = draw(st.integers(1, 6))
    names = draw(st.lists(st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True), min_size=1, max_size=4, unique=True))
    columns = {}
    for name in names:
        datatype = draw(st.sampled_from(sorted(KINDS)))
        columns[name] = (datatype, draw(st.lists(KINDS[datatype][0], min_size=rows, max_size=rows)))
    return columns


@settings(max_examples=150, deadline=None, database=None)
@given(table=tables(), binary=st.booleans())
def test_what_tritonclient_sends_decodes_to_the_same_columns(table: dict, binary: bool) -> None:
    inputs = []
    for name, (datatype, values) in table.items():
        array = np.array(values, dtype=KINDS[datatype][1])
        inputs.append(triton.InferInput(name, [len(values)], datatype).set_data_from_numpy(array, binary_data=binary))
    body, header_length = triton.InferenceServerClient.generate_request_body(
        inputs, request_id="r1", parameters={"type": "prob"})
    header, raw = split_binary(body, None if header_length is None else str(header_length))
    decoded = decode_infer_request(parse_json(header), raw)
    assert decoded.id == "r1" and decoded.params == {"type": "prob"}
    assert decoded.table.columns == {name: values for name, (_, values) in table.items()}


@settings(max_examples=150, deadline=None, database=None)
@given(values=st.one_of(
    st.lists(st.floats(allow_nan=False, allow_infinity=False), min_size=1, max_size=6),
    st.lists(st.integers(-(2**63), 2**63 - 1), min_size=1, max_size=6),
    st.lists(st.text(st.characters(exclude_categories=("Cs",))), min_size=1, max_size=6),
))
def test_what_we_answer_tritonclient_reads_back(values: list[Any]) -> None:
    body = dumps(encode_infer_response("m", "1", "r1", values, None))
    result = triton.InferenceServerClient.parse_response_body(body)
    assert result.get_response()["id"] == "r1"
    assert result.as_numpy("predictions").tolist() == values  # every digit, every integer bit


def test_probabilities_read_back_as_one_float_column_per_class() -> None:
    rows = [{"auto": 0.123456789012345678, "manual": 0.876543210987654321}, {"auto": 1.0, "manual": 0.0}]
    result = triton.InferenceServerClient.parse_response_body(
        orjson.dumps(encode_infer_response("m", "1", "r", rows, None)))
    assert result.as_numpy("auto").tolist() == [0.123456789012345678, 1.0]
    assert result.as_numpy("manual").dtype == np.float64
