"""`kill -9` of supervisord or of NGINX's master: `gateway down` still stops every process of the
stack (their orphans included), the public port is free again, and `gateway up` starts cleanly."""

from __future__ import annotations

import os
import signal
import socket
from pathlib import Path

import pytest

from gateway.runtime import procs, stack
from tests.integration.conftest import Stack, start_stack

GONE_WAIT_S = 15.0


def _port_is_free(gw: Stack) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((gw.plan.public.host, gw.plan.public.port))
        except OSError:
            return False
        return True


def _kill_9(gw: Stack, victim: str) -> None:
    gw.pids()  # every process of the stack now, orphans-to-be included, is checked below
    pid = stack._supervisord_pid(gw.run_dir) if victim == "supervisord" else gw.pids()[victim]
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    assert procs.wait_gone({p for p in gw.known if p.pid == pid}, GONE_WAIT_S)


def _down_leaves_nothing(gw: Stack) -> None:
    stack.down(gw.run_dir)
    procs.wait_gone(gw.known, GONE_WAIT_S)
    leftovers = procs.alive(gw.known)
    assert not leftovers, f"`down` left {sorted(p.pid for p in leftovers)} running"
    assert _port_is_free(gw), f"port {gw.plan.public.port} is still held after `down`"


@pytest.mark.parametrize("victim", ["nginx", "supervisord"])
def test_down_stops_the_orphans_of_a_kill_9_and_up_starts_again(
    victim: str, model_store: Path, tmp_path: Path
) -> None:
    with start_stack(tmp_path, {"iris": {"backend": "python"}}, store=model_store) as gw:
        _kill_9(gw, victim)
        if victim == "supervisord":
            # Its programs still run and hold the port: `up` says so instead of a port clash.
            with pytest.raises(stack.StackError, match=r"outlived its supervisord.*gateway down"):
                stack.up(gw.settings)
            assert "gateway down" in stack.status(gw.run_dir)
        _down_leaves_nothing(gw)
        stack.up(gw.settings)
        gw.remember()
        assert gw.get("/readyz").status_code == 200
