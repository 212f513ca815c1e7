"""The golden error replies shared with testthat (tests/data/wire_errors.json): the gateway's side.

R's tests check that the worker answers each case with the listed status and code; this one
checks that both R backends' one mapping (r_reply) turns that reply into the listed error.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import orjson
import pytest

from gateway.backends.r_reply import predictions_from_reply
from gateway.errors import GatewayError

CASES = json.loads((Path(__file__).parents[1] / "data" / "wire_errors.json").read_text(encoding="utf-8"))["cases"]


@pytest.mark.parametrize("case", CASES, ids=[case["when"] for case in CASES])
def test_each_r_error_reply_becomes_the_listed_gateway_error(case: dict) -> None:
    message = case["r"].get("message", "what R said")
    body = orjson.dumps({"error": {"code": case["r"]["code"], "message": message, **case["r"].get("fields", {})}})
    with pytest.raises(GatewayError) as raised:
        predictions_from_reply(case["r"]["status"], body, list, model="toy", source="the R worker")
    error = raised.value
    assert (error.status, error.code) == (case["gateway"]["status"], case["gateway"]["code"])
    assert message in error.detail  # R's message reaches the client
    assert error.model == "toy"


def test_the_golden_file_covers_every_code_the_r_worker_sends() -> None:
    # r_services/R/handle.R: fail(status, code, ...) calls; a new one needs a golden case.
    handle = (Path(__file__).parents[2] / "r_services" / "R" / "handle.R").read_text(encoding="utf-8")
    sent = set(re.findall(r'fail\((\d+), "([a-z_]+)"', handle))
    assert sent == {(str(case["r"]["status"]), case["r"]["code"]) for case in CASES}
