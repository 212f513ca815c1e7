"""Shared by the stack benchmarks: a stack on free ports, and a closed-loop load against it."""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests

from gateway.runtime import stack
from gateway.runtime.plan import free_ports
from gateway.settings import load_settings


@contextmanager
def running_stack(directory: Path, models_toml: str) -> Iterator[str]:
    """A stack (2 Gunicorn workers x 8 threads) over directory/store; yields its public URL."""
    (port,) = free_ports(1)
    config = directory / "gateway.toml"
    config.write_text(
        f'[server]\nport = {port}\nworkers = 2\nthreads = 8\nrun_dir = "run"\n[store]\npath = "store"\n'
        + models_toml,
        encoding="utf-8",
    )
    settings = load_settings(config, env={})
    plan = stack.up(settings, wait_s=120)
    try:
        yield stack.public_url(plan)
    finally:
        stack.down(settings.run_dir)


def measure(url: str, model: str, row: dict[str, Any], concurrency: int, n_rows: int,
            count: int) -> tuple[float, float, float]:
    """(req/s, p50 ms, p99 ms) for `count` requests of n_rows rows from `concurrency` clients."""
    body = json.dumps([row] * n_rows).encode()  # serialised once: the client should not be the bottleneck
    endpoint = f"{url}/models/{model}/predict"
    headers = {"Content-Type": "application/json"}
    sessions = [requests.Session() for _ in range(concurrency)]
    for session in sessions:
        session.trust_env = False
        session.post(endpoint, data=body, headers=headers, timeout=60).raise_for_status()  # warm up

    def one(index: int) -> float:
        start = time.perf_counter()
        reply = sessions[index % concurrency].post(endpoint, data=body, headers=headers, timeout=60)
        reply.raise_for_status()
        return time.perf_counter() - start

    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        latencies = sorted(pool.map(one, range(count)))
    elapsed = time.perf_counter() - started
    for session in sessions:
        session.close()
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    return count / elapsed, statistics.median(latencies) * 1e3, p99 * 1e3
