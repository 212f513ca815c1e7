"""The status page's latency chart: snapshots of the shared totals, and the points between them."""

from __future__ import annotations

import math
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter

from gateway.status import Totals, totals
from gateway.status_series import SERIES_FILE, SPAN_S, Series

INF = math.inf


def at(requests: float, fast: float) -> dict[str, Totals]:
    """Cumulative totals of model m: `fast` requests under 10 ms, the rest under 100 ms."""
    return {"m": Totals(requests=requests, buckets={0.01: fast, 0.1: requests, INF: requests})}


def test_each_interval_with_traffic_is_a_point_of_its_own_latency() -> None:
    series = Series(None, interval_s=5)
    series.take(at(0, 0), now=1000.0)
    series.take(at(10, 10), now=1005.0)  # 10 fast requests
    series.take(at(10, 10), now=1010.0)  # idle: no point
    points = series.points(at(20, 10), now=1013.0)["m"]  # then 10 slow ones, up to now
    assert [(p[0], p[3]) for p in points] == [(1005.0, 10), (1013.0, 10)]
    (fast_p50, fast_p95), (slow_p50, slow_p95) = [(p[1], p[2]) for p in points]
    assert fast_p50 < fast_p95 <= 10 < slow_p50 < slow_p95 <= 100


def test_a_snapshot_within_the_interval_is_not_kept() -> None:
    series = Series(None, interval_s=5)
    series.take(at(0, 0), now=1000.0)
    series.take(at(3, 3), now=1002.0)  # another worker at nearly the same moment
    assert [when for when, _ in series.snapshots()] == [1000.0]


def test_only_the_last_minutes_are_kept_and_charted() -> None:
    series = Series(None, interval_s=5)
    for step in range(200):
        series.take(at(step * 2, step), now=1000.0 + 5 * step)
    now = 1000.0 + 5 * 200
    kept = [when for when, _ in series.snapshots()]
    assert kept[0] >= now - SPAN_S - 10 and len(kept) <= SPAN_S / 5 + 2
    points = series.points(at(400, 200), now=now)["m"]
    assert len(points) == SPAN_S / 5 and points[0][0] >= now - SPAN_S


def test_workers_share_one_series_through_the_metrics_dir(tmp_path: Path) -> None:
    first, second = Series(tmp_path, interval_s=5), Series(tmp_path, interval_s=5)
    first.take(at(0, 0), now=1000.0)
    second.take(at(5, 5), now=1005.0)
    first.take(at(6, 6), now=1006.0)  # second already took this interval's snapshot
    assert first.snapshots() == second.snapshots()
    assert [when for when, _ in first.snapshots()] == [1000.0, 1005.0]
    assert first.points(at(9, 9), now=1009.0) == second.points(at(9, 9), now=1009.0)
    assert (tmp_path / SERIES_FILE).stat().st_mode & 0o777 == 0o600


def test_an_unreadable_series_file_starts_again(tmp_path: Path) -> None:
    (tmp_path / SERIES_FILE).write_text("{not json")
    series = Series(tmp_path, interval_s=5)
    assert series.snapshots() == []
    series.take(at(1, 1), now=1000.0)
    assert len(series.snapshots()) == 1


def test_due_says_yes_once_per_interval() -> None:
    series = Series(None, interval_s=60)
    assert [series.due() for _ in range(3)] == [True, False, False]


def test_errors_split_into_client_and_server() -> None:
    registry = CollectorRegistry()
    requests = Counter("gateway_requests", "", ["model", "status"], registry=registry)
    for status, count in (("200", 5), ("404", 1), ("422", 2), ("503", 3), ("504", 1)):
        requests.labels("m", status).inc(count)
    m = totals(registry)["m"]
    assert (m.requests, m.errors, m.client_errors, m.server_errors) == (12, 7, 3, 4)
