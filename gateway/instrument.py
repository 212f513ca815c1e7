"""Per-request observability, in one place: the request id, metrics and the JSON request log.

Flask hooks open a `context.RequestRecord` per request and, when the request is one that
reaches a model (an endpoint a registered protocol lists in `metered`, gateway/protocol.py),
count it under the protocol's name, time it and write one JSON log line for it. Views and
backends do nothing for this; the service fills in the record. With tracing on (gateway/tracing.py)
such a request also gets its server span here, so every protocol is traced alike.
"""

from __future__ import annotations

import atexit
import logging
import os
import sys
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import orjson
from flask import Flask, Response, current_app, g, request

from gateway import context, metrics, protocol, tracing
from gateway.errors import NotFound, clip, clip_detail
from gateway.logbatch import LineBatcher

REQUEST_LOG = "gateway.requests"
_log = logging.getLogger(REQUEST_LOG)


def install(app: Flask) -> None:
    """Register the hooks; call before any other before_request hook that needs the id."""
    app.before_request(_begin)
    app.after_request(_finish)
    app.teardown_request(_end_trace)


_stdout: LineBatcher | None = None  # set under Gunicorn: request lines to stdout, in batches


def log_requests_to_stdout(flush_ms: float = 100.0) -> None:
    """Under Gunicorn: request lines to stdout, which supervisord writes to logs/gunicorn.log
    and rotates (server.log_max_bytes). Tests leave this off and read the log via caplog.

    Not a logging handler: building a LogRecord, the handler's lock and the flush cost about 5% of
    a Gunicorn worker's GIL time on a 1-row predict (py-spy --gil). Lines leave in batches
    (gateway/logbatch.py) within `flush_ms` (server.log_flush_ms; 0: one write per line), so
    supervisord wakes once per batch, not per request; `flush_request_log` at the worker's exit.
    """
    global _stdout
    sys.stdout.flush()
    _stdout = LineBatcher(sys.stdout.fileno(), flush_ms / 1000)
    atexit.register(flush_request_log)  # beside worker_exit: any other normal exit of the process


def flush_request_log() -> None:
    """Write the buffered request lines now: Gunicorn's worker_exit hook calls it, so a worker
    stopped gracefully (gateway down, a reload, a recycle) loses none."""
    if _stdout is not None:
        _stdout.flush()


def _write_line(line: bytes) -> None:
    if _stdout is None:
        _log.info("%s", line.decode())
        return
    _stdout.write(line)


def _begin() -> None:
    supplied = request.headers.get("X-Request-ID", "")
    # A refused id is replaced, and never logged or echoed as it came.
    g.request_id = supplied if context.is_sane_request_id(supplied) else uuid.uuid4().hex
    g.started = time.perf_counter()
    context.begin(g.request_id, request.headers.get("traceparent"))
    if tracing.enabled():
        _start_trace()


def _start_trace() -> None:
    metered = protocol.registered().metered(request.endpoint)
    if metered is None:  # probes, metrics, the status page: not traced
        return
    route = request.url_rule.rule if request.url_rule is not None else request.path
    g.trace = tracing.start_server_span(
        f"{request.method} {route}", request.headers.get("traceparent"), request.headers.get("tracestate"),
        {"http.request.method": request.method, "http.route": route, "url.path": clip(request.path),
         "gateway.request_id": g.request_id, "gateway.protocol": metered.name},
    )


def _end_trace(error: BaseException | None) -> None:
    handle = g.pop("trace", None)
    if handle is not None:
        tracing.end_server_span(handle, g.pop("trace_status", None), g.pop("trace_labels", {}), error)


def _finish(response: Response) -> Response:
    metered = protocol.registered().metered(request.endpoint)
    record = context.current()
    if metered is None or record is None:
        return response
    seconds = time.perf_counter() - g.started
    model, version, backend = _labels(record, metered.model_arg, metered.version_arg)
    metrics.observe_request(model, version, backend, metered.name, response.status_code, seconds)
    entry: dict[str, Any] = {
        "time": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "source": "gateway", "pid": os.getpid(), "request_id": record.request_id,
        "method": request.method, "path": clip(request.path), "model": model, "version": version,
        "backend": backend, "protocol": metered.name, "status": response.status_code,
        "duration_ms": round(seconds * 1000, 3), "rows": record.rows,
    }
    if record.traceparent:
        entry["traceparent"] = record.traceparent
    if "trace" in g:
        entry["trace_id"] = tracing.trace_id(g.trace)
        g.trace_status = response.status_code
        g.trace_labels = {"gateway.model": model, "gateway.model.version": version, "gateway.backend": backend}
    if response.status_code >= 400 and response.is_json:
        entry["error"] = _problem_detail(response)  # problem+json, MLflow's or v2's error JSON
        if entry["error"] is not None:  # an R script's own error body too: bounded in the log
            entry["error"] = clip_detail(entry["error"])
    _write_line(orjson.dumps(entry))
    return response


def _labels(record: context.RequestRecord, model_arg: str | None,
            version_arg: str | None) -> tuple[str, str, str]:
    """(model, version, backend) labels; names a client made up become `_unknown`."""
    args = request.view_args or {}
    try:
        served = current_app.extensions["gateway"].registry.get(str(args.get(model_arg or "", "")))
    except NotFound:
        return metrics.UNKNOWN, metrics.UNKNOWN, metrics.UNKNOWN
    version = record.version
    if version is None:
        asked = args.get(version_arg or "") or "latest"
        version = served.current if asked == "latest" else asked
        if version not in served.versions:
            version = metrics.UNKNOWN
    return served.name, version, record.backend or served.settings.backend


def _problem_detail(response: Response) -> str | None:
    try:
        body = orjson.loads(response.get_data())
        for key in ("detail", "message", "error"):  # problem+json, MLflow's, v2's
            if key in body:
                return str(body[key])
        return str(body)
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return None
