"""Faults under load: `kill -9` a Gunicorn worker while clients predict, and count what they saw.

`python -m bench.faults [--seconds 20] [--concurrency 16] [--kills 1] [--gap S] [--keep DIR]`
starts a real stack (2 Gunicorn workers, the iris model) on free loopback ports, runs a
closed-loop load, kills a Gunicorn worker with SIGKILL every few seconds (or `--gap` seconds
apart), and prints requests sent, failed (5xx or a broken connection), worst latency, and whether
Gunicorn replaced every killed worker. `--keep DIR` keeps the run directory and its logs.

Gunicorn's master re-forks a dead worker at once; NGINX re-sends an idempotent predict whose
connection broke (proxy_next_upstream error), so the failures a client sees are at most the
requests in flight on the killed worker, and often zero.
"""

from __future__ import annotations

import argparse
import os
import signal
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import requests

from gateway.client import resends
from gateway.demo import build_iris
from gateway.runtime import stack
from gateway.runtime.plan import free_ports
from gateway.settings import load_settings

ROW = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}


@dataclass
class LoadResult:
    sent: int = 0
    failed: int = 0
    resent: int = 0  # requests a gateway.client session sent again after an unanswered try
    worst_s: float = 0.0
    errors: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, seconds: float, error: str | None, resent: int = 0) -> None:
        with self.lock:
            self.sent += 1
            self.resent += resent
            self.worst_s = max(self.worst_s, seconds)
            if error is not None:
                self.failed += 1
                self.errors[error] = self.errors.get(error, 0) + 1


def run_load(url: str, seconds: float, concurrency: int, result: LoadResult, model: str = "iris",
             rows: list[dict] | None = None, session: Callable[[], requests.Session] = requests.Session,
             stop: threading.Event | None = None) -> list[threading.Thread]:
    """Closed-loop clients, one `session()` each, until `seconds` have passed (or `stop` is set).

    Returns the threads."""
    body = rows if rows is not None else [ROW]
    deadline = time.monotonic() + seconds
    stopped = stop or threading.Event()

    def client() -> None:
        with session() as http:
            http.trust_env = False
            while time.monotonic() < deadline and not stopped.is_set():
                start = time.monotonic()
                error = None
                resent = 0
                try:
                    reply = http.post(f"{url}/models/{model}/predict", json=body, timeout=30)
                    resent = resends(reply)
                    if reply.status_code != 200:
                        error = f"HTTP {reply.status_code}"
                except requests.RequestException as exc:
                    error = type(exc).__name__
                result.record(time.monotonic() - start, error, resent)

    threads = [threading.Thread(target=client, daemon=True) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    return threads


@contextmanager
def iris_stack(directory: Path, workers: int = 2, threads: int = 4) -> Iterator[tuple[str, Path]]:
    build_iris(directory / "store")
    (port,) = free_ports(1)
    config = directory / "gateway.toml"
    config.write_text(f'[server]\nport = {port}\nworkers = {workers}\nthreads = {threads}\nrun_dir = "run"\n'
                      '[store]\npath = "store"\n[models.iris]\nbackend = "python"\n', encoding="utf-8")
    settings = load_settings(config, env={})
    plan = stack.up(settings, wait_s=120)
    try:
        yield stack.public_url(plan), settings.run_dir
    finally:
        stack.down(settings.run_dir)


def kill_gunicorn_under_load(url: str, run_dir: Path, seconds: float, concurrency: int,
                             kills: int, gap_s: float | None = None) -> tuple[LoadResult, list[int], bool]:
    """Load for `seconds`, SIGKILL one Gunicorn worker `kills` times: evenly spread, or with
    `gap_s` seconds between kills (the first after `seconds / (kills + 1)`).

    Returns the load result, the killed pids, and whether the worker count was whole again
    (with none of the killed pids among them) when the load ended.
    """
    # The master stays; asked once, so that kills meant to land together are not spaced out by
    # a supervisord round trip each (slow on a busy host).
    master = stack.pids(run_dir)["gunicorn"]
    before = stack.gunicorn_workers(run_dir, master)
    result = LoadResult()
    threads = run_load(url, seconds, concurrency, result)
    killed: list[int] = []
    for index in range(kills):
        time.sleep(seconds / (kills + 1) if gap_s is None or index == 0 else gap_s)
        # The oldest worker not yet killed (a killed one may not be gone yet): with kills closer than a
        # boot, a second kill takes the other original, not the replacement of the first.
        victim = min((p for p in stack.gunicorn_workers(run_dir, master) if p.pid not in killed),
                     key=lambda p: (p.start, p.pid))
        os.kill(victim.pid, signal.SIGKILL)
        killed.append(victim.pid)
    for thread in threads:
        thread.join()
    after = stack.gunicorn_workers(run_dir, master)
    replaced = len(after) == len(before) and not {p.pid for p in after} & set(killed)
    return result, killed, replaced


@contextmanager
def _directory(keep: Path | None) -> Iterator[Path]:
    if keep is None:
        with tempfile.TemporaryDirectory() as tmp:
            Path(tmp).chmod(0o711)  # a root-run stack drops to the service users: they must cross it
            yield Path(tmp)
    else:
        keep.mkdir(parents=True, exist_ok=True)
        yield keep.resolve()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.faults")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--kills", type=int, default=1)
    parser.add_argument("--gap", type=float, default=None,
                        help="seconds between kills (default: spread evenly over the run)")
    parser.add_argument("--keep", type=Path, default=None,
                        help="run in this directory and keep it (logs under run/logs)")
    args = parser.parse_args(argv)
    with _directory(args.keep) as tmp, iris_stack(tmp) as (url, run_dir):
        result, killed, replaced = kill_gunicorn_under_load(url, run_dir, args.seconds, args.concurrency,
                                                            args.kills, args.gap)
    gap = "evenly spread" if args.gap is None else f"{args.gap:g} s apart"
    print(f"kill -9 of a Gunicorn worker (2 workers x 4 threads), {args.seconds:g} s at concurrency "
          f"{args.concurrency}, {len(killed)} kill(s) {gap}")
    print(f"  sent {result.sent}  failed {result.failed}  worst latency {result.worst_s * 1000:.0f} ms  "
          f"replaced {'yes' if replaced else 'NO'}  errors {result.errors or '-'}")


if __name__ == "__main__":
    main()
