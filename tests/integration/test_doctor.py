"""`gateway doctor` and `gateway init` as a user runs them, against this host's real R and NGINX.

The demo config passes; a stored model recording an R package no one has ('notapkg') is one
line naming its Debian package, exit 1; a directory `gateway init` wrote passes and loads.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from gateway.paths import REPO_ROOT
from gateway.runtime.plan import free_ports
from gateway.settings import load_settings

GATEWAY = str(Path(sys.executable).parent / "gateway")


def gateway(*args: str, directory: Path) -> subprocess.CompletedProcess[str]:
    """The command in a fresh environment: a free port, the run dir and store under `directory`.

    GATEWAY_SERVER__USER is "" as for every CLI test here (tests/integration/conftest.py):
    pytest's 0700 temp dirs are out of the service users' reach, which doctor would rightly say.
    """
    (port,) = free_ports(1)
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env |= {"GATEWAY_SERVER__PORT": str(port), "GATEWAY_SERVER__USER": "",
            "GATEWAY_SERVER__RUN_DIR": str(directory / "run"), "GATEWAY_STORE__PATH": str(directory / "store")}
    return subprocess.run([GATEWAY, *args], capture_output=True, text=True, env=env, timeout=120, check=False)


def test_the_demo_config_is_all_good_on_this_host(tmp_path: Path) -> None:
    config = tmp_path / "gateway.toml"
    shutil.copy(REPO_ROOT / "gateway.toml", config)
    built = gateway("build-demo", "--config", str(config), directory=tmp_path)
    assert built.returncode == 0, built.stderr
    result = gateway("doctor", "--config", str(config), directory=tmp_path)
    assert (result.returncode, result.stdout, result.stderr) == (0, "doctor: all good\n", "")


def test_a_missing_r_package_is_one_line_with_its_debian_package(tmp_path: Path) -> None:
    version = tmp_path / "store" / "m" / "1"
    version.mkdir(parents=True)
    (version / "model.rds").write_bytes(b"")
    meta = {"name": "m", "version": "1", "language": "r", "format": "rds", "artefact": "model.rds",
            "inputs": [{"name": "x", "type": "double"}], "outputs": {"kind": "regression"}, "sha256": "",
            "created_at": "2026-12-01T00:00:00Z",
            "framework": {"r": "4.2.2", "packages": {"notapkg": "1.0", "stats": "4.2.2"}}}
    (version / "model.json").write_text(json.dumps(meta), encoding="utf-8")
    config = tmp_path / "gateway.toml"
    config.write_text('[models.m]\nbackend = "plumber"\n', encoding="utf-8")
    result = gateway("doctor", "--config", str(config), directory=tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    *problems, summary = result.stdout.splitlines()
    assert problems == ["error: R package 'notapkg' is not installed (needed by m); "
                        "fix: apt-get install -y --no-install-recommends r-cran-notapkg"]
    assert summary == "doctor: 1 problem, 0 warnings"


def test_a_directory_init_wrote_passes_doctor_and_loads(tmp_path: Path) -> None:
    site = tmp_path / "site"
    made = gateway("init", str(site), directory=site)
    assert made.returncode == 0, made.stderr
    result = gateway("doctor", "--config", str(site / "gateway.toml"), directory=site)
    assert (result.returncode, result.stdout) == (0, "doctor: all good\n"), result.stderr
    settings = load_settings(site / "gateway.toml", env={})
    assert settings.store_path == site / "store" and settings.models == {}
    again = gateway("init", str(site), directory=site)
    assert again.returncode == 2 and again.stderr.count("\n") == 1
