"""The Open Inference Protocol v2 routes in /openapi.json (registered by create_app)."""

from __future__ import annotations

from typing import Any

from gateway.service import PredictionService

_ERROR = {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}}
_TENSOR = {
    "type": "object", "required": ["name", "shape", "datatype", "data"],
    "properties": {
        "name": {"type": "string"}, "shape": {"type": "array", "items": {"type": "integer"}},
        "datatype": {"type": "string", "enum": ["BOOL", "INT64", "FP64", "BYTES", "INT32", "FP32"]},
        "data": {"type": "array"}, "parameters": {"type": "object"},
    },
}
_TENSOR_META = {"type": "object", "required": ["name", "datatype", "shape"], "properties": {
    "name": {"type": "string"}, "datatype": {"type": "string"},
    "shape": {"type": "array", "items": {"type": "integer"}}}}
_INFER_REQUEST = {"type": "object", "required": ["inputs"], "properties": {
    "id": {"type": "string"}, "parameters": {"type": "object"},
    "inputs": {"type": "array", "items": _TENSOR},
    "outputs": {"type": "array", "items": {"type": "object", "required": ["name"],
                                           "properties": {"name": {"type": "string"}}}}}}
_INFER_RESPONSE = {"type": "object", "required": ["model_name", "outputs"], "properties": {
    "model_name": {"type": "string"}, "model_version": {"type": "string"}, "id": {"type": "string"},
    "outputs": {"type": "array", "items": _TENSOR}}}
_MODEL_META = {"type": "object", "required": ["name", "platform", "inputs", "outputs"], "properties": {
    "name": {"type": "string"}, "versions": {"type": "array", "items": {"type": "string"}},
    "platform": {"type": "string"}, "inputs": {"type": "array", "items": _TENSOR_META},
    "outputs": {"type": "array", "items": _TENSOR_META}}}


def _op(op_id: str, summary: str, tag: str, ok: dict[str, Any] | None, **extra: Any) -> dict[str, Any]:
    responses: dict[str, Any] = {"default": {"description": "an error, as v2 answers it",
                                             "content": {"application/json": {"schema": _ERROR}}}}
    if ok is not None:
        responses["200"] = {"description": "OK", "content": {"application/json": {"schema": ok}}}
    else:
        responses["200"] = {"description": "live or ready"}
    return {"operationId": op_id, "summary": summary, "tags": [tag], "responses": responses, **extra}


def v2_paths(svc: PredictionService) -> dict[str, dict[str, Any]]:
    paths: dict[str, dict[str, Any]] = {
        "/v2": {"get": _op("v2_server_metadata", "v2: server metadata", "v2", {"type": "object"})},
        "/v2/health/live": {"get": _op("v2_live", "v2: liveness", "v2", None)},
        "/v2/health/ready": {"get": _op("v2_ready", "v2: readiness", "v2", None)},
    }
    for served in svc.registry:
        m = served.name
        paths[f"/v2/models/{m}"] = {"get": _op(f"v2_metadata_{m}", f"{m}: v2 model metadata", m, _MODEL_META)}
        paths[f"/v2/models/{m}/ready"] = {"get": _op(f"v2_ready_{m}", f"{m}: v2 model ready", m, None)}
        paths[f"/v2/models/{m}/infer"] = {"post": _op(
            f"v2_infer_{m}", f"{m}: v2 infer (each input tensor is a column)", m, _INFER_RESPONSE,
            requestBody={"required": True, "content": {"application/json": {"schema": _INFER_REQUEST}}},
        )}
    return paths
