"""The one mapping of R's replies, shared by the Plumber and rpy2 backends: a table of cases."""

from __future__ import annotations

import json

import pytest

from gateway.backends.r_reply import predictions_from_reply
from gateway.codecs import decode_wire_reply
from gateway.errors import BadGateway, GatewayError, InvalidInput, ModelError

CASES = [
    (422, {"error": {"code": "invalid_input", "message": "column 'wt' is missing"}}, False,
     InvalidInput, "column 'wt' is missing"),
    (422, {"error": {"code": "model_error", "message": "wt must be positive"}}, False,
     ModelError, "wt must be positive"),
    (500, {"error": {"code": "internal", "message": "object 'x' not found"}}, False,
     BadGateway, "the embedded R for model 'm' failed (500): object 'x' not found"),
    (400, {"error": {"code": "bad_request", "message": "bad shape"}}, False,
     BadGateway, "the embedded R for model 'm' failed (400): bad shape"),
    (400, {"error": ["speed is required"]}, True, ModelError, "speed is required"),
    (500, {"error": "boom", "message": ["speed is required"]}, True, BadGateway,
     "the embedded R for model 'm' failed (500): speed is required"),
]


@pytest.mark.parametrize(("status", "document", "script", "error", "detail"), CASES)
def test_error_replies_map_to_the_contract(
    status: int, document: object, script: bool, error: type[GatewayError], detail: str
) -> None:
    with pytest.raises(error) as caught:
        predictions_from_reply(status, json.dumps(document).encode(), lambda doc: decode_wire_reply(doc, 1),
                               model="m", source="the embedded R", script=script)
    assert (type(caught.value), caught.value.detail, caught.value.model) == (error, detail, "m")


def test_predictions_pass_through_and_bad_replies_are_502() -> None:
    def decode(doc: object) -> list:
        return decode_wire_reply(doc, 2)

    assert predictions_from_reply(200, b'{"predictions": [1.5, 2.0]}', decode, model="m", source="R") == [1.5, 2.0]
    with pytest.raises(BadGateway, match=r"not JSON: '<html>'"):
        predictions_from_reply(200, b"<html>", decode, model="m", source="R")
    with pytest.raises(BadGateway, match="1 predictions for 2 rows"):
        predictions_from_reply(200, b'{"predictions": [1.5]}', decode, model="m", source="R")
