"""The protocols this gateway speaks, in one list: create_app registers them (blueprints, error
envelopes, OpenAPI paths, metrics labels), and NGINX's own error pages are rendered from them.
A new protocol is one module under gateway/api/ and one line here."""

from __future__ import annotations

from gateway.api import admin, docs, health, jobs, mlflow, native, observe, plumber_proxy, v2, vetiver
from gateway.openapi import server_paths
from gateway.protocol import Protocol

# The server's own routes: probes, docs, metrics, the status page, admin views. No model in the URL.
SERVER = Protocol("server", (admin.blueprint, health.blueprint, docs.blueprint, observe.blueprint),
                  model_arg=None, version_arg=None, paths=server_paths)

PROTOCOLS: tuple[Protocol, ...] = (
    SERVER,
    native.PROTOCOL,
    jobs.PROTOCOL,
    mlflow.PROTOCOL,
    vetiver.PROTOCOL,
    v2.PROTOCOL,
    plumber_proxy.PROTOCOL,
)
