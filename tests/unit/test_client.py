"""gateway.client re-sends a request left unanswered, and nothing else, against a real socket."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
import requests

from gateway import client

OK = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
UNAVAILABLE = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n"

# What the server does with the n-th request it reads: answer with these bytes, or None to close
# the connection without a word (what NGINX does to an idle kept-alive connection on reload).
Script = Callable[[int], bytes | None]


@contextmanager
def server(script: Script, delay_s: float = 0.0) -> Iterator[tuple[str, list[bytes]]]:
    """A one-connection-at-a-time HTTP server on loopback; yields its URL and the requests it read."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    seen: list[bytes] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            with conn:
                data = read_request(conn)
                if not data:
                    continue
                seen.append(data)
                time.sleep(delay_s)
                reply = script(len(seen))
                if reply is not None:
                    conn.sendall(reply)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}", seen
    finally:
        stop.set()
        thread.join(timeout=5)
        listener.close()


def read_request(conn: socket.socket) -> bytes:
    """One whole request: headers, then Content-Length bytes of body (they may come apart)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                   if line.lower().startswith(b"content-length:")), 0)
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body


def post(http: requests.Session, url: str, timeout: float = 5) -> requests.Response:
    http.trust_env = False
    return http.post(url + "/models/m/predict", json=[{"x": 1}], timeout=timeout)


def test_an_unanswered_predict_is_sent_again_and_answered() -> None:
    with server(lambda n: OK if n > 1 else None) as (url, seen), client.session() as http:
        reply = post(http, url)
    assert reply.status_code == 200
    assert client.resends(reply) == 1
    assert len(seen) == 2 and seen[0] == seen[1]  # the same request, body and all


def test_a_plain_requests_session_fails_where_the_client_resends() -> None:
    answers_second: Script = lambda n: OK if n > 1 else None  # noqa: E731
    with server(answers_second) as (url, seen), requests.Session() as http, pytest.raises(requests.ConnectionError):
        post(http, url)
    assert len(seen) == 1


def test_one_resend_at_most_by_default() -> None:
    with server(lambda n: None) as (url, seen), client.session() as http, pytest.raises(requests.ConnectionError):
        post(http, url)
    assert len(seen) == 2


def test_an_http_error_status_is_an_answer_and_is_not_resent() -> None:
    with server(lambda n: UNAVAILABLE) as (url, seen), client.session() as http:
        reply = post(http, url)
    assert reply.status_code == 503
    assert client.resends(reply) == 0 and len(seen) == 1


def test_a_read_timeout_is_not_resent() -> None:
    """The server may still be working on it: a re-send would double a slow model's load."""
    with server(lambda n: OK, delay_s=0.5) as (url, seen), client.session() as http:
        with pytest.raises(requests.ReadTimeout):
            post(http, url, timeout=0.2)
        time.sleep(0.5)
    assert len(seen) == 1
