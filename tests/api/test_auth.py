"""API keys: 401 without or with a bad key, 403 for the wrong scope or model, reload on change."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from gateway.app import create_app
from gateway.auth import KeyEntry, new_entry, read_keys, write_keys
from gateway.cli import main
from gateway.errors import ConfigError
from gateway.runtime.plan import make_plan
from gateway.settings import settings_from_dict

ROW = [{"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}]


def make_auth_app(store: Path, tmp_path: Path, keys_file: Path, **server: object) -> Flask:
    raw = {
        "server": {"run_dir": str(tmp_path / "run"), "api_keys_file": str(keys_file), **server},
        "store": {"path": str(store)},
        "models": {"iris": {"backend": "python"}, "churn": {"backend": "python"}},
    }
    settings = settings_from_dict(raw, base_dir=tmp_path)
    return create_app(settings, make_plan(settings))


@pytest.fixture(scope="module")
def keyed(model_store: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Flask, Path, dict[str, str]]:
    tmp = tmp_path_factory.mktemp("auth")
    keys_file = tmp / "keys.json"
    made = {name: new_entry(name, scope, models) for name, scope, models in
            [("reader", "predict", ()), ("iris_only", "predict", ("iris",)), ("ops", "admin", ())]}
    write_keys(keys_file, [entry for _, entry in made.values()])
    return make_auth_app(model_store, tmp, keys_file), keys_file, {n: key for n, (key, _) in made.items()}


@pytest.fixture
def client(keyed: tuple[Flask, Path, dict[str, str]]) -> FlaskClient:
    return keyed[0].test_client()


@pytest.fixture
def keys(keyed: tuple[Flask, Path, dict[str, str]]) -> dict[str, str]:
    return keyed[2]


def predict(client: FlaskClient, model: str, authorization: str | None) -> tuple[int, dict]:
    headers = {"Authorization": authorization} if authorization is not None else {}
    response = client.post(f"/models/{model}/predict", json=ROW if model == "iris" else
                           [{"tenure": 3, "monthly": 50.0, "plan": "basic"}], headers=headers)
    return response.status_code, response.get_json(force=True)


def test_no_key_is_401_problem_with_www_authenticate(client: FlaskClient) -> None:
    response = client.post("/models/iris/predict", json=ROW)
    assert response.status_code == 401
    assert response.content_type == "application/problem+json"
    assert response.headers["WWW-Authenticate"].startswith("Bearer ")
    assert "gateway keys add" in response.get_json()["detail"]


@pytest.mark.parametrize("header", ["Bearer gw.00000000.notarealkeynotarealkey00", "Basic dXNlcjpwYXNz", "Bearer",
                                    "Key ", "gw.0.x"])
def test_unknown_or_malformed_key_is_401(client: FlaskClient, header: str) -> None:
    status, body = predict(client, "iris", header)
    assert status == 401
    assert body["status"] == 401


def test_a_known_id_with_a_wrong_secret_is_401(client: FlaskClient, keys: dict[str, str]) -> None:
    prefix, key_id, secret = keys["reader"].split(".")
    forged = f"{prefix}.{key_id}.{secret[::-1]}"
    assert predict(client, "iris", f"Bearer {forged}")[0] == 401


@pytest.mark.parametrize("scheme", ["Bearer", "Key", "bearer"])
def test_both_schemes_are_accepted(client: FlaskClient, keys: dict[str, str], scheme: str) -> None:
    status, body = predict(client, "iris", f"{scheme} {keys['reader']}")
    assert status == 200, body
    assert len(body["predictions"]) == 1


def test_a_key_limited_to_models_gets_403_elsewhere(client: FlaskClient, keys: dict[str, str]) -> None:
    assert predict(client, "iris", f"Bearer {keys['iris_only']}")[0] == 200
    status, body = predict(client, "churn", f"Bearer {keys['iris_only']}")
    assert status == 403
    assert "iris_only" in body["detail"] and "churn" in body["detail"]
    metadata = client.get("/models/churn", headers={"Authorization": f"Bearer {keys['iris_only']}"})
    assert metadata.status_code == 403


def test_admin_routes_need_the_admin_scope(client: FlaskClient, keys: dict[str, str]) -> None:
    denied = client.post("/admin/reload", headers={"Authorization": f"Bearer {keys['reader']}"})
    assert denied.status_code == 403
    assert "'admin'" in denied.get_json()["detail"]
    # An admin key passes the check (there is no admin route yet, so the route answers 404).
    assert client.post("/admin/reload", headers={"Authorization": f"Key {keys['ops']}"}).status_code == 404
    assert predict(client, "churn", f"Bearer {keys['ops']}")[0] == 200  # admin implies predict


def test_health_is_open_and_unknown_routes_are_not(client: FlaskClient) -> None:
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 200
    assert client.get("/nothing-here").status_code == 401  # no route probing without a key


def test_open_paths_come_from_config(model_store: Path, tmp_path: Path) -> None:
    keys_file = tmp_path / "keys.json"
    write_keys(keys_file, [])
    app = make_auth_app(model_store, tmp_path, keys_file, open_paths=["/healthz"])
    assert app.test_client().get("/healthz").status_code == 200
    assert app.test_client().get("/readyz").status_code == 401


def test_keys_file_changes_apply_without_restart(model_store: Path, tmp_path: Path) -> None:
    keys_file = tmp_path / "keys.json"
    first, entry = new_entry("first", "predict")
    write_keys(keys_file, [entry])
    client = make_auth_app(model_store, tmp_path, keys_file).test_client()
    assert predict(client, "iris", f"Bearer {first}")[0] == 200
    second, other = new_entry("second", "predict")
    write_keys(keys_file, [entry, other])
    assert predict(client, "iris", f"Bearer {second}")[0] == 200
    write_keys(keys_file, [other])
    assert predict(client, "iris", f"Bearer {first}")[0] == 401
    keys_file.write_text("{not json")  # a broken file fails closed, it never lets a removed key in
    status, body = predict(client, "iris", f"Bearer {second}")
    assert status == 503
    assert "keys file" in body["detail"]


def test_a_missing_keys_file_fails_at_start(model_store: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="gateway keys add"):
        make_auth_app(model_store, tmp_path, tmp_path / "absent.json")


def test_the_file_holds_hashes_never_keys(tmp_path: Path) -> None:
    key, entry = new_entry("svc", "predict", ("iris",))
    path = tmp_path / "keys.json"
    write_keys(path, [entry])
    text = path.read_text()
    assert key not in text and key.split(".")[2] not in text
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    (stored,) = read_keys(path)
    assert isinstance(stored, KeyEntry) and stored.matches(key) and not stored.matches(key + "x")


def test_keys_cli_add_list_remove(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text('[server]\napi_keys_file = "secrets/keys.json"\n')
    assert main(["--config", str(config), "keys", "add", "billing", "--scope", "predict", "--models", "iris"]) == 0
    key = capsys.readouterr().out.strip().splitlines()[-1]
    (entry,) = read_keys(tmp_path / "secrets" / "keys.json")
    assert entry.matches(key) and entry.scope == "predict" and entry.models == ("iris",)
    assert main(["keys", "list", "--config", str(config)]) == 0
    listed = capsys.readouterr().out
    assert "billing" in listed and key not in listed
    assert main(["--config", str(config), "keys", "add", "billing", "--scope", "admin"]) == 2
    assert "exists" in capsys.readouterr().err
    assert main(["--config", str(config), "keys", "add", "x", "--scope", "predict", "--models", "../etc"]) == 2
    capsys.readouterr()
    assert main(["--config", str(config), "keys", "remove", "billing"]) == 0
    assert read_keys(tmp_path / "secrets" / "keys.json") == []
    assert json.loads((tmp_path / "secrets" / "keys.json").read_text())["keys"] == []
    assert main(["--config", str(config), "keys", "remove", "billing"]) == 2


def test_keys_cli_without_a_configured_file_says_how(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text("[server]\n")
    assert main(["--config", str(config), "keys", "list"]) == 2
    assert "api_keys_file" in capsys.readouterr().err
    assert sorted(os.listdir(tmp_path)) == ["gateway.toml"]  # nothing created by a failed command


def test_mlflow_routes_answer_401_and_403_in_mlflows_shape(keyed: tuple[Flask, Path, dict[str, str]]) -> None:
    app, _, keys = keyed
    client = app.test_client()
    body = {"dataframe_records": ROW}
    missing = client.post("/models/iris/invocations", json=body)
    assert missing.status_code == 401 and missing.content_type == "application/json"
    assert missing.get_json()["error_code"] == "UNAUTHENTICATED" and "needs an API key" in missing.get_json()["message"]
    assert "WWW-Authenticate" in missing.headers
    limited = {"Authorization": f"Bearer {keys['iris_only']}"}
    wrong = client.post("/models/churn/invocations", json=body, headers=limited)
    assert wrong.status_code == 403 and wrong.get_json()["error_code"] == "PERMISSION_DENIED"
    native = client.post("/models/iris/predict", json=ROW)  # the native surface keeps problem+json
    assert native.status_code == 401 and native.content_type == "application/problem+json"
