"""R pools on two worker "hosts" (network namespaces), the gateway in the root namespace.

Each worker host runs `gateway worker` (supervisord, Plumber workers, an NGINX on its private
address); the gateway balances over both, over mutual TLS with certificates from `gateway certs`
(and the cluster secret besides), and its host prober takes a host that stops answering out of
the upstream. Addresses come from 198.18.0.0/15, exist only inside the namespaces made here, and
are removed after: no traffic leaves the machine.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from gateway import certs
from gateway import client as gateway_client
from gateway.runtime import stack
from tests.integration.conftest import Stack, start_stack
from tests.integration.r_models import build_r_store

GATEWAY = str(Path(sys.executable).parent / "gateway")
ROWS = [{"wt": 2.62, "hp": 110, "cyl": 6, "am": "manual"}]
WORKER_PORT = 9100
TIMEOUT_S = 3  # the model timeout: bounds how long a request in flight to a cut host can hang
PROBE_INTERVAL_S = 1.0


@dataclass
class Host:
    namespace: str
    link: str  # the root-namespace end of its veth pair
    address: str
    run_dir: Path

    @property
    def endpoint(self) -> str:
        return f"{self.address}:{WORKER_PORT}"

    def predicts_served(self) -> int:
        """Predicts this host's NGINX passed on (its access log is JSON lines)."""
        log = self.run_dir / "logs" / "nginx-access.log"
        if not log.exists():
            return 0
        entries = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines() if line]
        return sum(e["method"] == "POST" and e["uri"] == "/predict" for e in entries)

    def r_worker_pids(self) -> list[int]:
        return [pid for name, pid in stack.pids(self.run_dir).items() if name.startswith("plumber-")]


@dataclass
class Load:
    """Bounded background load: `threads` clients posting until stopped (or a hard limit).

    Each client is a gateway.client session, as docs/operations.md tells clients to use: a
    request written on a kept-alive connection just as NGINX closes it (every prober reload
    does) is re-sent once, as HTTP/1.1 allows, rather than counted as failed."""

    url: str
    threads: int = 4
    limit_s: float = 60.0
    sent: int = 0
    failed: list[str] = field(default_factory=list)
    worst_s: float = 0.0
    _stop: threading.Event = field(default_factory=threading.Event)
    _workers: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __enter__(self) -> Load:
        self._workers = [threading.Thread(target=self._run) for _ in range(self.threads)]
        for worker in self._workers:
            worker.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for worker in self._workers:
            worker.join(timeout=30)

    def _run(self) -> None:
        deadline = time.monotonic() + self.limit_s
        with gateway_client.session() as http:
            http.trust_env = False
            while not self._stop.is_set() and time.monotonic() < deadline:
                started = time.monotonic()
                try:
                    reply = http.post(self.url, json=ROWS, timeout=30)
                    problem = None if reply.status_code == 200 else f"{reply.status_code} {reply.text[:200]}"
                except requests.RequestException as exc:
                    problem = repr(exc)
                elapsed = time.monotonic() - started
                with self._lock:
                    self.sent += 1
                    self.worst_s = max(self.worst_s, elapsed)
                    if problem:
                        self.failed.append(problem)


def ip(*args: str) -> None:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    assert result.returncode == 0, (
        f"`ip {' '.join(args)}` failed: {result.stderr.strip()}. This test needs root and network "
        "namespaces (iproute2); it does not skip."
    )


def make_certs(directory: Path, names: list[str]) -> dict[str, tuple[Path, Path]]:
    """`gateway certs init` then `issue` for each name: name → (certificate, key)."""
    assert subprocess.run([GATEWAY, "certs", "init", "--dir", str(directory)], capture_output=True,
                          check=False).returncode == 0
    for name in names:
        issued = subprocess.run([GATEWAY, "certs", "issue", name, "--dir", str(directory)], capture_output=True,
                                text=True, check=False)
        assert issued.returncode == 0, issued.stderr
    return {name: (directory / f"{name}.crt", directory / f"{name}.key") for name in names}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, list[Host], str]]:
    directory = tmp_path_factory.mktemp("multihost")
    store = build_r_store(directory / "store")
    secret_file = directory / "cluster.secret"
    secret_file.write_text(secrets.token_urlsafe(32), encoding="utf-8")
    tag = f"{os.getpid() % 10000}"
    base = 10 + os.getpid() % 200  # third octet: distinct per test run, inside 198.18.0.0/15
    hosts = [Host(f"gwt{tag}-{i}", f"gwv{tag}h{i}", f"198.18.{base + i}.2", directory / f"worker{i}")
             for i in (1, 2)]
    models = {"mtcars": {"backend": "plumber", "workers": 0, "timeout_s": TIMEOUT_S,
                         "hosts": [h.endpoint for h in hosts]}}
    try:
        for host in hosts:
            subnet = host.address.rsplit(".", 1)[0]
            ip("netns", "add", host.namespace)
            ip("link", "add", host.link, "type", "veth", "peer", "name", "eth0", "netns", host.namespace)
            # Guard: should the link's own route go, this one answers "unreachable" at once, so
            # traffic for the subnet can never follow the default route off the machine.
            ip("route", "add", "unreachable", f"{subnet}.0/24", "metric", "4000")
            ip("addr", "add", f"{subnet}.1/24", "dev", host.link)
            ip("link", "set", host.link, "up")
            ip("-n", host.namespace, "addr", "add", f"{host.address}/24", "dev", "eth0")
            ip("-n", host.namespace, "link", "set", "eth0", "up")
            ip("-n", host.namespace, "link", "set", "lo", "up")
        issued = make_certs(directory / "ca", ["gateway", *(h.address for h in hosts)])
        ca = directory / "ca" / certs.CA_CERT
        config = directory / "worker.toml"
        config.write_text(
            f'[server]\ncluster_secret_file = "{secret_file}"\ncluster_ca_file = "{ca}"\n'
            f'[store]\npath = "{store}"\n'
            f'[models.mtcars]\nbackend = "plumber"\nworkers = 2\ntimeout_s = {TIMEOUT_S}\n'
            f'hosts = [{", ".join(repr(h.endpoint).replace(chr(39), chr(34)) for h in hosts)}]\n',
            encoding="utf-8",
        )
        for host in hosts:
            cert, key = issued[host.address]
            env = {**os.environ, "GATEWAY_SERVER__RUN_DIR": str(host.run_dir),
                   "GATEWAY_SERVER__CLUSTER_CERT_FILE": str(cert), "GATEWAY_SERVER__CLUSTER_KEY_FILE": str(key)}
            started = subprocess.run(
                ["ip", "netns", "exec", host.namespace, GATEWAY, "worker", "--config", str(config),
                 "--listen", host.address, "--detach"],
                capture_output=True, text=True, env=env, timeout=120, check=False,
            )
            assert started.returncode == 0, started.stderr
        (directory / "gateway").mkdir()
        cert, key = issued["gateway"]
        tls = {"cluster_ca_file": str(ca), "cluster_cert_file": str(cert), "cluster_key_file": str(key),
               "host_probe_interval_s": PROBE_INTERVAL_S}
        with start_stack(directory / "gateway", models, {"cluster_secret_file": str(secret_file), **tls},
                         store=store) as gateway:
            yield gateway, hosts, secret_file.read_text(encoding="utf-8")
    finally:
        for host in hosts:
            stack.down(host.run_dir)
            subprocess.run(["ip", "netns", "del", host.namespace], capture_output=True, check=False)
            subprocess.run(["ip", "link", "del", host.link], capture_output=True, check=False)
            subnet = host.address.rsplit(".", 1)[0]
            subprocess.run(["ip", "route", "del", "unreachable", f"{subnet}.0/24", "metric", "4000"],
                           capture_output=True, check=False)


def wait_live(gateway: Stack, live: int, budget_s: float = 20) -> float:
    started = time.monotonic()
    while gateway.get("/models/mtcars").json()["workers"]["live"] != live:
        assert time.monotonic() - started < budget_s, f"never {live} live hosts"
        time.sleep(0.2)
    return time.monotonic() - started


def test_predictions_are_spread_over_both_hosts(cluster: tuple[Stack, list[Host], str]) -> None:
    gateway, hosts, _ = cluster
    before = [h.predicts_served() for h in hosts]
    replies = [gateway.post("/models/mtcars/predict", json=ROWS) for _ in range(40)]
    assert {r.status_code for r in replies} == {200}
    assert len({tuple(r.json()["predictions"]) for r in replies}) == 1
    # NGINX logs a request when it finalises it, which may be just after the client has its reply.
    deadline = time.monotonic() + 5
    while True:
        served = [h.predicts_served() - b for h, b in zip(hosts, before, strict=True)]
        if sum(served) >= 40 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert sum(served) == 40
    assert min(served) >= 5, served
    described = gateway.get("/models/mtcars").json()
    assert described["workers"] == {"live": 2, "total": 2}
    assert described["hosts"] == {h.endpoint: True for h in hosts}
    status = subprocess.run([GATEWAY, "status", "--config", str(gateway.settings.config_path)],
                            capture_output=True, text=True, timeout=30, check=True).stdout
    print("\n" + status)
    for host in hosts:
        assert f"mtcars@{host.endpoint}  " in status


def test_a_worker_host_refuses_requests_that_skip_the_gateway(
    cluster: tuple[Stack, list[Host], str], tmp_path: Path,
) -> None:
    gateway, hosts, secret = cluster
    server = gateway.settings.server
    ca, ours = server.cluster_ca_file, (server.cluster_cert_file, server.cluster_key_file)
    foreign = make_certs(tmp_path / "other-ca", ["gateway"])["gateway"]  # same name, another CA
    url = f"https://{hosts[0].endpoint}/healthz"
    with_secret = {"X-Gateway-Secret": secret}
    with requests.Session() as http:
        http.trust_env = False
        for refused in (
            http.get(url, headers=with_secret, verify=ca, timeout=5),  # no client certificate
            http.get(url, headers=with_secret, verify=ca, cert=tuple(map(str, foreign)), timeout=5),
            http.get(url.replace("https:", "http:"), headers=with_secret, timeout=5),  # plain HTTP
            http.get(url, verify=ca, cert=ours, timeout=5),  # a certificate, but not the secret
        ):
            assert refused.status_code == 403, refused.text
            assert refused.json()["error"]["code"] == "forbidden"
        assert http.get(url, headers={"X-Gateway-Secret": "x" * 43}, verify=ca, cert=ours, timeout=5).status_code == 403
        assert http.get(url, headers=with_secret, verify=ca, cert=ours, timeout=5).status_code == 200


def host_metric(gateway: Stack, name: str, host: Host) -> float | None:
    """A per-host series of the gateway's /metrics for pool mtcars (None: not there)."""
    prefix = f'{name}{{host="{host.endpoint}",pool="mtcars"}} '
    for line in gateway.get("/metrics").text.splitlines():
        if line.startswith(prefix):
            return float(line.removeprefix(prefix))
    return None


def wait_metric(gateway: Stack, name: str, host: Host, value: float, budget_s: float = 20) -> float:
    started = time.monotonic()
    while host_metric(gateway, name, host) != value:
        assert time.monotonic() - started < budget_s, f"{name} of {host.endpoint} never {value}"
        time.sleep(0.2)
    return time.monotonic() - started


def test_the_prober_takes_a_host_whose_nginx_stops_out_and_puts_it_back(
    cluster: tuple[Stack, list[Host], str],
) -> None:
    gateway, hosts, _ = cluster
    wait_live(gateway, 2)
    wait_metric(gateway, "gateway_host_in_upstream", hosts[0], 1)
    assert host_metric(gateway, "gateway_host_up", hosts[1]) == 1
    assert (host_metric(gateway, "gateway_host_probe_seconds", hosts[1]) or 0) > 0
    failures_before = host_metric(gateway, "gateway_host_probe_failures_total", hosts[0]) or 0
    upstreams = gateway.run_dir / "upstreams" / "mtcars.conf"
    with Load(gateway.url + "/models/mtcars/predict", threads=2) as load:
        stack._rpc(hosts[0].run_dir, "stopProcess", "nginx")
        out_s = wait_metric(gateway, "gateway_host_in_upstream", hosts[0], 0)
        assert upstreams.read_text(encoding="utf-8").count(" down;") == 1
        assert host_metric(gateway, "gateway_host_up", hosts[0]) == 0
        assert (host_metric(gateway, "gateway_host_probe_failures_total", hosts[0]) or 0) >= failures_before + 2
        sent_while_out = load.sent
        served_while_out = hosts[1].predicts_served()
        deadline = time.monotonic() + 10
        while load.sent < sent_while_out + 20:
            assert time.monotonic() < deadline, "no requests went through while host 1 was out"
            time.sleep(0.05)
        while hosts[1].predicts_served() <= served_while_out:  # the other host carries the load
            assert time.monotonic() < deadline, "host 2 logged no request while host 1 was out"
            time.sleep(0.05)
        stack._rpc(hosts[0].run_dir, "startProcess", "nginx")
        served_before_return = hosts[0].predicts_served()
        back_s = wait_metric(gateway, "gateway_host_in_upstream", hosts[0], 1)
        assert " down;" not in upstreams.read_text(encoding="utf-8")
        deadline = time.monotonic() + 15
        while hosts[0].predicts_served() == served_before_return:  # back in service
            assert time.monotonic() < deadline, "host 1 took no request after it came back"
            time.sleep(0.1)
    print(f"\nprober: host 1's NGINX stopped: out of the upstream after {out_s:.1f} s, back {back_s:.1f} s after "
          f"its start; sent {load.sent}, failed {len(load.failed)}")
    assert load.failed == [], load.failed[:3]


def test_killing_every_r_worker_of_one_host_under_load_fails_no_request(
    cluster: tuple[Stack, list[Host], str],
) -> None:
    gateway, hosts, _ = cluster
    with Load(gateway.url + "/models/mtcars/predict") as load:
        time.sleep(1)
        for pid in hosts[0].r_worker_pids():
            os.kill(pid, signal.SIGKILL)
        time.sleep(3)
    print(f"\nkill host 1's R workers: sent {load.sent}, failed {len(load.failed)}, worst {load.worst_s:.3f} s")
    assert load.sent > 20
    assert load.failed == []
    wait_live(gateway, 2)


def test_a_host_whose_link_goes_down_is_routed_around_and_returns(cluster: tuple[Stack, list[Host], str]) -> None:
    gateway, hosts, _ = cluster
    wait_live(gateway, 2)
    with Load(gateway.url + "/models/mtcars/predict") as load:
        time.sleep(1)
        ip("-n", hosts[0].namespace, "link", "set", "eth0", "down")  # the host's cable is cut
        marked_down_s = wait_live(gateway, 1)
        assert gateway.get("/models/mtcars").json()["hosts"][hosts[0].endpoint] is False
        time.sleep(TIMEOUT_S + 1)  # past the longest a request in flight to the cut host can hang
        failed_while_cut, sent_while_cut = len(load.failed), load.sent
        time.sleep(2)
        failed_after = len(load.failed) - failed_while_cut
        served_before_return = hosts[0].predicts_served()
        ip("-n", hosts[0].namespace, "link", "set", "eth0", "up")
        back_s = wait_live(gateway, 2)
        time.sleep(7)  # NGINX's fail_timeout (5 s) passes and the host takes traffic again
    print(f"\nlink down: sent {load.sent}, failed {len(load.failed)} (in flight when cut: {failed_while_cut} "
          f"of {sent_while_cut}), worst {load.worst_s:.3f} s, marked down after {marked_down_s:.1f} s, "
          f"back after {back_s:.1f} s")
    assert failed_while_cut <= load.threads, load.failed[:3]  # at most the requests in flight to it
    assert failed_after == 0  # none afterwards
    assert marked_down_s < 5
    assert hosts[0].predicts_served() > served_before_return  # back in service
