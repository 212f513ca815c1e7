"""Internal hops on Unix sockets and the privilege drop: plan, rendered configs, HTTP transport."""

from __future__ import annotations

import configparser
import http.server
import os
import socket
import socketserver
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from gateway.probe import get_status
from gateway.runtime import privileges, render
from gateway.runtime.plan import Endpoint, Plan, make_plan
from gateway.runtime.privileges import Accounts, PrivilegeError
from gateway.runtime.render import nginx_command, r_command, render_all
from gateway.settings import Settings, settings_from_dict
from gateway.unix_http import SOCKET_HOST, UnixAdapter

ACCOUNTS = Accounts("svc", "svc", 990, 990, "svc-r", 991)


def _settings(tmp_path: Path, run_dir: str = "run", **server: object) -> Settings:
    script = tmp_path / "cars" / "plumber.R"
    script.parent.mkdir(exist_ok=True)
    script.write_text("#* @get /ping\nfunction() 'pong'\n")
    raw = {"server": {"run_dir": run_dir, **server}, "store": {"path": "store"},
           "models": {"cars": {"backend": "plumber", "workers": 2, "script": "cars/plumber.R"}}}
    return settings_from_dict(raw, base_dir=tmp_path)


def test_internal_hops_are_sockets_in_the_run_dir(tmp_path: Path) -> None:
    plan = make_plan(_settings(tmp_path))
    run = tmp_path / "run"
    assert plan.internal == Endpoint.unix(run / "sock" / "gw" / "nginx.sock")
    assert plan.internal_url == f"unix:{run}/sock/gw/nginx.sock"
    assert [w.address for w in plan.pools["cars"].workers] == [f"unix:{run}/sock/r/1.sock",
                                                                f"unix:{run}/sock/r/2.sock"]
    assert plan.gunicorn == Endpoint.unix(run / "sock" / "gw" / "app.sock")
    assert plan.public == Endpoint("127.0.0.1", 8080)


def test_configured_ports_keep_tcp(tmp_path: Path) -> None:
    plan = make_plan(_settings(tmp_path, gunicorn_port=41000, internal_port=41001, worker_port_base=41010))
    assert (plan.gunicorn, plan.internal) == (Endpoint("127.0.0.1", 41000), Endpoint("127.0.0.1", 41001))
    assert [w.address for w in plan.pools["cars"].workers] == ["127.0.0.1:41010", "127.0.0.1:41011"]


def test_a_deep_run_dir_gets_a_short_socket_dir(tmp_path: Path) -> None:
    plan = make_plan(_settings(tmp_path, run_dir="d" * 120))
    assert plan.internal.path.startswith("/tmp/gateway-sock-")
    assert all(len(w.path) < 100 for w in plan.pools["cars"].workers)
    assert make_plan(_settings(tmp_path, run_dir="d" * 120)).internal == plan.internal  # stable


def test_plan_round_trips_socket_endpoints(tmp_path: Path) -> None:
    plan = make_plan(_settings(tmp_path))
    (tmp_path / "run").mkdir()
    assert Plan.load(plan.save()) == plan


def test_nginx_listens_and_proxies_on_sockets_with_keepalive(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    plan = make_plan(settings)
    files = render_all(settings, plan)
    assert f"bind = ['unix:{plan.gunicorn.path}']" in files["gunicorn"].read_text()
    text = files["nginx"].read_text()
    assert f"listen unix:{plan.internal.path};" in text
    assert f"server unix:{plan.gunicorn.path};" in text
    for worker in plan.pools["cars"].workers:
        assert f"server unix:{worker.path} max_fails=0;" in text
    upstream = text[text.index("upstream r_cars {"):]
    assert "keepalive 4;" in upstream[:upstream.index("}")]
    checked = subprocess.run([*nginx_command(plan.run_dir), "-t"], capture_output=True, text=True, check=False)
    assert checked.returncode == 0, checked.stderr


def test_r_workers_get_their_socket_as_host(tmp_path: Path) -> None:
    plan = make_plan(_settings(tmp_path))
    pool = plan.pools["cars"]
    command = r_command(pool, pool.workers[0])
    assert command[-2:] == [f"unix:{pool.workers[0].path}", "0"]


def test_root_renders_each_program_as_its_user(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(render, "accounts", lambda settings: ACCOUNTS)
    settings = _settings(tmp_path)
    files = render_all(settings, make_plan(settings))
    parser = configparser.RawConfigParser()
    parser.read(files["supervisord"])
    assert parser.get("program:gunicorn", "user") == "svc"
    assert parser.get("program:plumber-cars-1", "user") == "svc-r"
    assert parser.get("program:plumber-cars-2", "user") == "svc-r"
    assert not parser.has_option("program:nginx", "user")  # the master stays root
    assert "\nuser svc svc;\n" in files["nginx"].read_text()


def test_no_drop_unless_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert privileges.accounts(_settings(tmp_path)) is None


def test_no_drop_when_user_is_empty(tmp_path: Path) -> None:
    assert privileges.accounts(_settings(tmp_path, user="")) is None


def test_a_missing_service_user_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    with pytest.raises(PrivilegeError, match=r"server.user: no system user 'no-such-user-x'.*useradd"):
        privileges.accounts(_settings(tmp_path, user="no-such-user-x"))


def test_socket_dirs_are_fresh_and_private(tmp_path: Path) -> None:
    plan = make_plan(_settings(tmp_path))
    sockets = tmp_path / "run" / "sock"
    (sockets / "r").mkdir(parents=True)
    (sockets / "r" / "1.sock").write_text("stale")
    privileges.prepare_sockets(plan, sockets, None)
    assert not (sockets / "r" / "1.sock").exists()
    assert {oct(p.stat().st_mode & 0o777) for p in (sockets, sockets / "gw", sockets / "r")} == {"0o700"}


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = self.path.encode()
        self.send_response(200 if self.path != "/missing" else 404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


class _UnixServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True

    def get_request(self) -> tuple[socket.socket, tuple[str, int]]:
        conn, _ = super().get_request()
        return conn, ("local", 0)  # BaseHTTPRequestHandler logs a (host, port)


@pytest.fixture
def unix_server(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "s.sock"
    server = _UnixServer(str(path), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield path
    server.shutdown()
    server.server_close()


def test_get_status_over_a_socket(unix_server: Path, tmp_path: Path) -> None:
    assert get_status(Endpoint.unix(unix_server), "/healthz", 2.0) == 200
    assert get_status(Endpoint.unix(unix_server), "/missing", 2.0) == 404
    assert get_status(Endpoint.unix(tmp_path / "none.sock"), "/healthz", 2.0) == 0


def test_requests_over_a_socket(unix_server: Path) -> None:
    with requests.Session() as session:
        session.mount(f"http://{SOCKET_HOST}/", UnixAdapter(str(unix_server)))
        reply = session.get(f"http://{SOCKET_HOST}/r/cars/ping?x=1", timeout=2)
    assert (reply.status_code, reply.text) == (200, "/r/cars/ping?x=1")


def test_a_deep_run_dirs_sockets_are_made_private_and_removed_after(tmp_path: Path) -> None:
    settings = _settings(tmp_path, run_dir="d" * 120)
    plan = make_plan(settings)
    sockets = Path(plan.internal.path).parent.parent
    privileges.prepare_sockets(plan, sockets, None)
    assert (sockets.stat().st_mode & 0o777, (sockets / "r").stat().st_mode & 0o777) == (0o700, 0o700)
    privileges.remove_sockets(settings.run_dir)
    assert not sockets.exists()
