"""PSI, the reference bins written at registration, and the per-worker drift windows."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from prometheus_client.core import Metric

from gateway import drift, metrics
from gateway.drift_reference import reference_from_frame
from gateway.meta import InputSpec, ModelMeta
from gateway.psi import EPSILON, Binner, psi
from gateway.schema_infer import infer_inputs


def test_psi_is_zero_for_the_same_shares_and_grows_with_the_shift() -> None:
    expected = [0.25, 0.25, 0.25, 0.25]
    assert psi(expected, [25, 25, 25, 25]) == pytest.approx(0.0)
    moved = psi(expected, [40, 30, 20, 10])
    shifted = psi(expected, [0, 0, 10, 90])
    assert moved is not None and shifted is not None
    assert 0.1 < moved < 0.25 < shifted
    assert psi(expected, [0, 0, 0, 0]) is None


def test_an_empty_bin_counts_as_epsilon_so_psi_stays_finite() -> None:
    value = psi([0.5, 0.5, 0.0], [0, 0, 10])
    assert value is not None and math.isfinite(value)
    assert value == pytest.approx(2 * (EPSILON - 0.5) * math.log(EPSILON / 0.5) + (1 - EPSILON) * math.log(1 / EPSILON))


def test_numeric_reference_has_quantile_bins_and_a_null_share() -> None:
    frame = pd.DataFrame({"x": [float(i) for i in range(199)] + [None]})
    reference = reference_from_frame(frame, infer_inputs(frame))
    column = reference["columns"]["x"]
    assert column["kind"] == "numeric" and len(column["edges"]) == 9
    assert sum(column["shares"]) + column["null_share"] == pytest.approx(1.0)
    assert column["null_share"] == pytest.approx(1 / 200)
    assert "note" not in reference
    binner = Binner(column)
    # Live values drawn from the same range land in the bins with the reference's shares.
    counts = [0] * len(binner.labels)
    for value in [float(i) for i in range(199)] + [None]:
        counts[binner.index(value)] += 1
    assert psi(binner.expected, counts) == pytest.approx(0.0, abs=1e-9)
    assert binner.labels[-1] == "null" and binner.index(float("nan")) == len(binner.labels) - 1
    assert binner.index("not a number") == len(binner.labels) - 1


def test_categorical_reference_keeps_declared_levels_and_unknown_values_go_to_other() -> None:
    frame = pd.DataFrame({"plan": pd.Categorical(["basic", "basic", "plus"], categories=["basic", "plus", "pro"]),
                          "flag": [True, False, True]})
    reference = reference_from_frame(frame, infer_inputs(frame))
    plan = reference["columns"]["plan"]
    assert plan["levels"] == {"basic": pytest.approx(2 / 3), "plus": pytest.approx(1 / 3), "pro": 0.0}
    binner = Binner(plan)
    assert binner.labels == ["basic", "plus", "pro", "other", "null"]
    assert binner.index("pro") == 2 and binner.index("platinum") == 3 and binner.index(None) == 4
    flag = Binner(reference["columns"]["flag"])
    assert flag.index(True) == flag.labels.index("true")


def test_a_tiny_sample_still_gives_a_reference_and_says_so() -> None:
    frame = pd.DataFrame({"x": [0.0, 2.0]})
    reference = reference_from_frame(frame, infer_inputs(frame))
    assert "only 2 rows" in reference["note"]
    binner = Binner(reference["columns"]["x"])
    assert len(binner.labels) >= 2 and binner.index(1.0) == 0


def test_model_json_without_a_reference_loads_and_has_no_drift() -> None:
    data = {"name": "m", "version": "1", "language": "r", "format": "rds", "artefact": "model.rds",
            "inputs": [{"name": "x", "type": "double"}], "outputs": {}}
    meta = ModelMeta.from_json(data)
    assert meta.reference is None and "reference" not in meta.to_json()
    monitor = drift.DriftMonitor()
    monitor.register("m", meta)
    monitor._bin("m", meta, {"x": [1.0]}, 1)  # nothing to bin against: no window, no error


def _meta(reference: dict) -> ModelMeta:
    return ModelMeta("drifty", "1", "python", "skops", "model.skops", (InputSpec("x", "double"),),
                     {"kind": "regression"}, "", "", {}, reference=reference)


def test_the_window_slides_and_psi_rises_with_shifted_inputs() -> None:
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"x": rng.normal(0, 1, 500)})
    meta = _meta(reference_from_frame(frame, infer_inputs(frame)))
    monitor = drift.DriftMonitor()

    def scraped() -> float:
        family = next(f for f in metrics.recorded().collect() if f.name == metrics.DRIFT_WINDOW_NAME)
        return monitor.psi_by_column(family)[("drifty", "1", "x")]

    def send(mean: float) -> None:  # a whole window's worth of requests
        for _ in range(drift.WINDOW // drift.ROWS_PER_REQUEST):
            monitor._bin("drifty", meta, {"x": list(rng.normal(mean, 1, drift.ROWS_PER_REQUEST))},
                         drift.ROWS_PER_REQUEST)
        monitor._publish()  # what the drain thread does after each round

    send(0.0)
    steady = scraped()
    send(3.0)
    shifted = scraped()
    assert steady < 0.1 < 0.25 < shifted
    window = monitor._windows[("drifty", "1")]["x"]
    assert len(window.bins) == drift.WINDOW and sum(window.counts) == drift.WINDOW


def test_a_served_version_has_its_series_before_any_value_arrives() -> None:
    frame = pd.DataFrame({"x": [float(i) for i in range(100)]})
    meta = _meta(reference_from_frame(frame, infer_inputs(frame)))
    monitor = drift.DriftMonitor(served=lambda: [("fresh", meta)])
    empty = Metric(metrics.DRIFT_WINDOW_NAME, "", "gauge")
    psi_family, values_family = monitor.families(empty)
    (sample,) = psi_family.samples
    assert sample.labels == {"model": "fresh", "version": "1", "column": "x"} and math.isnan(sample.value)
    assert [s.value for s in values_family.samples] == [0.0]
    assert monitor.psi_by_column(empty) == {}  # the status page shows nothing for it yet


def test_predictions_are_counted_by_class_or_binned_by_value() -> None:
    classifier = ModelMeta("kinds", "1", "r", "rds", "model.rds", (), {"kind": "classification",
                           "classes": ["setosa", "virginica"]}, "", "", {})
    monitor = drift.DriftMonitor()
    monitor._count_predictions("kinds", classifier, ["setosa", "setosa", "virginica", "daisy"])
    monitor._count_predictions("kinds", classifier, [{"setosa": 0.9, "virginica": 0.1}])  # probabilities: not counted

    def count(label: str) -> float:
        value = metrics._RECORDED.get_sample_value(
            "gateway_predicted_class_total", {"model": "kinds", "version": "1", "class": label})
        return value or 0.0

    assert (count("setosa"), count("virginica"), count("_other")) == (2.0, 1.0, 1.0)
    regression = _meta({})
    monitor._count_predictions("drifty", regression, [0.5, 3.0, float("nan"), True])
    assert metrics._RECORDED.get_sample_value(
        "gateway_prediction_value_count", {"model": "drifty", "version": "1"}) == 2.0
