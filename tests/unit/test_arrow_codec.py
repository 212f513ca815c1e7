"""The Arrow codec by tables: which Arrow types carry which input type, what values come out,
and how predictions are written (gateway/codecs/arrow.py)."""

from __future__ import annotations

import datetime as dt
import io

import pyarrow as pa
import pytest

from gateway.codecs.arrow import ArrowPredictions, arrow_tables, check_schema
from gateway.errors import BadGateway, BadRequest, InvalidInput
from gateway.meta import InputSpec

FITS = [  # (our type, Arrow type, accepted)
    ("integer", pa.int8(), True), ("integer", pa.uint32(), True), ("integer", pa.int64(), True),
    ("integer", pa.float64(), False), ("integer", pa.string(), False),
    ("double", pa.float32(), True), ("double", pa.int64(), True), ("double", pa.string(), False),
    ("logical", pa.bool_(), True), ("logical", pa.int8(), False),
    ("string", pa.string(), True), ("string", pa.large_string(), True), ("string", pa.int64(), False),
    ("factor", pa.dictionary(pa.int8(), pa.string()), True), ("factor", pa.string(), True),
    ("factor", pa.dictionary(pa.int8(), pa.int64()), False),
    ("date", pa.date32(), True), ("date", pa.string(), True), ("date", pa.timestamp("s"), False),
    ("datetime", pa.timestamp("ms", tz="UTC"), True), ("datetime", pa.date32(), False),
    ("integer", pa.null(), True),
]


@pytest.mark.parametrize(("ours", "arrow_type", "accepted"), FITS, ids=lambda v: str(v))
def test_which_arrow_types_carry_which_input_type(ours: str, arrow_type: pa.DataType, accepted: bool) -> None:
    schema = pa.schema([("x", arrow_type)])
    spec = InputSpec(name="x", type=ours)
    if accepted:
        check_schema(schema, [spec], "m")
    else:
        with pytest.raises(InvalidInput, match=f"column 'x' expects {ours}, got Arrow type"):
            check_schema(schema, [spec], "m")


def stream(table: pa.Table, batch_rows: int) -> io.BytesIO:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        for batch in table.to_batches(max_chunksize=batch_rows):
            writer.write_batch(batch)
    return io.BytesIO(sink.getvalue().to_pybytes())


def test_values_come_out_as_json_would_bring_them_and_chunks_cross_batches() -> None:
    table = pa.table({
        "n": pa.array([1, None, 3, 4, 5], pa.int16()),
        "d": pa.array([dt.date(2024, 2, 29)] * 5, pa.date32()),
        "t": pa.array([dt.datetime(2024, 1, 1, 12, 30)] * 5, pa.timestamp("us")),
        "f": pa.array(["a", "b", "a", "b", "a"]).dictionary_encode(),
    })
    chunks = list(arrow_tables(stream(table, batch_rows=2), chunk_rows=3))
    assert [(first, t.n_rows) for first, t in chunks] == [(1, 3), (4, 2)]
    first = chunks[0][1].columns
    assert first["n"] == [1, None, 3] and type(first["n"][0]) is int
    assert first["d"][0] == "2024-02-29" and first["t"][0] == "2024-01-01T12:30:00Z"
    assert first["f"] == ["a", "b", "a"]


def test_an_empty_stream_and_a_non_stream_are_400s() -> None:
    with pytest.raises(BadRequest, match="no rows"):
        list(arrow_tables(stream(pa.table({"x": pa.array([], pa.int64())}), 1), 10))
    with pytest.raises(BadRequest, match="not an Arrow IPC stream"):
        list(arrow_tables(io.BytesIO(b"x,y\n1,2\n"), 10))


def test_the_first_chunk_fixes_the_reply_schema() -> None:
    writer = ArrowPredictions("m")
    data = writer.rows([1.5, 2.0]) + writer.rows([3, None]) + writer.end()
    table = pa.ipc.open_stream(data).read_all()
    assert table.column("prediction").to_pylist() == [1.5, 2.0, 3.0, None]
    strict = ArrowPredictions("m")
    strict.rows(["a"])
    with pytest.raises(BadGateway, match="model 'm' returned predictions Arrow cannot hold"):
        strict.rows([1.5])
    assert pa.ipc.open_stream(ArrowPredictions("m").end()).read_all().num_rows == 0
