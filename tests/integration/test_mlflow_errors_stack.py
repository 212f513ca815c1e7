"""MLflow's routes keep MLflow's error shape for refusals made before the model is reached: the
app's API-key check (401, 403) and NGINX's rate limit (429). One stack serving one model, so
MLflow's unprefixed /invocations answers too, under the same key limits."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pandas as pd
import pytest

from gateway.auth import new_entry, write_keys
from gateway.demo import build_iris
from tests.clients import mlflow_client
from tests.integration.conftest import Stack, start_stack

FLOWERS = pd.DataFrame({"sepal_length": [5.1], "sepal_width": [3.5], "petal_length": [1.4], "petal_width": [0.2]})


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    directory = tmp_path_factory.mktemp("mlflowerrors")
    build_iris(directory / "store")
    keys = {name: new_entry(name, "predict", models) for name, models in [("any", ()), ("elsewhere", ("churn",)),
                                                                         ("flood", ())]}
    write_keys(directory / "keys.json", [entry for _, entry in keys.values()])
    server = {"api_keys_file": str(directory / "keys.json"), "rate_limit_rps": 2, "rate_limit_burst": 60}
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


def test_nginx_429_is_mlflows_shape_on_mlflow_routes_only(gw: Stack) -> None:
    headers = bearer(gw, "flood")
    replies = [gw.get("/models/iris/ping", headers=headers) for _ in range(150)]
    limited = [r for r in replies if r.status_code == 429]
    assert limited, [r.status_code for r in replies]
    assert limited[0].headers["Content-Type"] == "application/json"
    assert limited[0].json()["error_code"] == "REQUEST_LIMIT_EXCEEDED" and "retry" in limited[0].json()["message"]
    native = [gw.get("/models/iris", headers=headers) for _ in range(5)]
    refused = next(r for r in native if r.status_code == 429)
    assert refused.headers["Content-Type"] == "application/problem+json" and refused.json()["status"] == 429
