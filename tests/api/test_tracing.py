"""Traces through the Flask app (test client): every protocol's predict gets the same span tree."""

from __future__ import annotations

import json

import pytest
from flask.testing import FlaskClient
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from gateway.instrument import REQUEST_LOG

IRIS_ROW = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


@pytest.mark.parametrize(("path", "body", "route"), [
    ("/models/iris/predict", [IRIS_ROW], "POST /models/<name>/predict"),
    ("/models/iris/invocations", {"dataframe_records": [IRIS_ROW]}, "POST /models/<name>/invocations"),
    ("/vetiver/iris/predict", [IRIS_ROW], "POST /vetiver/<name>/predict"),
])
def test_each_protocol_gets_a_server_span_with_decode_validate_and_backend_children(
    client: FlaskClient, spans: InMemorySpanExporter, caplog: pytest.LogCaptureFixture,
    path: str, body: object, route: str,
) -> None:
    caplog.set_level("INFO", logger=REQUEST_LOG)
    reply = client.post(path, json=body, headers={"traceparent": TRACEPARENT})
    assert reply.status_code == 200, reply.get_data(as_text=True)
    finished = spans.get_finished_spans()
    (server,) = [s for s in finished if s.name == route]
    assert f"{server.context.trace_id:032x}" == TRACE_ID
    assert server.parent is not None and server.parent.span_id == 0x00f067aa0ba902b7
    assert server.attributes is not None
    assert (server.attributes["gateway.model"], server.attributes["http.response.status_code"]) == ("iris", 200)
    children = sorted(s.name for s in finished if s.parent is not None and s.parent.span_id == server.context.span_id)
    assert children == ["gateway.backend", "gateway.decode", "gateway.validate"]
    (line,) = [json.loads(r.getMessage()) for r in caplog.records if r.name == REQUEST_LOG]
    assert line["trace_id"] == TRACE_ID


def test_a_refused_request_is_traced_with_its_status(client: FlaskClient, spans: InMemorySpanExporter) -> None:
    reply = client.post("/models/iris/predict", json=[{"sepal_length": "x"}])
    assert reply.status_code == 422
    (server,) = [s for s in spans.get_finished_spans() if s.name.startswith("POST ")]
    assert server.attributes is not None and server.attributes["http.response.status_code"] == 422
    assert server.status.is_unset  # a client's error is not the server's


def test_probes_and_metrics_are_not_traced(client: FlaskClient, spans: InMemorySpanExporter) -> None:
    for path in ("/healthz", "/readyz", "/metrics", "/models"):
        client.get(path)
    assert spans.get_finished_spans() == ()
