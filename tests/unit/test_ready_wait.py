"""`gateway up` asks /readyz again as soon as a part of the stack comes up, not up to 0.2 s later."""

from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path

from gateway.runtime import stack
from gateway.runtime.plan import Endpoint, Plan, PoolPlan
from gateway.runtime.render import WORKERS_READY_DIR

LONG_S = 30.0  # the nap's longest: returning well before it means a change ended it


def make_plan(run_dir: Path) -> Plan:
    pool = PoolPlan("m", "model", "/s/m/1", "1", (Endpoint.unix(run_dir / "1.sock"),), 30.0)
    unused = Endpoint("127.0.0.1", 0)
    return Plan(str(run_dir), unused, unused, unused, {"m": pool})


def timed_nap(run_dir: Path, plan: Plan, change: threading.Timer) -> float:
    seen = stack._parts_up(run_dir, plan)
    started = time.monotonic()
    change.start()
    stack._nap(run_dir, plan, LONG_S, seen)
    change.join()
    return time.monotonic() - started


def test_a_gunicorn_worker_booting_ends_the_nap(tmp_path: Path) -> None:
    (tmp_path / WORKERS_READY_DIR).mkdir()
    plan = make_plan(tmp_path)
    marker = threading.Timer(0.05, (tmp_path / WORKERS_READY_DIR / "123").touch)
    assert timed_nap(tmp_path, plan, marker) < LONG_S / 2


def test_an_r_worker_binding_its_socket_ends_the_nap_even_over_an_old_socket_file(tmp_path: Path) -> None:
    plan = make_plan(tmp_path)
    path = tmp_path / "1.sock"
    path.touch()  # left by an earlier stack
    old = time.time_ns() - 10**9
    os.utime(path, ns=(old, old))
    listening: list[socket.socket] = []

    def bind() -> None:
        path.unlink()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(str(path))
        listening.append(sock)

    assert timed_nap(tmp_path, plan, threading.Timer(0.05, bind)) < LONG_S / 2
    listening[0].close()


def test_nothing_changing_sleeps_the_whole_nap(tmp_path: Path) -> None:
    plan = make_plan(tmp_path)
    started = time.monotonic()
    stack._nap(tmp_path, plan, 0.1, stack._parts_up(tmp_path, plan))
    assert time.monotonic() - started >= 0.1
