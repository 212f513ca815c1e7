"""`gateway up --exec` (a container's PID 1): every process's log lines on stdout as JSON lines.

A real stack in the foreground: NGINX, Gunicorn, an R worker, supervisord's state changes, all
read from the one stdout a container runtime collects (`kubectl logs`).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import requests

from gateway.demo import build_iris
from gateway.runtime import procs, stack
from gateway.runtime.plan import free_ports
from tests.integration.r_models import build_r_store

GATEWAY = str(Path(sys.executable).parent / "gateway")
ROWS = [{"wt": 2.62, "hp": 110, "cyl": 6, "am": "manual"}]
IRIS = [{"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}]


def test_up_exec_writes_every_process_log_to_stdout_as_json_lines(tmp_path: Path) -> None:
    store = build_r_store(tmp_path / "store")
    build_iris(store)
    (port,) = free_ports(1)
    config = tmp_path / "gateway.toml"
    config.write_text(
        f'[server]\nport = {port}\nworkers = 1\nrun_dir = "run"\nuser = ""\n[store]\npath = "{store}"\n'
        '[models.iris]\nbackend = "python"\n[models.mtcars]\nbackend = "plumber"\nworkers = 1\n',
        encoding="utf-8",
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    process = subprocess.Popen([GATEWAY, "up", "--exec", "--config", str(config)], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, env=env)
    lines: list[bytes] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(process.stdout.readline, b"")))  # type: ignore[union-attr]
    reader.start()
    base = f"http://127.0.0.1:{port}"
    try:
        with requests.Session() as http:
            http.trust_env = False
            deadline = time.monotonic() + 90
            while True:
                assert process.poll() is None, process.stderr.read().decode()  # type: ignore[union-attr]
                try:
                    if http.get(f"{base}/readyz", timeout=2).status_code == 200:
                        break
                except requests.ConnectionError:
                    pass
                assert time.monotonic() < deadline, "the stack never became ready"
                time.sleep(0.2)
            assert http.post(f"{base}/models/iris/predict", json=IRIS, timeout=10).status_code == 200
            assert http.post(f"{base}/models/mtcars/predict", json=ROWS, timeout=30).status_code == 200

        def seen() -> list[dict]:
            return [json.loads(line) for line in list(lines)]

        def wanted(entries: list[dict]) -> dict[str, bool]:
            return {
                "nginx access": any(e["source"] == "nginx" and e.get("uri") == "/models/mtcars/predict"
                                    for e in entries),
                "app request line": any(e["source"] == "gateway" and e.get("program") == "gunicorn"
                                        for e in entries),
                "gunicorn error log": any(e["source"] == "gunicorn" and e.get("stream") == "stderr" for e in entries),
                "R worker": any(e["source"] == "plumber-mtcars-1" for e in entries),
                "supervisord": any(e["source"] == "supervisord" and e.get("state") == "RUNNING" for e in entries),
            }

        deadline = time.monotonic() + 20
        while not all(wanted(seen()).values()):  # NGINX logs a request as it finalises it
            assert time.monotonic() < deadline, f"missing on stdout: {wanted(seen())}"
            time.sleep(0.1)
        entries = seen()  # every line parsed as JSON above; each names its source
        assert all(isinstance(e, dict) and e.get("source") and e.get("program") for e in entries)
        assert not (tmp_path / "run" / "logs" / "nginx-access.log").exists()  # not into files as well
        print(f"\n{len(entries)} JSON lines on stdout from {sorted({e['source'] for e in entries})}")
    finally:
        family = procs.family(process.pid)  # supervisord itself, after the exec
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        finally:
            stack.down(tmp_path / "run")
            reader.join(timeout=10)
            procs.wait_gone(family, 30)
            for pipe in (process.stdout, process.stderr):
                if pipe is not None:
                    pipe.close()
    assert process.returncode == 0
