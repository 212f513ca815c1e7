"""The native surface: model listing, metadata and predict."""

from __future__ import annotations

from flask import Blueprint, Response, g, request

from gateway.codecs import dumps, encode_predict_response
from gateway.responses import json_response, service

blueprint = Blueprint("native", __name__)


@blueprint.get("/models")
def list_models() -> Response:
    svc = service()
    return json_response(dumps({"models": [svc.describe(m, full=False) for m in svc.registry]}))


@blueprint.get("/models/<name>")
def model_metadata(name: str) -> Response:
    svc = service()
    return json_response(dumps(svc.describe(svc.registry.get(name), full=True)))


@blueprint.post("/models/<name>/predict")
@blueprint.post("/models/<name>/versions/<version>/predict")
def predict(name: str, version: str | None = None) -> Response:
    result = service().predict(name, version, request.get_data(cache=False), request.content_type,
                               routing_key=request.headers.get("X-Routing-Key"))
    return json_response(
        encode_predict_response(result.model, result.version, result.predictions, g.request_id)
    )
