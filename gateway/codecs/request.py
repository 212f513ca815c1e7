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
        if not isinstance(payload, dict) or not isinstance(payload.get("columns"), list) or not isinstance(
            payload.get("data"), list
        ):
            raise BadRequest("dataframe_split needs {\"columns\": [...], \"data\": [[...], ...]}")
        return Table.from_split(payload["columns"], payload["data"], where="dataframe_split")
    if not isinstance(payload, list):
        raise BadRequest(f"{form!r} must be a list of records")
    return Table.from_records(payload, where=form)


def decode_csv(body: bytes) -> Table:
    """CSV with a header row; empty cells and NA are missing values. Values stay text."""
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BadRequest(f"the CSV body is not valid UTF-8 ({exc.reason} at byte {exc.start})") from None
    try:
        rows = list(csv.reader(io.StringIO(text), strict=True))
    except csv.Error as exc:
        raise BadRequest(f"malformed CSV: {exc}") from None
    rows = [row for row in rows if row]
    if not rows:
        raise BadRequest("the CSV body is empty; send a header row and data rows")
    header, data = rows[0], rows[1:]
    if len(set(header)) != len(header):
        raise BadRequest(f"the CSV header repeats a column name: {header}")
    for line, row in enumerate(data, start=2):
        if len(row) != len(header):
            raise BadRequest(f"malformed CSV: line {line} has {len(row)} fields, the header has {len(header)}")
    columns = {
        name: [None if row[i] in ("", "NA") else row[i] for row in data] for i, name in enumerate(header)
    }
    return Table(columns, len(data), from_text=True)
