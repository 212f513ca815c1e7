"""tritonclient's HTTP InferenceServerClient, unchanged, against a real stack: a Python and R models.

One stack serves iris (scikit-learn, in-process) and mtcars and transmission (R, Plumber pools).
Inputs go both ways tritonclient sends them: JSON tensors and its default binary tensor data.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import tritonclient.http as triton
from tritonclient.utils import InferenceServerException

from gateway.demo import build_iris
from tests.integration.conftest import Stack, start_stack
from tests.integration.r_models import build_r_store, r_predict

MODELS = {
    "iris": {"backend": "python"},
    "mtcars": {"backend": "plumber", "workers": 1, "timeout_s": 20},
    "transmission": {"backend": "plumber", "workers": 1, "timeout_s": 20},
}
MTCARS = {"wt": [2.62, 3.215, 0.123456789012], "hp": [110, 110, 245], "cyl": [6, 6, 8],
          "am": ["manual", "auto", "auto"]}


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    store = build_r_store(tmp_path_factory.mktemp("v2") / "store")
    build_iris(store)
    return store


@pytest.fixture(scope="module")
def gw(store: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with start_stack(tmp_path_factory.mktemp("v2stack"), MODELS, store=store) as running:
        yield running


@pytest.fixture
def client(gw: Stack) -> Iterator[triton.InferenceServerClient]:
    client = triton.InferenceServerClient(url=gw.url.removeprefix("http://"))
    try:
        yield client
    finally:
        client.close()


def column(name: str, values: np.ndarray, datatype: str, binary: bool) -> triton.InferInput:
    tensor = triton.InferInput(name, list(values.shape), datatype)
    return tensor.set_data_from_numpy(values, binary_data=binary)


def mtcars_inputs(binary: bool) -> list[triton.InferInput]:
    return [
        column("wt", np.array(MTCARS["wt"], dtype=np.float64), "FP64", binary),
        column("hp", np.array(MTCARS["hp"], dtype=np.float64), "FP64", binary),
        column("cyl", np.array(MTCARS["cyl"], dtype=np.int64), "INT64", binary),
        column("am", np.array(MTCARS["am"], dtype=np.object_), "BYTES", binary),
    ]


def test_liveness_readiness_and_server_metadata(client: triton.InferenceServerClient) -> None:
    assert client.is_server_live()
    assert client.is_server_ready()
    assert client.get_server_metadata()["name"] == "gateway"
    for model in MODELS:
        assert client.is_model_ready(model)
    assert not client.is_model_ready("nope")


def test_model_metadata_of_python_and_r_models(client: triton.InferenceServerClient) -> None:
    iris = client.get_model_metadata("iris")
    assert iris["platform"] == "python_skops"
    assert [(t["name"], t["datatype"]) for t in iris["inputs"]] == [
        ("sepal_length", "FP64"), ("sepal_width", "FP64"), ("petal_length", "FP64"), ("petal_width", "FP64")]
    mtcars = client.get_model_metadata("mtcars", model_version="1")
    assert mtcars["platform"] == "r_rds" and mtcars["versions"] == ["1"]
    assert [(t["name"], t["datatype"], t["shape"]) for t in mtcars["inputs"]] == [
        ("wt", "FP64", [-1]), ("hp", "FP64", [-1]), ("cyl", "INT64", [-1]), ("am", "BYTES", [-1])]
    assert mtcars["outputs"] == [{"name": "predictions", "datatype": "FP64", "shape": [-1]}]
    transmission = client.get_model_metadata("transmission")
    assert [t["name"] for t in transmission["outputs"]] == ["predictions", "auto", "manual"]


@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
def test_infer_python_model(client: triton.InferenceServerClient, binary: bool) -> None:
    rows = np.array([[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]])
    names = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    inputs = [column(n, rows[:, i].copy(), "FP64", binary) for i, n in enumerate(names)]
    result = client.infer("iris", inputs, request_id="iris-1")
    assert result.get_response()["id"] == "iris-1"
    assert result.as_numpy("predictions").tolist() == ["setosa", "virginica"]  # JSON BYTES: str
    probs = client.infer("iris", inputs, parameters={"type": "prob"},
                         outputs=[triton.InferRequestedOutput("virginica", binary_data=binary)])
    virginica = probs.as_numpy("virginica")
    assert virginica.dtype == np.float64 and virginica[1] > 0.9 > virginica[0]


@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
def test_infer_r_model_matches_r(client: triton.InferenceServerClient, store: Path, binary: bool) -> None:
    result = client.infer("mtcars", mtcars_inputs(binary), request_id="r-1")
    assert result.get_response()["model_version"] == "1"
    rows = [dict(zip(MTCARS, values, strict=True)) for values in zip(*MTCARS.values(), strict=True)]
    assert result.as_numpy("predictions").tolist() == r_predict(store, "mtcars", rows)  # every digit


def test_infer_r_classifier_probabilities(client: triton.InferenceServerClient, store: Path) -> None:
    values = {"mpg": [21.0, 32.4], "hp": [110.0, 66.0], "wt": [2.62, 2.2]}
    inputs = [column(n, np.array(v), "FP64", True) for n, v in values.items()]
    inputs.append(column("engine", np.array(["V-shaped", "straight"], dtype=np.object_), "BYTES", True))
    result = client.infer("transmission", inputs, parameters={"type": "prob"})
    rows = [{**{n: v[i] for n, v in values.items()}, "engine": e} for i, e in enumerate(["V-shaped", "straight"])]
    expected = r_predict(store, "transmission", rows, prob=True)
    for label in ("auto", "manual"):
        assert result.as_numpy(label).tolist() == [row[label] for row in expected]


def test_errors_reach_the_client_as_inference_server_exceptions(client: triton.InferenceServerClient) -> None:
    inputs = mtcars_inputs(False)[:3]  # no `am`
    with pytest.raises(InferenceServerException) as missing:
        client.infer("mtcars", inputs)
    assert missing.value.status() == "400" and "column 'am' is missing" in missing.value.message()
    with pytest.raises(InferenceServerException) as unknown:
        client.get_model_metadata("nope")
    assert unknown.value.status() == "404" and "'nope' does not exist" in unknown.value.message()
    bad_level = mtcars_inputs(True)
    bad_level[3] = column("am", np.array(["cvt", "auto", "auto"], dtype=np.object_), "BYTES", True)
    with pytest.raises(InferenceServerException, match="unknown level 'cvt'"):
        client.infer("mtcars", bad_level)
