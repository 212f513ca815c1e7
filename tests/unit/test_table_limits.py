"""Decoding stays proportional to the body: records that each bring new keys are refused."""

from __future__ import annotations

import orjson
import pytest

from gateway.codecs.request import decode_request
from gateway.errors import BadRequest


def test_rows_with_disjoint_keys_are_refused_before_rows_x_keys_cells_exist() -> None:
    # 3000 rows x 3000 keys would be 9 million cells from 3000 values (200 000 rows: 4e10).
    body = orjson.dumps([{f"k{i}": 1} for i in range(3000)])
    with pytest.raises(BadRequest, match="3000 rows with 3000 distinct keys but only 3000 values"):
        decode_request(body, "application/json")


@pytest.mark.parametrize("rows", [[{"a": 1, "b": None}, {"a": 2}, {"b": 3}] * 1000,
                                  [{f"k{i}": 1} for i in range(90)]])
def test_sparse_records_and_small_tables_still_decode(rows: list[dict]) -> None:
    table = decode_request(orjson.dumps(rows), "application/json").table
    assert table.n_rows == len(rows)
