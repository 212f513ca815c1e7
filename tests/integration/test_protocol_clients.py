"""Real clients against a real stack serving a Python model and an R model (Plumber pool):
MLflow's scoring-server client, vetiver's Python client, the vetiver R client's wire form
(httr + jsonlite, NA as "NA"), and the /docs page in headless Chromium."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from gateway.demo import build_iris
from tests.clients import MLFLOW_VERSION, mlflow_client, vetiver
from tests.integration.conftest import Stack, start_stack
from tests.integration.r_models import build_r_store, r_env

CHROMIUM = "/usr/bin/chromium"  # Debian's `chromium` (Makefile APT_PACKAGES)
MODELS = {"iris": {"backend": "python"}, "mtcars": {"backend": "plumber", "workers": 1, "timeout_s": 20}}
FRAMES = {
    "iris": pd.DataFrame({"sepal_length": [5.1, 6.7, 5.9], "sepal_width": [3.5, 3.0, 3.0],
                          "petal_length": [1.4, 5.2, 4.2], "petal_width": [0.2, 2.3, 1.5]}),
    "mtcars": pd.DataFrame({"wt": [2.62, 3.215, 0.123456789012], "hp": [110, 110, 245], "cyl": [6, 6, 8],
                            "am": ["manual", "auto", "auto"]}),
}


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    store = build_r_store(tmp_path_factory.mktemp("protocols") / "store")
    build_iris(store)
    with start_stack(tmp_path_factory.mktemp("protostack"), MODELS, store=store) as running:
        yield running


def native(gw: Stack, model: str, frame: pd.DataFrame) -> list:
    reply = gw.post(f"/models/{model}/predict", json=frame.to_dict(orient="records"))
    assert reply.status_code == 200, reply.text
    return reply.json()["predictions"]


@pytest.mark.parametrize("model", ["iris", "mtcars"])
def test_mlflow_scoring_client(gw: Stack, model: str) -> None:
    client = mlflow_client(gw.url, model)
    client.wait_server_ready(timeout=10)
    assert client.get_version() == MLFLOW_VERSION
    response = client.invoke(FRAMES[model])  # raises unless 200
    got = response.get_predictions(predictions_format="ndarray").tolist()
    assert got == native(gw, model, FRAMES[model])


@pytest.mark.parametrize("model", ["iris", "mtcars"])
def test_vetiver_python_client(gw: Stack, model: str) -> None:
    frame = vetiver.predict(vetiver.vetiver_endpoint(f"{gw.url}/vetiver/{model}/predict"), FRAMES[model])
    # vetiver sends DataFrame.to_json(orient="records"), which keeps 10 decimals: compare like with like
    sent = pd.DataFrame(json.loads(FRAMES[model].to_json(orient="records")))
    assert frame["predict"].tolist() == native(gw, model, sent)
    pong = gw.get(f"/vetiver/{model}/ping").json()  # vetiver-python's key and vetiver-R's, in one object
    assert (pong["ping"], pong["status"]) == ("pong", "online")
    proto = gw.get(f"/vetiver/{model}/prototype").json()
    assert set(proto["properties"]) == set(FRAMES[model].columns)


def test_mtcars_prototype_from_r_model_json(gw: Stack) -> None:
    proto = gw.get("/vetiver/mtcars/prototype").json()["properties"]
    assert proto == {"wt": {"type": "number"}, "hp": {"type": "number"}, "cyl": {"type": "integer"},
                     "am": {"type": "string", "enum": ["auto", "manual"]}}


def test_vetiver_r_client_wire_form_from_r(gw: Stack) -> None:
    """What vetiver's R predict() sends: jsonlite::toJSON(new_data, na = "string") as the body of
    httr::POST with no content type of its own; an NA in a numeric column arrives as "NA".
    The vetiver R package is not in Debian (CRAN is unreachable), so its request is rebuilt here
    from its source with the same httr and jsonlite calls."""
    code = r"""
args <- commandArgs(TRUE)
new_data <- data.frame(wt = c(2.62, 3.215), hp = c(110, NA), cyl = c(6L, 6L), am = c("manual", "auto"))
body <- jsonlite::toJSON(new_data, na = "string")
cat(body, "\n", file = stderr())
resp <- httr::POST(args[1], body = body, httr::config(proxy = ""))
cat(httr::status_code(resp), "\n")
cat(httr::content(resp, "text", encoding = "UTF-8"))
"""
    result = subprocess.run(["Rscript", "-e", code, f"{gw.url}/vetiver/mtcars/predict"], capture_output=True,
                            text=True, env={**r_env(), "no_proxy": "*"}, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert '"hp":"NA"' in result.stderr  # the wire form really carries the string
    status, body = result.stdout.split("\n", 1)
    # "NA" was read as a missing value (not as the string 'NA'), and mtcars' sample had none in hp:
    # model.json declares hp non-nullable, so the gateway refuses it before R runs, naming the cell
    assert status.strip() == "422", body
    assert json.loads(body)["detail"] == "column 'hp' does not allow missing values, got null at row 2"


def test_docs_page_in_headless_chromium_lists_every_models_predict(gw: Stack, tmp_path: Path) -> None:
    command = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
               "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=5000",
               "--dump-dom", gw.url + "/docs"]
    dom = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False).stdout
    for model in MODELS:
        for operation in (f"predict_{model}", f"mlflow_invocations_{model}", f"vetiver_predict_{model}"):
            assert f'id="{operation}"' in dom, operation
        assert f"/models/{model}/predict" in dom and f"{model}: predict" in dom
    assert 'id="error"></p>' in dom  # the page says nothing went wrong


def test_r_errors_reach_mlflow_clients_in_mlflows_shape(gw: Stack) -> None:
    bad_level = FRAMES["mtcars"].assign(am=["manual", "semi", "auto"])
    client = mlflow_client(gw.url, "mtcars")
    with pytest.raises(Exception, match=r"error code 422.*INVALID_PARAMETER_VALUE.*unknown level 'semi'"):
        client.invoke(bad_level)
    reply = gw.post("/models/mtcars/invocations", data=FRAMES["mtcars"].to_csv(index=False),
                    headers={"Content-Type": "text/csv"})
    assert reply.status_code == 200 and reply.json()["predictions"] == native(gw, "mtcars", FRAMES["mtcars"])
