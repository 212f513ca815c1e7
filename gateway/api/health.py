"""Liveness and readiness probes."""

from __future__ import annotations

from flask import Blueprint, Response

from gateway.codecs import dumps
from gateway.responses import json_response, service

blueprint = Blueprint("health", __name__)


@blueprint.get("/healthz")
def healthz() -> Response:
    return json_response(b'{"status":"ok"}')


@blueprint.get("/readyz")
def readyz() -> Response:
    ready, models = service().readiness()
    body = {"status": "ready" if ready else "not ready", "models": models}
    return json_response(dumps(body), 200 if ready else 503)
