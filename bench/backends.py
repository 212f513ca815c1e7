"""The same R model through Plumber and through rpy2, side by side in one real stack.

Both names serve the same store version of the demo lm. The Plumber pool has 2 R processes
behind the internal NGINX; rpy2 has one embedded R in each of the 2 Gunicorn workers: the same
number of R processes, so the difference is the HTTP hop (and its JSON) against the per-worker
lock. For each rows-per-request and concurrency it sends a fixed number of requests and prints
req/s, p50, p99 and rpy2's throughput over Plumber's.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from bench.closed_loop import measure, running_stack
from gateway.paths import REPO_ROOT
from gateway.rscript import run_rscript

BACKENDS = ("plumber", "rpy2")
ROW = {"wt": 2.62, "hp": 110.0, "cyl": 6, "am": "manual"}
LOADS = [(1, 1), (8, 1), (1, 100), (8, 100), (1, 10_000), (8, 10_000)]  # (concurrency, rows)
REQUESTS = {1: 200, 100: 100, 10_000: 16}  # per cell, by rows per request: about a minute in all


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        directory.chmod(0o711)  # a root-run stack drops to the service users: they must cross it
        run_rscript([str(REPO_ROOT / "demo" / "build_r_models.R"), str(directory / "scratch")])
        models = ""
        for backend in BACKENDS:
            shutil.copytree(directory / "scratch" / "mtcars" / "1", directory / "store" / f"mtcars_{backend}" / "1")
            models += f'[models.mtcars_{backend}]\nbackend = "{backend}"\n'  # plumber: 2 workers by default
        with running_stack(directory, models) as url:
            run(url)


def run(url: str) -> None:
    cores = subprocess.run(["nproc"], capture_output=True, text=True, check=False).stdout.strip()
    print(f"the same R lm through NGINX → Gunicorn (2 workers x 8 threads): plumber = pool of 2 Plumber "
          f"workers, rpy2 = one embedded R per Gunicorn worker; {cores} cores")
    print(f"{'conc':>4} {'rows':>6} {'reqs':>4} | {'plumber':<7} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} | "
          f"{'rpy2':<7} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} | {'rpy2/plumber':>12}")
    for concurrency, n_rows in LOADS:
        count = REQUESTS[n_rows]
        cells = {b: measure(url, f"mtcars_{b}", ROW, concurrency, n_rows, count) for b in BACKENDS}
        line = f"{concurrency:>4} {n_rows:>6} {count:>4}"
        for backend, (rate, p50, p99) in cells.items():
            line += f" | {backend:<7} {rate:>8.1f} {p50:>8.2f} {p99:>8.2f}"
        print(f"{line} | {cells['rpy2'][0] / cells['plumber'][0]:>11.2f}x", flush=True)


if __name__ == "__main__":
    main()
