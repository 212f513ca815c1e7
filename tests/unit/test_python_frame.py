"""The all-double fast path of to_frame builds the same frame as the per-column path."""

from __future__ import annotations

import math

import pandas as pd

from gateway.backends.python import to_frame
from gateway.codecs import Table
from gateway.meta import InputSpec

DOUBLES = (InputSpec("a", "double"), InputSpec("b", "double"))


def test_all_double_inputs_give_one_float64_frame_with_nan_for_missing() -> None:
    frame = to_frame(Table({"b": [3.0, 4.5], "a": [1.0, None]}, 2), DOUBLES)
    assert list(frame.columns) == ["a", "b"]  # the model's order, not the request's
    assert list(frame.dtypes) == ["float64", "float64"]
    assert frame["b"].tolist() == [3.0, 4.5]
    assert frame["a"][0] == 1.0 and math.isnan(frame["a"][1])


def test_the_fast_path_equals_the_per_column_path() -> None:
    table = Table({"a": [0.1, None, 7.0], "b": [2.0, 3.0, None]}, 3)
    mixed = (*DOUBLES, InputSpec("c", "string"))
    per_column = to_frame(Table({**table.columns, "c": ["x", "y", "z"]}, 3), mixed)[["a", "b"]]
    pd.testing.assert_frame_equal(to_frame(table, DOUBLES), per_column)
