"""Which R pools a `gateway reload` starts, keeps and stops: the configured plan beside the running one.

A pool whose version, script, worker count or timeout changes is replaced by a new pool: a new
generation in its key, so its own programs, NGINX upstream and sockets (or ports). Old and new
then run side by side while the routing switches, and the old one stops only once nothing can
send it a request. A pool that did not change keeps its processes (a new `hosts` list only
changes NGINX and the app's plan).
"""

from __future__ import annotations

import dataclasses
import socket
from dataclasses import dataclass
from pathlib import Path

from gateway.runtime.plan import R_SOCKETS, Endpoint, Plan, PoolPlan, make_plan, socket_dir
from gateway.settings import Settings


@dataclass(frozen=True)
class PoolChange:
    """The plan to save once the reload is done, and the pools it starts and retires."""

    plan: Plan
    started: tuple[PoolPlan, ...]
    retired: tuple[PoolPlan, ...]

    @property
    def transition(self) -> Plan:
        """What runs while the switch happens: the new plan's pools and the retired ones (rendered
        into NGINX and supervisord, never saved as the app's plan)."""
        extra = {**self.plan.extra_pools, **{pool.key: pool for pool in self.retired}}
        return dataclasses.replace(self.plan, extra_pools=extra)


def replan(settings: Settings, running: Plan, *, replace_all: bool = False) -> PoolChange:
    """The running plan with the configured R pools: unchanged pools kept as they run, changed
    or added ones (all, with replace_all) with a new generation and fresh worker addresses.
    Raises ConfigError (from make_plan) for a model whose pool cannot be planned (no such
    version, bad script)."""
    wanted = make_plan(settings, port=running.public.port)
    have = {} if replace_all else {pool.slot: pool for pool in running.all_pools}
    addresses = _Addresses(settings, running)
    kept: list[PoolPlan] = []
    started: list[PoolPlan] = []
    for pool in wanted.all_pools:
        old = have.get(pool.slot)
        if old is not None and _runs(old) == _runs(pool):
            kept.append(dataclasses.replace(old, hosts=pool.hosts, idle_s=pool.idle_s))
            continue
        generation = max((p.generation + 1 for p in running.all_pools if p.slot == pool.slot), default=0)
        workers = tuple(addresses.fresh() for _ in pool.workers)
        started.append(dataclasses.replace(pool, workers=workers, generation=generation))
    serving = [*kept, *started]
    keys = {pool.key for pool in serving}
    retired = tuple(pool for pool in running.all_pools if pool.key not in keys)
    plan = dataclasses.replace(
        running,
        pools={pool.model: pool for pool in serving if pool.primary},
        extra_pools={pool.key: pool for pool in serving if not pool.primary},
    )
    return PoolChange(plan, tuple(started), retired)


def program_inputs(settings: Settings) -> tuple[object, ...]:
    """The settings every R program's supervisord section says besides its pool: when they
    change, supervisord would restart each program in place (a gap), so every pool is replaced."""
    server = settings.server
    return server.user, server.r_user, server.log_max_bytes, server.log_backups, server.log_flush_ms


def _runs(pool: PoolPlan) -> tuple[object, ...]:
    """What the pool's processes run: a change in any of these needs new processes."""
    return pool.kind, pool.target, pool.version, len(pool.workers), pool.min_workers, pool.timeout_s


class _Addresses:
    """Worker addresses no running pool holds: the next socket numbers, or the next free ports."""

    def __init__(self, settings: Settings, running: Plan) -> None:
        self._tcp = bool(settings.server.worker_port_base)
        used = [w for pool in running.all_pools for w in pool.workers]
        self._ports = {w.port for w in used if not w.path}
        self._next_port = max(self._ports, default=settings.server.worker_port_base - 1) + 1
        self._sockets = socket_dir(Path(running.run_dir)) / R_SOCKETS
        numbers = [int(Path(w.path).stem) for w in used if w.path and Path(w.path).stem.isdigit()]
        self._next_socket = max(numbers, default=0) + 1

    def fresh(self) -> Endpoint:
        if not self._tcp:
            while (path := self._sockets / f"{self._next_socket}.sock").exists():  # a stopped worker's
                self._next_socket += 1
            self._next_socket += 1
            return Endpoint.unix(path)
        while not _bindable(self._next_port):
            self._next_port += 1
        self._next_port += 1
        return Endpoint("127.0.0.1", self._next_port - 1)


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True
