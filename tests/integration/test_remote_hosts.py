"""A pool may include Plumber entrypoints the stack does not run itself (`hosts`).

Here the "remote" worker is an R process this test starts on loopback, outside supervisord: the
gateway must balance over it, count it in health, and route around it when it is gone.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from gateway.paths import REPO_ROOT
from gateway.runtime.plan import free_ports
from tests.integration.conftest import start_stack
from tests.integration.r_models import build_r_store, r_env

ROWS = [{"wt": 2.62, "hp": 110, "cyl": 6, "am": "manual"}]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_r_store(tmp_path_factory.mktemp("remote") / "store")


@pytest.fixture
def remote_worker(store: Path) -> Iterator[tuple[str, subprocess.Popen]]:
    (port,) = free_ports(1)
    process = subprocess.Popen(
        ["Rscript", str(REPO_ROOT / "plumber" / "worker.R"), str(store / "mtcars" / "1"), "127.0.0.1", str(port)],
        env=r_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    address = f"127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if requests.get(f"http://{address}/healthz", timeout=1).status_code == 200:
                break
        except requests.ConnectionError:
            pass
        assert time.monotonic() < deadline and process.poll() is None, "the remote worker did not start"
        time.sleep(0.1)
    yield address, process
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)


def test_a_pool_of_remote_hosts_only(tmp_path: Path, store: Path, remote_worker: tuple[str, subprocess.Popen]) -> None:
    address, process = remote_worker
    models = {"mtcars": {"backend": "plumber", "workers": 0, "hosts": [address]}}
    with start_stack(tmp_path, models, store=store) as running:
        assert not any(name.startswith("plumber-") for name in running.pids())  # nothing local
        reply = running.post("/models/mtcars/predict", json=ROWS)
        assert reply.status_code == 200, reply.text
        assert running.get("/models/mtcars").json()["workers"] == {"live": 1, "total": 1}
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
        gone = running.post("/models/mtcars/predict", json=ROWS)
        assert gone.status_code == 503
        assert "mtcars" in gone.json()["detail"]


def test_local_workers_cover_for_a_dead_remote_host(
    tmp_path: Path, store: Path, remote_worker: tuple[str, subprocess.Popen]
) -> None:
    address, process = remote_worker
    models = {"mtcars": {"backend": "plumber", "workers": 1, "hosts": [address]}}
    with start_stack(tmp_path, models, store=store) as running:
        deadline = time.monotonic() + 15  # `up` returns once one worker of the pool is live
        while running.get("/models/mtcars").json()["workers"] != {"live": 2, "total": 2}:
            assert time.monotonic() < deadline, "the local worker never came up"
            time.sleep(0.1)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
        statuses = [running.post("/models/mtcars/predict", json=ROWS).status_code for _ in range(20)]
        assert statuses == [200] * 20
        assert running.get("/models/mtcars").json()["workers"] == {"live": 1, "total": 2}
