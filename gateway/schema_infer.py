"""Infer a model's input schema from a sample of its training data (a pandas DataFrame)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from gateway.meta import InputSpec


def infer_inputs(sample: pd.DataFrame) -> tuple[InputSpec, ...]:
    """Column names, types and levels; declare a column `category` to give it levels."""
    specs = []
    for name in sample.columns:
        column = sample[name]
        dtype = column.dtype
        levels: tuple[str, ...] | None = None
        if isinstance(dtype, pd.CategoricalDtype):
            kind = "factor"
            levels = tuple(str(level) for level in dtype.categories)
        elif pd.api.types.is_bool_dtype(dtype):
            kind = "logical"
        elif pd.api.types.is_integer_dtype(dtype):
            kind = "integer"
        elif pd.api.types.is_float_dtype(dtype):
            kind = "double"
        elif pd.api.types.is_datetime64_any_dtype(dtype):
            kind = "datetime"
        else:
            kind = "string"
        pandas_dtype = "category" if kind == "factor" else str(dtype)
        specs.append(
            InputSpec(str(name), kind, levels, bool(column.isna().any()), pandas_dtype)  # type: ignore[arg-type]
        )
    return tuple(specs)


def infer_outputs(model: Any, sample: pd.DataFrame) -> dict[str, Any]:
    """Classifier (with its class labels) or regression, and the type of one prediction."""
    predicted = np.asarray(model.predict(sample.head(2)) if hasattr(model, "predict") else model(sample.head(2)))
    kind = "double" if predicted.dtype.kind == "f" else "integer" if predicted.dtype.kind in "iu" else "string"
    classes = getattr(model, "classes_", None)
    if classes is not None and hasattr(model, "predict_proba"):
        return {"kind": "classification", "type": kind, "classes": [_plain(c) for c in classes]}
    return {"kind": "regression", "type": kind, "classes": None}


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value
