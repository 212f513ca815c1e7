"""Every listening socket of every process the stack starts is on loopback (or the public host).

The kernel is asked, not the configs: /proc/net/tcp{,6} lists listening sockets by inode, and
/proc/<pid>/fd links each process to the socket inodes it holds. A worker that ignored its
configured host and bound 0.0.0.0 would show up here even if every rendered file looked right.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import struct
from pathlib import Path

import pytest

from gateway.runtime import procs, stack
from tests.integration.conftest import start_stack
from tests.integration.r_models import build_r_store

LISTEN = "0A"  # TCP_LISTEN in /proc/net/tcp's `st` column
MODELS = {
    "mtcars": {"backend": "plumber", "workers": 2, "timeout_s": 20},
    "cars": {"backend": "plumber", "workers": 1, "predict_route": "/predict", "input_format": "records"},
}


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
    return build_r_store(tmp_path_factory.mktemp("r") / "store")


def test_every_listener_of_the_stack_is_on_loopback(r_store: Path, tmp_path: Path) -> None:
    with start_stack(tmp_path, MODELS, store=r_store) as gw:
        assert gw.get("/readyz").status_code == 200
        supervisord = stack._supervisord_pid(gw.run_dir)
        assert supervisord is not None
        family = procs.family(supervisord)
        allowed = {"127.0.0.1", "::1", gw.settings.server.host}
        listeners: dict[int, list[tuple[str, int]]] = {}
        for proc in family:
            try:
                table = listening_sockets(proc.pid)
                held = socket_inodes(proc.pid)
            except (FileNotFoundError, ProcessLookupError):
                continue
            mine = [table[inode] for inode in held if inode in table]
            if mine:
                listeners[proc.pid] = mine
        report = {f"{pid} {_cmd(pid)}": addrs for pid, addrs in listeners.items()}
        exposed = {who: addrs for who, addrs in report.items() if any(a not in allowed for a, _ in addrs)}
        assert not exposed, f"listening beyond loopback: {exposed}"

        # Teeth: the scan saw every listener the plan promises, each held by some process.
        ports = {port for addrs in listeners.values() for _, port in addrs}
        plan = gw.plan
        expected = {plan.public.port, plan.gunicorn.port, plan.internal.port}
        expected |= {w.port for pool in plan.pools.values() for w in pool.workers}
        assert expected <= ports, f"not seen listening: {sorted(expected - ports)}; seen {report}"
        r_workers = [pid for pid in listeners if "Rscript" in _cmd(pid) or "/R" in _cmd(pid)]
        assert len(r_workers) == 3, report


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
