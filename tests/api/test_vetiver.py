"""vetiver protocol on Python models: vetiver's own client, and the R client's wire form."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator

import pandas as pd
import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.serving import make_server

from tests.clients import vetiver

ROWS = pd.DataFrame({"tenure": [3, 10, 40], "monthly": [50.5, 99.9, 20.25], "plan": ["basic", "pro", "plus"]})


@pytest.fixture(scope="module")
def base_url(app: Flask) -> Iterator[str]:
    """The app on a loopback port, so vetiver's client speaks real HTTP to it."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(10)


def native(client: FlaskClient, rows: list[dict]) -> list:
    reply = client.post("/models/churn/predict", json=rows)
    assert reply.status_code == 200, reply.get_data(as_text=True)
    return reply.get_json()["predictions"]


def test_vetiver_predict_works_unchanged(base_url: str, client: FlaskClient) -> None:
    endpoint = vetiver.vetiver_endpoint(f"{base_url}/vetiver/churn/predict")
    frame = vetiver.predict(endpoint, ROWS)
    assert isinstance(frame, pd.DataFrame) and list(frame.columns) == ["predict"]
    assert frame["predict"].tolist() == native(client, ROWS.to_dict(orient="records"))
    one = vetiver.predict(endpoint, ROWS.iloc[0].to_dict())  # a dict: vetiver posts it as JSON
    assert one["predict"].tolist() == native(client, ROWS.iloc[:1].to_dict(orient="records"))


def test_vetiver_client_turns_a_422_into_its_type_error(base_url: str) -> None:
    with pytest.raises(TypeError, match=r"column .plan. is missing"):  # vetiver raises with our detail
        vetiver.predict(f"{base_url}/vetiver/churn/predict", ROWS.drop(columns=["plan"]))


def test_r_client_wire_form_with_na_strings(client: FlaskClient) -> None:
    # vetiver R: jsonlite::toJSON(new_data, na = "string") posted by httr as form data.
    rows = [{"tenure": 3, "monthly": "NA", "plan": "basic"}, {"tenure": 10, "monthly": 99.9, "plan": "pro"}]
    reply = client.post("/vetiver/churn/predict", data=json.dumps(rows),
                        content_type="application/x-www-form-urlencoded")
    # "NA" reached the model as a missing value: it answers exactly as to a null on the native route
    as_null = client.post("/models/churn/predict", json=[{**rows[0], "monthly": None}, rows[1]])
    assert (reply.status_code, reply.get_json()["detail"]) == (422, as_null.get_json()["detail"])
    assert reply.get_json()["detail"] == "column 'monthly' does not allow missing values, got null at row 1"
    refused = client.post("/models/churn/predict", json=rows)  # the native route keeps refusing the string
    assert refused.status_code == 422 and "got 'NA'" in refused.get_json()["detail"]


def test_na_in_a_string_column_stays_a_string(client: FlaskClient) -> None:
    body = json.dumps([{"tenure": 3, "monthly": 1.5, "plan": "NA"}])
    reply = client.post("/vetiver/churn/predict", data=body)
    assert reply.status_code == 422 and "NA" in reply.get_json()["detail"]  # an unknown level, not missing


def test_ping_metadata_prototype(client: FlaskClient) -> None:
    pong = client.get("/vetiver/churn/ping").get_json()  # both vetiver clients' answers in one object
    assert (pong["ping"], pong["status"]) == ("pong", "online") and set(pong) == {"ping", "status", "time"}
    meta = client.get("/vetiver/churn/metadata").get_json()
    assert set(meta) >= {"user", "version", "url", "required_pkgs"} and meta["version"] == "1"
    proto = client.get("/vetiver/churn/prototype").get_json()
    assert proto["title"] == "prototype" and proto["type"] == "object"
    assert proto["required"] == ["tenure", "monthly", "plan"]
    assert proto["properties"]["tenure"]["type"] == "integer"
    assert proto["properties"]["monthly"]["type"] == "number"
    assert proto["properties"]["plan"] == {"type": "string", "enum": ["basic", "plus", "pro"]}
    assert client.get("/vetiver/nosuch/ping").status_code == 404


def test_requests_are_counted_under_the_vetiver_protocol(client: FlaskClient) -> None:
    client.post("/vetiver/churn/predict", data=ROWS.to_json(orient="records"))
    assert 'protocol="vetiver"' in client.get("/metrics").get_data(as_text=True)
