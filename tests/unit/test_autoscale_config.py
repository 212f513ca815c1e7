"""Pools that follow the load, short of a running stack: the `workers = {min, max, idle_s}` key,
the configs rendered for it, and the backend's side (cold start wait, 503 Retry-After, ready on
demand) against a stand-in for the internal NGINX."""

from __future__ import annotations

import configparser
import json
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from gateway.backends.plumber import COLD_RETRY_AFTER_S, PlumberPool, pool_backend
from gateway.codecs import Table
from gateway.errors import ConfigError, Unavailable
from gateway.meta import InputSpec, ModelMeta
from gateway.runtime.plan import Endpoint, Plan, PoolPlan
from gateway.runtime.render import nginx_command, render_all
from gateway.runtime.tomlwrite import settings_to_toml
from gateway.settings import ModelSettings, PoolScale, Settings, load_settings, settings_from_dict


def settings_with(model: dict, tmp_path: Path, server: dict | None = None) -> Settings:
    raw = {"server": {"run_dir": "run", **(server or {})}, "models": {"m": {"backend": "plumber", **model}}}
    return settings_from_dict(raw, base_dir=tmp_path)


def test_a_workers_table_makes_a_scaling_pool_and_an_integer_keeps_a_fixed_one(tmp_path: Path) -> None:
    scaling = settings_with({"workers": {"min": 0, "max": 3, "idle_s": 60}}, tmp_path).models["m"]
    assert scaling.scale == PoolScale(min=0, max=3, idle_s=60.0) and scaling.pool_size == 3
    fixed = settings_with({"workers": 2}, tmp_path).models["m"]
    assert fixed.scale is None and fixed.pool_size == 2
    defaults = settings_with({"workers": {}}, tmp_path).models["m"]
    assert defaults.scale == PoolScale(min=1, max=4, idle_s=300.0)


def test_the_environment_sets_one_limit_and_the_settings_copy_reads_back_equal(tmp_path: Path) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text('[models.m]\nbackend = "plumber"\nworkers = {min = 1, max = 2}\n', encoding="utf-8")
    settings = load_settings(config, env={"GATEWAY_MODELS__M__WORKERS__MAX": "5"})
    assert settings.models["m"].scale == PoolScale(min=1, max=5)
    copy = tmp_path / "copy.toml"
    copy.write_text(settings_to_toml(settings), encoding="utf-8")
    assert load_settings(copy, env={}).models == settings.models


@pytest.mark.parametrize(("model", "server", "message"), [
    ({"workers": {"min": 3, "max": 2}}, {}, r"min = 3, max = 2; need 0 <= min <= max"),
    ({"workers": {"min": 0, "max": 0}}, {}, r"max >= 1"),
    ({"workers": {"idle_s": 0}}, {}, r"models\.m\.workers\.idle_s must be above 0"),
    ({"workers": {"most": 3}}, {}, r"models\.m\.workers\.most: unknown key"),
    ({"workers": {"min": 0}, "cold_start_s": 0}, {}, r"cold_start_s must be above 0"),
    ({"workers": {"min": 0}, "cold_start_s": 60, "timeout_s": 30}, {"timeout_s": 90},
     r"cold_start_s = 60.0 plus timeout_s = 30.0 must be at least 10 s below server\.timeout_s"),
])
def test_bad_limits_are_refused_at_start_naming_the_key(tmp_path: Path, model: dict, server: dict,
                                                         message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        settings_with(model, tmp_path, server)


def rendered(tmp_path: Path, min_workers: int | None) -> tuple[configparser.RawConfigParser, str]:
    settings = settings_with({"workers": 3}, tmp_path)
    workers = tuple(Endpoint("127.0.0.1", port) for port in (41001, 41002, 41003))
    pool = PoolPlan("m", "model", "/store/m/1", "1", workers, 30.0, min_workers=min_workers, idle_s=60.0)
    plan = Plan(str(settings.run_dir), Endpoint("127.0.0.1", 40080), Endpoint("127.0.0.1", 40081),
                Endpoint("127.0.0.1", 40082), {"m": pool})
    files = render_all(settings, plan)
    checked = subprocess.run([*nginx_command(plan.run_dir), "-t"], capture_output=True, text=True, check=False)
    assert checked.returncode == 0, checked.stderr
    conf = configparser.RawConfigParser()
    conf.read(files["supervisord"])
    return conf, files["nginx"].read_text(encoding="utf-8")


def test_a_scaling_pool_renders_every_worker_starts_min_and_has_a_scaler(tmp_path: Path) -> None:
    conf, nginx = rendered(tmp_path, min_workers=1)
    assert [conf.get(f"program:plumber-m-{i}", "autostart") for i in (1, 2, 3)] == ["true", "false", "false"]
    assert "gateway.runtime.scaler" in conf.get("program:scaler", "command")
    upstream = nginx[nginx.index("upstream r_m {"):]
    upstream = upstream[:upstream.index("}")]
    assert upstream.count("max_fails=1 fail_timeout=2s;") == 3 and "max_fails=0" not in upstream
    location = nginx[nginx.index("location /r/m/ {"):]
    assert "proxy_next_upstream_tries 3;" in location[:location.index("}")]
    assert "proxy_next_upstream_timeout 60s;" in location[:location.index("}")]


def test_a_fixed_pool_renders_as_before_with_no_scaler(tmp_path: Path) -> None:
    conf, nginx = rendered(tmp_path, min_workers=None)
    assert [conf.get(f"program:plumber-m-{i}", "autostart") for i in (1, 2, 3)] == ["true"] * 3
    assert not conf.has_section("program:scaler")
    assert nginx.count("max_fails=0;") == 3 and "proxy_next_upstream_tries 2;" in nginx


class Nginx:
    """Stands in for the internal NGINX: answers every predict with its column x (binary wire in,
    JSON out, which a worker may also answer)."""

    def __init__(self) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                header, _, data = body.partition(b"\n")
                rows = json.loads(header)["rows"]
                payload = json.dumps({"predictions": list(struct.unpack(f"<{rows}d", data[:8 * rows]))}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture
def nginx() -> Iterator[Nginx]:
    server = Nginx()
    yield server
    server.server.shutdown()
    server.server.server_close()


def cold_backend(nginx: Nginx, worker: Path, cold_start_s: float) -> PlumberPool:
    meta = ModelMeta(name="m", version="1", language="r", format="rds", artefact="model.rds",
                     inputs=(InputSpec("x", "double"),), outputs={"kind": "regression"}, sha256="",
                     created_at="", framework={})
    settings = ModelSettings(name="m", backend="plumber", workers=PoolScale(min=0, max=1), cold_start_s=cold_start_s)
    pool = PoolPlan("m", "model", "/nowhere", "1", (Endpoint.unix(worker),), 5.0, min_workers=0, idle_s=60.0)
    return pool_backend(meta, settings, pool, nginx.url)


TABLE = Table.from_records([{"x": 1.5}])


def test_with_no_worker_running_a_call_waits_cold_start_s_then_is_a_503_with_retry_after(
        nginx: Nginx, tmp_path: Path) -> None:
    backend = cold_backend(nginx, tmp_path / "w.sock", cold_start_s=0.3)
    health = backend.health()
    assert health.ready and health.on_demand and "ready on demand" in health.detail
    started = time.monotonic()
    with pytest.raises(Unavailable, match=r"no R worker running .* within cold_start_s = 0.3 s") as info:
        backend.predict(TABLE, {})
    assert time.monotonic() - started >= 0.3
    assert info.value.headers() == {"Retry-After": str(COLD_RETRY_AFTER_S)}


def test_a_call_that_waits_goes_through_once_a_worker_accepts(nginx: Nginx, tmp_path: Path) -> None:
    path = tmp_path / "w.sock"
    backend = cold_backend(nginx, path, cold_start_s=10)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)

    def start_worker() -> None:  # the scaler's part, a moment later
        time.sleep(0.3)
        listener.bind(str(path))
        listener.listen()

    threading.Thread(target=start_worker).start()
    try:
        started = time.monotonic()
        assert backend.predict(TABLE, {}) == [1.5]
        assert time.monotonic() - started >= 0.3
        assert not backend.health().on_demand  # a worker runs now
    finally:
        listener.close()
