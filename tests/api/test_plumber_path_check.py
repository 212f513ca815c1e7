"""The /plumber/ path check runs before the access check: a climb is a 400 for any key."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask.testing import FlaskClient

from gateway.auth import new_entry, write_keys
from tests.api.test_auth import make_auth_app


@pytest.fixture(scope="module")
def made(model_store: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[FlaskClient, dict[str, str]]:
    """An app with API keys on; one key may use model iris only."""
    tmp = tmp_path_factory.mktemp("plumber-path")
    key, entry = new_entry("iris_only", "predict", ("iris",))
    write_keys(tmp / "keys.json", [entry])
    return make_auth_app(model_store, tmp, tmp / "keys.json").test_client(), {"iris_only": key}


@pytest.fixture
def client(made: tuple[FlaskClient, dict[str, str]]) -> FlaskClient:
    return made[0]


@pytest.fixture
def keys(made: tuple[FlaskClient, dict[str, str]]) -> dict[str, str]:
    return made[1]


@pytest.mark.parametrize("path", ["/plumber/iris/../churn/x", "/plumber/iris/..%2fchurn%2fx",
                                  "/plumber/iris/%252e%252e%252fchurn", "/plumber/iris/..%5cchurn",
                                  "/plumber/iris/..;/churn", "/plumber/iris//churn"])
def test_a_climbing_path_is_400_before_the_key_is_checked(client: FlaskClient, keys: dict[str, str],
                                                          path: str) -> None:
    for authorization in (f"Bearer {keys['iris_only']}", None):
        headers = {"Authorization": authorization} if authorization else {}
        reply = client.get(path, headers=headers)
        assert reply.status_code == 400, (path, reply.status_code, reply.get_data(as_text=True))
        assert reply.content_type == "application/problem+json"
        assert "/plumber/iris/" in reply.get_json()["detail"]


def test_a_plain_path_still_goes_through_the_access_check(client: FlaskClient, keys: dict[str, str]) -> None:
    assert client.get("/plumber/churn/x", headers={"Authorization": f"Bearer {keys['iris_only']}"}).status_code == 403
    assert client.get("/plumber/churn/x").status_code == 401
    # Allowed, but iris is a Python model, not a script: the pass-through says so.
    reply = client.get("/plumber/iris/x", headers={"Authorization": f"Bearer {keys['iris_only']}"})
    assert reply.status_code == 404 and "not a Plumber script" in reply.get_json()["detail"]
