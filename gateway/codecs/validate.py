"""Check a Table against a model's inputs and cast every value to its declared type.

The messages are pinned by tests/data/validation_cases.json, which the R worker's validator
reads too: a client gets the same words whichever language serves the model.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from typing import Any

from gateway.codecs.table import Table
from gateway.errors import InvalidInput
from gateway.meta import InputSpec

_TRUE = {"true", "TRUE", "True", "T", "1"}
_FALSE = {"false", "FALSE", "False", "F", "0"}


class _Bad(Exception):
    """A value that does not fit its column; the caller adds column and row."""


def validate_table(
    table: Table, inputs: Sequence[InputSpec], model: str, *, extra_columns: str = "reject"
) -> Table:
    """Return a Table with exactly the model's columns, in its order, values cast.

    Raises InvalidInput (422) naming the first problem: no rows, a missing column, an
    unexpected column (unless extra_columns == "ignore"), a value of the wrong type, or a
    missing value in a column the model declared non-nullable (so the model never sees it).
    """
    if table.n_rows == 0:
        raise InvalidInput("the request has no rows", model=model)
    for spec in inputs:
        if spec.name not in table.columns:
            raise InvalidInput(f"column '{spec.name}' is missing", model=model)
    if extra_columns == "reject":
        expected = {spec.name for spec in inputs}
        for name in table.columns:
            if name not in expected:
                raise InvalidInput(f"column '{name}' is not an input of model '{model}'", model=model)
    columns: dict[str, list[Any]] = {}
    for spec in inputs:
        cast = _TEXT_CASTS.get(spec.type, _CASTS[spec.type]) if table.from_text else _CASTS[spec.type]
        values = table.columns[spec.name]
        if table.from_text and spec.type != "string":
            values = _blank_is_missing(values, spec)
        try:
            columns[spec.name] = _cast_column(values, cast, spec)
        except _Bad:
            raise InvalidInput(_first_problem(values, cast, spec), model=model) from None
    return Table(columns, table.n_rows)


def _blank_is_missing(values: list[Any], spec: InputSpec) -> list[Any]:
    """A quoted "" in CSV is the empty string only where a string can be empty: in a text
    column (or a factor that has "" as a level). Elsewhere, e.g. pandas' QUOTE_NONNUMERIC
    output, it is how the writer spelled a missing value."""
    if "" not in values or (spec.type == "factor" and spec.levels is not None and "" in spec.levels):
        return values
    return [None if v == "" else v for v in values]


def _cast_column(values: list[Any], cast: Callable[[Any, InputSpec], Any], spec: InputSpec) -> list[Any]:
    if not spec.nullable and None in values:  # a C-speed scan; no JSON value equals None
        raise _Bad
    # The common case first: a column that already holds the right Python type needs no cast.
    if spec.type == "double" and all(type(v) is float or v is None for v in values):
        return values
    return [None if v is None else cast(v, spec) for v in values]


def _first_problem(values: list[Any], cast: Callable[[Any, InputSpec], Any], spec: InputSpec) -> str:
    for row, value in enumerate(values, start=1):
        if value is None:
            if not spec.nullable:
                return f"column '{spec.name}' does not allow missing values, got null at row {row}"
            continue
        try:
            cast(value, spec)
        except _Bad:
            if spec.type == "factor" and isinstance(value, str):
                return (
                    f"column '{spec.name}' has unknown level {show(value)} at row {row}; "
                    f"known levels: {', '.join(spec.levels or ())}"
                )
            return f"column '{spec.name}' expects {spec.type}, got {show(value)} at row {row}"
    raise AssertionError("no bad value found")  # pragma: no cover - _cast_column raised


def show(value: Any) -> str:
    """A value as JSON would write it, strings in single quotes (as R's validator shows them)."""
    if isinstance(value, str):
        return f"'{value}'"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e16:
        return str(int(value)) if math.isfinite(value) else str(value)
    return str(value)


def _double(value: Any, spec: InputSpec) -> float:
    if type(value) is float:
        return value
    if type(value) is int:
        try:
            return float(value)
        except OverflowError:  # an integer literal beyond 1.8e308, e.g. 400 digits
            raise _Bad from None
    raise _Bad


_INT64 = (-(2**63), 2**63 - 1)  # what a backend can hold; a wider JSON integer is refused, not a 500


def _integer(value: Any, spec: InputSpec) -> int:
    if type(value) is int:
        number = value
    elif type(value) is float and value.is_integer():
        number = int(value)
    else:
        raise _Bad
    if not _INT64[0] <= number <= _INT64[1]:
        raise _Bad
    return number


def _logical(value: Any, spec: InputSpec) -> bool:
    if type(value) is bool:
        return value
    raise _Bad


def _string(value: Any, spec: InputSpec) -> str:
    if isinstance(value, str):
        return value
    raise _Bad


def _factor(value: Any, spec: InputSpec) -> str:
    if isinstance(value, str) and (spec.levels is None or value in spec.levels):
        return value
    raise _Bad


def _date(value: Any, spec: InputSpec) -> str:
    if isinstance(value, str):
        try:
            return date.fromisoformat(value).isoformat()
        except ValueError:
            pass
    raise _Bad


def _datetime(value: Any, spec: InputSpec) -> str:
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
            if moment.tzinfo is not None:
                moment = moment.astimezone(UTC).replace(tzinfo=None)
        except (ValueError, OverflowError):  # OverflowError: an offset that leaves years 1..9999
            raise _Bad from None
        # isoformat, not strftime: %Y writes year 999 as "999", which no ISO-8601 reader takes
        return moment.isoformat(timespec="microseconds" if moment.microsecond else "seconds") + "Z"
    raise _Bad


def _text_double(value: Any, spec: InputSpec) -> float:
    try:
        number = float(value)
    except ValueError:
        raise _Bad from None
    if not math.isfinite(number):  # "NaN", "inf" and "1e400" alike: JSON cannot carry them either
        raise _Bad
    return number


def _text_integer(value: Any, spec: InputSpec) -> int:
    try:
        return _integer(int(value), spec)
    except ValueError:
        return _integer(_text_double(value, spec), spec)


def _text_logical(value: Any, spec: InputSpec) -> bool:
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise _Bad


_CASTS: dict[str, Callable[[Any, InputSpec], Any]] = {
    "double": _double,
    "integer": _integer,
    "logical": _logical,
    "string": _string,
    "factor": _factor,
    "date": _date,
    "datetime": _datetime,
}
_TEXT_CASTS: dict[str, Callable[[Any, InputSpec], Any]] = {
    "double": _text_double,
    "integer": _text_integer,
    "logical": _text_logical,
}
