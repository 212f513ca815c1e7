"""The model store and registration: immutable numbered versions, a model.json inferred from a sample."""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import pytest
import sklearn
import skops.io as sio
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_iris
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder

from gateway.cli import main
from gateway.codecs import Table, validate_table
from gateway.errors import ConfigError
from gateway.paths import REPO_ROOT
from gateway.register import register_model
from gateway.store import ModelStore, sha256_of

# ---------------------------------------------------------------- helpers


def mixed_frame(n: int = 40) -> tuple[pd.DataFrame, pd.Series]:
    """One column of every dtype a Python user brings, and a two-class target."""
    rng = np.random.default_rng(3)
    frame = pd.DataFrame(
        {
            "amount": rng.uniform(0, 100, n),
            "count": rng.integers(0, 10, n).astype("int64"),
            "plan": pd.Categorical(rng.choice(["basic", "pro"], n), categories=["basic", "pro"]),
            "city": rng.choice(["oslo", "lima", "pune"], n).astype(object),
            "active": rng.choice([True, False], n),
        }
    )
    target = pd.Series(np.where(frame["amount"] > 50, "high", "low"))
    return frame, target


def mixed_classifier() -> tuple[Any, pd.DataFrame]:
    frame, target = mixed_frame()
    encode = ColumnTransformer(
        [("cat", OneHotEncoder(handle_unknown="ignore"), ["plan", "city"])],
        remainder="passthrough",
    )
    return make_pipeline(encode, LogisticRegression(max_iter=500)).fit(frame, target), frame


def iris_frame() -> tuple[pd.DataFrame, pd.Series]:
    data = load_iris(as_frame=True)
    frame = data.frame.drop(columns="target")
    frame.columns = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    return frame, data.target.map(dict(enumerate(data.target_names)))


def iris_classifier() -> tuple[LogisticRegression, pd.DataFrame]:
    frame, labels = iris_frame()
    return LogisticRegression(max_iter=1000).fit(frame, labels), frame


def read_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def write_meta_only(store: Path, name: str, version: str) -> None:
    """A version directory that versions() counts (it needs only model.json)."""
    directory = store / name / version
    directory.mkdir(parents=True)
    (directory / "model.json").write_text("{}", encoding="utf-8")


def write_config(tmp_path: Path) -> Path:
    config = tmp_path / "gateway.toml"
    config.write_text('[store]\npath = "store"\n[server]\nrun_dir = "run"\n', encoding="utf-8")
    return config


def rscript(code: str, cwd: Path) -> None:
    env = {**os.environ, "R_LIBS": str(REPO_ROOT / ".rlib")}
    subprocess.run(["Rscript", "-e", code], cwd=cwd, env=env, check=True, capture_output=True, text=True)


# ---------------------------------------------------------------- register_model


def test_each_registration_is_a_new_immutable_version(tmp_path: Path) -> None:
    model, frame = iris_classifier()
    store = tmp_path / "store"
    assert register_model(model, "iris", frame, store=store) == "1"
    first = store / "iris" / "1"
    before = {p.name: p.read_bytes() for p in first.iterdir()}
    assert register_model(model, "iris", frame, store=store) == "2"
    assert (store / "iris" / "2" / "model.json").is_file()
    assert {p.name: p.read_bytes() for p in first.iterdir()} == before  # version 1 untouched
    assert read_json(store / "iris" / "2" / "model.json")["version"] == "2"
    assert ModelStore(store).versions("iris") == ["1", "2"]
    assert not [p for p in (store / "iris").iterdir() if p.name.startswith(".")]  # no scratch left


def test_model_json_infers_every_input_type_from_the_sample(tmp_path: Path) -> None:
    model, frame = mixed_classifier()
    version = register_model(model, "mixed", frame, store=tmp_path, description="all the dtypes")
    meta = read_json(tmp_path / "mixed" / version / "model.json")
    inputs = {col["name"]: col for col in meta["inputs"]}
    assert [col["name"] for col in meta["inputs"]] == list(frame.columns)
    assert {name: col["type"] for name, col in inputs.items()} == {
        "amount": "double",
        "count": "integer",
        "plan": "factor",
        "city": "string",
        "active": "logical",
    }
    assert inputs["plan"]["levels"] == list(frame["plan"].cat.categories)
    assert inputs["plan"]["pandas_dtype"] == "category"
    assert inputs["amount"]["levels"] is None and inputs["city"]["levels"] is None
    assert all(col["nullable"] is False for col in meta["inputs"])
    assert meta["description"] == "all the dtypes"
    assert meta["name"] == "mixed" and meta["language"] == "python"


def test_a_column_with_missing_values_is_nullable(tmp_path: Path) -> None:
    frame, target = iris_frame()
    frame = frame.copy()
    frame.loc[3, "petal_width"] = np.nan
    model = make_pipeline(
        ColumnTransformer([("fill", "drop", ["petal_width"])], remainder="passthrough"), LinearRegression()
    ).fit(frame, (target == "setosa").astype(float))
    version = register_model(model, "gaps", frame, store=tmp_path)
    inputs = {c["name"]: c for c in read_json(tmp_path / "gaps" / version / "model.json")["inputs"]}
    assert inputs["petal_width"]["nullable"] is True
    assert inputs["sepal_length"]["nullable"] is False
    assert read_json(tmp_path / "gaps" / version / "model.json")["outputs"] == {
        "kind": "regression",
        "type": "double",
        "classes": None,
        "methods": ["response"],
    }


def test_a_classifier_records_its_classes_sha256_and_framework(tmp_path: Path) -> None:
    model, frame = iris_classifier()
    version = register_model(model, "iris", frame, store=tmp_path)
    directory = tmp_path / "iris" / version
    meta = read_json(directory / "model.json")
    assert meta["outputs"] == {"kind": "classification", "type": "string", "classes": list(model.classes_),
                               "methods": ["response", "prob", "log_prob", "decision"]}
    assert meta["format"] == "skops" and meta["artefact"] == "model.skops"
    assert meta["sha256"] == sha256_of(directory / "model.skops")
    assert meta["framework"]["python"] == platform.python_version()
    assert meta["framework"]["sklearn"] == sklearn.__version__
    reloaded = sio.load(directory / "model.skops", trusted=sio.get_untrusted_types(file=directory / "model.skops"))
    assert reloaded.predict(frame).tolist() == model.predict(frame).tolist()


def test_joblib_format_writes_a_joblib_artefact(tmp_path: Path) -> None:
    model, frame = iris_classifier()
    version = register_model(model, "iris", frame, store=tmp_path, fmt="joblib")
    meta = read_json(tmp_path / "iris" / version / "model.json")
    assert (meta["format"], meta["artefact"]) == ("joblib", "model.joblib")
    assert meta["sha256"] == sha256_of(tmp_path / "iris" / version / "model.joblib")


def test_an_unknown_format_is_refused_before_writing(tmp_path: Path) -> None:
    model, frame = iris_classifier()
    with pytest.raises(ValueError, match="'pickle'"):
        register_model(model, "iris", frame, store=tmp_path, fmt="pickle")
    assert not (tmp_path / "iris").exists()


def test_a_model_that_cannot_predict_its_sample_is_not_stored(tmp_path: Path) -> None:
    model, frame = iris_classifier()
    with pytest.raises(ValueError):
        register_model(model, "iris", frame.drop(columns="petal_width"), store=tmp_path)
    assert ModelStore(tmp_path).versions("iris") == []


# ---------------------------------------------------------------- ModelStore


def test_latest_is_the_numerically_highest_version(tmp_path: Path) -> None:
    for version in ("2", "9", "10"):
        write_meta_only(tmp_path, "m", version)
    store = ModelStore(tmp_path)
    assert store.versions("m") == ["2", "9", "10"]
    assert store.resolve("m") == "10"
    assert store.resolve("m", "9") == "9"


def test_the_next_version_follows_the_numerically_highest(tmp_path: Path) -> None:
    write_meta_only(tmp_path, "iris", "9")
    model, frame = iris_classifier()
    assert register_model(model, "iris", frame, store=tmp_path) == "10"
    assert ModelStore(tmp_path).resolve("iris") == "10"


def test_directories_without_model_json_are_not_versions(tmp_path: Path) -> None:
    write_meta_only(tmp_path, "m", "1")
    (tmp_path / "m" / "2").mkdir()  # half-written or foreign
    (tmp_path / "m" / ".3-tmp").mkdir()
    assert ModelStore(tmp_path).versions("m") == ["1"]
    assert ModelStore(tmp_path).resolve("m") == "1"


def test_an_unknown_version_lists_the_stored_ones(tmp_path: Path) -> None:
    for version in ("1", "2"):
        write_meta_only(tmp_path, "m", version)
    with pytest.raises(ConfigError) as info:
        ModelStore(tmp_path).resolve("m", "7")
    assert "'7'" in str(info.value)
    assert "stored: 1, 2" in str(info.value)


def test_a_model_with_no_versions_says_how_to_register(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="gateway register ghost PATH"):
        ModelStore(tmp_path).resolve("ghost")


def test_read_meta_with_a_missing_artefact_is_a_config_error(tmp_path: Path) -> None:
    model, frame = iris_classifier()
    version = register_model(model, "iris", frame, store=tmp_path)
    store = ModelStore(tmp_path)
    assert store.read_meta("iris", version).artefact == "model.skops"
    (store.version_dir("iris", version) / "model.skops").unlink()
    with pytest.raises(ConfigError) as info:
        store.read_meta("iris", version)
    assert "missing" in str(info.value)
    assert str(store.version_dir("iris", version) / "model.skops") in str(info.value)


def test_read_meta_with_broken_json_is_a_config_error(tmp_path: Path) -> None:
    write_meta_only(tmp_path, "m", "1")
    (tmp_path / "m" / "1" / "model.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(ConfigError, match="unreadable model metadata"):
        ModelStore(tmp_path).read_meta("m", "1")


# ---------------------------------------------------------------- `gateway register`


def test_cli_registers_a_skops_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model, frame = iris_classifier()
    sio.dump(model, tmp_path / "iris.skops")
    frame.head(20).to_csv(tmp_path / "sample.csv", index=False)
    config = write_config(tmp_path)
    argv = ["--config", str(config), "register", "iris", str(tmp_path / "iris.skops"), "--sample",
            str(tmp_path / "sample.csv"), "--description", "from a file"]
    assert main(argv) == 0
    assert "registered iris version 1" in capsys.readouterr().out
    directory = tmp_path / "store" / "iris" / "1"
    meta = read_json(directory / "model.json")
    assert meta["format"] == "skops" and meta["language"] == "python"
    assert meta["description"] == "from a file"
    assert [c["name"] for c in meta["inputs"]] == list(frame.columns)
    assert {c["type"] for c in meta["inputs"]} == {"double"}
    assert meta["outputs"]["classes"] == list(model.classes_)
    assert meta["sha256"] == sha256_of(directory / "model.skops") == sha256_of(tmp_path / "iris.skops")
    assert main(argv) == 0  # a second registration is a second version
    assert ModelStore(tmp_path / "store").versions("iris") == ["1", "2"]


def test_cli_registers_a_joblib_file(tmp_path: Path) -> None:
    frame, labels = iris_frame()
    model = LinearRegression().fit(frame, (labels == "virginica").astype(float))
    joblib.dump(model, tmp_path / "reg.joblib")
    frame.to_csv(tmp_path / "sample.csv", index=False)
    config = write_config(tmp_path)
    argv = ["--config", str(config), "register", "reg", str(tmp_path / "reg.joblib"), "--sample",
            str(tmp_path / "sample.csv")]
    assert main(argv) == 2  # a pickle runs code as it loads: only with --trust
    assert main([*argv, "--trust"]) == 0
    directory = tmp_path / "store" / "reg" / "1"
    meta = read_json(directory / "model.json")
    assert (meta["format"], meta["artefact"]) == ("joblib", "model.joblib")
    assert meta["outputs"] == {"kind": "regression", "type": "double", "classes": None, "methods": ["response"]}
    assert meta["sha256"] == sha256_of(directory / "model.joblib") == sha256_of(tmp_path / "reg.joblib")


def test_cli_registers_an_r_rds_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rscript('saveRDS(lm(mpg ~ wt + hp, mtcars), "m.rds"); '
            'utils::write.csv(mtcars[c("wt", "hp")], "sample.csv", row.names = FALSE)', cwd=tmp_path)
    config = write_config(tmp_path)
    argv = ["--config", str(config), "register", "mtcars", str(tmp_path / "m.rds"), "--sample",
            str(tmp_path / "sample.csv")]
    assert main(argv) == 0
    assert "registered mtcars version 1" in capsys.readouterr().out
    directory = tmp_path / "store" / "mtcars" / "1"
    meta = read_json(directory / "model.json")
    assert (meta["language"], meta["format"], meta["name"], meta["version"]) == ("r", "rds", "mtcars", "1")
    assert [(c["name"], c["type"]) for c in meta["inputs"]] == [("wt", "double"), ("hp", "double")]
    assert meta["sha256"] == sha256_of(directory / meta["artefact"])
    stored = ModelStore(tmp_path / "store").read_meta("mtcars", "1")
    # R wrote hp (a double) as whole numbers; the schema must still accept a fractional hp.
    table = validate_table(Table.from_records([{"wt": 2.5, "hp": 110.5}]), stored.inputs, "mtcars")
    assert table.columns == {"wt": [2.5], "hp": [110.5]}


def test_cli_registers_a_randomforest_rds_with_the_package_it_needs(tmp_path: Path) -> None:
    # A fresh R wrote the .rds; the R that registers it has not attached randomForest. The sample
    # is write.csv's default: row names first, and the target column, left out with --target.
    rscript('cars <- mtcars; cars$am <- factor(ifelse(cars$am == 1, "manual", "auto")); set.seed(1); '
            'saveRDS(randomForest::randomForest(am ~ wt + hp, data = cars, ntree = 20), "rf.rds"); '
            'utils::write.csv(cars[c("am", "wt", "hp")], "sample.csv")', cwd=tmp_path)
    config = write_config(tmp_path)
    argv = ["--config", str(config), "register", "transmission", str(tmp_path / "rf.rds"), "--sample",
            str(tmp_path / "sample.csv"), "--target", "am"]
    assert main(argv) == 0
    meta = read_json(tmp_path / "store" / "transmission" / "1" / "model.json")
    assert list(meta["framework"]["packages"]) == ["randomForest"]
    assert [c["name"] for c in meta["inputs"]] == ["wt", "hp"]
    assert meta["outputs"] == {"kind": "classification", "classes": ["auto", "manual"],
                               "methods": ["response", "prob", "vote", "class"], "default_method": "response",
                               "method_aliases": []}


@pytest.mark.parametrize(("sample", "target", "message"), [
    ('mtcars["wt"]', None, "gateway: config error: cannot register m.rds as 'economy': model 'economy' cannot "
                           "predict on the first 5 rows of its sample: object 'hp' not found"),
    ('mtcars[c("mpg", "wt", "hp")]', None,
     "gateway: config error: cannot register m.rds as 'economy': the sample of model 'economy' holds column "
     "'mpg', the response of the model's formula (mpg ~ wt + hp); a sample holds the predictors only: leave it "
     'out with target = "mpg" (gateway register --target mpg)'),
    ('mtcars[c("wt", "hp")]', "price",
     "gateway: config error: cannot register m.rds as 'economy': target \"price\" is not a column of the "
     "sample (columns: wt, hp)"),
])
def test_cli_refuses_an_rds_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], sample: str, target: str | None, message: str
) -> None:
    rscript(f'saveRDS(lm(mpg ~ wt + hp, mtcars), "m.rds"); utils::write.csv({sample}, "s.csv", row.names = FALSE)',
            cwd=tmp_path)
    config = write_config(tmp_path)
    argv = ["--config", str(config), "register", "economy", str(tmp_path / "m.rds"), "--sample",
            str(tmp_path / "s.csv"), *(["--target", target] if target else [])]
    assert main(argv) == 2
    assert capsys.readouterr().err == message + "\n"
    assert not (tmp_path / "store" / "economy").exists() or not ModelStore(tmp_path / "store").versions("economy")


def test_cli_registers_a_plumber_script_with_the_files_beside_it(tmp_path: Path) -> None:
    source = tmp_path / "cars"
    shutil.copytree(REPO_ROOT / "plumber" / "cars", source)
    config = write_config(tmp_path)
    assert main(["--config", str(config), "register", "cars", str(source / "plumber.R")]) == 0
    directory = tmp_path / "store" / "cars" / "1"
    assert (directory / "plumber.R").read_bytes() == (source / "plumber.R").read_bytes()
    assert (directory / "coefficients.csv").read_bytes() == (source / "coefficients.csv").read_bytes()
    meta = read_json(directory / "model.json")
    assert (meta["language"], meta["format"], meta["artefact"]) == ("r", "plumber", "plumber.R")
    assert meta["inputs"] == []
    assert meta["sha256"] == sha256_of(directory / "plumber.R")


def test_cli_registers_a_script_that_sits_beside_the_store(tmp_path: Path) -> None:
    # The default layout: gateway.toml, plumber.R, its data and store/ in one directory.
    for entry in (REPO_ROOT / "plumber" / "cars").iterdir():
        shutil.copy2(entry, tmp_path / entry.name)
    config = write_config(tmp_path)
    argv = ["--config", str(config), "register", "cars", str(tmp_path / "plumber.R")]
    assert main(argv) == 0
    assert main(argv) == 0  # now the store holds a version: it must not be copied into the next
    second = tmp_path / "store" / "cars" / "2"
    expected = {p.name for p in (REPO_ROOT / "plumber" / "cars").iterdir()} | {"gateway.toml", "model.json"}
    assert {p.name for p in second.iterdir()} == expected


def test_cli_without_a_sample_for_skops_is_exit_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model, _ = iris_classifier()
    sio.dump(model, tmp_path / "iris.skops")
    config = write_config(tmp_path)
    assert main(["--config", str(config), "register", "iris", str(tmp_path / "iris.skops")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "--sample" in err and "iris.skops" in err
    assert not (tmp_path / "store" / "iris").exists()


def test_cli_refuses_an_unknown_artefact_type(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "model.pt").write_bytes(b"\0")
    assert main(["--config", str(write_config(tmp_path)), "register", "m", str(tmp_path / "model.pt")]) == 2
    assert "unknown artefact type" in capsys.readouterr().err
