"""What the app and the scaler tell each other: calls in flight summed over live processes (real
prometheus_client multiprocess files, written by real processes), and the worker-states file."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from gateway.poolstate import STATES_FILE, WorkerStates, cold_waits, in_flight, read_states, write_states

# A process that holds `count` calls in flight to pool `m` until its stdin closes.
_HOLDER = """
import sys
from gateway import metrics
metrics.POOL_IN_FLIGHT.labels("m", sys.argv[1]).inc(int(sys.argv[2]))
metrics.POOL_COLD_WAIT.labels("m", sys.argv[1]).set(float(sys.argv[2]))
print("ready", flush=True)
sys.stdin.read()
"""


def holder(directory: Path, pool: str, count: int) -> subprocess.Popen[str]:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory)}
    proc = subprocess.Popen([sys.executable, "-c", _HOLDER, pool, str(count)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    return proc


def test_calls_in_flight_add_up_over_live_processes_and_a_dead_ones_count_is_dropped(tmp_path: Path) -> None:
    first, second = holder(tmp_path, "m", 2), holder(tmp_path, "m", 1)
    other = holder(tmp_path, "m--v2", 1)
    try:
        assert in_flight(tmp_path) == {"m": 3, "m--v2": 1}
        second.communicate("")  # it exits with its count still written: killed mid-call
        assert in_flight(tmp_path) == {"m": 2, "m--v2": 1}
    finally:
        for proc in (first, second, other):
            proc.communicate("")
    assert in_flight(tmp_path) == {}
    assert cold_waits(tmp_path) == {"m": 2.0, "m--v2": 1.0}  # the latest wait, dead processes' too


def test_states_round_trip_and_a_missing_or_broken_file_is_no_states(tmp_path: Path) -> None:
    assert read_states(tmp_path) == {}
    states = {"m": WorkerStates(running=2, starting=1, stopped=1), "n": WorkerStates(fatal=2)}
    write_states(tmp_path, states)
    assert read_states(tmp_path) == states
    assert [p.name for p in tmp_path.iterdir()] == [STATES_FILE]  # no scratch file left behind
    (tmp_path / STATES_FILE).write_text("{half", encoding="utf-8")
    assert read_states(tmp_path) == {}
