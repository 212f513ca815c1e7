"""Where every process of a stack listens, as data: the plan saved in the run directory.

Plain dataclasses with no behaviour beyond (de)serialising, apart from gateway.runtime so the
backends (a pool's address) and the registry can read a plan without importing the process
runtime that starts the stack; gateway.runtime.plan decides the plan.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

from gateway.private_files import write_private

PLAN_FILE = "plan.json"


@dataclass(frozen=True)
class Endpoint:
    """A TCP host:port, or (path set) a Unix domain socket: hops inside one host use sockets in
    a private directory, so no other local user can reach R workers or the internal NGINX."""

    host: str
    port: int
    path: str = ""

    @property
    def address(self) -> str:
        """As NGINX writes it: `host:port` or `unix:/path`."""
        return f"unix:{self.path}" if self.path else f"{self.host}:{self.port}"

    @classmethod
    def unix(cls, path: str | Path) -> Endpoint:
        return cls("", 0, str(path))


@dataclass(frozen=True)
class PoolPlan:
    model: str
    kind: Literal["model", "script"]  # generic worker over model.rds, or a user's plumber.R
    target: str  # version directory (model) or script path (script)
    version: str
    workers: tuple[Endpoint, ...]  # Plumber processes supervisord runs on this host
    timeout_s: float
    hosts: tuple[Endpoint, ...] = ()  # remote entrypoints of the same pool (not supervised here)
    primary: bool = True  # the model's current version; others serve rollout versions
    # Bumped when `gateway reload` replaces the pool (another version, script, worker count or
    # timeout): the new pool gets its own key, programs and sockets, so old and new run side by side.
    generation: int = 0
    # A pool that follows the load (gateway/runtime/autoscale.py): the workers always running, of
    # `workers` (the most it runs); None: a fixed pool, every worker always running.
    min_workers: int | None = None
    idle_s: float = 0.0  # a scaling pool stops a worker no request needed for this long

    @property
    def scales(self) -> bool:
        return self.min_workers is not None

    def autostart(self, index: int) -> bool:
        """Whether supervisord starts worker `index` (1-based) with the stack; the scaler starts
        the others on demand."""
        return self.min_workers is None or index <= self.min_workers

    @property
    def key(self) -> str:
        """Names the pool in configs (upstream, location, programs); '-' never occurs in a model name."""
        return self.slot if not self.generation else f"{self.slot}--g{self.generation}"

    @property
    def slot(self) -> str:
        """What the pool is for, whatever it runs: a model's current version, or a rollout version."""
        return self.model if self.primary else f"{self.model}--v{self.version}"

    @property
    def programs(self) -> list[str]:
        """The supervisord programs of its local workers, `plumber-<key>-<i>` (group `plumber-<key>`)."""
        return [f"plumber-{self.key}-{index}" for index in range(1, len(self.workers) + 1)]

    @property
    def upstreams(self) -> tuple[Endpoint, ...]:
        """Every address the pool's NGINX upstream balances over."""
        return self.workers + self.hosts

    @property
    def health_path(self) -> str:
        return "/healthz" if self.kind == "model" else "/__gateway/healthz"


@dataclass(frozen=True)
class Plan:
    run_dir: str
    public: Endpoint
    gunicorn: Endpoint
    internal: Endpoint  # the internal NGINX that load-balances the R pools
    pools: dict[str, PoolPlan]
    # "gateway": the whole stack. "worker": only R pools, each behind an NGINX listening on this
    # host's private address (`listens`), for a gateway on another host (`gateway worker`).
    role: str = "gateway"
    listens: dict[str, Endpoint] = field(default_factory=dict)
    # Pools of the other versions a model's aliases, traffic or shadow name, by pool key.
    extra_pools: dict[str, PoolPlan] = field(default_factory=dict)

    @property
    def all_pools(self) -> list[PoolPlan]:
        return [*self.pools.values(), *self.extra_pools.values()]

    @property
    def internal_url(self) -> str:
        """`http://host:port`, or `unix:/path` for the internal NGINX on a socket."""
        return self.internal.address if self.internal.path else f"http://{self.internal.address}"

    def save(self) -> Path:
        # A reload replaces it under a running stack: the service user's Gunicorn reads it.
        return write_private(Path(self.run_dir) / PLAN_FILE, json.dumps(asdict(self), indent=2), keep_owner=True)

    @classmethod
    def load(cls, path: str | Path) -> Plan:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
        def pool_of(pool: dict) -> PoolPlan:
            return PoolPlan(**{**pool, "workers": tuple(Endpoint(**w) for w in pool["workers"]),
                               "hosts": tuple(Endpoint(**h) for h in pool.get("hosts", ()))})

        pools = {name: pool_of(pool) for name, pool in raw["pools"].items()}
        extra_pools = {key: pool_of(pool) for key, pool in raw.get("extra_pools", {}).items()}
        return cls(
            run_dir=raw["run_dir"],
            public=Endpoint(**raw["public"]),
            gunicorn=Endpoint(**raw["gunicorn"]),
            internal=Endpoint(**raw["internal"]),
            pools=pools,
            role=raw.get("role", "gateway"),
            listens={name: Endpoint(**e) for name, e in raw.get("listens", {}).items()},
            extra_pools=extra_pools,
        )
