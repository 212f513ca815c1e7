"""GET /openapi.json: the whole surface, per-model input schemas, valid OpenAPI 3; GET /docs."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from openapi_spec_validator import validate

from gateway import openapi
from gateway.errors import ConfigError
from gateway.service import PredictionService


def document(client: FlaskClient) -> dict[str, Any]:
    reply = client.get("/openapi.json")
    assert reply.status_code == 200 and reply.mimetype == "application/json"
    return reply.get_json()


def test_the_document_is_valid_openapi_3(client: FlaskClient) -> None:
    doc = document(client)
    validate(doc)  # raises OpenAPIValidationError
    assert doc["openapi"].startswith("3.")


def test_it_describes_every_protocol_for_every_model(client: FlaskClient) -> None:
    paths = document(client)["paths"]
    for model in ("iris", "churn"):
        assert "post" in paths[f"/models/{model}/predict"]
        assert "post" in paths[f"/models/{model}/versions/{{version}}/predict"]
        assert "post" in paths[f"/models/{model}/invocations"]
        for route in ("ping", "health", "version"):
            assert "get" in paths[f"/models/{model}/{route}"]
        assert "post" in paths[f"/vetiver/{model}/predict"]
        for route in ("ping", "metadata", "prototype"):
            assert "get" in paths[f"/vetiver/{model}/{route}"]
    assert {"/healthz", "/readyz", "/models", "/openapi.json"} <= set(paths)


def test_input_schemas_come_from_model_json(client: FlaskClient) -> None:
    doc = document(client)
    row = doc["components"]["schemas"]["churn_row"]
    assert row["required"] == ["tenure", "monthly", "plan"]
    assert row["properties"]["plan"]["enum"] == ["basic", "plus", "pro"]
    assert row["properties"]["tenure"]["type"] == "integer"
    body = doc["paths"]["/models/churn/predict"]["post"]["requestBody"]["content"]
    assert body["application/json"]["schema"]["oneOf"][0]["items"] == {"$ref": "#/components/schemas/churn_row"}
    assert "text/csv" in body


def test_every_documented_get_answers_as_documented(client: FlaskClient) -> None:
    for path, item in document(client)["paths"].items():
        if "get" in item and "{" not in path:
            reply = client.get(path)
            assert str(reply.status_code) in item["get"]["responses"], path


def test_another_protocol_adds_its_path_items_and_duplicates_are_refused(app: Flask) -> None:
    def extra_paths(svc: PredictionService) -> dict[str, dict[str, Any]]:
        return {"/x-extra/ping": {"get": {"operationId": "x_ping", "responses": {"200": {"description": "pong"}}}}}

    def clash(svc: PredictionService) -> dict[str, dict[str, Any]]:
        return {"/healthz": {}}

    providers = list(app.extensions.get("gateway.openapi", []))
    try:
        openapi.add_paths(app, extra_paths)
        doc = app.test_client().get("/openapi.json").get_json()
        validate(doc)
        assert doc["paths"]["/x-extra/ping"]["get"]["operationId"] == "x_ping"
        openapi.add_paths(app, clash)
        with app.app_context(), pytest.raises(ConfigError, match="/healthz"):
            openapi.build_document(app)
    finally:
        app.extensions["gateway.openapi"] = providers


def test_the_v2_routes_are_described_for_every_model(client: FlaskClient) -> None:
    doc = client.get("/openapi.json").get_json()
    validate(doc)
    for model in ("iris", "churn"):
        infer = doc["paths"][f"/v2/models/{model}/infer"]["post"]
        assert infer["operationId"] == f"v2_infer_{model}"
        assert "inputs" in infer["requestBody"]["content"]["application/json"]["schema"]["required"]
    assert "/v2/health/ready" in doc["paths"]


def test_docs_page_is_self_contained(client: FlaskClient) -> None:
    reply = client.get("/docs")
    assert reply.status_code == 200 and reply.mimetype == "text/html"
    page = reply.get_data(as_text=True)
    assert "openapi.json" in page
    assert "http://" not in page and "https://" not in page  # no CDN: the machines are offline
