"""`GET /metrics` for Prometheus; the status page `GET /` and its data, `GET /status.json`.

Both follow `server.metrics`: "closed" answers 404 for all three.
"""

from __future__ import annotations

from collections.abc import Iterator
from importlib import resources
from typing import Any

from flask import Blueprint, Response, current_app
from flask.blueprints import BlueprintSetupState

from gateway import metrics, status
from gateway.codecs import dumps
from gateway.errors import GatewayError, NotFound
from gateway.responses import json_response, service

blueprint = Blueprint("observe", __name__)


@blueprint.record_once
def _setup(state: BlueprintSetupState) -> None:
    # At app creation (worker start), so the status window counts from this process's birth.
    registry = state.app.extensions["gateway"].registry
    metrics.initialise((served.name, served.settings.backend) for served in registry)
    state.app.extensions["gateway_status"] = status.StatusWindow(status.totals(metrics.recorded()))


@blueprint.get("/metrics")
def scrape() -> Response:
    settings = _open()
    collector = current_app.extensions.get("gateway_stack_metrics")
    if collector is None:
        restarts = settings.run_dir / metrics.RESTARTS_FILE
        collector = metrics.StackCollector(_models, lambda: metrics.read_restarts(restarts))
        current_app.extensions["gateway_stack_metrics"] = collector
    return Response(metrics.exposition(collector, service().drift.families), content_type=metrics.CONTENT_TYPE)


@blueprint.get("/")
def status_page() -> Response:
    _open()
    page = resources.files("gateway").joinpath("static/status.html").read_bytes()
    return Response(page, content_type="text/html; charset=utf-8", headers={"Cache-Control": "no-cache"})


@blueprint.get("/status.json")
def status_data() -> Response:
    _open()
    svc = service()
    window: status.StatusWindow = current_app.extensions["gateway_status"]
    window_s, recent = window.recent(status.totals(metrics.recorded()))
    described = [_described(served) for served in svc.registry]
    rows = status.model_rows(described, window_s, recent)
    extras = svc.drift.status(metrics.recorded().collect())
    for row in rows:  # drift and the prediction log: since each started, not per window
        row.update(extras.get(row["name"], {"drift": None, "prediction_log": None}))
    return json_response(dumps({"window_s": round(window_s, 1), "models": rows}))


def _open() -> Any:
    settings = service().settings
    if settings.server.metrics == "closed":
        raise NotFound('metrics and the status page are closed here (server.metrics = "closed")')
    return settings


def _described(served: Any) -> dict[str, Any]:
    summary = service().describe(served, full=False)
    health = served.health()
    summary["workers"] = {"live": health.live, "total": health.total} if health.total is not None else None
    return summary


def _models() -> Iterator[metrics.ModelState]:
    for served in service().registry:
        try:
            sha256 = served.meta.sha256 or ""
        except GatewayError:  # an optional model that failed to load has no metadata
            sha256 = ""
        health = served.health()
        yield metrics.ModelState(
            name=served.name, version=served.current, backend=served.settings.backend,
            language=served.language, sha256=sha256,
            ready=health.ready, timeout_s=served.settings.timeout_s, live=health.live, total=health.total,
        )
