"""Faults under load on an R pool, while clients predict.

`python -m bench.r_faults [--seconds 20] [--concurrency 16] [--every 3]` starts a real stack (the
demo mtcars lm in a pool of 2 Plumber workers), runs a bounded closed-loop load, kills one R
worker with SIGKILL every `--every` seconds (alternating), and prints requests sent, failed,
worst latency, and how many kills supervisord repaired.

`--hang r|native` instead serves a model that sleeps `x` seconds (timeout_s = 1, a pool of 2)
and, under the same load of quick calls (x = 0.01), sends one call that sleeps 120 s every
`--every` seconds: it must get a 504 and the other worker must keep answering the load. `r`
sleeps where R can interrupt it, so R's own time limit frees the worker at the timeout; `native`
sleeps inside suspendInterrupts(), as a hung native call would, so the watchdog must recycle the
worker. Keep `--every` above the recycle time (about 15 s) so stuck workers never add up to the
whole pool.
"""

from __future__ import annotations

import argparse
import os
import signal
import tempfile
import time
from pathlib import Path

import requests

from bench.closed_loop import running_stack
from bench.faults import LoadResult, run_load
from gateway.paths import REPO_ROOT
from gateway.rscript import run_rscript
from gateway.runtime import stack

ROW = [{"wt": 2.62, "hp": 110.0, "cyl": 6, "am": "manual"}]
# A model that sleeps x seconds, saved like any R model; the native kind cannot be interrupted.
SLEEPS = {"r": "Sys.sleep(newdata$x[1])", "native": "suspendInterrupts(Sys.sleep(newdata$x[1]))"}
SLOW_MODEL = ("gatewayr::save_model(function(newdata, type) {{ {sleep}; newdata$x }}, "
              "commandArgs(TRUE)[1], 'slow', sample = data.frame(x = c(0, 2)))")  # x = 0: saving predicts once


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.r_faults")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--every", type=float, default=None, help="seconds between faults (3; 20 with --hang)")
    parser.add_argument("--hang", choices=sorted(SLEEPS), help="a hanging model instead of kill -9")
    args = parser.parse_args(argv)
    every = args.every or (20.0 if args.hang else 3.0)
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        directory.chmod(0o711)  # a root-run stack drops to the service users: they must cross it
        if args.hang:
            run_rscript(["-e", SLOW_MODEL.format(sleep=SLEEPS[args.hang]), str(directory / "store")])
            with running_stack(directory, '[models.slow]\nbackend = "plumber"\nworkers = 2\ntimeout_s = 1\n'
                               'batch = {max_size = 1}\n') as url:
                run_hang(url, directory / "run", args.seconds, args.concurrency, every, args.hang)
            return
        run_rscript([str(REPO_ROOT / "demo" / "build_r_models.R"), str(directory / "store")])
        with running_stack(directory, '[models.mtcars]\nbackend = "plumber"\nworkers = 2\n') as url:
            run(url, directory / "run", args.seconds, args.concurrency, every)


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


def run_hang(url: str, run_dir: Path, seconds: float, concurrency: int, every: float, kind: str) -> None:
    result = LoadResult()
    threads = run_load(url, seconds, concurrency, result, model="slow", rows=[{"x": 0.01}])
    hangs: list[str] = []
    deadline = time.monotonic() + seconds
    with requests.Session() as http:
        http.trust_env = False
        while time.monotonic() + every / 2 < deadline:
            time.sleep(every / 2)
            start = time.monotonic()
            reply = http.post(f"{url}/models/slow/predict", json=[{"x": 120}], timeout=60)
            hangs.append(f"{reply.status_code} after {time.monotonic() - start:.1f} s")
            time.sleep(every / 2)
    for thread in threads:
        thread.join()
    log = run_dir / "logs" / "watchdog.log"
    recycled = log.read_text(encoding="utf-8").count("killed plumber-slow") if log.exists() else 0
    live = sum(name.startswith("plumber-slow") for name in stack.pids(run_dir))
    print(f"R pool of 2 (timeout_s 1) under {concurrency} clients of quick calls for {seconds:g} s, "
          f"a 120 s call ({kind} sleep) every {every:g} s:")
    print(f"  quick calls: sent {result.sent}, failed {result.failed}, worst latency {result.worst_s:.3f} s")
    print(f"  hanging calls: {', '.join(hangs) or 'none'}; stuck workers recycled by the watchdog: {recycled}; "
          f"workers running after: {live}/2")
    for error, count in result.errors.items():
        print(f"  failed: {error} x{count}")


if __name__ == "__main__":
    main()
