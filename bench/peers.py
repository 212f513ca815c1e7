"""The peers the gateway is measured against, each in its best configuration, on loopback.

- `plumber_pool`: what an R user builds by hand: N plain Plumber processes serving a saved
  model (bench/baselines/plumber_predict.R) behind one NGINX, which listens twice: once with
  upstream keep-alive and once without, so both configurations of the same pool are measured
  back to back and the better one is the baseline.
- `flask_gunicorn`: what a Python user writes by hand: a Flask route calling the estimator's
  predict (bench/baselines/flask_app.py) under Gunicorn with as many workers as the gateway.

Every process is started in its own session and stopped by its process group (targets._process).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from bench import targets
from gateway.register import REPO_ROOT
from gateway.runtime import procs
from gateway.runtime.plan import free_ports

BASELINES = REPO_ROOT / "bench" / "baselines"


@dataclass(frozen=True)
class Pool:
    """A bare Plumber pool behind NGINX: one URL per NGINX configuration, and every pid."""

    keepalive_url: str
    close_url: str
    pids: list[int]


@contextmanager
def plumber_pool(directory: Path, model_rds: Path, workers: int = 2) -> Iterator[Pool]:
    """`workers` Plumber processes behind NGINX, with and without upstream keep-alive."""
    directory.mkdir(parents=True, exist_ok=True)
    ports = free_ports(workers + 2)
    worker_ports, (keepalive_port, close_port) = ports[:workers], ports[workers:]
    env = {**targets.R_ENV, "MODEL_RDS": str(model_rds)}
    script = BASELINES / "plumber_predict.R"
    with ExitStack() as running:
        pids = []
        for port in worker_ports:
            command = ["Rscript", "-e",
                       f"plumber::pr_run(plumber::plumb('{script}'), host = '127.0.0.1', port = {port})"]
            log = directory / f"plumber-{port}.log"
            pids.append(running.enter_context(targets._process(command, env=env, log=log)))
        servers = "\n".join(f"        server 127.0.0.1:{port};" for port in worker_ports)
        conf = directory / "nginx.conf"
        conf.write_text(_pool_nginx_conf(directory, servers, keepalive_port, close_port), encoding="utf-8")
        pids.append(running.enter_context(targets._process(["nginx", "-c", str(conf), "-p", str(directory)])))
        for port in worker_ports:
            targets._wait_http(f"http://127.0.0.1:{port}/__not_a_route__", 60)
        yield Pool(f"http://127.0.0.1:{keepalive_port}/predict", f"http://127.0.0.1:{close_port}/predict", pids)


def _pool_nginx_conf(directory: Path, servers: str, keepalive_port: int, close_port: int) -> str:
    temp = "\n".join(f"    {kind}_temp_path {directory / kind};" for kind in
                     ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    proxy = "            proxy_pass http://{upstream};\n            proxy_http_version 1.1;\n" \
            '            proxy_set_header Connection "";\n'
    return (
        f"daemon off;\nworker_processes auto;\npid {directory / 'nginx.pid'};\n"
        f"error_log {directory / 'error.log'} warn;\nevents {{ worker_connections 1024; }}\n"
        f"http {{\n    access_log off;\n    keepalive_timeout 65s;\n    keepalive_requests 100000;\n{temp}\n"
        f"    upstream pool_keepalive {{\n        least_conn;\n{servers}\n        keepalive 32;\n    }}\n"
        f"    upstream pool_close {{\n        least_conn;\n{servers}\n    }}\n"
        f"    server {{\n        listen 127.0.0.1:{keepalive_port};\n        location / {{\n"
        + proxy.format(upstream="pool_keepalive") + "        }\n    }\n"
        f"    server {{\n        listen 127.0.0.1:{close_port};\n        location / {{\n"
        + proxy.format(upstream="pool_close") + "        }\n    }\n}\n"
    )


@dataclass(frozen=True)
class One:
    url: str
    pid: int


@contextmanager
def plumber_one(directory: Path, model_rds: Path) -> Iterator[One]:
    """One plain Plumber process serving the model, reached directly (no NGINX)."""
    directory.mkdir(parents=True, exist_ok=True)
    (port,) = free_ports(1)
    script = BASELINES / "plumber_predict.R"
    command = ["Rscript", "-e", f"plumber::pr_run(plumber::plumb('{script}'), host = '127.0.0.1', port = {port})"]
    env = {**targets.R_ENV, "MODEL_RDS": str(model_rds)}
    with targets._process(command, env=env, log=directory / "plumber.log") as pid:
        targets._wait_http(f"http://127.0.0.1:{port}/__not_a_route__", 60)
        yield One(f"http://127.0.0.1:{port}/predict", pid)


@contextmanager
def flask_gunicorn(directory: Path, skops_path: Path, workers: int, threads: int) -> Iterator[tuple[str, int]]:
    """Hand-written Flask under Gunicorn (gthread, `workers` x `threads`); yields URL and master pid."""
    directory.mkdir(parents=True, exist_ok=True)
    (port,) = free_ports(1)
    gunicorn = Path(sys.executable).parent / "gunicorn"
    command = [str(gunicorn), "--bind", f"127.0.0.1:{port}", "--workers", str(workers), "--threads", str(threads),
               "--worker-class", "gthread", "--chdir", str(BASELINES), "--log-level", "warning", "flask_app:app"]
    env = {**os.environ, "MODEL_SKOPS": str(skops_path)}
    with targets._process(command, env=env, log=directory / "flask.log") as pid:
        targets._wait_http(f"http://127.0.0.1:{port}/__not_a_route__", 60)
        yield f"http://127.0.0.1:{port}/predict", pid


def pss_mb(pids: list[int]) -> float:
    """Proportional set size of these processes and all their descendants, in MiB."""
    seen: set[int] = set()
    for pid in pids:
        seen |= {p.pid for p in procs.family(pid)}
    total_kb = 0
    for pid in seen:
        try:
            text = Path(f"/proc/{pid}/smaps_rollup").read_text()
        except OSError:
            continue
        total_kb += next((int(line.split()[1]) for line in text.splitlines() if line.startswith("Pss:")), 0)
    return total_kb / 1024
