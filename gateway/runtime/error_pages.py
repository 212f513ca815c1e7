"""NGINX's own error pages (a body over the limit, the app down, a rate limit, a request NGINX
could not read), each in the envelope of the protocol the client called: rendered from the same
registered protocols (gateway/api/registered.py) and envelopes (gateway/codecs/envelope.py) as
the app's own errors. NGINX picks the page with `map $uri $gateway_envelope`, built here from
each protocol's `uri`."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.api.registered import PROTOCOLS
from gateway.codecs.envelope import PROBLEM, Envelope
from gateway.errors import (
    BadRequest,
    GatewayError,
    HeadersTooLarge,
    PayloadTooLarge,
    TooManyRequests,
    Unavailable,
    UriTooLong,
)
from gateway.settings import ServerSettings

REQUEST_ID = "@@request_id@@"  # placeholder, becomes an NGINX variable in error bodies


@dataclass(frozen=True)
class Body:
    envelope: str  # the value of $gateway_envelope that picks it
    status: int
    content_type: str
    text: str


@dataclass(frozen=True)
class Page:
    """One of NGINX's errors. `named`: an `@name` location; else a URI under /__gateway/ (a request
    line NGINX could not read has no URI to go to a named location from)."""

    name: str
    named: bool
    retry_after: bool
    bodies: tuple[Body, ...]

    def target(self) -> str:
        """What `error_page` names: the page of the request's envelope."""
        return f"@{self.name}_$gateway_envelope" if self.named else f"/__gateway/{self.name}/$gateway_envelope"

    def location(self, body: Body) -> str:
        return f"@{self.name}_{body.envelope}" if self.named else f"= /__gateway/{self.name}/{body.envelope}"


def envelopes() -> tuple[Envelope, ...]:
    """The distinct envelopes of the registered protocols, the default (problem+json) first."""
    found = {PROBLEM.name: PROBLEM}
    for protocol in PROTOCOLS:
        found.setdefault(protocol.envelope.name, protocol.envelope)
    return tuple(found.values())


def envelope_map() -> list[tuple[str, str]]:
    """(path regex, envelope name) for `map $uri $gateway_envelope`, in registration order; paths
    no protocol claims get problem+json (the map's default)."""
    return [(p.uri, p.envelope.name) for p in PROTOCOLS if p.uri is not None and p.envelope != PROBLEM]


def error_pages(server: ServerSettings, too_many: str) -> list[Page]:
    """Every page NGINX answers itself, with one body per envelope. `too_many` names the limits
    a 429 may come from."""
    limit = server.body_limit_bytes
    errors: list[tuple[str, bool, GatewayError]] = [
        ("too_large", True, PayloadTooLarge(f"the request body is larger than the limit of {limit} bytes")),
        ("app_down", True, Unavailable("the gateway application is not running; it is being restarted, "
                                       "retry shortly")),
        ("nginx_failed", True, Unavailable(
            "NGINX could not handle the request (most often: no space left under server.run_dir to buffer "
            "the request body; see logs/nginx-error.log); retry later")),
        ("rate_limited", True, TooManyRequests(too_many)),
        ("400", False, BadRequest("NGINX could not parse the request (malformed request line or headers)")),
        ("414", False, UriTooLong("the request line is longer than 8 KiB; send long inputs in the body")),
        ("431", False, HeadersTooLarge(
            "a request header line is longer than 8 KiB, or all headers together exceed 32 KiB")),
    ]
    return [Page(name, named, error.status in (429, 503), tuple(_body(e, error) for e in envelopes()))
            for name, named, error in errors]


def _body(envelope: Envelope, error: GatewayError) -> Body:
    return Body(envelope.name, envelope.status(error), envelope.content_type,
                envelope.encode(error, REQUEST_ID).decode())
