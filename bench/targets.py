"""The servers `bench/serving.py` compares, each started on free loopback ports and stopped after.

Every process here is started in its own session and stopped by its process group id, so no
process outlives the benchmark and nothing else on the machine is touched.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests

from gateway.paths import REPO_ROOT
from gateway.runtime import stack
from gateway.runtime.plan import free_ports
from gateway.runtime.tomlwrite import dump_toml
from gateway.settings import load_settings

MLFLOW_VENV = REPO_ROOT / ".venv-mlflow"  # bench-only: `make bench` creates it when PyPI allows
R_ENV = {**os.environ, "R_LIBS": str(REPO_ROOT / ".rlib")}
GUNICORN_WORKERS = 2  # the same number of worker processes for the gateway and mlflow serve
# Threads per Gunicorn worker: a thread waiting on R holds no CPU, and the batcher can only
# coalesce requests that are inside the process; 32 threads gave 373 vs 265 req/s with 8 for
# the R model at 32 clients (1-row, batching on, same run).


@contextmanager
def gateway_stack(directory: Path, store: Path, *, batching: bool,
                  batch: dict[str, float] | None = None, threads: int = 32,
                  rpy2: bool = False) -> Iterator[tuple[str, str, str]]:
    """The full stack serving iris (Python) and mtcars (R pool of 2), and with `rpy2` the same R
    model as `mtcars_rpy2` in-process (the store must hold that name too).

    Yields the public, internal-NGINX and Gunicorn URLs. `batch` overrides the models' batch
    settings when batching is on (the defaults otherwise).
    """
    port, gunicorn_port = free_ports(2)
    off = {"batch": {"max_size": 1}} if not batching else ({"batch": batch} if batch else {})
    models: dict[str, dict[str, object]] = {
        "iris": {"backend": "python", **off},
        "mtcars": {"backend": "plumber", "workers": 2, **off},
    }
    if rpy2:
        models["mtcars_rpy2"] = {"backend": "rpy2", **off}
    # Gunicorn on a TCP port: batching_counters asks each worker directly, which wrk and requests
    # reach on TCP (the stack's own hops are Unix sockets).
    tcp = {"gunicorn_port": gunicorn_port}
    raw = {
        "server": {"port": port, "workers": GUNICORN_WORKERS, "threads": threads, "run_dir": str(directory / "run"),
                   **tcp},
        "store": {"path": str(store)},
        "models": models,
    }
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / "gateway.toml"
    config.write_text(dump_toml(raw), encoding="utf-8")
    settings = load_settings(config, env={})
    plan = stack.up(settings, wait_s=120)
    try:
        yield stack.public_url(plan), plan.internal_url, f"http://{plan.gunicorn.address}"
    finally:
        stack.down(settings.run_dir)


@contextmanager
def direct_plumber(model_dir: Path) -> Iterator[str]:
    """One generic R worker (plumber/worker.R), what an R user runs today; yields its base URL."""
    (port,) = free_ports(1)
    command = ["Rscript", str(REPO_ROOT / "plumber" / "worker.R"), str(model_dir), "127.0.0.1", str(port)]
    with _process(command, env=R_ENV) as _:
        url = f"http://127.0.0.1:{port}"
        _wait_http(url + "/healthz", 60)
        yield url


@contextmanager
def mlflow_serve(directory: Path, skops_path: Path) -> Iterator[str | None]:
    """`mlflow models serve` on the same estimator, GUNICORN_WORKERS workers; None when unavailable."""
    python = MLFLOW_VENV / "bin" / "python"
    if not python.exists():
        yield None
        return
    model_dir = directory / "mlflow_iris"
    save = (
        "import sys, skops.io as sio, mlflow.sklearn\n"
        "path = sys.argv[1]\n"
        "model = sio.load(path, trusted=sio.get_untrusted_types(file=path))\n"
        "mlflow.sklearn.save_model(model, sys.argv[2])\n"
    )
    subprocess.run([str(python), "-c", save, str(skops_path), str(model_dir)], check=True,
                   capture_output=True, timeout=300)
    (port,) = free_ports(1)
    command = [str(MLFLOW_VENV / "bin" / "mlflow"), "models", "serve", "-m", str(model_dir), "-h", "127.0.0.1",
               "-p", str(port), "--env-manager", "local", "-w", str(GUNICORN_WORKERS)]
    env = {**os.environ, "PATH": f"{MLFLOW_VENV / 'bin'}:{os.environ['PATH']}", "MLFLOW_TRACKING_URI": str(directory)}
    with _process(command, env=env, log=directory / "mlflow.log"):
        url = f"http://127.0.0.1:{port}"
        _wait_http(url + "/ping", 120)
        yield url + "/invocations"


@contextmanager
def static_nginx(directory: Path) -> Iterator[str]:
    """NGINX answering every request with a fixed JSON body: the HTTP ceiling of this box."""
    (port,) = free_ports(1)
    directory.mkdir(parents=True, exist_ok=True)
    temp = "\n".join(f"    {kind}_temp_path {directory / kind};" for kind in
                     ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    conf = directory / "nginx.conf"
    conf.write_text(
        f"daemon off;\nworker_processes auto;\npid {directory / 'nginx.pid'};\n"
        f"error_log {directory / 'error.log'} warn;\nevents {{ worker_connections 1024; }}\n"
        f"http {{\n    access_log off;\n    keepalive_timeout 65s;\n    keepalive_requests 100000;\n{temp}\n"
        f"    server {{\n        listen 127.0.0.1:{port};\n        location / {{\n"
        "            default_type application/json;\n"
        "            return 200 '{\"predictions\":[0]}';\n        }\n    }\n}\n",
        encoding="utf-8",
    )
    with _process(["nginx", "-c", str(conf), "-p", str(directory)]):
        url = f"http://127.0.0.1:{port}/"
        _wait_http(url, 20)
        yield url


@contextmanager
def _process(command: list[str], *, env: dict[str, str] | None = None, log: Path | None = None) -> Iterator[int]:
    out = open(log, "wb") if log else subprocess.DEVNULL  # noqa: SIM115 - closed below
    proc = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield proc.pid
    finally:
        _stop_group(proc)
        if log:
            out.close()  # type: ignore[union-attr]


def _stop_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the group this benchmark started (its own session), then SIGKILL what lingers."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            proc.poll()  # reap the leader so the group can empty
            try:
                os.killpg(proc.pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.1)


def _wait_http(url: str, budget_s: float) -> None:
    session = requests.Session()
    session.trust_env = False
    deadline = time.monotonic() + budget_s
    while time.monotonic() < deadline:
        try:
            if session.get(url, timeout=1).status_code < 500:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {budget_s:g} s")


def batching_counters(gunicorn_url: str, tries: int = 30) -> dict[int, list[dict[str, object]]]:
    """Each Gunicorn worker's batcher counters (pid → list); asks until every worker answered.

    Asked of Gunicorn directly, a new connection each time: through NGINX the kept-alive
    upstream connection would land on the same worker every time.
    """
    session = requests.Session()
    session.trust_env = False
    seen: dict[int, list[dict[str, object]]] = {}
    for _ in range(tries):
        doc = json.loads(session.get(gunicorn_url + "/admin/batching", timeout=5).content)
        seen[doc["pid"]] = doc["batchers"]
        if len(seen) >= GUNICORN_WORKERS:
            break
        session.close()  # a new connection may land on the other worker
        session = requests.Session()
        session.trust_env = False
    return seen
