"""OpenTelemetry spans for predict requests, configured only by the standard `OTEL_*` variables.

Off unless asked for: with neither `OTEL_TRACES_EXPORTER` nor an OTLP endpoint
(`OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) set, or with
`OTEL_SDK_DISABLED=true`, the SDK is never imported and every helper here is a no-op that
returns a shared object (one global check per call). The SDK reads the rest itself: sampler
(`OTEL_TRACES_SAMPLER`), batching (`OTEL_BSP_*`), endpoint, headers and timeout of the exporter,
`OTEL_SERVICE_NAME` and `OTEL_RESOURCE_ATTRIBUTES`.

Configured per Gunicorn worker after the fork (the batch processor's thread does not survive a
fork). The span tree of one request: a server span (parent: the client's `traceparent`) with
children for decode, validate, batch wait and the backend call; an R backend's call has a child
for the R side, built from the phase timings the R worker returns (`R_TIMINGS_HEADER`), so R needs
no tracing library. A batched backend call links the span of every caller it carries.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from gateway.errors import ConfigError

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter
    from opentelemetry.trace import Span, SpanContext, Tracer

# What the R worker (gatewayr's add_predict) and the rpy2 helper report: "parse=0.12;validate=0.3;..."
# in milliseconds, in the order the phases ran.
R_TIMINGS_HEADER = "X-Gateway-R-Timings"
SERVICE_NAME = "model-gateway"  # unless OTEL_SERVICE_NAME (or OTEL_RESOURCE_ATTRIBUTES) names one
_EXPORTERS = ("otlp", "console", "none")

_tracer: Tracer | None = None  # None: tracing is off
_provider: TracerProvider | None = None
_NOOP: contextlib.nullcontext[None] = contextlib.nullcontext()


def wanted(environ: Mapping[str, str]) -> bool:
    """Whether the environment asks for traces (see the module docstring); raises ConfigError
    for an exporter this gateway does not ship."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporters = _exporters(environ)
    if exporters is None:
        return bool(environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))
    return any(name != "none" for name in exporters)


def _exporters(environ: Mapping[str, str]) -> list[str] | None:
    raw = environ.get("OTEL_TRACES_EXPORTER", "").strip()
    if not raw:
        return None
    names = [name.strip().lower() for name in raw.split(",") if name.strip()]
    for name in names:
        if name not in _EXPORTERS:
            raise ConfigError(f"OTEL_TRACES_EXPORTER={raw!r}: the gateway ships the exporters "
                              f"{', '.join(_EXPORTERS)}; {name!r} is not one of them")
    protocol = environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or environ.get("OTEL_EXPORTER_OTLP_PROTOCOL", "")
    if "otlp" in names and protocol not in ("", "http/protobuf"):
        raise ConfigError(f"OTLP protocol {protocol!r}: the gateway exports traces over http/protobuf only; "
                          "unset OTEL_EXPORTER_OTLP_PROTOCOL or set it to http/protobuf")
    return names


def configure_from_env(environ: Mapping[str, str] | None = None) -> bool:
    """Turn tracing on in this process if the environment asks for it. Returns whether it is on."""
    environ = os.environ if environ is None else environ
    if not wanted(environ):
        return False
    exporters: list[SpanExporter] = []
    for name in _exporters(environ) or ["otlp"]:
        if name == "otlp":
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            exporters.append(OTLPSpanExporter())
        elif name == "console":
            from opentelemetry.sdk.trace.export import ConsoleSpanExporter

            exporters.append(ConsoleSpanExporter(out=sys.stderr))  # stdout carries the request log
    configure(exporters, batch=True)
    return True


def configure(exporters: Sequence[SpanExporter], *, batch: bool = True) -> None:
    """Turn tracing on with these exporters (tests pass an in-memory one with batch=False)."""
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    global _tracer, _provider
    resource = Resource.create()
    if str(resource.attributes.get("service.name", "")).startswith("unknown_service"):
        resource = resource.merge(Resource({"service.name": SERVICE_NAME}))
    provider = TracerProvider(resource=resource)
    for exporter in exporters:
        provider.add_span_processor(BatchSpanProcessor(exporter) if batch else SimpleSpanProcessor(exporter))
    _provider, _tracer = provider, provider.get_tracer("gateway")


def shutdown() -> None:
    """Flush and turn tracing off (tests; a worker's exit flushes through the SDK's atexit hook)."""
    global _tracer, _provider
    if _provider is not None:
        _provider.shutdown()
    _tracer = _provider = None


def enabled() -> bool:
    return _tracer is not None


# -- the server span ------------------------------------------------------------------------------

def start_server_span(name: str, traceparent: str | None, tracestate: str | None,
                      attributes: dict[str, Any]) -> Any:
    """Open the request's server span, child of the client's traceparent, and make it current.
    Returns a handle for `end_server_span`, or None when tracing is off."""
    if _tracer is None:
        return None
    from opentelemetry import context, trace
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    carrier = {k: v for k, v in (("traceparent", traceparent), ("tracestate", tracestate)) if v}
    # From an empty context: a request never continues whatever this thread had current before.
    parent: Context = TraceContextTextMapPropagator().extract(carrier, context=context.Context())
    span = _tracer.start_span(name, context=parent, kind=trace.SpanKind.SERVER, attributes=attributes)
    return span, context.attach(trace.set_span_in_context(span, parent))


def end_server_span(handle: Any, status: int | None, attributes: dict[str, Any],
                    error: BaseException | None = None) -> None:
    """Close what `start_server_span` opened; a 5xx (or an exception) marks the span an error."""
    if handle is None:
        return
    from opentelemetry import context
    from opentelemetry.trace import Status, StatusCode

    span, token = handle
    span.set_attributes(attributes)
    if status is not None:
        span.set_attribute("http.response.status_code", status)
    if error is not None:
        span.record_exception(error)
    if error is not None or (status is not None and status >= 500):
        span.set_status(Status(StatusCode.ERROR))
    with contextlib.suppress(ValueError):  # a token from another context (a streamed body)
        context.detach(token)
    span.end()


def trace_id(handle: Any) -> str | None:
    """The server span's trace id in hex, for the request log line."""
    if handle is None:
        return None
    return format(handle[0].get_span_context().trace_id, "032x")


# -- child spans ----------------------------------------------------------------------------------

def span(name: str, attributes: dict[str, Any] | None = None,
         links: Sequence[SpanContext | None] = ()) -> contextlib.AbstractContextManager[Any]:
    """A child span of the current one around a block; links to other spans' contexts (a batch's
    callers). A shared no-op when tracing is off."""
    if _tracer is None:
        return _NOOP
    from opentelemetry.trace import Link

    return _tracer.start_as_current_span(
        name, attributes=attributes, links=[Link(c) for c in links if c is not None and c.is_valid])


def current() -> SpanContext | None:
    """The current span's context (to link to from another thread), or None."""
    if _tracer is None:
        return None
    from opentelemetry import trace

    found = trace.get_current_span().get_span_context()
    return found if found.is_valid else None


def now_ns() -> int:
    """A span timestamp (wall clock, as the SDK's); 0 when off, so callers pay nothing."""
    return time.time_ns() if _tracer is not None else 0


def record(name: str, start_ns: int, end_ns: int, attributes: dict[str, Any] | None = None,
           links: Sequence[SpanContext | None] = ()) -> None:
    """A finished child span of the current one, for a stretch measured after the fact."""
    if _tracer is None or not start_ns:
        return
    from opentelemetry.trace import Link

    done = _tracer.start_span(name, attributes=attributes, start_time=start_ns,
                              links=[Link(c) for c in links if c is not None and c.is_valid])
    done.end(end_time=max(start_ns, end_ns))


def propagation_headers() -> dict[str, str]:
    """`traceparent` (and `tracestate`) naming the current span, for the next hop; {} when off."""
    if _tracer is None:
        return {}
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    carrier: dict[str, str] = {}
    TraceContextTextMapPropagator().inject(carrier)
    return carrier


# -- the R side -----------------------------------------------------------------------------------

def parse_r_timings(text: str | None) -> list[tuple[str, float]]:
    """"parse=0.12;validate=0.3" → [("parse", 0.12), ("validate", 0.3)] (ms); [] if unreadable."""
    if not text:
        return []
    phases = []
    for part in text.split(";"):
        name, _, value = part.partition("=")
        try:
            ms = float(value)
        except ValueError:
            return []
        if not name.strip() or not ms >= 0:  # also refuses NaN
            return []
        phases.append((name.strip(), ms))
    return phases


def record_r_side(timings: str | None, sent_ns: int, received_ns: int, where: str) -> None:
    """The R side of one call as a span `r.handle` with a child per phase R measured.

    R's clock is not ours (a remote host), so the phases are placed by their durations only:
    in the middle of the call as the gateway saw it (sent to received), the rest being transfer.
    """
    if _tracer is None:
        return
    phases = parse_r_timings(timings)
    if not phases:
        return
    total_ns = int(sum(ms for _, ms in phases) * 1e6)
    start = sent_ns + max(0, (received_ns - sent_ns - total_ns) // 2)
    r_span: Span = _tracer.start_span("r.handle", start_time=start,
                                      attributes={"gateway.r.where": where, "gateway.r.timings": timings or ""})
    from opentelemetry import trace

    inside = trace.set_span_in_context(r_span)
    at = start
    for name, ms in phases:
        length = int(ms * 1e6)
        phase = _tracer.start_span(f"r.{name}", context=inside, start_time=at, attributes={"gateway.r.ms": ms})
        phase.end(end_time=at + length)
        at += length
    r_span.end(end_time=start + total_ns)


@contextlib.contextmanager
def r_call(where: str) -> Iterator[dict[str, str]]:
    """Around one call into R: yields a dict the caller fills with R's timings under
    R_TIMINGS_HEADER; on exit the R side is recorded as a child of the current span."""
    if _tracer is None:
        yield {}
        return
    reply: dict[str, str] = {}
    sent = time.time_ns()
    try:
        yield reply
    finally:
        record_r_side(reply.get(R_TIMINGS_HEADER), sent, time.time_ns(), where)
