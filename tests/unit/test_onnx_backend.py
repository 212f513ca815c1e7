"""backend = "onnx": register_model(..., fmt="onnx") then the registry serves it with ONNX Runtime,
equal to the estimator's own predict within float32 rounding."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_iris
from sklearn.ensemble import RandomForestRegressor
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder

from gateway.backends.base import Backend
from gateway.codecs import Table, validate_table
from gateway.errors import ConfigError, Unavailable
from gateway.register import register_artefact, register_model
from gateway.registry import Registry, build_registry
from gateway.runtime.plan import make_plan
from gateway.settings import settings_from_dict
from gateway.store import ModelStore


def registry_for(store: Path, tmp_path: Path, models: dict[str, dict[str, Any]]) -> Registry:
    raw = {"server": {"run_dir": str(tmp_path / "run")}, "store": {"path": str(store)}, "models": models}
    settings = settings_from_dict(raw, base_dir=tmp_path)
    return build_registry(settings, make_plan(settings))


def request(frame: pd.DataFrame, backend: Backend) -> Table:
    records = frame.astype(object).to_dict(orient="records")
    plain = [{k: (v.item() if isinstance(v, np.generic) else v) for k, v in row.items()} for row in records]
    return validate_table(Table.from_records(plain), backend.meta.inputs, backend.meta.name)


def iris() -> tuple[pd.DataFrame, pd.Series]:
    data = load_iris(as_frame=True)
    frame = data.frame.drop(columns="target")
    frame.columns = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    return frame, data.target.map(dict(enumerate(data.target_names)))


def test_a_classifier_answers_labels_and_probabilities_as_sklearn_does(tmp_path: Path) -> None:
    frame, labels = iris()
    model = LogisticRegression(max_iter=1000).fit(frame, labels)
    # Columns sent in another order than fitted: the stored schema puts them back.
    register_model(model, "iris", frame[frame.columns[::-1]], store=tmp_path / "store", fmt="onnx")
    served = registry_for(tmp_path / "store", tmp_path, {"iris": {"backend": "onnx"}}).get("iris")
    backend = served.backend()
    assert (served.language, backend.kind, backend.meta.format, backend.meta.allowed_types) == (
        "python", "onnx", "onnx", ("response", "prob"))
    table = request(frame, backend)
    assert backend.predict(table, {}) == model.predict(frame).tolist()
    probs = backend.predict(table, {"type": "prob"})
    expected = model.predict_proba(frame)
    assert [list(row) for row in probs[:1]] == [list(model.classes_)]
    assert np.array([[row[c] for c in model.classes_] for row in probs]) == pytest.approx(expected, abs=1e-5)


def test_a_pipeline_with_text_columns_takes_one_input_per_column(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"wt": rng.normal(3, 1, 60), "cyl": rng.choice([4, 6, 8], 60),
                          "am": pd.Categorical(rng.choice(["auto", "manual"], 60))})
    target = frame.wt * 2 + frame.cyl + (frame.am == "manual") * 3 + rng.normal(0, 0.1, 60)
    encode = ColumnTransformer([("am", OneHotEncoder(), ["am"])], remainder="passthrough")
    model = make_pipeline(encode, RandomForestRegressor(n_estimators=20, random_state=0)).fit(frame, target)
    register_model(model, "cars", frame, store=tmp_path / "store", fmt="onnx")
    backend = registry_for(tmp_path / "store", tmp_path, {"cars": {"backend": "onnx"}}).get("cars").backend()
    got = backend.predict(request(frame, backend), {})
    assert got == pytest.approx(model.predict(frame).tolist(), rel=1e-5)


def test_a_date_column_is_refused_at_registration(tmp_path: Path) -> None:
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0], "when": pd.to_datetime(["2024-01-01"] * 3)})
    model = make_pipeline(ColumnTransformer([("x", "passthrough", ["x"])]), LogisticRegression())
    with pytest.raises(ConfigError, match=r"column 'when' is a datetime: the ONNX backend takes numbers"):
        register_model(model.fit(frame, [0, 1, 0]), "dated", frame, store=tmp_path / "store", fmt="onnx")


def test_backend_onnx_refuses_a_skops_version_and_python_an_onnx_one(tmp_path: Path) -> None:
    frame, labels = iris()
    model = LogisticRegression(max_iter=1000).fit(frame, labels)
    store = tmp_path / "store"
    register_model(model, "iris", frame, store=store)  # skops
    with pytest.raises(ConfigError, match=r'version 1 is a python skops model; backend = "onnx" serves model\.onnx'):
        registry_for(store, tmp_path, {"iris": {"backend": "onnx"}})
    register_model(model, "iris", frame, store=store, fmt="onnx")
    assert ModelStore(store).read_meta("iris", "2").format == "onnx"
    served = registry_for(store, tmp_path, {"iris": {"backend": "python", "optional": True}}).get("iris")
    with pytest.raises(Unavailable, match="format 'onnx' is not a Python model format"):
        served.backend()


def test_an_unknown_format_names_the_known_ones(tmp_path: Path) -> None:
    frame, labels = iris()
    with pytest.raises(ValueError, match="fmt must be one of 'skops', 'joblib', 'onnx', not 'pt'"):
        register_model(LogisticRegression(max_iter=1000).fit(frame, labels), "iris", frame, store=tmp_path, fmt="pt")


def convert(model: Any, frame: pd.DataFrame, path: Path, *, zipmap: bool = False) -> Path:
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType

    onx = to_onnx(model, initial_types=[("x", FloatTensorType([None, frame.shape[1]]))],
                  options={id(model): {"zipmap": zipmap}})
    path.write_bytes(onx.SerializeToString())
    return path


def test_a_file_converted_elsewhere_registers_from_the_shell_with_its_classes(tmp_path: Path) -> None:
    frame, labels = iris()
    model = LogisticRegression(max_iter=1000).fit(frame, labels)
    sample = tmp_path / "iris.csv"
    frame.assign(species=labels).to_csv(sample, index=False)
    source = convert(model, frame, tmp_path / "iris.onnx")
    register_artefact(tmp_path / "store", "iris", source, sample, target="species")
    meta = ModelStore(tmp_path / "store").read_meta("iris", "1")
    assert (meta.format, meta.artefact, meta.outputs["classes"]) == ("onnx", "model.onnx", list(model.classes_))
    backend = registry_for(tmp_path / "store", tmp_path, {"iris": {"backend": "onnx"}}).get("iris").backend()
    probs = backend.predict(request(frame, backend), {"type": "prob"})
    assert np.array([list(row.values()) for row in probs]) == pytest.approx(model.predict_proba(frame), abs=1e-5)


def test_a_zipmap_classifier_is_refused_with_the_option_to_convert_it_with(tmp_path: Path) -> None:
    frame, labels = iris()
    sample = tmp_path / "iris.csv"
    frame.to_csv(sample, index=False)
    source = convert(LogisticRegression(max_iter=1000).fit(frame, labels), frame, tmp_path / "m.onnx", zipmap=True)
    with pytest.raises(ConfigError, match=r"m\.onnx: its probabilities are a seq\(map\(string,tensor\(float\)\)\) "
                                          r"\(ZipMap\); convert it with options=\{id\(model\): \{'zipmap': False\}\}"):
        register_artefact(tmp_path / "store", "iris", source, sample)
