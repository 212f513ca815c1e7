"""Every registered protocol answers every error in its own envelope, wherever the error comes
from (the access check, a view, Werkzeug's body limit, a hook), and a protocol defined here, in
the test, is counted in /metrics and logged by being registered: nothing else to wire."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Blueprint, Flask, Response, request
from flask.testing import FlaskClient

from gateway.api.registered import PROTOCOLS
from gateway.app import create_app
from gateway.auth import new_entry, write_keys
from gateway.codecs.mlflow import ERROR_CODES
from gateway.errors import Busy, ConfigError, InvalidInput, NotFound, PayloadTooLarge, TooManyRequests
from gateway.instrument import REQUEST_LOG
from gateway.protocol import Protocol
from gateway.responses import json_response, service
from gateway.runtime.plan import make_plan
from gateway.settings import settings_from_dict
from tests.api.conftest import BODY_LIMIT
from tests.api.test_observability import request_lines, requests_total

IRIS = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}
SHORT = {k: v for k, v in IRIS.items() if k != "petal_width"}  # a row that does not fit: 422
_INJECTED = {404: NotFound("injected 404"), 413: PayloadTooLarge("injected 413"), 422: InvalidInput("injected 422"),
             429: TooManyRequests("injected 429"), 503: Busy("injected 503: a model at its max_in_flight")}


def _v2_body(row: dict[str, float]) -> dict[str, Any]:
    return {"inputs": [{"name": k, "shape": [1], "datatype": "FP64", "data": [v]} for k, v in row.items()]}


# protocol → (method, path of a model, JSON body for a row); each registered protocol needs one.
ROUTES: dict[str, tuple[str, Callable[[str], str], Callable[[dict[str, float]], Any]]] = {
    "native": ("POST", lambda m: f"/models/{m}/predict", lambda row: [row]),
    "jobs": ("POST", lambda m: f"/models/{m}/jobs", lambda row: [row]),
    "mlflow": ("POST", lambda m: f"/models/{m}/invocations", lambda row: {"dataframe_records": [row]}),
    "vetiver": ("POST", lambda m: f"/vetiver/{m}/predict", lambda row: [row]),
    "v2": ("POST", lambda m: f"/v2/models/{m}/infer", _v2_body),
    "plumber": ("POST", lambda m: f"/plumber/{m}/predict", lambda row: [row]),
    "server": ("GET", lambda _m: "/admin/batching", lambda row: None),
}
# What each protocol's routes can answer for real here; the rest are raised by a hook (a plumber
# model's own 422 needs R, NGINX answers 429, a 503 needs a model at its max_in_flight).
REAL: dict[str, set[int]] = {
    "native": {401, 403, 404, 413, 422}, "mlflow": {401, 403, 404, 413, 422}, "vetiver": {401, 403, 404, 413, 422},
    "v2": {401, 403, 404, 413, 422}, "plumber": {401, 403, 404, 413}, "server": {401, 403},
    "jobs": {401, 403, 404},  # a job body is validated by the runner, and its limit is the stream limit
}
STATUSES = (401, 403, 404, 413, 422, 429, 503)


@pytest.fixture(scope="module")
def keyed(model_store: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Flask, dict[str, str]]:
    tmp = tmp_path_factory.mktemp("envelopes")
    made = {name: new_entry(name, scope, models)
            for name, scope, models in [("ops", "admin", ()), ("churn_only", "predict", ("churn",))]}
    write_keys(tmp / "keys.json", [entry for _, entry in made.values()])
    raw = {"server": {"body_limit_bytes": BODY_LIMIT, "run_dir": str(tmp / "run"), "api_keys_file": "keys.json"},
           "store": {"path": str(model_store)},
           "models": {"iris": {"backend": "python"}, "churn": {"backend": "python"}}}
    settings = settings_from_dict(raw, base_dir=tmp)
    app = create_app(settings, make_plan(settings))

    @app.before_request  # after the access check: raises the error a test asks for
    def _raise_asked() -> None:
        asked = request.headers.get("X-Test-Raise")
        if asked:
            raise _INJECTED[int(asked)]

    return app, {name: key for name, (key, _) in made.items()}


def _call(client: FlaskClient, keys: dict[str, str], name: str, status: int) -> Any:
    method, path, body = ROUTES[name]
    headers = {"Authorization": f"Bearer {keys['churn_only' if status == 403 else 'ops']}"}
    model, row = "iris", IRIS
    if status == 401:
        headers = {}
    elif status == 404:
        model = "nope"
    elif status == 422:
        row = SHORT
    if status not in REAL[name]:
        headers["X-Test-Raise"] = str(status)
    if status == 413:
        return client.open(path(model), method=method, data=b"[" + b" " * BODY_LIMIT + b"]",
                           headers={**headers, "Content-Type": "application/json"})
    return client.open(path(model), method=method, json=body(row), headers=headers)


def check_envelope(reply: Any, envelope: str, status: int) -> str:
    """The reply is `status` in `envelope`; returns the error's message."""
    expected = 400 if envelope == "v2" and status == 422 else status
    assert reply.status_code == expected, reply.get_data(as_text=True)
    body = reply.get_json(force=True)
    if envelope == "problem":
        assert reply.content_type == "application/problem+json"
        assert body["status"] == status and body["request_id"] == reply.headers["X-Request-ID"]
        return str(body["detail"])
    assert reply.content_type == "application/json"
    if envelope == "mlflow":
        assert set(body) == {"error_code", "message", "request_id"}
        assert body["error_code"] == ERROR_CODES.get(status, "INTERNAL_ERROR")
        assert body["request_id"] == reply.headers["X-Request-ID"]
        return str(body["message"])
    assert envelope == "v2" and set(body) == {"error"}
    return str(body["error"])


def test_the_table_covers_every_registered_protocol() -> None:
    assert set(ROUTES) == {protocol.name for protocol in PROTOCOLS}


@pytest.mark.parametrize("status", STATUSES)
@pytest.mark.parametrize("protocol", PROTOCOLS, ids=lambda p: p.name)
def test_every_error_is_in_the_protocols_envelope(keyed: tuple[Flask, dict[str, str]], protocol: Protocol,
                                                  status: int) -> None:
    app, keys = keyed
    reply = _call(app.test_client(), keys, protocol.name, status)
    message = check_envelope(reply, protocol.envelope.name, status)
    assert message
    if status == 401:
        assert "Bearer" in reply.headers["WWW-Authenticate"]
    if status == 403:
        assert "churn_only" in message
    if status == 503:  # the error's own headers, in every envelope
        assert reply.headers["Retry-After"] == "1"
    if status == 413 and status in REAL[protocol.name]:
        assert str(BODY_LIMIT) in message


def test_mlflow_unprefixed_routes_and_unmatched_methods_take_their_protocols_envelope(
        keyed: tuple[Flask, dict[str, str]]) -> None:
    app, keys = keyed
    client = app.test_client()
    check_envelope(client.post("/invocations", json={"dataframe_records": [IRIS]}), "mlflow", 401)
    good = {"Authorization": f"Bearer {keys['ops']}"}
    # Two models and no server.default_model: the unprefixed route names the fix.
    assert "default_model" in check_envelope(client.get("/ping", headers=good), "mlflow", 404)
    # No route matched (405): the path still says which protocol was meant.
    check_envelope(client.get("/models/iris/invocations", headers=good), "mlflow", 405)
    check_envelope(client.put("/v2/models/iris/infer", headers=good), "v2", 404)
    check_envelope(client.get("/nowhere", headers=good), "problem", 404)


# A protocol that exists only in this test: its model is in the URL variable `model`.
tiny = Blueprint("tiny", __name__)


@tiny.post("/tiny/<model>/score")
def score(model: str) -> Response:
    service().registry.get(model)  # 404 for an unknown model
    return json_response(b'{"ok":true}')


TINY = Protocol("tiny", (tiny,), metered=("tiny.score",), model_arg="model", version_arg=None)


def test_a_registered_protocol_is_counted_logged_and_checked(model_store: Path, tmp_path: Path,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    raw = {"server": {"run_dir": str(tmp_path / "run")}, "store": {"path": str(model_store)},
           "models": {"iris": {"backend": "python"}}}
    settings = settings_from_dict(raw, base_dir=tmp_path)
    client = create_app(settings, make_plan(settings), (*PROTOCOLS, TINY)).test_client()
    caplog.set_level(logging.INFO, logger=REQUEST_LOG)
    before = requests_total(client, model="iris", protocol="tiny", status="200")
    assert client.post("/tiny/iris/score", headers={"X-Request-ID": "tiny-1"}).status_code == 200
    assert requests_total(client, model="iris", protocol="tiny", status="200") == before + 1
    missing = client.post("/tiny/nope/score", headers={"X-Request-ID": "tiny-2"})
    assert "'nope'" in check_envelope(missing, "problem", 404)
    assert requests_total(client, model="_unknown", protocol="tiny", status="404") >= 1
    # The URL-name check reads the protocol's own model variable.
    assert "not valid" in check_envelope(client.post("/tiny/Bad..Name/score"), "problem", 400)
    lines = {line["request_id"]: line for line in request_lines(caplog)}
    assert {k: lines["tiny-1"][k] for k in ("protocol", "model", "version", "backend", "status")} == {
        "protocol": "tiny", "model": "iris", "version": "2", "backend": "python", "status": 200}
    assert lines["tiny-2"]["protocol"] == "tiny" and "'nope'" in lines["tiny-2"]["error"]


def test_two_protocols_may_not_share_a_name(model_store: Path, tmp_path: Path) -> None:
    raw = {"server": {"run_dir": str(tmp_path / "run")}, "store": {"path": str(model_store)},
           "models": {"iris": {"backend": "python"}}}
    settings = settings_from_dict(raw, base_dir=tmp_path)
    twin = Protocol("tiny", (Blueprint("tiny2", __name__),))
    with pytest.raises(ConfigError, match="'tiny' is registered twice"):
        create_app(settings, make_plan(settings), (*PROTOCOLS, TINY, twin))
