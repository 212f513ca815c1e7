"""The vetiver protocol (Python and R vetiver APIs): records in, `{"predict": [...]}` out.

vetiver's Python client posts `DataFrame.to_json(orient="records")` with no content type; its R
client posts `jsonlite::toJSON(new_data, na = "string")` through httr, which sends no JSON content
type either and writes a missing number as the string "NA". So this route parses any body as
JSON, and "NA" in a numeric column is a missing value here (only here: elsewhere it is a 422).
pandas' `to_json` (which vetiver's Python client calls) writes datetimes and dates as epoch
milliseconds, so a number in a date or datetime column is read as that here (only here).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from gateway.codecs.request import DecodedRequest, decode_json_form, media_type, parse_json, reject_duplicate_keys
from gateway.codecs.response import dumps
from gateway.codecs.table import Table
from gateway.errors import UnsupportedMediaType
from gateway.meta import InputSpec, ModelMeta

_NUMERIC = ("double", "integer", "logical")
# httr sends a character body as form data unless told otherwise; Python's requests sends none.
_JSON_KINDS = ("", "application/json", "application/x-www-form-urlencoded", "text/plain")


def decode_vetiver_request(body: bytes, content_type: str | None, meta: ModelMeta) -> DecodedRequest:
    """Records (or any JSON form of the native API) → Table; "NA" → None in numeric columns."""
    kind, charset = media_type(content_type)
    if charset not in (None, "utf-8", "utf8"):
        raise UnsupportedMediaType(f"charset {charset!r} is not supported; send UTF-8")
    if kind not in _JSON_KINDS and not kind.endswith("+json"):
        raise UnsupportedMediaType(f"content type {kind!r} is not supported; vetiver clients send JSON records")
    document = parse_json(body)
    reject_duplicate_keys(body, document)
    decoded = decode_json_form(document)
    numeric = {spec.name for spec in meta.inputs if spec.type in _NUMERIC}
    dates = {spec.name: spec.type for spec in meta.inputs if spec.type in ("date", "datetime")}
    columns = {
        name: [None if value == "NA" else value for value in values] if name in numeric
        else [_from_epoch_ms(value, dates[name]) for value in values] if name in dates else values
        for name, values in decoded.table.columns.items()
    }
    return DecodedRequest(Table(columns, decoded.table.n_rows, decoded.table.from_text), decoded.params)


_EPOCH = datetime(1970, 1, 1)


def _from_epoch_ms(value: Any, kind: str) -> Any:
    """pandas' epoch milliseconds → ISO-8601 (UTC); anything else is left to the validator."""
    if type(value) not in (int, float):
        return value
    try:
        moment = _EPOCH + timedelta(milliseconds=value)
    except (OverflowError, ValueError):  # beyond year 9999 (or NaN): the validator names it
        return value
    if kind == "date":
        return moment.date().isoformat()
    return moment.replace(tzinfo=UTC).isoformat(timespec="milliseconds" if moment.microsecond else "seconds")


def encode_vetiver_predictions(predictions: list[Any]) -> bytes:
    """vetiver-python's reply, which its client turns into a one-column DataFrame."""
    return dumps({"predict": predictions})


_JSON_TYPES = {
    "double": {"type": "number"},
    "integer": {"type": "integer"},
    "logical": {"type": "boolean"},
    "string": {"type": "string"},
    "factor": {"type": "string"},
    "date": {"type": "string", "format": "date"},
    "datetime": {"type": "string", "format": "date-time"},
}


def column_schema(spec: InputSpec) -> dict[str, Any]:
    """JSON Schema of one input column (also used by the OpenAPI document)."""
    schema: dict[str, Any] = dict(_JSON_TYPES[spec.type])
    if spec.levels is not None:
        schema["enum"] = list(spec.levels)
    if spec.nullable:
        schema["nullable"] = True
    return schema


def prototype(meta: ModelMeta) -> dict[str, Any]:
    """vetiver's `/prototype` (a pydantic model's JSON Schema, titles dropped) from model.json."""
    properties: dict[str, Any] = {}
    for spec in meta.inputs:
        schema = column_schema(spec)
        schema.pop("nullable", None)
        properties[spec.name] = schema
    return {"properties": properties, "required": [spec.name for spec in meta.inputs],
            "title": "prototype", "type": "object"}


# vetiver for R answers /prototype with cereal::cereal_encode of each column's prototype.
_R_CLASSES = {"double": "numeric", "integer": "integer", "logical": "logical", "string": "character",
              "factor": "factor", "date": "Date", "datetime": "POSIXct"}


def prototype_r(meta: ModelMeta) -> dict[str, Any]:
    """vetiver-R's `/prototype` (`?format=r`): {column: {type, default, details}}, as
    `cereal::cereal_from_json()` reads it back into a vctrs prototype."""
    out: dict[str, Any] = {}
    for spec in meta.inputs:
        details: Any = []  # jsonlite writes R's empty list() as []
        if spec.levels is not None:
            details = {"levels": list(spec.levels)}
        elif spec.type == "datetime":
            details = {"tzone": "UTC"}
        out[spec.name] = {"type": _R_CLASSES[spec.type], "default": None, "details": details}
    return out


def ping_body(now: datetime) -> dict[str, Any]:
    """One body for both clients: vetiver-python checks `ping`, vetiver-R's `status` and `time`
    (plumber writes Sys.time() as "YYYY-MM-DD HH:MM:SS"; ours is UTC)."""
    return {"ping": "pong", "status": "online", "time": now.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")}


def pin_url(meta: ModelMeta) -> str | None:
    """Where the model's pin lives, if model.json records one (`url`); vetiver answers it."""
    url = meta.raw.get("url")
    return str(url) if url else None


def metadata(meta: ModelMeta) -> dict[str, Any]:
    """vetiver's `/metadata` (VetiverMeta): user, version, url, required_pkgs."""
    packages = sorted(str(k) for k in meta.framework if k not in ("python", "r"))
    return {"user": {"description": meta.description, "language": meta.language},
            "version": meta.version, "url": pin_url(meta), "required_pkgs": packages}
