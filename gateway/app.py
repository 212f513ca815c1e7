"""The Flask app factory: builds the registry and service for one process, registers the
protocols (gateway/api/registered.py) and the one error pipeline."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from flask import Flask, Response, g

from gateway import auth, error_pipeline, instrument, protocol, tracing
from gateway.api import plumber_path
from gateway.api.registered import PROTOCOLS
from gateway.auth import keys_path
from gateway.jobs import JobStore
from gateway.protocol import Protocol
from gateway.registry import build_registry
from gateway.service import PredictionService
from gateway.settings import Settings
from gateway.topology import Plan


def create_app(settings: Settings, plan: Plan, protocols: Iterable[Protocol] | None = None) -> Flask:
    """An app serving the configured models (loaded here, in this process) in the given protocols;
    None: every registered one (gateway.api.registered.PROTOCOLS)."""
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = settings.server.body_limit_bytes
    app.config["GATEWAY_STREAM_LIMIT"] = settings.server.stream_limit_bytes
    # Isolated: a model that cannot load here (a changed artefact, a missing package) is only
    # marked not ready; raising would make Gunicorn's master exit and take every model down.
    registry = build_registry(settings, plan, isolate=True)
    app.extensions["gateway"] = PredictionService(registry, settings)
    app.extensions["gateway.jobs"] = JobStore(plan.run_dir)  # scored by gateway/job_runner.py
    instrument.install(app)  # first: assigns the request id every later step uses
    # Before auth: a key limited to one script is checked against a path that stays in it.
    app.before_request(plumber_path.check_passthrough_path)
    auth.install(app, keys_path(settings), settings.server.open_paths)  # after the request id
    app.before_request(protocol.check_url_values)  # after auth: no probing without a key
    app.after_request(_echo_request_id)
    error_pipeline.install(app)
    protocol.install(app, PROTOCOLS if protocols is None else protocols)
    return app


def create_app_from_env() -> Flask:
    """For Gunicorn: settings from GATEWAY_CONFIG, ports from the stack's saved plan."""
    from gateway.settings import load_settings

    settings = load_settings(os.environ.get("GATEWAY_CONFIG"))
    instrument.log_requests_to_stdout(settings.server.log_flush_ms)
    tracing.configure_from_env()  # in the worker, after the fork: OTEL_* from supervisord's environment
    return create_app(settings, Plan.load(Path(os.environ["GATEWAY_PLAN"])))


def _echo_request_id(response: Response) -> Response:
    if "request_id" in g:
        response.headers["X-Request-ID"] = g.request_id
    return response
