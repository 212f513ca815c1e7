"""vetiver protocol under `/vetiver/<name>/`: predict, ping, metadata, prototype."""

from __future__ import annotations

from flask import Blueprint, Response, request

from gateway.codecs import dumps
from gateway.codecs.vetiver import decode_vetiver_request, encode_vetiver_predictions, metadata, prototype
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
    return json_response(b'{"ping":"pong"}')


@blueprint.get("/metadata")
def model_metadata(name: str) -> Response:
    return json_response(dumps(metadata(service().registry.get(name).meta)))


@blueprint.get("/prototype")
def model_prototype(name: str) -> Response:
    return json_response(dumps(prototype(service().registry.get(name).meta)))
