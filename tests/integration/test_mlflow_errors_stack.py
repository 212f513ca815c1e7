"""MLflow's routes keep MLflow's error shape for refusals made before the model is reached: the
app's API-key check (401, 403), NGINX's rate limit (429) and NGINX's own 413 and 431 pages, which
answer v2's routes in v2's `{"error"}` shape too. One stack serving one model, so MLflow's
unprefixed /invocations answers too, under the same key limits."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pandas as pd
import pytest

from gateway.auth import new_entry, write_keys
from gateway.demo import build_iris
from tests.clients import mlflow_client
from tests.integration.conftest import Stack, start_stack

BODY_LIMIT = 64 * 1024
FLOWERS = pd.DataFrame({"sepal_length": [5.1], "sepal_width": [3.5], "petal_length": [1.4], "petal_width": [0.2]})


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    directory = tmp_path_factory.mktemp("mlflowerrors")
    build_iris(directory / "store")
    keys = {name: new_entry(name, "predict", models) for name, models in [("any", ()), ("elsewhere", ("churn",)),
                                                                         ("flood", ()), ("pages", ())]}
    write_keys(directory / "keys.json", [entry for _, entry in keys.values()])
    server = {"api_keys_file": str(directory / "keys.json"), "rate_limit_rps": 2, "rate_limit_burst": 60,
              "body_limit_bytes": BODY_LIMIT}
    with start_stack(directory, {"iris": {"backend": "python"}}, server) as running:
        running.keys = {name: key for name, (key, _) in keys.items()}  # type: ignore[attr-defined]
        yield running


def bearer(gw: Stack, name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {gw.keys[name]}"}  # type: ignore[attr-defined]


def test_mlflow_client_without_a_key_gets_mlflows_401(gw: Stack) -> None:
    # Keyless requests share the address's bucket, which start-up's readiness polls draw on.
    deadline = time.monotonic() + 30
    while gw.get("/models/iris/version").status_code == 429 and time.monotonic() < deadline:
        time.sleep(1)
    with pytest.raises(Exception, match=r"error code 401.*UNAUTHENTICATED.*needs an API key"):
        mlflow_client(gw.url, "iris").invoke(FLOWERS)


@pytest.mark.parametrize("path", ["/models/iris/invocations", "/invocations"])
def test_a_key_for_another_model_gets_mlflows_403(gw: Stack, path: str) -> None:
    reply = gw.post(path, json={"dataframe_records": FLOWERS.to_dict(orient="records")},
                    headers=bearer(gw, "elsewhere"))
    assert reply.status_code == 403 and reply.headers["Content-Type"] == "application/json"
    body = reply.json()
    assert body["error_code"] == "PERMISSION_DENIED" and "may not use model 'iris'" in body["message"]
    allowed = gw.post(path, json={"dataframe_records": FLOWERS.to_dict(orient="records")}, headers=bearer(gw, "any"))
    assert allowed.status_code == 200 and allowed.json() == {"predictions": ["setosa"]}


def test_nginx_429_is_in_each_protocols_shape(gw: Stack) -> None:
    headers = bearer(gw, "flood")
    replies = [gw.get("/models/iris/ping", headers=headers) for _ in range(150)]
    limited = [r for r in replies if r.status_code == 429]
    assert limited, [r.status_code for r in replies]
    assert limited[0].headers["Content-Type"] == "application/json"
    assert limited[0].json()["error_code"] == "REQUEST_LIMIT_EXCEEDED" and "retry" in limited[0].json()["message"]
    native = [gw.get("/models/iris", headers=headers) for _ in range(5)]
    refused = next(r for r in native if r.status_code == 429)
    assert refused.headers["Content-Type"] == "application/problem+json" and refused.json()["status"] == 429
    v2 = next(r for r in (gw.get("/v2/models/iris", headers=headers) for _ in range(5)) if r.status_code == 429)
    assert v2.headers["Content-Type"] == "application/json" and set(v2.json()) == {"error"}
    assert v2.headers["Retry-After"] == "1"


@pytest.mark.parametrize(("path", "envelope"), [
    ("/models/iris/invocations", "mlflow"), ("/invocations", "mlflow"), ("/v2/models/iris/infer", "v2"),
    ("/models/iris/predict", "problem"),
])
def test_nginx_own_413_and_431_pages_answer_in_the_protocols_envelope(gw: Stack, path: str, envelope: str) -> None:
    """Refused by NGINX itself (the app never sees them): the page follows the path's protocol."""
    too_large = gw.post(path, data=b"[" + b" " * BODY_LIMIT + b"]",
                        headers={**bearer(gw, "pages"), "Content-Type": "application/json"})
    headers_too_large = gw.post(path, json=[], headers={**bearer(gw, "pages"), "X-Pad": "v" * 9000})
    for reply, status in ((too_large, 413), (headers_too_large, 431)):
        assert reply.status_code == status, reply.text[:300]
        assert "X-Request-ID" in reply.headers
        body = reply.json()
        if envelope == "problem":
            assert reply.headers["Content-Type"] == "application/problem+json" and body["status"] == status
        elif envelope == "mlflow":
            assert reply.headers["Content-Type"] == "application/json"
            assert body["error_code"] == ("RESOURCE_EXHAUSTED" if status == 413 else "INTERNAL_ERROR")
            assert body["request_id"] == reply.headers["X-Request-ID"]
        else:
            assert reply.headers["Content-Type"] == "application/json" and set(body) == {"error"}
    message = str(too_large.json().get("message") or too_large.json().get("error") or too_large.json()["detail"])
    assert f"limit of {BODY_LIMIT} bytes" in message
