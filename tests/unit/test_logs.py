"""`gateway logs`: the stack's log files merged in time order, filtered by model, followed."""

from __future__ import annotations

import io
import json
import threading
import time
from datetime import datetime
from pathlib import Path

import pytest

from gateway.cli import main
from gateway.runtime.logs import follow, merged, timestamp


def local(text: str) -> float:
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S").timestamp()


def gateway_line(when: str, model: str, request_id: str) -> str:
    return json.dumps({"time": when, "source": "gateway", "model": model, "request_id": request_id})


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    logs = tmp_path / "run" / "logs"
    logs.mkdir(parents=True)
    (logs / "gunicorn.log").write_text(
        gateway_line("2026-01-02T03:04:05.300Z", "mtcars", "a") + "\n"
        + gateway_line("2026-01-02T03:04:07.000Z", "iris", "b") + "\n"
    )
    (logs / "plumber-mtcars-1.log").write_text(
        "[gatewayr 2026-01-02T03:04:01Z pid 7] serving model 'mtcars'\n"
        + json.dumps({"time": "2026-01-02T03:04:05.100Z", "request_id": "a", "model": "mtcars"}) + "\n"
    )
    (logs / "nginx-access.log").write_text(
        json.dumps({"time": "2026-01-02T03:04:05+00:00", "msec": 1767323045.200, "uri": "/r/mtcars/predict",
                    "request_id": "a"}) + "\n"
        + json.dumps({"time": "2026-01-02T03:04:07+00:00", "msec": 1767323047.100, "uri": "/models/iris/predict",
                      "request_id": "b"}) + "\n"
    )
    (logs / "supervisord.log").write_text(
        # local time, a day later: last in any time zone
        "2026-01-03 03:04:08,000 WARN exited: plumber-mtcars-1 (terminated by SIGKILL; not expected)\n"
        "2026-01-03 03:04:08,100 INFO spawned: 'gunicorn' with pid 5\n"
    )
    (logs / "gunicorn-error.log").write_text(
        "[2026-01-02 03:04:06 +0000] [12] [ERROR] boom\nTraceback (most recent call last):\n  x\n"
    )
    return tmp_path / "run"


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('{"time":"2026-01-02T03:04:05.250Z"}', 1767323045.25),
        ('{"time":"2026-01-02T03:04:05+00:00","msec":1767323045.731}', 1767323045.731),
        ("[gatewayr 2026-01-02T03:04:05Z pid 9] serving", 1767323045.0),
        ("[2026-01-02 03:04:05 +0000] [1] [INFO] Booting", 1767323045.0),
        ('127.0.0.1 - - [02/Jan/2026:03:04:05 +0000] "GET / HTTP/1.1" 200', 1767323045.0),
        ("  File \"x.py\", line 1", None),
    ],
)
def test_every_format_gives_its_time(line: str, expected: float | None) -> None:
    assert timestamp(line) == expected


def test_local_time_formats_are_read_as_local() -> None:
    assert timestamp("2026-01-02 03:04:05,500 INFO spawned") == local("2026-01-02 03:04:05") + 0.5
    assert timestamp("2026/01/02 03:04:05 [error] 1#1: x") == local("2026-01-02 03:04:05")


def test_lines_are_merged_in_time_order_and_a_traceback_stays_with_its_cause(run_dir: Path) -> None:
    lines = [line.render() for line in merged(run_dir)]
    assert [line.split(" | ")[0] for line in lines] == [
        "plumber-mtcars-1", "plumber-mtcars-1", "nginx-access", "gunicorn",
        "gunicorn-error", "gunicorn-error", "gunicorn-error", "gunicorn", "nginx-access", "supervisord", "supervisord"]
    assert lines[5] == "gunicorn-error | Traceback (most recent call last):"


def test_model_filter_and_the_bound(run_dir: Path) -> None:
    mtcars = merged(run_dir, model="mtcars")
    assert [line.source for line in mtcars] == [
        "plumber-mtcars-1", "plumber-mtcars-1", "nginx-access", "gunicorn", "supervisord"]
    assert "plumber-mtcars-1" in mtcars[-1].text
    assert [line.source for line in merged(run_dir, model="iris")] == ["gunicorn", "nginx-access"]
    (last,) = merged(run_dir, lines=1)
    assert last.text == "2026-01-03 03:04:08,100 INFO spawned: 'gunicorn' with pid 5"


def test_follow_prints_new_lines_and_survives_rotation(run_dir: Path) -> None:
    out = io.StringIO()
    stop = threading.Event()
    worker = threading.Thread(target=follow, args=(run_dir, out),
                              kwargs={"model": "mtcars", "lines": 1, "stopped": stop.is_set, "poll_s": 0.05})
    worker.start()
    try:
        deadline = time.monotonic() + 5
        while not out.getvalue() and time.monotonic() < deadline:  # the first batch is out
            time.sleep(0.02)
        gunicorn = run_dir / "logs" / "gunicorn.log"
        with gunicorn.open("a") as handle:
            handle.write(gateway_line("2026-01-02T03:05:00.000Z", "mtcars", "new-1") + "\n")
            handle.write(gateway_line("2026-01-02T03:05:00.000Z", "iris", "other") + "\n")
        deadline = time.monotonic() + 5
        while "new-1" not in out.getvalue() and time.monotonic() < deadline:
            time.sleep(0.02)
        gunicorn.write_text(gateway_line("2026-01-02T03:06:00.000Z", "mtcars", "rotated") + "\n")  # smaller
        while "rotated" not in out.getvalue() and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        stop.set()
        worker.join(5)
    printed = out.getvalue().splitlines()
    assert printed[0].startswith("supervisord | ") and "plumber-mtcars-1" in printed[0]  # the last mtcars line
    assert ['"new-1"' in p for p in printed[1:]] == [True, False]
    assert '"rotated"' in printed[2]
    assert "other" not in out.getvalue()


def test_cli_prints_the_merged_logs(run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text(f'[server]\nrun_dir = "{run_dir}"\n')
    assert main(["--config", str(config), "logs", "--model", "iris"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [line.split(" | ")[0] for line in out] == ["gunicorn", "nginx-access"]
    assert main(["--config", str(tmp_path / "gateway.toml"), "logs", "-n", "2"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 2
