"""What every view answers with: JSON bodies, and the service. Errors are raised, and written
by the error pipeline (gateway/error_pipeline.py) in the called protocol's envelope.

Apart from gateway.app so the views (gateway.api) can use them without importing the app
factory that imports them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from flask import Response, current_app

if TYPE_CHECKING:
    from gateway.service import PredictionService


def service() -> PredictionService:
    """The prediction service of the app handling this request (built by create_app)."""
    return cast("PredictionService", current_app.extensions["gateway"])


def json_response(body: bytes, status: int = 200, content_type: str = "application/json") -> Response:
    return Response(body, status=status, content_type=content_type)
