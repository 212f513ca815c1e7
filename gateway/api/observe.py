"""`GET /metrics` for Prometheus; the status page `GET /` and its data, `GET /status.json`.

Both follow `server.metrics`: "closed" answers 404 for all three. The page's latency chart comes
from snapshots of the shared totals (gateway/status_series.py), taken here after a model request's
reply is sent and when the page polls.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, current_app, request
from flask.blueprints import BlueprintSetupState

from gateway import hoststate, metrics, protocol, status, status_series
from gateway.codecs import dumps
from gateway.errors import GatewayError, NotFound
from gateway.responses import json_response, service

blueprint = Blueprint("observe", __name__)
_log = logging.getLogger(__name__)


@blueprint.record_once
def _setup(state: BlueprintSetupState) -> None:
    # At app creation (worker start), so the status window counts from this process's birth.
    registry = state.app.extensions["gateway"].registry
    metrics.initialise((served.name, served.settings.backend) for served in registry)
    now = status.totals(metrics.recorded())
    state.app.extensions["gateway_status"] = status.StatusWindow(now)
    shared = os.environ.get(metrics.MULTIPROC_ENV)
    series = status_series.Series(Path(shared) if shared else None,
                                  state.app.extensions["gateway"].settings.server.status_interval_s)
    if not series.snapshots():  # the stack's first worker: the chart's first point starts here
        series.take(now)
    state.app.extensions["gateway_status_series"] = series


@blueprint.after_app_request
def _snapshot_after_reply(response: Response) -> Response:
    """Once an interval per worker, after a model request's reply is sent: a snapshot for the
    chart, so it has the traffic even when nobody polls the page."""
    series: status_series.Series = current_app.extensions["gateway_status_series"]
    if protocol.registered().metered(request.endpoint) is not None and series.due():
        response.call_on_close(lambda: _take(series))
    return response


def _take(series: status_series.Series) -> None:
    try:
        series.take(status.totals(metrics.recorded()))
    except OSError as exc:  # a full /dev/shm: the chart misses a point, the reply was sent anyway
        _log.warning("status chart: cannot save a snapshot (%s)", exc)


@blueprint.get("/metrics")
def scrape() -> Response:
    settings = _open()
    collector = current_app.extensions.get("gateway_stack_metrics")
    if collector is None:
        restarts = settings.run_dir / metrics.RESTARTS_FILE
        run_dir = settings.run_dir
        collector = metrics.StackCollector(_models, lambda: metrics.read_restarts(restarts), lambda: _hosts(run_dir))
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
    now = status.totals(metrics.recorded())
    window_s, recent = window.recent(now)
    described = [_described(served) for served in svc.registry]
    rows = status.model_rows(described, window_s, recent)
    series: status_series.Series = current_app.extensions["gateway_status_series"]
    series.take(now)
    when = time.time()
    snapshots = series.snapshots()
    chart = {"interval_s": series.interval_s, "span_s": status_series.SPAN_S, "now": round(when, 3),
             "since": round(snapshots[0][0] if snapshots else when, 3),  # a young stack: a shorter chart
             "points": series.points(now, when)}
    extras = svc.drift.status(metrics.recorded().collect())
    for row in rows:  # drift and the prediction log: since each started, not per window
        row.update(extras.get(row["name"], {"drift": None, "prediction_log": None}))
    return json_response(dumps({"window_s": round(window_s, 1), "models": rows, "chart": chart}))


def _hosts(run_dir: Path) -> list[metrics.HostSample]:
    """The host prober's last round (none without worker hosts, or once it stopped)."""
    states = hoststate.read_states(run_dir, max_age_s=30.0) or {}
    return [metrics.HostSample(pool, host, state.answering, state.in_upstream, state.latency_s, state.failures)
            for pool, hosts in states.items() for host, state in hosts.items()]


def _open() -> Any:
    settings = service().settings
    if settings.server.metrics == "closed":
        raise NotFound('metrics and the status page are closed here (server.metrics = "closed")')
    return settings


def _described(served: Any) -> dict[str, Any]:
    summary = service().describe(served, full=False)
    health = served.health()
    summary["workers"] = ({"live": health.live, "total": health.total, **(health.states or {})}
                          if health.total is not None else None)
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
            states=health.states,
        )
