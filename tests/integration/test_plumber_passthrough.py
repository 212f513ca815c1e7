"""`/plumber/<name>/<path>` on a real stack: confined to script `<name>`, nothing shared between
clients, and the cluster secret never reaches a Plumber worker.

One stack: two scripts, `cars` (the demo) and `echo` (shows what reaches a user's script). `echo`
has a local worker and a loopback "remote host": a `gateway worker` stack on 127.0.0.1, with its
own NGINX that checks the cluster secret, as on another machine. API keys are on; one key may
use `cars` only. Raw request lines go out through http.client, so no client normalises them.
"""

from __future__ import annotations

import http.client
import json
import os
import secrets
import stat
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests

from gateway.auth import new_entry, write_keys
from gateway.paths import REPO_ROOT
from gateway.register import register_artefact
from gateway.runtime import procs, stack
from gateway.runtime.plan import free_ports
from gateway.runtime.tomlwrite import dump_toml
from gateway.settings import load_settings
from tests.integration.conftest import TEARDOWN_WAIT_S, Stack, start_stack

# A user's script: what reaches it (headers, path, cookies) and a cookie session.
ECHO_SCRIPT = """
#* @serializer unboxedJSON
#* @get /headers
function(req) {
  names <- grep("^HTTP_", ls(req), value = TRUE)
  list(headers = mget(names, envir = req), pid = Sys.getpid())
}

#* @serializer unboxedJSON
#* @get /path/<rest>
function(req, rest) list(path = req$PATH_INFO, rest = rest)

#* @serializer unboxedJSON
#* @get /session
function(req, res) {
  sid <- req$cookies$sid
  fresh <- is.null(sid)
  if (fresh) {
    sid <- paste0("s", Sys.getpid(), "x", sample.int(1e9, 1))
    res$setCookie("sid", sid, path = "/")
    res$setCookie("theme", "dark", path = "/")
  }
  list(sid = sid, fresh = fresh, cookie = if (is.null(req$HTTP_COOKIE)) "" else req$HTTP_COOKIE)
}
"""
# Every spelling of "climb out of cars into echo": each must be a 400, never echo's answer.
CLIMBS = [
    "/plumber/cars/../echo/headers",
    "/plumber/cars/..%2fecho%2fheaders",
    "/plumber/cars/..%2Fecho/headers",
    "/plumber/cars/%2e%2e/echo/headers",
    "/plumber/cars/%2e%2e%2fecho%2fheaders",
    "/plumber/cars/%2E%2E%2Fecho/headers",
    "/plumber/cars/.%2e/echo/headers",
    "/plumber/cars/%252e%252e%252fecho%252fheaders",
    "/plumber/cars/%25252e%25252e/echo/headers",
    "/plumber/cars/..\\echo\\headers",
    "/plumber/cars/..%5cecho%5cheaders",
    "/plumber/cars/..;/echo/headers",
    "/plumber/cars/hello;/../../echo/headers",
    "/plumber/cars//echo/headers",
    "/plumber/cars/./hello/x",
    "/plumber/cars/hello/..",
    "/plumber/cars/%01/hello",
]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    store = tmp_path_factory.mktemp("passthrough") / "store"
    register_artefact(store, "cars", REPO_ROOT / "plumber" / "cars" / "plumber.R", None, "stopping distance")
    script = tmp_path_factory.mktemp("echo") / "plumber.R"
    script.write_text(ECHO_SCRIPT, encoding="utf-8")
    register_artefact(store, "echo", script, None, "echoes what reaches it")
    return store


@contextmanager
def worker_host(directory: Path, store: Path, secret_file: Path, address: str) -> Iterator[Path]:
    """`gateway worker --listen 127.0.0.1`: echo's pool behind its own secret-checking NGINX."""
    config = directory / "worker.toml"
    raw = {"server": {"run_dir": str(directory / "run"), "cluster_secret_file": str(secret_file), "user": ""},
           "store": {"path": str(store)}, "models": {"echo": {"backend": "plumber", "workers": 1, "hosts": [address]}}}
    config.write_text(dump_toml(raw), encoding="utf-8")
    settings = load_settings(config, env={})
    stack.up(settings, listen="127.0.0.1")
    run_dir = settings.run_dir
    supervisord = stack._supervisord_pid(run_dir)
    known = procs.family(supervisord) if supervisord else set()
    try:
        yield run_dir
    finally:
        stack.down(run_dir)
        procs.wait_gone(known, TEARDOWN_WAIT_S)
        assert not procs.alive(known), "worker host processes outlived `down`"


@pytest.fixture(scope="module")
def gw(store: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    directory = tmp_path_factory.mktemp("confined")
    secret_file = directory / "cluster.secret"
    secret = secrets.token_urlsafe(32)
    secret_file.write_text(secret, encoding="utf-8")
    keys_file = directory / "keys.json"
    admin, admin_entry = new_entry("admin", "admin")
    cars_only, cars_entry = new_entry("cars-only", "predict", ("cars",))
    write_keys(keys_file, [admin_entry, cars_entry])
    (port,) = free_ports(1)
    address = f"127.0.0.1:{port}"
    models = {"cars": {"backend": "plumber", "workers": 1},
              "echo": {"backend": "plumber", "workers": 1, "hosts": [address]}}
    (directory / "worker").mkdir()
    (directory / "gateway").mkdir()
    with worker_host(directory / "worker", store, secret_file, address) as worker_run_dir, \
         start_stack(directory / "gateway", models,
                     {"api_keys_file": str(keys_file), "cluster_secret_file": str(secret_file)},
                     store=store) as running:
        running.http.headers["Authorization"] = f"Bearer {admin}"
        deadline = time.monotonic() + 30  # `up` returns once one worker of each pool is live
        while running.get("/models/echo").json()["workers"] != {"live": 2, "total": 2}:
            assert time.monotonic() < deadline, "echo's local worker or remote host never came up"
            time.sleep(0.2)
        yield {"stack": running, "secret": secret, "admin": admin, "cars_only": cars_only,
               "worker_run_dir": worker_run_dir, "store": store}


def raw_get(gw: Stack, target: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    """GET with the request line exactly as written (no client-side normalisation)."""
    connection = http.client.HTTPConnection(gw.plan.public.host, gw.plan.public.port, timeout=30)
    try:
        connection.putrequest("GET", target, skip_accept_encoding=True)
        for name, value in headers.items():
            connection.putheader(name, value)
        connection.endheaders()
        reply = connection.getresponse()
        return reply.status, dict(reply.getheaders()), reply.read()
    finally:
        connection.close()


@pytest.mark.parametrize("target", CLIMBS)
def test_a_path_that_could_climb_out_of_the_script_is_refused(gw: dict[str, Any], target: str) -> None:
    running: Stack = gw["stack"]
    status, headers, body = raw_get(running, target, {"Authorization": f"Bearer {gw['cars_only']}"})
    assert status == 400, (status, body[:300])
    assert headers["Content-Type"] == "application/problem+json"
    detail = json.loads(body)["detail"]
    assert "/plumber/cars/" in detail and any(
        word in detail for word in ("dot segment", "encoded", "backslash", "';'", "empty segment", "control")
    ), detail
    assert b"pid" not in body  # echo never answered
    # The same with an admin key: refused for what the path is, not for who asks.
    assert raw_get(running, target, {"Authorization": f"Bearer {gw['admin']}"})[0] == 400


def test_a_key_limited_to_one_script_reaches_that_script_only(gw: dict[str, Any]) -> None:
    running: Stack = gw["stack"]
    auth = {"Authorization": f"Bearer {gw['cars_only']}"}
    # Plumber does not decode path parameters: pr_run() itself answers "hi big%20world" here.
    status, _, body = raw_get(running, "/plumber/cars/hello/big%20world?greeting=hi", auth)
    assert status == 200 and json.loads(body) == {"message": ["hi big%20world"]}
    assert raw_get(running, "/plumber/echo/headers", auth)[0] == 403
    # The script's router sees the client's own spelling of the path, within the script.
    status, _, body = raw_get(running, "/plumber/echo/path/100%25%20sure", {"Authorization": f"Bearer {gw['admin']}"})
    assert status == 200 and json.loads(body) == {"path": "/path/100%25%20sure", "rest": "100%25%20sure"}


def test_the_cluster_secret_never_reaches_a_plumber_worker(gw: dict[str, Any]) -> None:
    running: Stack = gw["stack"]
    seen: dict[int, dict[str, str]] = {}
    deadline = time.monotonic() + 30
    while len(seen) < 2:  # both the local worker and the worker host's one answered
        assert time.monotonic() < deadline, f"only workers {sorted(seen)} answered"
        reply = running.get("/plumber/echo/headers", headers={"X-Gateway-Secret": "from-a-client"})
        assert reply.status_code == 200, reply.text
        seen[reply.json()["pid"]] = reply.json()["headers"]
    for pid, headers in seen.items():
        assert gw["secret"] not in json.dumps(headers), (pid, headers)
        assert "HTTP_X_GATEWAY_SECRET" not in headers, (pid, headers)
    # Teeth: the worker host still insists on the secret from anyone else.
    refused = requests.get(f"http://{running.settings.models['echo'].hosts[0]}/headers", timeout=10)
    assert refused.status_code == 403


def test_no_cookie_or_header_of_one_client_reaches_another(gw: dict[str, Any]) -> None:
    running: Stack = gw["stack"]
    auth = {"Authorization": f"Bearer {gw['admin']}"}
    with requests.Session() as first, requests.Session() as second:
        first.trust_env = second.trust_env = False
        started = first.get(running.url + "/plumber/echo/session", headers=auth, timeout=30)
        assert started.status_code == 200, started.text
        assert started.json()["fresh"] is True
        cookies = started.raw.headers.getlist("Set-Cookie")
        assert len(cookies) == 2, cookies  # two cookies, two headers: never folded into one
        assert {c.split("=", 1)[0] for c in cookies} == {"sid", "theme"}
        continued = first.get(running.url + "/plumber/echo/session", headers=auth, timeout=30)
        assert continued.json()["sid"] == started.json()["sid"] and continued.json()["fresh"] is False
        for _ in range(4):  # whichever Gunicorn thread or R worker answers
            other = second.get(running.url + "/plumber/echo/session", headers=auth, timeout=30)
            assert other.json()["fresh"] is True and other.json()["cookie"] == "", other.json()
            assert other.json()["sid"] != started.json()["sid"]
            second.cookies.clear()
        headers = second.get(running.url + "/plumber/echo/headers", timeout=30,
                             headers={**auth, "Proxy-Authorization": "Basic eA==", "TE": "trailers"}).json()
        sent = headers["headers"]
        assert "HTTP_COOKIE" not in sent and "HTTP_PROXY_AUTHORIZATION" not in sent and "HTTP_TE" not in sent, sent
        assert "HTTP_AUTHORIZATION" not in sent, sent  # the gateway's key stays with the gateway


def test_run_dirs_and_secrets_are_private(gw: dict[str, Any]) -> None:
    running: Stack = gw["stack"]
    for run_dir in (running.run_dir, gw["worker_run_dir"]):
        exposed = []
        for path in [run_dir, *run_dir.rglob("*")]:
            mode = path.lstat().st_mode
            if stat.S_ISSOCK(mode) or stat.S_ISLNK(mode):
                continue
            if mode & 0o077:
                exposed.append(f"{path} {oct(mode & 0o777)}")
        assert not exposed, exposed
        assert gw["secret"] in (run_dir / "nginx.conf").read_text(encoding="utf-8")  # teeth: it is there
    store: Path = gw["store"]
    assert not store.stat().st_mode & 0o077, oct(store.stat().st_mode)
    assert os.stat(running.settings.resolve(running.settings.server.api_keys_file)).st_mode & 0o777 == 0o600
