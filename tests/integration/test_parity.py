"""One surface, three backends: every case of tests/data/parity_cases.json against one real stack.

The stack serves the R demo lm (`mtcars`) twice from the same store version, through a
Plumber pool and through rpy2, a scikit-learn LinearRegression fitted on the same rows and
columns, and that pipeline converted to ONNX (backend = "onnx"). A client must not be able to
tell them apart, except for the Python model's last bits of floating point and ONNX Runtime's
float32.

It also serves each R model family of tests/data/r_families.R (rpart, nnet::multinom,
MASS::lda, a binomial glm, mgcv::gam, lm, randomForest) through both R backends: the two
answer the same digits, equal to R's own predict (run in a separate R) within 1e-12.
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
from gateway.register import register_artefact, register_model
from tests.conftest import DATA_DIR
from tests.integration.conftest import Stack, start_stack
from tests.integration.r_models import r_env, r_own_predictions, rscript

PARITY = json.loads((DATA_DIR / "parity_cases.json").read_text(encoding="utf-8"))
CASES = {case["name"]: case for case in PARITY["cases"]}
PLUMBER, RPY2, PYTHON, ONNX = PARITY["models"]
COLUMNS = ["wt", "hp", "cyl", "am"]
MODELS = {
    PLUMBER: {"backend": "plumber", "workers": 2, "timeout_s": 90},
    RPY2: {"backend": "rpy2", "timeout_s": 90},
    PYTHON: {"backend": "python"},
    ONNX: {"backend": "onnx"},
}
LANGUAGES = {"plumber": "r", "rpy2": "r", "python": "python", "onnx": "python"}
FAMILIES = PARITY["families"]
FAMILY_NAMES = sorted({case["family"] for case in FAMILIES["cases"]})
R_BACKENDS = ("plumber", "rpy2")
for _family in FAMILY_NAMES:
    MODELS[f"{_family}_plumber"] = {"backend": "plumber", "workers": 1, "timeout_s": 90}
    MODELS[f"{_family}_rpy2"] = {"backend": "rpy2", "timeout_s": 90}
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
    register_model(model, ONNX, frame[COLUMNS], store=store, fmt="onnx", description="the same, in ONNX")
    build_family_store(store, scratch)


# Each family saved by gatewayr::save_model, except randomForest: written to an .rds by one R and
# registered from the shell (`gateway register --target`) with a write.csv() sample, row names
# and target column included. The same bytes then sit behind both backends' names.
_SAVE_FAMILIES = """
args <- commandArgs(TRUE)
source(args[1])
families <- family_models()
for (family in setdiff(names(families), "random_forest")) {
  entry <- families[[family]]
  gatewayr::save_model(entry$model, args[2], paste0(family, "_plumber"), entry$sample, target = entry$target)
}
saveRDS(families$random_forest$model, file.path(args[3], "forest.rds"))
utils::write.csv(families$random_forest$sample, file.path(args[3], "forest.csv"))
"""


def build_family_store(store: Path, scratch: Path) -> None:
    rscript(_SAVE_FAMILIES, str(DATA_DIR / "r_families.R"), str(store), str(scratch))
    register_artefact(store, "random_forest_plumber", scratch / "forest.rds", scratch / "forest.csv",
                      "randomForest, registered from the shell", target="am")
    for family in FAMILY_NAMES:
        shutil.copytree(store / f"{family}_plumber" / "1", store / f"{family}_rpy2" / "1")


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
    assert shapes[PLUMBER] == shapes[RPY2] == shapes[PYTHON] == shapes[ONNX]
    assert shapes[PLUMBER]["predictions"] == ['"float"']  # doubles, also for whole numbers
    for model, doc in docs.items():
        assert (doc["model"], len(doc["predictions"])) == (model, n_rows)
    # The two R paths: the same digits in the JSON, i.e. the same doubles bit for bit.
    raw = {model: json.loads(answers[model][2], parse_float=str)["predictions"] for model in (PLUMBER, RPY2)}
    assert raw[PLUMBER] == raw[RPY2]
    # The same least-squares fit solved by LAPACK via sklearn: equal to rounding.
    assert docs[PYTHON]["predictions"] == pytest.approx(docs[PLUMBER]["predictions"], rel=1e-9)
    # ONNX Runtime computes in float32 (about 7 significant digits).
    assert docs[ONNX]["predictions"] == pytest.approx(docs[PYTHON]["predictions"], rel=1e-5)


@pytest.mark.parametrize("name", [n for n, c in CASES.items() if c["status"] != 200])
def test_errors_agree(gw: Stack, ask: Any, name: str) -> None:
    case = CASES[name]
    problems = {}
    for model, (status, media, text) in ask(name).items():
        assert (status, media) == (case["status"], "application/problem+json"), f"{model}: {text[:500]}"
        problem = json.loads(text)
        types = ", ".join(gw.get(f"/models/{model}").json()["params"]["type"])
        assert problem["detail"] == case["detail"].format(model=model, types=types)
        assert (problem["status"], problem["model"]) == (case["status"], model)
        problems[model] = {k: v for k, v in problem.items() if k not in ("detail", "model", "request_id")}
    assert problems[PLUMBER] == problems[RPY2] == problems[PYTHON] == problems[ONNX]


def test_the_stack_describes_each_backend(gw: Stack) -> None:
    listed = {m["name"]: m for m in gw.get("/models").json()["models"]}
    assert {name: (m["backend"], m["language"], m["ready"]) for name, m in listed.items()} == {
        name: (config["backend"], LANGUAGES[config["backend"]], True)
        for name, config in MODELS.items()
    }
    inputs = {name: gw.get(f"/models/{name}").json()["inputs"] for name in MODELS}
    assert inputs[PLUMBER] == inputs[RPY2] == inputs[PYTHON] == inputs[ONNX]
    for family in FAMILY_NAMES:
        plumber, rpy2 = (gw.get(f"/models/{family}_{kind}").json() for kind in R_BACKENDS)
        assert {k: plumber[k] for k in ("inputs", "outputs", "params", "framework")} == {
            k: rpy2[k] for k in ("inputs", "outputs", "params", "framework")}
    assert gw.get("/readyz").status_code == 200


def family_cases(ok: bool) -> list[str]:
    return [case_id(case) for case in FAMILIES["cases"] if ("status" not in case) == ok]


def case_id(case: dict[str, Any]) -> str:
    one_row = " (one row)" if case["rows"].endswith("_one") else ""
    return f"{case['family']} {case.get('type', '(default)')}{one_row}"


FAMILY_CASES = {case_id(case): case for case in FAMILIES["cases"]}


def family_request(gw: Stack, case: dict[str, Any]) -> dict[str, Any]:
    """The case's rows, cut to the model's inputs (extra columns are refused), and its type."""
    inputs = [spec["name"] for spec in gw.get(f"/models/{case['family']}_plumber").json()["inputs"]]
    rows = [{name: row[name] for name in inputs} for row in FAMILIES["rows"][case["rows"]]]
    body: dict[str, Any] = {"instances": rows}
    if "type" in case:
        body["params"] = {"type": case["type"]}
    return body


@pytest.fixture(scope="module")
def r_own(gw: Stack, tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Any]]:
    """Case id → R's own predictions, all computed by one separate R."""
    names = family_cases(ok=True)
    store = gw.settings.store_path
    requests = [{"dir": str(store / f"{FAMILY_CASES[n]['family']}_plumber" / "1"),
                 "rows": FAMILIES["rows"][FAMILY_CASES[n]["rows"]], "r": FAMILY_CASES[n]["r"]} for n in names]
    return dict(zip(names, r_own_predictions(requests, tmp_path_factory.mktemp("own")), strict=True))


def largest_difference(got: list[Any], expected: list[Any]) -> float:
    """The largest absolute difference between two lists of predictions of the same shape;
    raises AssertionError where the shapes, keys or labels differ."""
    assert len(got) == len(expected)
    worst = 0.0
    for mine, theirs in zip(got, expected, strict=True):
        pairs = [(mine, theirs)]
        if isinstance(theirs, dict):
            assert isinstance(mine, dict) and list(mine) == list(theirs), (mine, theirs)
            pairs = [(mine[key], theirs[key]) for key in theirs]
        for a, b in pairs:
            if isinstance(b, str) or b is None:
                assert a == b
            else:
                assert isinstance(a, float) and isinstance(b, int | float), (a, b)
                worst = max(worst, abs(a - b))
    return worst


FAMILY_TABLE: list[tuple[str, str, str, float, float]] = []


def answer_shape(doc: dict[str, Any]) -> str:
    first = doc["predictions"][0]
    if isinstance(first, dict):
        keys = list(first)
        return f"objects {{{', '.join(keys[:3])}{', ...' if len(keys) > 3 else ''}}}"
    return "labels" if isinstance(first, str) else "numbers"


@pytest.mark.parametrize("name", family_cases(ok=True))
def test_family_predictions_are_r_own(gw: Stack, r_own: dict[str, list[Any]], name: str) -> None:
    case = FAMILY_CASES[name]
    raw, docs = {}, {}
    for kind in R_BACKENDS:
        reply = gw.post(f"/models/{case['family']}_{kind}/predict", json=family_request(gw, case), timeout=60)
        assert (reply.status_code, reply.headers["Content-Type"]) == (200, "application/json"), reply.text[:500]
        docs[kind] = reply.json()
        raw[kind] = json.loads(reply.text, parse_float=str)["predictions"]
    assert raw["plumber"] == raw["rpy2"]  # the same digits: the same doubles, bit for bit
    diffs = [largest_difference(docs[kind]["predictions"], r_own[name]) for kind in R_BACKENDS]
    FAMILY_TABLE.append((case["family"], name.split(" ", 1)[1], answer_shape(docs["plumber"]), *diffs))
    assert max(diffs) <= 1e-12


@pytest.mark.parametrize("name", family_cases(ok=False))
def test_family_errors(gw: Stack, name: str) -> None:
    case = FAMILY_CASES[name]
    for kind in R_BACKENDS:
        model = f"{case['family']}_{kind}"
        reply = gw.post(f"/models/{model}/predict", json=family_request(gw, case), timeout=60)
        assert (reply.status_code, reply.headers["Content-Type"]) == (case["status"], "application/problem+json")
        assert reply.json()["detail"] == case["detail"].format(model=model)


def test_family_table(capsys: pytest.CaptureFixture[str]) -> None:
    """Prints the families table (run with -s to see it); every family case must have run."""
    assert {f"{family} {kind}" for family, kind, *_ in FAMILY_TABLE} == set(family_cases(ok=True))
    with capsys.disabled():
        print("\n| family | params.type | answer per row | max abs diff plumber vs R's predict | rpy2 vs R |")
        print("|---|---|---|---|---|")
        for family, kind, shape_, plumber, rpy2 in FAMILY_TABLE:
            print(f"| {family} | {kind} | {shape_} | {plumber:.3g} | {rpy2:.3g} |")
