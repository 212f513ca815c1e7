"""Bulk bodies read incrementally: NDJSON or CSV in, cut into tables of at most `chunk_rows`
rows; predictions out as NDJSON lines or CSV rows. Memory is bounded by one chunk, never by
the body, so a body of any size is scored in the same few megabytes.
"""

from __future__ import annotations

import csv
import functools
import io
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import IO, Any

import orjson

from gateway.codecs.arrow import ARROW, ArrowPredictions, arrow_tables
from gateway.codecs.request import decode_request
from gateway.codecs.response import _clean
from gateway.codecs.table import Table
from gateway.errors import BadRequest, GatewayError
from gateway.meta import InputSpec

NDJSON = "application/x-ndjson"
CSV = "text/csv"
STREAM_TYPES = (NDJSON, CSV)
BULK_TYPES = (NDJSON, CSV, ARROW)  # read chunk by chunk, and written back chunk by chunk
_BLOCK = 1024 * 1024
_ROW = re.compile(r"\bat row (\d+)")
_JSON_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS | orjson.OPT_APPEND_NEWLINE
_VALUE_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS


class _Raw(io.RawIOBase):
    """A WSGI input as a raw stream, so io.BufferedReader reads it in large blocks: iterating
    the WSGI input's lines itself costs a Python call per line (werkzeug: ~10 000 lines/s)."""

    def __init__(self, body: IO[bytes]) -> None:
        self._body = body

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._body.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def buffered(body: IO[bytes]) -> io.BufferedReader:
    """`body` read in 1 MB blocks; lines and text come out of C code."""
    return io.BufferedReader(_Raw(body), buffer_size=_BLOCK)


def ndjson_tables(body: IO[bytes], chunk_rows: int) -> Iterator[tuple[int, Table]]:
    """(number of the chunk's first row, from 1; its table) for each `chunk_rows` records.

    One JSON object per line; blank lines are skipped. A line that is not an object is a 400
    naming its line number.
    """
    lines: list[bytes] = []
    numbers: list[int] = []  # the line number of each kept line, for error messages
    first = 1
    for line_number, line in enumerate(buffered(body), start=1):
        if not line.strip():
            continue
        lines.append(line)
        numbers.append(line_number)
        if len(lines) == chunk_rows:
            yield first, Table.from_records(_records(lines, numbers))
            first += len(lines)
            lines, numbers = [], []
    if lines:
        yield first, Table.from_records(_records(lines, numbers))
    elif first == 1:
        raise BadRequest("the NDJSON body has no records; send one JSON object per line")


def _records(lines: list[bytes], numbers: list[int]) -> list[Any]:
    """The chunk's lines as objects, parsed in one call (as one JSON array); line by line only
    to name the line that fails."""
    try:
        records = orjson.loads(b"[" + b",".join(lines) + b"]")
    except orjson.JSONDecodeError:
        records = None
    if records is not None and len(records) == len(lines) and all(type(r) is dict for r in records):
        return records
    for line, number in zip(lines, numbers, strict=True):
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise BadRequest(f"line {number} of the NDJSON body is not JSON: {exc}") from None
        if not isinstance(record, dict):
            raise BadRequest(f"line {number} of the NDJSON body is not an object of column values")
    raise BadRequest("the NDJSON body has a line that holds more than one JSON value")


def csv_tables(body: IO[bytes], chunk_rows: int) -> Iterator[tuple[int, Table]]:
    """As `ndjson_tables` for CSV with a header row; empty cells and NA are missing values."""
    text = io.TextIOWrapper(buffered(body), encoding="utf-8-sig", errors="strict", newline="")
    reader = csv.reader(text, strict=True)
    try:
        header = next((row for row in reader if row), None)
        if header is None:
            raise BadRequest("the CSV body is empty; send a header row and data rows")
        if len(set(header)) != len(header):
            raise BadRequest(f"the CSV header repeats a column name: {header}")
        rows: list[list[str]] = []
        first = 1
        for row in reader:
            if not row:
                continue
            if len(row) != len(header):
                raise BadRequest(f"malformed CSV: line {reader.line_num} has {len(row)} fields, "
                                 f"the header has {len(header)}")
            rows.append(row)
            if len(rows) == chunk_rows:
                yield first, _csv_table(header, rows)
                first += len(rows)
                rows = []
        if rows:
            yield first, _csv_table(header, rows)
        elif first == 1:
            raise BadRequest("the CSV body has a header row but no data rows")
    except csv.Error as exc:
        raise BadRequest(f"malformed CSV: {exc}") from None
    except UnicodeDecodeError as exc:
        raise BadRequest(f"the CSV body is not valid UTF-8 ({exc.reason})") from None


def _csv_table(header: list[str], rows: list[list[str]]) -> Table:
    columns = {name: [None if row[i] in ("", "NA") else row[i] for row in rows] for i, name in enumerate(header)}
    return Table(columns, len(rows), from_text=True)


def ndjson_predictions(predictions: list[Any]) -> bytes:
    """One line per row: {"prediction": ...}."""
    values = map(functools.partial(orjson.dumps, option=_VALUE_OPTIONS), _clean(predictions))
    return b"".join(b'{"prediction":%s}\n' % value for value in values)


def ndjson_problem(problem: dict[str, Any]) -> bytes:
    """The line that ends a stream when a chunk fails: {"error": <problem object>}."""
    return orjson.dumps({"error": problem}, option=_JSON_OPTIONS)


class CsvPredictions:
    """Predictions as CSV rows: one `prediction` column, or one column per key when each row's
    prediction is an object (class probabilities, several targets); the header comes first."""

    def __init__(self) -> None:
        self._keys: list[str] | None = None

    def rows(self, predictions: list[Any]) -> bytes:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        cleaned = _clean(predictions)
        if self._keys is None:
            first = cleaned[0] if cleaned else None
            self._keys = [str(k) for k in first] if isinstance(first, dict) else []
            writer.writerow(self._keys or ["prediction"])
        for value in cleaned:
            if self._keys:
                writer.writerow(["" if value.get(k) is None else value.get(k) for k in self._keys])
            else:
                writer.writerow(["" if value is None else value])
        return out.getvalue().encode("utf-8")


def bulk_tables(
    body: IO[bytes], content_type: str, chunk_rows: int, inputs: Sequence[InputSpec] = (), model: str = ""
) -> Iterator[tuple[int, Table]]:
    """The chunks of a body of one of BULK_TYPES (Arrow's schema is checked against `inputs`)."""
    if content_type == ARROW:
        return arrow_tables(body, chunk_rows, inputs, model)
    return (csv_tables if content_type == CSV else ndjson_tables)(body, chunk_rows)


@dataclass(frozen=True)
class Encoder:
    """Writes one chunk's predictions (`rows`), then whatever ends the body (`end`)."""

    media_type: str
    rows: Callable[[list[Any]], bytes]
    end: Callable[[], bytes]


def predictions_encoder(accept: str, model: str) -> Encoder:
    """CSV or Arrow when asked for, NDJSON otherwise."""
    if accept == CSV:
        return Encoder(CSV, CsvPredictions().rows, bytes)
    if accept == ARROW:
        arrow = ArrowPredictions(model)
        return Encoder(ARROW, arrow.rows, arrow.end)
    return Encoder(NDJSON, ndjson_predictions, bytes)


def job_tables(
    body: IO[bytes], content_type: str, chunk_rows: int, inputs: Sequence[InputSpec], model: str
) -> Iterator[tuple[int, Table, dict[str, Any]]]:
    """(first row, table, params the body carries) per chunk of a job's body: a bulk type read
    as it streams, any other predict body (JSON) decoded whole, then cut."""
    if content_type in BULK_TYPES:
        for first, table in bulk_tables(body, content_type, chunk_rows, inputs, model):
            yield first, table, {}
        return
    decoded = decode_request(body.read(), content_type)
    table = decoded.table
    for start in range(0, max(table.n_rows, 1), chunk_rows):  # no rows: one empty chunk, refused
        end = min(start + chunk_rows, table.n_rows)
        part = Table({k: v[start:end] for k, v in table.columns.items()}, end - start, table.from_text)
        yield start + 1, part, decoded.params


def shift_rows(error: GatewayError, offset: int) -> None:
    """A chunk's validator counts its rows from 1; the client counts from the body's start."""
    if offset:
        error.detail = _ROW.sub(lambda m: f"at row {int(m.group(1)) + offset}", error.detail)
        error.args = (error.detail,)
