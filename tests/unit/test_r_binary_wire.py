"""The binary R wire against the JSON wire, through a real embedded R (both R backends send it).

An echo model (predictions = its input columns) makes R decode every input type and encode
every output type; the binary path must answer what the JSON path answers, at 1, 100 and
10 000 rows, nulls included, and refuse bad data in the JSON path's words.
"""

from __future__ import annotations

import math
import random
import struct
import subprocess
from pathlib import Path
from typing import Any

import orjson
import pytest

from gateway.backends.rpy2 import EmbeddedR, Rpy2Backend
from gateway.codecs import Table, decode_binary_reply, encode_binary_request, encode_wire_request
from gateway.codecs.rwire_binary import CONTENT_TYPE
from gateway.errors import InvalidInput
from gateway.meta import InputSpec
from gateway.paths import REPO_ROOT
from gateway.settings import ModelSettings
from gateway.store import ModelStore
from tests.integration.r_models import r_env, rscript

# Every wire type, each with a missing value so the schema allows nulls.
ECHO_SAMPLE = """data.frame(
  x = c(1.5, NA), n = c(1L, NA), ok = c(TRUE, NA), s = c("a", NA),
  f = factor(c("lo", NA), levels = c("lo", "hi")), d = as.Date(c("2024-02-29", NA)),
  t = as.POSIXct(c("2024-01-02 03:04:05", NA), tz = "UTC"), stringsAsFactors = FALSE)"""


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("binwire") / "store"
    subprocess.run(["Rscript", str(REPO_ROOT / "demo" / "build_r_models.R"), str(path)], env=r_env(),
                   check=True, capture_output=True, timeout=120)
    rscript(f"gatewayr::save_model(function(newdata, type) newdata, commandArgs(TRUE)[1], 'echo', "
            f"sample = {ECHO_SAMPLE})", str(path))
    return path


@pytest.fixture(scope="module")
def served(store: Path) -> dict[str, Rpy2Backend]:
    models = ModelStore(store)
    out = {}
    for name in ("echo", "mtcars", "transmission"):
        backend = Rpy2Backend(models.read_meta(name, "1"), models.version_dir(name, "1"),
                              ModelSettings(name=name, backend="rpy2"))
        backend.load()
        out[name] = backend
    return out


def echo_table(n_rows: int) -> Table:
    rng = random.Random(n_rows)

    def maybe(value: Any) -> Any:
        return None if rng.random() < 0.1 else value

    columns: dict[str, list[Any]] = {"x": [], "n": [], "ok": [], "s": [], "f": [], "d": [], "t": []}
    for _ in range(n_rows):
        columns["x"].append(maybe(rng.choice([0.1, 1 / 3, -2.5e-300, 1e300, 0.0, 0.123456789])))
        columns["n"].append(maybe(rng.choice([0, -2147483647, 2147483647, 7])))
        columns["ok"].append(maybe(rng.random() < 0.5))
        columns["s"].append(maybe(rng.choice(["", "café", "a\nb", 'quote"', "日本"])))
        columns["f"].append(maybe(rng.choice(["lo", "hi"])))
        columns["d"].append(maybe(rng.choice(["2024-02-29", "1970-01-01", "0999-12-31"])))
        columns["t"].append(maybe(rng.choice(["2024-01-02T03:04:05Z", "2024-01-02T03:04:05.250Z"])))
    return Table(columns, n_rows)


def both_wires(backend: Rpy2Backend, table: Table, params: dict[str, Any]) -> tuple[Any, Any]:
    """(JSON wire document, binary wire document) for the same table, straight from R."""
    r: EmbeddedR = backend._r
    json_body = encode_wire_request(table, backend.meta.inputs, params).decode()
    binary_body = encode_binary_request(table, backend.meta.inputs, params)
    assert binary_body is not None
    with r.lock:
        json_status, json_reply, _, json_binary = r.predict(backend._loaded, json_body, 30.0)
        binary_status, binary_reply, _, binary_binary = r.predict(backend._loaded, binary_body, 30.0)
    assert (json_binary, binary_binary) == (False, binary_status == 200)
    binary_doc = decode_binary_reply(binary_reply) if binary_binary else orjson.loads(binary_reply)
    return (json_status, orjson.loads(json_reply)), (binary_status, binary_doc)


@pytest.mark.parametrize("n_rows", [1, 100, 10_000])
def test_every_type_and_null_round_trips_as_through_the_json_wire(served: dict[str, Rpy2Backend],
                                                                 n_rows: int) -> None:
    table = echo_table(n_rows)
    json_side, binary_side = both_wires(served["echo"], table, {})
    assert json_side[0] == binary_side[0] == 200
    assert binary_side[1] == json_side[1]
    predictions = binary_side[1]["predictions"]
    assert list(predictions) == list(table.columns)
    assert predictions["x"] == table.columns["x"]  # doubles exact, nulls kept
    assert predictions["s"] == table.columns["s"]


@pytest.mark.parametrize("n_rows", [1, 100, 10_000])
# transmission's classes are not compared: randomForest breaks a tied vote at random.
@pytest.mark.parametrize(("model", "params"), [("mtcars", {}), ("transmission", {"type": "prob"})])
def test_demo_models_answer_the_same_on_both_wires(served: dict[str, Rpy2Backend], model: str,
                                                  params: dict[str, Any], n_rows: int) -> None:
    rng = random.Random(n_rows)
    inputs = served[model].meta.inputs
    columns = {spec.name: [rng.choice(spec.levels) if spec.levels else
                           (rng.choice([4, 6, 8]) if spec.type == "integer" else round(rng.uniform(1, 300), 3))
                           for _ in range(n_rows)] for spec in inputs}
    (json_status, json_doc), (binary_status, binary_doc) = both_wires(served[model], Table(columns, n_rows), params)
    assert json_status == binary_status == 200
    assert close(binary_doc, json_doc)


def close(a: Any, b: Any) -> bool:
    """Equal, doubles to 1 ulp: the JSON reply is 15 to 17 digits that R's own strtod judged
    enough, and R's strtod can be 1 ulp off; the binary reply is R's exact double."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(close(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(close(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and isinstance(b, float):
        return a == b or abs(a - b) <= math.ulp(max(abs(a), abs(b)))
    return a == b


@pytest.mark.parametrize(
    ("column", "value", "words"),
    [
        ("f", "mid", "column 'f' has unknown level 'mid' at row 2"),
        ("d", "2023-02-29", "column 'd' expects date, got '2023-02-29' at row 2"),
    ],
)
def test_bad_values_the_gateway_let_through_are_refused_in_the_json_wires_words(
        served: dict[str, Rpy2Backend], column: str, value: str, words: str) -> None:
    table = echo_table(3)
    table.columns[column][1] = value
    json_side, binary_side = both_wires(served["echo"], table, {})
    assert json_side == binary_side
    assert binary_side[0] == 422 and words in binary_side[1]["error"]["message"]


def test_a_null_where_the_model_allows_none_names_column_and_row(served: dict[str, Rpy2Backend]) -> None:
    backend = served["mtcars"]
    table = Table({"wt": [2.5, None], "hp": [110.0, 120.0], "cyl": [4, 6], "am": ["auto", "manual"]}, 2)
    json_side, binary_side = both_wires(backend, table, {})
    assert json_side == binary_side
    assert binary_side[1]["error"]["message"] == "column 'wt' does not allow missing values, got null at row 2"
    with pytest.raises(InvalidInput, match="column 'wt' does not allow missing values"):
        backend.predict(table, {})


def test_an_unknown_param_is_the_same_400_on_both_wires(served: dict[str, Rpy2Backend]) -> None:
    json_side, binary_side = both_wires(served["mtcars"], Table({"wt": [2.5], "hp": [1.0], "cyl": [4],
                                                                  "am": ["auto"]}, 1), {"level": 0.9})
    assert json_side == binary_side and binary_side[0] == 400


def test_the_binary_layout() -> None:
    table = Table({"x": [1.5, None], "s": ["a", None], "n": [3, 4]}, 2)
    specs = [InputSpec("x", "double", None, True), InputSpec("s", "string", None, True),
             InputSpec("n", "integer", None, False)]
    body = encode_binary_request(table, specs, {"type": "response"})
    assert body is not None
    header, _, blocks = body.partition(b"\n")
    assert orjson.loads(header) == {"rows": 2, "params": {"type": "response"}, "columns": [
        {"name": "x", "type": "double", "bytes": 16, "missing": [2]},
        {"name": "s", "type": "string", "bytes": 3, "missing": [2]},
        {"name": "n", "type": "integer", "bytes": 8, "missing": []}]}
    assert blocks == struct.pack("<2d", 1.5, 0.0) + b"a\x00\x00" + struct.pack("<2i", 3, 4)
    assert CONTENT_TYPE == "application/vnd.gatewayr.columns"


@pytest.mark.parametrize(
    "columns",
    [{"s": ["a\x00b"]}, {"s": ["\ud800"]}, {"x": ["1.5"]}, {"n": [True]}, {"x": []}, {"other": [1.0]}],
    ids=["NUL in a text", "lone surrogate", "string in a double column", "bool in an integer column",
         "no rows", "a column without a type"],
)
def test_what_only_the_json_wire_says_right_goes_as_json(columns: dict[str, list[Any]]) -> None:
    specs = [InputSpec("x", "double", None, True), InputSpec("s", "factor", None, True),
             InputSpec("n", "integer", None, True)]
    n_rows = len(next(iter(columns.values())))
    assert encode_binary_request(Table(columns, n_rows), specs, {}) is None


@pytest.mark.parametrize(
    "content",
    [b"no header", b'{"rows": 2}\n', b'{"rows": 1, "shape": "vector", "columns": '
     b'[{"name": null, "type": "double", "bytes": 16, "missing": []}]}\n12345678',
     b'{"rows": 1, "shape": "vector", "columns": [{"name": null, "type": "raw", "bytes": 0, "missing": []}]}\n',
     b'{"rows": 1, "shape": "vector", "columns": [{"name": null, "type": "double", "bytes": 8, "missing": [0]}]}\n'
     + bytes(8)],
    ids=["no newline", "no shape", "short body", "unknown type", "missing row 0"],
)
def test_an_unreadable_binary_reply_is_a_value_error(content: bytes) -> None:
    with pytest.raises(ValueError):
        decode_binary_reply(content)
