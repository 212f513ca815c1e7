"""Where every process of a stack listens: decided once at start, saved in the run directory.

The plan is the resolved form of the settings (free ports picked, model versions pinned); the
renderers and the running app both read it, so the configs and the app never disagree.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import socket
import tempfile
from contextlib import ExitStack
from pathlib import Path

from gateway.backends import KINDS
from gateway.errors import ConfigError
from gateway.settings import ModelSettings, Settings
from gateway.store import ModelStore
from gateway.topology import PLAN_FILE, Endpoint, Plan, PoolPlan

# The plan's types live in gateway.topology (the backends and the registry read plans too); the
# renderers and the stack, which build and run plans, keep importing them from here.
__all__ = ["PLAN_FILE", "Endpoint", "Plan", "PoolPlan", "make_plan", "make_worker_plan", "socket_dir"]

# Under run_dir (or a short private directory when run_dir is too deep for AF_UNIX's 107 bytes):
# `gw/` Gunicorn and the internal NGINX (reached by NGINX and Gunicorn), `r/` the R workers
# (reached by NGINX).
SOCKET_DIR = "sock"
GATEWAY_SOCKETS = "gw"
R_SOCKETS = "r"
_MAX_SOCKET_PATH = 100


def make_plan(settings: Settings, *, port: int | None = None) -> Plan:
    """Resolve ports (0 → a free loopback port) and the versions each R pool will serve."""
    server = settings.server
    store = ModelStore(settings.store_path)
    KINDS.check_settings(settings)
    r_models = [m for m in settings.models.values() if KINDS.get(m.backend).r_pool]
    rollouts = {m.name: rollout_versions(m, store) for m in r_models}
    n_workers = sum(m.pool_size * (1 + len(rollouts[m.name])) for m in r_models)
    sockets = socket_dir(settings.run_dir)
    # TCP only when the config asks for a port: a loopback port is open to every local user, who
    # would skip NGINX's limits on the way to Gunicorn and the API keys on the way to R.
    gunicorn = (Endpoint("127.0.0.1", server.gunicorn_port) if server.gunicorn_port
                else Endpoint.unix(sockets / GATEWAY_SOCKETS / "app.sock"))
    internal = (Endpoint("127.0.0.1", server.internal_port) if server.internal_port
                else Endpoint.unix(sockets / GATEWAY_SOCKETS / "nginx.sock"))
    next_base = server.worker_port_base
    worker_sockets = iter(range(1, n_workers + 1))
    pools: dict[str, PoolPlan] = {}
    extra_pools: dict[str, PoolPlan] = {}

    def ports_for(model: ModelSettings) -> list[Endpoint]:
        nonlocal next_base
        ports = []
        for _ in range(model.pool_size):
            if next_base:
                ports.append(Endpoint("127.0.0.1", next_base))
                next_base += 1
            else:
                ports.append(Endpoint.unix(sockets / R_SOCKETS / f"{next(worker_sockets)}.sock"))
        return ports

    for model in r_models:
        pools[model.name] = _pool_plan(settings, store, model, ports_for(model), hosts=model.hosts)
        for version in rollouts[model.name]:
            if version == pools[model.name].version:
                continue
            pinned = dataclasses.replace(model, version=version)
            pool = dataclasses.replace(_pool_plan(settings, store, pinned, ports_for(model), hosts=()), primary=False)
            extra_pools[pool.key] = pool
    return Plan(
        run_dir=str(settings.run_dir),
        public=Endpoint(server.host, port or server.port),
        gunicorn=gunicorn,
        internal=internal,
        pools=pools,
        extra_pools=extra_pools,
    )


def rollout_versions(model: ModelSettings, store: ModelStore) -> list[str]:
    """Stored versions an R model's aliases, traffic and shadow name (each gets its own pool)."""
    if model.script is not None:
        return []
    names = [*model.aliases.values(), *model.traffic, *([model.shadow] if model.shadow else [])]
    versions = {model.aliases.get(name, name) for name in names}
    stored = set(store.versions(model.name))
    return sorted((v for v in versions if v in stored), key=int)


def free_ports(count: int) -> list[int]:
    """Distinct free loopback ports (held open together so none is handed out twice)."""
    with ExitStack() as stack:
        ports = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind(("127.0.0.1", 0))
            ports.append(sock.getsockname()[1])
        return ports


def socket_dir(run_dir: Path) -> Path:
    """Where a stack's Unix sockets live: run_dir/sock, or /tmp/gateway-sock-<hash of run_dir>
    when run_dir is so deep that a socket path would pass AF_UNIX's limit (`gateway up` creates
    it and refuses one that someone else made first)."""
    preferred = Path(run_dir).resolve() / SOCKET_DIR
    longest = preferred / R_SOCKETS / "99999.sock"
    if len(os.fsencode(longest)) <= _MAX_SOCKET_PATH:
        return preferred
    digest = hashlib.sha256(os.fsencode(preferred)).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"gateway-sock-{digest}"


def _endpoint(address: str) -> Endpoint:
    host, _, port = address.rpartition(":")
    return Endpoint(host, int(port))


def _pool_plan(settings: Settings, store: ModelStore, model: ModelSettings, workers: list[Endpoint],
               hosts: tuple[str, ...]) -> PoolPlan:
    """The pool of one R model: what it serves (a version or a script) and where."""
    if model.script is not None:
        kind, target, version = "script", str(settings.resolve(model.script)), "script"
    else:
        version = store.resolve(model.name, model.version)
        meta = store.read_meta(model.name, version)
        directory = store.version_dir(model.name, version)
        kind = "script" if meta.format == "plumber" else "model"
        if kind == "model" and model.predict_route is not None:
            raise ConfigError(
                f"models.{model.name}.predict_route: version {version} is a saved R model, not a "
                "Plumber script; the generic worker already answers predict, remove predict_route"
            )
        target = str(directory / meta.artefact) if kind == "script" else str(directory)
    scale = model.scale
    return PoolPlan(
        model=model.name,
        kind=kind,  # type: ignore[arg-type]
        target=target,
        version=version,
        workers=tuple(workers),
        timeout_s=model.timeout_s,
        hosts=tuple(_endpoint(h) for h in hosts),
        min_workers=None if scale is None or not workers else scale.min,
        idle_s=0.0 if scale is None else scale.idle_s,
    )


def make_worker_plan(settings: Settings, listen_host: str) -> Plan:
    """`gateway worker` on the host whose private address is listen_host.

    It runs the pools of every model whose `hosts` names this address; each pool gets its
    model's `workers` local Plumber processes behind an NGINX on that host:port.
    """
    KINDS.check_settings(settings)
    store = ModelStore(settings.store_path)
    assigned = [
        (model, _endpoint(address))
        for model in settings.models.values() if KINDS.get(model.backend).r_pool
        for address in model.hosts if _endpoint(address).host == listen_host
    ]
    if not assigned:
        raise ConfigError(f"no model lists {listen_host} in its `hosts`; nothing to run on this host")
    sockets = socket_dir(settings.run_dir)
    paths = iter(range(1, sum(max(1, model.pool_size) for model, _ in assigned) + 1))
    pools, listens = {}, {}
    for model, listen in assigned:
        # The other host's gateway reaches this NGINX over TCP (`listen`); its hop to the local R
        # workers stays on this host, so it is a socket.
        workers = [Endpoint.unix(sockets / R_SOCKETS / f"{next(paths)}.sock") for _ in range(max(1, model.pool_size))]
        # Fixed at its most: the load that would scale it is seen by the gateway's host, not here.
        pools[model.name] = dataclasses.replace(_pool_plan(settings, store, model, workers, hosts=()),
                                                min_workers=None)
        listens[model.name] = listen
    unused = Endpoint("127.0.0.1", 0)
    return Plan(run_dir=str(settings.run_dir), public=unused, gunicorn=unused, internal=unused,
                pools=pools, role="worker", listens=listens)
