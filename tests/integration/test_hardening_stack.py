"""Hardening on a real stack: loopback-only listeners, R code in data never evaluated, API keys
through Gunicorn, and NGINX's rate limit.

Every listening socket of every process the stack starts is on loopback (or the public host).
The kernel is asked, not the configs: /proc/net/tcp{,6} lists listening sockets by inode, and
/proc/<pid>/fd links each process to the socket inodes it holds. A worker that ignored its
configured host and bound 0.0.0.0 would show up here even if every rendered file looked right.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import struct
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from gateway.auth import new_entry, read_keys, write_keys
from gateway.cli import main
from gateway.register import register_artefact
from gateway.runtime import procs, stack
from gateway.unix_http import connection_pool
from tests.integration.conftest import Stack, start_stack
from tests.integration.r_models import build_r_store

LISTEN = "0A"  # TCP_LISTEN in /proc/net/tcp's `st` column
MODELS = {
    "mtcars": {"backend": "plumber", "workers": 2, "timeout_s": 20},
    "cars": {"backend": "plumber", "workers": 1, "predict_route": "/predict", "input_format": "records"},
    "echo": {"backend": "plumber", "workers": 1},
}
# A user's script that shows what headers reach it.
ECHO_SCRIPT = """
#* @get /headers
function(req) list(authorization = if (is.null(req$HTTP_AUTHORIZATION)) "" else req$HTTP_AUTHORIZATION)
"""


def _address(hex_addr: str) -> str:
    """/proc/net/tcp writes addresses as 32-bit words in host byte order."""
    raw = bytes.fromhex(hex_addr)
    words = struct.unpack(f"<{len(raw) // 4}I", raw)
    packed = struct.pack(f">{len(words)}I", *words)
    return str(ipaddress.ip_address(packed))


def listening_sockets(pid: int) -> dict[int, tuple[str, int]]:
    """inode → (address, port) of every TCP socket in LISTEN state in pid's network namespace."""
    found: dict[int, tuple[str, int]] = {}
    for table in ("tcp", "tcp6"):
        lines = Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]
        for line in lines:
            fields = line.split()
            local, state, inode = fields[1], fields[3], int(fields[9])
            if state == LISTEN:
                host, port = local.split(":")
                found[inode] = (_address(host), int(port, 16))
    return found


def unix_listeners(pid: int) -> dict[int, str]:
    """inode → path of every listening Unix socket (flags __SO_ACCEPTCON) in pid's namespace."""
    found: dict[int, str] = {}
    for line in Path(f"/proc/{pid}/net/unix").read_text().splitlines()[1:]:
        fields = line.split()
        if len(fields) == 8 and int(fields[3], 16) & 0x10000:
            found[int(fields[6])] = fields[7]
    return found


def socket_inodes(pid: int) -> set[int]:
    inodes = set()
    fd_dir = Path(f"/proc/{pid}/fd")
    for fd in os.listdir(fd_dir):
        try:
            target = os.readlink(fd_dir / fd)
        except OSError:  # closed meanwhile
            continue
        if target.startswith("socket:["):
            inodes.add(int(target[len("socket:["):-1]))
    return inodes


def _cmd(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")[:120]


@pytest.fixture(scope="module")
def r_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    store = build_r_store(tmp_path_factory.mktemp("r") / "store")
    script = tmp_path_factory.mktemp("echo") / "plumber.R"
    script.write_text(ECHO_SCRIPT, encoding="utf-8")
    register_artefact(store, "echo", script, None, "echoes headers")
    return store


@pytest.fixture(scope="module")
def gw(r_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """One stack with API keys on; `gw.http` sends an admin key made before the start."""
    directory = tmp_path_factory.mktemp("hardened")
    keys_file = directory / "keys.json"
    key, entry = new_entry("tests", "admin")
    write_keys(keys_file, [entry])
    with start_stack(directory, MODELS, {"api_keys_file": str(keys_file)}, store=r_store) as running:
        running.http.headers["Authorization"] = f"Bearer {key}"
        yield running


def test_every_listener_of_the_stack_is_on_loopback(gw: Stack) -> None:
    assert gw.get("/readyz").status_code == 200
    supervisord = stack._supervisord_pid(gw.run_dir)
    assert supervisord is not None
    family = procs.family(supervisord)
    allowed = {"127.0.0.1", "::1", gw.settings.server.host}
    listeners: dict[int, list[tuple[str, int]]] = {}
    unix: dict[int, list[str]] = {}
    for proc in family:
        try:
            table = listening_sockets(proc.pid)
            paths = unix_listeners(proc.pid)
            held = socket_inodes(proc.pid)
        except (FileNotFoundError, ProcessLookupError):
            continue
        mine = [table[inode] for inode in held if inode in table]
        if mine:
            listeners[proc.pid] = mine
        if any(inode in paths for inode in held):
            unix[proc.pid] = [paths[inode] for inode in held if inode in paths]
    report = {f"{pid} {_cmd(pid)}": addrs for pid, addrs in listeners.items()}
    exposed = {who: addrs for who, addrs in report.items() if any(a not in allowed for a, _ in addrs)}
    assert not exposed, f"listening beyond loopback: {exposed}"

    # Teeth: the scan saw every listener the plan promises, each held by some process.
    # The internal hops (Gunicorn, internal NGINX, R workers) are Unix sockets in the run dir.
    ports = {port for addrs in listeners.values() for _, port in addrs}
    plan = gw.plan
    assert ports == {plan.public.port}, f"seen {report}"
    sockets = {path for paths in unix.values() for path in paths}
    expected = {plan.gunicorn.path, plan.internal.path} | {w.path for pool in plan.pools.values() for w in pool.workers}
    assert "" not in expected and expected <= sockets, f"not seen listening: {sorted(expected - sockets)}"
    r_workers = [pid for pid in unix if "Rscript" in _cmd(pid) or "/R" in _cmd(pid)]
    assert len(r_workers) == 4 and not set(r_workers) & set(listeners), (unix, report)


@pytest.mark.parametrize(("family", "host", "shown"), [(socket.AF_INET, "0.0.0.0", "0.0.0.0"),
                                                       (socket.AF_INET6, "::", "::"),
                                                       (socket.AF_INET, "127.0.0.1", "127.0.0.1")])
def test_the_scan_sees_what_a_process_binds(family: int, host: str, shown: str) -> None:
    """The parser's teeth: a wildcard listener in this very process is reported as such."""
    with socket.socket(family, socket.SOCK_STREAM) as listener:
        listener.bind((host, 0))
        listener.listen()
        port = listener.getsockname()[1]
        pid = os.getpid()
        table = listening_sockets(pid)
        mine = {table[inode] for inode in socket_inodes(pid) if inode in table}
        assert (shown, port) in mine


def _hazards(target: Path) -> list[str]:
    """R code a naive worker might eval(parse()) or pass to system(): each creates `target`."""
    return [f"system('touch {target}')", f"file.create('{target}')", f"`file.create`('{target}')",
            f"eval(parse(text = \"file.create('{target}')\"))", f"\"); file.create('{target}'); (\"",
            f"${{file.create('{target}')}}"]


def test_r_code_in_data_is_never_evaluated(gw: Stack, tmp_path: Path) -> None:
    target = tmp_path / "pwned"
    statuses: list[int] = []
    for code in _hazards(target):
        replies = [
            gw.post("/models/mtcars/predict", json=[{"wt": 2.6, "hp": 110, "cyl": 6, "am": code}]),
            gw.post("/models/mtcars/predict", json=[{"wt": 2.6, "hp": 110, "cyl": 6, "am": "auto", code: 1}]),
            gw.post("/models/cars/predict", json=[{"speed": code}]),
            gw.post("/models/cars/predict", json=[{code: 10}]),
            gw.get(f"/plumber/cars/hello/{requests.utils.quote(code, safe='')}", params={"greeting": code}),
        ]
        for reply in replies:
            statuses.append(reply.status_code)
            assert reply.status_code < 500, (reply.url, reply.status_code, reply.text[:300])
        # Straight to an R worker, past the gateway's own validation: it answers a JSON error
        # (any status: it is not the public surface) and lives on, having evaluated nothing.
        worker = gw.plan.pools["mtcars"].workers[0]
        wire = {"columns": {"wt": [2.6], "hp": [110], "cyl": [6], "am": [code]},
                "types": {"wt": "double", "hp": "double", "cyl": "double", "am": code}, "params": {"type": code}}
        pool = connection_pool(worker, retries=False)
        direct = pool.request("POST", "/predict", json=wire, timeout=20)
        assert direct.status >= 400 and "error" in direct.json(), direct.data[:300]
        assert pool.request("GET", "/healthz", timeout=20).status == 200
    time.sleep(0.5)  # a background system() call would have run by now
    assert not target.exists(), "R evaluated code sent as data"
    assert all(400 <= s < 500 or s == 200 for s in statuses), statuses


def test_keys_added_while_running_work_at_once(gw: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    """`gateway keys add` against the running stack's config: no restart, every Gunicorn worker."""
    config = gw.settings.config_path
    assert config is not None
    anonymous = requests.post(gw.url + "/models/cars/predict", json=[{"speed": 10}], timeout=20)
    assert anonymous.status_code == 401 and "WWW-Authenticate" in anonymous.headers
    assert main(["--config", str(config), "keys", "add", "late", "--scope", "predict", "--models", "cars"]) == 0
    key = capsys.readouterr().out.strip().splitlines()[-1]
    auth = {"Authorization": f"Key {key}"}
    for _ in range(4):  # several requests: whichever worker thread answers has reloaded
        assert requests.post(gw.url + "/models/cars/predict", json=[{"speed": 10}], headers=auth,
                             timeout=20).status_code == 200
    assert requests.post(gw.url + "/models/mtcars/predict", json=[], headers=auth, timeout=20).status_code == 403
    assert main(["--config", str(config), "keys", "remove", "late"]) == 0
    assert requests.post(gw.url + "/models/cars/predict", json=[{"speed": 10}], headers=auth,
                         timeout=20).status_code == 401
    assert [k.name for k in read_keys(gw.settings.resolve(gw.settings.server.api_keys_file))] == ["tests"]


def test_rate_limit_answers_429_problem_json(tmp_path: Path) -> None:
    with start_stack(tmp_path, {}, {"rate_limit_rps": 1, "rate_limit_burst": 2}) as limited:
        # The bucket is the key id's, however the header is spelt: no fresh bucket per spelling
        # (first, while the per-address backstop is still empty).
        secret = "s" * 43
        spellings = [f"Bearer gw.0000000b.{secret}", f"bearer   gw.0000000b.{secret}", f"KEY gw.0000000b.{secret}",
                     f"bEaReR gw.0000000b.{secret}x", f"Bearer\tgw.0000000b.{secret}"]
        respelt = [limited.get("/healthz", headers={"Authorization": a}).status_code for a in spellings]
        assert respelt[-2:] == [429, 429], respelt
        replies = [limited.get("/healthz") for _ in range(12)]
        codes = [r.status_code for r in replies]
        assert codes.count(200) <= 4 and codes.count(429) >= 8, codes
        refused = next(r for r in replies if r.status_code == 429)
        assert refused.headers["Content-Type"] == "application/problem+json"
        assert refused.json()["status"] == 429 and refused.headers["Retry-After"] == "1"
        # Another key has its own bucket, but inventing keys from one address hits its backstop.
        assert limited.get("/healthz", headers={"Authorization": f"Bearer gw.0000000a.{secret}"}).status_code == 200
        rotated = [limited.get("/healthz", headers={"Authorization": f"Bearer gw.{i:08x}.{secret}"}).status_code
                   for i in range(16, 46)]
        assert rotated.count(429) >= 10, rotated


def test_the_gateway_key_never_reaches_a_user_script(gw: Stack) -> None:
    reply = gw.get("/plumber/echo/headers")
    assert reply.status_code == 200, reply.text
    key = gw.http.headers["Authorization"].split()[1]
    assert key not in reply.text and reply.json()["authorization"] in ([""], "")


@pytest.mark.parametrize("cyl", [2**31, -(2**31), 2**40, 10**30, 1e300])
def test_integers_beyond_r_are_refused_not_mangled(gw: Stack, cyl: float) -> None:
    """R integers are 32-bit and -2^31 is NA_integer_: such values must be a 4xx, not NA or a 5xx."""
    reply = gw.post("/models/mtcars/predict", json=[{"wt": 2.6, "hp": 110, "cyl": cyl, "am": "auto"}])
    assert 400 <= reply.status_code < 500, (reply.status_code, reply.text[:300])
    assert reply.headers["Content-Type"] == "application/problem+json"
    assert "cyl" in reply.json()["detail"]
