"""gateway.tracing: when it is on, R's timings as spans, and batched calls linking their callers."""

from __future__ import annotations

import itertools
import threading
import time
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from gateway import tracing
from gateway.batching import MicroBatcher
from gateway.codecs import Table
from gateway.errors import ConfigError


@pytest.mark.parametrize(("environ", "on"), [
    ({}, False),
    ({"OTEL_SERVICE_NAME": "x", "OTEL_BSP_SCHEDULE_DELAY": "100"}, False),  # knobs alone turn nothing on
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, True),
    ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces"}, True),
    ({"OTEL_TRACES_EXPORTER": "otlp"}, True),
    ({"OTEL_TRACES_EXPORTER": "console"}, True),
    ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, False),
    ({"OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, False),
])
def test_traces_are_on_only_when_an_otel_variable_asks(environ: dict[str, str], on: bool) -> None:
    assert tracing.wanted(environ) is on


@pytest.mark.parametrize(("environ", "named"), [
    ({"OTEL_TRACES_EXPORTER": "zipkin"}, "'zipkin'"),
    ({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, "'grpc'"),
])
def test_an_exporter_the_gateway_cannot_serve_fails_at_start(environ: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        tracing.wanted(environ)


def test_off_every_helper_is_a_shared_no_op() -> None:
    assert not tracing.enabled()
    assert tracing.span("x") is tracing.span("y")
    assert tracing.current() is None and tracing.now_ns() == 0
    assert tracing.propagation_headers() == {}
    assert tracing.start_server_span("GET /", None, None, {}) is None


@pytest.mark.parametrize(("text", "phases"), [
    ("parse=0.120;validate=0.301;predict=1.250;encode=0.050",
     [("parse", 0.12), ("validate", 0.301), ("predict", 1.25), ("encode", 0.05)]),
    ("parse=2", [("parse", 2.0)]),
    ("", []), (None, []), ("parse=abc", []), ("parse=-1", []), ("parse=nan", []), ("=1", []),
])
def test_r_timings_header(text: str | None, phases: list[tuple[str, float]]) -> None:
    assert tracing.parse_r_timings(text) == phases


def by_name(exporter: InMemorySpanExporter) -> dict[str, list[ReadableSpan]]:
    found: dict[str, list[ReadableSpan]] = {}
    for span in exporter.get_finished_spans():
        found.setdefault(span.name, []).append(span)
    return found


def test_the_r_side_is_a_child_with_a_span_per_phase_inside_the_call(spans: InMemorySpanExporter) -> None:
    with tracing.span("gateway.backend"), tracing.r_call("plumber") as r_side:
        time.sleep(0.005)  # the R call, as the gateway sees it
        r_side[tracing.R_TIMINGS_HEADER] = "parse=0.5;validate=0.5;predict=2;encode=0.25"
    named = by_name(spans)
    (backend,), (r_handle,) = named["gateway.backend"], named["r.handle"]
    assert r_handle.parent is not None and r_handle.parent.span_id == backend.context.span_id
    phases = [named[f"r.{p}"][0] for p in ("parse", "validate", "predict", "encode")]
    assert all(p.parent is not None and p.parent.span_id == r_handle.context.span_id for p in phases)
    assert [round((p.end_time - p.start_time) / 1e6, 3) for p in phases] == [0.5, 0.5, 2.0, 0.25]
    assert r_handle.start_time >= backend.start_time and r_handle.end_time <= backend.end_time
    assert all(a.end_time == b.start_time for a, b in itertools.pairwise(phases))  # one after another


def test_the_next_hop_gets_a_traceparent_naming_the_current_span(spans: InMemorySpanExporter) -> None:
    with tracing.span("gateway.backend"):
        headers = tracing.propagation_headers()
        context = tracing.current()
    assert context is not None
    assert headers["traceparent"].startswith(f"00-{context.trace_id:032x}-{context.span_id:016x}-")


def test_a_server_span_continues_the_callers_trace(spans: InMemorySpanExporter) -> None:
    incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    handle = tracing.start_server_span("POST /models/<name>/predict", incoming, None, {"gateway.protocol": "native"})
    with tracing.span("gateway.decode"):
        pass
    tracing.end_server_span(handle, 503, {"gateway.model": "m"})
    named = by_name(spans)
    (server,), (decode,) = named["POST /models/<name>/predict"], named["gateway.decode"]
    assert server.context.trace_id == 0x4bf92f3577b34da6a3ce929d0e0e4736
    assert server.parent is not None and server.parent.span_id == 0x00f067aa0ba902b7 and server.parent.is_remote
    assert decode.parent is not None and decode.parent.span_id == server.context.span_id
    assert server.attributes is not None and server.attributes["http.response.status_code"] == 503
    assert not server.status.is_ok
    assert tracing.current() is None  # detached: the next request starts clean


def test_a_batched_call_links_every_callers_span(spans: InMemorySpanExporter) -> None:
    gate, entered = threading.Event(), threading.Event()

    def predict(table: Table, params: dict[str, Any]) -> list[Any]:
        entered.set()
        assert gate.wait(10)
        return list(table.columns["x"])

    batcher = MicroBatcher(predict, max_size=64, max_wait_ms=5000, slots=1)
    callers: dict[str, Any] = {}

    def call(name: str, x: float) -> None:
        with tracing.span(name):
            callers[name] = tracing.current()
            assert batcher.submit(Table({"x": [x]}, 1), {}) == [x]

    first = threading.Thread(target=call, args=("first", 1.0))
    first.start()
    assert entered.wait(10)  # the first call holds the only slot: the next two queue together
    queued = [threading.Thread(target=call, args=(f"queued-{i}", float(i))) for i in (2, 3)]
    for thread in queued:
        thread.start()
    deadline = time.monotonic() + 10
    while sum(len(q) for q in batcher._queues.values()) < 2:
        assert time.monotonic() < deadline, "the two callers never queued"
        time.sleep(0.001)
    gate.set()
    for thread in [first, *queued]:
        thread.join(10)
    named = by_name(spans)
    shared = [s for s in named["gateway.backend"] if s.attributes and s.attributes["gateway.batch.requests"] == 2]
    assert len(shared) == 1, [s.attributes for s in named["gateway.backend"]]
    linked = {link.context.span_id for link in shared[0].links}
    assert linked == {callers["queued-2"].span_id, callers["queued-3"].span_id}
    waits = named["gateway.batch_wait"]
    assert len(waits) == 2
    assert {w.parent.span_id for w in waits if w.parent} == linked  # each in its own caller's trace
    assert all([link.context.span_id for link in w.links] == [shared[0].context.span_id] for w in waits)


def test_the_stack_hands_otel_variables_on_to_supervisord_and_so_to_gunicorn(monkeypatch: pytest.MonkeyPatch) -> None:
    from gateway.runtime.stack import _child_env

    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318")
    monkeypatch.setenv("OTEL_SERVICE_NAME", "gw")
    passed = _child_env()
    assert (passed["OTEL_EXPORTER_OTLP_ENDPOINT"], passed["OTEL_SERVICE_NAME"]) == ("http://collector:4318", "gw")
