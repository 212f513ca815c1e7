"""MLflow scoring-server protocol under `/models/<name>/`: invocations, ping, health, version."""

from __future__ import annotations

from flask import Blueprint, Response, g, request
from werkzeug.exceptions import HTTPException

from gateway.app import json_response, service
from gateway.codecs.mlflow import decode_mlflow_request, encode_mlflow_error, encode_mlflow_predictions
from gateway.errors import GatewayError, Unavailable

blueprint = Blueprint("mlflow", __name__)

# /version answers with the MLflow release whose scoring server this surface was checked against
# (tests/api/test_mlflow.py runs that release's client), as MLflow answers with its own version.
MLFLOW_COMPAT_VERSION = "3.17.2"


@blueprint.post("/models/<name>/invocations")
def invocations(name: str) -> Response:
    body, content_type = request.get_data(cache=False), request.content_type
    result = service().predict_decoded(name, None, lambda _meta: decode_mlflow_request(body, content_type),
                                       routing_key=request.headers.get("X-Routing-Key"))
    return json_response(encode_mlflow_predictions(result.predictions))


@blueprint.get("/models/<name>/ping")
@blueprint.get("/models/<name>/health")
def ping(name: str) -> Response:
    """MLflow answers "\\n" with 200 once its model is loaded; ours: the model's readiness."""
    served = service().registry.get(name)
    if not served.health().ready:
        raise Unavailable(f"model '{name}' is not ready; see GET /readyz", model=name)
    return json_response(b"\n")


@blueprint.get("/models/<name>/version")
def version(name: str) -> Response:
    service().registry.get(name)  # 404 for an unknown model
    return json_response(MLFLOW_COMPAT_VERSION.encode())


@blueprint.errorhandler(GatewayError)
def _error(error: GatewayError) -> Response:
    response = json_response(encode_mlflow_error(error, g.get("request_id")), error.status)
    if error.retry_after_s is not None:
        response.headers["Retry-After"] = str(error.retry_after_s)
    return response


@blueprint.errorhandler(HTTPException)
def _http_error(error: HTTPException) -> Response:
    mapped = GatewayError(error.description or error.name)
    mapped.status = error.code or 500
    return _error(mapped)
