"""ScriptPool.forward keeps nothing between requests: no cookie jar, no default headers.

A stand-in upstream (a unit test: the integration test runs NGINX and R) sets cookies on the
first request it sees and records the headers of every request.
"""

from __future__ import annotations

import gzip
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from gateway.backends.plumber import ScriptPool
from gateway.meta import ModelMeta
from gateway.runtime.plan import Endpoint, PoolPlan
from gateway.settings import ModelSettings


@pytest.fixture
def upstream() -> Iterator[tuple[int, list[tuple[str, dict[str, str]]]]]:
    seen: list[tuple[str, dict[str, str]]] = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: a reused connection must carry nothing over

        def do_GET(self) -> None:
            seen.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
            body = gzip.compress(b'{"ok":true}')
            self.send_response(200)
            self.send_header("Set-Cookie", "sid=first; Path=/")
            self.send_header("Set-Cookie", "theme=dark; Path=/")
            self.send_header("Content-Encoding", "gzip")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1], seen
    server.shutdown()
    server.server_close()


def backend(port: int) -> ScriptPool:
    meta = ModelMeta(name="echo", version="1", language="r", format="plumber", artefact="plumber.R",
                     inputs=(), outputs={}, sha256="", created_at="", framework={})
    pool = PoolPlan("echo", "script", "/nowhere", "script", (Endpoint("127.0.0.1", port),), 5.0)
    return ScriptPool(meta, ModelSettings(name="echo", backend="plumber", timeout_s=5.0), pool,
                      f"http://127.0.0.1:{port}", cluster_secret="c" * 43)


def test_no_cookie_or_default_header_is_added_and_replies_stay_as_sent(
    upstream: tuple[int, list[tuple[str, dict[str, str]]]],
) -> None:
    port, seen = upstream
    proxy = backend(port)
    first = proxy.forward("GET", "session", b"a=1", [("Cookie", "mine=1"), ("Accept", "*/*")], b"")
    assert first.headers.getlist("Set-Cookie") == ["sid=first; Path=/", "theme=dark; Path=/"]
    assert first.headers["Content-Encoding"] == "gzip" and gzip.decompress(first.data) == b'{"ok":true}'
    proxy.forward("GET", "session", b"", [], b"")
    (path1, sent1), (path2, sent2) = seen
    assert path1 == "/r/echo/session?a=1" and path2 == "/r/echo/session"
    assert sent1["cookie"] == "mine=1"
    assert "cookie" not in sent2  # the first client's cookies (sent or received) are not replayed
    for sent in (sent1, sent2):
        assert "user-agent" not in sent and "accept-encoding" not in sent  # only the client's own
        assert "x-gateway-secret" not in sent and "content-length" not in sent
