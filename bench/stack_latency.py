"""A Python model and an R pool model through the whole stack, side by side in one run.

Starts a real stack (NGINX → Gunicorn → Python in-process / internal NGINX → Plumber pool) on
free loopback ports, then for each model, concurrency and batch size sends a fixed number of
requests and reports req/s, p50 and p99. The last column is the R model's throughput over the
Python model's for the same load: the cost of the HTTP hop and of R, measured, not guessed.
"""

from __future__ import annotations

import statistics
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

from gateway.demo import build_iris
from gateway.register import REPO_ROOT, _rscript
from gateway.runtime import stack
from gateway.runtime.plan import free_ports
from gateway.settings import load_settings

ROWS = {
    "iris": {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2},
    "mtcars": {"wt": 2.62, "hp": 110.0, "cyl": 6, "am": "manual"},
}
LOADS = [(1, 1), (8, 1), (1, 100), (8, 100)]  # (concurrency, rows per request)
REQUESTS_PER_LOAD = 400


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        build_iris(directory / "store")
        _rscript([str(REPO_ROOT / "demo" / "build_r_models.R"), str(directory / "store")])
        (port,) = free_ports(1)
        config = directory / "gateway.toml"
        config.write_text(
            f'[server]\nport = {port}\nworkers = 2\nthreads = 8\nrun_dir = "run"\n[store]\npath = "store"\n'
            '[models.iris]\nbackend = "python"\n[models.mtcars]\nbackend = "plumber"\nworkers = 2\n',
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
    print(f"through NGINX → Gunicorn (2 workers x 8 threads); R pool of 2 Plumber workers; {cores} cores; "
          f"{REQUESTS_PER_LOAD} requests per cell")
    print(f"{'conc':>4} {'rows':>5} | {'model':<7} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} | "
          f"{'model':<7} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} | {'R/py req/s':>10}")
    for concurrency, n_rows in LOADS:
        cells = {name: measure(url, name, concurrency, n_rows) for name in ("iris", "mtcars")}
        line = f"{concurrency:>4} {n_rows:>5}"
        for name, (rate, p50, p99) in cells.items():
            line += f" | {name:<7} {rate:>8.1f} {p50:>8.2f} {p99:>8.2f}"
        print(f"{line} | {cells['mtcars'][0] / cells['iris'][0]:>9.2f}x")


def measure(url: str, model: str, concurrency: int, n_rows: int) -> tuple[float, float, float]:
    body = [ROWS[model]] * n_rows
    endpoint = f"{url}/models/{model}/predict"
    sessions = [requests.Session() for _ in range(concurrency)]
    for session in sessions:
        session.trust_env = False
        session.post(endpoint, json=body, timeout=30).raise_for_status()  # warm the connections

    def one(index: int) -> float:
        start = time.perf_counter()
        reply = sessions[index % concurrency].post(endpoint, json=body, timeout=30)
        reply.raise_for_status()
        return time.perf_counter() - start

    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        latencies = sorted(pool.map(one, range(REQUESTS_PER_LOAD)))
    elapsed = time.perf_counter() - started
    for session in sessions:
        session.close()
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    return REQUESTS_PER_LOAD / elapsed, statistics.median(latencies) * 1e3, p99 * 1e3


if __name__ == "__main__":
    main()
