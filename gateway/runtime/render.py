"""Render the NGINX, supervisord and Gunicorn configs of a stack from the settings and its plan.

Nothing else writes these files and nobody edits them: a change goes into the gateway config,
then `gateway reload` (or down/up) renders them again.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
import pwd
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import jinja2

from gateway.backends import KINDS
from gateway.errors import ConfigError
from gateway.hoststate import read_states
from gateway.metrics import RESTARTS_FILE, metrics_dir
from gateway.paths import r_entrypoint, resource
from gateway.private_files import private_dir, write_private
from gateway.rlib import library_dir
from gateway.runtime.error_pages import REQUEST_ID, envelope_map, error_pages
from gateway.runtime.plan import Endpoint, Plan, PoolPlan
from gateway.runtime.privileges import accounts
from gateway.runtime.tomlwrite import settings_to_toml
from gateway.settings import ServerSettings, Settings, cluster_secret, cluster_tls

NGINX = "/usr/sbin/nginx"
SETTINGS_COPY = "settings.toml"
_TEMPLATES = "runtime/templates"  # package data (gateway.paths.resource)
_UPSTREAM_KEEPALIVE_S = 30
_GUNICORN_KEEPALIVE_S = 75
GRACEFUL_TIMEOUT_S = 30
# Under run_dir: one empty file per Gunicorn worker that has loaded the app and its models.
WORKERS_READY_DIR = "workers-ready"
# Libraries the Gunicorn master imports before forking (see gunicorn.conf.py.j2): every worker
# imports Flask, numpy and pandas (gateway.backends.python); each configured kind adds its own.
_PRELOAD_ALWAYS = ("flask", "numpy", "pandas")
# Several keys may share one address (a team behind one NAT): the address limit is looser.
_ADDRESS_RATE_FACTOR = 4
_MAX_SOCKET_PATH = 100  # AF_UNIX paths are limited to 107 bytes on Linux
# Under run_dir: the Unix sockets of the relays that add the cluster secret on hops to other hosts.
RELAY_DIR = "relay"
# Under run_dir: one file per pool with hosts, the `server` lines of its upstream for those hosts;
# the host prober rewrites it (a host out: `down`) and reloads NGINX.
HOST_SERVERS_DIR = "upstreams"
# Per NGINX worker; thousands of slow clients must not exhaust it (issue 14: 1024 did).
_WORKER_CONNECTIONS = 8192


def render_all(settings: Settings, plan: Plan, *, foreground: bool = False) -> dict[str, Path]:
    """Write every config of the stack into plan.run_dir; returns name → path.

    `foreground` renders supervisord with nodaemon (containers: it runs as the main process).
    """
    # A re-render (`gateway reload`) must not take back what privileges.grant gave the service
    # users' group, or NGINX and Gunicorn could not reach the sockets until it ran again.
    shared = accounts(settings) is not None
    run_dir = private_dir(plan.run_dir, group_may_read=shared)
    for sub in ("logs", "tmp", WORKERS_READY_DIR, RELAY_DIR, HOST_SERVERS_DIR, "jobs"):  # jobs: gateway/jobs.py
        private_dir(run_dir / sub, group_may_read=shared)
    # `nginx -t` binds its Unix sockets: their directories must exist (`up` makes them afresh).
    for endpoint in (plan.internal, *(w for pool in plan.all_pools for w in pool.workers)):
        if endpoint.path:
            Path(endpoint.path).parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    context = _context(settings, plan, foreground)
    env = _environment()
    files = {
        "settings": (SETTINGS_COPY, settings_to_toml(settings)),
        "nginx": ("nginx.conf", env.get_template("nginx.conf.j2").render(context)),
        "supervisord": ("supervisord.conf", env.get_template("supervisord.conf.j2").render(context)),
        "gunicorn": ("gunicorn.conf.py", env.get_template("gunicorn.conf.py.j2").render(context)),
    }
    tls = cluster_tls(settings) is not None
    states = read_states(run_dir, max_age_s=float("inf")) or {}  # a re-render keeps what the prober took out
    for pool in plan.all_pools if plan.role == "gateway" else ():
        if pool.hosts:
            out = {address for address, state in states.get(pool.key, {}).items() if not state.in_upstream}
            write_host_servers(run_dir, pool, relayed(pool, bool(cluster_secret(settings)), tls), out)
    written = {}
    for key, (name, text) in files.items():
        # nginx.conf may hold the cluster secret: every config is 0600 from its creation.
        written[key] = write_private(run_dir / name, text)
    return written


def render_to(settings: Settings, plan: Plan, out_dir: str | Path) -> dict[str, Path]:
    """`gateway render --out DIR`: a complete, runnable set of configs rooted at out_dir."""
    out = private_dir(Path(out_dir).resolve())
    moved = dataclasses.replace(plan, run_dir=str(out))
    moved.save()
    return render_all(settings, moved)


def supervisor_socket(run_dir: str | Path) -> Path:
    """The supervisord control socket: in run_dir unless that path is too long for AF_UNIX."""
    path = Path(run_dir).resolve() / "supervisor.sock"
    if len(os.fsencode(path)) <= _MAX_SOCKET_PATH:
        return path
    digest = hashlib.sha256(os.fsencode(path)).hexdigest()[:16]
    return Path("/tmp") / f"gateway-supervisor-{digest}.sock"


def relayed(pool: PoolPlan, has_secret: bool, tls: bool = False) -> bool:
    """Whether the pool's hosts are reached through relays (one NGINX server per host): to add
    the cluster secret when the pool also has local workers (NGINX sets headers per location,
    not per server), and always with mutual TLS, so each hop checks its own host's name and the
    pool's local workers stay on plain sockets."""
    return bool(pool.hosts) and (tls or (has_secret and bool(pool.workers)))


def host_servers_path(run_dir: str | Path, pool: PoolPlan) -> Path:
    return Path(run_dir).resolve() / HOST_SERVERS_DIR / f"{pool.key}.conf"


def host_servers(run_dir: str | Path, pool: PoolPlan, relay: bool, out: set[str]) -> str:
    """The upstream `server` lines of a pool's hosts; those in `out` (addresses) are `down`."""
    lines = ["# Written by `gateway up` and the host prober (gateway/runtime/prober.py); do not edit."]
    for host in pool.hosts:
        # Another host: a dead one costs a connect timeout, so passive marking is worth it here.
        target = _nginx_quote(f"unix:{relay_socket(run_dir, pool, host)}") if relay else host.address
        state = "down" if host.address in out else "max_fails=1 fail_timeout=5s"
        lines.append(f"server {target} {state};")
    return "\n".join(lines) + "\n"


def write_host_servers(run_dir: str | Path, pool: PoolPlan, relay: bool, out: set[str]) -> Path:
    return write_private(host_servers_path(run_dir, pool), host_servers(run_dir, pool, relay, out))


def relay_upstream(pool: PoolPlan, host: Endpoint) -> str:
    """The upstream a TLS relay passes to: one host, kept alive."""
    return "h_" + hashlib.sha256(f"{pool.key}|{host.address}".encode()).hexdigest()[:12]


def relay_socket(run_dir: str | Path, pool: PoolPlan, host: Endpoint) -> str:
    """The relay to one host of one pool: a Unix socket in the (0700) run directory, so no other
    local user can reach a hop that adds the cluster secret."""
    digest = hashlib.sha256(f"{pool.key}|{host.address}".encode()).hexdigest()[:12]
    path = Path(run_dir).resolve() / RELAY_DIR / f"{digest}.sock"
    if len(os.fsencode(path)) > _MAX_SOCKET_PATH:
        raise ConfigError(f"server.run_dir {Path(run_dir).resolve()} is too long for the relay sockets to "
                          f"worker hosts (Unix socket paths are limited to {_MAX_SOCKET_PATH} bytes); use a shorter"
                          " one")
    return str(path)


def nginx_command(run_dir: str | Path) -> list[str]:
    """NGINX rooted in run_dir; `-e stderr` keeps even start-up errors out of the system log
    (under supervisord, stderr is logs/nginx-error.log, rotated)."""
    root = Path(run_dir).resolve()
    return [NGINX, "-p", f"{root}/", "-c", str(root / "nginx.conf"), "-e", "stderr"]


def bin_path(name: str) -> Path:
    """A console script of the environment running the gateway (supervisord, gunicorn)."""
    return Path(sys.executable).parent / name


def r_command(pool: PoolPlan, worker: Endpoint) -> list[str]:
    entry = "worker.R" if pool.kind == "model" else "script.R"
    # A socket is passed as host `unix:<path>` (port unused): gatewayr serves it with httpuv's pipe server.
    command = ["Rscript", str(r_entrypoint(entry)), pool.target, worker.address if worker.path
               else worker.host, str(worker.port)]
    # The generic worker stops a model that runs past its timeout_s itself (gatewayr::handle_predict).
    return [*command, f"{pool.timeout_s:g}"] if pool.kind == "model" else command


def _preload_modules(settings: Settings) -> list[str]:
    """What every configured kind asks for, once each, in the order the kinds are configured."""
    kinds = (KINDS.get(model.backend) for model in settings.models.values())
    return list(dict.fromkeys([*_PRELOAD_ALWAYS, *(module for kind in kinds for module in kind.preload)]))


def _context(settings: Settings, plan: Plan, foreground: bool) -> dict[str, Any]:
    run_dir = str(Path(plan.run_dir).resolve())
    server = settings.server
    limit = server.body_limit_bytes
    secret = cluster_secret(settings)
    tls = cluster_tls(settings)
    return {
        "source": settings.config_path or "settings built in code",
        "plan": plan,
        "cluster_secret": secret,
        "tls": tls,
        "host_servers": lambda pool: str(host_servers_path(run_dir, pool)),
        "relay_upstream": relay_upstream,
        "log_stdout": server.log_target == "stdout" or (server.log_target == "auto" and foreground),
        "logship_command": shlex.join([sys.executable, "-m", "gateway.runtime.logship"]),
        "prober_command": shlex.join([sys.executable, "-m", "gateway.runtime.prober", f"{run_dir}/plan.json"]),
        "server": server,
        "run_dir": run_dir,
        "logs": f"{run_dir}/logs",
        "base_dir": str(settings.base_dir),
        "foreground": foreground,
        "user": _supervisor_user(),
        "accounts": accounts(settings),
        "temp_paths": _temp_paths(),
        "body_limit": limit,
        "internal_body_limit": 2 * limit,
        "public_read_timeout_s": int(server.timeout_s) + 5,
        "upstream_keepalive_s": _UPSTREAM_KEEPALIVE_S,
        "gunicorn_keepalive_s": _GUNICORN_KEEPALIVE_S,
        "graceful_timeout_s": GRACEFUL_TIMEOUT_S,
        "preload_modules": _preload_modules(settings),
        "gunicorn_stop_wait_s": GRACEFUL_TIMEOUT_S + 5,
        # NGINX's own error pages, one body per protocol envelope (gateway/runtime/error_pages.py).
        "error_pages": {page.name: page for page in error_pages(server, _too_many(server))},
        "envelope_map": envelope_map(),
        "rate_limit": _rate_limit(server.rate_limit_rps, server.rate_limit_burst),
        "conn_limit": server.max_requests_per_address,
        "worker_connections": _WORKER_CONNECTIONS,
        "worker_rlimit_nofile": 2 * _WORKER_CONNECTIONS + 64,
        "pool_failed_body": _pool_failed_body,
        "relay_socket": lambda pool, host: relay_socket(run_dir, pool, host),
        "relayed": lambda pool: relayed(pool, bool(secret), tls is not None),
        "socket": str(supervisor_socket(run_dir)),
        "rlib": str(library_dir()),
        "config_copy": f"{run_dir}/{SETTINGS_COPY}",
        "r_command": lambda pool, worker: shlex.join(r_command(pool, worker)),
        "gunicorn_command": shlex.join(
            [str(bin_path("gunicorn")), "-c", f"{run_dir}/gunicorn.conf.py", "gateway.wsgi:app"]
        ),
        "nginx_command": shlex.join(nginx_command(run_dir)),
        "metrics_dir": str(metrics_dir(run_dir)),
        "workers_ready_dir": f"{run_dir}/{WORKERS_READY_DIR}",
        "watchdog_command": shlex.join([sys.executable, "-m", "gateway.runtime.watchdog", f"{run_dir}/plan.json"]),
        "scaler_command": shlex.join([sys.executable, "-m", "gateway.runtime.scaler", f"{run_dir}/plan.json"])
        if any(pool.scales for pool in plan.all_pools) else "",
        # Niced from its first instruction: its imports then never compete with the R workers
        # and Gunicorn for the CPU while the stack starts (gateway/job_runner.py, NICENESS).
        "jobs_command": shlex.join([shutil.which("nice") or "/usr/bin/nice", "-n", "10", sys.executable, "-m",
                                    "gateway.job_runner"]),
        "restarts_command": shlex.join(
            [sys.executable, "-m", "gateway.runtime.restarts", f"{run_dir}/{RESTARTS_FILE}"]
        ),
    }


def _too_many(server: ServerSettings) -> str:
    """The 429's detail: which of NGINX's limits the client may have hit."""
    limits = []
    if server.rate_limit_rps > 0:
        limits.append(f"more than {server.rate_limit_rps:g} requests per second from this key or address")
    if server.max_requests_per_address:
        limits.append(f"more than {server.max_requests_per_address} requests at once from this address")
    return " or ".join(limits) + "; retry after a second"


def _rate_limit(rps: float, burst: int) -> dict[str, str | int] | None:
    """The per-key rate and the looser per-address backstop, in NGINX's syntax."""
    if rps <= 0:
        return None
    factor = _ADDRESS_RATE_FACTOR
    return {"rate": _nginx_rate(rps), "burst": burst, "factor": factor,
            "address_rate": _nginx_rate(rps * factor), "address_burst": burst * factor}


def _nginx_rate(rps: float) -> str:
    """NGINX's rate syntax takes whole numbers: below 1 r/s it is written per minute."""
    return f"{round(rps)}r/s" if rps >= 1 else f"{max(1, round(rps * 60))}r/m"


def _pool_failed_body(model: str) -> str:
    message = f"no R worker of model {model} answered (pool down, crashed or timed out)"
    return json.dumps({"error": {"code": "upstream_failed", "message": message}}, separators=(",", ":"))


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(resource(_TEMPLATES)),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,  # configs, not HTML
    )
    env.filters.update(nq=_nginx_quote, nq_body=_nginx_body, sv=_supervisor, svq=_supervisor_quoted,
                       py=repr)
    return env


def _nginx_quote(text: str) -> str:
    """A double-quoted NGINX string (paths may hold spaces)."""
    return '"' + str(text).replace("\\", "\\\\").replace('"', '\\"') + '"'


def _nginx_body(text: str) -> str:
    """A single-quoted NGINX `return` body with the request-id placeholder as a variable."""
    if "$" in text:
        raise ValueError(f"'$' would start an NGINX variable in {text!r}")
    quoted = "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"
    return quoted.replace(REQUEST_ID, "${gateway_request_id}")


def _supervisor(text: str) -> str:
    """supervisord expands %(name)s in values: a literal % is written %%."""
    return str(text).replace("%", "%%")


def _supervisor_quoted(text: str) -> str:
    """A quoted value inside supervisord's `environment=` list."""
    return '"' + _supervisor(text).replace("\\", "\\\\").replace('"', '\\"') + '"'


def _supervisor_user() -> str | None:
    # supervisord itself stays root (it starts each program as its user); saying so keeps it quiet.
    if os.geteuid() != 0:
        return None
    return pwd.getpwuid(os.geteuid()).pw_name


@functools.lru_cache(maxsize=1)
def _temp_paths() -> dict[str, str]:
    """Temp dirs for every module this NGINX has, so none falls back to a system path."""
    try:
        flags = subprocess.run([NGINX, "-V"], capture_output=True, text=True, check=False).stderr
    except OSError:
        flags = ""
    paths = {"client_body": "body", "proxy": "proxy"}
    for module in ("fastcgi", "uwsgi", "scgi"):
        if f"--without-http_{module}_module" not in flags:
            paths[module] = module
    return paths
