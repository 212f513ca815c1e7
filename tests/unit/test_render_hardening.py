"""NGINX hardening in the rendered config: header limits, timeouts, no banner, optional rate limit."""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
from pathlib import Path

import pytest

from gateway.errors import ConfigError
from gateway.runtime.plan import Endpoint, Plan
from gateway.runtime.render import nginx_command, render_all
from gateway.settings import Settings, settings_from_dict


def make(tmp_path: Path, **server: object) -> tuple[Settings, Plan]:
    settings = settings_from_dict({"server": {"run_dir": "run", **server}, "models": {}}, base_dir=tmp_path)
    plan = Plan(str(settings.run_dir), Endpoint("127.0.0.1", 40180), Endpoint("127.0.0.1", 40181),
                Endpoint("127.0.0.1", 40182), {})
    return settings, plan


def nginx_test(plan: Plan) -> None:
    result = subprocess.run([*nginx_command(plan.run_dir), "-t"], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


def test_header_limits_timeouts_and_no_banner(tmp_path: Path) -> None:
    settings, plan = make(tmp_path)
    text = render_all(settings, plan)["nginx"].read_text()
    nginx_test(plan)
    for directive in ("server_tokens off;", "large_client_header_buffers 4 8k;", "client_header_timeout 10s;",
                      "client_body_timeout 10s;", "send_timeout 10s;", "worker_connections 8192;",
                      "worker_rlimit_nofile 16448;", "limit_conn gateway_conn_addr 128;"):
        assert directive in text
    assert "limit_req" not in text  # off by default


@pytest.mark.parametrize(("rps", "rate"), [(5, "5r/s"), (2.6, "3r/s"), (0.5, "30r/m")])
def test_rate_limit_renders_and_nginx_accepts_it(tmp_path: Path, rps: float, rate: str) -> None:
    settings, plan = make(tmp_path, rate_limit_rps=rps, rate_limit_burst=7)
    text = render_all(settings, plan)["nginx"].read_text()
    nginx_test(plan)
    assert f"limit_req_zone $gateway_rate_key zone=gateway_rate:10m rate={rate};" in text
    assert "limit_req zone=gateway_rate burst=7 nodelay;" in text
    assert "limit_req zone=gateway_rate_addr burst=28 nodelay;" in text  # the per-address backstop, 4x
    # Keyed on the key id, however the header is spelt; anything else on the address.
    key_map = text[text.index("map $http_authorization $gateway_rate_key {"):]
    key_map = key_map[: key_map.index("\n    }")]
    assert '"key:$gateway_key_id";' in key_map and "default $binary_remote_addr;" in key_map
    body = re.search(r"return 429 '(.*)';", text)
    assert body is not None
    problem = json.loads(body.group(1).replace("${gateway_request_id}", "r1"))
    assert problem["status"] == 429 and problem["type"].endswith("/rate_limited")
    # Only the public server limits: the internal one serves the app alone.
    public, internal = text.split("# Internal:")
    assert "limit_req zone" in public and "limit_req zone" not in internal


def test_negative_rates_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="rate_limit_rps"):
        make(tmp_path, rate_limit_rps=-1)


def test_keys_file_path_survives_the_settings_copy(tmp_path: Path) -> None:
    settings, plan = make(tmp_path, api_keys_file="keys.json")
    copy = render_all(settings, plan)["settings"].read_text()
    assert f'api_keys_file = "{tmp_path / "keys.json"}"' in copy
    assert dataclasses.asdict(settings.server)["open_paths"] == ("/healthz", "/readyz", "/metrics")
