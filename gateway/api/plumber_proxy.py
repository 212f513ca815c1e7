"""`/plumber/<name>/<path>`: a deployed Plumber script's own routes, passed through unchanged."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, request

from gateway.app import service

blueprint = Blueprint("plumber_proxy", __name__)
_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "upgrade", "host",
               "content-length", "proxy-authorization", "trailer"}
# Only the gateway's own predict call may ask a script for R's error messages (PREDICT_HEADER).
_GATEWAY_ONLY = {"x-gateway-predict"}


@blueprint.route("/plumber/<name>/", defaults={"path": ""}, methods=_METHODS)
@blueprint.route("/plumber/<name>/<path:path>", methods=_METHODS)
def passthrough(name: str, path: str) -> Response:
    # With API keys on, Authorization carries the gateway's key: a user's script never sees it.
    dropped = _HOP_BY_HOP | _GATEWAY_ONLY | ({"authorization"} if "gateway.keys" in current_app.extensions else set())
    headers = {k: v for k, v in request.headers.items() if k.lower() not in dropped}
    reply = service().forward(name, request.method, path, request.query_string, headers, request.get_data())
    # raw: every Set-Cookie as its own header (requests' reply.headers joins them with ", ").
    passed = [(k, v) for k, v in reply.raw.headers.items() if k.lower() not in _HOP_BY_HOP | {"content-encoding"}]
    response = Response(reply.content, status=reply.status_code, headers=passed)
    if not any(k.lower() == "content-type" for k, _ in passed):
        del response.headers["Content-Type"]  # Flask's default text/html is not what the script answered
    return response
