"""Operator views of one Gunicorn worker process; the metrics issue will fold these into /metrics."""

from __future__ import annotations

import os

from flask import Blueprint, Response

from gateway.codecs import dumps
from gateway.responses import json_response, service

blueprint = Blueprint("admin", __name__)


@blueprint.get("/admin/batching")
def batching() -> Response:
    """Batch sizes and queue waits of this process's batchers (each worker keeps its own)."""
    return json_response(dumps({"pid": os.getpid(), "batchers": service().batching_snapshot()}))
