"""R integers are 32-bit with -2^31 as NA: the wire encoder refuses what R would turn into NA."""

from __future__ import annotations

import orjson
import pytest

from gateway.codecs import Table, encode_wire_request
from gateway.errors import InvalidInput
from gateway.meta import InputSpec

INPUTS = (InputSpec("cyl", "integer"), InputSpec("wt", "double"))


@pytest.mark.parametrize("value", [2**31 - 1, -(2**31) + 1, 0, None])
def test_values_r_holds_pass(value: int | None) -> None:
    body = orjson.loads(encode_wire_request(Table({"cyl": [value], "wt": [1.0]}, 1), INPUTS, {}))
    assert body["columns"]["cyl"] == [value]


@pytest.mark.parametrize("value", [2**31, -(2**31), 2**40, -(2**63)])
def test_values_r_cannot_hold_are_422_naming_column_and_row(value: int) -> None:
    with pytest.raises(InvalidInput, match=rf"column 'cyl' holds {value} at row 2, outside R's integer range"):
        encode_wire_request(Table({"cyl": [1, value], "wt": [1.0, 2.0]}, 2), INPUTS, {})


def test_doubles_are_not_limited() -> None:
    body = orjson.loads(encode_wire_request(Table({"cyl": [1], "wt": [1e300]}, 1), INPUTS, {}))
    assert body["columns"]["wt"] == [1e300]
