"""Bulk jobs: `POST /models/<name>/jobs` spools a body for the job runner; `GET /jobs/<id>`,
`GET /jobs/<id>/result`, `DELETE /jobs/<id>`. A job belongs to the API key that created it."""

from __future__ import annotations

from typing import cast

from flask import Blueprint, Response, current_app, g, request

from gateway.codecs import dumps, media_type
from gateway.codecs.stream import BULK_TYPES
from gateway.errors import UnsupportedMediaType
from gateway.jobs import JobStore
from gateway.protocol import Protocol
from gateway.responses import json_response, service
from gateway.service import check_params

blueprint = Blueprint("jobs", __name__)
_JSON = ("application/json", "")


@blueprint.post("/models/<name>/jobs")
@blueprint.post("/models/<name>/versions/<version>/jobs")
def create_job(name: str, version: str | None = None) -> Response:
    """Spool the body (NDJSON, CSV, Arrow or a JSON predict body) and answer 202 at once."""
    request.max_content_length = current_app.config["GATEWAY_STREAM_LIMIT"]
    svc = service()
    served = svc.registry.get(name)
    backend = served.backend(version if version is not None else served.route(request.headers.get("X-Routing-Key")))
    kind, _ = media_type(request.content_type)
    if kind not in BULK_TYPES and kind not in _JSON:
        raise UnsupportedMediaType(f"a job body is one of {', '.join((*BULK_TYPES, 'application/json'))}; "
                                   f"got {kind!r}", model=served.name)
    params = request.args.to_dict()
    meta = backend.meta
    check_params(params, meta.allowed_types if meta.inputs else (), served.name)  # a 400 now, not later
    spec = {"owner": _owner(), "model": served.name, "version": meta.version,
            "content_type": kind or "application/json", "params": params,
            "chunk_rows": max(1, svc.batcher(served, backend).max_size)}
    job = _store().create(spec, request.stream, svc.settings.server.jobs_per_key)
    reply = json_response(dumps(_store().status(job.id, job.owner)), status=202)
    reply.headers["Location"] = f"/jobs/{job.id}"
    return reply


@blueprint.get("/jobs/<job_id>")
def job_status(job_id: str) -> Response:
    """Status (queued, running, done, failed, cancelled) and progress in rows."""
    return json_response(dumps(_store().status(job_id, _owner())))


@blueprint.get("/jobs/<job_id>/result")
def job_result(job_id: str) -> Response:
    """The predictions of a done job, in row order: NDJSON, CSV or Arrow by Accept."""
    kind, pieces = _store().result(job_id, _owner(), media_type(request.headers.get("Accept"))[0])
    return Response(pieces, content_type=kind)


@blueprint.delete("/jobs/<job_id>")
def cancel_job(job_id: str) -> Response:
    """Cancel and delete the job: the runner stops after its current chunk and removes it."""
    _store().cancel(job_id, _owner())
    return Response(status=204)


def _owner() -> str:
    """The API key id that made the request ("" when the gateway runs without keys)."""
    return str(g.get("api_key_id", ""))


def _store() -> JobStore:
    return cast(JobStore, current_app.extensions["gateway.jobs"])


PROTOCOL = Protocol("jobs", (blueprint,))
