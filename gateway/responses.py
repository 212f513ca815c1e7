"""What every view and request hook answers with: JSON bodies, problem+json errors, the service.

Apart from gateway.app so the views (gateway.api) and the access check (gateway.auth) can use
them without importing the app factory that imports them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from flask import Response, current_app, g

from gateway.codecs.response import dumps
from gateway.errors import GatewayError

if TYPE_CHECKING:
    from gateway.service import PredictionService

PROBLEM_JSON = "application/problem+json"


def service() -> PredictionService:
    """The prediction service of the app handling this request (built by create_app)."""
    return cast("PredictionService", current_app.extensions["gateway"])


def json_response(body: bytes, status: int = 200, content_type: str = "application/json") -> Response:
    return Response(body, status=status, content_type=content_type)


def problem(error: GatewayError) -> Response:
    """An RFC 9457 problem+json response carrying the error's status and this request's id (and
    Retry-After when the error says when to come back, e.g. a model past its max_in_flight)."""
    response = json_response(dumps(error.to_problem(g.get("request_id"))), error.status, PROBLEM_JSON)
    if error.retry_after_s is not None:
        response.headers["Retry-After"] = str(error.retry_after_s)
    return response
