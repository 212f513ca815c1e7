"""One surface, three backends: every case of tests/data/parity_cases.json against one real stack.

The stack serves the R demo lm (`mtcars`) twice from the same store version, through a
Plumber pool and through rpy2, and a scikit-learn LinearRegression fitted on the same rows
and columns. A client must not be able to tell them apart, except for the Python model's
last bits of floating point.
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LinearRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder

from gateway.codecs import decode_request
from gateway.paths import REPO_ROOT
from gateway.register import register_model
from tests.conftest import DATA_DIR
from tests.integration.conftest import Stack, start_stack
from tests.integration.r_models import r_env, rscript

PARITY = json.loads((DATA_DIR / "parity_cases.json").read_text(encoding="utf-8"))
CASES = {case["name"]: case for case in PARITY["cases"]}
PLUMBER, RPY2, PYTHON = PARITY["models"]
COLUMNS = ["wt", "hp", "cyl", "am"]
MODELS = {
    PLUMBER: {"backend": "plumber", "workers": 2, "timeout_s": 90},
    RPY2: {"backend": "rpy2", "timeout_s": 90},
    PYTHON: {"backend": "python"},
}
# 100 000 records are about 5 MB of JSON; the default limit is 16 MB, timeouts are for 2 cores.
SERVER = {"body_limit_bytes": 64 * 1024 * 1024, "timeout_s": 120, "threads": 4}


def mtcars_frame() -> pd.DataFrame:
    """The rows R fitted on, from R itself, typed as a Python user would: cyl int, am categorical."""
    code = (
        "cars <- mtcars; cars$am <- ifelse(cars$am == 1, 'manual', 'auto'); "
        "write.csv(cars[c('mpg', 'wt', 'hp', 'cyl', 'am')], stdout(), row.names = FALSE)"
    )
    frame = pd.read_csv(io.StringIO(rscript(code)))
    return frame.astype({"wt": "float64", "hp": "float64", "cyl": "int64"}).assign(
        am=pd.Categorical(frame["am"], categories=["auto", "manual"])
    )


def build_store(store: Path, scratch: Path) -> None:
    subprocess.run(["Rscript", str(REPO_ROOT / "demo" / "build_r_models.R"), str(scratch)], env=r_env(),
                   check=True, capture_output=True, timeout=120)
    for name in (PLUMBER, RPY2):  # the same bytes behind both R names
        shutil.copytree(scratch / "mtcars" / "1", store / name / "1")
    frame = mtcars_frame()
    # drop="first" is R's treatment contrast for am: the same least-squares problem.
    encode = ColumnTransformer([("am", OneHotEncoder(drop="first"), ["am"])], remainder="passthrough")
    model = make_pipeline(encode, LinearRegression()).fit(frame[COLUMNS], frame["mpg"])
    register_model(model, PYTHON, frame[COLUMNS], store=store, description="mtcars lm, fitted by sklearn")


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("parity")
    build_store(root / "store", root / "scratch")
    directory = tmp_path_factory.mktemp("paritystack")
    with start_stack(directory, MODELS, SERVER, store=root / "store", wait_s=120) as running:
        yield running


def request_of(case: dict[str, Any]) -> tuple[bytes, str]:
    if "json" in case:
        document = case["json"] * case["repeat"] if "repeat" in case else case["json"]
        return json.dumps(document).encode(), "application/json"
    return case["body"].encode(), case["content_type"]


@pytest.fixture(scope="module")
def ask(gw: Stack) -> Any:
    """Case name → {model: (status, content type, body text)}, each request sent once."""

    @cache
    def answers(name: str) -> dict[str, tuple[int, str, str]]:
        body, content_type = request_of(CASES[name])
        out = {}
        for model in PARITY["models"]:
            reply = gw.post(f"/models/{model}/predict", data=body, headers={"Content-Type": content_type},
                            timeout=120)
            out[model] = (reply.status_code, reply.headers["Content-Type"], reply.text)
        return out

    return answers


def shape(document: Any) -> Any:
    """A JSON document with every leaf replaced by its JSON type: what a client's parser sees."""
    if isinstance(document, dict):
        return {key: shape(value) for key, value in document.items()}
    if isinstance(document, list):
        return sorted({json.dumps(shape(item)) for item in document})  # the element types present
    return type(document).__name__


@pytest.mark.parametrize("name", [n for n, c in CASES.items() if c["status"] == 200])
def test_predictions_agree(ask: Any, name: str) -> None:
    answers = ask(name)
    body, content_type = request_of(CASES[name])
    n_rows = decode_request(body, content_type).table.n_rows
    for model, (status, media, _) in answers.items():
        assert (status, media) == (200, "application/json"), f"{model}: {answers[model][2][:500]}"
    docs = {model: json.loads(text) for model, (_, _, text) in answers.items()}
    shapes = {model: shape({k: v for k, v in doc.items()}) for model, doc in docs.items()}
    assert shapes[PLUMBER] == shapes[RPY2] == shapes[PYTHON]
    assert shapes[PLUMBER]["predictions"] == ['"float"']  # doubles, also for whole numbers
    for model, doc in docs.items():
        assert (doc["model"], len(doc["predictions"])) == (model, n_rows)
    # The two R paths: the same digits in the JSON, i.e. the same doubles bit for bit.
    raw = {model: json.loads(answers[model][2], parse_float=str)["predictions"] for model in (PLUMBER, RPY2)}
    assert raw[PLUMBER] == raw[RPY2]
    # The same least-squares fit solved by LAPACK via sklearn: equal to rounding.
    assert docs[PYTHON]["predictions"] == pytest.approx(docs[PLUMBER]["predictions"], rel=1e-9)


@pytest.mark.parametrize("name", [n for n, c in CASES.items() if c["status"] != 200])
def test_errors_agree(ask: Any, name: str) -> None:
    case = CASES[name]
    problems = {}
    for model, (status, media, text) in ask(name).items():
        assert (status, media) == (case["status"], "application/problem+json"), f"{model}: {text[:500]}"
        problem = json.loads(text)
        assert problem["detail"] == case["detail"].format(model=model)
        assert (problem["status"], problem["model"]) == (case["status"], model)
        problems[model] = {k: v for k, v in problem.items() if k not in ("detail", "model", "request_id")}
    assert problems[PLUMBER] == problems[RPY2] == problems[PYTHON]


def test_the_stack_describes_each_backend(gw: Stack) -> None:
    listed = {m["name"]: m for m in gw.get("/models").json()["models"]}
    assert {name: (m["backend"], m["language"], m["ready"]) for name, m in listed.items()} == {
        PLUMBER: ("plumber", "r", True), RPY2: ("rpy2", "r", True), PYTHON: ("python", "python", True),
    }
    inputs = {name: gw.get(f"/models/{name}").json()["inputs"] for name in MODELS}
    assert inputs[PLUMBER] == inputs[RPY2] == inputs[PYTHON]
    assert gw.get("/readyz").status_code == 200
