"""A full disk under the run dir: requests fail fast with a 503 problem+json (or still succeed),
and no Gunicorn worker dies of SIGBUS writing its mmapped metrics (they live in /dev/shm).

The run dir is a small tmpfs mounted by the test (the suite runs as root, as CI does), filled up
with one file once the stack is up.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.metrics import metrics_dir
from tests.integration.conftest import start_stack

IRIS_ROW = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "--lazy", str(mount)], check=True)


def test_a_full_run_dir_fails_requests_fast_and_kills_no_worker(small_disk: Path, model_store: Path) -> None:
    with start_stack(small_disk, {"iris": {"backend": "python"}}, {"workers": 1}, store=model_store) as gw:
        assert not metrics_dir(gw.run_dir).is_relative_to(small_disk)
        workers = gw.gunicorn_workers()
        subprocess.run(["dd", "if=/dev/zero", f"of={small_disk}/filler", "bs=1M", "count=64"],
                       capture_output=True, check=False)  # stops at "No space left on device"
        # Small bodies never touch the disk; a large one NGINX must buffer to run_dir/tmp.
        for rows, statuses in ((1, {200}), (2000, {200, 503})):
            for version in ("1", "2", "latest"):  # new metric series: new mmapped pages
                started = time.monotonic()
                reply = gw.post(f"/models/iris/versions/{version}/predict", json=[IRIS_ROW] * rows)
                took = time.monotonic() - started
                assert reply.status_code in statuses, reply.text[:300]
                assert reply.headers["Content-Type"] in ("application/json", "application/problem+json")
                assert took < 2, f"{rows} rows took {took:.1f} s with the disk full"
                if reply.status_code == 503:
                    assert "no space left" in reply.json()["detail"] and reply.headers["Retry-After"] == "1"
        assert gw.get("/metrics").status_code == 200
        assert gw.gunicorn_workers() == workers, "a Gunicorn worker died while the disk was full"
        (small_disk / "filler").unlink()
