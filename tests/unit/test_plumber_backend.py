"""The R pool backends (generic worker pool, user-script pool) map every upstream outcome to the contract's status.

A stand-in HTTP server plays the internal NGINX (this is a unit test; the integration tests
run the real NGINX and R workers). Each test scripts one reply.
"""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from gateway.backends.plumber import UPSTREAM_FAILED_HEADER, PlumberPool, pool_backend
from gateway.codecs import BINARY_WIRE_TYPE, Table, encode_binary_request
from gateway.errors import BadGateway, GatewayTimeout, InvalidInput, ModelError, Unavailable
from gateway.meta import InputSpec, ModelMeta
from gateway.runtime.plan import Endpoint, PoolPlan
from gateway.settings import ModelSettings

INPUTS = (InputSpec("wt", "double"), InputSpec("am", "factor", ("auto", "manual")))


class Upstream:
    """Records what the backend sent; answers with whatever the test put in `reply`."""

    def __init__(self) -> None:
        self.reply: tuple[int, dict[str, str], bytes] = (200, {}, b"{}")
        self.delay_s = 0.0
        self.cut_first = 0  # replies cut off mid-body (headers sent, then the connection closed)
        self.received: list[tuple[str, str, bytes]] = []
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                upstream.received.append((self.path, self.headers.get("Content-Type", ""), body))
                time.sleep(upstream.delay_s)
                status, headers, payload = upstream.reply
                if upstream.cut_first:
                    upstream.cut_first -= 1
                    self.send_response(status)
                    self.send_header("Content-Length", str(len(payload) + 100))
                    self.end_headers()
                    self.wfile.write(payload[:1])
                    self.close_connection = True
                    return
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    server = Upstream()
    yield server
    server.server.shutdown()
    server.server.server_close()


def backend_for(upstream: Upstream, *, kind: str = "model", workers: tuple[int, ...] | None = None,
                timeout_s: float = 5.0, predict_route: str | None = None) -> PlumberPool:
    meta = ModelMeta(name="mtcars", version="3", language="r", format="rds", artefact="model.rds",
                     inputs=INPUTS, outputs={"kind": "regression"}, sha256="", created_at="", framework={})
    settings = ModelSettings(name="mtcars", backend="plumber", timeout_s=timeout_s, predict_route=predict_route)
    ports = workers if workers is not None else (upstream.port,)
    pool = PoolPlan("mtcars", kind, "/nowhere", "3", tuple(Endpoint("127.0.0.1", p) for p in ports), timeout_s)  # type: ignore[arg-type]
    return pool_backend(meta, settings, pool, f"http://127.0.0.1:{upstream.port}")


TABLE = Table.from_records([{"wt": 2.5, "am": "manual"}, {"wt": 3.0, "am": "auto"}])


def answer(upstream: Upstream, status: int, doc: object, headers: dict[str, str] | None = None) -> None:
    upstream.reply = (status, {"Content-Type": "application/json", **(headers or {})}, json.dumps(doc).encode())


def test_sends_the_binary_wire_and_reads_a_json_reply(upstream: Upstream) -> None:
    answer(upstream, 200, {"predictions": [21.5, 19.25]})
    assert backend_for(upstream).predict(TABLE, {"type": "response"}) == [21.5, 19.25]
    path, content_type, body = upstream.received[0]
    assert path == "/r/mtcars/predict"
    assert content_type == BINARY_WIRE_TYPE
    assert body == encode_binary_request(TABLE, INPUTS, {"type": "response"})


def test_reads_a_binary_reply(upstream: Upstream) -> None:
    reply = b'{"rows":2,"shape":"vector","columns":[{"name":null,"type":"double","bytes":16,"missing":[2]}]}\n'
    upstream.reply = (200, {"Content-Type": BINARY_WIRE_TYPE}, reply + struct.pack("<2d", 21.5, 0.0))
    assert backend_for(upstream).predict(TABLE, {}) == [21.5, None]


def test_a_table_the_binary_wire_cannot_carry_goes_as_the_typed_columnar_json(upstream: Upstream) -> None:
    answer(upstream, 200, {"predictions": [21.5]})
    backend_for(upstream).predict(Table.from_records([{"wt": 2.5, "am": "man\x00ual"}]), {"type": "response"})
    _, content_type, body = upstream.received[0]
    assert content_type == "application/json"
    assert json.loads(body) == {
        "columns": {"wt": [2.5], "am": ["man\x00ual"]},
        "types": {"wt": "double", "am": "factor"},
        "params": {"type": "response"},
    }


def test_columnar_multi_output_becomes_one_object_per_row(upstream: Upstream) -> None:
    answer(upstream, 200, {"predictions": {"auto": [0.25, 0.5], "manual": [0.75, 0.5]}})
    assert backend_for(upstream).predict(TABLE, {}) == [{"auto": 0.25, "manual": 0.75}, {"auto": 0.5, "manual": 0.5}]


def test_r_validation_error_is_422_with_rs_message(upstream: Upstream) -> None:
    answer(upstream, 422, {"error": {"code": "invalid_input", "message": "column 'wt' is missing"}})
    with pytest.raises(InvalidInput, match="column 'wt' is missing") as caught:
        backend_for(upstream).predict(TABLE, {})
    assert caught.value.status == 422


def test_r_condition_is_passed_on_as_model_error(upstream: Upstream) -> None:
    answer(upstream, 422, {"error": {"code": "model_error", "message": "wt must be positive"}})
    with pytest.raises(ModelError, match="wt must be positive"):
        backend_for(upstream).predict(TABLE, {})


def test_worker_500_is_502(upstream: Upstream) -> None:
    answer(upstream, 500, {"error": {"code": "internal", "message": "object 'x' not found"}})
    with pytest.raises(BadGateway, match="object 'x' not found"):
        backend_for(upstream).predict(TABLE, {})


def test_garbage_reply_is_502_quoting_it(upstream: Upstream) -> None:
    upstream.reply = (200, {"Content-Type": "text/html"}, b"<html>oops</html>")
    with pytest.raises(BadGateway, match="oops"):
        backend_for(upstream).predict(TABLE, {})


def test_wrong_prediction_count_is_502(upstream: Upstream) -> None:
    answer(upstream, 200, {"predictions": [1.0]})
    with pytest.raises(BadGateway, match="1 predictions for 2 rows"):
        backend_for(upstream).predict(TABLE, {})


def test_slow_model_is_504_naming_the_timeout(upstream: Upstream) -> None:
    answer(upstream, 200, {"predictions": [1.0, 2.0]})
    upstream.delay_s = 1.0
    with pytest.raises(GatewayTimeout, match=r"0\.3 s"):
        backend_for(upstream, timeout_s=0.3).predict(TABLE, {})


def test_pool_failure_with_no_live_worker_is_503(upstream: Upstream) -> None:
    answer(upstream, 502, {"error": "no upstream"}, {UPSTREAM_FAILED_HEADER: "failed"})
    with pytest.raises(Unavailable, match="0 of 1"):
        backend_for(upstream, workers=(closed_port(),)).predict(TABLE, {})


def test_pool_failure_with_a_live_worker_is_502(upstream: Upstream) -> None:
    answer(upstream, 502, {"error": "no upstream"}, {UPSTREAM_FAILED_HEADER: "failed"})
    with pytest.raises(BadGateway, match="crashed"):
        backend_for(upstream).predict(TABLE, {})


def test_unreachable_proxy_is_503() -> None:
    port = closed_port()
    fake = Upstream.__new__(Upstream)
    fake.port = port
    with pytest.raises(Unavailable, match="not reachable"):
        backend_for(fake).predict(TABLE, {})


def test_a_reply_cut_off_mid_body_is_sent_once_more_for_a_saved_model(upstream: Upstream) -> None:
    """An R worker killed while writing its reply: the predict has no side effects, so the same
    call goes once more (NGINX then picks a live worker) instead of failing the client."""
    answer(upstream, 200, {"predictions": [1.5, 2.5]})
    upstream.cut_first = 1
    assert backend_for(upstream).predict(TABLE, {}) == [1.5, 2.5]
    assert len(upstream.received) == 2
    upstream.cut_first = 2  # cut twice: the client hears it
    with pytest.raises(Unavailable):
        backend_for(upstream).predict(TABLE, {})


def test_a_scripts_route_is_never_sent_twice(upstream: Upstream) -> None:
    answer(upstream, 200, [1.5, 2.5])
    upstream.cut_first = 1
    with pytest.raises(Unavailable):
        backend_for(upstream, kind="script", predict_route="/predict").predict(TABLE, {})
    assert len(upstream.received) == 1


def test_health_counts_workers_accepting_connections(upstream: Upstream) -> None:
    health = backend_for(upstream, workers=(upstream.port, closed_port())).health()
    assert (health.ready, health.live, health.total) == (True, 1, 2)
    dead = backend_for(upstream, workers=(closed_port(),)).health()
    assert (dead.ready, dead.live) == (False, 0)


def test_script_gets_records_on_its_own_route_and_its_reply_is_normalised(upstream: Upstream) -> None:
    answer(upstream, 200, {".pred": [1.5, 2.5]})
    backend = backend_for(upstream, kind="script", predict_route="/predict")
    assert backend.predict(TABLE, {}) == [1.5, 2.5]
    path, _, body = upstream.received[0]
    assert path == "/r/mtcars/predict"
    assert json.loads(body) == [{"wt": 2.5, "am": "manual"}, {"wt": 3.0, "am": "auto"}]


def test_script_error_is_422_with_rs_message(upstream: Upstream) -> None:
    answer(upstream, 500, {"error": {"code": "model_error", "message": "speed is required"}})
    backend = backend_for(upstream, kind="script", predict_route="/predict")
    with pytest.raises(ModelError, match="speed is required"):
        backend.predict(TABLE, {})


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
