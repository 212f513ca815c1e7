"""Predictions to JSON: NumPy values, NaN, integers, probabilities."""

from __future__ import annotations

import numpy as np
import orjson
import pandas as pd

from gateway.codecs import encode_predict_response, predictions_from_array, probabilities_to_rows


def test_numpy_floats_keep_full_precision_and_nan_is_null() -> None:
    values = predictions_from_array(np.array([0.123456789012345, np.nan, 1 / 3]))
    assert values == [0.123456789012345, None, 1 / 3]
    body = orjson.loads(encode_predict_response("m", "1", values, "rid"))
    assert body == {"model": "m", "version": "1", "predictions": [0.123456789012345, None, 1 / 3],
                    "request_id": "rid"}


def test_integers_stay_integers() -> None:
    values = predictions_from_array(np.array([1, 2], dtype=np.int64))
    assert values == [1, 2] and all(type(v) is int for v in values)


def test_object_arrays_of_numpy_scalars_become_plain() -> None:
    values = predictions_from_array(np.array([np.float32(0.5), "a", np.int16(3)], dtype=object))
    assert values == [0.5, "a", 3]
    assert orjson.loads(orjson.dumps(values)) == [0.5, "a", 3]


def test_column_vector_and_series_are_one_per_row() -> None:
    assert predictions_from_array(np.array([[1.5], [2.5]])) == [1.5, 2.5]
    assert predictions_from_array(pd.Series(["x", "y"])) == ["x", "y"]


def test_probabilities_are_objects_keyed_by_label() -> None:
    rows = probabilities_to_rows(np.array([[0.25, 0.75]]), np.array([0, 1]))
    assert rows == [{"0": 0.25, "1": 0.75}]
