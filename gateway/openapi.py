"""The OpenAPI 3.0 document of the whole surface, with each model's input schema from model.json.

Each protocol contributes path items through a provider, `(PredictionService) -> {path: item}`,
its `Protocol.paths`, which create_app registers with `add_paths(app, provider)`; providers run
on every `GET /openapi.json`,
so the document follows the served models. A provider that repeats a path another one already
gave is refused when the document is built (no silent overwrite).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask

from gateway.codecs.vetiver import column_schema
from gateway.errors import ConfigError, GatewayError
from gateway.registry import ServedModel
from gateway.service import PredictionService
from gateway.settings import default_model

PathProvider = Callable[[PredictionService], dict[str, dict[str, Any]]]
_EXTENSION = "gateway.openapi"
_REF = "#/components/schemas/"


def add_paths(app: Flask, provider: PathProvider) -> None:
    """Register a protocol's path items (e.g. Open Inference v2's) for /openapi.json."""
    app.extensions.setdefault(_EXTENSION, []).append(provider)


def build_document(app: Flask) -> dict[str, Any]:
    svc: PredictionService = app.extensions["gateway"]
    paths: dict[str, dict[str, Any]] = {}
    for provider in app.extensions.get(_EXTENSION, []):
        for path, item in provider(svc).items():
            if path in paths:
                raise ConfigError(f"OpenAPI path {path} is described twice (by {provider.__name__})")
            paths[path] = item
    schemas = {**_COMMON_SCHEMAS, **{_row_name(m.name): _row_schema(m) for m in svc.registry},
               **{_params_name(m.name): _params_schema(m) for m in svc.registry}}
    return {
        "openapi": "3.0.3",
        "info": {"title": "Model gateway", "version": "1",
                 "description": "Every model, Python or R, behind one API: native, MLflow and vetiver protocols."},
        "paths": paths,
        "components": {"schemas": schemas},
    }


def _row_name(model: str) -> str:
    return f"{model}_row"


def _row_schema(served: ServedModel) -> dict[str, Any]:
    try:
        inputs = served.meta.inputs
    except GatewayError:  # not loaded: the document still serves, and says why this model does not
        return {"type": "object", "additionalProperties": True,
                "description": f"model '{served.name}' is not ready: {served.problem()}"}
    if not inputs:  # a Plumber script without a prototype: the script decides
        return {"type": "object", "additionalProperties": True}
    return {"type": "object", "properties": {spec.name: column_schema(spec) for spec in inputs},
            "required": [spec.name for spec in inputs]}


def _json(schema: dict[str, Any], media: str = "application/json") -> dict[str, Any]:
    return {media: {"schema": schema}}


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": _REF + name}


def _ok(description: str, schema: dict[str, Any], media: str = "application/json") -> dict[str, Any]:
    return {"200": {"description": description, "content": _json(schema, media)}}


_PROBLEM = {"default": {"description": "an error (application/problem+json)",
                        "content": _json(_ref("Problem"), "application/problem+json")}}
_MLFLOW_ERROR = {"default": {"description": "an error in MLflow's shape",
                             "content": _json(_ref("MlflowError"))}}

_COMMON_SCHEMAS: dict[str, Any] = {
    "Problem": {"type": "object", "required": ["type", "title", "status", "detail"], "properties": {
        "type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"},
        "detail": {"type": "string"}, "model": {"type": "string"}, "request_id": {"type": "string"}}},
    "MlflowError": {"type": "object", "required": ["error_code", "message"], "properties": {
        "error_code": {"type": "string"}, "message": {"type": "string"}, "request_id": {"type": "string"}}},
    "Prediction": {"nullable": True, "description": "a scalar, or an object keyed by class (prob, log_prob, "
                                                    "decision) or by target (multi-output models)"},
    "PredictResponse": {"type": "object", "required": ["model", "version", "predictions", "request_id"],
                        "properties": {"model": {"type": "string"}, "version": {"type": "string"},
                                       "request_id": {"type": "string"},
                                       "predictions": {"type": "array", "items": _ref("Prediction")}}},
}


def _params_name(model: str) -> str:
    return f"{model}_params"


def _params_schema(served: ServedModel) -> dict[str, Any]:
    """The `params` this model takes: `type`, one of the methods recorded at registration."""
    try:
        meta = served.meta
    except GatewayError:  # not loaded: its params are unknown, as its row schema says
        return {"type": "object", "additionalProperties": True}
    types = list(meta.allowed_types) if meta.inputs else []
    properties = {"type": {"type": "string", "enum": types}} if types else {}
    return {"type": "object", "properties": properties, "additionalProperties": False}


def _body_forms(model: str) -> dict[str, Any]:
    """The JSON forms of a predict body, with this model's row schema."""
    row = _ref(_row_name(model))
    rows = {"type": "array", "items": row}
    params = {"params": _ref(_params_name(model))}
    return {"oneOf": [
        rows,
        {"type": "object", "required": ["dataframe_records"], "properties": {"dataframe_records": rows, **params}},
        {"type": "object", "required": ["instances"], "properties": {"instances": rows, **params}},
        {"type": "object", "required": ["inputs"],
         "properties": {"inputs": {"type": "object", "additionalProperties": {"type": "array"}}, **params}},
        {"type": "object", "required": ["dataframe_split"], "properties": {
            "dataframe_split": {"type": "object", "required": ["columns", "data"], "properties": {
                "columns": {"type": "array", "items": {"type": "string"}},
                "data": {"type": "array", "items": {"type": "array"}}}}, **params}},
    ]}


def _predict_body(model: str, *, records_only: bool = False) -> dict[str, Any]:
    json_schema = {"type": "array", "items": _ref(_row_name(model))} if records_only else _body_forms(model)
    content = _json(json_schema)
    if not records_only:
        content["text/csv"] = {"schema": {"type": "string"}}
    return {"required": True, "content": content}


def _op(model: str, op_id: str, summary: str, tag: str, responses: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"operationId": op_id, "summary": summary, "tags": [tag], "responses": responses, **extra}


def _native_model_paths(served: ServedModel) -> dict[str, dict[str, Any]]:
    m = served.name
    native_ok = _ok("one prediction per row", _ref("PredictResponse"))
    version_param = {"name": "version", "in": "path", "required": True, "schema": {"type": "string"}}
    any_json = {"type": "object", "additionalProperties": True}
    return {
        f"/models/{m}": {"get": _op(m, f"metadata_{m}", f"{m}: metadata", m,
                                    {**_ok("metadata", any_json), **_PROBLEM})},
        f"/models/{m}/predict": {"post": _op(m, f"predict_{m}", f"{m}: predict", m, {**native_ok, **_PROBLEM},
                                             requestBody=_predict_body(m))},
        f"/models/{m}/versions/{{version}}/predict": {"post": _op(
            m, f"predict_{m}_version", f"{m}: predict with a pinned version", m, {**native_ok, **_PROBLEM},
            parameters=[version_param], requestBody=_predict_body(m))},
    }


def _mlflow_model_paths(served: ServedModel) -> dict[str, dict[str, Any]]:
    m = served.name
    mlflow_ok = _ok("MLflow's reply", {"type": "object", "required": ["predictions"],
                                      "properties": {"predictions": {"type": "array", "items": _ref("Prediction")}}})
    return {
        f"/models/{m}/invocations": {"post": _op(
            m, f"mlflow_invocations_{m}", f"{m}: predict (MLflow scoring protocol)", m,
            {**mlflow_ok, **_MLFLOW_ERROR}, requestBody=_predict_body(m))},
        f"/models/{m}/ping": {"get": _op(m, f"mlflow_ping_{m}", f"{m}: MLflow ping", m,
                                         {"200": {"description": "ready"}, **_MLFLOW_ERROR})},
        f"/models/{m}/health": {"get": _op(m, f"mlflow_health_{m}", f"{m}: MLflow health", m,
                                           {"200": {"description": "ready"}, **_MLFLOW_ERROR})},
        f"/models/{m}/version": {"get": _op(m, f"mlflow_version_{m}", f"{m}: MLflow version", m,
                                            {"200": {"description": "the MLflow version emulated"}, **_MLFLOW_ERROR})},
    }


def _vetiver_model_paths(served: ServedModel) -> dict[str, dict[str, Any]]:
    m = served.name
    vetiver_ok = _ok("vetiver's reply", {"type": "object", "required": ["predict"],
                                        "properties": {"predict": {"type": "array", "items": _ref("Prediction")}}})
    any_json = {"type": "object", "additionalProperties": True}
    return {
        f"/vetiver/{m}/predict": {"post": _op(m, f"vetiver_predict_{m}", f"{m}: predict (vetiver)", m,
                                              {**vetiver_ok, **_PROBLEM},
                                              requestBody=_predict_body(m, records_only=True))},
        f"/vetiver/{m}/ping": {"get": _op(m, f"vetiver_ping_{m}", f"{m}: vetiver ping", m,
                                          {**_ok("pong", any_json), **_PROBLEM})},
        f"/vetiver/{m}/metadata": {"get": _op(m, f"vetiver_metadata_{m}", f"{m}: vetiver metadata", m,
                                              {**_ok("metadata", any_json), **_PROBLEM})},
        f"/vetiver/{m}/prototype": {"get": _op(
            m, f"vetiver_prototype_{m}", f"{m}: vetiver prototype (?format=r: vetiver for R's)", m,
            {**_ok("the input prototype", any_json), **_PROBLEM},
            parameters=[{"name": "format", "in": "query", "required": False,
                         "schema": {"type": "string", "enum": ["python", "r"]}}])},
        f"/vetiver/{m}/pin-url": {"get": _op(m, f"vetiver_pin_url_{m}", f"{m}: vetiver pin URL", m,
                                             {**_ok("the pin's URL, or null", {"type": "string", "nullable": True}),
                                              **_PROBLEM})},
    }


def _unprefixed_paths(served: ServedModel) -> dict[str, dict[str, Any]]:
    """MLflow's unprefixed routes, which serve the default model (server.default_model)."""
    m = served.name
    mlflow_ok = _ok("MLflow's reply", {"type": "object", "required": ["predictions"],
                                      "properties": {"predictions": {"type": "array", "items": _ref("Prediction")}}})
    return {
        "/invocations": {"post": _op(m, "mlflow_invocations", f"{m} (the default model): predict, MLflow", m,
                                     {**mlflow_ok, **_MLFLOW_ERROR}, requestBody=_predict_body(m))},
        "/ping": {"get": _op(m, "mlflow_ping", f"{m} (the default model): MLflow ping", m,
                             {"200": {"description": "ready"}, **_MLFLOW_ERROR})},
        "/health": {"get": _op(m, "mlflow_health", f"{m} (the default model): MLflow health", m,
                               {"200": {"description": "ready"}, **_MLFLOW_ERROR})},
        "/version": {"get": _op(m, "mlflow_version", f"{m} (the default model): MLflow version", m,
                                {"200": {"description": "the MLflow version emulated"}, **_MLFLOW_ERROR})},
    }


_ANY_JSON = {"type": "object", "additionalProperties": True}


def server_paths(_svc: PredictionService) -> dict[str, dict[str, Any]]:
    """The server's own routes (probes, this document)."""
    return {
        "/healthz": {"get": {"operationId": "healthz", "summary": "liveness", "tags": ["server"],
                             "responses": _ok("alive", _ANY_JSON)}},
        "/readyz": {"get": {"operationId": "readyz", "summary": "readiness", "tags": ["server"],
                            "responses": {**_ok("ready", _ANY_JSON),
                                          "503": {"description": "not ready", "content": _json(_ANY_JSON)}}}},
        "/openapi.json": {"get": {"operationId": "openapi", "summary": "this document", "tags": ["server"],
                                  "responses": _ok("OpenAPI 3.0", _ANY_JSON)}},
    }


def native_paths(svc: PredictionService) -> dict[str, dict[str, Any]]:
    paths: dict[str, dict[str, Any]] = {
        "/models": {"get": {"operationId": "list_models", "summary": "the served models", "tags": ["server"],
                            "responses": _ok("models", _ANY_JSON)}},
    }
    for served in svc.registry:
        paths.update(_native_model_paths(served))
    return paths


def mlflow_paths(svc: PredictionService) -> dict[str, dict[str, Any]]:
    paths: dict[str, dict[str, Any]] = {}
    for served in svc.registry:
        paths.update(_mlflow_model_paths(served))
    default = default_model(svc.settings)
    if default is not None:
        paths.update(_unprefixed_paths(svc.registry.get(default)))
    return paths


def vetiver_paths(svc: PredictionService) -> dict[str, dict[str, Any]]:
    paths: dict[str, dict[str, Any]] = {}
    for served in svc.registry:
        paths.update(_vetiver_model_paths(served))
    return paths
