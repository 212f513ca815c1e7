"""build_registry over real stores, and PythonBackend against the estimator it wraps."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_iris
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder

from gateway.backends.python import PythonBackend
from gateway.codecs import Table, validate_table
from gateway.errors import ConfigError, ModelError, Unavailable
from gateway.register import register_model
from gateway.registry import Registry, build_registry
from gateway.runtime.plan import make_plan
from gateway.settings import settings_from_dict
from gateway.store import ModelStore
from tests.conftest import churn_frame


def registry_for(store: Path, tmp_path: Path, models: dict[str, dict[str, Any]]) -> Registry:
    raw = {"server": {"run_dir": str(tmp_path / "run")}, "store": {"path": str(store)}, "models": models}
    settings = settings_from_dict(raw, base_dir=tmp_path)
    return build_registry(settings, make_plan(settings))


def iris_model() -> tuple[LogisticRegression, Any]:
    data = load_iris(as_frame=True)
    frame = data.frame.drop(columns="target")
    frame.columns = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    labels = data.target.map(dict(enumerate(data.target_names)))
    return LogisticRegression(max_iter=1000).fit(frame, labels), frame


def backend_for(estimator: Any, name: str, frame: Any, store: Path) -> PythonBackend:
    version = register_model(estimator, name, frame, store=store)
    models = ModelStore(store)
    backend = PythonBackend(models.read_meta(name, version), models.version_dir(name, version), trusted=False)
    backend.load()
    return backend


def as_request(frame: Any, backend: PythonBackend) -> Table:
    """The frame as a JSON client sends it (records of plain values), validated for the model."""
    records = frame.astype(object).to_dict(orient="records")
    plain = [{k: (v.item() if isinstance(v, np.generic) else v) for k, v in row.items()} for row in records]
    return validate_table(Table.from_records(plain), backend.meta.inputs, backend.meta.name)


# ---------------------------------------------------------------- build_registry


def test_every_stored_version_is_served_and_latest_is_current(model_store: Path, tmp_path: Path) -> None:
    registry = registry_for(model_store, tmp_path, {"iris": {}, "churn": {}})
    iris = registry.get("iris")
    assert iris.versions == ModelStore(model_store).versions("iris") == ["1", "2"]
    assert iris.current == "2"
    assert iris.meta.version == "2"
    assert iris.health().ready is True
    assert registry.get("churn").current == "1"
    assert sorted(m.name for m in registry) == ["churn", "iris"]


def test_a_pinned_version_is_current_and_others_load_on_demand(model_store: Path, tmp_path: Path) -> None:
    iris = registry_for(model_store, tmp_path, {"iris": {"version": "1"}}).get("iris")
    assert iris.current == "1"
    assert iris.meta.version == "1"
    assert list(iris.backends) == ["1"]  # only the current version is loaded at start
    assert iris.backend("2").meta.version == "2"
    assert sorted(iris.backends) == ["1", "2"]


def test_a_pinned_version_that_is_not_stored_is_refused(model_store: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="stored: 1, 2"):
        registry_for(model_store, tmp_path, {"iris": {"version": "5"}})


def test_a_joblib_artefact_is_refused_unless_trusted(tmp_path: Path) -> None:
    model, frame = iris_model()
    store = tmp_path / "store"
    register_model(model, "iris", frame, store=store, fmt="joblib")
    with pytest.raises(ConfigError) as info:
        registry_for(store, tmp_path, {"iris": {}})
    message = str(info.value)
    assert "model 'iris'" in message and "model.joblib" in message
    assert "pickle" in message and "runs arbitrary code" in message  # why
    assert "trusted = true" in message and ".skops" in message  # how


def test_a_trusted_joblib_artefact_predicts(tmp_path: Path) -> None:
    model, frame = iris_model()
    store = tmp_path / "store"
    register_model(model, "iris", frame, store=store, fmt="joblib")
    backend = registry_for(store, tmp_path, {"iris": {"trusted": True}}).get("iris").backend()
    assert isinstance(backend, PythonBackend)
    assert backend.predict(as_request(frame, backend), {}) == model.predict(frame).tolist()


def test_a_tampered_artefact_is_refused_with_a_sha256_message(model_store: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    shutil.copytree(model_store, store)
    artefact = store / "iris" / "2" / "model.skops"
    with artefact.open("ab") as handle:
        handle.write(b"\0")
    with pytest.raises(ConfigError) as info:
        registry_for(store, tmp_path, {"iris": {}})
    assert "sha256" in str(info.value)
    assert str(artefact) in str(info.value)
    # The untouched version still serves when pinned.
    assert registry_for(store, tmp_path, {"iris": {"version": "1"}}).get("iris").health().ready is True


def test_an_optional_model_that_fails_is_reported_not_fatal(model_store: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    shutil.copytree(model_store, store)
    with (store / "churn" / "1" / "model.skops").open("ab") as handle:
        handle.write(b"\0")
    registry = registry_for(store, tmp_path, {"iris": {}, "churn": {"optional": True}, "ghost": {"optional": True}})
    assert registry.get("iris").health().ready is True
    churn = registry.get("churn")
    health = churn.health()
    assert health.ready is False
    assert "failed to load" in health.detail and "sha256" in health.detail
    assert churn.versions == ["1"] and "sha256" in churn.failures["1"]  # kept, reported, not served
    ghost = registry.get("ghost").health()
    assert ghost.ready is False and "no versions" in ghost.detail
    with pytest.raises(Unavailable, match="churn"):
        churn.backend()


def test_a_required_model_that_fails_stops_the_start(model_store: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="'ghost' has no versions"):
        registry_for(model_store, tmp_path, {"iris": {}, "ghost": {}})


def test_an_r_version_under_the_python_backend_is_refused(tmp_path: Path) -> None:
    store = tmp_path / "store"
    model, frame = iris_model()
    register_model(model, "iris", frame, store=store)
    meta_path = store / "iris" / "1" / "model.json"
    meta_path.write_text(meta_path.read_text().replace('"language": "python"', '"language": "r"'))
    with pytest.raises(ConfigError, match='backend = "plumber"'):
        registry_for(store, tmp_path, {"iris": {}})


# ---------------------------------------------------------------- PythonBackend


def test_iris_predictions_equal_the_estimator_on_the_same_frame(tmp_path: Path) -> None:
    model, frame = iris_model()
    backend = backend_for(model, "iris", frame, tmp_path)
    assert backend.predict(as_request(frame, backend), {}) == model.predict(frame).tolist()


def test_iris_probabilities_are_per_row_dicts_keyed_by_class(tmp_path: Path) -> None:
    model, frame = iris_model()
    backend = backend_for(model, "iris", frame, tmp_path)
    sample = frame.iloc[[0, 60, 120]]
    rows = backend.predict(as_request(sample, backend), {"type": "prob"})
    expected = model.predict_proba(sample)
    assert len(rows) == 3
    for row, probabilities in zip(rows, expected, strict=True):
        assert list(row) == list(model.classes_)
        assert list(row.values()) == pytest.approx(probabilities.tolist(), rel=1e-12)
        assert all(type(v) is float for v in row.values())
    assert [max(row, key=row.get) for row in rows] == model.predict(sample).tolist()


def test_churn_predictions_with_a_category_input_equal_the_estimator(tmp_path: Path) -> None:
    frame, target = churn_frame()
    encode = ColumnTransformer([("plan", OneHotEncoder(handle_unknown="error"), ["plan"])], remainder="passthrough")
    model = make_pipeline(encode, LinearRegression()).fit(frame, target)
    backend = backend_for(model, "churn", frame, tmp_path)
    table = as_request(frame, backend)
    assert isinstance(table.columns["plan"][0], str)  # the client sent plain strings
    predictions = backend.predict(table, {})
    assert predictions == pytest.approx(model.predict(frame).tolist(), rel=1e-12)
    assert all(type(v) is float for v in predictions)


def test_a_model_that_raises_on_the_data_is_a_model_error(tmp_path: Path) -> None:
    frame, target = churn_frame()
    seen = frame["plan"] != "pro"  # the dtype still lists "pro", but the encoder never sees it
    encode = ColumnTransformer([("plan", OneHotEncoder(handle_unknown="error"), ["plan"])], remainder="passthrough")
    model = make_pipeline(encode, LinearRegression()).fit(frame[seen], target[seen])
    backend = backend_for(model, "churn", frame[seen], tmp_path)
    table = validate_table(Table.from_records([{"tenure": 3, "monthly": 50.0, "plan": "pro"}]), backend.meta.inputs,
                           "churn")
    with pytest.raises(ModelError) as info:
        backend.predict(table, {})
    assert info.value.model == "churn"
    assert info.value.detail.startswith("ValueError: ")
