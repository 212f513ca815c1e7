"""Public request bodies (every JSON form of the contract, and CSV) → Table + params."""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass
from typing import Any

import orjson

from gateway.codecs.table import Table
from gateway.errors import BadRequest, UnsupportedMediaType

OBJECT_FORMS = ("instances", "inputs", "dataframe_split", "dataframe_records")
FORMS_HINT = (
    "send a list of records, or an object with exactly one of "
    "'instances', 'inputs', 'dataframe_split', 'dataframe_records' (and optionally 'params')"
)


@dataclass(frozen=True)
class DecodedRequest:
    table: Table
    params: dict[str, Any]


def media_type(content_type: str | None) -> tuple[str, str | None]:
    """('application/json', 'utf-8') from a Content-Type header; ('', None) when absent."""
    if not content_type:
        return "", None
    kind, _, rest = content_type.partition(";")
    charset = None
    for part in rest.split(";"):
        key, _, value = part.strip().partition("=")
        if key.lower() == "charset":
            charset = value.strip().strip('"').lower()
    return kind.strip().lower(), charset


def decode_request(body: bytes, content_type: str | None) -> DecodedRequest:
    """Decode a predict body. Raises BadRequest (400) or UnsupportedMediaType (415)."""
    kind, charset = media_type(content_type)
    if charset not in (None, "utf-8", "utf8"):
        raise UnsupportedMediaType(f"charset {charset!r} is not supported; send UTF-8")
    if kind == "text/csv":
        return DecodedRequest(decode_csv(body), {})
    if kind == "application/json" or kind.endswith("+json"):
        document = parse_json(body)
        reject_duplicate_keys(body, document)
        return decode_json_form(document)
    if kind == "":
        try:
            document = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise UnsupportedMediaType(
                "the body has no Content-Type and is not JSON; send Content-Type: application/json "
                "or text/csv"
            ) from None
        reject_duplicate_keys(body, document)
        return decode_json_form(document)
    raise UnsupportedMediaType(
        f"content type {kind!r} is not supported; send application/json or text/csv"
        + (" (curl -d sends form data: add -H 'Content-Type: application/json')"
           if kind == "application/x-www-form-urlencoded" else "")
    )


def parse_json(body: bytes) -> Any:
    if not body.strip():
        raise BadRequest("the request body is empty; " + FORMS_HINT)
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        hint = ("; NaN and Infinity are not JSON: send null for a missing value"
                if _NON_FINITE.search(body) else "")
        raise BadRequest(f"malformed JSON: {exc}{hint}") from None


_SPACED_COLON = re.compile(rb'"\s+:')
_NON_FINITE = re.compile(rb"[:,\[]\s*-?(?:NaN|Infinity|inf)\b")


def reject_duplicate_keys(body: bytes, document: Any) -> None:
    """BadRequest naming a key an object repeats (orjson keeps the last one silently).

    Cheap on the common path: every key ends with `"` then `:`, so counting those byte pairs
    bounds the keys the body holds from above; when that equals the keys the parsed forms hold,
    nothing was dropped. Otherwise (a string holding `":`, nested objects, or a real duplicate)
    the body is parsed again with the standard library, which reports the repeated key.
    """
    candidates = body.count(b'":') + len(_SPACED_COLON.findall(body))
    if candidates == _form_keys(document):
        return
    try:
        json.loads(body, object_pairs_hook=_unique_pairs)
    except RecursionError:  # deeper than the stdlib parser goes; the form check refuses it anyway
        return


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            raise BadRequest(f"the JSON body repeats the key {key!r} in one object; send each key once")
        seen.add(key)
    return dict(pairs)


def _form_keys(document: Any) -> int:
    """Keys of the objects a body form holds: top level, params, the payload and its records."""
    rows: Any = document
    count = 0
    if isinstance(document, dict):
        count = len(document)
        for key in ("params", *OBJECT_FORMS):
            value = document.get(key)
            if isinstance(value, dict):
                count += len(value)
            elif isinstance(value, list):
                rows = value
    if isinstance(rows, list):
        count += sum(len(row) for row in rows if type(row) is dict)
    return count


def decode_json_form(document: Any) -> DecodedRequest:
    """Recognise the body form; every shape problem is a 400 naming the offending part."""
    try:
        if isinstance(document, list):
            return DecodedRequest(Table.from_records(document), {})
        if not isinstance(document, dict):
            raise BadRequest("the JSON body is a scalar; " + FORMS_HINT)
        params = document.get("params", {})
        if not isinstance(params, dict):
            raise BadRequest("'params' must be an object, e.g. {\"type\": \"prob\"}")
        forms = [key for key in OBJECT_FORMS if key in document]
        unknown = [key for key in document if key not in OBJECT_FORMS and key != "params"]
        if unknown or len(forms) != 1:
            what = f"unknown keys {', '.join(map(repr, unknown))}" if unknown else (
                f"several forms {', '.join(map(repr, forms))}" if forms else "no data")
            raise BadRequest(f"unknown body form ({what}); {FORMS_HINT}")
        return DecodedRequest(_table_of(forms[0], document[forms[0]]), params)
    except TypeError as exc:
        raise BadRequest(str(exc)) from None


def _table_of(form: str, payload: Any) -> Table:
    if form == "inputs" and isinstance(payload, dict):
        return Table.from_columns(payload, where="inputs")
    if form == "dataframe_split":
        if not isinstance(payload, dict) or not isinstance(payload.get("columns"), list | str) or not (
            "data" in payload and isinstance(payload["data"], list | str | int | float | bool)
        ):
            raise BadRequest("dataframe_split needs {\"columns\": [...], \"data\": [[...], ...]}")
        return Table.from_split(payload["columns"], payload["data"], where="dataframe_split")
    if isinstance(payload, dict) and form in ("instances", "dataframe_records"):
        payload = [payload]  # one record, unboxed by R's jsonlite
    if not isinstance(payload, list):
        raise BadRequest(f"{form!r} must be a list of records")
    return Table.from_records(payload, where=form)


def decode_csv(body: bytes) -> Table:
    """CSV with a header row. An empty unquoted field or NA is a missing value; a quoted `""` is
    the empty string (a text column keeps it; validate_table makes it missing elsewhere).
    Values stay text."""
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BadRequest(f"the CSV body is not valid UTF-8 ({exc.reason} at byte {exc.start})") from None
    rows = _csv_rows(text) if '""' in text else _csv_rows_fast(text)
    rows = [row for row in rows if row and row != [None]]
    if not rows:
        raise BadRequest("the CSV body is empty; send a header row and data rows")
    header, data = [name or "" for name in rows[0]], rows[1:]  # unquoted blank → None
    if len(set(header)) != len(header):
        raise BadRequest(f"the CSV header repeats a column name: {header}")
    for line, row in enumerate(data, start=2):
        if len(row) != len(header):
            raise BadRequest(f"malformed CSV: line {line} has {len(row)} fields, the header has {len(header)}")
    columns = {name: [None if row[i] == "NA" else row[i] for row in data] for i, name in enumerate(header)}
    return Table(columns, len(data), from_text=True)


def _csv_rows_fast(text: str) -> list[list[str | None]]:
    """No `""` in the body, so no quoted empty field: the csv module's rows, blanks as None."""
    try:
        rows = list(csv.reader(io.StringIO(text), strict=True))
    except csv.Error as exc:
        raise BadRequest(f"malformed CSV: {exc}") from None
    return [[cell or None for cell in row] for row in rows]


# One field and what ends it. Python 3.11's csv module cannot tell `""` from an empty field
# (3.12's QUOTE_NOTNULL reader can), so bodies holding `""` are read by this RFC 4180 scanner.
_FIELD = re.compile(r'(?:"((?:[^"]|"")*)"|([^,"\r\n]*))(,|\r\n|\n|\r|$)')


def _csv_rows(text: str) -> list[list[str | None]]:
    rows: list[list[str | None]] = []
    row: list[str | None] = []
    position, end = 0, len(text)
    while position < end:
        match = _FIELD.match(text, position)
        if match is None:
            line = text.count("\n", 0, position) + 1
            raise BadRequest(f"malformed CSV: a stray '\"' in line {line}; quote the whole field, double inner quotes")
        quoted, bare, separator = match.groups()
        if quoted is not None:
            row.append(quoted.replace('""', '"'))
        else:
            row.append(bare or None)
        position = match.end()
        if separator != ",":
            rows.append(row)
            row = []
        elif position == end:  # "a,b," ends with an empty field
            row.append(None)
            rows.append(row)
    return rows
