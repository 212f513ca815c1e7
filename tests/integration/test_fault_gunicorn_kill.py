"""`kill -9` a Gunicorn worker under load: Gunicorn replaces it, and clients lose at most the
requests that were in flight on it (bounded run; `python -m bench.faults` is the long one)."""

from __future__ import annotations

import subprocess
import sys
import time
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


# What a Gunicorn worker had to import after its fork before it could serve anything: ~3 s of
# CPU (10-20 s of wall time on a busy 2-core host). With every worker killed at once, requests
# waited in Gunicorn's accept backlog for a whole boot: at least as long as a fresh interpreter
# takes for these imports (measured here, so the bound follows this host's speed and load).
# Now the master imports them once (gunicorn.conf.py) and a replacement needs ~0.3 s of CPU:
# the worst wait was 0.1-0.2 of that import time, so half of it is a generous bound.
MODEL_LIBRARIES = "import numpy, pandas, sklearn, skops.io"


def _seconds_to_import_model_libraries() -> float:
    start = time.monotonic()
    subprocess.run([sys.executable, "-c", MODEL_LIBRARIES], check=True)
    return time.monotonic() - start


def test_killing_every_gunicorn_worker_at_once_costs_only_in_flight_and_no_long_stall(
    model_store: Path, tmp_path: Path
) -> None:
    models = {"iris": {"backend": "python"}}
    with start_stack(tmp_path, models, {"workers": 2, "threads": THREADS}, store=model_store) as gw:
        result, killed, replaced = kill_gunicorn_under_load(gw.url, gw.run_dir, seconds=6, concurrency=4,
                                                            kills=2, gap_s=0)
        gw.remember()
        import_s = _seconds_to_import_model_libraries()
        print(f"sent {result.sent} failed {result.failed} worst {result.worst_s * 1000:.0f} ms {result.errors}; "
              f"importing the model libraries takes {import_s * 1000:.0f} ms")
        assert len(killed) == 2
        assert replaced, "Gunicorn did not replace the killed workers"
        # Not zero: a worker killed between writing a response's headers and its body (two
        # writes in Gunicorn) leaves a truncated 200 that NGINX, having forwarded the headers,
        # cannot re-send; a request re-sent to the second worker just as it dies is a 503.
        assert result.failed <= len(killed) * THREADS, result.errors
        assert result.worst_s < import_s / 2, (
            f"a request waited {result.worst_s:.1f} s; importing the model libraries takes {import_s:.1f} s: "
            "do replacement Gunicorn workers import them themselves again?")
