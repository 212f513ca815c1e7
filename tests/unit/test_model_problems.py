"""A problem a model names itself (gateway.ModelProblem, gatewayr::problem): its status and type
are allow-listed, every envelope carries the type, and the batcher fails only the request
whose rows raised it."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

import gateway
from gateway.backends.r_reply import predictions_from_reply
from gateway.batching import MicroBatcher
from gateway.codecs import Table
from gateway.codecs.envelope import MLFLOW, PROBLEM, V2
from gateway.errors import ModelProblem
from tests.unit.test_batching import FakeBackend, queue_behind_a_call


def test_the_package_exports_model_problem_lazily() -> None:
    assert gateway.ModelProblem is ModelProblem


@pytest.mark.parametrize("status", [400, 409, 422, 503])
def test_an_allowed_status_is_kept(status: int) -> None:
    problem = ModelProblem(status, "stale_features", "features are a day old")
    assert (problem.status, problem.code, problem.detail) == (status, "stale_features", "features are a day old")


@pytest.mark.parametrize("status", [200, 401, 500, 502, "409", None, True])
def test_any_other_status_becomes_422_with_a_note(status: Any) -> None:
    problem = ModelProblem(status, "stale_features", "old")
    assert problem.status == 422 and problem.code == "stale_features"
    assert problem.detail.startswith("old (the model asked for status") and "400, 409, 422, 503" in problem.detail


@pytest.mark.parametrize("kind", ["Stale", "9lives", "a-b", "", "x" * 65, "a b", None, "../x", "é"])
def test_a_type_that_is_not_a_token_becomes_model_error_with_a_note(kind: Any) -> None:
    problem = ModelProblem(409, kind, "old")
    assert (problem.status, problem.code) == (409, "model_error")
    assert "not a token" in problem.detail


def test_every_envelope_carries_the_type() -> None:
    problem = ModelProblem(409, "stale_features", "features are a day old", model="churn")
    body = orjson.loads(PROBLEM.encode(problem, "req-1"))
    assert body["type"].endswith("/stale_features") and body["status"] == 409 and body["model"] == "churn"
    assert PROBLEM.status(problem) == MLFLOW.status(problem) == V2.status(problem) == 409
    assert orjson.loads(MLFLOW.encode(problem, None))["error_code"] == "STALE_FEATURES"
    assert orjson.loads(V2.encode(problem, None)) == {"error": "stale_features: features are a day old"}


def test_an_r_problem_reply_with_a_bad_status_and_type_is_refused_to_422_model_error() -> None:
    body = orjson.dumps({"error": {"code": "model_problem", "message": "no", "status": 500, "type": "Bad Type"}})
    with pytest.raises(ModelProblem) as raised:
        predictions_from_reply(422, body, list, model="toy", source="the R worker")
    assert (raised.value.status, raised.value.code, raised.value.model) == (422, "model_error", "toy")
    assert raised.value.detail.startswith("no (")


def test_a_script_predict_route_problem_keeps_its_status_and_type() -> None:
    body = orjson.dumps({"error": {"code": "model_problem", "message": "busy", "status": 503, "type": "warming_up"}})
    with pytest.raises(ModelProblem) as raised:
        predictions_from_reply(500, body, list, model="script", source="the R worker", script=True)
    assert (raised.value.status, raised.value.code) == (503, "warming_up")


def test_the_batcher_fails_only_the_request_whose_rows_named_a_problem() -> None:
    calls: list[list[float]] = []
    fake = FakeBackend()  # holds the first call (x == 1000) so the others queue into one shared call

    def predict(table: Table, params: dict[str, Any]) -> list[Any]:
        xs = table.columns["x"]
        calls.append(list(xs))
        if xs == [1000.0]:
            return fake.predict(table, params)
        if 409.0 in xs:
            raise ModelProblem(409, "stale_features", "row with x = 409 is stale")
        return [("response", x) for x in xs]

    batcher = MicroBatcher(predict, max_size=64, max_wait_ms=5000, slots=1)
    outcomes = queue_behind_a_call(batcher, fake, [(Table({"x": [1.0]}, 1), {}), (Table({"x": [2.0, 409.0]}, 2), {}),
                                                   (Table({"x": [3.0]}, 1), {})])
    assert outcomes[0]["value"] == [("response", 1.0)]
    assert outcomes[2]["value"] == [("response", 3.0)]
    error = outcomes[1]["error"]
    assert isinstance(error, ModelProblem) and (error.status, error.code) == (409, "stale_features")
    assert calls[1] == [1.0, 2.0, 409.0, 3.0]  # one shared call failed, then each retried alone
    assert sorted(calls[2:]) == [[1.0], [2.0, 409.0], [3.0]]
