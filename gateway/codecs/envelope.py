"""How each protocol writes an error: problem+json, MLflow's `{"error_code", "message"}`, v2's
`{"error"}`. Free of Flask, so the app's error pipeline and NGINX's own error pages
(gateway/runtime) write the same bodies from the same objects.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from gateway.codecs.mlflow import encode_mlflow_error
from gateway.codecs.response import dumps
from gateway.errors import GatewayError, ModelProblem

PROBLEM_JSON = "application/problem+json"


# (error, request id or None) → the body.
_Encode = Callable[[GatewayError, "str | None"], bytes]


@dataclass(frozen=True)
class Envelope:
    """One error shape: its name (NGINX pages are keyed by it), media type, body and status."""

    name: str
    content_type: str
    encode: _Encode
    # Statuses this protocol answers differently from ours (v2: a 422 is its 400).
    statuses: tuple[tuple[int, int], ...] = ()

    def status(self, error: GatewayError) -> int:
        return dict(self.statuses).get(error.status, error.status)


def _problem(error: GatewayError, request_id: str | None) -> bytes:
    return dumps(error.to_problem(request_id))


def _v2(error: GatewayError, _request_id: str | None) -> bytes:
    text = error.detail or error.title
    # v2's one string carries a model's own problem type in front, as its only machine-readable part.
    return dumps({"error": f"{error.code}: {text}" if isinstance(error, ModelProblem) else text})


PROBLEM = Envelope("problem", PROBLEM_JSON, _problem)
MLFLOW = Envelope("mlflow", "application/json", encode_mlflow_error)
# v2 clients treat a failed inference as a 400 ("usually 400" in the spec; KServe and Triton
# answer 400 for bad inputs); 404, 413, 415, 429, 5xx keep their meaning.
V2 = Envelope("v2", "application/json", _v2, statuses=((422, 400),))
