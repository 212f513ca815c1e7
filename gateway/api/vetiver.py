"""vetiver protocol under `/vetiver/<name>/`: predict, ping, metadata, prototype, pin-url."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Blueprint, Response, request

from gateway.codecs import dumps
from gateway.codecs.vetiver import (
    decode_vetiver_request,
    encode_vetiver_predictions,
    metadata,
    pin_url,
    ping_body,
    prototype,
    prototype_r,
)
from gateway.errors import BadRequest
from gateway.openapi import vetiver_paths
from gateway.protocol import Protocol
from gateway.responses import json_response, service

blueprint = Blueprint("vetiver", __name__, url_prefix="/vetiver/<name>")


@blueprint.post("/predict")
def predict(name: str) -> Response:
    body, content_type = request.get_data(cache=False), request.content_type
    result = service().predict_decoded(name, None, lambda meta: decode_vetiver_request(body, content_type, meta),
                                       routing_key=request.headers.get("X-Routing-Key"))
    return json_response(encode_vetiver_predictions(result.predictions))


@blueprint.get("/ping")
def ping(name: str) -> Response:
    service().registry.get(name)  # 404 for an unknown model
    return json_response(dumps(ping_body(datetime.now(UTC))))


@blueprint.get("/metadata")
def model_metadata(name: str) -> Response:
    return json_response(dumps(metadata(service().registry.get(name).meta)))


@blueprint.get("/prototype")
def model_prototype(name: str) -> Response:
    """vetiver-python's shape; `?format=r` gives the one vetiver for R writes."""
    meta = service().registry.get(name).meta
    shape = request.args.get("format", "python")
    if shape not in ("python", "r"):
        raise BadRequest(f"format must be 'python' or 'r', not {shape!r}", model=name)
    return json_response(dumps(prototype_r(meta) if shape == "r" else prototype(meta)))


@blueprint.get("/pin-url")
def model_pin_url(name: str) -> Response:
    """The pin's URL when model.json records one, else null (vetiver answers the URL as JSON)."""
    return json_response(dumps(pin_url(service().registry.get(name).meta)))


PROTOCOL = Protocol("vetiver", (blueprint,), metered=("vetiver.predict",), paths=vetiver_paths, version_arg=None)
