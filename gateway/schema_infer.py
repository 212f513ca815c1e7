"""Infer a model's input schema from a sample of its training data (a pandas DataFrame)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from gateway.meta import METHODS, InputSpec


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


def infer_outputs(model: Any, sample: pd.DataFrame, targets: Sequence[str] | None = None) -> dict[str, Any]:
    """What the model answers: classifier (with its class labels) or regression, the type of one
    prediction, the target names of a multi-output model, and the `params.type` methods it really
    has (each is called once on the sample here, so one that fails is not offered).

    `targets` names the outputs of a model whose predict returns one column per target (the
    training frame's y columns); without it they are "0", "1", ...
    """
    head = sample.head(2)
    raw = model.predict(head) if hasattr(model, "predict") else model(head)
    predicted = np.asarray(raw)
    if targets is None and predicted.ndim == 2 and hasattr(raw, "columns"):  # a DataFrame names its outputs
        targets = [str(c) for c in raw.columns]
    kind = "double" if predicted.dtype.kind == "f" else "integer" if predicted.dtype.kind in "iu" else "string"
    width = predicted.shape[1] if predicted.ndim == 2 else 1
    if targets is not None and len(targets) != width:
        raise ValueError(f"targets names {len(targets)} outputs, but predict returns {width} per row")
    classes = getattr(model, "classes_", None)
    single = predicted.ndim == 1 or width == 1
    outputs: dict[str, Any]
    if single and classes is not None and _answers(model, "predict_proba", head, len(classes)):
        outputs = {"kind": "classification", "type": kind, "classes": [_plain(c) for c in np.ravel(classes)]}
    else:
        outputs = {"kind": "regression", "type": kind, "classes": None}
    if not single:
        outputs["targets"] = [str(t) for t in targets] if targets is not None else [str(i) for i in range(width)]
    n_classes = len(outputs["classes"] or ()) or None
    outputs["methods"] = [kind_ for kind_, method in METHODS.items()
                          if kind_ == "response" or (single and _answers(model, method, head, n_classes))]
    return outputs


def _answers(model: Any, method: str, head: pd.DataFrame, n_classes: int | None) -> bool:
    """Has the method and gives one value (or one per class) per row on the sample."""
    if not hasattr(model, method):  # sklearn hides methods a fitted model lacks (available_if)
        return False
    if method in ("predict_proba", "predict_log_proba") and n_classes is None:
        return False
    try:
        values = np.asarray(getattr(model, method)(head))
    except Exception:  # a method that cannot answer here is simply not offered
        return False
    if values.ndim == 1:
        return len(values) == len(head) and method in ("decision_function", "score_samples")
    return values.ndim == 2 and values.shape[0] == len(head) and (n_classes is None or values.shape[1] == n_classes)


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value
