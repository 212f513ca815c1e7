"""A protocol the gateway speaks (native, MLflow, vetiver, Open Inference v2, the Plumber
pass-through, the server's own routes), as one object registered once with the app.

Everything that differs per protocol is read from it: which blueprints serve it, which URL
variable names the model (API-key model limits, the URL-name checks, metrics labels), how it
writes an error (the app's one error pipeline, NGINX's own error pages), its OpenAPI paths,
and which of its endpoints reach a model and are counted and logged under its name.
Adding a protocol: one module defining its blueprint and `PROTOCOL`, one line in
gateway/api/registered.py.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import cast

from flask import Blueprint, Flask, current_app, request

from gateway import names
from gateway.codecs.envelope import PROBLEM, Envelope
from gateway.errors import BadRequest, ConfigError
from gateway.openapi import PathProvider, add_paths

_EXTENSION = "gateway.protocols"


@dataclass(frozen=True)
class Protocol:
    """One surface of the API. `uri` is a regex over the request path (PCRE as NGINX reads it,
    and Python's re alike): it picks the envelope where no route matched (a 404 or 405, NGINX's
    own error pages); None leaves those to problem+json."""

    name: str  # the `protocol` label of gateway_requests_total and of the request log
    blueprints: tuple[Blueprint, ...]
    envelope: Envelope = PROBLEM
    model_arg: str | None = "name"  # the URL variable that names the model
    version_arg: str | None = "version"  # the URL variable that names a version
    metered: tuple[str, ...] = ()  # endpoints that reach a model: counted and logged
    paths: PathProvider | None = None  # its OpenAPI path items
    uri: str | None = None
    _pattern: re.Pattern[str] | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_pattern", re.compile(self.uri) if self.uri else None)

    def owns_path(self, path: str) -> bool:
        return self._pattern is not None and self._pattern.search(path) is not None


# A request that no protocol claims (an unknown path outside every protocol's `uri`).
UNCLAIMED = Protocol("unclaimed", (), model_arg=None, version_arg=None)


class Protocols:
    """The protocols of one app, looked up per request: by the matched route's blueprint, else
    by path. Two protocols may not share a name, a blueprint or a metered endpoint."""

    def __init__(self, protocols: Iterable[Protocol]) -> None:
        self.all = tuple(protocols)
        self._by_blueprint: dict[str, Protocol] = {}
        self._metered: dict[str, Protocol] = {}
        seen: set[str] = set()
        for protocol in self.all:
            if protocol.name in seen:
                raise ConfigError(f"protocol {protocol.name!r} is registered twice")
            seen.add(protocol.name)
            for blueprint in protocol.blueprints:
                _claim(self._by_blueprint, blueprint.name, protocol, "blueprint")
            for endpoint in protocol.metered:
                _claim(self._metered, endpoint, protocol, "metered endpoint")

    def for_request(self, blueprint: str | None, path: str) -> Protocol:
        if blueprint is not None and blueprint in self._by_blueprint:
            return self._by_blueprint[blueprint]
        return next((p for p in self.all if p.owns_path(path)), UNCLAIMED)

    def metered(self, endpoint: str | None) -> Protocol | None:
        """The protocol that counts this endpoint, or None when it does not reach a model."""
        return self._metered.get(endpoint or "")


def _claim(table: dict[str, Protocol], key: str, protocol: Protocol, what: str) -> None:
    if key in table:
        raise ConfigError(f"{what} {key!r} is claimed by protocols {table[key].name!r} and {protocol.name!r}")
    table[key] = protocol


def install(app: Flask, protocols: Iterable[Protocol]) -> Protocols:
    """Register each protocol's blueprints and OpenAPI paths, and the URL-name check."""
    registered = Protocols(protocols)
    app.extensions[_EXTENSION] = registered
    for protocol in registered.all:
        for blueprint in protocol.blueprints:
            app.register_blueprint(blueprint)
        if protocol.paths is not None:
            add_paths(app, protocol.paths)
    return registered


def registered(app: Flask | None = None) -> Protocols:
    return cast(Protocols, (app or current_app).extensions[_EXTENSION])


def current() -> Protocol:
    """The protocol the current request was made in."""
    return registered().for_request(request.blueprint, request.path)


def model_in_url() -> str | None:
    """The model the URL names, in the variable its protocol names it with; None when it names none."""
    arg = current().model_arg
    args = request.view_args or {}
    return str(args[arg]) if arg is not None and arg in args else None


def check_url_values() -> None:
    """before_request hook: a 400 naming a bad model or version segment, before any lookup uses it."""
    protocol = current()
    args = request.view_args or {}
    if protocol.model_arg in args and (problem := names.name_problem(args[protocol.model_arg])):
        raise BadRequest(problem)
    if protocol.version_arg in args and (problem := names.version_problem(args[protocol.version_arg])):
        raise BadRequest(problem)
