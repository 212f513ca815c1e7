"""The vetiver protocol (Python and R vetiver APIs): records in, `{"predict": [...]}` out.

vetiver's Python client posts `DataFrame.to_json(orient="records")` with no content type; its R
client posts `jsonlite::toJSON(new_data, na = "string")` through httr, which sends no JSON content
type either and writes a missing number as the string "NA". So this route parses any body as
JSON, and "NA" in a numeric column is a missing value here (only here: elsewhere it is a 422).
"""

from __future__ import annotations

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
    columns = {
        name: [None if value == "NA" else value for value in values] if name in numeric else values
        for name, values in decoded.table.columns.items()
    }
    return DecodedRequest(Table(columns, decoded.table.n_rows, decoded.table.from_text), decoded.params)


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


def metadata(meta: ModelMeta) -> dict[str, Any]:
    """vetiver's `/metadata` (VetiverMeta): user, version, url, required_pkgs."""
    packages = sorted(str(k) for k in meta.framework if k not in ("python", "r"))
    return {"user": {"description": meta.description, "language": meta.language},
            "version": meta.version, "url": None, "required_pkgs": packages}
