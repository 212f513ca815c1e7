"""status.json's chart (p50/p95 per interval) and its 4xx/5xx split, in one process."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from tests.api.conftest import make_app

IRIS_ROW = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}


@pytest.fixture(scope="module")
def fast_chart(model_store: Path, tmp_path_factory: pytest.TempPathFactory) -> FlaskClient:
    app = make_app(model_store, tmp_path_factory.mktemp("chart"), server={"status_interval_s": 0.5})
    return app.test_client()


def test_the_chart_has_a_point_per_interval_with_traffic(fast_chart: FlaskClient) -> None:
    deadline = time.monotonic() + 15
    points: list[list[float]] = []
    while len(points) < 3:
        assert time.monotonic() < deadline, f"expected 3 points, got {points}"
        assert fast_chart.post("/models/iris/predict", json=[IRIS_ROW]).status_code == 200
        chart = fast_chart.get("/status.json").get_json()["chart"]
        points = chart["points"].get("iris", [])
    assert (chart["interval_s"], chart["span_s"]) == (0.5, 300)
    times = [p[0] for p in points]
    assert times == sorted(times) and all(chart["since"] < t <= chart["now"] for t in times)
    assert all(0 < p50 <= p95 for _, p50, p95, _ in points)
    assert sum(p[3] for p in points) >= 3
    assert "churn" not in chart["points"]  # no traffic, no line


def test_errors_are_split_into_client_and_server(fast_chart: FlaskClient) -> None:
    def row() -> dict:
        models = fast_chart.get("/status.json").get_json()["models"]
        return next(m for m in models if m["name"] == "iris")

    before = row()
    assert fast_chart.post("/models/iris/predict", json=[{"sepal_length": "x"}]).status_code == 422
    assert fast_chart.post("/models/iris/predict", data="{", content_type="application/json").status_code == 400
    after = row()
    assert after["client_errors"] - before["client_errors"] == 2
    assert after["server_errors"] == before["server_errors"]
    assert after["errors"] - before["errors"] == 2


def test_the_page_has_4xx_and_5xx_columns_and_charts_the_server_series(fast_chart: FlaskClient) -> None:
    html = fast_chart.get("/").get_data(as_text=True)
    assert 'cell(row, "client_errors"' in html and 'cell(row, "server_errors"' in html
    assert "series.points[m.name]" in html
