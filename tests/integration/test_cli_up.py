"""`gateway up` as a user runs it: attached, prints a working example, Ctrl-C stops everything.

And `gateway reload` picks up a newly registered version and a changed NGINX config while
requests keep flowing.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import threading
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

import requests

from bench.reload_faults import reload_with_new_version
from gateway import client as gateway_client
from gateway.demo import build_iris
from gateway.runtime import procs, stack
from gateway.runtime.plan import free_ports
from gateway.runtime.tomlwrite import dump_toml
from gateway.settings import load_settings
from tests.integration.conftest import start_stack

GATEWAY = str(Path(sys.executable).parent / "gateway")
# A process holding a stack's reload lock until its stdin closes.
HOLD_RELOAD_LOCK = """
import sys
from pathlib import Path
from gateway.runtime.reload_lock import reload_lock
with reload_lock(Path(sys.argv[1])):
    print("held", flush=True)
    sys.stdin.read()
"""


def write_config(directory: Path, store: Path) -> Path:
    (port,) = free_ports(1)
    config = directory / "gateway.toml"
    config.write_text(
        f'[server]\nport = {port}\nworkers = 1\nrun_dir = "run"\nuser = ""\n[store]\npath = "{store}"\n'
        '[models.iris]\nbackend = "python"\n',
        encoding="utf-8",
    )
    return config


def test_up_attached_prints_a_working_example_and_ctrl_c_stops_everything(tmp_path: Path) -> None:
    store = tmp_path / "store"
    build_iris(store)
    config = write_config(tmp_path, store)
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    process = subprocess.Popen([GATEWAY, "up", "--config", str(config)], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, env=env)
    try:
        lines = []
        deadline = time.monotonic() + 90
        assert process.stdout is not None
        while not any(line.startswith("Ctrl-C") for line in lines):
            assert time.monotonic() < deadline and process.poll() is None, "".join(lines)
            lines.append(process.stdout.readline())
        output = "".join(lines)
        assert "gateway is up at http://127.0.0.1:" in output
        table = [line.split() for line in lines]
        assert ["model", "version", "backend", "workers"] in table
        assert ["iris", "1", "python", "-"] in table
        curl = next(line.strip() for line in lines if line.strip().startswith("curl "))
        pasted = subprocess.run(shlex.split(curl), capture_output=True, text=True, timeout=30, check=False)
        assert '"predictions":[' in pasted.stdout, pasted.stdout + pasted.stderr
        family = procs.family(stack._supervisord_pid(tmp_path / "run") or -1)
        assert len(family) >= 4
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=60) == 0
        assert not procs.alive(family)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()
        stack.down(tmp_path / "run")


@dataclass
class Sent:
    at: float  # monotonic time the request was sent
    version: str | None = None
    failure: str | None = None


def test_reload_under_load_switches_versions_and_nginx_without_a_failed_request(tmp_path: Path) -> None:
    """Two reloads, each with a new version and an NGINX config change, under 6 client streams.

    The clients are gateway.client sessions: like curl and browsers, they re-send a request that
    NGINX's reload left unanswered on a closed idle connection. Once `stack.reload` returns,
    every request sent is answered by the new version.
    """
    store = tmp_path / "store"
    build_iris(store)
    row = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}
    with start_stack(tmp_path, {"iris": {"backend": "python"}}, store=store) as running:
        sent: list[Sent] = []
        stop = threading.Event()

        def client() -> None:
            with gateway_client.session() as http:
                http.trust_env = False
                while not stop.is_set():
                    record = Sent(time.monotonic())
                    try:
                        reply = http.post(running.url + "/models/iris/predict", json=[row], timeout=30)
                        if reply.status_code == 200:
                            record.version = reply.json()["version"]
                        else:
                            record.failure = f"{reply.status_code} {reply.text}"
                    except requests.RequestException as exc:
                        record.failure = repr(exc)
                    sent.append(record)

        config = running.settings.config_path
        assert config is not None
        nginx_master = running.pids()["nginx"]
        switched_at: dict[str, float] = {}
        threads = [threading.Thread(target=client) for _ in range(6)]
        for thread in threads:
            thread.start()
        try:
            for version in ("2", "3"):
                time.sleep(0.5)
                nginx_workers = {p for p in procs.family(nginx_master) if p.pid != nginx_master}
                reload_with_new_version(config, store)  # a new version, and nginx.conf changes too
                switched_at[version] = time.monotonic()
                assert {p for p in procs.family(nginx_master) if p.pid != nginx_master} - nginx_workers, \
                    "NGINX was not reloaded: no new worker processes"
            time.sleep(0.5)
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=30)
        assert [r.failure for r in sent if r.failure] == []
        assert running.pids()["nginx"] == nginx_master  # reloaded in place, never restarted
        assert sent[0].version == "1"
        for version, at in switched_at.items():
            # Answered by this version, or by a later one once the next reload is done: never an older one.
            later = {r.version for r in sent if r.at >= at}
            assert later and later <= {v for v in switched_at if v >= version}, (version, later)
        assert running.get("/models/iris").json()["versions"] == ["1", "2", "3"]


def test_reload_moves_traffic_between_versions(tmp_path: Path) -> None:
    store = tmp_path / "store"
    build_iris(store)
    build_iris(store)
    row = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}
    models = {"iris": {"backend": "python", "traffic": {"1": 100}}}
    with start_stack(tmp_path, models, store=store) as running:
        assert {running.post("/models/iris/predict", json=[row]).json()["version"] for _ in range(10)} == {"1"}
        config = running.settings.config_path
        assert config is not None
        config.write_text(config.read_text(encoding="utf-8").replace("1 = 100", "1 = 0\n2 = 100"),
                          encoding="utf-8")
        # A reload while another holds the stack's lock is refused, naming it, and changes nothing.
        holder = subprocess.Popen([sys.executable, "-c", HOLD_RELOAD_LOCK, str(running.run_dir)],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        try:
            assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
            refused = subprocess.run([GATEWAY, "reload", "--config", str(config)], capture_output=True, text=True,
                                     timeout=120, check=False)
        finally:
            holder.communicate("", timeout=30)
        assert refused.returncode == 1
        assert f"another `gateway reload` is running on the stack in {running.run_dir} (pid {holder.pid})" \
            in refused.stderr
        assert {running.post("/models/iris/predict", json=[row]).json()["version"] for _ in range(10)} == {"1"}
        stack.reload(load_settings(config, env={}))
        deadline = time.monotonic() + 30
        while running.post("/models/iris/predict", json=[row]).json()["version"] != "2":
            assert time.monotonic() < deadline, "the new weights never took effect"
            time.sleep(0.1)
        assert running.get("/models/iris").json()["traffic"] == {"2": 100}


def test_reload_with_a_changed_gunicorn_setting_replaces_every_worker(tmp_path: Path) -> None:
    """threads is in gunicorn.conf.py, which only a HUP makes Gunicorn re-read."""
    store = tmp_path / "store"
    build_iris(store)
    row = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}
    with start_stack(tmp_path, {"iris": {"backend": "python"}}, {"workers": 2}, store=store) as running:
        before = running.gunicorn_workers()
        config = running.settings.config_path
        assert config is not None
        raw = tomllib.loads(config.read_text(encoding="utf-8"))
        raw["server"]["threads"] = 6
        config.write_text(dump_toml(raw), encoding="utf-8")
        stack.reload(load_settings(config, env={}))
        after = running.gunicorn_workers()
        assert len(after) == 2 and not after & before
        assert "threads = 6" in (running.run_dir / "gunicorn.conf.py").read_text(encoding="utf-8")
        assert running.post("/models/iris/predict", json=[row]).status_code == 200


def test_up_refuses_an_otel_exporter_it_does_not_ship_before_starting_anything(tmp_path: Path) -> None:
    store = tmp_path / "store"
    build_iris(store)
    config = write_config(tmp_path, store)
    env = {**os.environ, "OTEL_TRACES_EXPORTER": "zipkin"}
    refused = subprocess.run([GATEWAY, "up", "--detach", "--config", str(config)], capture_output=True, text=True,
                             env=env, timeout=120, check=False)
    assert refused.returncode == 2, refused.stderr
    assert "OTEL_TRACES_EXPORTER='zipkin': the gateway ships the exporters" in refused.stderr
    assert stack._supervisord_pid(tmp_path / "run") is None
    assert not (tmp_path / "run" / "supervisord.conf").exists()
