"""Mutual TLS in the rendered NGINX configs: every hop to a worker host verifies both ends."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from gateway.certs import CA_CERT, init_ca, issue
from gateway.runtime.plan import Endpoint, Plan, PoolPlan
from gateway.runtime.render import nginx_command, render_all
from gateway.settings import Settings, settings_from_dict

HOSTS = (Endpoint("10.0.0.2", 9100), Endpoint("10.0.0.3", 9100))


def tls_settings(tmp_path: Path, name: str) -> Settings:
    if not (tmp_path / "ca" / CA_CERT).exists():
        init_ca(tmp_path / "ca")
    cert, key = issue(tmp_path / "ca", name)
    server = {"run_dir": "run", "user": "", "cluster_ca_file": str(tmp_path / "ca" / CA_CERT),
              "cluster_cert_file": str(cert), "cluster_key_file": str(key)}
    return settings_from_dict({"server": server, "models": {}}, base_dir=tmp_path)


def nginx_ok(plan: Plan) -> None:
    result = subprocess.run([*nginx_command(plan.run_dir), "-t"], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


def test_the_gateway_reaches_every_host_through_a_relay_that_verifies_it(tmp_path: Path) -> None:
    settings = tls_settings(tmp_path, "gateway")
    pool = PoolPlan("mtcars", "model", str(tmp_path), "1", (), 10.0, hosts=HOSTS)  # hosts only
    plan = Plan(str(settings.run_dir), Endpoint("127.0.0.1", 40180), Endpoint("127.0.0.1", 40181),
                Endpoint("127.0.0.1", 40182), {"mtcars": pool})
    text = render_all(settings, plan)["nginx"].read_text()
    nginx_ok(plan)
    relays = [s for s in re.split(r"\n    server \{", text) if "proxy_pass https://" in s]
    assert len(relays) == 2
    for relay, host in zip(relays, HOSTS, strict=True):
        assert "proxy_ssl_verify on;" in relay and f"proxy_ssl_name {host.host};" in relay
        assert str(settings.resolve(settings.server.cluster_cert_file)) in relay
    upstream = (settings.run_dir / "upstreams" / "mtcars.conf").read_text()
    assert upstream.count('"unix:') == 2 and "10.0.0" not in upstream  # no plain hop to a host


def test_a_worker_host_demands_a_client_certificate(tmp_path: Path) -> None:
    settings = tls_settings(tmp_path, "127.0.0.1")
    pool = PoolPlan("mtcars", "model", str(tmp_path), "1", (Endpoint("127.0.0.1", 40190),), 10.0)
    plan = Plan(str(settings.run_dir), Endpoint("127.0.0.1", 0), Endpoint("127.0.0.1", 0), Endpoint("127.0.0.1", 0),
                {"mtcars": pool}, role="worker", listens={"mtcars": Endpoint("127.0.0.1", 40191)})
    text = render_all(settings, plan)["nginx"].read_text()
    nginx_ok(plan)
    assert "listen 127.0.0.1:40191 ssl;" in text
    assert "ssl_verify_client on;" in text and "error_page 495 496 497 =403 @untrusted;" in text
