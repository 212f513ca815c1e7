"""The R wire format, pinned by golden cases the testthat suite reads too."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest

from gateway.codecs import Table, decode_wire_reply, encode_wire_request, validate_table
from gateway.meta import ModelMeta
from tests.conftest import DATA_DIR

CASES = json.loads((DATA_DIR / "wire_roundtrip.json").read_text(encoding="utf-8"))["cases"]


def _inputs(schema: list[dict[str, Any]]) -> tuple:
    return ModelMeta.from_json(
        {"name": "m", "version": "1", "language": "r", "format": "rds", "artefact": "x", "inputs": schema}
    ).inputs


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_public_rows_become_the_golden_wire_request(case: dict[str, Any]) -> None:
    inputs = _inputs(case["schema"])
    rows = Table.from_columns(case["request"]["columns"]).rows()
    table = validate_table(Table.from_records(rows), inputs, "m")
    encoded = orjson.loads(encode_wire_request(table, inputs, {}))
    assert encoded == case["request"]
    for name, values in encoded["columns"].items():  # JSON keeps int vs float apart: check it
        expected = case["request"]["columns"][name]
        assert [type(v) for v in values] == [type(v) for v in expected]


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_golden_wire_reply_becomes_public_predictions(case: dict[str, Any]) -> None:
    predictions = decode_wire_reply(case["reply"], len(case["predictions"]))
    assert predictions == case["predictions"]


def test_reply_with_wrong_row_count_is_refused() -> None:
    with pytest.raises(ValueError, match="2 predictions for 3 rows"):
        decode_wire_reply({"predictions": [1, 2]}, 3)
    with pytest.raises(ValueError, match="does not hold one value per row"):
        decode_wire_reply({"predictions": {"a": [1]}}, 2)
    with pytest.raises(ValueError, match="no 'predictions'"):
        decode_wire_reply({"error": "x"}, 1)
