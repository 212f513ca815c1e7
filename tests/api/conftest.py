"""The Flask app over a real model store, driven by Flask's test client (no processes)."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from gateway.app import create_app
from gateway.registry import check_models
from gateway.runtime.plan import make_plan
from gateway.settings import Settings, settings_from_dict

BODY_LIMIT = 64 * 1024


def make_app(store: Path, tmp_path: Path, models: dict | None = None, server: dict | None = None) -> Flask:
    settings = make_settings(store, tmp_path, models, server)
    return create_app(settings, make_plan(settings))


def check_config(store: Path, tmp_path: Path, models: dict | None = None) -> dict[str, str]:
    """What `gateway up` and `reload` check before anything starts (gateway.registry.check_models)."""
    settings = make_settings(store, tmp_path, models)
    return check_models(settings, make_plan(settings)).problems


def make_settings(store: Path, tmp_path: Path, models: dict | None = None, server: dict | None = None) -> Settings:
    raw = {
        "server": {"body_limit_bytes": BODY_LIMIT, "run_dir": str(tmp_path / "run"), **(server or {})},
        "store": {"path": str(store)},
        "models": models
        or {
            "iris": {"backend": "python"},
            "churn": {"backend": "python"},
        },
    }
    return settings_from_dict(raw, base_dir=tmp_path)


@pytest.fixture(scope="module")
def app(model_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Flask:
    return make_app(model_store, tmp_path_factory.mktemp("app"))


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()
