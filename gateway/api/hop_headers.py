"""Which headers a pass-through hop forwards: end-to-end ones only (RFC 9110 §7.6.1).

Hop-by-hop headers (Connection, every header Connection names, and the fixed list below) belong
to one connection and are dropped in both directions. Nothing is added on a client's behalf: no
cookie jar, no default User-Agent or Accept-Encoding; what a request carries is what its own
client sent, and every Set-Cookie of a reply goes back to the client that asked, one header each.
"""

from __future__ import annotations

from collections.abc import Iterable

HOP_BY_HOP = frozenset({
    "connection", "keep-alive", "proxy-connection", "te", "transfer-encoding", "upgrade",
    "proxy-authorization", "proxy-authenticate", "trailer",
})
# Set again by the next hop for its own connection, or meaningful to the gateway only: the
# cluster secret is the gateway's to send (to other hosts), never a client's.
_REQUEST_OWN = frozenset({"host", "content-length", "x-gateway-secret"})
# The body is re-framed (Werkzeug sets the length of what is sent).
_REPLY_OWN = frozenset({"content-length"})


def _named_by_connection(headers: Iterable[tuple[str, str]]) -> set[str]:
    return {token.strip().lower() for name, value in headers if name.lower() == "connection"
            for token in value.split(",") if token.strip()}


def request_headers(headers: Iterable[tuple[str, str]], also_drop: Iterable[str] = ()) -> list[tuple[str, str]]:
    """The client's end-to-end headers, in order, for the next hop."""
    headers = list(headers)
    dropped = HOP_BY_HOP | _REQUEST_OWN | _named_by_connection(headers) | {h.lower() for h in also_drop}
    return [(name, value) for name, value in headers if name.lower() not in dropped]


def reply_headers(headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """The upstream reply's end-to-end headers, repeated ones (Set-Cookie) kept apart."""
    headers = list(headers)
    dropped = HOP_BY_HOP | _REPLY_OWN | _named_by_connection(headers)
    return [(name, value) for name, value in headers if name.lower() not in dropped]
