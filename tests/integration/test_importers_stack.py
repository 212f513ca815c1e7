"""Models brought from where users keep them, served by one real stack.

Sources: an MLflow model directory (skops, as mlflow.sklearn.save_model writes it by default, and
a cloudpickled one registered with --trust), `runs:/` and `models:/` URIs resolved through a local
mlruns file store, vetiver pins on folder boards made by R (layout written by
tests/data/vetiver_r_pins.R: neither vetiver nor pins is in Debian) and by Python (vetiver and
pins themselves). Each is registered with `gateway register`, and the stack serves the `[models]`
entries that command printed.
"""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import tomllib
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LinearRegression, LogisticRegression

from gateway.cli import main
from gateway.paths import REPO_ROOT
from tests.clients import vetiver
from tests.integration.conftest import Stack, start_stack
from tests.integration.r_models import r_env

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import mlflow
    import mlflow.sklearn
    import pins

R_PINS = ["cars_lm", "iris_rpart"]


def iris() -> tuple[pd.DataFrame, pd.Series]:
    frame, target = load_iris(return_X_y=True, as_frame=True)
    frame.columns = ["sl", "sw", "pl", "pw"]
    return frame, target


def spend() -> tuple[pd.DataFrame, pd.Series]:
    """A double, an integer and a boolean column: the MLflow types our schema maps."""
    rng = np.random.default_rng(5)
    frame = pd.DataFrame({"amount": rng.uniform(0, 100, 60), "visits": rng.integers(0, 9, 60).astype("int64"),
                          "member": rng.choice([True, False], 60)})
    return frame, frame["amount"] * 0.3 + frame["visits"] * 2.0 + frame["member"] * 5.0


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("sources")
    X, y = iris()
    classifier = LogisticRegression(max_iter=500).fit(X, y)
    S, s = spend()
    regressor = LinearRegression().fit(S, s)
    mlruns = root / "mlruns"
    with pytest.MonkeyPatch.context() as env, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # mlflow's hints about integer columns, pydantic's in vetiver
        env.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 writes a file store only when told
        mlflow.sklearn.save_model(regressor, str(root / "spend_skops"), input_example=S.head(4))
        mlflow.sklearn.save_model(classifier, str(root / "iris_pickle"), input_example=X.head(3),
                                  serialization_format="cloudpickle")
        mlflow.set_tracking_uri(mlruns.as_uri())
        with mlflow.start_run() as run:
            mlflow.sklearn.log_model(classifier, name="model", input_example=X.head(3),
                                     registered_model_name="iris_clf")
        mlflow.set_tracking_uri(None)
        py_board = root / "py_board"
        board = pins.board_folder(str(py_board), versioned=True, allow_pickle_read=True)
        linear = LinearRegression().fit(S[["amount", "visits"]], s)
        with contextlib.redirect_stderr(io.StringIO()):  # vetiver's model-card nudge
            vetiver.vetiver_pin_write(board, vetiver.VetiverModel(linear, "spend_lm",
                                                                  prototype_data=S[["amount", "visits"]]))
    r_board = root / "r_board"
    subprocess.run(["Rscript", str(REPO_ROOT / "tests" / "data" / "vetiver_r_pins.R"), str(r_board)], env=r_env(),
                   check=True, capture_output=True, timeout=120)
    yield {"root": root, "mlruns": mlruns, "run_id": run.info.run_id, "r_board": r_board, "py_board": py_board,
           "estimators": {"spend_dir": (regressor, S), "iris_pickle": (classifier, X), "iris_run": (classifier, X),
                          "iris_registry": (classifier, X), "spend_pin": (linear, S[["amount", "visits"]])}}


def register(config: Path, *argv: str, tracking: Path | None = None) -> tuple[int, str, str]:
    """`gateway register ...` in this process: exit status, stdout, stderr."""
    out, err = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as env, contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        if tracking is not None:
            env.setenv("MLFLOW_TRACKING_URI", str(tracking))
        status = main(["--config", str(config), "register", *argv])
    return status, out.getvalue(), err.getvalue()


def entry(printed: str) -> dict[str, Any]:
    """The `[models.NAME]` table `gateway register` printed, parsed as TOML."""
    snippet = printed.split("add to gateway.toml:", 1)[1]
    return tomllib.loads(snippet)["models"]


@pytest.fixture(scope="module")
def imported(sources: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Every source registered through the CLI: name → (printed output, its [models] table)."""
    directory = tmp_path_factory.mktemp("importers")
    config = directory / "gateway.toml"
    config.write_text('[store]\npath = "store"\n', encoding="utf-8")
    root = sources["root"]
    commands = {
        "spend_dir": ([str(root / "spend_skops" / "MLmodel")], None),  # the file, or its directory
        "iris_pickle": ([str(root / "iris_pickle"), "--trust"], None),
        "iris_run": ([f"runs:/{sources['run_id']}/model"], sources["mlruns"]),
        "iris_registry": (["models:/iris_clf/1"], sources["mlruns"]),
        "spend_pin": (["--pins-board", str(sources["py_board"]), "--pin", "spend_lm", "--trust"], None),
        "cars_lm": (["--pins-board", str(sources["r_board"]), "--pin", "cars_lm"], None),
        "iris_rpart": (["--pins-board", str(sources["r_board"]), "--pin", "iris_rpart"], None),
    }
    done: dict[str, Any] = {"config": config, "store": directory / "store", "printed": {}, "models": {}}
    for name, (argv, tracking) in commands.items():
        status, out, err = register(config, name, *argv, tracking=tracking)
        assert status == 0, err
        done["printed"][name] = out
        done["models"].update(entry(out))
    return done


@pytest.fixture(scope="module")
def gw(imported: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    models = {name: {**table, **({"workers": 1} if table["backend"] == "plumber" else {})}
              for name, table in imported["models"].items()}
    with start_stack(tmp_path_factory.mktemp("importstack"), models, store=imported["store"]) as running:
        yield running


def test_register_prints_the_schema_packages_sha256_and_a_config_entry(imported: dict[str, Any]) -> None:
    store = imported["store"]
    printed = imported["printed"]["spend_dir"]
    meta = json.loads((store / "spend_dir" / "1" / "model.json").read_text(encoding="utf-8"))
    assert "  amount: double\n  visits: integer\n  member: logical\n" in printed
    assert f"sha256: {meta['sha256']}" in printed
    assert imported["models"]["spend_dir"] == {"backend": "python", "version": "latest"}
    assert imported["models"]["iris_pickle"] == {"backend": "python", "version": "latest", "trusted": True}
    assert imported["models"]["cars_lm"] == {"backend": "plumber", "version": "latest"}
    assert "packages: rpart " in imported["printed"]["iris_rpart"]


def test_mlflow_signature_and_example_become_the_schema(imported: dict[str, Any]) -> None:
    store = imported["store"]
    meta = json.loads((store / "spend_dir" / "1" / "model.json").read_text(encoding="utf-8"))
    assert [(c["name"], c["type"], c["pandas_dtype"]) for c in meta["inputs"]] == [
        ("amount", "double", "float64"), ("visits", "integer", "int64"), ("member", "logical", "bool")]
    assert meta["format"] == "skops"  # mlflow's skops file, copied as is
    for name in ("iris_pickle", "iris_run", "iris_registry"):
        meta = json.loads((store / name / "1" / "model.json").read_text(encoding="utf-8"))
        assert [c["name"] for c in meta["inputs"]] == ["sl", "sw", "pl", "pw"]
        assert meta["outputs"]["classes"] == [0, 1, 2]


def test_vetiver_prototypes_and_required_packages(imported: dict[str, Any]) -> None:
    store = imported["store"]
    cars = json.loads((store / "cars_lm" / "1" / "model.json").read_text(encoding="utf-8"))
    assert [(c["name"], c["type"], c["levels"]) for c in cars["inputs"]] == [
        ("wt", "double", None), ("hp", "double", None), ("cyl", "integer", None), ("am", "factor", ["auto", "manual"])]
    tree = json.loads((store / "iris_rpart" / "1" / "model.json").read_text(encoding="utf-8"))
    assert list(tree["framework"]["packages"]) == ["rpart"]
    py = json.loads((store / "spend_pin" / "1" / "model.json").read_text(encoding="utf-8"))
    assert [(c["name"], c["type"]) for c in py["inputs"]] == [("amount", "double"), ("visits", "double")]
    assert "scikit-learn" in py["framework"]


@pytest.mark.parametrize("name", ["spend_dir", "iris_pickle", "iris_run", "iris_registry", "spend_pin"])
def test_imported_python_models_answer_as_they_do_locally(gw: Stack, sources: dict[str, Any], name: str) -> None:
    estimator, frame = sources["estimators"][name]
    rows = frame.head(5)
    body = json.loads(rows.to_json(orient="records", double_precision=15))
    reply = gw.post(f"/models/{name}/predict", json=body)
    assert reply.status_code == 200, reply.text
    assert reply.json()["predictions"] == pytest.approx(np.asarray(estimator.predict(rows)).tolist(), rel=1e-9)


_PINNED_PREDICT = r"""
args <- commandArgs(TRUE)
model <- readRDS(args[1])$model
rows <- jsonlite::fromJSON(args[2])
if (!is.null(rows$am)) rows$am <- factor(rows$am, levels = c("auto", "manual"))
out <- predict(model, rows)
if (is.matrix(out)) out <- colnames(out)[max.col(out, ties.method = "first")]
cat(if (is.numeric(out)) sprintf("%.17g", unname(out)) else as.character(out), sep = "\n")
"""


def test_imported_r_pins_answer_as_the_pinned_model_does(gw: Stack, sources: dict[str, Any]) -> None:
    cases = {
        "cars_lm": ([{"wt": 2.62, "hp": 110, "cyl": 6, "am": "manual"},
                     {"wt": 3.57, "hp": 245, "cyl": 8, "am": "auto"}], "20240102T000000Z-3c4d5"),
        "iris_rpart": ([{"Sepal.Length": 5.1, "Sepal.Width": 3.5, "Petal.Length": 1.4, "Petal.Width": 0.2},
                        {"Sepal.Length": 6.7, "Sepal.Width": 3.0, "Petal.Length": 5.2, "Petal.Width": 2.3}],
                       "20240103T000000Z-6e7f8"),
    }
    for name, (rows, version) in cases.items():
        pinned = sources["r_board"] / name / version / f"{name}.rds"
        result = subprocess.run(["Rscript", "-e", _PINNED_PREDICT, str(pinned), json.dumps(rows)], env=r_env(),
                                capture_output=True, text=True, check=True, timeout=60)
        reply = gw.post(f"/models/{name}/predict", json=rows)
        assert reply.status_code == 200, reply.text
        predictions = reply.json()["predictions"]
        if name == "cars_lm":
            assert predictions == pytest.approx([float(v) for v in result.stdout.split()], rel=1e-12)
        else:  # rpart's default predict is the probability matrix: its argmax is the class R picks
            assert [max(p, key=p.get) for p in predictions] == result.stdout.split()


def test_a_pinned_version_and_the_newest_one(sources: dict[str, Any], tmp_path: Path) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text('[store]\npath = "store"\n', encoding="utf-8")
    status, out, err = register(config, "cars", "--pins-board", str(sources["r_board"]), "--pin",
                                "cars_lm@20240101T000000Z-0a1b2")
    assert status == 0, err
    assert "inputs:\n  wt: double\noutputs" in out  # a prototype with example rows: they are the sample


def test_every_r_prototype_column_class_maps_to_an_input_type(sources: dict[str, Any], tmp_path: Path) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text('[store]\npath = "store"\n', encoding="utf-8")
    status, _, err = register(config, "types", "--pins-board", str(sources["r_board"]), "--pin", "all_types")
    assert status == 0, err
    meta = json.loads((tmp_path / "store" / "types" / "1" / "model.json").read_text(encoding="utf-8"))
    assert [(c["name"], c["type"], c["levels"]) for c in meta["inputs"]] == [
        ("when", "date", None), ("at", "datetime", None), ("ok", "logical", None), ("city", "string", None),
        ("n", "integer", None), ("x", "double", None), ("level", "factor", ["a", "b"])]
    assert meta["description"] == "(from pin all_types@20240104T000000Z-2c3d4)"


@pytest.mark.parametrize(("argv", "tracking", "message"), [
    (["{root}/iris_pickle"], None, "the model is pickled (model.pkl)"),
    (["{root}"], None, "nor an MLmodel file"),
    (["runs:/0123456789abcdef/model"], "mlruns", "Run '0123456789abcdef' not found"),
    (["models:/iris_clf/7"], "mlruns", "Model Version (name=iris_clf, version=7) not found"),
    (["runs:/0123456789abcdef/model"], None, "set MLFLOW_TRACKING_URI"),
    (["--pins-board", "{r_board}", "--pin", "nope"], None, "pin 'nope' not found on board"),
    (["--pins-board", "{r_board}", "--pin", "cars_lm@20990101T000000Z-fffff"], None,
     "its versions: 20240101T000000Z-0a1b2, 20240102T000000Z-3c4d5"),
    (["--pins-board", "{r_board}", "--pin", "old_ranger"], None, "needs the R package(s) ranger, not installed here"),
    (["--pins-board", "{py_board}", "--pin", "spend_lm"], None, "register again with --trust"),
])
def test_import_errors_name_the_problem(sources: dict[str, Any], tmp_path: Path, argv: list[str],
                                        tracking: str | None, message: str) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text('[store]\npath = "store"\n', encoding="utf-8")
    paths = {"root": sources["root"], "r_board": sources["r_board"], "py_board": sources["py_board"]}
    argv = [arg.format(**paths) for arg in argv]
    with pytest.MonkeyPatch.context() as env:
        env.delenv("MLFLOW_TRACKING_URI", raising=False)
        status, _, err = register(config, "bad", *argv, tracking=sources["mlruns"] if tracking else None)
    assert status == 2, err
    assert message in err
    assert not (tmp_path / "store" / "bad").exists()
