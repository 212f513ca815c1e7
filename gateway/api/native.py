"""The native surface: model listing, metadata and predict."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, g, request

from gateway.codecs import dumps, encode_predict_response, media_type
from gateway.codecs.arrow import ARROW
from gateway.codecs.stream import BULK_TYPES, CSV, NDJSON
from gateway.openapi import native_paths
from gateway.protocol import Protocol
from gateway.responses import json_response, service
from gateway.streaming import stream_predict

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
    kind, _ = media_type(request.content_type)
    if kind in (NDJSON, ARROW) or (kind == CSV and media_type(request.headers.get("Accept"))[0] in BULK_TYPES):
        return _stream(name, version, kind)
    result = service().predict(name, version, request.get_data(cache=False), request.content_type,
                               routing_key=request.headers.get("X-Routing-Key"))
    return json_response(
        encode_predict_response(result.model, result.version, result.predictions, g.request_id)
    )


def _stream(name: str, version: str | None, kind: str) -> Response:
    """NDJSON or Arrow (or CSV asking for NDJSON, CSV or Arrow back): scored chunk by chunk as the body arrives."""
    request.max_content_length = current_app.config["GATEWAY_STREAM_LIMIT"]
    args = request.args.to_dict()
    on_error = args.pop("on_error", "line")
    request_id = g.request_id
    reply = stream_predict(
        service(), name, version, request.stream, kind, media_type(request.headers.get("Accept"))[0], args,
        on_error, request.headers.get("X-Routing-Key"), lambda error: error.to_problem(request_id),
    )
    headers = {"X-Model": reply.model, "X-Model-Version": reply.version}
    return Response(reply.body, content_type=reply.media_type, headers=headers)


PROTOCOL = Protocol("native", (blueprint,), metered=("native.predict",), paths=native_paths)
