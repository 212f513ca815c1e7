"""The app's one error handler: every error, wherever raised (a view, the access check, the
URL-name check, Werkzeug's routing and body limit, an unexpected exception), becomes a
GatewayError, and the protocol that was called writes its envelope."""

from __future__ import annotations

import logging

from flask import Flask, Response, current_app, g, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from gateway import metrics, protocol
from gateway.errors import GatewayError, ModelProblem, NotFound, PayloadTooLarge

log = logging.getLogger(__name__)


def install(app: Flask) -> None:
    app.register_error_handler(Exception, handle)


def handle(error: Exception) -> Response:
    """Registered for Exception: Flask passes GatewayErrors and HTTPExceptions here too."""
    return respond(as_gateway_error(error))


def respond(error: GatewayError) -> Response:
    """The error in the current request's protocol's envelope, with the error's own headers."""
    envelope = protocol.current().envelope
    if isinstance(error, ModelProblem):  # counted here: once per client, whatever the batcher retried
        metrics.observe_model_problem(error.model or metrics.UNKNOWN, error.code)
    response = Response(envelope.encode(error, g.get("request_id")), status=envelope.status(error),
                        content_type=envelope.content_type)
    response.headers.update(error.headers())
    return response


def as_gateway_error(error: Exception) -> GatewayError:
    if isinstance(error, GatewayError):
        return error
    if isinstance(error, RequestEntityTooLarge):
        limit = current_app.config["MAX_CONTENT_LENGTH"]
        return PayloadTooLarge(f"the request body is larger than the limit of {limit} bytes")
    if isinstance(error, HTTPException):
        if error.code == 404:
            return NotFound(f"no route {request.method} {request.path}; see GET /models")
        mapped = GatewayError(error.description or error.name)
        mapped.status, mapped.title, mapped.code = error.code or 500, error.name, "http_error"
        return mapped
    log.exception("unhandled error on %s %s", request.method, request.path, exc_info=error)
    return GatewayError(f"internal error ({type(error).__name__}); see the gateway log")
