"""A Python model and an R pool model through the whole stack, side by side in one run.

Starts a real stack (NGINX → Gunicorn → Python in-process / internal NGINX → Plumber pool) on
free loopback ports, then for each model, concurrency and batch size sends a fixed number of
requests and reports req/s, p50 and p99. The last column is the R model's throughput over the
Python model's for the same load: the cost of the HTTP hop and of R, measured, not guessed.
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

from bench.closed_loop import measure, running_stack
from gateway.demo import build_iris
from gateway.paths import REPO_ROOT
from gateway.rscript import run_rscript

ROWS = {
    "iris": {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2},
    "mtcars": {"wt": 2.62, "hp": 110.0, "cyl": 6, "am": "manual"},
}
LOADS = [(1, 1), (8, 1), (1, 100), (8, 100)]  # (concurrency, rows per request)
REQUESTS_PER_LOAD = 400


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        directory.chmod(0o711)  # a root-run stack drops to the service users: they must cross it
        build_iris(directory / "store")
        run_rscript([str(REPO_ROOT / "demo" / "build_r_models.R"), str(directory / "store")])
        models = '[models.iris]\nbackend = "python"\n[models.mtcars]\nbackend = "plumber"\nworkers = 2\n'
        with running_stack(directory, models) as url:
            run(url)


def run(url: str) -> None:
    cores = subprocess.run(["nproc"], capture_output=True, text=True, check=False).stdout.strip()
    print(f"through NGINX → Gunicorn (2 workers x 8 threads); R pool of 2 Plumber workers; {cores} cores; "
          f"{REQUESTS_PER_LOAD} requests per cell")
    print(f"{'conc':>4} {'rows':>5} | {'model':<7} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} | "
          f"{'model':<7} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} | {'R/py req/s':>10}")
    for concurrency, n_rows in LOADS:
        cells = {name: measure(url, name, ROWS[name], concurrency, n_rows, REQUESTS_PER_LOAD)
                 for name in ("iris", "mtcars")}
        line = f"{concurrency:>4} {n_rows:>5}"
        for name, (rate, p50, p99) in cells.items():
            line += f" | {name:<7} {rate:>8.1f} {p50:>8.2f} {p99:>8.2f}"
        print(f"{line} | {cells['mtcars'][0] / cells['iris'][0]:>9.2f}x")


if __name__ == "__main__":
    main()
