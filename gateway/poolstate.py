"""What the gateway and the scaler tell each other about R pools, through files in memory.

Gateway → scaler: every Gunicorn worker counts its calls in flight to each pool in the
`gateway_pool_in_flight` gauge (prometheus_client's multiprocess files in the stack's metrics
directory, /dev/shm); `in_flight` sums them over the processes still alive. The scaler reads
it, no request ever waits for the scaler, and the app never holds a handle on supervisord.

Scaler → gateway: each scaling pool's worker states (running, starting, stopped) in one JSON
file in run_dir, written atomically each time they change; /metrics, /readyz and the status
page read it.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path

from prometheus_client import multiprocess

STATES_FILE = "pool-workers.json"  # under run_dir, written by gateway.runtime.scaler
IN_FLIGHT_METRIC = "gateway_pool_in_flight"
COLD_WAIT_METRIC = "gateway_pool_cold_wait_time_seconds"
_LIVESUM_FILE = re.compile(r"^gauge_livesum_(\d+)\.db$")


@dataclass(frozen=True)
class WorkerStates:
    """One pool's workers as supervisord sees them; `fatal`: could not be started."""

    running: int = 0
    starting: int = 0
    stopped: int = 0
    fatal: int = 0


def write_states(run_dir: str | Path, states: dict[str, WorkerStates], owner_of: Path | None = None) -> None:
    """Pool key → states, replacing the file at once (readers never see half of it).

    Written by root (supervisord's user) in a stack that drops privileges: the file then takes
    the owner of `owner_of` (the plan, which Gunicorn's user owns), so the app can read it.
    """
    path = Path(run_dir) / STATES_FILE
    scratch = path.with_name(f".{STATES_FILE}.{os.getpid()}")
    scratch.write_text(json.dumps({key: asdict(s) for key, s in states.items()}, sort_keys=True),
                       encoding="utf-8")
    if owner_of is not None and os.geteuid() == 0:
        owner = owner_of.stat()
        os.chown(scratch, owner.st_uid, owner.st_gid)
    os.replace(scratch, path)


def read_states(run_dir: str | Path) -> dict[str, WorkerStates]:
    """Pool key → states; {} before the scaler's first write (or with no scaling pool)."""
    try:
        raw = json.loads((Path(run_dir) / STATES_FILE).read_text(encoding="utf-8"))
        return {str(key): WorkerStates(**value) for key, value in raw.items()}
    except (OSError, ValueError, TypeError):
        return {}


def in_flight(metrics_dir: str | Path) -> dict[str, int]:
    """Pool key → calls in flight now, summed over the live processes that wrote the gauge.

    A process that died mid-call (SIGKILL, before Gunicorn's child_exit removed its file)
    leaves its count behind: files of pids that no longer run are skipped.
    """
    files = []
    for path in Path(metrics_dir).glob("gauge_livesum_*.db"):
        match = _LIVESUM_FILE.match(path.name)
        if match and _alive(int(match.group(1))):
            files.append(str(path))
    counts: dict[str, int] = {}
    try:
        merged = multiprocess.MultiProcessCollector.merge(files, accumulate=False)
    except (OSError, ValueError):  # a file removed while read: the next tick reads again
        return counts
    for metric in merged:
        if metric.name != IN_FLIGHT_METRIC:
            continue
        for sample in metric.samples:
            pool = sample.labels.get("pool", "")
            counts[pool] = counts.get(pool, 0) + max(0, round(sample.value))
    return counts


def cold_waits(metrics_dir: str | Path) -> dict[str, float]:
    """Pool key → when a call last waited for a worker of it with none running (Unix time)."""
    files = [str(path) for path in Path(metrics_dir).glob("gauge_max_*.db")]
    latest: dict[str, float] = {}
    try:
        merged = multiprocess.MultiProcessCollector.merge(files, accumulate=False)
    except (OSError, ValueError):
        return latest
    for metric in merged:
        if metric.name == COLD_WAIT_METRIC:
            for sample in metric.samples:
                pool = sample.labels.get("pool", "")
                latest[pool] = max(latest.get(pool, 0.0), sample.value)
    return latest


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process (the scaler may not run as Gunicorn's user)
        return True
    return True
