"""Streamed predict through the whole stack: a body generated on the fly and sent chunked
through NGINX, scored chunk by chunk by a Python model and an R pool, the predictions read back
as they come, with the Gunicorn workers' memory bounded by a chunk, not by the body."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import skops.io as sio

from gateway.demo import build_iris
from gateway.store import ModelStore
from tests.integration.conftest import Stack, start_stack
from tests.integration.r_models import build_r_store, r_predict

PY_ROWS = 400_000
R_ROWS = 30_000
RSS_GROWTH_LIMIT_MB = 150  # the body is ~40 MB, its predictions ~10 MB; a whole-body JSON predict of it takes GBs


def iris_row(i: int) -> dict[str, float]:
    return {"sepal_length": 4.0 + (i % 40) / 10, "sepal_width": 3.0 + (i % 7) / 10,
            "petal_length": 1.0 + (i % 50) / 10, "petal_width": 0.1 + (i % 23) / 10}


def mtcars_row(i: int) -> dict[str, object]:
    return {"wt": 1.5 + (i % 30) / 10, "hp": 60 + i % 200, "cyl": (4, 6, 8)[i % 3], "am": ("auto", "manual")[i % 2]}


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    store = build_r_store(tmp_path_factory.mktemp("r") / "store")
    build_iris(store)
    models = {
        "iris": {"backend": "python", "batch": {"max_size": 20_000}},
        "mtcars": {"backend": "plumber", "workers": 2, "batch": {"max_size": 5_000}},
    }
    with start_stack(tmp_path_factory.mktemp("streamstack"), models, store=store) as running:
        yield running


class PeakRss:
    """The largest summed RSS of the Gunicorn workers seen while the block runs."""

    def __init__(self, gw: Stack) -> None:
        self.pids = gw.gunicorn_workers()
        self.idle_mb = self.sample()
        self.peak_mb = self.idle_mb
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def sample(self) -> float:
        total = 0
        for pid in self.pids:
            status = Path(f"/proc/{pid}/status").read_text()
            total += next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:"))
        return total / 1024

    def _watch(self) -> None:
        while not self._stop.wait(0.1):
            self.peak_mb = max(self.peak_mb, self.sample())

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def test_400k_rows_stream_through_a_python_model_in_bounded_memory(gw: Stack) -> None:
    store = ModelStore(Path(gw.settings.store_path))
    path = store.version_dir("iris", store.resolve("iris", "latest")) / "model.skops"
    model = sio.load(path, trusted=sio.get_untrusted_types(file=path))
    checked_rows = range(0, PY_ROWS, 997)  # compared with the estimator's own predict
    local = model.predict(pd.DataFrame([iris_row(i) for i in checked_rows])).tolist()

    def body() -> Iterator[bytes]:  # generated as it is sent: `requests` sends it chunked
        for start in range(0, PY_ROWS, 10_000):
            yield b"".join(json.dumps(iris_row(i)).encode() + b"\n" for i in range(start, start + 10_000))

    with PeakRss(gw) as rss:
        reply = gw.post("/models/iris/predict", data=body(), stream=True, timeout=600,
                        headers={"Content-Type": "application/x-ndjson"})
        assert reply.status_code == 200
        count, got = 0, []
        for count, line in enumerate(reply.iter_lines(), start=1):
            if (count - 1) % 997 == 0:
                got.append(json.loads(line)["prediction"])
    assert count == PY_ROWS
    assert got == local
    assert rss.peak_mb - rss.idle_mb < RSS_GROWTH_LIMIT_MB, (rss.idle_mb, rss.peak_mb)


def test_csv_streams_through_an_r_pool_and_a_bad_row_is_named_by_its_row_number(gw: Stack) -> None:
    header = "wt,hp,cyl,am\n"

    def body(bad_row: int | None = None) -> Iterator[bytes]:
        yield header.encode()
        for start in range(0, R_ROWS, 5_000):
            lines = []
            for i in range(start, start + 5_000):
                row = mtcars_row(i)
                am = "semi" if i + 1 == bad_row else row["am"]
                lines.append(f"{row['wt']},{row['hp']},{row['cyl']},{am}\n")
            yield "".join(lines).encode()

    reply = gw.post("/models/mtcars/predict", data=body(), stream=True, timeout=600,
                    headers={"Content-Type": "text/csv", "Accept": "application/x-ndjson"})
    assert reply.status_code == 200
    predictions = [json.loads(line)["prediction"] for line in reply.iter_lines()]
    assert len(predictions) == R_ROWS
    sample = [0, 1, 2, 12_345, R_ROWS - 1]
    store = Path(gw.settings.store_path)
    expected = r_predict(store, "mtcars", [mtcars_row(i) for i in sample])
    assert [predictions[i] for i in sample] == pytest.approx(expected, rel=1e-12)

    reply = gw.post("/models/mtcars/predict", data=body(bad_row=17_001), stream=True, timeout=600,
                    headers={"Content-Type": "text/csv", "Accept": "application/x-ndjson"})
    lines = [json.loads(line) for line in reply.iter_lines()]
    assert len(lines) == 15_000 + 1  # three chunks of 5 000, then the problem
    problem = lines[-1]["error"]
    assert problem["status"] == 422 and problem["model"] == "mtcars"
    assert "unknown level 'semi' at row 17001" in problem["detail"]
