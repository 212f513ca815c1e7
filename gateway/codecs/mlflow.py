"""The MLflow scoring-server protocol (`mlflow models serve`, MLflow 2.0+ request format).

Requests: `application/json` holding an object with exactly one of `dataframe_split`,
`dataframe_records`, `instances`, `inputs` (and optionally `params`), or `text/csv` with a header
row. Any other media type, a charset other than UTF-8, or a content-type parameter other than
`charset` (MLflow 1.x's `format=pandas-split`) is a 415, as MLflow's server answers.
A bare `NaN` (what MLflow's own client writes for a missing value) is read as null here.
Replies: `{"predictions": [...]}`; errors: MLflow's `{"error_code": ..., "message": ...}`
(MlflowException.serialize_as_json) with our statuses. MLflow's own server writes its 415s as
text/plain; ours carry the same JSON shape as every other error, so a client parses one form.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

from gateway.codecs.request import OBJECT_FORMS, DecodedRequest, decode_csv, decode_json_form, parse_json
from gateway.codecs.response import dumps
from gateway.errors import BadRequest, GatewayError, ModelProblem, UnsupportedMediaType

# MLflow's own hint for a body that is none of the forms (mlflow.pyfunc.scoring_server).
REQUIRED_INPUT_FORMAT = (
    "The input must be a JSON dictionary with exactly one of the input fields "
    "{'dataframe_split', 'dataframe_records', 'instances', 'inputs'}"
)
SCORING_PROTOCOL_CHANGE_INFO = (
    "IMPORTANT: The MLflow Model scoring protocol has changed in MLflow version 2.0. If you are "
    "seeing this error, you are likely using an outdated scoring request format. For more "
    "information see https://mlflow.org/docs/latest/models.html#deploy-mlflow-models."
)
CONTENT_TYPES = ("text/csv", "application/json")

# Our statuses stay; the code names are MLflow's (mlflow.protos.databricks_pb2.ErrorCode), chosen
# so that MLflow's own status for the code is ours wherever MLflow has such a code.
ERROR_CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "ENDPOINT_NOT_FOUND",
    413: "RESOURCE_EXHAUSTED",
    415: "BAD_REQUEST",
    422: "INVALID_PARAMETER_VALUE",
    429: "REQUEST_LIMIT_EXCEEDED",
    503: "TEMPORARILY_UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


def _content_type_parts(content_type: str | None) -> tuple[str, dict[str, str]]:
    kind, *rest = (content_type or "").split(";")
    params = {}
    for part in rest:
        key, _, value = part.strip().partition("=")
        if key:
            params[key.strip().lower()] = value.strip().strip('"')
    return kind.strip().lower(), params


def decode_mlflow_request(body: bytes, content_type: str | None) -> DecodedRequest:
    """Decode an `/invocations` body. Raises UnsupportedMediaType (415) or BadRequest (400)."""
    kind, params = _content_type_parts(content_type)
    charset = params.get("charset", "utf-8").lower()
    if charset not in ("utf-8", "utf8"):
        raise UnsupportedMediaType(f"charset {charset!r} is not supported: the scoring server only supports UTF-8")
    unexpected = sorted(set(params) - {"charset"})
    if unexpected:
        raise UnsupportedMediaType(
            f"unrecognized content type parameters: {', '.join(unexpected)}. {SCORING_PROTOCOL_CHANGE_INFO}"
        )
    if kind == "text/csv":
        return DecodedRequest(decode_csv(body), {})
    if kind != "application/json":
        raise UnsupportedMediaType(
            f"this predictor only supports the content types {list(CONTENT_TYPES)}; got {content_type or 'none'!r}"
        )
    document = _parse_json_with_nan(body)
    if isinstance(document, list):
        raise BadRequest(f"{REQUIRED_INPUT_FORMAT}. Received a list. {SCORING_PROTOCOL_CHANGE_INFO}")
    if not isinstance(document, dict):
        raise BadRequest(f"{REQUIRED_INPUT_FORMAT}. Received {type(document).__name__}.")
    forms = [key for key in OBJECT_FORMS if key in document]
    if len(forms) != 1:
        raise BadRequest(
            f"{REQUIRED_INPUT_FORMAT}. Received dictionary with input fields: {list(document)}. "
            f"{SCORING_PROTOCOL_CHANGE_INFO}"
        )
    # MLflow ignores other keys (e.g. pandas' split "index"); ours are checked by the shared decoder.
    return decode_json_form({key: document[key] for key in (forms[0], "params") if key in document})


def _parse_json_with_nan(body: bytes) -> Any:
    """MLflow's ScoringServerClient writes a missing value as bare `NaN` (Python's json), and
    MLflow's server reads it: here, and only here, NaN is a missing value. orjson first; the
    standard library only for a body orjson refuses. Infinity stays refused: no model wants it."""
    try:
        return parse_json(body)
    except BadRequest as refused:
        if b"NaN" not in body:
            raise
        try:
            return json.loads(body, parse_constant=_nan_only)
        except ValueError:  # still not JSON, or ±Infinity: orjson's message says where
            raise refused from None


def _nan_only(constant: str) -> None:
    if constant != "NaN":
        raise ValueError(constant)


def encode_mlflow_predictions(predictions: list[Any]) -> bytes:
    """MLflow's reply: `{"predictions": [...]}`, one element per row (objects for class probabilities,
    as MLflow writes a DataFrame of outputs with orient="records")."""
    return dumps({"predictions": predictions})


def encode_mlflow_error(error: GatewayError, request_id: str | None) -> bytes:
    """MLflow's error body (MlflowException.serialize_as_json), plus our request id."""
    code = ERROR_CODES.get(error.status, "INTERNAL_ERROR")
    if isinstance(error, ModelProblem):  # the model's own problem type, in MLflow's upper case
        code = error.code.upper()
    body: dict[str, Any] = {"error_code": code, "message": error.detail}
    if request_id is not None:
        body["request_id"] = request_id
    return orjson.dumps(body)
