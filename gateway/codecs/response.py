"""Predictions → the public JSON response. NumPy values become plain JSON here.

NumPy is not imported by this module: values can only be NumPy's in a process that has imported
it (a model did), so a process that never loads a model (the idle job runner) does not carry it.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from typing import Any

import orjson

_JSON_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS


def predictions_from_array(values: Any, targets: Sequence[str] | None = None) -> list[Any]:
    """One JSON-ready element per row from whatever a model's predict returned.

    A 2-D result with several columns (a multi-output model) gives one object per row keyed by
    `targets` (the names recorded at registration), else by "0", "1", ...
    """
    np = sys.modules.get("numpy")
    if np is not None and isinstance(values, np.ndarray):
        if values.ndim == 2 and values.shape[1] == 1:
            values = values[:, 0]
        if values.ndim == 2:
            names = list(targets) if targets is not None else [str(i) for i in range(values.shape[1])]
            if len(names) != values.shape[1]:
                raise ValueError(f"expected {len(names)} outputs per row ({', '.join(names)}), "
                                 f"got an array of shape {values.shape}")
            return [dict(zip(names, _clean(row), strict=True)) for row in values.tolist()]
        if values.ndim != 1:
            raise ValueError(f"expected one prediction per row, got an array of shape {values.shape}")
        return _clean(values.tolist())  # tolist() gives Python scalars, which orjson writes fast
    if hasattr(values, "to_numpy"):  # pandas Series or DataFrame
        if targets is None and hasattr(values, "columns") and len(values.columns) > 1:
            targets = [str(c) for c in values.columns]
        return predictions_from_array(values.to_numpy(), targets)
    return _clean(list(values))


def probabilities_to_rows(matrix: Any, classes: Sequence[Any]) -> list[dict[str, Any]]:
    """An (n_rows, n_classes) matrix → per-row objects keyed by class label."""
    import numpy as np

    labels = [str(c) for c in classes]
    rows = np.asarray(matrix, dtype=float).tolist()
    return [dict(zip(labels, _clean(row), strict=True)) for row in rows]


def _clean(values: list[Any]) -> list[Any]:
    """NaN is a missing value (null); NumPy scalars left in object arrays become Python ones."""
    np = sys.modules.get("numpy")
    generic = np.generic if np is not None else ()
    out = values
    for index, value in enumerate(values):
        if isinstance(value, float):
            if math.isnan(value):
                out[index] = None
        elif isinstance(value, generic):
            item = value.item()
            out[index] = None if isinstance(item, float) and math.isnan(item) else item
    return out


def encode_predict_response(model: str, version: str, predictions: list[Any], request_id: str) -> bytes:
    return orjson.dumps(
        {"model": model, "version": version, "predictions": predictions, "request_id": request_id},
        option=_JSON_OPTIONS,
    )


def dumps(document: Any) -> bytes:
    return orjson.dumps(document, option=_JSON_OPTIONS)
