"""The same R model through Plumber and through rpy2, side by side in one real stack.

Both names serve the same store version of the demo lm. The Plumber pool has 2 R processes
behind the internal NGINX; rpy2 has one embedded R in each of the 2 Gunicorn workers: the same
number of R processes, so the difference is the HTTP hop (and its JSON) against the per-worker
lock. For each rows-per-request and concurrency it sends a fixed number of requests and prints
req/s, p50, p99 and rpy2's throughput over Plumber's.
"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

from gateway.register import REPO_ROOT, _rscript
from gateway.runtime import stack
from gateway.runtime.plan import free_ports
from gateway.settings import load_settings

BACKENDS = ("plumber", "rpy2")
ROW = {"wt": 2.62, "hp": 110.0, "cyl": 6, "am": "manual"}
LOADS = [(1, 1), (8, 1), (1, 100), (8, 100), (1, 10_000), (8, 10_000)]  # (concurrency, rows)
REQUESTS = {1: 200, 100: 100, 10_000: 16}  # per cell, by rows per request: about a minute in all


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        _rscript([str(REPO_ROOT / "demo" / "build_r_models.R"), str(directory / "scratch")])
        models = ""
        for backend in BACKENDS:
            shutil.copytree(directory / "scratch" / "mtcars" / "1", directory / "store" / f"mtcars_{backend}" / "1")
            models += f'[models.mtcars_{backend}]\nbackend = "{backend}"\n'  # plumber: 2 workers by default
        (port,) = free_ports(1)
        config = directory / "gateway.toml"
        config.write_text(
            f'[server]\nport = {port}\nworkers = 2\nthreads = 8\nrun_dir = "run"\n[store]\npath = "store"\n'
            + models,
            encoding="utf-8",
        )
        settings = load_settings(config, env={})
        plan = stack.up(settings, wait_s=120)
        try:
            run(stack.public_url(plan))
        finally:
            stack.down(settings.run_dir)


def run(url: str) -> None:
    cores = subprocess.run(["nproc"], capture_output=True, text=True, check=False).stdout.strip()
    print(f"the same R lm through NGINX → Gunicorn (2 workers x 8 threads): plumber = pool of 2 Plumber "
          f"workers, rpy2 = one embedded R per Gunicorn worker; {cores} cores")
    print(f"{'conc':>4} {'rows':>6} {'reqs':>4} | {'plumber':<7} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} | "
          f"{'rpy2':<7} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} | {'rpy2/plumber':>12}")
    for concurrency, n_rows in LOADS:
        count = REQUESTS[n_rows]
        cells = {b: measure(url, f"mtcars_{b}", concurrency, n_rows, count) for b in BACKENDS}
        line = f"{concurrency:>4} {n_rows:>6} {count:>4}"
        for backend, (rate, p50, p99) in cells.items():
            line += f" | {backend:<7} {rate:>8.1f} {p50:>8.2f} {p99:>8.2f}"
        print(f"{line} | {cells['rpy2'][0] / cells['plumber'][0]:>11.2f}x", flush=True)


def measure(url: str, model: str, concurrency: int, n_rows: int, count: int) -> tuple[float, float, float]:
    """(req/s, p50 ms, p99 ms) for `count` requests of n_rows rows from `concurrency` clients."""
    body = json.dumps([ROW] * n_rows).encode()  # serialised once: the client should not be the bottleneck
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


if __name__ == "__main__":
    main()
