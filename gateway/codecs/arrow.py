"""Apache Arrow IPC streams in and out: record batches read one at a time and cut into tables
of at most `chunk_rows` rows; predictions written back as record batches.

Arrow carries its types, so they are checked against the model's inputs before any value is
read: an `integer` input takes only Arrow integers (a double column is refused, where JSON
cannot tell 3 from 3.0), and nulls arrive as missing values. Dates and timestamps become the
ISO strings the validator reads from every other form.

pyarrow is imported on first use, not with this module: a process that never meets an Arrow body
(the idle job runner, the CLI) does not pay its ~30 MB and 0.1 s.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Callable, Iterator, Sequence
from typing import IO, TYPE_CHECKING, Any

from gateway.codecs.response import _clean
from gateway.codecs.table import Table
from gateway.errors import BadGateway, BadRequest, InvalidInput
from gateway.meta import InputSpec

if TYPE_CHECKING:
    import pyarrow as pa

ARROW = "application/vnd.apache.arrow.stream"


@functools.cache
def _accepts() -> dict[str, Callable[[pa.DataType], bool]]:
    """Our input type → the Arrow types that carry it without loss or guessing."""
    import pyarrow as pa

    types = pa.types

    def string(t: pa.DataType) -> bool:
        return bool(types.is_string(t) or types.is_large_string(t))

    return {
        "double": lambda t: types.is_floating(t) or types.is_integer(t),
        "integer": types.is_integer,
        "logical": types.is_boolean,
        "string": string,
        "factor": lambda t: string(t) or (types.is_dictionary(t) and string(t.value_type)),
        "date": lambda t: types.is_date(t) or string(t),
        "datetime": lambda t: types.is_timestamp(t) or string(t),
    }


def arrow_tables(
    body: IO[bytes], chunk_rows: int, inputs: Sequence[InputSpec] = (), model: str = ""
) -> Iterator[tuple[int, Table]]:
    """(number of the chunk's first row, from 1; its table) for each `chunk_rows` rows of the
    stream. The schema is checked against `inputs` before the first batch is read (422 naming
    the column and both types); a body that is not an Arrow stream is a 400."""
    import pyarrow as pa

    try:
        reader = pa.ipc.open_stream(pa.PythonFile(body, mode="r"))
    except (pa.ArrowInvalid, OSError) as exc:
        raise BadRequest(f"the body is not an Arrow IPC stream: {exc}") from None
    schema = reader.schema
    if len(set(schema.names)) != len(schema.names):
        raise BadRequest(f"the Arrow schema repeats a column name: {schema.names}")
    check_schema(schema, inputs, model)
    pending: list[pa.RecordBatch] = []
    held, first = 0, 1
    try:
        for batch in reader:
            offset = 0
            while offset < batch.num_rows:
                take = min(chunk_rows - held, batch.num_rows - offset)
                pending.append(batch.slice(offset, take))
                held, offset = held + take, offset + take
                if held == chunk_rows:
                    yield first, _table(schema, pending)
                    first, pending, held = first + held, [], 0
    except (pa.ArrowInvalid, OSError) as exc:
        raise BadRequest(f"malformed Arrow stream after row {first + held - 1}: {exc}") from None
    if held:
        yield first, _table(schema, pending)
    elif first == 1:
        raise BadRequest("the Arrow stream has no rows")


def check_schema(schema: pa.Schema, inputs: Sequence[InputSpec], model: str) -> None:
    """InvalidInput (422) for the first input whose Arrow type cannot carry its declared type;
    a column of nulls only (Arrow type null) fits any, the validator checks nullability."""
    import pyarrow as pa

    for spec in inputs:
        index = schema.get_field_index(spec.name)
        if index < 0:
            continue  # the validator names a missing column
        arrow_type = schema.field(index).type
        accepts = _accepts().get(spec.type)
        if accepts is not None and not pa.types.is_null(arrow_type) and not accepts(arrow_type):
            raise InvalidInput(f"column '{spec.name}' expects {spec.type}, got Arrow type {arrow_type}", model=model)


def _table(schema: pa.Schema, batches: list[pa.RecordBatch]) -> Table:
    import pyarrow as pa

    data = pa.Table.from_batches(batches, schema)
    columns = {name: _values(data.column(name).combine_chunks()) for name in schema.names}
    return Table(columns, data.num_rows)


def _values(array: pa.Array) -> list[Any]:
    """Plain Python values: ints stay ints, null is None, dates and times become ISO text."""
    import pyarrow as pa

    if pa.types.is_dictionary(array.type):
        array = array.dictionary_decode()
    values = array.to_pylist()
    if pa.types.is_date(array.type):
        return [None if v is None else v.isoformat() for v in values]
    if pa.types.is_timestamp(array.type):
        suffix = "" if array.type.tz else "Z"  # a naive Arrow timestamp is UTC by Arrow's convention
        return [None if v is None else v.isoformat() + suffix for v in values]
    return values


class ArrowPredictions:
    """Predictions as an Arrow stream: one `prediction` column, or one column per key when each
    row's prediction is an object (as the CSV reply). The first chunk fixes the schema; `end()`
    writes the end-of-stream marker."""

    def __init__(self, model: str = "") -> None:
        self._model = model
        self._sink = io.BytesIO()
        self._writer: pa.RecordBatchStreamWriter | None = None
        self._schema: pa.Schema | None = None
        self._keys: list[str] | None = None

    def rows(self, predictions: list[Any]) -> bytes:
        import pyarrow as pa

        cleaned = _clean(predictions)
        if self._keys is None:
            first = cleaned[0] if cleaned else None
            self._keys = [str(k) for k in first] if isinstance(first, dict) else []
        if self._keys:
            columns = {k: [None if v is None else v.get(k) for v in cleaned] for k in self._keys}
        else:
            columns = {"prediction": cleaned}
        try:
            batch = pa.RecordBatch.from_pydict(columns, schema=self._schema)
            if self._writer is None:
                self._schema = batch.schema
                self._writer = pa.ipc.new_stream(self._sink, batch.schema)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise BadGateway(f"model '{self._model}' returned predictions Arrow cannot hold in the "
                             f"stream's schema ({exc}); ask for NDJSON", model=self._model) from None
        self._writer.write_batch(batch)
        return self._take()

    def end(self) -> bytes:
        """The end-of-stream marker (an empty stream's schema-less end when nothing was written)."""
        import pyarrow as pa

        if self._writer is None:
            self._writer = pa.ipc.new_stream(self._sink, pa.schema([("prediction", pa.null())]))
        self._writer.close()
        return self._take()

    def _take(self) -> bytes:
        data = self._sink.getvalue()
        self._sink.seek(0)
        self._sink.truncate()
        return data
