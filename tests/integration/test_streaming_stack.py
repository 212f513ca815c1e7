"""Streamed predict through the whole stack: a body generated on the fly and sent chunked
through NGINX, scored chunk by chunk by a Python model and an R pool, the predictions read back
as they come, with the Gunicorn workers' memory bounded by a chunk, not by the body."""

from __future__ import annotations

import json
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pandas as pd
import pytest
import skops.io as sio

from gateway.demo import build_iris
from gateway.store import ModelStore
from tests.integration.conftest import Stack, start_stack
from tests.integration.r_models import build_r_store, r_predict

STREAM_ROWS = 5_000_000  # through each of a Python model and an R pool
BLOCK_ROWS = 10_000  # distinct rows, sent over and over: the body is generated as it is sent
R_ROWS = 30_000
# The body is ~450 MB, its predictions ~125 MB; a whole-body JSON predict of it would take GBs.
RSS_GROWTH_LIMIT_MB = 300


def iris_row(i: int) -> dict[str, float]:
    return {"sepal_length": 4.0 + (i % 40) / 10, "sepal_width": 3.0 + (i % 7) / 10,
            "petal_length": 1.0 + (i % 50) / 10, "petal_width": 0.1 + (i % 23) / 10}


def mtcars_row(i: int) -> dict[str, object]:
    return {"wt": 1.5 + (i % 30) / 10, "hp": 60 + i % 200, "cyl": (4, 6, 8)[i % 3], "am": ("auto", "manual")[i % 2]}


def ndjson_body(row: Callable[[int], dict[str, Any]], rows: int) -> Iterator[bytes]:
    """`rows` NDJSON records, one block of BLOCK_ROWS distinct rows after another; `requests`
    sends a generator chunked, piece by piece as it is produced."""
    block = b"".join(orjson.dumps(row(i)) + b"\n" for i in range(BLOCK_ROWS))
    for _ in range(rows // BLOCK_ROWS):
        yield block


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    store = build_r_store(tmp_path_factory.mktemp("r") / "store")
    build_iris(store)
    shutil.copytree(store / "mtcars", store / "mtcars_bulk")  # the same model, in larger chunks
    models = {
        # Large chunks: each backend call's fixed cost is spread over more rows.
        "iris": {"backend": "python", "batch": {"max_size": 50_000}},
        "mtcars": {"backend": "plumber", "workers": 2, "batch": {"max_size": 5_000}},
        "mtcars_bulk": {"backend": "plumber", "workers": 1, "batch": {"max_size": 50_000}},
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


def stream_5m(gw: Stack, model: str, row: Callable[[int], dict[str, Any]]) -> tuple[list[Any], float, float]:
    """STREAM_ROWS rows through `model`: the first block's predictions, rows/s, RSS growth (MB)."""
    with PeakRss(gw) as rss:
        started = time.perf_counter()
        reply = gw.post(f"/models/{model}/predict", data=ndjson_body(row, STREAM_ROWS), stream=True, timeout=900,
                        headers={"Content-Type": "application/x-ndjson"})
        assert reply.status_code == 200, reply.text[:500]
        count, first_block, last = 0, [], b""
        for count, line in enumerate(reply.iter_lines(chunk_size=1 << 20), start=1):
            if count <= BLOCK_ROWS:
                first_block.append(json.loads(line)["prediction"])
            last = line
        elapsed = time.perf_counter() - started
    assert count == STREAM_ROWS
    assert json.loads(last)["prediction"] == first_block[-1]  # the last row is the block's last
    print(f"\n{model}: {STREAM_ROWS} rows in {elapsed:.1f} s ({STREAM_ROWS / elapsed:,.0f} rows/s); Gunicorn "
          f"RSS idle {rss.idle_mb:.0f} MB, peak {rss.peak_mb:.0f} MB")
    return first_block, STREAM_ROWS / elapsed, rss.peak_mb - rss.idle_mb


def test_5m_rows_stream_through_a_python_model_in_bounded_memory(gw: Stack) -> None:
    store = ModelStore(Path(gw.settings.store_path))
    path = store.version_dir("iris", store.resolve("iris", "latest")) / "model.skops"
    model = sio.load(path, trusted=sio.get_untrusted_types(file=path))
    local = model.predict(pd.DataFrame([iris_row(i) for i in range(BLOCK_ROWS)])).tolist()
    got, _, growth_mb = stream_5m(gw, "iris", iris_row)
    assert got == local
    assert growth_mb < RSS_GROWTH_LIMIT_MB


def test_5m_rows_stream_through_an_r_pool_in_bounded_memory(gw: Stack) -> None:
    got, _, growth_mb = stream_5m(gw, "mtcars_bulk", mtcars_row)
    sample = [0, 1, 2, 4_321, BLOCK_ROWS - 1]
    expected = r_predict(Path(gw.settings.store_path), "mtcars", [mtcars_row(i) for i in sample])
    assert [got[i] for i in sample] == pytest.approx(expected, rel=1e-12)
    assert growth_mb < RSS_GROWTH_LIMIT_MB


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
