"""The Flask app factory: builds the registry and service for one process, wires blueprints."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from flask import Flask, Response, current_app, g, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from gateway import auth, instrument, names
from gateway.auth import keys_path
from gateway.codecs import dumps
from gateway.errors import GatewayError, NotFound, PayloadTooLarge
from gateway.registry import build_registry
from gateway.runtime.plan import Plan
from gateway.service import PredictionService
from gateway.settings import Settings

log = logging.getLogger(__name__)
PROBLEM_JSON = "application/problem+json"


def create_app(settings: Settings, plan: Plan) -> Flask:
    """An app serving the configured models; the models are loaded here, in this process."""
    from gateway.api import admin, docs, health, mlflow, native, observe, plumber_proxy, v2, vetiver

    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = settings.server.body_limit_bytes
    registry = build_registry(settings, plan)
    app.extensions["gateway"] = PredictionService(registry, settings)
    instrument.install(app)  # first: assigns the request id every later step uses
    auth.install(app, keys_path(settings), settings.server.open_paths)  # after the request id
    app.before_request(names.check_url_values)  # after auth: no probing without a key
    app.after_request(_echo_request_id)
    app.register_error_handler(GatewayError, _gateway_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected_error)
    app.register_blueprint(admin.blueprint)
    app.register_blueprint(health.blueprint)
    app.register_blueprint(native.blueprint)
    app.register_blueprint(mlflow.blueprint)
    app.register_blueprint(vetiver.blueprint)
    app.register_blueprint(docs.blueprint)
    app.register_blueprint(plumber_proxy.blueprint)
    app.register_blueprint(observe.blueprint)
    app.register_blueprint(v2.blueprint)
    from gateway.openapi import add_paths
    from gateway.openapi_v2 import v2_paths

    add_paths(app, v2_paths)
    return app


def create_app_from_env() -> Flask:
    """For Gunicorn: settings from GATEWAY_CONFIG, ports from the stack's saved plan."""
    from gateway.settings import load_settings

    settings = load_settings(os.environ.get("GATEWAY_CONFIG"))
    instrument.log_requests_to_stdout()
    return create_app(settings, Plan.load(Path(os.environ["GATEWAY_PLAN"])))


def service() -> PredictionService:
    return current_app.extensions["gateway"]


def json_response(body: bytes, status: int = 200, content_type: str = "application/json") -> Response:
    return Response(body, status=status, content_type=content_type)


def problem(error: GatewayError) -> Response:
    response = json_response(dumps(error.to_problem(g.get("request_id"))), error.status, PROBLEM_JSON)
    if error.retry_after_s is not None:
        response.headers["Retry-After"] = str(error.retry_after_s)
    return response


def _echo_request_id(response: Response) -> Response:
    if "request_id" in g:
        response.headers["X-Request-ID"] = g.request_id
    return response


def _gateway_error(error: GatewayError) -> Response:
    return problem(error)


def _http_error(error: HTTPException) -> Response:
    if isinstance(error, RequestEntityTooLarge):
        limit = current_app.config["MAX_CONTENT_LENGTH"]
        return problem(PayloadTooLarge(f"the request body is larger than the limit of {limit} bytes"))
    if error.code == 404:
        return problem(NotFound(f"no route {request.method} {request.path}; see GET /models"))
    mapped = GatewayError(error.description or error.name)
    mapped.status, mapped.title, mapped.code = error.code or 500, error.name, "http_error"
    return problem(mapped)


def _unexpected_error(error: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.path, exc_info=error)
    return problem(GatewayError(f"internal error ({type(error).__name__}); see the gateway log"))
