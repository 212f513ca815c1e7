"""What users' Plumber scripts return, normalised to one prediction per row."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from gateway.codecs import Table, encode_script_request, normalise_script_reply

REPLIES = [
    ("tidymodels .pred", {".pred": [1.5, 2.5]}, 2, [1.5, 2.5]),
    ("bare array", [1.5, 2.5], 2, [1.5, 2.5]),
    ("data.frame rows", [{".pred": 1.5}, {".pred": 2.5}], 2, [1.5, 2.5]),
    ("data.frame rows, several columns", [{"a": 0.1, "b": 0.9}], 1, [{"a": 0.1, "b": 0.9}]),
    ("data.frame columns", {"a": [0.1, 0.2], "b": [0.9, 0.8]}, 2, [{"a": 0.1, "b": 0.9}, {"a": 0.2, "b": 0.8}]),
    ("unboxed scalar for one row", 4.2, 1, [4.2]),
    ("boxed scalars", [[4.2], [5.0]], 2, [4.2, 5.0]),
    ("one row, boxed twice", [[4.2]], 1, [4.2]),
    ("NA as a string", {".pred": [1.0, "NA"]}, 2, [1.0, None]),
    ("predictions key", {"predictions": ["a", "b"]}, 2, ["a", "b"]),
    ("class labels", {".pred_class": ["setosa"]}, 1, ["setosa"]),
]


@pytest.mark.parametrize(("reply", "n_rows", "expected"), [r[1:] for r in REPLIES], ids=[r[0] for r in REPLIES])
def test_script_replies_normalise(reply: Any, n_rows: int, expected: list[Any]) -> None:
    assert normalise_script_reply(reply, n_rows) == expected


def test_wrong_length_is_an_error() -> None:
    with pytest.raises(ValueError, match="3 predictions for 2 rows"):
        normalise_script_reply({".pred": [1, 2, 3]}, 2)


def test_unrecognised_object_for_several_rows_is_an_error() -> None:
    with pytest.raises(ValueError, match="no prediction key"):
        normalise_script_reply({"status": "ok"}, 2)


def test_requests_in_records_and_columns() -> None:
    table = Table({"speed": [4.0, 10.0]}, 2)
    assert orjson.loads(encode_script_request(table, "records")) == [{"speed": 4.0}, {"speed": 10.0}]
    assert orjson.loads(encode_script_request(table, "columns")) == {"speed": [4.0, 10.0]}
