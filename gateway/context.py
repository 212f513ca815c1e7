"""What the current request carries past the HTTP layer: its ids, and what the backend did.

A context variable, so service.py and the backends stay free of Flask: the HTTP layer opens
a record per request, the service fills in the version, backend and rows, the Plumber backend
reads the ids to forward, and the HTTP layer logs and counts the record at the end. Code that
moves work to another thread (a batcher) must carry the record over with contextvars.copy_context().
"""

from __future__ import annotations

import re
from contextvars import ContextVar
from dataclasses import dataclass

# At most 128 characters of [A-Za-z0-9._-]: safe inside JSON, log lines and headers as is.
REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")


@dataclass
class RequestRecord:
    request_id: str
    traceparent: str | None = None
    version: str | None = None  # the version that served it, once resolved
    backend: str | None = None
    rows: int | None = None  # rows predicted, on success


_current: ContextVar[RequestRecord | None] = ContextVar("gateway_request", default=None)


def is_sane_request_id(value: str) -> bool:
    return REQUEST_ID.fullmatch(value) is not None


def begin(request_id: str, traceparent: str | None = None) -> RequestRecord:
    record = RequestRecord(request_id, traceparent)
    _current.set(record)
    return record


def current() -> RequestRecord | None:
    return _current.get()


def trace_headers() -> dict[str, str]:
    """Headers that carry the current request's identity to a backend (empty outside a request)."""
    record = _current.get()
    if record is None:
        return {}
    headers = {"X-Request-ID": record.request_id}
    if record.traceparent:
        headers["traceparent"] = record.traceparent
    return headers
