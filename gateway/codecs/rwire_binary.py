"""The binary R wire, for the gateway's own hop to gatewayr (both R backends).

The JSON wire (rwire.py) costs R a parse and a kind check per value, and its reply a
shortest-digits formatting per double: two thirds of R's time at 10 000 rows, for values the
gateway has already validated. Here each column travels as one block R reads with one
`readBin` (r_services/R/decode.R, read_binary_wire), and predictions come back the same way.

Layout, both ways: one line of JSON, a newline, then every column's bytes back to back.
Request header `{"rows", "params", "columns": [{"name", "type", "bytes", "missing"}]}`; reply
header `{"rows", "shape": "vector" | "columns", "columns": [...]}`. Doubles are 8-byte and
integers and logicals 4-byte little-endian; text (string, factor, date, datetime) is
NUL-terminated UTF-8; "missing" lists the 1-based rows that are null (their bytes are filler).

A table this layout cannot carry as the JSON wire would (no rows, a value of an unexpected
Python type, a NUL in a text) gets None from `encode_binary_request`: the caller sends the JSON
wire, whose checks then answer as they always did.
"""

from __future__ import annotations

import sys
from array import array
from collections.abc import Sequence
from typing import Any

import orjson

from gateway.codecs.rwire import check_r_values
from gateway.codecs.table import Table
from gateway.meta import InputSpec

CONTENT_TYPE = "application/vnd.gatewayr.columns"
_TEXT = frozenset({"string", "factor", "date", "datetime"})
_LITTLE = sys.byteorder == "little"
_NUMBER = {"double": ("d", float), "integer": ("i", int), "logical": ("i", bool)}


def encode_binary_request(table: Table, inputs: Sequence[InputSpec], params: dict[str, Any],
                          model: str | None = None) -> bytes | None:
    """A validated Table → the binary wire body, or None where only the JSON wire says it right.

    Raises InvalidInput for a value R cannot hold, as encode_wire_request does.
    """
    check_r_values(table, inputs, model)
    types = {spec.name: spec.type for spec in inputs}
    if table.n_rows == 0 or any(name not in types for name in table.columns):
        return None
    heads: list[dict[str, Any]] = []
    blocks: list[bytes] = []
    for name, values in table.columns.items():
        block = _column_bytes(values, types[name], table.n_rows)
        if block is None:
            return None
        data, missing = block
        heads.append({"name": name, "type": types[name], "bytes": len(data), "missing": missing})
        blocks.append(data)
    header = orjson.dumps({"rows": table.n_rows, "params": params, "columns": heads})
    return b"".join([header, b"\n", *blocks])


def _column_bytes(values: list[Any], kind: str, n_rows: int) -> tuple[bytes, list[int]] | None:
    missing = [row for row, value in enumerate(values, start=1) if value is None] if None in values else []
    present = [v for v in values if v is not None] if missing else values
    if kind in _TEXT:
        if not set(map(type, present)) <= {str}:  # C-speed: no Python step per value
            return None
        filled = [v if v is not None else "" for v in values] if missing else values
        text = "\0".join(filled)
        if text.count("\0") != n_rows - 1:  # a NUL inside a value would shift every later one
            return None
        try:
            return (text + "\0").encode("utf-8"), missing
        except UnicodeEncodeError:  # a lone surrogate: the JSON wire refuses it in its own words
            return None
    if kind not in _NUMBER:
        return None
    code, python_type = _NUMBER[kind]
    if not set(map(type, present)) <= {python_type}:
        return None
    numbers = array(code, [0 if v is None else v for v in values] if missing else values)
    if not _LITTLE:
        numbers.byteswap()
    return numbers.tobytes(), missing


def decode_binary_reply(content: bytes) -> dict[str, Any]:
    """A binary wire reply → the document the JSON reply parses to, `{"predictions": ...}`.

    Raises ValueError when the body is not that layout.
    """
    newline = content.find(b"\n")
    if newline < 0:
        raise ValueError("the binary reply has no header line")
    try:
        head = orjson.loads(content[:newline])
        rows, shape, columns = int(head["rows"]), head["shape"], head["columns"]
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"the binary reply's header is not readable ({exc})") from None
    offset = newline + 1
    decoded: dict[str, list[Any]] = {}
    for column in columns:
        end = offset + int(column["bytes"])
        if end > len(content):
            raise ValueError(f"output {column['name']!r} runs past the reply's end")
        decoded[str(column["name"])] = _column_values(content[offset:end], column["type"], rows, column["missing"])
        offset = end
    if shape == "vector" and len(decoded) == 1:
        return {"predictions": next(iter(decoded.values()))}
    if shape == "columns":
        return {"predictions": decoded}
    raise ValueError(f"the binary reply's shape {shape!r} is not vector or columns")


def _column_values(data: bytes, kind: str, rows: int, missing: list[int]) -> list[Any]:
    values: list[Any]
    if kind == "string":
        values = data.decode("utf-8").split("\0")[:-1]
    elif kind in _NUMBER:
        numbers = array(_NUMBER[kind][0])
        numbers.frombytes(data)
        if not _LITTLE:
            numbers.byteswap()
        values = numbers.tolist() if kind != "logical" else [v != 0 for v in numbers]
    else:
        raise ValueError(f"an output of unknown type {kind!r}")
    if len(values) != rows:
        raise ValueError(f"{len(values)} values for {rows} rows")
    if not all(type(row) is int and 1 <= row <= rows for row in missing):
        raise ValueError("a missing row outside 1..rows")
    out: list[Any] = values  # holds None too (mypy narrowed `values` to its first assignment)
    for row in missing:
        out[row - 1] = None
    return out
