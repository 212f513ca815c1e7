"""The status page's numbers: windows over cumulative metrics, and histogram quantiles."""

from __future__ import annotations

import math

import pytest

from gateway.status import WINDOW_S, StatusWindow, Totals, model_rows, quantile

INF = math.inf


@pytest.mark.parametrize(
    ("q", "buckets", "expected"),
    [
        (0.5, {0.001: 0.0, 0.01: 10.0, INF: 10.0}, 0.0055),  # interpolated inside (0.001, 0.01]
        (0.99, {0.001: 5.0, 0.01: 5.0, 0.1: 10.0, INF: 10.0}, 0.0982),
        (0.5, {0.001: 4.0, INF: 4.0}, 0.0005),
        (0.99, {0.001: 0.0, 0.01: 0.0, INF: 3.0}, 0.01),  # everything beyond the last bound
        (0.5, {0.001: 0.0, INF: 0.0}, None),  # no observations
        (0.5, {}, None),
    ],
)
def test_quantile_interpolates_like_promql(q: float, buckets: dict[float, float], expected: float | None) -> None:
    got = quantile(q, buckets)
    assert got == expected if expected is None else got == pytest.approx(expected)


def totals(requests: float, errors: float = 0.0) -> dict[str, Totals]:
    return {"m": Totals(requests, errors, {0.01: requests, INF: requests}, 2 * requests, requests)}


def test_a_young_process_counts_from_its_start() -> None:
    window = StatusWindow(totals(5), now=100.0)
    span, recent = window.recent(totals(12, 1), now=130.0)
    assert span == 30.0
    assert (recent["m"].requests, recent["m"].errors) == (7, 1)


def test_the_window_is_the_newest_snapshot_at_least_a_minute_old() -> None:
    window = StatusWindow(totals(0), now=0.0)
    window.recent(totals(10), now=50.0)
    window.recent(totals(20), now=70.0)
    span, recent = window.recent(totals(25), now=115.0)  # 50 is 65 s old, 70 only 45 s
    assert span == 65.0
    assert recent["m"].requests == 15
    span, _ = window.recent(totals(26), now=115.5)  # polled again within a second: same base
    assert span == 65.5


def test_old_snapshots_are_dropped_but_a_base_is_kept() -> None:
    window = StatusWindow(totals(0), now=0.0)
    for t in range(1, 1000, 3):
        window.recent(totals(t), now=float(t))
    assert len(window._history) <= (3 * WINDOW_S) / 3 + 3
    span, _ = window.recent(totals(1000), now=1000.0)
    assert WINDOW_S <= span < WINDOW_S + 4


def test_rows_carry_rates_latency_and_batch_size() -> None:
    recent = {"m": Totals(4, 1, {0.001: 0, 0.01: 4, INF: 4}, 12, 3, client_errors=1)}
    (row,) = model_rows([{"name": "m", "version": "1"}], 60.0, recent)
    assert row == {"name": "m", "version": "1", "requests": 4, "errors": 1, "client_errors": 1, "server_errors": 0,
                   "p50_ms": 5.5, "p99_ms": 9.91, "mean_batch": 4.0}
    (idle,) = model_rows([{"name": "idle"}], 60.0, recent)
    assert (idle["requests"], idle["p50_ms"], idle["mean_batch"]) == (0, None, None)


def test_a_process_that_started_before_any_traffic_counts_it_all() -> None:
    window = StatusWindow({}, now=0.0)  # no model had counts yet at the worker's start
    assert window.recent(totals(3), now=5.0)[1]["m"].requests == 3
    assert window.recent(totals(4), now=5.5)[1]["m"].requests == 4
    assert window.recent(totals(4), now=9.0)[1]["m"].requests == 4
