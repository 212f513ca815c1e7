"""The prediction log: sampling, redaction, the bounded queue, and the file sink's rotation."""

from __future__ import annotations

import multiprocessing
import re
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import orjson
import pytest

from gateway import metrics, predlog
from gateway.errors import ConfigError, InvalidInput, ModelProblem
from gateway.predlog_sinks import FileSink
from gateway.settings import PredictionLogSettings, settings_from_dict


def _log(tmp_path: Path, **config: object) -> predlog.PredictionLog:
    raw = {"server": {"run_dir": str(tmp_path / "run"), "log_max_bytes": 4096, "log_backups": 2},
           "models": {"m": {"log_predictions": {"sample": 1.0, **config}}, "quiet": {}}}
    return predlog.PredictionLog(settings_from_dict(raw, base_dir=tmp_path))


def _counter(name: str, **labels: str) -> float:
    value = metrics._RECORDED.get_sample_value(name, labels)
    return value or 0.0


def test_redacted_columns_never_appear_and_errors_are_logged_without_detail(tmp_path: Path) -> None:
    log = _log(tmp_path, redact=["ssn"])
    assert log.begin("quiet", "python") is None  # sample = 0: nothing, not even a Pending
    ok = log.begin("m", "python")
    assert ok is not None
    ok.version, ok.inputs, ok.n_rows = "1", {"x": [1.5, 2.5], "ssn": ["123-45-6789", "987-65-4321"]}, 2
    log.finish(ok, outputs=[3.0, 5.0])
    failed = log.begin("m", "plumber")
    assert failed is not None
    failed.inputs, failed.n_rows = {"x": ["a"], "ssn": ["123-45-6789"]}, 1
    log.finish(failed, error=InvalidInput("column 'ssn': '123-45-6789' is not a number", model="m"))
    named = log.begin("m", "rpy2")
    assert named is not None
    log.finish(named, error=ModelProblem(409, "stale_features", "features are a day old", model="m"))
    log.flush()
    text = (tmp_path / "run" / "logs" / "predictions-m.jsonl").read_text()
    assert "123-45-6789" not in text and "987-65-4321" not in text
    first, second, third = (orjson.loads(line) for line in text.splitlines())
    assert first["inputs"] == {"x": [1.5, 2.5]} and first["redacted"] == ["ssn"]
    assert first["outputs"] == [3.0, 5.0] and first["status"] == 200 and first["version"] == "1"
    assert second["status"] == 422 and second["problem"] == "invalid_input" and "detail" not in second
    assert (third["status"], third["problem"], third["backend"]) == (409, "stale_features", "rpy2")
    assert (tmp_path / "run" / "logs" / "predictions-m.jsonl").stat().st_mode & 0o777 == 0o600


def test_a_line_keeps_at_most_max_rows() -> None:
    pending = predlog.Pending("m", "python", 0.0, "t", "id", None, "1", {"x": list(range(1500))}, 1500)
    entry = orjson.loads(predlog.line(pending, {"status": 200, "problem": None, "duration_ms": 1.0,
                                                "outputs": list(range(1500))}, PredictionLogSettings(sample=1.0)))
    assert len(entry["inputs"]["x"]) == len(entry["outputs"]) == predlog.MAX_ROWS and entry["truncated"]


def test_a_full_queue_drops_and_counts_instead_of_waiting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(predlog, "QUEUE_SIZE", 4)
    log = _log(tmp_path)
    release = threading.Event()

    class Stuck:
        def write(self, data: bytes) -> bool:
            release.wait(10)
            return True

    log._sinks["m"] = Stuck()  # type: ignore[assignment]
    before = _counter("gateway_prediction_log_dropped_total", model="m", reason="queue_full")
    for _ in range(20):
        pending = log.begin("m", "python")
        assert pending is not None
        log.finish(pending, outputs=[1])  # returns at once although the writer is stuck
    dropped = _counter("gateway_prediction_log_dropped_total", model="m", reason="queue_full") - before
    release.set()
    log.flush()
    assert 20 - 4 - 1 <= dropped <= 20 - 4  # the queue holds 4, the writer may have taken one out


def test_a_failing_sink_counts_its_lines_as_dropped(tmp_path: Path) -> None:
    log = _log(tmp_path, sink="http://127.0.0.1:9/nowhere")  # port 9 (discard): refused
    before = _counter("gateway_prediction_log_dropped_total", model="m", reason="sink_error")
    pending = log.begin("m", "python")
    assert pending is not None
    log.finish(pending, outputs=[1])
    log.flush()
    assert _counter("gateway_prediction_log_dropped_total", model="m", reason="sink_error") == before + 1


def test_rotation_keeps_the_file_count_bounded(tmp_path: Path) -> None:
    sink = FileSink(tmp_path / "p.jsonl", max_bytes=1024, backups=2)
    for i in range(50):
        assert sink.write(orjson.dumps({"i": i, "pad": "x" * 100}) + b"\n")
    files = sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock"))
    assert files == ["p.jsonl", "p.jsonl.1", "p.jsonl.2"]
    assert all(p.stat().st_size <= 1024 for p in tmp_path.glob("p.jsonl*"))
    last = [orjson.loads(line)["i"] for line in (tmp_path / "p.jsonl").read_text().splitlines()]
    assert last[-1] == 49


def _writer(path: str, worker: int) -> None:
    sink = FileSink(Path(path), max_bytes=200_000, backups=100)  # rotated every ~9 lines, all kept
    for i in range(40):  # lines far over PIPE_BUF (4096)
        sink.write(orjson.dumps({"worker": worker, "i": i, "pad": str(worker) * 20000}) + b"\n")


def test_concurrent_workers_never_interleave_or_lose_lines_while_rotating(tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl"
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_writer, args=(str(path), w)) for w in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    files = [p for p in tmp_path.glob("p.jsonl*") if not p.name.endswith(".lock")]
    assert len(files) > 10 and all(p.stat().st_size <= 200_000 for p in files)
    lines = [line for p in files for line in p.read_bytes().splitlines()]
    assert len(lines) == 160
    seen = sorted((e["worker"], e["i"]) for e in map(orjson.loads, lines))
    assert seen == [(w, i) for w in range(4) for i in range(40)]


def test_the_http_sink_posts_batches_of_lines(tmp_path: Path) -> None:
    received: list[tuple[str, bytes]] = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((self.headers["Content-Type"], body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        log = _log(tmp_path, sink=f"http://127.0.0.1:{server.server_port}/lines")
        before = _counter("gateway_prediction_log_written_total", model="m")
        for value in (1, 2, 3):
            pending = log.begin("m", "python")
            assert pending is not None
            log.finish(pending, outputs=[value])
        log.flush()
    finally:
        server.shutdown()
        server.server_close()
    lines = [orjson.loads(line) for _, body in received for line in body.splitlines()]
    assert {kind for kind, _ in received} == {"application/x-ndjson"}
    assert [line["outputs"] for line in lines] == [[1], [2], [3]]
    assert _counter("gateway_prediction_log_written_total", model="m") == before + 3


@pytest.mark.parametrize(("config", "message"), [
    ({"sample": 1.5}, "must be between 0 and 1"),
    ({"sample": 0.1, "sink": "ftp://logs.example/x"}, 'must be "file" or an http(s):// URL'),
    ({"sample": 0.1, "redact": "ssn"}, None),  # from the environment: comma-separated names
])
def test_log_predictions_settings_are_checked_at_start(tmp_path: Path, config: dict, message: str | None) -> None:
    raw = {"models": {"m": {"log_predictions": config}}}
    if message is None:
        assert settings_from_dict(raw, base_dir=tmp_path).models["m"].log_predictions.redact == ("ssn",)
        return
    with pytest.raises(ConfigError, match=re.escape(message)):
        settings_from_dict(raw, base_dir=tmp_path)
