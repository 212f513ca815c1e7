"""`/plumber/<name>/<path>`: a deployed Plumber script's own routes, passed through unchanged."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, request

from gateway.responses import service

blueprint = Blueprint("plumber_proxy", __name__)
_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "upgrade", "host",
               "content-length", "proxy-authorization", "trailer"}


@blueprint.route("/plumber/<name>/", defaults={"path": ""}, methods=_METHODS)
@blueprint.route("/plumber/<name>/<path:path>", methods=_METHODS)
def passthrough(name: str, path: str) -> Response:
    # With API keys on, Authorization carries the gateway's key: a user's script never sees it.
    dropped = _HOP_BY_HOP | ({"authorization"} if "gateway.keys" in current_app.extensions else set())
    headers = {k: v for k, v in request.headers.items() if k.lower() not in dropped}
    reply = service().forward(name, request.method, path, request.query_string, headers, request.get_data())
    passed = [(k, v) for k, v in reply.headers.items() if k.lower() not in _HOP_BY_HOP | {"content-encoding"}]
    return Response(reply.content, status=reply.status_code, headers=passed)
