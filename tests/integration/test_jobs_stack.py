"""A bulk job through the whole stack: 1 million rows posted to /models/<name>/jobs, the
supervisord-managed runner killed with SIGKILL mid-way, restarted by supervisord, and the job
resumed from its last finished chunk: every row's prediction exactly once, in order."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest
from sklearn.linear_model import LinearRegression

from gateway.register import register_model
from tests.integration.conftest import Stack, start_stack

JOB_ROWS = 1_000_000
CHUNK_ROWS = 5_000  # 200 chunks: the runner is caught mid-way
ARROW = "application/vnd.apache.arrow.stream"
BODY_LIMIT = 1024 * 1024


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    directory = tmp_path_factory.mktemp("jobstack")
    sample = pd.DataFrame({"i": list(range(100))})
    # The identity: row i's prediction is i, so a row lost, repeated or moved shows in the result.
    register_model(LinearRegression().fit(sample, sample["i"]), "ident", sample, store=directory / "store")
    models = {"ident": {"backend": "python", "batch": {"max_size": CHUNK_ROWS}}}
    # A small JSON body limit: the Arrow and CSV streams below must pass NGINX by /_stream/.
    with start_stack(directory, models, {"body_limit_bytes": BODY_LIMIT}) as running:
        yield running


def poll(gw: Stack, location: str, done: Callable[[dict[str, Any]], bool], deadline_s: float) -> dict[str, Any]:
    """The job's status once `done` holds for it; polled, with a deadline."""
    status: dict[str, Any] = {}
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        status = gw.get(location).json()
        if done(status):
            return status
        time.sleep(0.02)
    raise AssertionError(f"job never reached the state waited for: {status}")


def test_a_1m_row_job_survives_a_kill_9_of_the_runner(gw: Stack) -> None:
    def body() -> Iterator[bytes]:
        for start in range(0, JOB_ROWS, 100_000):
            yield b"".join(b'{"i":%d}\n' % i for i in range(start, start + 100_000))

    started = time.perf_counter()
    reply = gw.post("/models/ident/jobs", data=body(), timeout=120, headers={"Content-Type": "application/x-ndjson"})
    assert reply.status_code == 202, reply.text
    location = reply.headers["Location"]
    partway = poll(gw, location, lambda s: JOB_ROWS // 10 <= s["rows_done"] < JOB_ROWS // 2, 120)
    # The runner scores in its own process: an interactive predict is not queued behind the job.
    assert gw.post("/models/ident/predict", json=[{"i": 7}]).json()["predictions"] == [pytest.approx(7)]
    runner = gw.pids()["jobs"]
    os.kill(runner, signal.SIGKILL)
    deadline = time.monotonic() + 60
    while gw.pids().get("jobs") in (None, runner):
        assert time.monotonic() < deadline, "supervisord did not restart the job runner"
        time.sleep(0.1)
    done = poll(gw, location, lambda s: s["status"] in ("done", "failed"), 600)
    print(f"\njob of {JOB_ROWS} rows: runner killed at {partway['rows_done']} rows done, job done "
          f"{time.perf_counter() - started:.1f} s after the POST")
    assert (done["status"], done["rows_done"], done["rows_total"]) == ("done", JOB_ROWS, JOB_ROWS), done
    log = (gw.run_dir / "logs" / "jobs.log").read_text()
    assert "resuming after chunk" in log, log[-2000:]
    assert partway["rows_done"] > 0

    result = gw.get(f"{location}/result", timeout=300, stream=True)
    assert result.status_code == 200 and result.headers["Content-Type"] == "application/x-ndjson"
    count = 0
    for count, line in enumerate(result.iter_lines(chunk_size=1 << 20), start=1):
        value = float(line[len(b'{"prediction":'):-1])
        assert abs(value - (count - 1)) < 1e-6, (count, line)
    assert count == JOB_ROWS

    arrow = gw.get(f"{location}/result", timeout=300, headers={"Accept": ARROW})
    table = pa.ipc.open_stream(arrow.content).read_all()
    assert table.schema.field("prediction").type == pa.float64() and table.num_rows == JOB_ROWS
    job_dir = gw.run_dir / "jobs" / done["id"]
    assert {p.stat().st_mode & 0o777 for p in job_dir.iterdir()} == {0o600}


def test_arrow_and_csv_streams_pass_nginx_past_the_json_body_limit(gw: Stack) -> None:
    rows = 200_000  # 1.6 MB of int64 in Arrow, 1.3 MB of CSV: both past the JSON body limit
    table = pa.table({"i": pa.array(range(rows), pa.int64())})
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table, max_chunksize=30_000)
    arrow = sink.getvalue().to_pybytes()
    assert len(arrow) > BODY_LIMIT
    reply = gw.post("/models/ident/predict", data=arrow, timeout=120, headers={"Content-Type": ARROW, "Accept": ARROW})
    assert reply.status_code == 200, reply.text[:300]
    got = pa.ipc.open_stream(reply.content).read_all().column("prediction").to_pylist()
    assert got == pytest.approx(list(range(rows)), abs=1e-6)
    text = ("i\n" + "".join(f"{i}\n" for i in range(rows))).encode()
    assert len(text) > BODY_LIMIT
    reply = gw.post("/models/ident/predict", data=text, timeout=120,
                    headers={"Content-Type": "text/csv", "Accept": ARROW})
    assert reply.status_code == 200 and reply.headers["Content-Type"] == ARROW
    assert pa.ipc.open_stream(reply.content).read_all().num_rows == rows
    # The JSON body keeps its limit.
    too_large = gw.post("/models/ident/predict", data=b"[" + b" " * BODY_LIMIT + b"]",
                        headers={"Content-Type": "application/json"})
    assert too_large.status_code == 413
