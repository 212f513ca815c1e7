"""`kill -9` a Gunicorn worker under load: Gunicorn replaces it, and clients lose at most the
requests that were in flight on it (bounded run; `python -m bench.faults` is the long one)."""

from __future__ import annotations

from pathlib import Path

from bench.faults import kill_gunicorn_under_load
from tests.integration.conftest import start_stack

THREADS = 4


def test_a_killed_gunicorn_worker_is_replaced_and_costs_at_most_its_in_flight(
    model_store: Path, tmp_path: Path
) -> None:
    models = {"iris": {"backend": "python"}}
    with start_stack(tmp_path, models, {"workers": 2, "threads": THREADS}, store=model_store) as gw:
        result, killed, replaced = kill_gunicorn_under_load(gw.url, gw.run_dir, seconds=6, concurrency=4, kills=1)
        gw.remember()  # the replacement worker too must be gone after teardown
        print(f"sent {result.sent} failed {result.failed} worst {result.worst_s * 1000:.0f} ms {result.errors}")
        assert len(killed) == 1
        assert replaced, "Gunicorn did not replace the killed worker"
        assert result.sent > 20
        assert result.failed <= THREADS, result.errors
        assert gw.post("/models/iris/predict", json=[{"sepal_length": 5.1, "sepal_width": 3.5,
                                                      "petal_length": 1.4, "petal_width": 0.2}]).status_code == 200
