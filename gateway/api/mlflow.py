"""MLflow scoring-server protocol under `/models/<name>/`: invocations, ping, health, version.

A deployment with one model (or `server.default_model`) also answers MLflow's unprefixed
`/invocations`, `/ping`, `/health` and `/version`, as `mlflow models serve` and SageMaker-style
clients call them. Every error on these routes, wherever raised (API keys, views, NGINX's own
pages), is MLflow's `{"error_code", "message"}`: PROTOCOL's envelope.
"""

from __future__ import annotations

from flask import Blueprint, Response, request
from flask.blueprints import BlueprintSetupState

from gateway.codecs.envelope import MLFLOW
from gateway.codecs.mlflow import decode_mlflow_request, encode_mlflow_predictions
from gateway.errors import NotFound, Unavailable
from gateway.openapi import mlflow_paths
from gateway.protocol import Protocol
from gateway.responses import json_response, service
from gateway.settings import default_model

blueprint = Blueprint("mlflow", __name__)

# /version answers with the MLflow release whose scoring server this surface was checked against
# (tests/api/test_mlflow.py runs that release's client), as MLflow answers with its own version.
MLFLOW_COMPAT_VERSION = "3.17.2"
UNPREFIXED = ("/invocations", "/ping", "/health", "/version")


@blueprint.record_once
def _unprefixed(state: BlueprintSetupState) -> None:
    # The model name goes into the URL defaults, so API-key model limits apply as on /models/<name>/.
    name = default_model(state.app.extensions["gateway"].settings)
    views = {"/invocations": (invocations, ["POST"]), "/ping": (ping, ["GET"]), "/health": (ping, ["GET"]),
             "/version": (version, ["GET"])}
    for rule, (view, methods) in views.items():
        endpoint = "root_" + rule.lstrip("/")
        if name is None:
            state.add_url_rule(rule, endpoint, _no_default_model, methods=methods)
        else:
            state.add_url_rule(rule, endpoint, view, methods=methods, defaults={"name": name})


def _no_default_model() -> Response:
    models = ", ".join(served.name for served in service().registry)
    raise NotFound(f"{request.path} needs one model: several are served ({models}); set server.default_model, "
                   f"or call /models/<name>{request.path}")


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


PROTOCOL = Protocol(
    "mlflow", (blueprint,), MLFLOW, metered=("mlflow.invocations", "mlflow.root_invocations"), paths=mlflow_paths,
    uri=r"^(/models/[^/]+)?/(invocations|ping|health|version)$",
)
