"""Traces and the status page's chart through a real stack (2 Gunicorn workers, R pools).

The stack exports its spans over OTLP/HTTP to a receiver inside the test (a tiny HTTP server that
decodes ExportTraceServiceRequest with opentelemetry-proto), configured by the standard OTEL_*
variables only. The span trees are printed (`pytest -s`), for the record.
"""

from __future__ import annotations

import gzip
import json
import re
import subprocess
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from gateway.demo import build_iris
from tests.integration.conftest import Stack, start_stack, wait_for
from tests.integration.r_models import build_r_store

MODELS = {
    "iris": {"backend": "python"},
    "mtcars": {"backend": "plumber", "workers": 1, "timeout_s": 20},
    "slow": {"backend": "plumber", "workers": 1, "timeout_s": 20},
}
MTCARS_ROWS = [{"wt": 2.62, "hp": 110, "cyl": 6, "am": "manual"}, {"wt": 3.2, "hp": 150, "cyl": 8, "am": "auto"}]
IRIS_ROW = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}
CHROMIUM = "/usr/bin/chromium"  # Debian's `chromium` (Makefile APT_PACKAGES)
R_PHASES = ["r.parse", "r.validate", "r.predict", "r.encode"]


@dataclass
class Span:
    trace_id: str
    span_id: str
    parent: str | None
    name: str
    kind: int
    start: int
    end: int
    service: str
    attributes: dict[str, Any] = field(default_factory=dict)
    links: list[tuple[str, str]] = field(default_factory=list)

    @property
    def ms(self) -> float:
        return (self.end - self.start) / 1e6


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    return getattr(value, kind) if kind else None


class Receiver:
    """An OTLP/HTTP trace receiver on loopback: keeps every span it is sent."""

    def __init__(self) -> None:
        self.spans: list[Span] = []
        self.requests = 0
        lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                decoded = ExportTraceServiceRequest.FromString(body)
                with lock:
                    receiver.requests += 1
                    receiver.spans.extend(_spans(decoded))
                reply = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200 if self.path == "/v1/traces" else 404)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def trace(self, trace_id: str) -> list[Span]:
        return [s for s in list(self.spans) if s.trace_id == trace_id]


def _spans(request: ExportTraceServiceRequest) -> Iterator[Span]:
    for resource_spans in request.resource_spans:
        resource = {kv.key: _value(kv.value) for kv in resource_spans.resource.attributes}
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                yield Span(
                    trace_id=span.trace_id.hex(), span_id=span.span_id.hex(), parent=span.parent_span_id.hex() or None,
                    name=span.name, kind=span.kind, start=span.start_time_unix_nano, end=span.end_time_unix_nano,
                    service=str(resource.get("service.name")),
                    attributes={kv.key: _value(kv.value) for kv in span.attributes},
                    links=[(link.trace_id.hex(), link.span_id.hex()) for link in span.links],
                )


def tree(spans: list[Span], root: Span, depth: int = 0) -> list[str]:
    """The span tree under root, one line per span, children in start order."""
    lines = [f"{'  ' * depth}{root.name}  {root.ms:.3f} ms{_extra(root)}"]
    for child in sorted((s for s in spans if s.parent == root.span_id), key=lambda s: s.start):
        lines += tree(spans, child, depth + 1)
    return lines


def _extra(span: Span) -> str:
    shown = {k: v for k, v in span.attributes.items()
             if k in ("gateway.model", "http.response.status_code", "gateway.batch.requests", "gateway.r.timings")}
    links = f" links={len(span.links)}" if span.links else ""
    return (f"  {shown}" if shown else "") + links




@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    running = Receiver()
    yield running
    running.close()


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory, receiver: Receiver) -> Iterator[Stack]:
    store = build_r_store(tmp_path_factory.mktemp("traces") / "store")
    build_iris(store)
    otel = {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url, "OTEL_BSP_SCHEDULE_DELAY": "100",
            "OTEL_SERVICE_NAME": "gateway-under-test"}
    with pytest.MonkeyPatch.context() as patch:  # the stack inherits them; this process keeps none
        for name, value in otel.items():
            patch.setenv(name, value)
        stack = start_stack(tmp_path_factory.mktemp("traces-stack"), MODELS,
                            {"workers": 2, "threads": 4, "status_interval_s": 1.0}, store=store)
        running = stack.__enter__()
    try:
        yield running
    finally:
        stack.__exit__(None, None, None)


def new_traceparent() -> tuple[str, str, str]:
    trace_id, parent = uuid.uuid4().hex, uuid.uuid4().hex[:16]
    return f"00-{trace_id}-{parent}-01", trace_id, parent


def test_one_r_request_is_one_trace_down_to_rs_own_phases(gw: Stack, receiver: Receiver) -> None:
    traceparent, trace_id, parent = new_traceparent()
    request_id = f"traced-{uuid.uuid4().hex[:8]}"
    reply = gw.post("/models/mtcars/predict", json=MTCARS_ROWS,
                    headers={"traceparent": traceparent, "X-Request-ID": request_id})
    assert reply.status_code == 200, reply.text

    def complete() -> list[Span] | None:
        spans = receiver.trace(trace_id)
        names = {s.name for s in spans}
        return spans if {"POST /models/<name>/predict", "r.handle", *R_PHASES} <= names else None

    spans = wait_for(complete, 20)
    assert spans, f"no complete trace arrived; got {sorted({s.name for s in receiver.trace(trace_id)})}"
    (server,) = [s for s in spans if s.name == "POST /models/<name>/predict"]
    print("\nspan tree of one R (Plumber) request:\n" + "\n".join(tree(spans, server)))
    assert server.parent == parent and server.kind == 2  # SPAN_KIND_SERVER, child of the caller's span
    assert server.service == "gateway-under-test"
    assert server.attributes["gateway.model"] == "mtcars"
    assert server.attributes["http.response.status_code"] == 200
    children = {s.name: s for s in spans if s.parent == server.span_id}
    assert {"gateway.decode", "gateway.validate", "gateway.backend"} <= set(children)
    backend = children["gateway.backend"]
    (r_side,) = [s for s in spans if s.name == "r.handle"]
    assert r_side.parent == backend.span_id
    assert backend.start <= r_side.start and r_side.end <= backend.end
    phases = sorted((s for s in spans if s.parent == r_side.span_id), key=lambda s: s.start)
    assert [p.name for p in phases] == R_PHASES
    assert all(p.ms >= 0 for p in phases) and phases[2].ms > 0  # R measured its predict
    assert server.start <= backend.start and backend.end <= server.end

    # The R worker was called with a traceparent naming the backend call's span.
    def internal_line() -> dict[str, Any] | None:
        for line in (gw.run_dir / "logs" / "nginx-access.log").read_text().splitlines():
            if line.startswith("{") and request_id in line:
                entry = json.loads(line)
                if entry.get("uri") == "/r/mtcars/predict":
                    return entry
        return None

    entry = wait_for(internal_line, 10)
    assert entry is not None
    assert entry["traceparent"].split("-")[1:3] == [trace_id, backend.span_id]


def test_a_batched_r_call_links_every_callers_span(gw: Stack, receiver: Receiver) -> None:
    # Released together: in each Gunicorn worker the first caller takes the only call slot (the
    # model sleeps 0.3 s in R), the others queue in its batcher and share a call. 8 callers over
    # 2 processes with 4 threads each: at least 3 queue in one of them.
    callers = [new_traceparent() for _ in range(8)]
    barrier = threading.Barrier(len(callers))

    def send(traceparent: str) -> int:
        with requests.Session() as http:
            http.trust_env = False
            barrier.wait(10)
            reply = http.post(gw.url + "/models/slow/predict", json=[{"x": 0.3}], timeout=30,
                              headers={"traceparent": traceparent})
            return reply.status_code

    with ThreadPoolExecutor(len(callers)) as pool:
        assert list(pool.map(send, [tp for tp, _, _ in callers])) == [200] * len(callers)

    traces = {trace_id for _, trace_id, _ in callers}

    def batched() -> list[Span]:
        return [s for s in list(receiver.spans) if s.name == "gateway.backend"
                and int(s.attributes.get("gateway.batch.requests", 1)) >= 2 and s.trace_id in traces]

    shared = wait_for(batched, 20)
    assert shared, "no batched backend call arrived"
    call = shared[0]
    linked_traces = {trace for trace, _ in call.links}
    assert len(linked_traces) == call.attributes["gateway.batch.requests"] >= 2
    assert linked_traces <= traces
    servers = {s.trace_id: s for s in receiver.spans if s.name == "POST /models/<name>/predict"}
    assert all(servers[trace].span_id == span_id for trace, span_id in call.links if trace in servers)
    waits = wait_for(lambda: [s for s in receiver.spans if s.name == "gateway.batch_wait"
                              and s.trace_id in linked_traces and (call.trace_id, call.span_id) in s.links], 20)
    assert waits, "the callers' batch_wait spans do not link the shared call"
    print("\na batched R call, in its leader's trace:\n" + "\n".join(
        tree([s for s in receiver.spans if s.trace_id == call.trace_id], servers[call.trace_id])))
    print("links to the callers' server spans:", sorted(call.links))


def chromium(*args: str, profile: Path) -> subprocess.CompletedProcess[str]:
    command = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
               "--no-first-run", f"--user-data-dir={profile}", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def test_the_status_pages_latency_chart_draws_lines_in_headless_chromium(gw: Stack, tmp_path: Path) -> None:
    def charted() -> list[list[float]] | None:
        assert gw.post("/models/mtcars/predict", json=MTCARS_ROWS).status_code == 200
        assert gw.post("/models/iris/predict", json=[IRIS_ROW]).status_code == 200
        points = gw.get("/status.json").json()["chart"]["points"].get("mtcars", [])
        return points if len(points) >= 3 else None

    assert wait_for(charted, 30), "status.json never had 3 points for mtcars"
    assert gw.post("/models/mtcars/predict", json=[{"wt": "heavy"}]).status_code == 422  # a 4xx
    dumped = chromium("--virtual-time-budget=8000", "--dump-dom", gw.url + "/", profile=tmp_path / "profile")
    assert dumped.returncode == 0, dumped.stderr[-2000:]
    row = re.search(r'<tr data-model="mtcars">(.*?)</tr>', dumped.stdout, re.S)
    assert row, dumped.stdout[-3000:]
    drawn = re.search(r'<svg[^>]*data-points="(\d+)"', row.group(1))
    line = re.search(r'<polyline data-line="p95" points="([^"]+)"', row.group(1))
    assert drawn and line, row.group(1)
    coords = [tuple(map(float, pair.split(","))) for pair in line.group(1).split()]
    assert int(drawn.group(1)) == len(coords) >= 3
    assert len({x for x, _ in coords}) == len(coords)  # points spread over time, not one dash
    client_errors = re.search(r'data-field="client_errors"[^>]*>(\d+)<', row.group(1))
    assert client_errors and int(client_errors.group(1)) >= 1
    screenshot = tmp_path / "status.png"
    shot = chromium("--virtual-time-budget=8000", "--window-size=1500,360", f"--screenshot={screenshot}",
                    gw.url + "/", profile=tmp_path / "profile")
    assert shot.returncode == 0, shot.stderr[-2000:]
    assert screenshot.stat().st_size > 5000
    print(f"\nstatus page screenshot: {screenshot}; mtcars chart points: {coords}")
