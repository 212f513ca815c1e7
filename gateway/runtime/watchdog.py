"""A supervisord event listener that recycles R workers stuck in one request.

A Plumber worker answers one request at a time: one stuck in an endless `predict` (a loop, a
hung native call) keeps its slot forever after the gateway has answered its caller 504. Every
5 s (TICK_5) this listener asks each running worker for its health route; a worker that has not
answered for longer than its model's `timeout_s` plus a grace period is killed, and supervisord
starts a fresh one. A worker busy with a legitimately long predict (within its timeout) is left
alone: it cannot answer the probe either, but not for that long. A worker that has not answered
since supervisord (re)started it is loading R and its model, which takes seconds on a busy
host: it gets START_LIMIT_S before it counts as stuck (supervisord's PROCESS_STATE_STARTING
events say when a worker starts).

Run by supervisord as `python -m gateway.runtime.watchdog <plan.json>`; it speaks the event
listener protocol on stdin/stdout and logs to stderr.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from gateway.probe import get_status
from gateway.runtime.events import serve, tokens
from gateway.topology import Endpoint, Plan

GRACE_S = 10.0  # beyond the model's timeout, before a silent worker counts as stuck
PROBE_TIMEOUT_S = 1.0
START_LIMIT_S = 60.0  # silence allowed before a (re)started worker's first answer


@dataclass(frozen=True)
class Watched:
    program: str  # supervisord's "group:name"
    endpoint: Endpoint
    health_path: str
    limit_s: float


@dataclass
class Watchdog:
    workers: list[Watched]
    probe: Callable[[Watched], bool]
    kill: Callable[[str], bool | None]  # False: not running (a stopped worker of a scaling pool)
    silent_since: dict[str, float] = field(default_factory=dict)
    starting: set[str] = field(default_factory=set)  # (re)started, not answered since: loading

    def started(self, program: str) -> None:
        """supervisord (re)started `program`: until it first answers, it is loading, not stuck."""
        self.starting.add(program)
        self.silent_since.pop(program, None)

    def tick(self, now: float) -> list[str]:
        """Probe every worker; kill and return those silent for longer than their limit."""
        killed = []
        for worker in self.workers:
            if self.probe(worker):
                self.silent_since.pop(worker.program, None)
                self.starting.discard(worker.program)
                continue
            since = self.silent_since.setdefault(worker.program, now)
            limit = max(worker.limit_s, START_LIMIT_S) if worker.program in self.starting else worker.limit_s
            if now - since > limit:
                if self.kill(worker.program) is False:
                    self.silent_since.pop(worker.program, None)  # stopped on purpose: not stuck
                    continue
                self.started(worker.program)  # supervisord starts a fresh process
                killed.append(worker.program)
        return killed


def watched_workers(plan: Plan) -> list[Watched]:
    return [
        Watched(f"plumber-{pool.key}:plumber-{pool.key}-{index}", endpoint, pool.health_path,
                pool.timeout_s + GRACE_S)
        for pool in plan.all_pools
        for index, endpoint in enumerate(pool.workers, start=1)
    ]


def http_probe(worker: Watched) -> bool:
    return get_status(worker.endpoint, worker.health_path, PROBE_TIMEOUT_S) == 200


def listen(watchdog: Watchdog, stdin: TextIO, stdout: TextIO, clock: Callable[[], float] = time.monotonic) -> None:
    def handle(headers: dict[str, str], payload: str) -> None:
        if headers.get("eventname") == "PROCESS_STATE_STARTING":
            fields = tokens(payload)
            watchdog.started(f"{fields.get('groupname')}:{fields.get('processname')}")
        elif headers.get("eventname", "").startswith("TICK"):
            for program in watchdog.tick(clock()):
                print(f"watchdog: killed {program}: no answer for longer than its timeout", file=sys.stderr,
                      flush=True)

    serve(handle, stdin, stdout)


def _supervisor_kill(program: str) -> bool:
    from supervisor import childutils

    rpc = childutils.getRPCInterface(__import__("os").environ)
    try:
        if rpc.supervisor.getProcessInfo(program)["statename"] in {"STOPPED", "STOPPING", "EXITED", "FATAL"}:
            return False  # silent because it is not running: a scaling pool's stopped worker, a crash
        rpc.supervisor.signalProcess(program, "KILL")
    except Exception as exc:  # not running any more (restarting): nothing to recycle
        print(f"watchdog: could not signal {program}: {exc}", file=sys.stderr, flush=True)
    return True


if __name__ == "__main__":
    plan = Plan.load(Path(sys.argv[1]))
    workers = watched_workers(plan)
    # Started with the stack (or restarted): every worker may still be loading.
    listen(Watchdog(workers, http_probe, _supervisor_kill, starting={w.program for w in workers}),
           sys.stdin, sys.stdout)
