"""The real client libraries the protocol tests drive, imported in one place.

mlflow.pyfunc warns (UserWarning, about its own type hints) when imported; pytest turns warnings
into errors, so that one warning is silenced here, at import, and nowhere else.
"""

from __future__ import annotations

import warnings

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message=".*Any type hint is inferred as AnyType", category=UserWarning)
    from mlflow.pyfunc.scoring_server import REQUIRED_INPUT_FORMAT
    from mlflow.pyfunc.scoring_server.client import ScoringServerClient

import vetiver
from mlflow.deployments import PredictionsResponse
from mlflow.exceptions import ERROR_CODE_TO_HTTP_STATUS
from mlflow.protos.databricks_pb2 import ErrorCode
from mlflow.utils.proto_json_utils import dump_input_data
from mlflow.version import VERSION as MLFLOW_VERSION

__all__ = [
    "ERROR_CODE_TO_HTTP_STATUS",
    "MLFLOW_VERSION",
    "REQUIRED_INPUT_FORMAT",
    "ErrorCode",
    "PredictionsResponse",
    "ScoringServerClient",
    "dump_input_data",
    "mlflow_client",
    "vetiver",
]


def mlflow_client(base_url: str, model: str) -> ScoringServerClient:
    """MLflow's own scoring-server client, pointed at a model's prefix (it takes host and port;
    every request it makes is url_prefix + "/ping", "/version", "/invocations")."""
    client = ScoringServerClient("127.0.0.1", 0)
    client.url_prefix = f"{base_url}/models/{model}"
    return client
