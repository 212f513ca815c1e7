"""The importers' mappings, with no stack and no R: MLflow signatures and vetiver-python
prototypes to our input schema, folder-board layout and versions, and what register prints."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from gateway.errors import ConfigError
from gateway.importers.mlflow import conform, read_model_dir, schema, signature_columns
from gateway.importers.pins import find_pin, import_pin, prototype_frame, python_vetiver_meta
from gateway.importers.summary import config_entry, summary
from gateway.meta import InputSpec, ModelMeta
from gateway.schema_infer import infer_inputs

# MLflow column type → (our type, the pandas dtype the column is rebuilt with)
SIGNATURE_TYPES = [
    ("double", "double", "float64"),
    ("float", "double", "float32"),
    ("long", "integer", "int64"),
    ("integer", "integer", "int32"),
    ("boolean", "logical", "bool"),
    ("string", "string", "object"),
    ("datetime", "datetime", "datetime64[ns]"),
]


@pytest.mark.parametrize(("mlflow_type", "ours", "dtype"), SIGNATURE_TYPES)
def test_each_mlflow_column_type_maps_to_ours(mlflow_type: str, ours: str, dtype: str) -> None:
    (column,) = signature_columns(json.dumps([{"type": mlflow_type, "name": "x", "required": True}]), "m")
    assert (column.name, column.type, column.pandas_dtype, column.required) == ("x", ours, dtype, True)


def test_an_example_is_conformed_to_the_signature_and_optional_columns_take_missing_values() -> None:
    columns = signature_columns([{"type": "long", "name": "n"}, {"type": "double", "name": "x", "required": False},
                                 {"type": "boolean", "name": "b"}, {"type": "string", "name": "s"},
                                 {"type": "datetime", "name": "t"}], "m")
    example = pd.DataFrame({"s": ["a"], "x": [1], "n": [2.0], "b": [True], "t": ["2024-01-31T12:00:00"],
                            "extra": [0]})
    frame = conform(example, columns, "m")
    assert list(frame.columns) == ["n", "x", "b", "s", "t"]  # the signature's order, its columns only
    specs = schema(frame, columns)
    assert [(s.name, s.type, s.nullable, s.pandas_dtype) for s in specs] == [
        ("n", "integer", False, "int64"), ("x", "double", True, "float64"), ("b", "logical", False, "bool"),
        ("s", "string", False, "object"), ("t", "datetime", False, "datetime64[ns]")]


def test_a_missing_value_in_an_integer_column_keeps_it_integer() -> None:
    columns = signature_columns([{"type": "long", "name": "n"}], "m")
    (spec,) = schema(conform(pd.DataFrame({"n": [1.0, None]}), columns, "m"), columns)
    assert (spec.type, spec.nullable, spec.pandas_dtype) == ("integer", True, "Int64")


@pytest.mark.parametrize(("inputs", "message"), [
    ([{"type": "tensor", "tensor-spec": {"dtype": "float64", "shape": [-1, 4]}}], "a tensor without a column name"),
    ([{"type": "binary", "name": "img"}], "input column 'img' has MLflow type 'binary'"),
])
def test_signatures_we_cannot_serve_are_named(inputs: list[dict[str, Any]], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        signature_columns(json.dumps(inputs), "runs:/abc/model")


def test_an_example_without_a_signature_column_is_refused() -> None:
    columns = signature_columns([{"type": "double", "name": "x"}, {"type": "double", "name": "y"}], "m")
    with pytest.raises(ConfigError, match="lacks the signature's column"):
        conform(pd.DataFrame({"x": [1.0]}), columns, "m")


def mlmodel(directory: Path, flavors: dict[str, Any], files: tuple[str, ...] = ()) -> Path:
    directory.mkdir()
    import yaml

    (directory / "MLmodel").write_text(yaml.safe_dump({"flavors": flavors}), encoding="utf-8")
    for name in files:
        (directory / name).write_bytes(b"x")
    return directory


def test_mlmodel_problems_are_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no MLmodel file"):
        read_model_dir(tmp_path, "m")
    pyfunc = mlmodel(tmp_path / "pyfunc", {"python_function": {"loader_module": "mine"}})
    with pytest.raises(ConfigError, match=r"flavor\(s\) python_function; the gateway imports the sklearn flavor only"):
        read_model_dir(pyfunc, "m")
    gone = mlmodel(tmp_path / "gone", {"sklearn": {"pickled_model": "model.pkl", "serialization_format": "pickle"}})
    with pytest.raises(ConfigError, match=r"model\.pkl named by MLmodel is missing"):
        read_model_dir(gone, "m")
    odd = mlmodel(tmp_path / "odd", {"sklearn": {"pickled_model": "m.x", "serialization_format": "onnx"}}, ("m.x",))
    with pytest.raises(ConfigError, match="serialization format 'onnx' is not supported"):
        read_model_dir(odd, "m")
    outside = mlmodel(tmp_path / "outside", {"sklearn": {"pickled_model": "../gone/MLmodel"}})
    with pytest.raises(ConfigError, match="is missing"):
        read_model_dir(outside, "m")


def test_a_pickled_flavor_is_read_as_joblib(tmp_path: Path) -> None:
    pickled = mlmodel(tmp_path / "p", {"sklearn": {"pickled_model": "model.pkl",
                                                   "serialization_format": "cloudpickle"}}, ("model.pkl",))
    assert read_model_dir(pickled, "m").fmt == "joblib"


@pytest.mark.parametrize(("prototype", "expected"), [
    ('{"a": 1, "b": 0.5, "c": "x", "d": true}', [("a", "integer"), ("b", "double"), ("c", "string"), ("d", "logical")]),
    ('{"a": 1.0, "b": 0.5}', [("a", "double"), ("b", "double")]),  # vetiver writes ints of a numeric frame so
])
def test_a_vetiver_python_prototype_becomes_the_schema(prototype: str, expected: list[tuple[str, str]]) -> None:
    frame = prototype_frame(prototype, "pin p")
    assert frame is not None
    assert [(spec.name, spec.type) for spec in infer_inputs(frame)] == expected


def test_a_prototype_value_we_cannot_serve_is_named() -> None:
    with pytest.raises(ConfigError, match="prototype column 'v' holds list"):
        prototype_frame('{"v": [1, 2]}', "pin p")
    assert prototype_frame(None, "pin p") is None


def test_old_and_new_vetiver_python_metadata() -> None:
    new = {"user": {}, "vetiver_meta": {"prototype": '{"a": 1}', "required_pkgs": ["scikit-learn"]}}
    old = {"required_pkgs": ["scikit-learn"], "ptype": '{"a": 1}'}
    assert python_vetiver_meta(new) == python_vetiver_meta(old) == ('{"a": 1}', ["scikit-learn"])
    assert python_vetiver_meta({}) == (None, [])


def pin(board: Path, name: str, version: str, file: str | None = None) -> None:
    directory = board / name / version
    directory.mkdir(parents=True)
    (directory / f"{name}.rds").write_bytes(b"x")
    (directory / "data.txt").write_text(f"file: {file or name + '.rds'}\ntype: rds\napi_version: 1\n", encoding="utf-8")


def test_folder_board_versions_newest_last_and_the_errors(tmp_path: Path) -> None:
    pin(tmp_path, "m", "20240102T000000Z-bbbbb")
    pin(tmp_path, "m", "20240101T000000Z-aaaaa")
    pin(tmp_path, "broken", "20240101T000000Z-ccccc", file="elsewhere.rds")
    assert find_pin(tmp_path, "m").version == "20240102T000000Z-bbbbb"
    assert find_pin(tmp_path, "m@20240101T000000Z-aaaaa").file.name == "m.rds"
    with pytest.raises(ConfigError, match=r"pin .x. not found on board .*; its pins: broken, m"):
        find_pin(tmp_path, "x")
    with pytest.raises(ConfigError, match=r"no version .v9. .*its versions: 20240101T000000Z-aaaaa, 20240102T"):
        find_pin(tmp_path, "m@v9")
    with pytest.raises(ConfigError, match=r"names the file .elsewhere\.rds., which is not in"):
        find_pin(tmp_path, "broken")
    with pytest.raises(ConfigError, match="is not a directory"):
        find_pin(tmp_path / "nothing", "m")
    with pytest.raises(ConfigError, match="expected a pin name"):
        find_pin(tmp_path, "../m")


def meta(language: str, fmt: str, **extra: Any) -> ModelMeta:
    return ModelMeta(name="churn-v2", version="3", language=language, format=fmt, artefact=f"model.{fmt}",  # type: ignore[arg-type]
                     inputs=(InputSpec("plan", "factor", ("basic", "pro"), False), InputSpec("amount", "double")),
                     outputs={"kind": "classification", "classes": ["no", "yes"]}, sha256="ab" * 32,
                     created_at="", framework=extra)


@pytest.mark.parametrize(("language", "fmt", "expected"), [
    ("python", "skops", {"backend": "python", "version": "latest"}),
    ("python", "joblib", {"backend": "python", "version": "latest", "trusted": True}),
    ("python", "onnx", {"backend": "onnx", "version": "latest"}),
    ("r", "rds", {"backend": "plumber", "version": "latest"}),
])
def test_the_printed_config_entry_is_toml_that_serves_it(language: str, fmt: str, expected: dict[str, Any]) -> None:
    parsed = tomllib.loads("\n".join(config_entry(meta(language, fmt))))
    assert parsed == {"models": {"churn-v2": expected}}


def test_the_summary_names_inputs_packages_and_sha256() -> None:
    text = summary(meta("r", "rds", r="4.2.2", packages={"rpart": "4.1.19"}))
    assert "  plan: factor levels basic, pro\n  amount: double (nullable)\n" in text
    assert "packages: rpart 4.1.19\n" in text
    assert f"sha256: {'ab' * 32}\n" in text


def test_a_python_pin_needing_a_package_not_installed_and_a_pin_that_is_not_a_model(tmp_path: Path) -> None:
    directory = tmp_path / "board" / "m" / "20240101T000000Z-aaaaa"
    directory.mkdir(parents=True)
    (directory / "m.joblib").write_bytes(b"never loaded")
    (directory / "data.txt").write_text(
        "file: m.joblib\ntype: joblib\nuser:\n  vetiver_meta:\n    prototype: '{\"a\": 1}'\n"
        "    required_pkgs: [scikit-learn, notapkg]\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="needs the Python package 'notapkg', which is not installed here"):
        import_pin(tmp_path / "store", "m", tmp_path / "board", "m", trust=True)
    (directory / "data.txt").write_text("file: m.joblib\ntype: csv\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="pin type 'csv' is not a vetiver model"):
        import_pin(tmp_path / "store", "m", tmp_path / "board", "m")
    assert not (tmp_path / "store").exists()
