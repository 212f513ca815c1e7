"""Real stacks (supervisord, NGINX, Gunicorn, R pools) on loopback, always torn down.

`start_stack(directory, models, server_overrides)` is the one way tests start a stack: it
writes a gateway.toml, runs `stack.up`, and on exit runs `stack.down` and asserts that no
process it ever saw is still alive.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from gateway.runtime import procs, stack
from gateway.runtime.plan import Plan, free_ports
from gateway.runtime.tomlwrite import dump_toml
from gateway.settings import Settings, load_settings

TEARDOWN_WAIT_S = 15.0
# pytest's temp dirs are 0700, which the service users of a root-started stack cannot cross: the
# stacks tests start through the CLI (`gateway up`, `gateway worker`) skip the privilege drop, as
# start_stack's do. tests/integration/test_privileges.py starts its stack with the drop.
os.environ["GATEWAY_SERVER__USER"] = ""


@dataclass
class Stack:
    settings: Settings
    plan: Plan
    http: requests.Session = field(default_factory=requests.Session)
    known: set[procs.Proc] = field(default_factory=set)

    @property
    def url(self) -> str:
        return stack.public_url(self.plan)

    @property
    def run_dir(self) -> Path:
        return Path(self.plan.run_dir)

    def pids(self) -> dict[str, int]:
        """Program → pid now; every process seen here is checked at teardown."""
        current = stack.pids(self.run_dir)
        self.remember()
        return current

    def gunicorn_workers(self) -> set[int]:
        """Pids of the Gunicorn workers now; every process seen here is checked at teardown."""
        self.remember()
        return {p.pid for p in stack.gunicorn_workers(self.run_dir)}

    def remember(self) -> None:
        supervisord = stack._supervisord_pid(self.run_dir)
        if supervisord is not None:
            self.known |= procs.family(supervisord)

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.http.get(self.url + path, timeout=kwargs.pop("timeout", 30), **kwargs)

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        return self.http.post(self.url + path, timeout=kwargs.pop("timeout", 30), **kwargs)


@contextmanager
def start_stack(
    directory: Path,
    models: dict[str, dict[str, Any]],
    server_overrides: dict[str, Any] | None = None,
    *,
    store: Path | None = None,
    wait_s: float = 90.0,
) -> Iterator[Stack]:
    """A running stack serving `models` (config tables as in gateway.toml) from `store`."""
    (port,) = free_ports(1)
    # user "": no privilege drop when the tests run as root, since pytest's temp dirs are 0700
    # (tests/integration/test_privileges.py starts its stack with the drop, in a shared dir).
    server = {"port": port, "workers": 1, "threads": 4, "run_dir": str(directory / "run"), "user": "",
              **(server_overrides or {})}
    raw = {"server": server, "store": {"path": str(store or directory / "store")}, "models": models}
    config = directory / "gateway.toml"
    config.write_text(dump_toml(raw), encoding="utf-8")
    settings = load_settings(config, env={})
    plan = stack.up(settings, wait_s=wait_s)
    handle = Stack(settings, plan)
    handle.http.trust_env = False  # loopback: never through a proxy from the environment
    handle.remember()
    try:
        yield handle
    finally:
        handle.remember()
        handle.http.close()
        stack.down(handle.run_dir)
        procs.wait_gone(handle.known, TEARDOWN_WAIT_S)
        leftovers = procs.alive(handle.known)
        assert not leftovers, f"processes outlived `down`: {sorted(p.pid for p in leftovers)}"


@pytest.fixture
def stack_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """start_stack as a fixture: `stack_factory(models, server_overrides, store=...)`."""
    with ExitStack() as stacks:  # runs every teardown, even when an earlier one fails

        def factory(models: dict[str, dict[str, Any]], server_overrides: dict[str, Any] | None = None,
                    **kwargs: Any) -> Stack:
            directory = tmp_path_factory.mktemp("stack")
            return stacks.enter_context(start_stack(directory, models, server_overrides, **kwargs))

        yield factory


def p99_latency(gw: Stack, path: str, body: Any, samples: int) -> float:
    """p99 seconds of `samples` POSTs of `body` to `path`, one after another, each a 200."""
    times = []
    with requests.Session() as http:
        http.trust_env = False
        for _ in range(samples):
            started = time.perf_counter()
            reply = http.post(gw.url + path, json=body, timeout=60)
            times.append(time.perf_counter() - started)
            assert reply.status_code == 200, reply.text[:300]
    return sorted(times)[int(0.99 * (samples - 1))]


def wait_for(check: Callable[[], Any], budget_s: float = 10.0) -> Any:
    """check()'s first truthy result within the budget, else its last result (what a test
    polls for: a log line written after the reply, a span exported in the background)."""
    deadline = time.monotonic() + budget_s
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.1)
