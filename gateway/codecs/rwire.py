"""The R wire format, both ways: Table → columnar request with types; R reply → predictions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from gateway.codecs.table import Table
from gateway.meta import InputSpec


def encode_wire_request(table: Table, inputs: Sequence[InputSpec], params: dict[str, Any]) -> bytes:
    """A validated Table → `{"columns", "types", "params"}` (R builds typed columns from it)."""
    document = {
        "columns": table.columns,
        "types": {spec.name: spec.type for spec in inputs},
        "params": params,
    }
    return orjson.dumps(document)


def decode_wire_reply(document: Any, n_rows: int) -> list[Any]:
    """`{"predictions": [...]}` or columnar `{"predictions": {"out": [...]}}` → one per row.

    Raises ValueError when the reply is not that shape or has the wrong number of rows.
    """
    if not isinstance(document, dict) or "predictions" not in document:
        raise ValueError("the reply has no 'predictions'")
    predictions = document["predictions"]
    if isinstance(predictions, dict):
        return columns_to_rows(predictions, n_rows)
    if not isinstance(predictions, list):
        raise ValueError("'predictions' is neither a list nor an object of columns")
    if len(predictions) != n_rows:
        raise ValueError(f"{len(predictions)} predictions for {n_rows} rows")
    return predictions


def columns_to_rows(columns: dict[str, Any], n_rows: int) -> list[dict[str, Any]]:
    for name, values in columns.items():
        if not isinstance(values, list) or len(values) != n_rows:
            raise ValueError(f"output {name!r} does not hold one value per row ({n_rows})")
    names = list(columns)
    return [dict(zip(names, row, strict=True)) for row in zip(*columns.values(), strict=True)]
