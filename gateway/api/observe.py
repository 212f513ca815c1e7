"""`GET /metrics` for Prometheus."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from flask import Blueprint, Response, current_app

from gateway import metrics
from gateway.app import service
from gateway.errors import GatewayError, NotFound

blueprint = Blueprint("observe", __name__)


@blueprint.get("/metrics")
def scrape() -> Response:
    settings = service().settings
    if settings.server.metrics == "closed":
        raise NotFound('metrics are closed on this gateway (server.metrics = "closed")')
    collector = current_app.extensions.get("gateway_stack_metrics")
    if collector is None:
        restarts = settings.run_dir / metrics.RESTARTS_FILE
        collector = metrics.StackCollector(_models, lambda: metrics.read_restarts(restarts))
        current_app.extensions["gateway_stack_metrics"] = collector
    return Response(metrics.exposition(collector), content_type=metrics.CONTENT_TYPE)


def _models() -> Iterator[tuple[Any, ...]]:
    """Per model: name, version, backend, language, sha256, live and total workers."""
    for served in service().registry:
        language = "python" if served.settings.backend == "python" else "r"
        try:
            sha256 = served.meta.sha256 or ""
        except GatewayError:  # an optional model that failed to load has no metadata
            sha256 = ""
        health = served.health()
        yield (served.name, served.current, served.settings.backend, language, sha256,
               health.live, health.total)
