"""Open Inference Protocol v2 REST (KServe v2, what tritonclient speaks); translation in codecs/v2.py.

Errors are `{"error": "..."}` as the protocol requires, wherever raised (PROTOCOL's envelope,
gateway/codecs/envelope.py). Statuses follow our contract, except that a 422 (data that do not
fit the model) becomes the protocol's 400.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version

from flask import Blueprint, Response, g, request

from gateway.codecs import dumps, media_type
from gateway.codecs.envelope import V2
from gateway.codecs.request import parse_json, reject_duplicate_keys
from gateway.codecs.v2 import (
    decode_infer_request,
    encode_infer_response,
    output_metadata,
    tensor_metadata,
)
from gateway.codecs.v2_binary import split_binary
from gateway.errors import NotFound, UnsupportedMediaType
from gateway.openapi_v2 import v2_paths
from gateway.protocol import Protocol
from gateway.responses import json_response, service

blueprint = Blueprint("v2", __name__, url_prefix="/v2")
V2_ROUTES = "/v2, /v2/health/{live,ready}, /v2/models/<name>[/versions/<v>][/ready|/infer]"


@blueprint.get("")
def server_metadata() -> Response:
    return json_response(dumps({"name": "gateway", "version": _version(), "extensions": []}))


@blueprint.get("/health/live")
def live() -> Response:
    return json_response(b'{"live":true}')


@blueprint.get("/health/ready")
def ready() -> Response:
    is_ready, _ = service().readiness()
    return json_response(dumps({"ready": is_ready}), 200 if is_ready else 503)


@blueprint.get("/models/<name>")
@blueprint.get("/models/<name>/versions/<version>")
def model_metadata(name: str, version: str | None = None) -> Response:
    served = service().registry.get(name)
    meta = served.backend(version).meta
    body = {"name": served.name, "versions": served.versions, "platform": f"{meta.language}_{meta.format}",
            "inputs": tensor_metadata(meta.inputs), "outputs": output_metadata(meta)}
    return json_response(dumps(body))


@blueprint.get("/models/<name>/ready")
@blueprint.get("/models/<name>/versions/<version>/ready")
def model_ready(name: str, version: str | None = None) -> Response:
    served = service().registry.get(name)
    served.backend(version)
    is_ready = served.health().ready
    return json_response(dumps({"name": served.name, "ready": is_ready}), 200 if is_ready else 503)


@blueprint.post("/models/<name>/infer")
@blueprint.post("/models/<name>/versions/<version>/infer")
def infer(name: str, version: str | None = None) -> Response:
    service().registry.get(name).backend(version)  # 404 for a wrong name or version first
    kind, charset = media_type(request.content_type)
    if kind not in ("", "application/json", "application/octet-stream") or charset not in (None, "utf-8", "utf8"):
        raise UnsupportedMediaType(f"send the inference request as application/json (UTF-8), not {kind!r}")
    body = request.get_data(cache=False)
    header, binary = split_binary(body, request.headers.get("Inference-Header-Content-Length"))
    document = parse_json(header)
    reject_duplicate_keys(header, document)
    decoded = decode_infer_request(document, binary)
    result = service().predict_routed(name, version, decoded.table, decoded.params,
                                      routing_key=request.headers.get("X-Routing-Key"))
    return json_response(dumps(encode_infer_response(result.model, result.version, decoded.id or g.request_id,
                                                     result.predictions, decoded.outputs)))


@blueprint.route("/<path:rest>", methods=["GET", "POST", "PUT", "DELETE", "PATCH"])
def unknown(rest: str) -> Response:
    raise NotFound(f"no route {request.method} {request.path}; the v2 routes are {V2_ROUTES}")


def _version() -> str:
    try:
        return package_version("gateway")
    except PackageNotFoundError:  # pragma: no cover - a source tree without `pip install -e .`
        return "0+unknown"


PROTOCOL = Protocol("v2", (blueprint,), V2, metered=("v2.infer",), paths=v2_paths, uri=r"^/v2(/|$)")
