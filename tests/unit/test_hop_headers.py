"""Pass-through headers: end-to-end only (RFC 9110 §7.6.1), repeated reply headers kept apart."""

from __future__ import annotations

from gateway.api.hop_headers import reply_headers, request_headers


def test_request_drops_hop_by_hop_and_what_connection_names() -> None:
    sent = [("Host", "public"), ("Connection", "close, X-Hop"), ("X-Hop", "1"), ("Keep-Alive", "5"),
            ("Proxy-Connection", "keep-alive"), ("TE", "trailers"), ("Transfer-Encoding", "chunked"),
            ("Upgrade", "h2c"), ("Proxy-Authorization", "Basic eA=="), ("Trailer", "X"),
            ("Content-Length", "3"), ("X-Gateway-Secret", "guess"), ("Authorization", "Bearer k"),
            ("Cookie", "sid=1"), ("Accept", "text/csv"), ("X-Custom", "kept")]
    assert request_headers(sent, also_drop=("Authorization",)) == [
        ("Cookie", "sid=1"), ("Accept", "text/csv"), ("X-Custom", "kept")]
    assert ("Authorization", "Bearer k") in request_headers(sent)  # keys off: the script's own auth


def test_reply_keeps_every_set_cookie_apart_and_drops_hop_by_hop() -> None:
    got = [("Set-Cookie", "sid=1; Path=/"), ("Set-Cookie", "theme=dark; Path=/"), ("Connection", "x-trace"),
           ("X-Trace", "internal"), ("Transfer-Encoding", "chunked"), ("Proxy-Authenticate", "Basic"),
           ("Content-Length", "10"), ("Content-Encoding", "gzip"), ("Content-Type", "text/csv")]
    assert reply_headers(got) == [("Set-Cookie", "sid=1; Path=/"), ("Set-Cookie", "theme=dark; Path=/"),
                                  ("Content-Encoding", "gzip"), ("Content-Type", "text/csv")]
