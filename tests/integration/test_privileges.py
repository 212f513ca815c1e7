"""Started as root, the stack drops privileges, and no other local user gets past the API keys.

A real unprivileged user, created here and removed after, tries what a local attacker would:
call the R workers and the internal NGINX directly (no API key needed there), and read the keys
file. The R model itself tries to read the keys file and the cluster secret, as model code could.
Every process runs as the user docs/security.md names, read from /proc/<pid>/status.
"""

from __future__ import annotations

import json
import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.auth import new_entry, write_keys
from gateway.runtime import procs, stack
from gateway.runtime.tomlwrite import dump_toml
from gateway.settings import load_settings
from tests.integration.conftest import Stack, start_stack
from tests.integration.r_models import rscript

SERVICE_USER, R_USER = "gateway", "gateway-r"
# Model code that tries to read the service user's secrets: 1 per row if it could, 0 if not.
SNOOP = ('function(newdata, type) {{ got <- tryCatch({{ readLines({path}, warn = FALSE); 1 }}, '
         'error = function(e) 0, warning = function(e) 0); rep(got, nrow(newdata)) }}')
# Run as the attacker with Debian's python3: POST one predict to each (address, path) given as
# JSON, print the status line or the connection error. No API key: none is asked on these hops.
PROBE = r"""
import json, socket, sys
body = json.dumps({"columns": {"x": [1.0]}, "types": {"x": "double"}, "params": {}}).encode()
results = {}
for address, path in json.loads(sys.argv[1]):
    try:
        if address.startswith("unix:"):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(5)
            sock.connect(address[5:])
        else:
            host, _, port = address.rpartition(":")
            sock = socket.create_connection((host, int(port)), timeout=5)
        with sock:
            sock.sendall(f"POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                         f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body)
            results[address] = sock.recv(65536).decode("latin-1")
    except OSError as exc:
        results[address] = f"{type(exc).__name__}: {exc.strerror}"
print(json.dumps(results))
"""


@pytest.fixture(scope="module")
def shared_dir() -> Iterator[Path]:
    """A directory the service users can cross (pytest's temp dirs are 0700, root's only)."""
    directory = Path(tempfile.mkdtemp(prefix="gateway-privs-"))
    directory.chmod(0o711)
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="module")
def attacker() -> Iterator[pwd.struct_passwd]:
    """A local unprivileged user of the host, in none of the stack's groups."""
    name = f"gwprobe{secrets.token_hex(3)}"
    subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name], check=True)
    try:
        yield pwd.getpwnam(name)
    finally:
        subprocess.run(["userdel", name], check=False)


@pytest.fixture(scope="module")
def gw(shared_dir: Path) -> Iterator[Stack]:
    assert os.geteuid() == 0, "this test checks the privilege drop: run it as root (CI does)"
    store = shared_dir / "store"
    keys, secret = shared_dir / "keys.json", shared_dir / "cluster.secret"
    key, entry = new_entry("client", "predict")
    write_keys(keys, [entry])
    secret.write_text(secrets.token_urlsafe(32), encoding="utf-8")
    secret.chmod(0o600)
    for name, path in (("keys", keys), ("secret", secret)):
        rscript(f"gatewayr::save_model({SNOOP.format(path=json.dumps(str(path)))}, commandArgs(TRUE)[1], "
                f"'{name}', sample = data.frame(x = c(1.5, 2)))", str(store))
    models = {name: {"backend": "plumber", "workers": 1, "timeout_s": 20} for name in ("keys", "secret")}
    server = {"user": SERVICE_USER, "r_user": R_USER, "api_keys_file": str(keys),
              "cluster_secret_file": str(secret)}
    with start_stack(shared_dir, models, server, store=store) as running:
        running.http.headers["Authorization"] = f"Bearer {key}"
        yield running


def _uid(pid: int) -> int:
    """The effective uid of a process, from /proc/<pid>/status (`Uid: real effective saved fs`)."""
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("Uid:")).split()[2])


def _as(user: pwd.struct_passwd, *command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, user=user.pw_uid, group=user.pw_gid, extra_groups=[], capture_output=True,
                          text=True, check=False, timeout=60, cwd="/")


def test_a_local_user_cannot_reach_r_workers_internal_nginx_or_gunicorn(gw: Stack, attacker: pwd.struct_passwd) -> None:
    targets = [(gw.plan.internal.address, "/r/keys/predict"), (gw.plan.gunicorn.address, "/models/keys/predict")]
    targets += [(w.address, "/predict") for pool in gw.plan.all_pools for w in pool.workers]
    probe = _as(attacker, "/usr/bin/python3", "-c", PROBE, json.dumps(targets))
    assert probe.returncode == 0, probe.stderr
    answers = json.loads(probe.stdout)
    assert len(answers) == 4 and all(a.startswith("PermissionError") for a in answers.values()), answers
    # The stack's own users still get through: a key-holding client gets its prediction.
    reply = gw.post("/models/keys/predict", json=[{"x": 1.0}])
    assert reply.status_code == 200, reply.text


def test_a_local_user_cannot_read_the_keys_file_or_the_run_dir(gw: Stack, attacker: pwd.struct_passwd) -> None:
    keys = Path(gw.settings.server.api_keys_file)
    for path in (keys, gw.run_dir / "plan.json", gw.run_dir / "nginx.conf"):
        read = _as(attacker, "/bin/cat", str(path))
        assert read.returncode != 0 and "Permission denied" in read.stderr, (path, read.stdout[:100])


def test_r_model_code_cannot_read_the_keys_file_or_the_cluster_secret(gw: Stack) -> None:
    for model in ("keys", "secret"):
        reply = gw.post(f"/models/{model}/predict", json=[{"x": 1.0}])
        assert reply.status_code == 200, reply.text
        assert reply.json()["predictions"] == [0], f"R read the {model} file"


def test_every_process_runs_as_its_user(gw: Stack) -> None:
    service, r_user = pwd.getpwnam(SERVICE_USER).pw_uid, pwd.getpwnam(R_USER).pw_uid
    pids = gw.pids()
    nginx_workers = {p.pid for p in procs.family(pids["nginx"])} - {pids["nginx"]}
    gunicorn = {p.pid for p in procs.family(pids["gunicorn"])}
    r_workers = [pid for name, pid in pids.items() if name.startswith("plumber-")]
    assert nginx_workers and len(gunicorn) >= 2 and len(r_workers) == 2
    assert _uid(pids["nginx"]) == 0  # the master: it binds the public port, then only supervises
    assert {_uid(pid) for pid in nginx_workers} == {service}
    assert {_uid(pid) for pid in gunicorn} == {service}
    assert {_uid(pid) for pid in r_workers} == {r_user}


def test_a_reload_replaces_an_r_pool_under_the_same_users(gw: Stack, attacker: pwd.struct_passwd) -> None:
    """Last: `gateway reload` starts the replacing pool as the R user, behind sockets the local
    user cannot reach, and the service user's Gunicorn reads the new plan."""
    config = gw.settings.config_path
    assert config is not None
    raw = tomllib.loads(config.read_text(encoding="utf-8"))
    raw["models"]["keys"]["timeout_s"] = 21  # another timeout: a new pool
    config.write_text(dump_toml(raw), encoding="utf-8")
    plan = stack.reload(load_settings(config, env={}))
    pids = gw.pids()
    assert "plumber-keys--g1-1" in pids and "plumber-keys-1" not in pids
    assert _uid(pids["plumber-keys--g1-1"]) == pwd.getpwnam(R_USER).pw_uid
    reply = gw.post("/models/keys/predict", json=[{"x": 1.0}])
    assert reply.status_code == 200, reply.text
    assert reply.json()["predictions"] == [0]
    targets = [(w.address, "/predict") for w in plan.pools["keys"].workers]
    probe = _as(attacker, "/usr/bin/python3", "-c", PROBE, json.dumps(targets))
    assert all(a.startswith("PermissionError") for a in json.loads(probe.stdout).values()), probe.stdout
