"""`/plumber/<name>/<path>`: a deployed Plumber script's own routes, passed through unchanged.

The path was checked before the access check (plumber_path); here the request keeps its own
client's end-to-end headers and cookies only, and the reply goes back with each of its headers.
"""

from __future__ import annotations

from flask import Blueprint, Response, current_app, request

from gateway.api.hop_headers import reply_headers, request_headers
from gateway.api.plumber_path import upstream_path
from gateway.protocol import Protocol
from gateway.responses import service

blueprint = Blueprint("plumber_proxy", __name__)
_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
# Only the gateway's own predict call may ask a script for R's error messages (PREDICT_HEADER).
_GATEWAY_ONLY = ("x-gateway-predict",)


@blueprint.route("/plumber/<name>/", defaults={"path": ""}, methods=_METHODS)
@blueprint.route("/plumber/<name>/<path:path>", methods=_METHODS)
def passthrough(name: str, path: str) -> Response:
    # With API keys on, Authorization carries the gateway's key: a user's script never sees it.
    own = ("authorization",) if "gateway.keys" in current_app.extensions else ()
    headers = request_headers(request.headers.items(), also_drop=own + _GATEWAY_ONLY)
    reply = service().forward(name, request.method, upstream_path(request.environ), request.query_string,
                              headers, request.get_data())
    passed = reply_headers(reply.headers.items())
    response = Response(reply.data, status=reply.status, headers=passed)
    if not any(k.lower() == "content-type" for k, _ in passed):
        del response.headers["Content-Type"]  # Flask's default text/html is not what the script answered
    return response


# The script's own replies pass unchanged; the gateway's own errors here (an unknown script, a
# path that climbs, API keys) are problem+json.
PROTOCOL = Protocol("plumber", (blueprint,), metered=("plumber_proxy.passthrough",), version_arg=None)
