"""Which estimators get a float64 matrix instead of a DataFrame, and that they answer the same."""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_iris
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from gateway.backends.matrix_input import accepts_matrix, probe_table, to_matrix
from gateway.backends.python import PythonBackend, to_frame
from gateway.codecs import Table
from gateway.meta import InputSpec, ModelMeta

IRIS = load_iris(as_frame=True)
X: pd.DataFrame = IRIS.data.set_axis(["sl", "sw", "pl", "pw"], axis=1)
Y = IRIS.target
INPUTS = tuple(InputSpec(name=c, type="double") for c in X.columns)
METHODS = ("response", "prob")
REFERENCE = {"columns": {c: {"edges": list(np.quantile(X[c], [0.1, 0.3, 0.5, 0.7, 0.9]))} for c in X.columns}}


def _accepts(model: object, inputs: tuple[InputSpec, ...] = INPUTS, methods: tuple[str, ...] = METHODS) -> bool:
    return accepts_matrix(model, inputs, methods, REFERENCE, lambda table: to_frame(table, inputs))


def test_an_estimator_fitted_on_the_inputs_in_order_takes_the_matrix() -> None:
    assert _accepts(LogisticRegression(max_iter=500).fit(X, Y))
    assert _accepts(make_pipeline(StandardScaler(), RandomForestClassifier(n_estimators=5, random_state=0)).fit(X, Y))


@pytest.mark.filterwarnings("ignore:X has feature names")  # what the DataFrame form says to it
def test_an_estimator_fitted_on_a_plain_array_takes_the_matrix() -> None:
    assert _accepts(LogisticRegression(max_iter=500).fit(X.to_numpy(), Y))


def test_columns_fitted_in_another_order_keep_the_dataframe() -> None:
    assert not _accepts(LogisticRegression(max_iter=500).fit(X[["sw", "sl", "pl", "pw"]], Y))


def test_columns_chosen_by_name_keep_the_dataframe() -> None:
    by_name = ColumnTransformer([("petals", StandardScaler(), ["pl", "pw"])])
    assert not _accepts(make_pipeline(by_name, LogisticRegression(max_iter=500)).fit(X, Y))


def test_a_transformer_that_reads_a_dataframe_keeps_the_dataframe() -> None:
    ratio = FunctionTransformer(lambda frame: frame.assign(r=frame["pl"] / frame["pw"]))
    assert not _accepts(make_pipeline(ratio, LinearRegression()).fit(X, Y))


def test_non_double_inputs_and_plain_callables_keep_the_dataframe() -> None:
    mixed = (*INPUTS[:3], InputSpec(name="pw", type="integer"))
    assert not _accepts(LogisticRegression(max_iter=500).fit(X, Y), inputs=mixed)
    assert not _accepts(lambda frame: frame["sl"] * 2)


def test_probe_rows_come_from_the_reference_or_plain_values() -> None:
    table = probe_table(INPUTS, REFERENCE)
    assert table.n_rows == 8
    assert table.columns["sl"][:5] == REFERENCE["columns"]["sl"]["edges"]
    assert probe_table(INPUTS, None).columns["sw"][:3] == [0.0, 1.0, 0.5]


def test_to_matrix_keeps_the_input_order_and_nulls_as_nan() -> None:
    matrix = to_matrix(Table({"pw": [4.0, 8.0], "sl": [1.0, None], "sw": [2.0, 6.0], "pl": [3.0, 7.0]}, 2), INPUTS)
    assert matrix.dtype == np.float64 and matrix.shape == (2, 4)
    np.testing.assert_array_equal(matrix, [[1.0, 2.0, 3.0, 4.0], [np.nan, 6.0, 7.0, 8.0]])


@pytest.mark.parametrize("kind", ["response", "prob"])
def test_the_backend_answers_the_same_on_either_form_without_warnings(tmp_path: Path, kind: str) -> None:
    model = LogisticRegression(max_iter=500).fit(X, Y)
    sio.dump(model, tmp_path / "model.skops")
    meta = ModelMeta(name="iris", version="1", language="python", format="skops", artefact="model.skops",
                     inputs=INPUTS, outputs={"kind": "classification", "classes": [0, 1, 2], "methods": list(METHODS)},
                     sha256=hashlib.sha256((tmp_path / "model.skops").read_bytes()).hexdigest(), created_at="",
                     framework={}, reference=REFERENCE)
    backend = PythonBackend(meta, tmp_path, trusted=True)
    backend.load()
    assert backend.matrix
    rows = X.sample(20, random_state=1)
    table = Table({c: rows[c].tolist() for c in rows.columns}, len(rows))
    with warnings.catch_warnings(record=True) as seen:  # the filters as the worker has them
        fast = backend.predict(table, {"type": kind})
    assert not [w for w in seen if "feature names" in str(w.message)]
    backend.matrix = False
    assert fast == backend.predict(table, {"type": kind})


def test_the_warning_filter_comes_back_after_something_took_it_off_the_front() -> None:
    model = LogisticRegression(max_iter=500).fit(X, Y)
    assert _accepts(model)
    table = probe_table(INPUTS, REFERENCE)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")  # what a later filter, or a restored list, would leave first
        model.predict(to_matrix(table, INPUTS))
    assert not [w for w in seen if "feature names" in str(w.message)]
