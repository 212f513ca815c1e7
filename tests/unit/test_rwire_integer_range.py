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


def test_a_nul_in_a_string_column_is_422_not_cut_short() -> None:
    """R's strings end at NUL: jsonlite would hand the model "a" for "a\\u0000b", silently."""
    inputs = (InputSpec("note", "string"), InputSpec("colour", "factor", ("red",)))
    with pytest.raises(InvalidInput, match=r"column 'note' holds a NUL character at row 2, which R strings"):
        encode_wire_request(Table({"note": ["fine", "a\x00b"], "colour": ["red", "red"]}, 2), inputs, {})
    body = orjson.loads(encode_wire_request(Table({"note": ["a\u00e9\U0001f697", None]}, 2), inputs[:1], {}))
    assert body["columns"]["note"] == ["a\u00e9\U0001f697", None]
