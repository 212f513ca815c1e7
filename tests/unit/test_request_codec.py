"""Every public request form, as a table of (body, content type) → columns, params."""

from __future__ import annotations

import pytest

from gateway.codecs import decode_request
from gateway.errors import BadRequest, UnsupportedMediaType

JSON = "application/json"
ROWS = {"a": [1, 3], "b": ["x", None]}

FORMS = [
    ("records", b'[{"a": 1, "b": "x"}, {"a": 3, "b": null}]', JSON, ROWS, {}),
    ("records with a key absent in one row", b'[{"a": 1, "b": "x"}, {"a": 3}]', JSON, ROWS, {}),
    ("instances", b'{"instances": [{"a": 1, "b": "x"}, {"a": 3, "b": null}]}', JSON, ROWS, {}),
    ("inputs as columns", b'{"inputs": {"a": [1, 3], "b": ["x", null]}}', JSON, ROWS, {}),
    ("inputs as records", b'{"inputs": [{"a": 1, "b": "x"}, {"a": 3, "b": null}]}', JSON, ROWS, {}),
    ("dataframe_split", b'{"dataframe_split": {"columns": ["a", "b"], "data": [[1, "x"], [3, null]]}}',
     JSON, ROWS, {}),
    ("dataframe_records", b'{"dataframe_records": [{"a": 1, "b": "x"}, {"a": 3, "b": null}]}', JSON, ROWS, {}),
    ("params ride along", b'{"instances": [{"a": 1}], "params": {"type": "prob"}}', JSON, {"a": [1]},
     {"type": "prob"}),
    ("no content type but JSON", b'[{"a": 1}]', None, {"a": [1]}, {}),
    ("charset utf-8 is fine", b'[{"a": 1}]', "application/json; charset=UTF-8", {"a": [1]}, {}),
    ("unicode column names", '[{"größe": 1.5}]'.encode(), JSON, {"größe": [1.5]}, {}),
    ("one row", b'[{"a": 0.1}]', JSON, {"a": [0.1]}, {}),
    ("csv", b"a,b\n1,x\n3,\n", "text/csv", {"a": ["1", "3"], "b": ["x", None]}, {}),
    ("csv with NA and BOM", "\ufeffa,b\n1,NA\n".encode(), "text/csv; charset=utf-8", {"a": ["1"], "b": [None]}, {}),
    # a quoted "" is the empty string, a blank field missing; quotes inside fields survive
    ("csv quoted empty vs blank", b'a,b\n"",x\n,"say ""hi"", ok"\n', "text/csv",
     {"a": ["", None], "b": ["x", 'say "hi", ok']}, {}),
    ("csv quoted empty, CRLF, trailing blank", b'a,b\r\n"",\r\n', "text/csv", {"a": [""], "b": [None]}, {}),
    # R's httr (encode = "json") unboxes length-one vectors: one row of scalars
    ("inputs of scalars (httr)", b'{"inputs": {"a": 1, "b": "x"}}', JSON, {"a": [1], "b": ["x"]}, {}),
    ("dataframe_split of scalars (httr)", b'{"dataframe_split": {"columns": ["a", "b"], "data": [1, "x"]}}', JSON,
     {"a": [1], "b": ["x"]}, {}),
    ("dataframe_split, one column and one value", b'{"dataframe_split": {"columns": "a", "data": 1}}', JSON,
     {"a": [1]}, {}),
    ("dataframe_split, one column unboxed rows", b'{"dataframe_split": {"columns": "a", "data": [1, 3]}}', JSON,
     {"a": [1, 3]}, {}),
    ("dataframe_records as one object", b'{"dataframe_records": {"a": 1, "b": "x"}}', JSON,
     {"a": [1], "b": ["x"]}, {}),
]


@pytest.mark.parametrize(("body", "ctype", "columns", "params"), [f[1:] for f in FORMS], ids=[f[0] for f in FORMS])
def test_forms_decode_to_the_same_columns(body: bytes, ctype: str | None, columns: dict, params: dict) -> None:
    decoded = decode_request(body, ctype)
    assert decoded.table.columns == columns
    assert decoded.table.n_rows == len(next(iter(columns.values())))
    assert decoded.params == params


def test_csv_values_stay_text_until_validation() -> None:
    assert decode_request(b"a\n1\n", "text/csv").table.from_text is True
    assert decode_request(b'[{"a": 1}]', JSON).table.from_text is False


def test_empty_json_list_is_zero_rows() -> None:
    assert decode_request(b"[]", JSON).table.n_rows == 0


BAD = [
    ("malformed JSON", b'[{"a": 1', JSON, BadRequest, "malformed JSON"),
    ("NaN is not JSON", b'[{"a": NaN}]', JSON, BadRequest, "malformed JSON"),
    ("empty body", b"", JSON, BadRequest, "empty"),
    ("unknown form", b'{"rows": []}', JSON, BadRequest, "unknown body form (unknown keys 'rows')"),
    ("two forms", b'{"instances": [], "inputs": {}}', JSON, BadRequest, "several forms"),
    ("only params", b'{"params": {}}', JSON, BadRequest, "no data"),
    ("scalar", b"3", JSON, BadRequest, "scalar"),
    ("record that is not an object", b"[1, 2]", JSON, BadRequest, "records[0] is a number"),
    ("ragged columns", b'{"inputs": {"a": [1], "b": [1, 2]}}', JSON, BadRequest, "different lengths"),
    ("ragged split", b'{"dataframe_split": {"columns": ["a"], "data": [[1, 2]]}}', JSON, BadRequest,
     "dataframe_split.data[0] must be a list of 1 values"),
    ("params not an object", b'{"instances": [], "params": 3}', JSON, BadRequest, "'params' must be an object"),
    ("ragged csv", b"a,b\n1\n", "text/csv", BadRequest, "line 2 has 1 fields"),
    ("empty csv", b"", "text/csv", BadRequest, "CSV body is empty"),
    ("csv not utf-8", b"a\n\xff\n", "text/csv", BadRequest, "not valid UTF-8"),
    ("form data", b"a=1", "application/x-www-form-urlencoded", UnsupportedMediaType, "curl -d"),
    ("xml", b"<a/>", "application/xml", UnsupportedMediaType, "'application/xml' is not supported"),
    ("latin-1", b'[{"a": 1}]', "application/json; charset=latin-1", UnsupportedMediaType, "charset 'latin-1'"),
    ("no content type, not JSON", b"a,b\n1,2", None, UnsupportedMediaType, "no Content-Type"),
    ("csv stray quote where \"\" is read", b'a,b\n"",x"y\n', "text/csv", BadRequest, "stray '\"' in line 2"),
    ("ragged csv where \"\" is read", b'a,b\n""\n', "text/csv", BadRequest, "line 2 has 1 fields"),
    ("scalars beside lists", b'{"inputs": {"a": 1, "b": [1]}}', JSON, BadRequest, "inputs.a is a number"),
]


@pytest.mark.parametrize(("body", "ctype", "error", "words"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_bodies_name_the_problem(body: bytes, ctype: str | None, error: type, words: str) -> None:
    with pytest.raises(error) as caught:
        decode_request(body, ctype)
    assert words in caught.value.detail
