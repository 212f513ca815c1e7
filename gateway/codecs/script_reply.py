"""A user's Plumber script: send rows as its config says, normalise whatever it answers."""

from __future__ import annotations

from typing import Any

import orjson

from gateway.codecs.rwire import columns_to_rows
from gateway.codecs.table import Table

_PREDICTION_KEYS = (".pred", "predictions", "prediction", ".pred_class", "pred", "result")


def encode_script_request(table: Table, input_format: str) -> bytes:
    """Records `[{"col": v}, ...]` or columns `{"col": [...]}`, the two forms scripts parse."""
    if input_format == "columns":
        return orjson.dumps(table.columns)
    return orjson.dumps(table.rows())


def normalise_script_reply(document: Any, n_rows: int) -> list[Any]:
    """Whatever a script returned → one prediction per row.

    Understood: `{".pred": [...]}` and similar keys, a bare array, data.frame rows
    (`[{".pred": 1}, ...]` or several columns), columns of a data.frame, and an unboxed
    scalar for one row. jsonlite's `"NA"` becomes null. Raises ValueError otherwise.
    """
    predictions = _unwrap(document, n_rows)
    if len(predictions) != n_rows:
        raise ValueError(f"the script returned {len(predictions)} predictions for {n_rows} rows")
    return [_clean(value) for value in predictions]


def _unwrap(document: Any, n_rows: int) -> list[Any]:
    if isinstance(document, dict):
        for key in _PREDICTION_KEYS:
            if key in document:
                return _unwrap(document[key], n_rows)
        if document and all(isinstance(v, list) for v in document.values()):
            return columns_to_rows(document, n_rows)
        if n_rows == 1:
            return [document]
        raise ValueError(f"the script's reply object has no prediction key (keys: {sorted(document)})")
    if isinstance(document, list):
        if document and all(isinstance(row, dict) for row in document):
            return [_row_value(row) for row in document]
        if n_rows == 1 and len(document) == 1 and isinstance(document[0], list):
            return document[0]
        return document
    return [document]  # an unboxed scalar for one row


def _row_value(row: dict[str, Any]) -> Any:
    """A data.frame row: its one column's value, or the prediction column, or the whole row."""
    if len(row) == 1:
        return next(iter(row.values()))
    for key in _PREDICTION_KEYS:
        if key in row:
            return row[key]
    return row


def _clean(value: Any) -> Any:
    if value == "NA":
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list) and len(value) == 1:
        return _clean(value[0])  # jsonlite without auto_unbox boxes every scalar
    return value
