"""Faults under load on an R pool: `kill -9` an R worker every few seconds while clients predict.

`python -m bench.r_faults [--seconds 20] [--concurrency 16] [--every 3]` starts a real stack (the
demo mtcars lm in a pool of 2 Plumber workers), runs a bounded closed-loop load, kills one R
worker with SIGKILL every `--every` seconds (alternating), and prints requests sent, failed,
worst latency, and how many kills supervisord repaired.
"""

from __future__ import annotations

import argparse
import os
import signal
import tempfile
import time
from pathlib import Path

from bench.closed_loop import running_stack
from bench.faults import LoadResult, run_load
from gateway.register import REPO_ROOT, _rscript
from gateway.runtime import stack

ROW = [{"wt": 2.62, "hp": 110.0, "cyl": 6, "am": "manual"}]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.r_faults")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--every", type=float, default=3.0)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        _rscript([str(REPO_ROOT / "demo" / "build_r_models.R"), str(directory / "store")])
        with running_stack(directory, '[models.mtcars]\nbackend = "plumber"\nworkers = 2\n') as url:
            run(url, directory / "run", args.seconds, args.concurrency, args.every)


def run(url: str, run_dir: Path, seconds: float, concurrency: int, every: float) -> None:
    result = LoadResult()
    deadline = time.monotonic() + seconds
    threads = run_load(url, seconds, concurrency, result, model="mtcars", rows=ROW)
    kills = 0
    while time.monotonic() + every < deadline:
        time.sleep(every)
        workers = sorted((name, pid) for name, pid in stack.pids(run_dir).items() if name.startswith("plumber-"))
        if workers:
            os.kill(workers[kills % len(workers)][1], signal.SIGKILL)
            kills += 1
    for thread in threads:
        thread.join()
    time.sleep(3)
    live = sum(name.startswith("plumber-") for name in stack.pids(run_dir))
    print(f"R pool of 2 under {concurrency} clients for {seconds:g} s, kill -9 every {every:g} s: "
          f"{kills} kills, sent {result.sent}, failed {result.failed}, worst latency {result.worst_s:.3f} s, "
          f"workers running after: {live}/2")
    for error, count in result.errors.items():
        print(f"  failed: {error} x{count}")


if __name__ == "__main__":
    main()
