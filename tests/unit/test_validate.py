"""Validation and casting against a schema; the golden cases are shared with the R worker."""

from __future__ import annotations

import json
from typing import Any

import pytest

from gateway.codecs import Table, validate_table
from gateway.errors import InvalidInput
from gateway.meta import InputSpec, ModelMeta
from tests.conftest import DATA_DIR

GOLDEN = json.loads((DATA_DIR / "validation_cases.json").read_text(encoding="utf-8"))
SCHEMA = ModelMeta.from_json(
    {"name": "m", "version": "1", "language": "r", "format": "rds", "artefact": "x", "inputs": GOLDEN["schema"]}
).inputs


@pytest.mark.parametrize("case", GOLDEN["cases"], ids=[c["name"] for c in GOLDEN["cases"]])
def test_golden_validation_cases(case: dict[str, Any]) -> None:
    table = Table.from_records(case["rows"])
    if case["status"] == 200:
        validated = validate_table(table, SCHEMA, GOLDEN["model"])
        assert list(validated.columns) == [spec.name for spec in SCHEMA]
        assert validated.n_rows == len(case["rows"])
    else:
        with pytest.raises(InvalidInput) as caught:
            validate_table(table, SCHEMA, GOLDEN["model"])
        assert caught.value.status == case["status"]
        assert caught.value.detail == case["detail"]


def test_casts_to_declared_types() -> None:
    table = Table.from_records([{"wt": 3, "cyl": 6.0, "am": "auto"}])
    validated = validate_table(table, SCHEMA, "m")
    assert validated.columns == {"wt": [3.0], "cyl": [6], "am": ["auto"]}
    assert type(validated.columns["wt"][0]) is float
    assert type(validated.columns["cyl"][0]) is int


def test_extra_columns_can_be_ignored() -> None:
    table = Table.from_records([{"wt": 2.5, "cyl": 4, "am": "auto", "colour": "red"}])
    validated = validate_table(table, SCHEMA, "m", extra_columns="ignore")
    assert list(validated.columns) == ["wt", "cyl", "am"]


TEXT = [
    ("double", "2.5", 2.5),
    ("double", "1e3", 1000.0),
    ("integer", "7", 7),
    ("integer", "7.0", 7),
    ("logical", "TRUE", True),
    ("logical", "false", False),
    ("string", "ä", "ä"),
    ("date", "2024-02-29", "2024-02-29"),
    ("datetime", "2024-02-29T14:45:07+01:00", "2024-02-29T13:45:07Z"),
    ("datetime", "2024-02-29T13:45:07", "2024-02-29T13:45:07Z"),
]


@pytest.mark.parametrize(("kind", "text", "expected"), TEXT)
def test_csv_text_is_parsed_by_declared_type(kind: str, text: str, expected: Any) -> None:
    table = Table({"x": [text]}, 1, from_text=True)
    validated = validate_table(table, (InputSpec("x", kind),), "m")  # type: ignore[arg-type]
    assert validated.columns["x"] == [expected]


BAD_VALUES = [
    ("integer", "seven", "column 'x' expects integer, got 'seven' at row 1"),
    ("logical", "maybe", "column 'x' expects logical, got 'maybe' at row 1"),
    ("date", "2024-02-30", "column 'x' expects date, got '2024-02-30' at row 1"),
    ("double", "nan", "column 'x' expects double, got 'nan' at row 1"),
]


@pytest.mark.parametrize(("kind", "text", "detail"), BAD_VALUES)
def test_csv_text_that_does_not_parse_is_named(kind: str, text: str, detail: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        validate_table(Table({"x": [text]}, 1, from_text=True), (InputSpec("x", kind),), "m")  # type: ignore[arg-type]
    assert caught.value.detail == detail


def test_datetime_json_values_are_normalised_to_utc() -> None:
    table = Table.from_records([{"t": "2024-01-01T00:00:00.5-02:00"}])
    validated = validate_table(table, (InputSpec("t", "datetime"),), "m")
    assert validated.columns["t"] == ["2024-01-01T02:00:00.500000Z"]


@pytest.mark.parametrize(("text", "expected"), [
    ("0999-01-01T00:00:00", "0999-01-01T00:00:00Z"),  # strftime's %Y wrote "999-01-01..."
    ("0001-01-02T03:04:05.000006+01:00", "0001-01-02T02:04:05.000006Z"),
    ("9999-12-31T23:59:59", "9999-12-31T23:59:59Z"),
])
def test_datetimes_keep_a_four_digit_year(text: str, expected: str) -> None:
    validated = validate_table(Table.from_records([{"t": text}]), (InputSpec("t", "datetime"),), "m")
    assert validated.columns["t"] == [expected]


@pytest.mark.parametrize("text", ["0001-01-01T00:00:00+05:00", "9999-12-31T23:00:00-05:00"])
def test_datetimes_whose_utc_time_leaves_years_1_to_9999_are_named(text: str) -> None:
    """Converting these to UTC overflows Python's datetime: a 422, not a 500."""
    with pytest.raises(InvalidInput) as caught:
        validate_table(Table.from_records([{"t": text}]), (InputSpec("t", "datetime"),), "m")
    assert caught.value.detail == f"column 't' expects datetime, got '{text}' at row 1"
