"""Bulk bodies read incrementally: NDJSON or CSV in, cut into tables of at most `chunk_rows`
rows; predictions out as NDJSON lines or CSV rows. Memory is bounded by one chunk, never by
the body, so a body of any size is scored in the same few megabytes.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import IO, Any

import orjson

from gateway.codecs.arrow import ARROW, ArrowPredictions, arrow_tables
from gateway.codecs.response import _clean
from gateway.codecs.table import Table
from gateway.errors import BadRequest
from gateway.meta import InputSpec

NDJSON = "application/x-ndjson"
CSV = "text/csv"
STREAM_TYPES = (NDJSON, CSV)
BULK_TYPES = (NDJSON, CSV, ARROW)  # read chunk by chunk, and written back chunk by chunk
_JSON_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS | orjson.OPT_APPEND_NEWLINE


def ndjson_tables(body: IO[bytes], chunk_rows: int) -> Iterator[tuple[int, Table]]:
    """(number of the chunk's first row, from 1; its table) for each `chunk_rows` records.

    One JSON object per line; blank lines are skipped. A line that is not an object is a 400
    naming its line number.
    """
    records: list[Any] = []
    first = 1
    for line_number, line in enumerate(body, start=1):
        if not line.strip():
            continue
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise BadRequest(f"line {line_number} of the NDJSON body is not JSON: {exc}") from None
        if not isinstance(record, dict):
            raise BadRequest(f"line {line_number} of the NDJSON body is not an object of column values")
        records.append(record)
        if len(records) == chunk_rows:
            yield first, Table.from_records(records)
            first += len(records)
            records = []
    if records:
        yield first, Table.from_records(records)
    elif first == 1:
        raise BadRequest("the NDJSON body has no records; send one JSON object per line")


def csv_tables(body: IO[bytes], chunk_rows: int) -> Iterator[tuple[int, Table]]:
    """As `ndjson_tables` for CSV with a header row; empty cells and NA are missing values."""
    text = codecs.getreader("utf-8-sig")(body, "strict")
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
    return b"".join(orjson.dumps({"prediction": p}, option=_JSON_OPTIONS) for p in _clean(predictions))


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
