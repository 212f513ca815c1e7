"""The R wire format, both ways: Table → columnar request with types; R reply → predictions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from gateway.codecs.table import Table
from gateway.errors import InvalidInput
from gateway.meta import InputSpec

R_INTEGER = (-(2**31) + 1, 2**31 - 1)  # -2^31 is NA_integer_ in R


def encode_wire_request(table: Table, inputs: Sequence[InputSpec], params: dict[str, Any],
                        model: str | None = None) -> bytes:
    """A validated Table → `{"columns", "types", "params"}` (R builds typed columns from it).

    Raises InvalidInput for a value R cannot hold: R's integers are 32-bit and -2^31 is
    NA_integer_, so such a value would silently become a missing value and a null prediction;
    R's strings end at a NUL character, so "a\\u0000b" would reach the model as "a".
    """
    check_r_values(table, inputs, model)
    document = {
        "columns": table.columns,
        "types": {spec.name: spec.type for spec in inputs},
        "params": params,
    }
    return orjson.dumps(document)


def check_r_values(table: Table, inputs: Sequence[InputSpec], model: str | None = None) -> None:
    """Raise InvalidInput for the first value R cannot hold (see encode_wire_request)."""
    for spec in inputs:
        if spec.type == "integer" and spec.name in table.columns:
            _check_r_integers(spec.name, table.columns[spec.name], model)
        if spec.type == "string" and spec.name in table.columns:
            _check_r_strings(spec.name, table.columns[spec.name], model)


def _check_r_integers(name: str, values: list[Any], model: str | None) -> None:
    present = [v for v in values if v is not None] if None in values else values
    if not present or (R_INTEGER[0] <= min(present) and max(present) <= R_INTEGER[1]):
        return  # min and max at C speed; the loop below only runs to name the row
    for row, value in enumerate(values, start=1):
        if value is not None and not R_INTEGER[0] <= value <= R_INTEGER[1]:
            raise InvalidInput(
                f"column '{name}' holds {value} at row {row}, outside R's integer range "
                f"{R_INTEGER[0]}..{R_INTEGER[1]}; send it as a double-typed column or a smaller number",
                model=model,
            )


def _check_r_strings(name: str, values: list[Any], model: str | None) -> None:
    for row, value in enumerate(values, start=1):
        if value is not None and "\x00" in value:
            raise InvalidInput(
                f"column '{name}' holds a NUL character at row {row}, which R strings cannot hold "
                "(R would cut the text short there); remove it or send the text encoded",
                model=model,
            )


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
