"""The scaler: one supervisord program per stack that starts and stops the workers of the pools
that follow the load (`workers = {min, max, idle_s}`).

Every TICK_S it reads each scaling pool's calls in flight (gateway.poolstate.in_flight, summed
over Gunicorn's workers) and its workers' states (supervisord's getAllProcessInfo), asks
gateway.runtime.autoscale what to do, and does it through supervisord's XML-RPC (startProcess,
stopProcess, never waiting). It writes the states for /metrics, /readyz and the status page.

Why one program and not the app: Gunicorn's workers are several and come and go, so each would
decide alone and twice; and the app runs as the service user, which must not control processes.
The scaler runs as supervisord's user, like the watchdog. Pools are re-read when plan.json
changes (`gateway reload`).

Run as `python -m gateway.runtime.scaler <plan.json>`; one line per action on stdout.
"""

from __future__ import annotations

import os
import socket
import sys
import time
import xmlrpc.client
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway.metrics import metrics_dir
from gateway.poolstate import WorkerStates, cold_waits, in_flight, write_states
from gateway.probe import get_status
from gateway.runtime.autoscale import Decision, Limits, Tracker, decide
from gateway.topology import Endpoint, Plan, PoolPlan

TICK_S = 0.25
_STARTING = {"STARTING", "BACKOFF"}
_STOPPED = {"STOPPED", "EXITED"}  # STOPPING is neither: it is on its way out
_PROBE_TIMEOUT_S = 0.2


@dataclass(frozen=True)
class Step:
    """One action taken on one worker program (supervisord's `group:name`)."""

    program: str
    action: str
    reason: str


@dataclass
class Scaler:
    """The scaling pools of one plan, and what was seen of each so far."""

    pools: list[PoolPlan]
    started_at: float
    trackers: dict[str, Tracker] = field(default_factory=dict)
    waits_seen: dict[str, float] = field(default_factory=dict)  # the last cold wait seen per pool

    def tick(self, now: float, infos: Iterable[dict[str, Any]], calls: dict[str, int],
             accepts: Callable[[Endpoint], bool],
             idle: Callable[[PoolPlan, Endpoint], bool],
             waits: dict[str, float] | None = None) -> tuple[list[Step], dict[str, WorkerStates]]:
        """One round: the steps to take now, and every scaling pool's worker states.

        A worker supervisord still calls STARTING (its startsecs) but that accepts connections
        already serves requests, so it counts as running. The worker stopped is one that is idle
        right now (`idle`: it answers its health route at once, which R cannot while it predicts),
        the highest-numbered such; none idle, none stopped this round.
        """
        waits = waits or {}
        by_name = {info["name"]: info["statename"] for info in infos}
        steps, states = [], {}
        for pool in self.pools:
            names = [f"plumber-{pool.key}-{i}" for i in range(1, len(pool.workers) + 1)]
            state = {name: by_name.get(name, "STOPPED") for name in names}
            running = [n for n, worker in zip(names, pool.workers, strict=True)
                       if state[n] == "RUNNING" or (state[n] in _STARTING and accepts(worker))]
            starting = [n for n in names if state[n] in _STARTING and n not in running]
            fatal = [n for n in names if state[n] == "FATAL"]
            startable = [n for n in names if state[n] in _STOPPED]
            states[pool.key] = WorkerStates(running=len(running), starting=len(starting),
                                            stopped=len(names) - len(running) - len(starting) - len(fatal),
                                            fatal=len(fatal))
            tracker = self.trackers.setdefault(pool.key, Tracker(idle_s=pool.idle_s, since=self.started_at))
            # A call that waited since the last round; the first round only learns where things stand.
            last_wait = waits.get(pool.key, 0.0)
            asked = last_wait > self.waits_seen.setdefault(pool.key, last_wait)
            self.waits_seen[pool.key] = max(last_wait, self.waits_seen[pool.key])
            signals = tracker.observe(now, len(running), len(starting), calls.get(pool.key, 0), asked)
            limits = Limits(min=pool.min_workers or 0, max=len(pool.workers), idle_s=pool.idle_s)
            decision = decide(signals, limits)
            if decision.action == "stop":
                workers = dict(zip(names, pool.workers, strict=True))
                running = [n for n in running if idle(pool, workers[n])]
            step = self._step(pool, decision, running, startable)
            if step is not None:
                if step.action == "start":
                    tracker.started(now)
                steps.append(step)
        return steps, states

    @staticmethod
    def _step(pool: PoolPlan, decision: Decision, running: list[str], startable: list[str]) -> Step | None:
        if decision.action == "start" and startable:
            return Step(f"plumber-{pool.key}:{startable[0]}", "start", decision.reason)
        if decision.action == "stop" and running:
            return Step(f"plumber-{pool.key}:{running[-1]}", "stop", decision.reason)
        return None


def accepts(endpoint: Endpoint) -> bool:
    """Whether a worker's socket (or port) takes a connection: R has loaded and listens."""
    family, address = ((socket.AF_UNIX, endpoint.path) if endpoint.path
                       else (socket.AF_INET, (endpoint.host, endpoint.port)))
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.settimeout(_PROBE_TIMEOUT_S)
        try:
            sock.connect(address)
        except OSError:
            return False
    return True


def idle(pool: PoolPlan, endpoint: Endpoint) -> bool:
    """Whether a worker answers its health route at once: R is single-threaded, so one busy with
    a request cannot, and one that can has nothing in hand to lose when it is stopped."""
    return get_status(endpoint, pool.health_path, _PROBE_TIMEOUT_S) == 200


def run(plan_path: Path, rpc: Any, clock: Callable[[], float] = time.monotonic) -> None:
    """The loop: tick, act, publish the states; until supervisord stops this program."""
    mtime, scaler = -1.0, None
    published: dict[str, WorkerStates] | None = None
    while True:
        if plan_path.stat().st_mtime != mtime:  # `gateway reload` may have changed the pools
            mtime = plan_path.stat().st_mtime
            plan = Plan.load(plan_path)
            scaler = Scaler([p for p in plan.all_pools if p.scales], started_at=clock())
            calls_dir = metrics_dir(plan.run_dir)
        assert scaler is not None
        try:
            infos = rpc.getAllProcessInfo()
        except (OSError, xmlrpc.client.Error) as exc:
            if not (isinstance(exc, xmlrpc.client.Fault) and exc.faultString == "SHUTDOWN_STATE"):
                print(f"scaler: supervisord did not answer: {exc}", flush=True)
            time.sleep(1.0)
            continue
        steps, states = scaler.tick(clock(), infos, in_flight(calls_dir), accepts, idle, cold_waits(calls_dir))
        for step in steps:
            _act(rpc, step)
        if states != published:
            write_states(plan.run_dir, states, owner_of=plan_path)
            published = states
        time.sleep(TICK_S)


def _act(rpc: Any, step: Step) -> None:
    call = rpc.startProcess if step.action == "start" else rpc.stopProcess
    try:
        call(step.program, False)
    except xmlrpc.client.Fault as exc:  # ALREADY_STARTED, NOT_RUNNING: the next tick sees the truth
        print(f"scaler: {step.action} {step.program} failed: {exc.faultString}", flush=True)
        return
    print(f"scaler: {step.action} {step.program}: {step.reason}", flush=True)


if __name__ == "__main__":
    from supervisor import childutils

    run(Path(sys.argv[1]), childutils.getRPCInterface(os.environ).supervisor)
