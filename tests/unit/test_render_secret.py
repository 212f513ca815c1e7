"""The cluster secret in the rendered NGINX config: on hops to other hosts only, never on a hop
to a Plumber worker (local, or behind a worker host's NGINX)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from gateway.runtime.plan import Endpoint, Plan, PoolPlan
from gateway.runtime.render import nginx_command, render_all
from gateway.settings import Settings, settings_from_dict

SECRET = "s" * 43


def expanded(text: str) -> str:
    """nginx.conf with each `include` replaced by the file (a pool's host servers live in one)."""
    return re.sub(r'include "([^"]+)";', lambda m: Path(m.group(1)).read_text(encoding="utf-8"), text)


def secret_settings(tmp_path: Path) -> tuple[Settings, Plan]:
    secret = tmp_path / "cluster.secret"
    secret.write_text(SECRET)
    settings = settings_from_dict({"server": {"run_dir": "run", "cluster_secret_file": str(secret)}, "models": {}},
                                  base_dir=tmp_path)
    pool = PoolPlan("echo", "script", str(tmp_path / "plumber.R"), "script", (Endpoint("127.0.0.1", 40190),), 10.0,
                    hosts=(Endpoint("10.0.0.2", 9100), Endpoint("10.0.0.3", 9100)))
    plan = Plan(str(settings.run_dir), Endpoint("127.0.0.1", 40180), Endpoint("127.0.0.1", 40181),
                Endpoint("127.0.0.1", 40182), {"echo": pool})
    return settings, plan


def test_the_secret_is_set_on_relays_to_other_hosts_only(tmp_path: Path) -> None:
    settings, plan = secret_settings(tmp_path)
    text = expanded(render_all(settings, plan)["nginx"].read_text())
    result = subprocess.run([*nginx_command(plan.run_dir), "-t"], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    servers = re.split(r"\n    server \{", text)
    with_secret = [s for s in servers if SECRET in s]
    assert len(with_secret) == 2  # one relay per host
    for relay in with_secret:
        assert re.search(r"listen \"unix:[^\"]+/relay/[0-9a-f]{12}\.sock\";", relay)
        assert re.search(r"proxy_pass http://10\.0\.0\.[23]:9100;", relay)
    upstream = re.search(r"upstream r_echo \{(.*?)\n    \}", text, re.S)
    assert upstream is not None
    assert "server 127.0.0.1:40190 max_fails=0;" in upstream.group(1)
    assert upstream.group(1).count('/relay/') == 2 and "10.0.0.2" not in upstream.group(1)
    internal = next(s for s in servers if "location /r/echo/" in s)
    assert 'proxy_set_header X-Gateway-Secret "";' in internal


def test_a_pool_of_remote_hosts_only_needs_no_relay(tmp_path: Path) -> None:
    settings, plan = secret_settings(tmp_path)
    pool = plan.pools["echo"]
    remote_only = Plan(plan.run_dir, plan.public, plan.gunicorn, plan.internal,
                       {"echo": PoolPlan(pool.model, pool.kind, pool.target, pool.version, (), 10.0, hosts=pool.hosts)})
    text = expanded(render_all(settings, remote_only)["nginx"].read_text())
    assert "/relay/" not in text and "server 10.0.0.2:9100 max_fails=1" in text
    internal = text.split("location /r/echo/")[1].split("location @r_echo_failed")[0]
    assert f'proxy_set_header X-Gateway-Secret "{SECRET}";' in internal


def test_a_worker_host_clears_the_secret_before_its_plumber_workers(tmp_path: Path) -> None:
    settings, plan = secret_settings(tmp_path)
    pool = plan.pools["echo"]
    worker = Plan(plan.run_dir, plan.public, plan.gunicorn, plan.internal,
                  {"echo": PoolPlan(pool.model, pool.kind, pool.target, pool.version, pool.workers, 10.0)},
                  role="worker", listens={"echo": Endpoint("127.0.0.1", 9100)})
    text = render_all(settings, worker)["nginx"].read_text()
    checked, passed = text.split("if ($http_x_gateway_secret")[1].split("proxy_pass", 1)
    assert SECRET in checked
    assert 'proxy_set_header X-Gateway-Secret "";' in passed
