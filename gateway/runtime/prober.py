"""The host prober: asks every worker host's health route every few seconds, under supervisord.

A host that fails `FAILURES_OUT` probes in a row leaves its pools' NGINX upstreams (its `server`
line is rewritten `down` and NGINX is reloaded: open-source NGINX has no API to change an
upstream, and a reload is graceful: requests in flight finish on the old workers); it comes back
with its first answer. The last host of a pool without local workers never leaves: with nothing
else to send to, NGINX's own passive checks and retries do better than a certain 502. What each
probe saw goes to hosts.json (gateway/hoststate.py) for /readyz and the per-host metrics.

Run as `python -m gateway.runtime.prober <run_dir>/plan.json`; it re-reads the plan when it
changes (`gateway reload`). Its log lines are JSON on stderr.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import ssl
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

from gateway.hoststate import HostState, client_context, read_states, write_states
from gateway.runtime.plan import Endpoint, Plan, PoolPlan
from gateway.runtime.privileges import accounts
from gateway.runtime.render import SETTINGS_COPY, relayed, write_host_servers
from gateway.settings import Settings, cluster_secret, cluster_tls, load_settings

FAILURES_OUT = 2  # one lost probe (a busy host, a dropped packet) does not move traffic


@dataclass(frozen=True)
class Probe:
    """How to ask a host: TLS context (mutual TLS) or plain, and the secret header."""

    context: ssl.SSLContext | None
    secret: str
    timeout_s: float

    def __call__(self, host: Endpoint, path: str) -> tuple[bool, float]:
        """(answered 200, seconds taken)."""
        started = time.monotonic()
        if self.context is not None:
            connection: http.client.HTTPConnection = http.client.HTTPSConnection(
                host.host, host.port, timeout=self.timeout_s, context=self.context)
        else:
            connection = http.client.HTTPConnection(host.host, host.port, timeout=self.timeout_s)
        try:
            connection.request("GET", path, headers={"X-Gateway-Secret": self.secret} if self.secret else {})
            ok = connection.getresponse().status == 200
        except (OSError, http.client.HTTPException):
            ok = False
        finally:
            connection.close()
        return ok, time.monotonic() - started


def decide(pool: PoolPlan, states: dict[str, HostState], streaks: dict[str, int]) -> set[str]:
    """The addresses that are out of the pool's upstream after this round."""
    out = {address for address, state in states.items() if streaks.get(address, 0) >= FAILURES_OUT}
    if not pool.workers and len(out) == len(pool.hosts):
        return set()  # never take out the last host: see the module docstring
    return out


class Prober:
    def __init__(self, plan_path: Path) -> None:
        self.plan_path = plan_path
        self.run_dir = plan_path.parent
        self.loaded = 0.0
        self.states: dict[str, dict[str, HostState]] = {}
        self.streaks: dict[str, dict[str, int]] = {}
        self._load()
        # What the rendered upstream files say now (render_all wrote them from the last states),
        # so a host left `down` by an earlier prober comes back with its first answer.
        earlier = read_states(self.run_dir, max_age_s=float("inf")) or {}
        self.out: dict[str, set[str]] = {key: {address for address, state in hosts.items() if not state.in_upstream}
                                         for key, hosts in earlier.items()}

    def _load(self) -> None:
        self.loaded = self.plan_path.stat().st_mtime
        self.plan = Plan.load(self.plan_path)
        self.settings: Settings = load_settings(self.run_dir / SETTINGS_COPY, env={})
        tls = cluster_tls(self.settings)
        server = self.settings.server
        self.probe = Probe(client_context(tls) if tls else None, cluster_secret(self.settings),
                           server.host_probe_timeout_s)
        self.interval_s = server.host_probe_interval_s
        self.owners = accounts(self.settings)
        self.relay = {pool.key: relayed(pool, bool(self.probe.secret), tls is not None) for pool in self.plan.all_pools}
        self.pools = [pool for pool in self.plan.all_pools if pool.hosts]

    def round(self, executor: ThreadPoolExecutor) -> None:
        """Probe every host once; rewrite and reload what changed; write the states."""
        if self.plan_path.stat().st_mtime != self.loaded:
            self._load()
        jobs = {(pool.key, host.address): executor.submit(self.probe, host, pool.health_path)
                for pool in self.pools for host in pool.hosts}
        changed = False
        for pool in self.pools:
            states, streaks = self.states.setdefault(pool.key, {}), self.streaks.setdefault(pool.key, {})
            for host in pool.hosts:
                ok, seconds = jobs[pool.key, host.address].result()
                old = states.get(host.address, HostState(True, True, 0.0, 0, 0, 0.0))
                streaks[host.address] = 0 if ok else streaks.get(host.address, 0) + 1
                states[host.address] = replace(old, answering=ok, latency_s=round(seconds, 6), probes=old.probes + 1,
                                               failures=old.failures + (not ok), checked=time.time())
            out = decide(pool, states, streaks)
            for address in states:
                states[address] = replace(states[address], in_upstream=address not in out)
            if out != self.out.get(pool.key, set()):
                for address in out ^ self.out.get(pool.key, set()):
                    _log(event="out" if address in out else "in", model=pool.model, pool=pool.key, host=address,
                         failures_in_a_row=streaks.get(address, 0))
                write_host_servers(self.run_dir, pool, self.relay[pool.key], out)
                self.out[pool.key] = out
                changed = True
        if changed:
            reload_nginx(self.run_dir)
        written = write_states(self.run_dir, self.states)
        if self.owners is not None:  # Gunicorn (the service user) reads it for /metrics
            os.chown(written, self.owners.uid, self.owners.gid)

    def run(self) -> None:
        with ThreadPoolExecutor(max_workers=16) as executor:
            while True:
                started = time.monotonic()
                self.round(executor)
                time.sleep(max(0.0, self.interval_s - (time.monotonic() - started)))


def reload_nginx(run_dir: Path) -> None:
    """SIGHUP to NGINX's master: it re-reads its config, old workers finish what they hold."""
    try:
        pid = int((run_dir / "nginx.pid").read_text(encoding="ascii").strip())
        os.kill(pid, signal.SIGHUP)
    except (OSError, ValueError) as exc:
        _log(event="reload_failed", detail=f"NGINX not reloaded ({exc}); the host list applies at its next start")


def _log(**fields: object) -> None:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    print(json.dumps({"time": stamp, "source": "prober", **fields}), file=sys.stderr, flush=True)


if __name__ == "__main__":
    Prober(Path(sys.argv[1])).run()
